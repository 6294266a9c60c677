"""The read pass's element, and the transform that makes it: (file id, index of the batch's first record in its
file, decoded RecordBatch). Defined here, below the read pass and its consumers (leakage_beam, label_proxy_beam), so
every consumer can name the type without importing the read pass."""

from __future__ import annotations

from typing import Iterator, Sequence, Tuple

import apache_beam as beam
import pyarrow as pa

from tfx_preflight.inputs import records

LocatedBatch = Tuple[int, int, pa.RecordBatch]


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
