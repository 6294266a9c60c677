"""Reading tf.Example TFRecord files strictly: every record's checksums verified, gzip detected from the bytes, and a
truncated or corrupted file always an error that names it.

Why not `beam.io.ReadFromTFRecord` (which StatisticsGen uses through TFXIO): Beam's gzip reader does not check that
the compressed stream reached its end marker, so a gzipped file cut off at a record boundary (about one cut in ten,
measured) reads as a shorter, valid file and the rest of the split silently disappears. A gate must not check less
data than it was given, so the statistics, the hashing and the up-front probe all read through this module.

Batches keep the index of their first record, so a duplicate can be reported as (file, record index), which TFXIO's
RecordBatches do not carry; the benchmark's single-process floor uses the same functions.
"""

from __future__ import annotations

import contextlib
import gzip
import struct
import zlib
from typing import Iterable, Iterator, List, Tuple

import apache_beam as beam
import pyarrow as pa

_HEADER = struct.Struct('<QI')
_FOOTER = struct.Struct('<I')
_CHUNK = 8 << 20
_GZIP_MAGIC = b'\x1f\x8b'
# Records gathered per step when they are handed on one by one (read_records).
_FLAT_BATCH_SIZE = 1024


def _masked_crc(data: bytes) -> int:
  import google_crc32c  # C implementation; ships with the Beam/GCS stack.
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + 0xa282ead8) & 0xffffffff


def _is_gzip(handle) -> bool:
  """True when the stream is gzip; rewinds the stream.

  gzip's magic bytes alone are not proof: an uncompressed TFRecord whose first record is 35,615 bytes long (or any
  length whose low bytes are 1f 8b) starts with them too. Such a file's first 12 bytes are a length and its masked
  CRC, which a gzip header matches with probability 2^-32, so a valid length checksum means 'not gzip'."""
  head = handle.read(12)
  handle.seek(0)
  if head[:2] != _GZIP_MAGIC:
    return False
  return not (len(head) == 12 and _masked_crc(head[:8]) == struct.unpack('<I', head[8:12])[0])


def _open_raw(path: str):
  """Local files with open(), URLs (gs://...) with Beam's filesystems: neither imports TensorFlow into workers."""
  if '://' in path:
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
  return open(path, 'rb')  # noqa: SIM115


def is_gzip_file(path: str) -> bool:
  """True when the file starts with gzip's magic bytes, whatever its name says."""
  with _open_raw(path) as handle:
    return _is_gzip(handle)


@contextlib.contextmanager
def _open(path: str):
  """The file's TFRecord bytes: gzipped files (by their magic bytes) are gunzipped; Python's gzip raises EOFError
  when the stream is cut short."""
  handle = _open_raw(path)
  try:
    if _is_gzip(handle):  # By content: a gzipped shard need not end in .gz.
      with gzip.GzipFile(fileobj=handle, mode='rb') as unzipped:
        yield unzipped
    else:
      yield handle
  finally:
    handle.close()


def _read(f, size: int, path: str, index: int) -> bytes:
  try:
    return f.read(size)
  except (EOFError, OSError, zlib.error) as e:  # Truncated gzip stream, bad gzip header or deflate data.
    raise ValueError(f'{path}: damaged gzip stream before record {index}: {type(e).__name__}: {e}') from e


def iter_records(path: str, batch_size: int, verify_crc: bool = True,
                 chunk_size: int = _CHUNK) -> Iterator[Tuple[int, List[bytes]]]:
  """Yields (index of the first record, serialized records) in batches, reading the TFRecord file sequentially.

  Truncated files (also a gzip stream without its end marker) and checksum errors raise ValueError naming the file
  and the record index. `chunk_size` bytes are read at a time (more when one record is longer).
  """
  with _open(path) as f:
    buffer = b''
    position = 0
    index = 0
    batch: List[bytes] = []
    start = 0
    eof = False
    while True:
      if len(buffer) - position < _HEADER.size and not eof:
        chunk = _read(f, chunk_size, path, index)
        eof = not chunk
        buffer = buffer[position:] + chunk
        position = 0
        continue
      if len(buffer) - position == 0 and eof:
        break
      if len(buffer) - position < _HEADER.size:
        raise ValueError(f'{path}: truncated TFRecord header at record {index}')
      length, length_crc = _HEADER.unpack_from(buffer, position)
      if verify_crc and _masked_crc(buffer[position:position + 8]) != length_crc:
        raise ValueError(f'{path}: corrupted TFRecord (length checksum mismatch) at record {index}')
      end = position + _HEADER.size + length + _FOOTER.size
      if end > len(buffer):
        if eof:
          raise ValueError(f'{path}: truncated TFRecord at record {index}')
        chunk = _read(f, max(chunk_size, end - len(buffer)), path, index)
        eof = not chunk
        buffer = buffer[position:] + chunk
        position = 0
        continue
      data = buffer[position + _HEADER.size:end - _FOOTER.size]
      if verify_crc and _masked_crc(data) != _FOOTER.unpack_from(buffer, end - _FOOTER.size)[0]:
        raise ValueError(f'{path}: corrupted TFRecord (data checksum mismatch) at record {index}')
      batch.append(data)
      position = end
      index += 1
      if len(batch) >= batch_size:
        yield start, batch
        batch, start = [], index
    if batch:
      yield start, batch


def iter_record_batches(path: str, batch_size: int = 8192) -> Iterator[Tuple[int, pa.RecordBatch]]:
  """Yields (index of the first record, RecordBatch) decoded with tfx-bsl's schema-less tf.Example decoder."""
  from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder
  decoder = ExamplesToRecordBatchDecoder()
  for start, records in iter_records(path, batch_size):
    try:
      yield start, decoder.DecodeBatch(records)
    except Exception as e:  # The C++ decoder raises RuntimeError/ValueError alike.
      raise ValueError(f'{path}: records {start}..{start + len(records) - 1} are not valid tf.Examples: {e}') from e


def read_records(path: str, batch_size: int = _FLAT_BATCH_SIZE, chunk_size: int = _CHUNK) -> Iterator[bytes]:
  """Every serialized record of the file, one by one (`iter_records` without the batching)."""
  for _, batch in iter_records(path, batch_size, chunk_size=chunk_size):
    yield from batch


class ReadRecords(beam.PTransform):
  """The serialized records of `files`, read strictly (see the module docstring); a drop-in for ReadFromTFRecord.

  One file per element after a Reshuffle, so files spread over workers (gzip is not splittable anyway, and neither
  is Beam's own TFRecord source).
  """

  def __init__(self, files: List[str]):
    super().__init__()
    self._files = sorted(files)

  def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
    return (pbegin
            | 'Files' >> beam.Create(self._files)
            | 'SpreadFiles' >> beam.Reshuffle()
            | 'ReadStrictly' >> beam.FlatMap(read_records))


def write_tfrecord(path: str, serialized: Iterable[bytes]) -> None:
  """An uncompressed TFRecord file (length, masked CRCs: the framing `iter_records` checks), written with Beam's
  filesystems so `path` may be remote."""
  with beam.io.filesystems.FileSystems.create(path) as handle:
    for data in serialized:
      length = struct.pack('<Q', len(data))
      handle.write(length + _FOOTER.pack(_masked_crc(length)) + data + _FOOTER.pack(_masked_crc(data)))
