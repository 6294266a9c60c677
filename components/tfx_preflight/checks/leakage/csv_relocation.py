"""CSV input: the leakage check's samples and duplicates.tsv point at CSV files and lines (`train.csv:17`) instead of
the TFRecords the CSV was staged as (inputs/csv_lines.CsvLocations maps one to the other)."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping

from tfx_preflight import file_io, file_writes
from tfx_preflight.checks.leakage.details import LeakageDetails
from tfx_preflight.inputs.csv_lines import CsvLocations
from tfx_preflight.report import results


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
  if not file_io.exists(path):
    return
  with file_io.open(path, 'r') as f:
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
