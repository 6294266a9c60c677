"""statistics.py: statistics computed by the gate read like StatisticsGen's artifact, and StatisticsGen's own artifact
(the shipped taxi testdata) loads as TFDV reads its files."""

import os

import pytest
import tensorflow_data_validation as tfdv
import tfx
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.types import artifact_utils, standard_artifacts

from bench import tfdv_statistics
from tests.helpers import tabular_rows, write_splits
from tfx_preflight.inputs import statistics

TESTDATA_STATISTICS = os.path.join(os.path.dirname(tfx.__file__), 'components', 'testdata', 'statistics_gen')


def _artifact(uri: str, splits) -> standard_artifacts.ExampleStatistics:
  artifact = standard_artifacts.ExampleStatistics()
  artifact.uri = uri
  artifact.split_names = artifact_utils.encode_split_names(list(splits))
  return artifact


def test_statistics_gen_artifact_loads_as_tfdv_reads_its_files():
  loaded = statistics.load_artifact_statistics(_artifact(TESTDATA_STATISTICS, ['train', 'eval']), ['eval', 'train'])
  assert sorted(loaded) == ['eval', 'train']
  for split, proto in loaded.items():
    expected = tfdv.load_stats_binary(os.path.join(TESTDATA_STATISTICS, f'Split-{split}', 'FeatureStats.pb'))
    assert proto == expected and proto.datasets[0].num_examples > 0


def test_a_split_the_artifact_lacks_is_named():
  with pytest.raises(ValueError, match=r"has no split 'test'; it has: train, eval"):
    statistics.load_artifact_statistics(_artifact(TESTDATA_STATISTICS, ['train', 'eval']), ['train', 'test'])


def test_generated_statistics_read_back_as_an_example_statistics_artifact(tmp_path, beam_factory):
  patterns = write_splits(str(tmp_path / 'examples'), {'train': tabular_rows(60, 1), 'eval': tabular_rows(40, 2)})
  out = str(tmp_path / 'statistics')
  generated = tfdv_statistics.generate_statistics(patterns, beam_factory, out)

  assert os.path.exists(statistics.statistics_path(out, 'train'))
  as_artifact = statistics.load_artifact_statistics(_artifact(out, ['train', 'eval']), ['train', 'eval'])
  assert as_artifact == generated
  assert [statistics.default_slice(generated, s).num_examples for s in ('train', 'eval')] == [60, 40]


def test_default_slice_fails_closed_on_missing_or_empty_splits():
  loaded = statistics.load_artifact_statistics(_artifact(TESTDATA_STATISTICS, ['train', 'eval']), ['train'])
  with pytest.raises(ValueError, match=r"No statistics for split 'eval'; statistics have splits: train"):
    statistics.default_slice(loaded, 'eval')
  empty = statistics_pb2.DatasetFeatureStatisticsList()
  empty.datasets.add(name='All Examples', num_examples=0)
  with pytest.raises(ValueError, match=r"Split 'eval' has no examples"):
    statistics.default_slice({'eval': empty}, 'eval')
  one = statistics.default_slice(loaded, 'train')
  assert statistics.as_list(one).datasets[0] == one


TESTDATA_EXAMPLES = os.path.join(os.path.dirname(tfx.__file__), 'components', 'testdata', 'csv_example_gen')


def _summary(dataset: statistics_pb2.DatasetFeatureStatistics):
  """The numbers that do not depend on how examples were batched (quantiles and histograms are sketches)."""
  summary = {'num_examples': dataset.num_examples}
  for feature in dataset.features:
    which = feature.WhichOneof('stats')
    stats = getattr(feature, which)
    common = stats.common_stats
    row = (feature.type, common.num_non_missing, common.num_missing, common.min_num_values, common.max_num_values)
    if which == 'num_stats':
      row += (stats.min, stats.max, float(f'{stats.mean:.9g}'), stats.num_zeros)  # Summation order varies.
    else:
      row += (stats.unique,)
    summary['.'.join(feature.path.step)] = row
  return summary


def test_the_read_pass_statistics_equal_tfxios_on_the_same_examples(tmp_path, beam_factory):
  """One read feeding statistics and the other checks: on the shipped taxi Examples (12 gzipped shards per split),
  the statistics of our read and decode equal, number for number, those of StatisticsGen's way (TFXIO's BeamSource
  and its own batching, tfdv_statistics.generate_statistics), but for the sketches (quantiles, histograms)."""
  from tfx_preflight.inputs import read_pass
  examples = {split: os.path.join(TESTDATA_EXAMPLES, f'Split-{split}', '*') for split in ('train', 'eval')}
  out = str(tmp_path / 'statistics')
  request = read_pass.PassRequest(examples=examples, splits=('train', 'eval'), statistics_dir=out)
  computed = read_pass.run_pass(request, beam_factory).statistics
  tfxio = tfdv_statistics.generate_statistics(examples, beam_factory, str(tmp_path / 'tfxio'))
  for split in ('train', 'eval'):
    ours, theirs = (_summary(statistics.default_slice(s, split)) for s in (computed, tfxio))
    assert ours == theirs and ours['num_examples'] > 1000
  assert statistics.load_artifact_statistics(_artifact(out, ['train', 'eval']), ['train', 'eval']) == computed
