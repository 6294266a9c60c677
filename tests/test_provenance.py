"""Inputs that must belong to the examples being gated (provenance.py): the transform graph's raw features, the
transformed examples, and count differences inside the tolerance shown in report.json and report.html.

TFX's own testdata (raw examples, the transform graph and the transformed examples made from them) must pass; the
same inputs wired to other data must fail naming the input and what differs.
"""

import os
import shutil

import pytest
import tfx
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.utils import io_utils

from tests.helpers import tabular_rows, write_splits
from tfx_preflight.inputs import data, provenance
from tfx_preflight.report import pages as render
from tfx_preflight.report.build import build_report

TESTDATA = os.path.join(os.path.dirname(tfx.__file__), 'components', 'testdata')
RAW = {s: os.path.join(TESTDATA, 'csv_example_gen', f'Split-{s}', '*') for s in ('train', 'eval')}
TRANSFORMED = {s: os.path.join(TESTDATA, 'transform', 'transformed_examples', f'Split-{s}', '*')
               for s in ('train', 'eval')}
GRAPH = os.path.join(TESTDATA, 'transform', 'transform_graph')
COUNTS = {'train': 9909, 'eval': 5091}  # Records of TFX's testdata raw examples.
STATS_TYPE = statistics_pb2.FeatureNameStatistics


def statistics_of(types):
  """Statistics naming `types` (feature -> statistics type) in every split, as TFDV writes them."""
  stats = statistics_pb2.DatasetFeatureStatisticsList()
  dataset = stats.datasets.add(num_examples=10)
  for name, kind in types.items():
    dataset.features.add(type=kind).path.step.append(name)
  return {'train': stats, 'eval': stats}


def taxi_types():
  schema = provenance.graph_schema(GRAPH, provenance.RAW_SCHEMA)
  by_schema = {1: STATS_TYPE.STRING, 2: STATS_TYPE.INT, 3: STATS_TYPE.FLOAT}
  return {f.name: by_schema[f.type] for f in schema.feature}


def test_testdata_graph_reads_the_testdata_examples():
  provenance.check_transform_graph_reads_the_examples(GRAPH, statistics_of(taxi_types()), ['train', 'eval'])


def test_a_graph_of_other_data_fails_naming_the_missing_features():
  with pytest.raises(data.InputError, match=r'transform graph .* reads raw features the examples do not have: '
                                            r'company, .*the examples have: label, pixels'):
    provenance.check_transform_graph_reads_the_examples(
        GRAPH, statistics_of({'pixels': STATS_TYPE.FLOAT, 'label': STATS_TYPE.INT}), ['train', 'eval'])


def test_a_graph_reading_a_feature_with_another_type_fails_naming_it():
  types = dict(taxi_types(), trip_miles=STATS_TYPE.STRING)
  with pytest.raises(data.InputError, match=r'trip_miles \(FLOAT in the graph, STRING in the examples\)'):
    provenance.check_transform_graph_reads_the_examples(GRAPH, statistics_of(types), ['train', 'eval'])


def test_an_optional_raw_feature_may_be_absent(tmp_path):
  graph = str(tmp_path / 'graph')
  shutil.copytree(GRAPH, graph)
  schema = provenance.graph_schema(graph, provenance.RAW_SCHEMA)
  next(f for f in schema.feature if f.name == 'company').presence.min_fraction = 0.5
  io_utils.write_pbtxt_file(os.path.join(graph, provenance.RAW_SCHEMA), schema)
  types = {k: v for k, v in taxi_types().items() if k != 'company'}
  provenance.check_transform_graph_reads_the_examples(graph, statistics_of(types), ['train', 'eval'])


def test_testdata_transformed_examples_come_from_the_testdata_examples():
  assert provenance.check_transformed_examples(TRANSFORMED, GRAPH, COUNTS, {}) == []


def test_raw_examples_given_as_transformed_fail_naming_the_split():
  wired = dict(TRANSFORMED, eval=RAW['eval'])
  with pytest.raises(data.InputError, match=r"transformed examples of split 'eval' .* are not the output of the "
                                            r'transform graph .* lack its features company_xf'):
    provenance.check_transformed_examples(wired, GRAPH, COUNTS, {})


def test_transformed_examples_of_other_data_fail_on_the_count(tmp_path):
  """Another data set through the same graph: as many features, 10x the rows."""
  with pytest.raises(data.InputError, match=r"transformed examples \(given\) have 9909 examples in split 'train' but "
                                            r'the examples \(given\) have 800'):
    provenance.check_transformed_examples(TRANSFORMED, GRAPH, {'train': 800, 'eval': 5091}, {})


def test_a_count_difference_inside_the_tolerance_is_in_report_json_and_html():
  notes = provenance.check_transformed_examples(TRANSFORMED, GRAPH, {'train': 9909, 'eval': 5000}, {})
  assert notes == [{'input': 'transformed_examples', 'split': 'eval', 'listed': 5091, 'counted': 5000}]
  report = build_report({}, 'train', ['eval'], {'examples': 'x', 'count_differences': notes})
  page = render.report_html(report, {})
  assert 'transformed_examples' in page and '5091' in page and 'inside the tolerance' in page


def test_without_a_transformed_schema_the_counts_still_count(tmp_path):
  examples = write_splits(str(tmp_path), {'train': tabular_rows(30, 1), 'eval': tabular_rows(10, 2)})
  assert provenance.check_transformed_examples(examples, str(tmp_path / 'no-graph'), {'train': 30, 'eval': 10},
                                               {}) == []


# ---------------------------------------------------------------------------------------------------------------------
# Supplied statistics against the read pass's per-feature sketch.


def test_sketch_combine_fn_adds_presence_and_moments_per_feature():
  import pyarrow as pa

  from tfx_preflight.inputs import feature_sketch
  fn = feature_sketch.SketchCombineFn()
  first = pa.RecordBatch.from_arrays([pa.array([[1.0], None, [3.0, 5.0]]), pa.array([[b'a'], [b'b'], None])],
                                     ['x', 's'])
  second = pa.RecordBatch.from_arrays([pa.array([[2]], pa.list_(pa.int64()))], ['x'])
  merged = fn.merge_accumulators([fn.add_input(fn.create_accumulator(), first),
                                  fn.add_input(fn.create_accumulator(), second)])
  assert fn.extract_output(merged) == {'examples': 4, 'features': {'s': [2, 0, 0.0, 0.0],
                                                                   'x': [3, 4, 11.0, 39.0]}}


def _gate(tmp_path, beam_factory, examples, statistics_of_examples):
  import tensorflow_data_validation as tfdv

  from tfx_preflight import run
  from tfx_preflight.config import PreflightConfig
  statistics = {split: tfdv.generate_statistics_from_tfrecord(pattern)
                for split, pattern in statistics_of_examples.items()}
  config = PreflightConfig(label_key='label', leakage={'mode': 'off'}, loss={'mode': 'off'},
                           label_proxy={'mode': 'off'})
  inputs = run.PreflightInputs(examples=examples, statistics=statistics, provenance={'statistics': '/stats/7'})
  return run.run_checks(inputs, config, beam_factory, str(tmp_path / 'out')).to_dict()


def test_statistics_of_other_data_with_the_same_counts_fail_naming_the_feature(tmp_path, beam_factory):
  """The eval split really is skewed (f1 x255); statistics of another ExampleGen run (no skew, same counts) would
  have let the skew check bless it."""
  train = tabular_rows(300, 1)
  skewed = [dict(row, f1=row['f1'] * 255) for row in tabular_rows(100, 2)]
  examples = write_splits(str(tmp_path / 'examples'), {'train': train, 'eval': skewed})
  clean = write_splits(str(tmp_path / 'clean'), {'train': train, 'eval': tabular_rows(100, 2)})
  with pytest.raises(data.InputError, match=r"statistics \(/stats/7\) of split 'eval' do not describe these "
                                            r'examples .*f1: standard deviation'):
    _gate(tmp_path, beam_factory, examples, clean)
  result = _gate(tmp_path, beam_factory, examples, examples)  # Its own statistics: the skew is seen and blocks.
  assert result['checks']['skew']['status'] == 'block' and 'count_differences' not in result['inputs']


# ---------------------------------------------------------------------------------------------------------------------
# Transformed examples against the graph applied to a sample of raw examples (inside the probe).


def test_transformed_examples_hold_the_graph_output_of_a_raw_sample_and_other_rows_block(tmp_path):
  from tfx_preflight.checks.loss import check as loss
  from tfx_preflight.checks.loss import transformed as loss_transformed
  from tfx_preflight.checks.loss.compat import input_fn_argument
  from tfx_preflight.checks.loss.recorder import Probe
  from tfx_preflight.config import LossConfig

  def probe_of(transformed):
    inputs = loss.LossInputs(None, RAW, 'train', ('eval',), 'tips', transform_graph_uri=GRAPH, run_fn='m.run_fn',
                             transformed_examples=transformed)
    request = loss.build_request(inputs, LossConfig(), None, str(tmp_path))
    probe = Probe(request)
    loss_transformed.check_transformed_examples(probe, input_fn_argument(None, GRAPH), request.raw_examples,
                                                request.examples)
    return probe

  right = probe_of(TRANSFORMED)
  assert right.findings == [] and right.info['transformed_sample_found'] == {'train': 1.0, 'eval': 1.0}
  other_rows = probe_of(dict(TRANSFORMED, eval=TRANSFORMED['train']))  # Same graph, same features, other rows.
  assert [(f['code'], f['split'], f['found']) for f in other_rows.findings] == [
      ('transformed_examples_mismatch', 'eval', 0)]
