"""Where each staged record came from in the CSV files (the sidecar `csv_staging` writes beside each chunk), and the
leakage result pointed back at CSV files and lines. No Beam: read by the driver once the checks have run."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from tfx.dsl.io import fileio

from tfx_preflight import file_writes
from tfx_preflight.checks.leakage.details import LeakageDetails
from tfx_preflight.report import results

# Beside each staged TFRecord file: {'csv': its CSV file, 'lines': the first line of each record}.
LINES_SUFFIX = '.lines.json'


class CsvLocations:
  """Maps (staged TFRecord path, record index) back to the CSV file and line it came from."""

  def __init__(self, lines: Mapping[str, Tuple[str, List[int]]]):
    self._lines = dict(lines)

  @classmethod
  def load(cls, staged_files: Iterable[str]) -> CsvLocations:
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


def _relocated_sample(sample: Mapping[str, Any], locations: CsvLocations) -> Dict[str, Any]:
  """A copy of `sample` naming (CSV file, line) instead of (staged file, record index), for it and its train pair."""
  sample = dict(sample)
  for file_key, index_key, line_key in (('file', 'index', 'line'), ('train_file', 'train_index', 'train_line')):
    found = locations.locate(sample.get(file_key), sample.get(index_key, -1))
    if found is not None:
      sample[file_key], sample[line_key] = found
      del sample[index_key]
  return sample


def _relocate_row(fields: List[str], locations: CsvLocations) -> List[str]:
  """(file, record index) and, for near pairs, (pair file, pair record index) -> (CSV file, line) where staged."""
  fields = list(fields)
  for file_at in (3, 6):
    if file_at + 1 < len(fields) and fields[file_at] and fields[file_at + 1]:
      found = locations.locate(fields[file_at], int(fields[file_at + 1]))
      if found is not None:
        fields[file_at], fields[file_at + 1] = file_writes.tsv_field(found[0]), str(found[1])
  return fields


def _relocate_duplicates(path: str, locations: CsvLocations) -> None:
  """Rewrites duplicates.tsv so that each row names the CSV file and line instead of the staged record (the record
  index columns become line columns)."""
  if not fileio.exists(path):
    return
  with fileio.open(path, 'r') as f:
    rows = f.read().splitlines()
  header = ['line' if name == 'record_index' else 'pair_line' if name == 'pair_record_index' else name
            for name in rows[0].split('\t')]
  out = ['\t'.join(header)] + ['\t'.join(_relocate_row(row.split('\t'), locations)) for row in rows[1:]]
  file_writes.write_atomically(path, '\n'.join(out) + '\n')


def relocated_leakage(result: results.CheckResult, locations: CsvLocations) -> results.CheckResult:
  """The leakage check's result with its samples pointing at CSV files and lines instead of staged TFRecords (a copy:
  the result itself is left as the check returned it), and duplicates.tsv rewritten the same way."""
  details = result.details
  if not isinstance(details, LeakageDetails):
    raise TypeError(f'The leakage check\'s details must be LeakageDetails. Got {type(details).__name__} instead.')
  if details.duplicates_file:
    _relocate_duplicates(details.duplicates_file, locations)
  relocated = details.with_samples(lambda samples: [_relocated_sample(s, locations) for s in samples])
  return dataclasses.replace(result, details=relocated)
