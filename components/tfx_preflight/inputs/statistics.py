"""TFDV statistics per split: computed once (as StatisticsGen would) or loaded from an ExampleStatistics artifact, and
read back as each split's whole-dataset slice. Shared by the skew check, the loss check's schema and the rendering.

TFDV and TFX imports are deferred: importing TFDV loads TensorFlow (~10 s), which the CLI's --help must not pay.
"""

from __future__ import annotations

import os
from typing import Dict, Mapping, Optional, Sequence

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from tfx_preflight import constants, file_writes

StatisticsBySplit = Mapping[str, statistics_pb2.DatasetFeatureStatisticsList]

# StatisticsGen's layout, so our statistics directory reads like an ExampleStatistics artifact.
STATS_FILE_NAME = constants.STATS_FILE_NAME


def tfdv():
  """The tensorflow_data_validation module, imported on first use."""
  import tensorflow_data_validation  # Imports TensorFlow (~10 s): only when statistics are really used.
  return tensorflow_data_validation


def statistics_path(output_dir: str, split: str) -> str:
  return os.path.join(output_dir, f'Split-{split}', STATS_FILE_NAME)


def stats_options(schema: Optional[schema_pb2.Schema] = None):
  """StatisticsGen's options: with a schema, categorical ints get categorical statistics."""
  tfdv_module = tfdv()
  return tfdv_module.StatsOptions(schema=schema) if schema is not None else tfdv_module.StatsOptions()


class WriteSplitStatistics(beam.PTransform):
  """RecordBatches of one split -> TFDV statistics written to `statistics_path(output_dir, split)` (the read pass's
  statistics branch: the batches are decoded once for every check, read_pass.py)."""

  def __init__(self, output_dir: str, split: str, schema: Optional[schema_pb2.Schema] = None):
    super().__init__()
    self._path, self._schema = statistics_path(output_dir, split), schema

  def expand(self, batches: beam.PCollection) -> beam.pvalue.PDone:
    tfdv_module = tfdv()
    return (batches
            | 'GenerateStatistics' >> tfdv_module.GenerateStatistics(stats_options(self._schema))
            | 'WriteStatistics' >> tfdv_module.WriteStatisticsToBinaryFile(self._path))


class WriteSlicedStatistics(beam.PTransform):
  """(slice key, RecordBatch) pairs -> one statistics list holding a dataset per slice key, written to `path`.

  TFDV's own sliced-statistics transform (what GenerateStatistics runs after its slicing functions, and TFDV's
  example validation with its anomaly slices): every slice shares one set of combiners, so many small slices cost
  little more than their examples, where a GenerateStatistics per slice pays its fixed cost for each.
  """

  def __init__(self, path: str, schema: Optional[schema_pb2.Schema] = None):
    super().__init__()
    self._path, self._schema = path, schema

  def expand(self, sliced: beam.PCollection) -> beam.pvalue.PDone:
    from tensorflow_data_validation.statistics import stats_impl  # With TFDV: heavy import.
    return (sliced
            | 'GenerateSlicedStatistics' >> stats_impl.GenerateSlicedStatisticsImpl(stats_options(self._schema),
                                                                                    is_slicing_enabled=True)
            | 'WriteStatistics' >> tfdv().WriteStatisticsToBinaryFile(self._path))


def load_slices(path: str) -> Dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
  """What `WriteSlicedStatistics` wrote: slice key -> that slice alone (unnamed, as a split's statistics are)."""
  result = {}
  for dataset in tfdv().load_stats_binary(path).datasets:
    alone = statistics_pb2.DatasetFeatureStatisticsList()
    alone.datasets.add().CopyFrom(dataset)
    alone.datasets[0].name = ''
    result[dataset.name] = alone
  return result


def load_statistics(output_dir: str, splits: Sequence[str]) -> Dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
  """What `WriteSplitStatistics` wrote, by split."""
  return {split: tfdv().load_stats_binary(statistics_path(output_dir, split)) for split in sorted(splits)}


def write_statistics(statistics: StatisticsBySplit, output_dir: str) -> None:
  """Writes each split's statistics as StatisticsGen does (`Split-<split>/FeatureStats.pb`, a binary
  DatasetFeatureStatisticsList), e.g. into Preflight's `example_statistics` output for SchemaGen."""
  for split, proto in sorted(statistics.items()):
    file_writes.write_atomically(statistics_path(output_dir, split), proto.SerializeToString())


def load_artifact_statistics(statistics, splits: Sequence[str]
                             ) -> Dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
  """The statistics of `splits` from an ExampleStatistics artifact (StatisticsGen's output); names the missing split."""
  from tfx.components.statistics_gen import stats_artifact_utils
  from tfx.types import artifact_utils
  available = artifact_utils.decode_split_names(statistics.split_names)
  result = {}
  for split in splits:
    if split not in available:
      raise ValueError(f'The statistics artifact {statistics.uri} has no split {split!r}; it has: '
                       f'{", ".join(available)}.')
    result[split] = stats_artifact_utils.load_statistics(statistics, split).proto()
  return result


def whole_split(statistics: statistics_pb2.DatasetFeatureStatisticsList
                ) -> Optional[statistics_pb2.DatasetFeatureStatistics]:
  """One split's whole-dataset slice (TFDV's default slice: the only dataset, or 'All Examples'), or None."""
  view = tfdv().DatasetListView(statistics).get_default_slice()
  return view.proto() if view is not None else None


def default_slice(statistics: StatisticsBySplit, split: str) -> statistics_pb2.DatasetFeatureStatistics:
  """The split's whole-dataset statistics; fails closed on anything that cannot be compared."""
  if statistics is None or split not in statistics:
    raise ValueError(f'No statistics for split {split!r}; statistics have splits: '
                     f'{", ".join(sorted(statistics or {})) or "(none)"}.')
  dataset = whole_split(statistics[split])
  if dataset is None:
    raise ValueError(f'The statistics of split {split!r} have no whole-dataset slice.')
  if dataset.num_examples <= 0 and dataset.weighted_num_examples <= 0:
    raise ValueError(f'Split {split!r} has no examples: nothing to compare.')
  return dataset


def as_list(dataset: statistics_pb2.DatasetFeatureStatistics) -> statistics_pb2.DatasetFeatureStatisticsList:
  """One dataset wrapped as the list TFDV's validation API takes."""
  result = statistics_pb2.DatasetFeatureStatisticsList()
  result.datasets.add().CopyFrom(dataset)
  return result
