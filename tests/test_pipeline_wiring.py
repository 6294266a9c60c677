"""Preflight in LocalDagRunner pipelines wired the way a user might get wrong, with TFX's own components unmodified.

Depends on: the read pass's example counts (statistics of another Examples artifact are refused); the loss check's
run_fn error message (the cache test reads which helper version the gate saw).
"""

import csv
import json
import os
import pathlib

import pytest
import tfx as tfx_root
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx import v1 as tfx

from pipelines import penguin
from tfx_preflight import Preflight, component, run

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



def _write_module(folder, loss_name):
  """A Trainer module whose run_fn fails naming the value its sibling helper.py holds (where a loss would live)."""
  folder.mkdir(exist_ok=True)
  (folder / 'trainer_module.py').write_text('from helper import LOSS\n\n\ndef run_fn(fn_args):\n  raise '
                                            'RuntimeError(LOSS)\n')
  (folder / 'helper.py').write_text(f'LOSS = {loss_name!r}\n')
  return str(folder / 'trainer_module.py')


def test_module_folder_fingerprint_follows_the_siblings_trainer_packages(tmp_path):
  module_file = _write_module(tmp_path / 'module', 'v1')
  first = component.module_folder_fingerprint(module_file)
  (tmp_path / 'module' / 'notes.txt').write_text('not python: Trainer does not package it')
  assert component.module_folder_fingerprint(module_file) == first
  _write_module(tmp_path / 'module', 'v2')
  assert component.module_folder_fingerprint(module_file) not in (None, first)
  assert component.module_folder_fingerprint(str(tmp_path / 'missing.py')) is None


def _gate_pipeline(tmp_path, module_file):
  example_gen = tfx.components.ImportExampleGen(
      input_base=os.path.join(penguin.TESTDATA_DIR, 'data'), input_config=tfx.proto.Input(splits=[
          tfx.proto.Input.Split(name=split, pattern=f'Split-{split}/*') for split in penguin.SPLITS]))
  preflight = Preflight(examples=example_gen.outputs['examples'], module_file=module_file,
                        label_key=penguin.LABEL_KEY, leakage={'mode': 'off'}, label_proxy={'mode': 'off'})
  return tfx.dsl.Pipeline(
      pipeline_name='cache', pipeline_root=str(tmp_path / 'root'), components=[example_gen, preflight],
      enable_cache=True, metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          str(tmp_path / 'metadata.db')))


def _loss_messages(tmp_path):
  return [json.loads(path.read_text())['checks']['loss']['findings'][0]['message']
          for path in sorted((tmp_path / 'root').glob('Preflight/report/*/report.json'))]


@pytest.mark.slow
def test_editing_a_sibling_of_module_file_reruns_the_gate_instead_of_reusing_its_cached_blessing(tmp_path):
  """Trainer re-runs when any .py beside its module_file changes (it packages the folder); the gate must too."""
  module_file = _write_module(tmp_path / 'module', 'v1')
  tfx.orchestration.LocalDagRunner().run(_gate_pipeline(tmp_path, module_file))
  _write_module(tmp_path / 'module', 'v2')
  tfx.orchestration.LocalDagRunner().run(_gate_pipeline(tmp_path, module_file))
  messages = _loss_messages(tmp_path)
  assert len(messages) == 2 and 'RuntimeError: v1' in messages[0] and 'RuntimeError: v2' in messages[1], messages
  tfx.orchestration.LocalDagRunner().run(_gate_pipeline(tmp_path, module_file))  # Unchanged: cached.
  assert len(_loss_messages(tmp_path)) == 2


@pytest.mark.slow
def test_a_gate_not_given_the_transform_graph_trainer_gets_says_so(tmp_path):
  """TFX's penguin module reads FnArgs.transform_output: without transform_graph its run_fn fails in the gate only."""
  module_file = tmp_path / 'penguin_utils_keras.py'
  module_file.write_text((pathlib.Path(tfx_root.__file__).parent / 'examples' / 'penguin' /
                          'penguin_utils_keras.py').read_text())
  tfx.orchestration.LocalDagRunner().run(_gate_pipeline(tmp_path, str(module_file)))
  [message] = _loss_messages(tmp_path)
  assert 'run_fn() in' in message and 'FnArgs.transform_output was None' in message, message
  assert 'give Preflight the transform_graph Trainer gets' in message
