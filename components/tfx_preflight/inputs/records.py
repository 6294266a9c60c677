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

import concurrent.futures
import contextlib
import gzip
import os
import struct
import threading
import zlib
from typing import Iterable, Iterator, List, Optional, Tuple

import apache_beam as beam
import numpy as np
import pyarrow as pa

_HEADER = struct.Struct('<QI')
_LENGTH = struct.Struct('<Q')
_FOOTER = struct.Struct('<I')
_CHUNK = 8 << 20
_GZIP_MAGIC = b'\x1f\x8b'
# Records gathered per step when they are handed on one by one (read_records).
_FLAT_BATCH_SIZE = 1024
# Records per call of tfx-bsl's decoder (decode_examples): its cost per record is lowest around 1-2k.
DECODE_ROWS = 1024
# Decoder threads per process (decode_examples), shared by every reader in it.
_MAX_DECODE_THREADS = 4
_DECODE_POOL: Optional[concurrent.futures.ThreadPoolExecutor] = None
_DECODE_AHEAD_POOL: Optional[concurrent.futures.ThreadPoolExecutor] = None
_THREAD_DECODERS = threading.local()


class PayloadError(ValueError):
  """A record that is not a tf.Example (a tf.SequenceExample, another proto, not a proto at all)."""


def _crc32c(data: bytes) -> int:
  import google_crc32c  # C implementation; ships with the Beam/GCS stack.
  return google_crc32c.value(data)


def _masked_crc(data: bytes) -> int:
  crc = _crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xa282ead8) & 0xffffffff


def _crc32c_table() -> np.ndarray:
  """The byte-at-a-time table of CRC-32C (Castagnoli, reflected polynomial 0x82f63b78)."""
  crc = np.arange(256, dtype=np.uint32)
  for _ in range(8):
    crc = np.where(crc & 1, (crc >> 1) ^ np.uint32(0x82f63b78), crc >> 1).astype(np.uint32)
  return crc


_CRC32C_TABLE = _crc32c_table()


def _mask(crc: np.ndarray) -> np.ndarray:
  """TFRecord's checksum masking of uint32 CRCs (wraps mod 2^32 like the scalar _masked_crc)."""
  return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(0xa282ead8)


def _masked_crc32c_8(rows: np.ndarray) -> np.ndarray:
  """Masked CRC-32C of every row of an (n, 8) uint8 array (the records' length fields), eight table steps for all
  rows at once instead of one C call per record."""
  crc = np.full(len(rows), 0xffffffff, dtype=np.uint32)
  for k in range(rows.shape[1]):
    crc = _CRC32C_TABLE[(crc ^ rows[:, k]) & np.uint32(0xff)] ^ (crc >> np.uint32(8))
  return _mask(crc ^ np.uint32(0xffffffff))


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


class _ReadAhead:
  """Reads the next chunk in a thread while the caller frames, checks and decodes the last one: gunzip (zlib releases
  the GIL while it inflates) runs on another core. Reads stay sequential, so the bytes are those of plain reads."""

  def __init__(self, f, chunk_size: int):
    self._f = f
    self._chunk_size = chunk_size
    self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='tfrecord-read-ahead')
    self._next: Optional[concurrent.futures.Future] = self._pool.submit(f.read, chunk_size)

  def read(self, size: int) -> bytes:
    """`size` bytes (fewer at the end): the chunk read ahead, topped up for a record longer than a chunk."""
    data = self._next.result() if self._next is not None else b''  # Re-raises the read's own error.
    self._next = None
    if data and len(data) < size:
      data += self._f.read(size - len(data))
    if data:
      self._next = self._pool.submit(self._f.read, self._chunk_size)
    return data

  def close(self) -> None:
    """Waits for a read in flight (at most one chunk) so the file can be closed under it."""
    self._pool.shutdown(wait=True)


def iter_records(path: str, batch_size: int, verify_crc: bool = True,
                 chunk_size: int = _CHUNK) -> Iterator[Tuple[int, List[bytes]]]:
  """Yields (index of the first record, serialized records) in batches, reading the TFRecord file sequentially.

  Truncated files (also a gzip stream without its end marker) and checksum errors raise ValueError naming the file
  and the record index. `chunk_size` bytes are read at a time (more when one record is longer). Per chunk, only the
  walk from one length field to the next is a Python loop; the checksums are checked for the whole chunk at once.
  """
  with _open(path) as f, contextlib.closing(_ReadAhead(f, chunk_size)) as ahead:
    buffer = b''
    index = 0  # Records of the file before `buffer`.
    pending: List[bytes] = []
    start = 0
    eof = False
    wanted = chunk_size
    while not eof:
      chunk = _read(ahead, wanted, path, index)
      eof = not chunk
      buffer += chunk
      starts, serialized, position = _walk(buffer)
      if starts:
        pending.extend(_checked(buffer, starts, serialized, path, index) if verify_crc else serialized)
        _check_payloads(buffer, starts, serialized, path, index)
        index += len(starts)
        buffer = buffer[position:]
      wanted = _next_read_size(buffer, chunk_size, path, index, eof)
      while len(pending) >= batch_size:
        yield start, pending[:batch_size]
        pending, start = pending[batch_size:], start + batch_size
    if pending:
      yield start, pending


def _walk(buffer: bytes) -> Tuple[List[int], List[bytes], int]:
  """The offsets and data of the complete records at the front of `buffer`, and where the first incomplete one
  begins (one Python step per record: the rest of the framing is done per chunk in numpy). Bound methods and one
  bounds test per record: 0.50 -> 0.39 us per record, every record of every split goes through here."""
  starts: List[int] = []
  serialized: List[bytes] = []
  unpack, add_start, add_record = _LENGTH.unpack_from, starts.append, serialized.append
  header, footer = _HEADER.size, _FOOTER.size
  position, size = 0, len(buffer)
  last_header = size - header
  while position <= last_header:
    begin = position + header
    end = begin + unpack(buffer, position)[0]
    if end + footer > size:
      break
    add_start(position)
    add_record(buffer[begin:end])
    position = end + footer
  return starts, serialized, position


def _checked(buffer: bytes, starts: List[int], serialized: List[bytes], path: str, first_index: int) -> List[bytes]:
  """`serialized` (the records at `starts`) once every length and data checksum holds; raises at the first record
  whose checksum is wrong."""
  import google_crc32c
  view = np.frombuffer(buffer, dtype=np.uint8)
  offsets = np.asarray(starts, dtype=np.int64)
  headers = view[offsets[:, None] + np.arange(_HEADER.size)]
  lengths = headers[:, :8].copy().view('<u8')[:, 0].astype(np.int64)
  data_ends = offsets + _HEADER.size + lengths
  length_ok = _masked_crc32c_8(headers[:, :8]) == headers[:, 8:].copy().view('<u4')[:, 0]
  stored = view[data_ends[:, None] + np.arange(_FOOTER.size)].copy().view('<u4')[:, 0]
  data_ok = _mask(np.fromiter(map(google_crc32c.value, serialized), dtype=np.uint32, count=len(serialized))) == stored
  if not (length_ok.all() and data_ok.all()):
    bad = int(np.flatnonzero(~(length_ok & data_ok))[0])
    problem = 'length checksum mismatch' if not length_ok[bad] else 'data checksum mismatch'
    raise ValueError(f'{path}: corrupted TFRecord ({problem}) at record {first_index + bad}')
  return serialized


def payload_problem(record: bytes) -> Optional[str]:
  """None when `record` is a tf.Example; else what it is. A tf.SequenceExample parses as a tf.Example holding only
  its context (its feature_lists land in unknown fields), so 100% copied sequences would look clean: any field a
  tf.Example does not have means another payload. Raises on bytes that are no proto at all."""
  from tensorflow.core.example import example_pb2
  example = example_pb2.Example.FromString(record)
  if not len(example.UnknownFields()):
    return None
  try:
    if example_pb2.SequenceExample.FromString(record).feature_lists.feature_list:
      return ('a tf.SequenceExample (payload FORMAT_TF_SEQUENCE_EXAMPLE): read as a tf.Example only its context '
              'would be checked, its feature_lists silently dropped')
  except Exception:  # pylint: disable=broad-except  # Not a SequenceExample either: say so below.
    pass
  return 'not a tf.Example (it holds fields a tf.Example does not have: another proto or payload format)'


def _in_example_form(view: np.ndarray, starts: List[int]) -> np.ndarray:
  """True for each record (at `starts` in `view`) serialized as a tf.Example is: empty, or one field 1 (`features`)
  whose length prefix spans the whole record. A tf.SequenceExample's feature_lists (field 2) or any other field breaks
  this form; reading the tag and the varint length of every record at once costs a few numpy steps per chunk."""
  begins = np.asarray(starts, dtype=np.int64) + _HEADER.size
  lengths = view[(begins - _HEADER.size)[:, None] + np.arange(8)].copy().view('<u8')[:, 0].astype(np.int64)
  head = view[np.minimum(begins[:, None] + np.arange(6), len(view) - 1)].astype(np.int64)  # Tag, up to 5 varint bytes.
  value = np.zeros(len(starts), dtype=np.int64)
  size = np.zeros(len(starts), dtype=np.int64)
  done = np.zeros(len(starts), dtype=bool)
  for k in range(5):
    byte = head[:, 1 + k]
    value |= np.where(done, 0, (byte & 0x7f) << (7 * k))
    size += ~done
    done |= (byte & 0x80) == 0
  return (lengths == 0) | ((head[:, 0] == 0x0a) & done & (1 + size + value == lengths))


def _check_payloads(buffer: bytes, starts: List[int], serialized: List[bytes], path: str, first_index: int) -> None:
  """Raises PayloadError at the first record that is not a tf.Example: every record is checked, not only a file's
  first ones (a file may switch to tf.SequenceExamples half-way); the few records not in tf.Example's own form are
  parsed to tell."""
  suspects = np.flatnonzero(~_in_example_form(np.frombuffer(buffer, dtype=np.uint8), starts))
  for i in suspects.tolist():
    try:
      problem = payload_problem(serialized[i])
    except Exception as e:  # pylint: disable=broad-except  # Not a protocol buffer at all.
      problem = f'not a tf.Example (not a protocol buffer: {type(e).__name__})'
    if problem:
      raise PayloadError(f'{path} record {first_index + i} is {problem}. Preflight reads tf.Example payloads only '
                         'and refuses to check anything else as if it were one.')


def _next_read_size(buffer: bytes, chunk_size: int, path: str, index: int, eof: bool) -> int:
  """Bytes to read next for the incomplete record left in `buffer`; raises when it is damaged or cut short.

  Its length is trusted only once its checksum holds (even without verify_crc: one check per chunk), so a corrupted
  length never makes the reader ask for exabytes."""
  if len(buffer) >= _HEADER.size:
    length, length_crc = _HEADER.unpack_from(buffer, 0)
    if _masked_crc(buffer[:8]) != length_crc:
      raise ValueError(f'{path}: corrupted TFRecord (length checksum mismatch) at record {index}')
    if eof:
      raise ValueError(f'{path}: truncated TFRecord at record {index}')
    return max(chunk_size, _HEADER.size + length + _FOOTER.size - len(buffer))
  if eof and buffer:
    raise ValueError(f'{path}: truncated TFRecord header at record {index}')
  return chunk_size


def _decode_pool() -> Optional[concurrent.futures.ThreadPoolExecutor]:
  """Threads for tfx-bsl's decoder, which runs without the GIL: one per core (at most 4), none on one core."""
  global _DECODE_POOL
  threads = min(os.cpu_count() or 1, _MAX_DECODE_THREADS)
  if threads > 1 and _DECODE_POOL is None:
    _DECODE_POOL = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix='tf-example-decode')
  return _DECODE_POOL


def _decode_in_this_thread(serialized: List[bytes]) -> pa.RecordBatch:
  """A schema-less decode with this thread's own decoder (no C++ decoder object is shared between threads)."""
  decoder = getattr(_THREAD_DECODERS, 'decoder', None)
  if decoder is None:
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder
    decoder = _THREAD_DECODERS.decoder = ExamplesToRecordBatchDecoder()
  return decoder.DecodeBatch(serialized)


def decode_examples(decoder, serialized: List[bytes]) -> pa.RecordBatch:
  """tfx-bsl's `decoder.DecodeBatch(serialized)` for a schema-less decoder (each thread uses its own), computed
  DECODE_ROWS records at a time, the pieces side by side on the machine's cores (the decoder releases the GIL).

  The decoder's cost per record grows with the batch (the working set outgrows a core's L2 cache), so smaller calls
  cost less CPU per record (`make bench` measures it). The pieces are
  joined in order into one RecordBatch, which equals the whole-batch decode when every piece inferred the same
  schema; when they did not (a feature absent from one piece types as null there), the whole batch is decoded at
  once instead, so the result never depends on how it was cut."""
  if len(serialized) <= DECODE_ROWS:
    return decoder.DecodeBatch(serialized)
  slices = [serialized[begin:begin + DECODE_ROWS] for begin in range(0, len(serialized), DECODE_ROWS)]
  pool = _decode_pool()
  pieces = list(pool.map(_decode_in_this_thread, slices) if pool else map(decoder.DecodeBatch, slices))
  if any(not piece.schema.equals(pieces[0].schema) for piece in pieces[1:]):
    return decoder.DecodeBatch(serialized)
  return pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]


def iter_record_batches(path: str, batch_size: int = 8192) -> Iterator[Tuple[int, pa.RecordBatch]]:
  """Yields (index of the first record, RecordBatch) decoded with tfx-bsl's schema-less tf.Example decoder.

  On more than one core the next batch decodes while the caller works on this one (one batch ahead): the decode
  threads otherwise idle while the caller hashes and keys a batch, and the caller idles while they decode. At 1M
  examples this took 0.8 s off the leakage job with near-duplicates (12.5 s against 13.4 s) and 0.3 s off exact-only
  (8.8 s against 9.1 s), for 1.5-4% more CPU (docs/performance.md)."""
  from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder
  decoder = ExamplesToRecordBatchDecoder()

  def decode(start: int, records: List[bytes]) -> pa.RecordBatch:
    try:
      return decode_examples(decoder, records)
    except Exception as e:  # The C++ decoder raises RuntimeError/ValueError alike.
      raise ValueError(f'{path}: records {start}..{start + len(records) - 1} are not valid tf.Examples: {e}') from e

  ahead = _decode_ahead_pool()
  if ahead is None:
    for start, records in iter_records(path, batch_size):
      yield start, decode(start, records)
    return
  pending: Optional[Tuple[int, concurrent.futures.Future]] = None
  for start, records in iter_records(path, batch_size):
    decoding = ahead.submit(decode, start, records)  # One thread: `decoder` is never used by two at once.
    if pending is not None:
      yield pending[0], pending[1].result()
    pending = (start, decoding)
  if pending is not None:
    yield pending[0], pending[1].result()


def _decode_ahead_pool() -> Optional[concurrent.futures.ThreadPoolExecutor]:
  """The one thread that decodes the next batch ahead of the caller (it spreads each batch over `_decode_pool`);
  none on one core."""
  global _DECODE_AHEAD_POOL
  if _DECODE_AHEAD_POOL is None and _decode_pool() is not None:
    _DECODE_AHEAD_POOL = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='tf-example-decode-ahead')
  return _DECODE_AHEAD_POOL


def read_records(path: str, batch_size: int = _FLAT_BATCH_SIZE, chunk_size: int = _CHUNK) -> Iterator[bytes]:
  """Every serialized record of the file, one by one (`iter_records` without the batching)."""
  for _, batch in iter_records(path, batch_size, chunk_size=chunk_size):
    yield from batch


def write_tfrecord(path: str, serialized: Iterable[bytes]) -> None:
  """An uncompressed TFRecord file (length, masked CRCs: the framing `iter_records` checks), written with Beam's
  filesystems so `path` may be remote."""
  with beam.io.filesystems.FileSystems.create(path) as handle:
    for data in serialized:
      length = struct.pack('<Q', len(data))
      handle.write(length + _FOOTER.pack(_masked_crc(length)) + data + _FOOTER.pack(_masked_crc(data)))
