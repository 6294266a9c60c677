"""The skew check's Beam part for span windows: TFDV statistics of each (split, span), from the read pass's batches.

A window (two or more Examples artifacts) is compared as one union by the skew check; spans.py then compares every
span with the others. Their statistics come from the same decoded batches as the union's (no second read): each
batch of a split with a window keyed by the artifact its file belongs to (one step over every split's batches, so no
Flatten is materialized), summarized in one sliced statistics transform.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
import pyarrow as pa
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from tfx_preflight import file_io
from tfx_preflight.inputs import statistics as statistics_lib
from tfx_preflight.inputs.located_batches import LocatedBatch, SplitBatches


def _span_key(split_id: int, span: int) -> str:
  return f'{split_id}/{span}'


def _keyed_by_span(located: LocatedBatch, key_of: Mapping[int, str]) -> Iterable[Tuple[str, pa.RecordBatch]]:
  """(split/span key, batch) for a batch of a split with a window; nothing for the others."""
  key = key_of.get(located[0])
  if key is not None:
    yield key, located[2]


@dataclasses.dataclass(frozen=True)
class SpanStatisticsReadPart:
  """Statistics of each Examples artifact of a window, split by split (inputs/read_pass.ReadPart): `spans` maps a
  split to one tuple of file paths per artifact (the paths data.split_files lists)."""
  output_dir: str
  spans: Mapping[str, Tuple[Tuple[str, ...], ...]]
  schema: Optional[schema_pb2.Schema] = None
  label: str = 'span statistics'

  @property
  def path(self) -> str:
    return os.path.join(self.output_dir, 'span_statistics.pb')

  def span_splits(self, splits: Sequence[str]) -> List[str]:
    """The splits whose batches are also summarized per span: those with files of two or more spans."""
    return [split for split in splits if len(self.spans.get(split, ())) >= 2]

  def prepare(self) -> None:
    file_io.makedirs(self.output_dir)

  def expand(self, batches: SplitBatches, splits: Tuple[str, ...], files: Tuple[Tuple[int, str], ...]) -> None:
    key_of = {}
    for split in self.span_splits(splits):
      split_id = splits.index(split)
      key_of.update({file_id: _span_key(split_id, k) for file_id, (s, path) in enumerate(files) if s == split_id
                     for k, paths in enumerate(self.spans[split]) if path in paths})
    _ = (batches.every
         | 'BySpan' >> beam.FlatMap(_keyed_by_span, key_of)
         | 'SpanStatistics' >> statistics_lib.WriteSlicedStatistics(self.path, self.schema))

  def collect(self, splits: Tuple[str, ...]) -> Dict[str, List[statistics_pb2.DatasetFeatureStatisticsList]]:
    """split -> one statistics list per Examples artifact (in `spans`' order), for the splits it covers."""
    slices = statistics_lib.load_slices(self.path)
    return {split: [slices[_span_key(splits.index(split), k)] for k in range(len(self.spans[split]))]
            for split in self.span_splits(splits)}

  def examples_read(self, output, splits: Sequence[str]) -> None:
    return None
