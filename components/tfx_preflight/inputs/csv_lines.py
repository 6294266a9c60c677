"""Where each staged record came from in the CSV files (the sidecar `csv_staging` writes beside each chunk), so that a
check's findings can name CSV files and lines (checks/leakage/csv_relocation.py). No Beam: read by the driver."""

from __future__ import annotations

import json
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from tfx_preflight import file_io

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
      with file_io.open(path + LINES_SUFFIX, 'r') as f:
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
