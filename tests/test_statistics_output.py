"""Preflight's `example_statistics` output (output_statistics=True) against StatisticsGen's own executor on the same
Examples artifact: equal feature by feature, with the same artifact properties, so SchemaGen can read either.

What legitimately differs: a numeric feature's `mean` and `std_dev` in their last bits (relative 1e-15 on taxi).
TFDV sums each batch and then the batches; StatisticsGen's TFXIO source batches examples its own way (Beam's
BatchElements), the gate's read pass by file and 8,192 records, so the sums are added in another order. Every count,
min, max, quantile, histogram bucket and top value is exactly equal: at these sizes TFDV's quantile sketches hold
every value, whatever the batching.
"""

import math
import os

import pytest
import tensorflow_data_validation as tfdv
import tfx
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx import types
from tfx.components.statistics_gen import executor as statistics_gen_executor
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from pipelines import penguin
from tests.helpers import tabular_rows, write_splits
from tfx_preflight import Preflight, executor, spec
from tfx_preflight.artifacts import PreflightBlessing, PreflightReport
from tfx_preflight.config import PreflightConfig

TAXI_EXAMPLES = os.path.join(os.path.dirname(tfx.__file__), 'components', 'testdata', 'csv_example_gen')
_SPLITS = ['train', 'eval']
# Summed in another order (see the module docstring): the only fields compared with a tolerance.
_SUMMED = ('mean', 'std_dev')
_RELATIVE_TOLERANCE = 1e-12


def _artifact(kind, uri, splits=None):
  artifact = kind()
  artifact.uri = uri
  if splits is not None:
    artifact.split_names = artifact_utils.encode_split_names(splits)
  return artifact


def _schema_artifact(tmp_path):
  """Penguin's schema with `species` (an int) made categorical, so that the schema changes the statistics: species
  gets string statistics (top values) instead of numeric ones."""
  proto = io_utils.SchemaReader().read(penguin.SCHEMA_FILE)
  tfdv.get_feature(proto, penguin.LABEL_KEY).int_domain.is_categorical = True
  schema = _artifact(standard_artifacts.Schema, str(tmp_path / 'schema'))
  io_utils.write_pbtxt_file(os.path.join(schema.uri, 'schema.pbtxt'), proto)
  return schema


def _statistics_gen(examples, schema, out):
  statistics = _artifact(standard_artifacts.ExampleStatistics, out)
  statistics_gen_executor.Executor().Do({'examples': [examples], **({'schema': [schema]} if schema else {})},
                                        {'statistics': [statistics]}, {})
  return statistics


def _preflight(examples, schema, root):
  statistics = _artifact(standard_artifacts.ExampleStatistics, os.path.join(root, 'statistics'))
  report = _artifact(PreflightReport, os.path.join(root, 'report'))
  blessing = _artifact(PreflightBlessing, os.path.join(root, 'blessing'))
  executor.Executor().Do({spec.EXAMPLES_KEY: [examples], **({spec.SCHEMA_KEY: [schema]} if schema else {})},
                         {spec.REPORT_KEY: [report], spec.BLESSING_KEY: [blessing],
                          spec.EXAMPLE_STATISTICS_KEY: [statistics]},
                         {spec.CONFIG_KEY: PreflightConfig().to_json()})
  return statistics


def _without_sums(feature: statistics_pb2.FeatureNameStatistics) -> statistics_pb2.FeatureNameStatistics:
  rest = statistics_pb2.FeatureNameStatistics()
  rest.CopyFrom(feature)
  if rest.HasField('num_stats'):
    for field in _SUMMED:
      rest.num_stats.ClearField(field)
  return rest


def _assert_equal_feature_by_feature(ours: statistics_pb2.DatasetFeatureStatisticsList,
                                     theirs: statistics_pb2.DatasetFeatureStatisticsList, split: str) -> int:
  """Every feature's statistics equal (num_stats or string_stats: counts, quantiles, histograms, top values), the
  sums within _RELATIVE_TOLERANCE; returns the number of features compared."""
  assert len(ours.datasets) == len(theirs.datasets) == 1
  ours, theirs = ours.datasets[0], theirs.datasets[0]
  assert (ours.name, ours.num_examples, ours.weighted_num_examples) == (
      theirs.name, theirs.num_examples, theirs.weighted_num_examples)
  by_path = {tuple(f.path.step): f for f in theirs.features}
  assert sorted(tuple(f.path.step) for f in ours.features) == sorted(by_path)
  for feature in ours.features:
    expected = by_path[tuple(feature.path.step)]
    name = f'{split}/{".".join(feature.path.step)}'
    assert feature.WhichOneof('stats') == expected.WhichOneof('stats'), name
    assert _without_sums(feature) == _without_sums(expected), name
    for field in _SUMMED:
      assert math.isclose(getattr(feature.num_stats, field), getattr(expected.num_stats, field),
                          rel_tol=_RELATIVE_TOLERANCE), (name, field)
  return len(ours.features)


@pytest.mark.parametrize('data', ['taxi', 'penguin_with_schema'])
def test_the_example_statistics_output_equals_statistics_gens(tmp_path, data):
  """Taxi (12 gzipped shards per split, 9,909 / 5,091 examples, ints, floats and strings) without a schema; penguin
  with a schema, which StatisticsGen and the gate both pass to TFDV (a categorical int gets string statistics)."""
  root = TAXI_EXAMPLES if data == 'taxi' else os.path.join(penguin.TESTDATA_DIR, 'data')
  examples = _artifact(standard_artifacts.Examples, root, _SPLITS)
  schema = _schema_artifact(tmp_path) if data == 'penguin_with_schema' else None
  theirs = _statistics_gen(examples, schema, str(tmp_path / 'statistics_gen'))
  ours = _preflight(examples, schema, str(tmp_path / 'preflight'))

  assert ours.split_names == theirs.split_names
  assert ours.span == theirs.span
  assert ours.get_json_value_custom_property('sample_rate_by_split') == theirs.get_json_value_custom_property(
      'sample_rate_by_split')
  compared = 0
  for split in _SPLITS:
    # Loaded as SchemaGen and ExampleValidator load them, from the artifact.
    mine, gens = (stats_artifact_utils.load_statistics(a, split).proto() for a in (ours, theirs))
    assert os.path.exists(os.path.join(ours.uri, f'Split-{split}', 'FeatureStats.pb'))
    compared += _assert_equal_feature_by_feature(mine, gens, split)
    assert tfdv.infer_schema(mine, infer_feature_shape=True) == tfdv.infer_schema(gens, infer_feature_shape=True)
  assert compared == (2 * 18 if data == 'taxi' else 2 * 5)
  if schema is not None:
    species = tfdv.get_feature_stats(stats_artifact_utils.load_statistics(ours, 'train').proto().datasets[0],
                                     tfdv.FeaturePath([penguin.LABEL_KEY]))
    assert species.WhichOneof('stats') == 'string_stats'  # The schema was used.


def test_statistics_given_and_asked_for_as_an_output_is_refused_when_the_pipeline_is_built():
  examples = types.Channel(type=standard_artifacts.Examples)
  statistics = types.Channel(type=standard_artifacts.ExampleStatistics)
  with pytest.raises(ValueError, match=r'output_statistics=True .* `statistics` are given as well'):
    Preflight(examples=examples, statistics=statistics, output_statistics=True)
  assert spec.EXAMPLE_STATISTICS_KEY not in Preflight(examples=examples, statistics=statistics).outputs
  emitting = Preflight(examples=examples, output_statistics=True)
  assert emitting.outputs[spec.EXAMPLE_STATISTICS_KEY].type == standard_artifacts.ExampleStatistics


@pytest.mark.slow
def test_a_span_window_emits_the_statistics_of_the_union_even_when_no_check_needs_them(tmp_path):
  """Two Examples artifacts (a span window) and the skew check off: the statistics are computed for the output alone,
  of the union Trainer reads, with the newest span; report.json says skew was off, as without the output."""
  spans = []
  for span, seed in ((4, 1), (5, 2)):
    root = str(tmp_path / f'span-{span}')
    rows = tabular_rows(100, seed, offset=1000 * span)
    write_splits(root, {'train': rows[:80], 'eval': rows[80:]})
    spans.append(_artifact(standard_artifacts.Examples, root, _SPLITS))
    spans[-1].span = span
  statistics = _artifact(standard_artifacts.ExampleStatistics, str(tmp_path / 'statistics'))
  executor.Executor().Do({spec.EXAMPLES_KEY: spans[::-1]},
                         {spec.REPORT_KEY: [_artifact(PreflightReport, str(tmp_path / 'report'))],
                          spec.BLESSING_KEY: [_artifact(PreflightBlessing, str(tmp_path / 'blessing'))],
                          spec.EXAMPLE_STATISTICS_KEY: [statistics]},
                         {spec.CONFIG_KEY: PreflightConfig(skew={'mode': 'off'}, label_key='label').to_json()})
  assert artifact_utils.decode_split_names(statistics.split_names) == _SPLITS and statistics.span == 5
  counts = {split: stats_artifact_utils.load_statistics(statistics, split).proto().datasets[0].num_examples
            for split in _SPLITS}
  assert counts == {'train': 160, 'eval': 40}
  assert (tmp_path / 'report' / 'report.json').read_text().count('"skew.mode is off"') == 1


def test_run_refuses_statistics_given_and_asked_for_as_an_output(tmp_path, beam_factory):
  """The same rule on plain values (a hand-built executor call): nothing is computed or written."""
  from tfx_preflight import run
  from tfx_preflight.config import ConfigError
  patterns = write_splits(str(tmp_path / 'examples'), {'train': tabular_rows(20, 1), 'eval': tabular_rows(10, 2)})
  given = {split: statistics_pb2.DatasetFeatureStatisticsList() for split in _SPLITS}
  inputs = run.PreflightInputs(examples=patterns, statistics=given, statistics_output=str(tmp_path / 'out'))
  with pytest.raises(ConfigError, match='statistics are given and also asked for as an output'):
    run.run_checks(inputs, PreflightConfig(), beam_factory, str(tmp_path / 'report'))
  assert not (tmp_path / 'out').exists()
