"""A bounded, deterministic sample of rows for the label-proxy pair search, collected in the same read pass.

A label computed from two columns (`late = delivered - promised > 2`) needs the two columns side by side, which the
per-feature counts (counts.py) lose. So the CombineFn also keeps, per split, the rows with the smallest
content hashes (a bottom-k sample): each row's scalar features (numeric as float64, NaN when missing; categorical
as 64-bit hashes, 0 when missing) and its label word. Bottom-k by a hash of the row's content is the same sample
whatever the batching, the merge order or the runner, with no random state; it is bounded by `sample_rows` rows and
`sample_cells` values (rows shrink as more features are seen, never below what any merge order keeps).

Category names (for the rule shown to the user) are kept for categorical features with at most `_MAX_NAMES` values.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tfx_preflight.inputs import hashing

NUMERIC = 'numeric'
CATEGORICAL = 'categorical'
EMPTY = ''  # Every value seen so far is missing: the kind is not known yet.
UNUSABLE = 'unusable'  # Long lists, or numeric in some batches and bytes in others.
_MAX_NAMES = 64
_NAME_CHARS = 60
_U64 = np.uint64
MIN_ROWS = 100  # Fewer sampled rows than this could not judge a pair (label_proxy.pair_min_examples is 100).


@dataclasses.dataclass
class Column:
  kind: str
  values: Optional[np.ndarray] = None  # float64 (NaN missing) or uint64 (0 missing); None when EMPTY / UNUSABLE.
  names: Optional[Dict[int, str]] = None  # Categorical: value hash -> text, None when there are too many.


@dataclasses.dataclass
class RowSample:
  """The rows of one split with the smallest content hashes, column by column."""
  hashes: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
  labels: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
  columns: Dict[str, Column] = dataclasses.field(default_factory=dict)
  # More columns than leave room for MIN_ROWS rows: no rows are kept (and hashing thousands of columns is skipped).
  too_wide: bool = False

  @property
  def rows(self) -> int:
    return len(self.hashes)

  def numeric(self, name: str) -> np.ndarray:
    return self.columns[name].values


def too_wide(num_columns: int, sample_cells: int) -> bool:
  return sample_cells // max(1, num_columns) < MIN_ROWS


def capacity(num_columns: int, sample_rows: int, sample_cells: int) -> int:
  """Rows kept: never more than sample_rows, nor more than sample_cells values over all columns."""
  return max(1, min(sample_rows, sample_cells // max(1, num_columns)))


def _missing(kind: str, n: int) -> np.ndarray:
  return np.full(n, np.nan) if kind == NUMERIC else np.zeros(n, dtype=np.uint64)


def _value_words(column: Column, n: int) -> np.ndarray:
  """uint64 words of each row's value for the content hash; 0 for missing, so a missing value hashes the same in a
  batch where the feature has no kind yet."""
  if column.values is None:
    return np.zeros(n, dtype=np.uint64)
  if column.kind == NUMERIC:
    v = np.where(column.values == 0, 0.0, column.values)
    return np.where(np.isnan(v), _U64(0), v.view(np.uint64) | _U64(1))
  return column.values


def _row_hashes(labels: np.ndarray, columns: Dict[str, Column], n: int) -> np.ndarray:
  total = hashing.fmix64(labels ^ _U64(0x2545f4914f6cdd1d))
  for name, column in sorted(columns.items()):
    total = total + hashing.fmix64(_value_words(column, n) ^ hashing.name_word(name))
  return hashing.fmix64(total)


def categorical_keys(values: pa.Array) -> np.ndarray:
  """The sample's key of each string: its 64-bit hash, never 0 (0 is missing)."""
  return np.maximum(hashing.hash_byte_strings(values), _U64(1))


def category_names(values: pa.Array) -> Optional[Dict[int, str]]:
  """Hash -> text of the distinct values, None when there are more than _MAX_NAMES (ids, free text)."""
  unique = pc.unique(values)
  if len(unique) > _MAX_NAMES:
    return None
  words = categorical_keys(unique)
  texts = [v.decode('utf-8', errors='replace') if isinstance(v, bytes) else str(v) for v in unique.to_pylist()]
  return {int(w): t[:_NAME_CHARS] for w, t in zip(words.tolist(), texts)}


def from_batch(labels: np.ndarray, columns: Dict[str, Column], sample_rows: int, sample_cells: int) -> RowSample:
  """The bottom-k sample of one batch's labelled rows (`columns` hold those rows only)."""
  if too_wide(len(columns), sample_cells):
    return RowSample(too_wide=True)
  n = len(labels)
  hashes = _row_hashes(labels, columns, n)
  keep = _bottom(hashes, capacity(len(columns), sample_rows, sample_cells))
  return RowSample(hashes[keep], labels[keep], {name: _take(c, keep) for name, c in columns.items()})


def _bottom(hashes: np.ndarray, k: int) -> np.ndarray:
  """Indices of the k smallest hashes, in hash order (stable, so equal hashes keep their order): those at most the
  k-th smallest, found by a partition, then sorted (as np.argsort(hashes, kind='stable')[:k], without sorting all)."""
  if k >= len(hashes):
    return np.argsort(hashes, kind='stable')
  candidates = np.flatnonzero(hashes <= np.partition(hashes, k - 1)[k - 1])
  return candidates[np.argsort(hashes[candidates], kind='stable')[:k]]


def _take(column: Column, rows: np.ndarray) -> Column:
  return Column(column.kind, None if column.values is None else column.values[rows], column.names)


def _merged_kind(a: str, b: str) -> str:
  if a == b or b == EMPTY:
    return a
  if a == EMPTY:
    return b
  return UNUSABLE


def _merged_names(a: Column, b: Column) -> Optional[Dict[int, str]]:
  if a.kind == EMPTY:
    return b.names
  if b.kind == EMPTY:
    return a.names
  if a.names is None or b.names is None:
    return None
  names = {**a.names, **b.names}
  return names if len(names) <= _MAX_NAMES else None


def _stacked(columns: List[Optional[Column]], rows: List[int]) -> Column:
  """One column of several samples, one above the other (a sample without it: missing values)."""
  present = [c or Column(EMPTY) for c in columns]
  kind = EMPTY
  for c in present:
    kind = _merged_kind(kind, c.kind)
  if kind in (EMPTY, UNUSABLE):
    return Column(kind)
  names = present[0]
  for c in present[1:]:
    names = Column(_merged_kind(names.kind, c.kind), None, _merged_names(names, c))
  parts = [c.values if c.values is not None else _missing(kind, n) for c, n in zip(present, rows)]
  return Column(kind, np.concatenate(parts), names.names if kind == CATEGORICAL else None)


def merge(a: RowSample, b: RowSample, sample_rows: int, sample_cells: int) -> RowSample:
  """The bottom-k of a and b together: the same rows whatever the order of merges (k only shrinks as columns are
  added, and every part kept at least the final k)."""
  return merge_all([a, b], sample_rows, sample_cells)


def merge_all(samples: Sequence[RowSample], sample_rows: int, sample_cells: int) -> RowSample:
  """The bottom-k of every sample together, at once: the same as merging them two by two, in any order."""
  if len(samples) == 1:
    return samples[0]
  names = sorted(set().union(*[s.columns for s in samples]))
  if any(s.too_wide for s in samples) or too_wide(len(names), sample_cells):
    return RowSample(too_wide=True)  # The same whatever the order: the union of columns only grows.
  hashes = np.concatenate([s.hashes for s in samples])
  keep = _bottom(hashes, capacity(len(names), sample_rows, sample_cells))
  labels = np.concatenate([s.labels for s in samples])
  rows = [s.rows for s in samples]
  columns = {name: _take(_stacked([s.columns.get(name) for s in samples], rows), keep) for name in names}
  return RowSample(hashes[keep], labels[keep], columns)


# --- JSON (the read pass writes it with the counts) ---------------------------------------------------------------


def to_jsonable(sample: RowSample) -> Dict[str, Any]:
  columns = {}
  for name, column in sorted(sample.columns.items()):
    entry: Dict[str, Any] = {'kind': column.kind}
    if column.values is not None:
      values = column.values
      entry['values'] = [None if v != v else v for v in values.tolist()] if column.kind == NUMERIC else \
          values.tolist()
    if column.names is not None:
      entry['names'] = [[w, t] for w, t in sorted(column.names.items())]
    columns[name] = entry
  return {'hashes': sample.hashes.tolist(), 'labels': sample.labels.tolist(), 'columns': columns,
          'too_wide': sample.too_wide}


def from_jsonable(value: Dict[str, Any]) -> RowSample:
  columns = {}
  for name, entry in value['columns'].items():
    kind = entry['kind']
    values = None
    if 'values' in entry:
      values = np.array([np.nan if v is None else v for v in entry['values']], dtype=np.float64) \
          if kind == NUMERIC else np.asarray(entry['values'], dtype=np.uint64)
    names = {int(w): str(t) for w, t in entry['names']} if 'names' in entry else None
    columns[name] = Column(kind, values, names)
  return RowSample(np.asarray(value['hashes'], dtype=np.uint64), np.asarray(value['labels'], dtype=np.uint64),
                   columns, bool(value.get('too_wide', False)))


def usable_columns(sample: RowSample) -> List[str]:
  return sorted(n for n, c in sample.columns.items() if c.kind in (NUMERIC, CATEGORICAL))
