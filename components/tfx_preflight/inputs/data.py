"""Input files: file patterns and records checked up front (a damaged file is named, never a Beam stack trace), and
CSV files checked before `csv_staging` turns them into tf.Examples the way CsvExampleGen does, so every check (and
the user's input_fn) reads the same tf.Example TFRecords."""

from __future__ import annotations

import csv
import os
from typing import Dict, Iterator, Mapping, Sequence, Tuple, Union

import apache_beam as beam

from tfx_preflight import file_io
from tfx_preflight.inputs import records

FORMATS = ('tfrecord', 'csv')
# Files per split whose first record is probed up front (one small read each; sharded data may have thousands).
MAX_FILES_PROBED = 256
# Records and bytes read per step by the probe: the first record is all the up-front check needs.
PROBE_BATCH_SIZE = 64
PROBE_CHUNK_BYTES = 1 << 16

# A split's files: one pattern, or several (one per Examples artifact when Trainer reads a window of spans).
Patterns = Union[str, Sequence[str]]


class InputError(ValueError):
  """An input file or pattern cannot be used; the message names it."""


def directory_pattern(pattern: str) -> str:
  """A directory given where a file pattern is expected (`--train data/train/`) means every file in it."""
  try:
    if file_io.isdir(pattern):
      return os.path.join(pattern, '*')
  except Exception:  # Unknown scheme or no access: matching_files says why.
    pass
  return pattern


def matching_files(pattern: str, what: str) -> list:
  """The files `pattern` matches, sorted; raises naming `what` (e.g. '--train') when there are none."""
  pattern = directory_pattern(pattern)
  try:
    files = sorted(f for f in file_io.glob(pattern) if not file_io.isdir(f))
  except Exception as e:  # Bad bucket, permission, malformed pattern: all mean the same to the user.
    raise InputError(f'{what}: cannot list {pattern!r}: {e}') from e
  if not files:
    raise InputError(f'{what}: no file matches {pattern!r}.')
  return files


def patterns_of(value: Patterns) -> Tuple[str, ...]:
  """A split's patterns as a tuple, whether one pattern or several were given."""
  return (value,) if isinstance(value, str) else tuple(value)


def split_matching_files(value: Patterns, what: str) -> list:
  """The files of every pattern of a split, sorted, each file once; raises naming the pattern that matches nothing
  (a span whose split is empty is an error, not a smaller split)."""
  return sorted({f for pattern in patterns_of(value) for f in matching_files(pattern, what)})


def split_files(examples: Mapping[str, Patterns], splits: Sequence[str]) -> Tuple[Tuple[int, str], ...]:
  """(split id, path) by file id: each split's matching files, sorted, splits in the given order (train first), as
  the Beam jobs address files. Raises naming the split that is missing or matches no file."""
  files = []
  for split_id, split in enumerate(splits):
    if split not in examples:
      raise InputError(f'Split {split!r} has no examples; available: {", ".join(sorted(examples))}.')
    files.extend((split_id, path) for path in split_matching_files(examples[split], f'split {split!r}'))
  return tuple(files)


def _records(path: str) -> Iterator[bytes]:
  """The records of one TFRecord file, read strictly (checksums, gzip end marker) by the checks' own reader, in
  small steps so that probing the first record of many files stays cheap."""
  return records.read_records(path, PROBE_BATCH_SIZE, chunk_size=PROBE_CHUNK_BYTES)


def _first_records(path: str) -> list:
  """The first PROBE_BATCH_SIZE records of the file (fewer when it is shorter), in one small read."""
  batches = records.iter_records(path, PROBE_BATCH_SIZE, chunk_size=PROBE_CHUNK_BYTES)
  try:
    return next(batches, (0, []))[1]
  finally:
    batches.close()


def _reason(error: Exception) -> str:
  return ' '.join(str(error).split())[:200] or type(error).__name__


def _unreadable(split: str, path: str, error: Exception) -> InputError:
  if isinstance(error, records.PayloadError):
    return InputError(f'split {split!r}: {error}')
  return InputError(f'split {split!r}: {path} is not a readable tf.Example TFRecord file (truncated, corrupted or '
                    f'another format): {type(error).__name__}: {_reason(error)}')


def validate_examples(examples: Mapping[str, Patterns], max_files: int = MAX_FILES_PROBED) -> None:
  """Cheap up-front check of every split: files exist, the first records of each file (up to `max_files` per split)
  pass their CRCs and are tf.Examples (not SequenceExamples or another payload, see `records.payload_problem`), and the
  split has at least one record.

  Costs one small read per file, not a pass over the data; damage further inside a file is named by
  `find_unreadable_file` when a pipeline fails.
  """
  for split, pattern in sorted(examples.items()):
    files = split_matching_files(pattern, f'split {split!r}')
    has_records = False
    for i, path in enumerate(files):
      if i >= max_files and has_records:
        break  # Past the probe budget, files are only opened until one holds a record (empty files cost nothing).
      try:
        head = _first_records(path)  # Every record read is checked to be a tf.Example (records.PayloadError).
      except Exception as e:  # Truncation, checksum, gzip or payload errors: all mean the file is unusable.
        raise _unreadable(split, path, e) from e
      has_records = has_records or bool(head)
    if not has_records:
      raise InputError(f'split {split!r} has no examples: none of the {len(files)} file(s) matching {pattern!r} '
                       'holds a record.')


def mixed_compression(examples: Mapping[str, Patterns]) -> InputError | None:
  """An error when a split mixes gzip and uncompressed files: TFX's tf.Example readers (Trainer's DataAccessor, so
  the user's input_fn) take one compression per split, so such a split cannot be trained on as it is."""
  for split, pattern in sorted(examples.items()):
    kinds: Dict[bool, str] = {}
    for path in split_matching_files(pattern, f'split {split!r}'):
      kinds.setdefault(records.is_gzip_file(path), path)
    if len(kinds) > 1:
      return InputError(f'split {split!r} mixes gzip-compressed files ({kinds[True]}) and uncompressed ones '
                        f'({kinds[False]}): TFX reads a split with one compression (Trainer would fail); compress or '
                        'decompress them alike.')
  return None


# Failure path: at most this many bytes of input are re-read on the driver to name a damaged file.
MAX_BYTES_RESCANNED = 1 << 30
# Words in an error (or its causes) that mean the input could not be read or parsed; anything else (quota, memory,
# a worker lost) is not the data's fault and must not trigger a re-read of every input.
_READ_ERROR_WORDS = ('tfrecord', 'gzip', 'crc', 'checksum', 'truncated', 'corrupt', 'damaged', 'dataloss',
                     'data loss', 'decode', 'parse', 'not valid tf.example', 'unexpected end', 'eoferror',
                     'badgzipfile', 'zlib', 'payload')


def looks_like_read_error(error: BaseException) -> bool:
  """True when `error` or one of its causes reads like a damaged or unparsable input file."""
  seen = 0
  while error is not None and seen < 10:
    text = f'{type(error).__name__} {error}'.lower()
    if any(word in text for word in _READ_ERROR_WORDS):
      return True
    error = error.__cause__ or error.__context__
    seen += 1
  return False


def find_unreadable_file(examples: Mapping[str, Patterns], max_bytes: int = MAX_BYTES_RESCANNED) -> InputError | None:
  """Reads the records of the input files (failure path only) and returns an error naming the first file that
  cannot be read, or None when the files read cleanly or `max_bytes` of them were read without finding one."""
  budget = max_bytes
  for split, pattern in sorted(examples.items()):
    for path in sorted({f for p in patterns_of(pattern) for f in file_io.glob(p) if not file_io.isdir(f)}):
      try:
        budget -= file_io.size(path)
      except Exception:  # Size unknown: count it as a large file.
        budget -= PROBE_CHUNK_BYTES * 1024
      try:
        for _ in _records(path):
          pass
      except Exception as e:  # pylint: disable=broad-except
        return _unreadable(split, path, e)
      if budget < 0:
        return None
  return None


def looks_like_type_clash(error: BaseException) -> bool:
  """True when `error` (or a cause) is Arrow's refusal to merge batches in which a feature has two types."""
  seen = 0
  while error is not None and seen < 10:
    if 'incompatible type' in str(error).lower():
      return True
    error = error.__cause__ or error.__context__
    seen += 1
  return False


def _kind(arrow_type) -> str:
  """A feature's Arrow type (tfx-bsl's decode) as the tf.Example list it came from."""
  text = str(arrow_type)
  for word, kind in (('binary', 'bytes_list'), ('int64', 'int64_list'), ('float', 'float_list')):
    if word in text:
      return kind
  return text


def find_type_clash(examples: Mapping[str, str], max_bytes: int = MAX_BYTES_RESCANNED) -> InputError | None:
  """Failure path only: the first feature whose type differs between two files (or two parts of one file) of a
  split, as an error naming the feature and both files; None when none is found within `max_bytes` of input."""
  budget = max_bytes
  for split, pattern in sorted(examples.items()):
    first: Dict[str, Tuple[str, str]] = {}  # Feature -> (kind, file where it was first seen).
    for path in sorted(f for f in file_io.glob(pattern) if not file_io.isdir(f)):
      budget -= file_io.size(path)
      for _, batch in records.iter_record_batches(path):
        for name, column in zip(batch.schema.names, batch.columns):
          if str(column.type) == 'null':  # No value in this batch: no type.
            continue
          kind, where = first.setdefault(name, (_kind(column.type), path))
          if kind != _kind(column.type):
            return InputError(f'split {split!r}: feature {name!r} is a {kind} in {where} but a {_kind(column.type)} '
                              f'in {path}; a feature has one type in a split (TFX cannot merge the two, Trainer '
                              'would fail too). Write it with one type in every file.')
      if budget < 0:
        return None
  return None


def detect_format(pattern: str, files: list, explicit: str | None = None) -> str:
  """'csv' for .csv files, else 'tfrecord'; an explicit --format wins."""
  if explicit:
    if explicit not in FORMATS:
      raise InputError(f'--format must be one of {", ".join(FORMATS)}. Got {explicit!r} instead.')
    return explicit
  kinds = {'csv' if f.lower().endswith(('.csv', '.csv.gz')) else 'tfrecord' for f in files}
  if len(kinds) > 1:
    raise InputError(f'{pattern!r} matches both CSV and non-CSV files; pass --format.')
  return kinds.pop()


UTF8_BOM = b'\xef\xbb\xbf'
# Delimiters other than CsvExampleGen's comma that a one-column header betrays.
_OTHER_DELIMITERS = (';', '\t', '|')


def _csv_header_bytes(path: str) -> bytes:
  """The header line's bytes; `.csv.gz` files are read decompressed (Beam's FileSystems picks it by extension, as the
  conversion's reader does)."""
  with beam.io.filesystems.FileSystems.open(path) as f:
    return f.readline()


def csv_column_names(path: str) -> list:
  """The column names of a CSV file's header, split as CsvExampleGen splits them (`io_utils.load_csv_column_names`:
  the line stripped, cut at commas); a header that is not UTF-8 or reads as one ';'/tab/'|'-separated column is an
  error naming the file."""
  raw = _csv_header_bytes(path)
  if b'\x00' in raw:  # A TFRecord's first 8 bytes are a little-endian length: zero bytes no CSV text has.
    raise InputError(f'{path}: binary data, not CSV text (a TFRecord file? Drop --format csv, or name CSV files '
                     '.csv).')
  try:
    header = raw.decode('utf-8')
  except UnicodeDecodeError as e:
    raise InputError(f'{path} line 1: {not_utf8_reason(raw, e)}') from e
  if not header.strip('\r\n'):
    raise InputError(f'{path}: empty file or empty header line; a CSV needs a header row of column names.')
  names = header.strip().split(',')
  other = [d for d in _OTHER_DELIMITERS if len(names) == 1 and d in names[0]]
  if other:
    raise InputError(f'{path}: the header reads as one column named {names[0][:80]!r}: CsvExampleGen splits CSV at '
                     f'commas only, and this file looks {other[0]!r}-separated; convert it to comma-separated.')
  return names


def not_utf8_reason(line: bytes, error: UnicodeDecodeError) -> str:
  return (f'not UTF-8 (byte 0x{line[error.start]:02x}, byte {error.start + 1} of the line); CsvExampleGen reads CSV as '
          'UTF-8 and fails on it too: re-encode the file (e.g. iconv -f latin1 -t utf-8).')


def check_csv_headers(split: str, files: list) -> None:
  """All files of a split share one header (CsvExampleGen's rule); say which file differs."""
  first = csv_column_names(files[0])
  if len(set(first)) != len(first) or any(not c.strip() for c in first):
    raise InputError(f'{files[0]}: bad CSV header {first!r}: column names must be unique and non-empty.')
  for path in files[1:]:
    if csv_column_names(path) != first:
      raise InputError(f'split {split!r}: {path} has a different header from {files[0]}.')


def check_byte_order_marks(csv_files: Mapping[str, list]) -> None:
  """CsvExampleGen keeps a UTF-8 byte-order mark in the first column's name, so a file saved with one (Excel's "CSV
  UTF-8") and a file saved without name that column differently: an invisible difference that would surface as a
  feature missing from one split. Named here, with the fix."""
  marked = {path: _csv_header_bytes(path).startswith(UTF8_BOM) for files in csv_files.values() for path in files}
  if len(set(marked.values())) > 1:
    with_mark = sorted(path for path, has in marked.items() if has)
    without = sorted(path for path, has in marked.items() if not has)
    raise InputError(f'{with_mark[0]} starts with a UTF-8 byte-order mark (BOM) and {without[0]} does not: '
                     f'CsvExampleGen keeps the mark in the first column\'s name, so the two would name that column '
                     f'differently; save every file as UTF-8 without BOM (e.g. sed -i \'1s/^\\xEF\\xBB\\xBF//\' FILE).')


def find_ragged_csv_row(csv_files: Mapping[str, list]) -> InputError | None:
  """An error naming the first row whose field count differs from its file's header (failure path only: CsvExampleGen
  says "Columns do not match" without naming the file or the line), or None."""
  for split, files in sorted(csv_files.items()):
    for path in files:
      if path.lower().endswith('.gz'):
        continue
      try:
        with file_io.open(path, 'r') as f:
          rows = csv.reader(f)
          width = len(next(rows, []))
          for row in rows:
            if row and len(row) != width:
              return InputError(f'split {split!r}: {path} line {rows.line_num} has {len(row)} field(s) but the '
                                f'header has {width}: every CSV row needs one value per column.')
      except (UnicodeDecodeError, csv.Error):  # Not this scan's to name: the conversion's own error stands.
        continue
  return None
