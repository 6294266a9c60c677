"""CSV files to tf.Example TFRecords through CsvExampleGen's own pieces, keeping the CSV file and line of every record.

CsvExampleGen (`tfx/components/example_gen/csv_example_gen/executor.py`) reads each file with `_CsvLineBuffer`
(multi-line quoted cells), parses lines with tfx-bsl's `csv_decoder.ParseCSVLine`, infers one type per column over
the whole split with `csv_decoder.ColumnTypeInferrer` and builds examples with `_ParsedCsvToTfExample`. The same
objects are used here, so types and missing values (an empty cell is an empty list; a column empty in every row has
no value kind) are exactly CsvExampleGen's. The only addition is the location: each record carries (file, first
line), records are written in line order in chunks, and a small JSON beside each chunk lists the line of every
record, so a duplicate found at (staged file, record index) is reported as `train.csv:17` (csv_lines.py).
"""

from __future__ import annotations

import csv
import json
import os
import re
from typing import Callable, Dict, Iterable, Mapping, Sequence, Tuple

import apache_beam as beam

from tfx_preflight import file_io
from tfx_preflight.inputs import csv_lines, data, records

# Records per staged TFRecord file: bounds the memory of the step that sorts a chunk by line.
RECORDS_PER_CHUNK = 50000
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
    with beam.io.filesystems.FileSystems.create(name + csv_lines.LINES_SUFFIX) as handle:
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


# Beam appends the step to an exception raised in a DoFn: " [while running 'ReadCsv[eval]']".
_STEP_LABEL = re.compile(r" \[while running '[^']*'\]$")


def csv_to_tfrecords(csv_files: Mapping[str, list], make_pipeline: Callable[[], beam.Pipeline],
                     output_dir: str) -> Dict[str, str]:
  """Converts each split's CSV files to tf.Example TFRecords exactly as CsvExampleGen does (its own line buffer,
  tfx-bsl's parser and per-split type inference; see above), keeping every record's CSV file and line.

  Returns split -> file pattern of the written TFRecords; `csv_locations(patterns)` maps records back to CSV lines.
  `output_dir` should be a fresh directory of this run (the CLI uses a temporary one and removes it afterwards).
  """
  data.check_byte_order_marks(csv_files)
  for split, files in sorted(csv_files.items()):
    data.check_csv_headers(split, files)
  patterns = {}
  try:
    with make_pipeline() as pipeline:
      for split, files in sorted(csv_files.items()):
        split_dir = os.path.join(output_dir, f'Split-{split}')
        file_io.makedirs(split_dir)
        add_conversion(pipeline, split, files, split_dir)
        patterns[split] = os.path.join(split_dir, '*' + STAGED_SUFFIX)
  except data.InputError as e:  # A row the conversion named (not UTF-8, a cell too large): without Beam's step label.
    raise data.InputError(_STEP_LABEL.sub('', str(e))) from e
  except Exception as e:
    ragged = data.find_ragged_csv_row(csv_files)
    if ragged is not None:
      raise ragged from e
    raise
  for split, pattern in sorted(patterns.items()):
    if not file_io.glob(pattern):  # CsvExampleGen would write an empty split: nothing to compare.
      raise data.InputError(f'split {split!r} has no examples: {", ".join(csv_files[split])}: a header but no data rows.')
  return patterns


def csv_locations(patterns: Mapping[str, str]) -> csv_lines.CsvLocations:
  """A `csv_lines.CsvLocations` for the TFRecords `csv_to_tfrecords` wrote."""
  staged = [f for pattern in patterns.values() for f in file_io.glob(pattern)]
  return csv_lines.CsvLocations.load(staged)
