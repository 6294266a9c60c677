"""Preflight in LocalDagRunner pipelines wired the way a user might get wrong, with TFX's own components unmodified.

Depends on: the read pass's example counts (statistics of another Examples artifact are refused).
"""

import csv
import os

import pytest
import tfx as tfx_root
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx import v1 as tfx

from tfx_preflight import Preflight, run

TAXI_CSV = os.path.join(os.path.dirname(tfx_root.__file__), 'examples', 'chicago_taxi_pipeline', 'data', 'simple',
                        'data.csv')


def _write_csv(directory, first, last):
  """Rows [first, last) of TFX's taxi CSV, with its header, as the only file of `directory`."""
  with open(TAXI_CSV, newline='') as source:
    rows = list(csv.reader(source))
  os.makedirs(directory)
  with open(os.path.join(directory, 'data.csv'), 'w', newline='') as target:
    csv.writer(target).writerows([rows[0]] + rows[1 + first:1 + last])
  return str(directory)


def _statistics(num_examples, name=''):
  result = statistics_pb2.DatasetFeatureStatisticsList()
  result.datasets.add(name=name, num_examples=num_examples)
  return result


def test_statistics_that_count_other_examples_are_refused_naming_split_and_counts():
  statistics = {'train': _statistics(200), 'eval': _statistics(30)}
  provenance = {'examples': '/ex/1', 'statistics': '/stats/2'}
  run.check_statistics_count_the_examples(statistics, {'train': 200, 'eval': 31}, provenance)  # Within tolerance.
  with pytest.raises(ValueError, match=r"/stats/2\) count 30 examples in split 'eval' but the examples \(/ex/1\) "
                                       r'have 106'):
    run.check_statistics_count_the_examples(statistics, {'train': 200, 'eval': 106}, provenance)


@pytest.mark.slow
def test_statistics_of_another_example_gen_fail_the_run_instead_of_blessing(tmp_path):
  """StatisticsGen wired to a second ExampleGen: the skew check would judge data nobody trains on."""
  example_gen = tfx.components.CsvExampleGen(input_base=_write_csv(tmp_path / 'a', 0, 300))
  other_gen = tfx.components.CsvExampleGen(input_base=_write_csv(tmp_path / 'b', 5000, 5100)).with_id('OtherGen')
  statistics_gen = tfx.components.StatisticsGen(examples=other_gen.outputs['examples'])
  preflight = Preflight(examples=example_gen.outputs['examples'], statistics=statistics_gen.outputs['statistics'],
                        label_key='tips')
  pipeline = tfx.dsl.Pipeline(
      pipeline_name='wiring', pipeline_root=str(tmp_path / 'root'),
      components=[example_gen, other_gen, statistics_gen, preflight],
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          str(tmp_path / 'metadata.db')))
  with pytest.raises(ValueError, match=r"count \d+ examples in split '(train|eval)' but the examples .*CsvExampleGen"):
    tfx.orchestration.LocalDagRunner().run(pipeline)
  assert not list((tmp_path / 'root').glob('Preflight/blessing/*/BLESSED'))

