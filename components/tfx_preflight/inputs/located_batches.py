"""The read pass's element, and the transform that makes it: (file id, index of the batch's first record in its
file, decoded RecordBatch), and `SplitBatches`, what a consumer of the read pass is given. Defined here, below the read
pass and its consumers (leakage_beam, label_proxy_beam), so every consumer can name the types without importing the
read pass."""

from __future__ import annotations

import dataclasses
from typing import Iterator, Mapping, Sequence, Tuple

import apache_beam as beam
import pyarrow as pa

from tfx_preflight.inputs import records

LocatedBatch = Tuple[int, int, pa.RecordBatch]
Files = Tuple[Tuple[int, str], ...]  # (split id, path) by file id, as data.split_files lists them.


def batch_of(located: LocatedBatch) -> pa.RecordBatch:
  """The RecordBatch of a LocatedBatch, for consumers that need no location."""
  return located[2]

BATCH_SIZE = 8192


def _read_file(file_id: int, files: Tuple[Tuple[int, str], ...],
               batch_size: int) -> Iterator[LocatedBatch]:
  for start, batch in records.iter_record_batches(files[file_id][1], batch_size):
    yield file_id, start, batch


class ReadLocatedBatches(beam.PTransform):
  """The decoded batches of the files `file_ids` (indices into `files`), each located by (file id, first record
  index). One file per element after a Reshuffle, so files spread over workers (gzip is not splittable anyway)."""

  def __init__(self, files: Tuple[Tuple[int, str], ...], file_ids: Sequence[int], batch_size: int = BATCH_SIZE):
    super().__init__()
    self._files, self._file_ids, self._batch_size = files, sorted(file_ids), batch_size

  def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
    return (pbegin
            | 'FileIds' >> beam.Create(self._file_ids)
            | 'SpreadFiles' >> beam.Reshuffle()
            | 'ReadAndDecode' >> beam.FlatMap(_read_file, self._files, self._batch_size))


def split_of(located: LocatedBatch, num_splits: int, files: Files) -> int:
  """beam.Partition's function: the split id of a batch's file."""
  return files[located[0]][0]


@dataclasses.dataclass(frozen=True)
class SplitBatches:
  """The LocatedBatches of every split in one PCollection (`every`: a batch's file id names its split in `files`),
  and each split's alone (`batches[split]`), partitioned from `every` inside the same step. A consumer that treats
  every split alike takes `every` with one step: a runner materializes a Flatten of PCollections made by different
  steps (the DirectRunner always does), which costs one more encoding and decoding of everything flattened."""
  every: beam.PCollection
  by_split: Mapping[str, beam.PCollection]

  def __getitem__(self, split: str) -> beam.PCollection:
    return self.by_split[split]


def read_split_batches(pipeline: beam.Pipeline, files: Files, splits: Sequence[str]) -> SplitBatches:
  """Reads the files of `splits` (file split ids index `splits`) once, in one step, and partitions them by split."""
  every = pipeline | 'Read' >> ReadLocatedBatches(files, [i for i, (s, _) in enumerate(files) if s < len(splits)])
  parts = every | 'BySplit' >> beam.Partition(split_of, len(splits), files)
  return SplitBatches(every, {split: parts[i] for i, split in enumerate(splits)})
