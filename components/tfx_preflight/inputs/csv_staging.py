"""CSV files to tf.Example TFRecords through CsvExampleGen's own pieces, keeping the CSV file and line of every record.

CsvExampleGen (`tfx/components/example_gen/csv_example_gen/executor.py`) reads each file with `_CsvLineBuffer`
(multi-line quoted cells), parses lines with tfx-bsl's `csv_decoder.ParseCSVLine`, infers one type per column over
the whole split with `csv_decoder.ColumnTypeInferrer` and builds examples with `_ParsedCsvToTfExample`. The same
objects are used here, so types and missing values (an empty cell is an empty list; a column empty in every row has
no value kind) are exactly CsvExampleGen's. The only addition is the location: each record carries (file, first
line), records are written in line order in chunks, and a small JSON beside each chunk lists the line of every
record, so a duplicate found at (staged file, record index) is reported as `train.csv:17`.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam

from tfx_preflight.inputs import data, records
from tfx_preflight.report import results

# Records per staged TFRecord file: bounds the memory of the step that sorts a chunk by line.
RECORDS_PER_CHUNK = 50000
LINES_SUFFIX = '.lines.json'
# Gzipped, as CsvExampleGen writes its TFRecords (Beam's FileSystems compresses by this extension): the loss check
# hands these files to the user's input_fn, which may read them with compression_type='GZIP' as TFX examples do.
STAGED_SUFFIX = '.tfrecord.gz'

Location = Tuple[int, int]  # (CSV file index, 1-based line number where the record starts)


def _csv_executor():
  from tfx.components.example_gen.csv_example_gen import executor  # pylint: disable=g-import-not-at-top
  return executor


class _ReadCsvRecordsWithLines(beam.DoFn):
  """CsvExampleGen's `_ReadCsvRecordsFromTextFile` (same line buffer), also yielding where each record starts."""

  def process(self, element: Tuple[int, str]) -> Iterable[Tuple[Location, str]]:
    file_index, path = element
    line_buffer = _csv_executor()._CsvLineBuffer()  # pylint: disable=protected-access
    with beam.io.filesystems.FileSystems.open(path) as handle:
      handle.readline()  # The header.
      line_number, start = 1, 2
      for line in iter(handle.readline, b''):  # A `.csv.gz` handle (Beam's CompressedFile) has no line iterator.
        line_number += 1
        if line_buffer.is_empty():
          start = line_number
        try:
          text = line.decode('utf-8')
        except UnicodeDecodeError as e:
          raise data.InputError(f'{path} line {line_number}: {data.not_utf8_reason(line, e)}') from e
        line_buffer.write(text)
        if line_buffer.is_complete_line():
          yield (file_index, start), line_buffer.read()
      if not line_buffer.is_empty():
        raise ValueError(f'{path}: a quoted cell opened on line {start} is never closed.')


class _ParseCsvLine(beam.DoFn):
  """tfx-bsl's `ParseCSVLine`, keyed by location."""

  def __init__(self, paths: Sequence[str], delimiter: str = ','):
    self._paths = list(paths)
    self._delimiter = delimiter
    self._parser = None

  def setup(self):
    from tfx_bsl.coders import csv_decoder
    self._parser = csv_decoder.ParseCSVLine(delimiter=self._delimiter)
    self._parser.setup()

  def process(self, element: Tuple[Location, str]) -> Iterable[Tuple[Location, list]]:
    location, text = element
    try:
      parsed = list(self._parser.process(text))
    except csv.Error as e:  # "field larger than field limit (131072)": Python's csv module, CsvExampleGen's too.
      raise data.InputError(f'{self._paths[location[0]]} line {location[1]}: {e}; CsvExampleGen\'s CSV parser fails '
                            'on this row too.') from e
    for cells, _ in parsed:
      yield location, cells


class _ToSerializedExample(beam.DoFn):
  """CsvExampleGen's `_ParsedCsvToTfExample` (blank lines skipped, a wrong field count an error), serialized."""

  def __init__(self, paths: Sequence[str]):
    self._paths = list(paths)
    self._to_example = None

  def setup(self):
    self._to_example = _csv_executor()._ParsedCsvToTfExample()  # pylint: disable=protected-access

  def process(self, element: Tuple[Location, list], column_infos) -> Iterable[Tuple[Tuple[int, int], Tuple]]:
    location, cells = element
    try:
      examples = list(self._to_example.process(cells, column_infos))
    except ValueError as e:
      raise ValueError(f'{self._paths[location[0]]} line {location[1]}: {e}') from e
    for example in examples:
      yield (location[0], location[1] // RECORDS_PER_CHUNK), (location[1], example.SerializeToString(deterministic=True))


class _WriteChunk(beam.DoFn):
  """Writes one chunk of one CSV file in line order, and the lines of its records beside it."""

  def __init__(self, split_dir: str, paths: Sequence[str]):
    self._split_dir = split_dir
    self._paths = list(paths)

  def process(self, element) -> Iterable[str]:
    (file_index, chunk), rows = element
    rows = sorted(rows)
    name = os.path.join(self._split_dir, f'csv-{file_index:05d}-{chunk:06d}{STAGED_SUFFIX}')
    records.write_tfrecord(name, (data for _, data in rows))
    with beam.io.filesystems.FileSystems.create(name + LINES_SUFFIX) as handle:
      handle.write(json.dumps({'csv': self._paths[file_index], 'lines': [line for line, _ in rows]}).encode())
    yield name


def add_conversion(pipeline: beam.Pipeline, split: str, paths: Sequence[str], split_dir: str) -> None:
  """Adds the steps converting one split's CSV files (all sharing the first file's header) to `pipeline`."""
  from tfx_bsl.coders import csv_decoder
  column_names = data.csv_column_names(paths[0])
  parsed = (pipeline
            | f'CsvFiles[{split}]' >> beam.Create(list(enumerate(paths)))
            | f'ReadCsv[{split}]' >> beam.ParDo(_ReadCsvRecordsWithLines())
            | f'ParseCsv[{split}]' >> beam.ParDo(_ParseCsvLine(paths)))
  column_infos = beam.pvalue.AsSingleton(
      parsed
      | f'Cells[{split}]' >> beam.Values()
      | f'InferColumnTypes[{split}]' >> beam.CombineGlobally(
          csv_decoder.ColumnTypeInferrer(column_names, skip_blank_lines=True)))
  _ = (parsed
       | f'ToExample[{split}]' >> beam.ParDo(_ToSerializedExample(paths), column_infos)
       | f'GroupChunks[{split}]' >> beam.GroupByKey()
       | f'WriteChunks[{split}]' >> beam.ParDo(_WriteChunk(split_dir, paths)))


class CsvLocations:
  """Maps (staged TFRecord path, record index) back to the CSV file and line it came from."""

  def __init__(self, lines: Mapping[str, Tuple[str, List[int]]]):
    self._lines = dict(lines)

  @classmethod
  def load(cls, staged_files: Iterable[str]) -> CsvLocations:
    from tfx.dsl.io import fileio
    lines: Dict[str, Tuple[str, List[int]]] = {}
    for path in staged_files:
      with fileio.open(path + LINES_SUFFIX, 'r') as f:
        sidecar = json.loads(f.read())
      lines[path] = (sidecar['csv'], sidecar['lines'])
    return cls(lines)

  def locate(self, path: str, index: int) -> Optional[Tuple[str, int]]:
    """(CSV file, line) of record `index` of staged file `path`, or None for a file that is not staged CSV."""
    found = self._lines.get(path)
    if found is None or not 0 <= index < len(found[1]):
      return None
    return found[0], found[1][index]

  def __bool__(self) -> bool:
    return bool(self._lines)


def _relocate_sample(sample: Dict, locations: CsvLocations) -> None:
  for file_key, index_key, line_key in (('file', 'index', 'line'), ('train_file', 'train_index', 'train_line')):
    found = locations.locate(sample.get(file_key), sample.get(index_key, -1))
    if found is not None:
      sample[file_key], sample[line_key] = found
      del sample[index_key]


def _relocate_row(fields: List[str], locations: CsvLocations) -> List[str]:
  """(file, record index) and, for near pairs, (pair file, pair record index) -> (CSV file, line) where staged."""
  from tfx_preflight.report import build as report
  fields = list(fields)
  for file_at in (3, 6):
    if file_at + 1 < len(fields) and fields[file_at] and fields[file_at + 1]:
      found = locations.locate(fields[file_at], int(fields[file_at + 1]))
      if found is not None:
        fields[file_at], fields[file_at + 1] = report.tsv_field(found[0]), str(found[1])
  return fields


def _relocate_duplicates(path: str, locations: CsvLocations) -> None:
  """Rewrites duplicates.tsv so that each row names the CSV file and line instead of the staged record (the record
  index columns become line columns)."""
  from tfx.dsl.io import fileio
  if not fileio.exists(path):
    return
  with fileio.open(path, 'r') as f:
    rows = f.read().splitlines()
  header = ['line' if name == 'record_index' else 'pair_line' if name == 'pair_record_index' else name
            for name in rows[0].split('\t')]
  out = ['\t'.join(header)] + ['\t'.join(_relocate_row(row.split('\t'), locations)) for row in rows[1:]]
  with fileio.open(path + '.tmp', 'w') as f:
    f.write('\n'.join(out) + '\n')
  fileio.rename(path + '.tmp', path, overwrite=True)


def relocate_leakage(result: Dict, locations: CsvLocations) -> None:
  """Points the leakage result (samples and duplicates.tsv) at CSV files and lines instead of staged TFRecords."""
  for key in ('cross_split', 'near_duplicates', 'group_leakage'):
    for pair in result.get(key) or []:
      for sample in pair.get('samples', []):
        _relocate_sample(sample, locations)
  if result.get('duplicates_file'):
    _relocate_duplicates(result['duplicates_file'], locations)


def relocated_leakage(result: results.CheckResult, locations: CsvLocations) -> results.CheckResult:
  """The leakage check's result with its samples and duplicates.tsv pointing at CSV files and lines (a copy: the
  result itself is left as the check returned it)."""
  details = copy.deepcopy(dict(result.details))
  relocate_leakage(details, locations)
  return dataclasses.replace(result, details=details)
