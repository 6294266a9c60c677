"""Per-split (feature value, label) counts for the label-proxy check, built from Arrow RecordBatches in one pass.

What is counted, per feature and split (rows without a label are left out):
  * the *key* of the feature's first value: categorical (bytes) values by a 64-bit hash of the string, numeric (int
    and float) values by their float64 bits with the mantissa cut to `mantissa_bits` bits (relative resolution 2^-8
    by default) and mapped to an unsigned integer whose order is the order of the values, so a 1-D split can be fitted
    after the fact without a first pass for bin edges. A missing value is key 0, its own category.
  * for a label with at most `max_classes` distinct values: the count of each (key, label) pair;
  * for a numeric label: count, sum and sum of squares of the label per key (the regression view).
Features whose lists are longer than `max_list_length` (images, embeddings) are not scored: a first value says
nothing about them. A feature with more than `max_values` distinct keys is coarsened (numeric: one mantissa bit less
at a time, order kept) or folded (categorical: keys modulo max_values), so memory stays bounded whatever the data.

Every step is a numpy operation over a batch column; accumulators merge by concatenating and re-reducing arrays, so
the counts are the same whatever the batching and the merge order. The cost is sorting: keys are sorted as small
integer codes packed into one word with what travels with them (a label index, a count, a row index), by numpy's
plain sort, and the CombineFn counts the rows of several batches with one sort (`pending`, `settle`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa

from tfx_preflight.checks.label_proxy import sample as sample_lib
from tfx_preflight.inputs import hashing

NUMERIC = 'numeric'
CATEGORICAL = 'categorical'
MISSING_KEY = 0
_SIGN = np.uint64(1 << 63)


@dataclasses.dataclass(frozen=True)
class CountOptions:
  """What to count; small and picklable."""
  label_key: str
  exclude: Tuple[str, ...] = ()
  max_classes: int = 50
  max_values: int = 10000
  max_list_length: int = 16
  mantissa_bits: int = 8
  # The row sample of the pair search (sample.py): at most sample_rows rows and sample_cells values.
  sample_rows: int = 0
  sample_cells: int = 200_000


@dataclasses.dataclass
class FeatureCounts:
  """One feature's counts in one split. `pair_*` is None once the label has too many classes; `moment_*` is None for
  a non-numeric label."""
  kind: str
  coarsening: int = 0  # numeric: mantissa bits dropped beyond mantissa_bits; categorical: 1 when keys are folded.
  pair_keys: Optional[np.ndarray] = None
  pair_labels: Optional[np.ndarray] = None
  pair_counts: Optional[np.ndarray] = None
  moment_keys: Optional[np.ndarray] = None
  moment_n: Optional[np.ndarray] = None
  moment_sum: Optional[np.ndarray] = None
  moment_sumsq: Optional[np.ndarray] = None
  # Rows not counted yet (count_batch(defer=True)): no tables until settle counts them.
  rows: Optional[RowCodes] = None


@dataclasses.dataclass
class SplitCounts:
  """The accumulator of one split: label summary, per-feature counts, and features left out with the reason."""
  examples: int = 0
  labelled: int = 0
  label_kind: Optional[str] = None  # NUMERIC or CATEGORICAL
  # Label word -> count, while there are at most max_classes distinct labels; None after.
  label_counts: Optional[Dict[int, int]] = dataclasses.field(default_factory=dict)
  label_names: Dict[int, str] = dataclasses.field(default_factory=dict)
  label_sum: float = 0.0
  label_sumsq: float = 0.0
  features: Dict[str, FeatureCounts] = dataclasses.field(default_factory=dict)
  skipped: Dict[str, str] = dataclasses.field(default_factory=dict)
  sample: Optional[sample_lib.RowSample] = None  # Present when CountOptions.sample_rows > 0.
  # Parts added (add_counts) whose feature tables and sample are not folded into `features` and `sample` yet
  # (settle): folding every batch on its own re-sorted each feature's whole table once per batch.
  pending: List[SplitCounts] = dataclasses.field(default_factory=list)


# --- Keys -----------------------------------------------------------------------------------------------------------


def numeric_keys(values: np.ndarray, mantissa_bits: int) -> np.ndarray:
  """Order-preserving uint64 keys of float64 values with the mantissa cut to `mantissa_bits` bits (never 0).

  -0.0 and 0.0 share a key, every NaN shares one (above +inf)."""
  v = np.asarray(values, dtype=np.float64) + 0.0  # A new array, and -0.0 + 0.0 is 0.0.
  nan = np.isnan(v)
  if nan.any():
    v[nan] = np.nan
  bits = v.view(np.uint64)
  drop = np.uint64(52 - mantissa_bits)
  bits >>= drop
  bits <<= drop
  # Negative numbers: all bits flipped; others: the sign bit set (as np.where(bits & _SIGN, ~bits, bits | _SIGN)).
  flip = bits >> np.uint64(63)
  flip *= np.uint64(0xFFFFFFFFFFFFFFFF)
  flip |= _SIGN
  bits ^= flip
  return bits


def coarsen_numeric(keys: np.ndarray, level: int, mantissa_bits: int) -> np.ndarray:
  """Keys with `level` more mantissa bits dropped: floored to a multiple of 2^(52 - mantissa_bits + level) in the
  ordered space, so order is kept and coarsening twice is coarsening once to the larger level. Missing stays 0."""
  if level == 0:
    return keys
  shift = np.uint64(52 - mantissa_bits + level)
  return np.where(keys == MISSING_KEY, keys, np.maximum((keys >> shift) << shift, np.uint64(1)))


def fold_categorical(keys: np.ndarray, max_values: int) -> np.ndarray:
  """Hash keys folded into [1, max_values]; idempotent, so folded and unfolded counts can be merged."""
  limit = np.uint64(max_values)
  return np.where(keys <= limit, keys, keys % limit + np.uint64(1))


def label_words(values: np.ndarray, kind: str) -> np.ndarray:
  """uint64 words of labels: float64 bits for numbers (-0.0 as 0.0), string hashes for bytes."""
  if kind == NUMERIC:
    return np.where(values == 0, 0.0, values).astype(np.float64).view(np.uint64)
  return values


def word_to_float(words: np.ndarray) -> np.ndarray:
  return np.asarray(words, dtype=np.uint64).view(np.float64)


# --- Columns --------------------------------------------------------------------------------------------------------


def _value_kind(value_type: pa.DataType) -> Optional[str]:
  if pa.types.is_floating(value_type) or pa.types.is_integer(value_type):
    return NUMERIC
  if pa.types.is_binary(value_type) or pa.types.is_large_binary(value_type) or pa.types.is_string(value_type) \
      or pa.types.is_large_string(value_type):
    return CATEGORICAL
  return None  # null: every value of the batch is missing.


def first_values(column: pa.Array) -> Tuple[np.ndarray, pa.Array, int, Optional[str]]:
  """(rows with a value, their first values, the longest list, value kind) of a tf.Example list column."""
  if pa.types.is_null(column.type):
    return np.zeros(len(column), dtype=bool), pa.array([]), 0, None
  if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
    raise ValueError(f'expected a list column as decoded from tf.Example, got type {column.type}')
  offsets = np.asarray(column.offsets, dtype=np.int64)
  lengths = np.diff(offsets)
  kind = _value_kind(column.type.value_type)
  if column.null_count == 0 and len(column) and lengths.min() == lengths.max() == 1:
    # One value in every row (the common case): the values as they are, no gather.
    return np.ones(len(column), dtype=bool), column.values.slice(int(offsets[0]), len(column)), 1, kind
  present = ~column.is_null().to_numpy(zero_copy_only=False) & (lengths > 0)
  values = column.values.take(pa.array(offsets[:-1][present]))
  return present, values, int(lengths.max(initial=0)), kind


def _as_text(value: Any) -> str:
  return value.decode('utf-8', errors='replace') if isinstance(value, bytes) else str(value)


def _label_column(batch: pa.RecordBatch, options: CountOptions) -> Tuple[np.ndarray, np.ndarray, Optional[str],
                                                                         Dict[int, str]]:
  """(rows with a usable label, label words, label kind, names of string labels). NaN/inf labels are unusable."""
  n = batch.num_rows
  if options.label_key not in batch.schema.names:
    return np.zeros(n, dtype=bool), np.zeros(0, dtype=np.uint64), None, {}
  present, values, _, kind = first_values(batch.column(batch.schema.get_field_index(options.label_key)))
  if kind == NUMERIC:
    numbers = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    finite = np.isfinite(numbers)
    rows = np.flatnonzero(present)
    present = present.copy()
    present[rows[~finite]] = False
    return present, label_words(numbers[finite], NUMERIC), kind, {}
  if kind == CATEGORICAL:
    words = hashing.hash_byte_strings(values)
    names = {}
    unique, first = np.unique(words, return_index=True)
    if len(unique) <= options.max_classes:
      names = {word: _as_text(values[index].as_py()) for word, index in zip(unique.tolist(), first.tolist())}
    return present, words, kind, names
  return np.zeros(n, dtype=bool), np.zeros(0, dtype=np.uint64), None, {}


# --- Reductions -----------------------------------------------------------------------------------------------------


def _runs(*columns: np.ndarray) -> np.ndarray:
  """Start indices of runs of equal rows of the (already sorted) columns."""
  n = len(columns[0])
  starts = np.ones(n, dtype=bool)
  if n:
    np.not_equal(columns[0][1:], columns[0][:-1], out=starts[1:])
    for c in columns[1:]:
      starts[1:] |= c[1:] != c[:-1]
  return np.flatnonzero(starts)


@dataclasses.dataclass(frozen=True)
class _Packing:
  """How the keys of one table (one kind, one coarsening level) become small integers in the same order, and back:
  code = key >> shift, at most `bits` bits; key = code << shift, with the bits below set for negative numbers at
  level 0 (numeric_keys leaves them all 1; coarsening clears them). Sorting codes packed into one word with what goes
  along (a row index, a label index, a count) is several times faster than a stable sort of 64-bit keys."""
  shift: int
  bits: int
  negative_fill: bool = False

  def codes(self, keys: np.ndarray) -> np.ndarray:
    return keys >> np.uint64(self.shift)

  def keys(self, codes: np.ndarray) -> np.ndarray:
    keys = codes.astype(np.uint64) << np.uint64(self.shift)
    if self.negative_fill:
      keys[(keys < _SIGN) & (keys != MISSING_KEY)] |= np.uint64((1 << self.shift) - 1)
    return keys


def _packing(kind: str, level: int, options: CountOptions) -> Optional[_Packing]:
  """The packing of a table's keys; None when they are not small integers (categorical hashes, or numbers so
  coarsened that a key could shift to the missing key's 0)."""
  if kind == CATEGORICAL:
    return _Packing(0, options.max_values.bit_length()) if level else None  # Folded keys are 0..max_values.
  # Every number's key is >= 2^52 before coarsening, so its code is never 0 while shift < 52.
  shift = 52 - options.mantissa_bits + level
  return _Packing(shift, 64 - shift, level == 0) if shift < 52 else None


def _stable_order(keys: np.ndarray, packing: Optional[_Packing] = None) -> np.ndarray:
  """np.argsort(keys, kind='stable'); with `packing`, from one plain sort of (code, row index) words."""
  n = len(keys)
  index_bits = max(1, (n - 1).bit_length())
  if packing is None or packing.bits + index_bits > 64:
    return np.argsort(keys, kind='stable')
  words = packing.codes(keys)
  words <<= np.uint64(index_bits)
  words |= np.arange(n, dtype=np.uint64)
  words.sort()
  words &= np.uint64((1 << index_bits) - 1)
  return words.astype(np.intp)


def _packed_pairs(keys: np.ndarray, labels: np.ndarray, counts: np.ndarray, packing: _Packing,
                  classes: np.ndarray) -> Optional[Tuple[np.ndarray, ...]]:
  """reduce_pairs from one plain sort of (code, label index, count) words; None when they do not fit in 64 bits."""
  class_bits = max(1, (len(classes) - 1).bit_length())
  count_bits = 64 - packing.bits - class_bits
  if count_bits < 1 or int(counts.sum()) >= 1 << count_bits or (len(counts) and int(counts.min()) < 0):
    return None
  words = packing.codes(keys)
  words <<= np.uint64(class_bits)
  words |= np.searchsorted(classes, labels).astype(np.uint64)
  words <<= np.uint64(count_bits)
  words |= counts.astype(np.uint64)
  words.sort()
  groups = words >> np.uint64(count_bits)
  starts = _runs(groups)
  words &= np.uint64((1 << count_bits) - 1)
  sums = np.add.reduceat(words, starts).astype(np.int64)
  groups = groups[starts]
  label_index = (groups & np.uint64((1 << class_bits) - 1)).astype(np.intp)
  return packing.keys(groups >> np.uint64(class_bits)), classes[label_index], sums


def reduce_pairs(keys: np.ndarray, labels: np.ndarray, counts: np.ndarray, packing: Optional[_Packing] = None,
                 classes: Optional[np.ndarray] = None) -> Tuple[np.ndarray, ...]:
  """Sums counts of equal (key, label) pairs; output sorted by key, then label. `classes`: the sorted label words,
  when the caller knows them (a superset of `labels`' distinct values).

  With `packing`, one plain sort of words packing code, label index and count; else one stable sort by key (inputs
  are concatenations of sorted tables, which a stable sort merges in linear time), then a bincount of (run of equal
  keys, label index): no sort by label."""
  if len(keys) == 0:
    return keys.astype(np.uint64), labels.astype(np.uint64), counts.astype(np.int64)
  classes = np.unique(labels) if classes is None else classes
  packed = None if packing is None else _packed_pairs(keys, labels, counts, packing, classes)
  if packed is not None:
    return packed
  order = _stable_order(keys, packing)
  sorted_keys = keys[order]
  starts = _runs(sorted_keys)
  run_of_row = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(keys))))
  width = len(classes)
  table = np.bincount(run_of_row * width + np.searchsorted(classes, labels[order]), weights=counts[order],
                      minlength=len(starts) * width).reshape(len(starts), width)
  runs, columns = np.nonzero(table)
  return sorted_keys[starts][runs], classes[columns], np.rint(table[runs, columns]).astype(np.int64)


def reduce_moments(keys: np.ndarray, n: np.ndarray, total: np.ndarray, sumsq: np.ndarray,
                   packing: Optional[_Packing] = None) -> Tuple[np.ndarray, ...]:
  """Sums count, sum and sum of squares of equal keys; output sorted by key. The sums of a key are added in input
  order (bincount), so reducing tables a, b, c at once gives ((a + b) + c), as adding them one by one does."""
  if len(keys) == 0:
    return keys.astype(np.uint64), n.astype(np.int64), total.astype(np.float64), sumsq.astype(np.float64)
  order = _stable_order(keys, packing)
  keys, n = keys[order], n[order]
  starts = _runs(keys)
  run_of_row = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(keys))))
  return (keys[starts], np.add.reduceat(n, starts).astype(np.int64),
          np.bincount(run_of_row, weights=total[order], minlength=len(starts)),
          np.bincount(run_of_row, weights=sumsq[order], minlength=len(starts)))


def _whole_sums(label_words_: np.ndarray, rows: int) -> bool:
  """Whether the values of a numeric label (its distinct words) are whole numbers whose sums and sums of squares
  over `rows` rows are exact in float64: then a key's label sums are the same whatever the order of their terms."""
  values = word_to_float(label_words_)
  largest = float(np.max(np.abs(values), initial=0.0))
  return bool(np.all(values == np.rint(values))) and rows * max(largest, largest * largest) < 2.0 ** 53


def _moments_from_pairs(fc: FeatureCounts) -> FeatureCounts:
  """fc with its moment tables computed from its pair table (a numeric label; exact when _whole_sums holds)."""
  starts = _runs(fc.pair_keys)
  values = word_to_float(fc.pair_labels)
  weighted = fc.pair_counts * values
  if not len(starts):
    return dataclasses.replace(fc, moment_keys=fc.pair_keys, moment_n=fc.pair_counts, moment_sum=weighted,
                               moment_sumsq=weighted)
  return dataclasses.replace(fc, moment_keys=fc.pair_keys[starts],
                             moment_n=np.add.reduceat(fc.pair_counts, starts).astype(np.int64),
                             moment_sum=np.add.reduceat(weighted, starts),
                             moment_sumsq=np.add.reduceat(weighted * values, starts))


def _apply_coarsening(keys: np.ndarray, kind: str, level: int, options: CountOptions) -> np.ndarray:
  if kind == NUMERIC:
    return coarsen_numeric(keys, level, options.mantissa_bits)
  return fold_categorical(keys, options.max_values) if level else keys


def _distinct_keys(fc: FeatureCounts) -> int:
  """Distinct keys of a table sorted by key (every table is)."""
  keys = fc.pair_keys if fc.pair_keys is not None else fc.moment_keys
  return 0 if keys is None or not len(keys) else 1 + int(np.count_nonzero(keys[1:] != keys[:-1]))


def _recoarsen(fc: FeatureCounts, level: int, options: CountOptions) -> FeatureCounts:
  """The same counts at coarsening `level` (>= the current one), re-reduced."""
  out = FeatureCounts(kind=fc.kind, coarsening=level)
  packing = _packing(fc.kind, level, options)
  if fc.pair_keys is not None:
    out.pair_keys, out.pair_labels, out.pair_counts = reduce_pairs(
        _apply_coarsening(fc.pair_keys, fc.kind, level, options), fc.pair_labels, fc.pair_counts, packing)
  if fc.moment_keys is not None:
    out.moment_keys, out.moment_n, out.moment_sum, out.moment_sumsq = reduce_moments(
        _apply_coarsening(fc.moment_keys, fc.kind, level, options), fc.moment_n, fc.moment_sum, fc.moment_sumsq,
        packing)
  return out


def bound_values(fc: FeatureCounts, options: CountOptions) -> FeatureCounts:
  """Coarsens or folds until at most max_values distinct keys remain."""
  while _distinct_keys(fc) > options.max_values:
    if fc.kind == CATEGORICAL:
      if fc.coarsening:
        break  # Already folded into max_values keys (+ missing).
      fc = _recoarsen(fc, 1, options)
    else:
      if 52 - options.mantissa_bits + fc.coarsening >= 62:
        break  # Nothing left but the sign and a bit of the exponent.
      fc = _recoarsen(fc, fc.coarsening + 1, options)
  return fc


def at_level(fc: FeatureCounts, level: int, options: CountOptions) -> FeatureCounts:
  return fc if fc.coarsening == level else _recoarsen(fc, level, options)


def merge_features(parts: Sequence[FeatureCounts], options: CountOptions, classes: Optional[np.ndarray] = None,
                   whole: bool = False) -> FeatureCounts:
  """The sum of one feature's tables (of one kind) at the coarsest of their levels, with one sort of all their keys
  (adding them one by one re-sorts the growing sum every time); a pair or moment table absent in any part is absent
  in the result. The same counts, and sums added in the same order, as merging them one by one. `classes`: the
  sorted label words, if known; `whole`: _whole_sums holds for the label over all parts' rows, so the moment tables
  are summed from the pair table."""
  level = max(p.coarsening for p in parts)
  parts = [at_level(p, level, options) for p in parts]
  out = FeatureCounts(kind=parts[0].kind, coarsening=level)
  packing = _packing(out.kind, level, options)
  pairs = all(p.pair_keys is not None for p in parts)
  if pairs:
    out.pair_keys, out.pair_labels, out.pair_counts = reduce_pairs(
        *[np.concatenate([getattr(p, f) for p in parts]) for f in ('pair_keys', 'pair_labels', 'pair_counts')],
        packing, classes)
  if all(p.moment_keys is not None for p in parts):
    if pairs and whole:
      out = _moments_from_pairs(out)
    else:
      out.moment_keys, out.moment_n, out.moment_sum, out.moment_sumsq = reduce_moments(
          *[np.concatenate([getattr(p, f) for p in parts]) for f in ('moment_keys', 'moment_n', 'moment_sum',
                                                                     'moment_sumsq')], packing)
  return bound_values(out, options)


# --- One batch ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _BatchLabels:
  """A batch's labels, prepared once for every feature: words, their sorted distinct values and each row's index
  into them (pairs), and values and squares (moments of a numeric label); `whole`: _whole_sums holds for them."""
  words: np.ndarray
  classes: Optional[np.ndarray]
  class_index: Optional[np.ndarray]
  y: Optional[np.ndarray]
  y_squared: Optional[np.ndarray]
  whole: bool = False


@dataclasses.dataclass(frozen=True)
class _Codes:
  """One feature's keys in a batch as small integers in the keys' order (at most `bits` bits, 0 for missing), and
  the way back to keys: `table[code]` (categorical: ranks of a few distinct hashes), else `packing` (numeric)."""
  codes: np.ndarray
  bits: int
  table: Optional[np.ndarray] = None
  packing: Optional[_Packing] = None

  def keys(self, codes: np.ndarray) -> np.ndarray:
    return self.table[codes] if self.table is not None else self.packing.keys(codes)


def _numeric_codes(keys: np.ndarray, options: CountOptions) -> Optional[_Codes]:
  packing = _packing(NUMERIC, 0, options)
  return None if packing is None else _Codes(packing.codes(keys), packing.bits, packing=packing)


def _categorical_codes(words: np.ndarray, indices: np.ndarray, present: np.ndarray, everywhere: bool,
                       options: CountOptions) -> Tuple[np.ndarray, _Codes]:
  """(each present row's key, the codes of every row) from the hashes of a column's distinct strings and each
  present row's index into them: ranks of a few distinct keys, no sort of the rows."""
  distinct_keys = np.maximum(words, np.uint64(options.max_values + 1))
  table = np.unique(distinct_keys)
  codes = _spread((np.searchsorted(table, distinct_keys) + 1)[indices], present, everywhere, 0)
  return distinct_keys[indices], _Codes(codes, len(table).bit_length(), np.append(np.uint64(MISSING_KEY), table))


@dataclasses.dataclass(frozen=True)
class RowCodes:
  """One numeric feature's rows of a batch, not counted yet: per row (code << class_bits | index into the batch's
  sorted label words `classes`), and the packing back to keys. settle counts the rows of several batches with one
  sort, instead of a table per batch merged into the whole."""
  words: np.ndarray
  class_bits: int
  classes: np.ndarray
  packing: _Packing
  moments: bool  # A numeric label: the moment tables too.


def _packed_rows(codes: _Codes, labels: _BatchLabels) -> Tuple[np.ndarray, int]:
  """(code << class_bits | label index per row, class_bits), in 32-bit words when they fit."""
  class_bits = max(1, (len(labels.classes) - 1).bit_length())
  word = np.uint32 if codes.bits + class_bits <= 32 else np.uint64
  words = codes.codes.astype(word)
  words <<= word(class_bits)
  words |= labels.class_index.astype(word)
  return words, class_bits


def _table_from_words(words: np.ndarray, class_bits: int, classes: np.ndarray, keys_of: Callable[[np.ndarray],
                      np.ndarray], moments: bool) -> FeatureCounts:
  """The pair table (and the moment tables summed from it) of rows packed as (code, label index) words, from one
  plain sort of them (in place), no row order needed. Exact sums of whole numbers: the same floats as summing rows."""
  words.sort()
  starts = _runs(words)
  entries = words[starts]
  word = entries.dtype.type
  label_index = (entries & word((1 << class_bits) - 1)).astype(np.intp)
  fc = FeatureCounts(kind='', pair_keys=keys_of(entries >> word(class_bits)), pair_labels=classes[label_index],
                     pair_counts=np.diff(np.append(starts, len(words))).astype(np.int64))
  return _moments_from_pairs(fc) if moments else fc


def _in_classes(rows: RowCodes, classes: np.ndarray, class_bits: int, word: type) -> np.ndarray:
  """rows' words with their label index into `classes` (a superset of rows.classes) in class_bits bits."""
  if rows.class_bits == class_bits and np.array_equal(rows.classes, classes):
    return rows.words.astype(word)
  index = np.searchsorted(classes, rows.classes).astype(word)[rows.words & rows.words.dtype.type(
      (1 << rows.class_bits) - 1)]
  words = (rows.words >> rows.words.dtype.type(rows.class_bits)).astype(word)
  words <<= word(class_bits)
  words |= index
  return words


def _count_rows(parts: Sequence[RowCodes], pooled: bool) -> List[FeatureCounts]:
  """The tables of deferred rows: one for all of them, from one sort, when `pooled` (their label sums are exact in
  any order, or there are none), else one per part, in order (sums added as merging batch by batch adds them)."""
  if not pooled:
    return [_table_from_words(p.words.copy(), p.class_bits, p.classes, p.packing.keys, p.moments) for p in parts]
  classes = np.unique(np.concatenate([p.classes for p in parts]))
  class_bits = max(1, (len(classes) - 1).bit_length())
  word = np.uint32 if parts[0].packing.bits + class_bits <= 32 else np.uint64
  words = np.concatenate([_in_classes(p, classes, class_bits, word) for p in parts])
  return [_table_from_words(words, class_bits, classes, parts[0].packing.keys, parts[0].moments)]


def _feature_counts(kind: str, keys: np.ndarray, labels: _BatchLabels, options: CountOptions,
                    codes: Optional[_Codes] = None, defer: bool = False) -> FeatureCounts:
  """One sort of the feature's keys for both tables: per run of equal keys, a bincount of (run, class) for the pairs
  and sums for the moments; the same arrays, in the same order, as reduce_pairs and reduce_moments give (the sums up
  to rounding: np.add.reduceat adds a run's rows pairwise). With codes (numeric or `codes` given) and pairs whose
  label sums are exact, the same tables from one plain sort of packed words (_table_from_words), or, with `defer`
  and numeric codes, those words uncounted (RowCodes)."""
  if codes is None and kind != CATEGORICAL:
    codes = _numeric_codes(keys, options)
  if codes is not None and labels.classes is not None and (labels.y is None or labels.whole):
    words, class_bits = _packed_rows(codes, labels)
    if defer and codes.packing is not None:
      return FeatureCounts(kind=kind, rows=RowCodes(words, class_bits, labels.classes, codes.packing,
                                                    labels.y is not None))
    fc = _table_from_words(words, class_bits, labels.classes, codes.keys, labels.y is not None)
    return bound_values(dataclasses.replace(fc, kind=kind), options)
  fc = FeatureCounts(kind=kind)
  order = _stable_order(keys, _packing(kind, 0, options))
  sorted_keys = keys[order]
  starts = _runs(sorted_keys)
  run_keys = sorted_keys[starts]
  if labels.classes is not None:
    width = len(labels.classes)
    run_of_row = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(keys))))
    table = np.bincount(run_of_row * width + labels.class_index[order], minlength=len(starts) * width)
    runs, classes = np.nonzero(table.reshape(len(starts), width))
    fc.pair_keys, fc.pair_labels = run_keys[runs], labels.classes[classes]
    fc.pair_counts = table.reshape(len(starts), width)[runs, classes].astype(np.int64)
  if labels.y is not None:
    fc.moment_keys = run_keys
    fc.moment_n = np.diff(np.append(starts, len(keys))).astype(np.int64)
    fc.moment_sum = np.add.reduceat(labels.y[order], starts) if len(keys) else np.zeros(0)
    fc.moment_sumsq = np.add.reduceat(labels.y_squared[order], starts) if len(keys) else np.zeros(0)
  return bound_values(fc, options)


def _spread(values: np.ndarray, present: np.ndarray, everywhere: bool, missing: Any) -> np.ndarray:
  """One entry per row: `values` at the rows where the feature is present, `missing` elsewhere."""
  if everywhere:
    return values
  out = np.full(len(present), missing, dtype=values.dtype)
  out[present] = values
  return out


def count_batch(batch: pa.RecordBatch, options: CountOptions, defer: bool = False) -> SplitCounts:
  """The counts of one RecordBatch of decoded tf.Examples. `defer`: numeric features' rows may be left uncounted
  (FeatureCounts.rows), for settle to count with those of other batches."""
  out = SplitCounts(examples=batch.num_rows)
  labelled, words, label_kind, names = _label_column(batch, options)
  out.labelled = int(labelled.sum())
  if not out.labelled:
    return out
  out.label_kind = label_kind
  unique, class_index, counts = np.unique(words, return_inverse=True, return_counts=True)
  out.label_counts = dict(zip(unique.tolist(), counts.tolist())) if len(unique) <= options.max_classes else None
  out.label_names = names if out.label_counts is not None else {}
  y = y_squared = None
  if label_kind == NUMERIC:
    y = word_to_float(words)
    y_squared = y * y
    out.label_sum, out.label_sumsq = float(y.sum()), float(y_squared.sum())
  with_pairs = out.label_counts is not None
  labels = _BatchLabels(words, unique if with_pairs else None, class_index if with_pairs else None, y, y_squared,
                        with_pairs and y is not None and _whole_sums(unique, len(words)))
  columns: Dict[str, sample_lib.Column] = {}
  rows = slice(None) if out.labelled == batch.num_rows else labelled  # Every row labelled: no copies.
  for index, name in enumerate(batch.schema.names):
    if name == options.label_key or name in options.exclude:
      continue
    present, values, longest, kind = first_values(batch.column(index))
    if longest > options.max_list_length:
      out.skipped[name] = f'lists of up to {longest} values (image- or embedding-like): a first value says nothing'
      columns[name] = sample_lib.Column(sample_lib.UNUSABLE)
      continue
    everywhere = bool(present.all())
    codes = None
    if kind == NUMERIC:
      numbers = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
      keys = _spread(numeric_keys(numbers, options.mantissa_bits), present, everywhere, MISSING_KEY)
      if options.sample_rows:
        columns[name] = sample_lib.Column(sample_lib.NUMERIC, _spread(numbers, present, everywhere, np.nan)[rows])
    elif kind == CATEGORICAL:
      words_of_distinct, indices, distinct = hashing.hash_distinct_strings(values)
      present_keys, codes = _categorical_codes(words_of_distinct, indices, present, everywhere, options)
      keys = _spread(present_keys, present, everywhere, MISSING_KEY)
      codes = dataclasses.replace(codes, codes=codes.codes[rows])
      if options.sample_rows:
        column = _spread(np.maximum(words_of_distinct, np.uint64(1))[indices], present, everywhere, 0)
        columns[name] = sample_lib.Column(sample_lib.CATEGORICAL, column[rows], sample_lib.category_names(distinct))
    else:
      keys = np.full(batch.num_rows, MISSING_KEY, dtype=np.uint64)
      columns[name] = sample_lib.Column(sample_lib.EMPTY)
    out.features[name] = _feature_counts(kind or '', keys[rows], labels, options, codes, defer)
  if options.sample_rows:
    out.sample = sample_lib.from_batch(words, columns, options.sample_rows, options.sample_cells)
  return out


# --- Merging --------------------------------------------------------------------------------------------------------


def add_counts(a: SplitCounts, b: SplitCounts, options: CountOptions) -> SplitCounts:
  """a + b, except that b's feature tables and sample wait in `a.pending` until `settle` folds them in: a is updated
  and returned, b left as it was. Raises ValueError when the label changes type between batches; a feature that
  does is listed in `skipped` (at once, so the reasons given are the ones merging batch by batch gives)."""
  a.examples += b.examples
  a.labelled += b.labelled
  if b.label_kind is not None:
    if a.label_kind is not None and a.label_kind != b.label_kind:
      raise ValueError(f'label {options.label_key!r} is numeric in some examples and bytes in others.')
    a.label_kind = b.label_kind
  a.label_sum += b.label_sum
  a.label_sumsq += b.label_sumsq
  if a.label_counts is not None and b.label_counts is not None:
    for word, count in b.label_counts.items():
      a.label_counts[word] = a.label_counts.get(word, 0) + count
    a.label_names.update(b.label_names)
    if len(a.label_counts) > options.max_classes:
      a.label_counts = None
  else:
    a.label_counts = None
  if a.label_counts is None:
    a.label_names = {}
  for name, reason in b.skipped.items():
    a.skipped.setdefault(name, reason)
  for name, fc in b.features.items():
    known = _kind_so_far(a, name)
    if name not in a.skipped and known and fc.kind and known != fc.kind:
      a.skipped[name] = 'numeric in some examples and bytes in others'
  a.pending.append(b)
  return a


def _kind_so_far(counts: SplitCounts, name: str) -> str:
  """The feature's kind in what `counts` holds, settled or pending ('' when it was always missing)."""
  for fc in [counts.features.get(name), *[p.features.get(name) for p in counts.pending]]:
    if fc is not None and fc.kind:
      return fc.kind
  return ''


def _counted(fcs: List[FeatureCounts], pooled: bool, options: CountOptions) -> List[FeatureCounts]:
  """fcs with deferred rows counted (_count_rows): pooled into one table, else each in its place."""
  deferred = [fc.rows for fc in fcs if fc.rows is not None]
  if not deferred:
    return fcs
  tables = iter([bound_values(dataclasses.replace(fc, kind=NUMERIC), options)
                 for fc in _count_rows(deferred, pooled)])
  if pooled:
    return [fc for fc in fcs if fc.rows is None] + list(tables)
  return [next(tables) if fc.rows is not None else fc for fc in fcs]


def settle(counts: SplitCounts, options: CountOptions) -> SplitCounts:
  """Folds the pending parts' feature tables and samples into `counts` (returned): one sort per feature for all of
  them. Rebinds fields, never writes into their arrays or dicts, so a shallow copy settles apart from its original."""
  if not counts.pending:
    return counts
  parts, counts.pending = counts.pending, []
  tables: Dict[str, List[FeatureCounts]] = {name: [fc] for name, fc in counts.features.items()}
  for part in parts:
    for name, fc in part.features.items():
      tables.setdefault(name, []).append(fc)
  with_pairs = counts.label_counts is not None
  classes = np.array(sorted(counts.label_counts), dtype=np.uint64) if with_pairs else None
  whole = with_pairs and counts.label_kind == NUMERIC and _whole_sums(classes, counts.labelled)
  features = {}
  for name, fcs in tables.items():
    if name in counts.skipped:
      continue
    kind = next((fc.kind for fc in fcs if fc.kind), '')  # A batch where the feature is always missing has no kind.
    fcs = _counted(fcs, whole or counts.label_kind != NUMERIC, options)
    fcs = [dataclasses.replace(fc, kind=kind) if with_pairs else
           dataclasses.replace(fc, kind=kind, pair_keys=None, pair_labels=None, pair_counts=None) for fc in fcs]
    features[name] = fcs[0] if len(fcs) == 1 else merge_features(fcs, options, classes, whole)
  counts.features = features
  samples = [s for s in [counts.sample, *[p.sample for p in parts]] if s is not None]
  if samples:
    counts.sample = sample_lib.merge_all(samples, options.sample_rows, options.sample_cells)
  return counts


def settled(counts: SplitCounts, options: CountOptions) -> SplitCounts:
  """`counts` with nothing pending, leaving `counts` itself as it was."""
  return settle(dataclasses.replace(counts), options) if counts.pending else counts


def merge_all(parts: Iterable[SplitCounts], options: CountOptions) -> SplitCounts:
  """The sum of parts (each settled first: its own sums added before those of the next part), folded at once."""
  merged = SplitCounts()
  for part in parts:
    add_counts(merged, settled(part, options), options)
  return settle(merged, options)


# --- JSON and tables (the Beam job's output; no pickles on disk) -----------------------------------------------------

_ARRAYS = {'pair_keys': np.uint64, 'pair_labels': np.uint64, 'pair_counts': np.int64, 'moment_keys': np.uint64,
           'moment_n': np.int64, 'moment_sum': np.float64, 'moment_sumsq': np.float64}


def to_jsonable(counts: SplitCounts, arrays: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, Any]:
  """`counts` as JSON-able values. With `arrays`, each table is put there under a short name the value refers to (a
  binary file holds them: label_proxy_beam.write_counts) instead of being listed."""
  if counts.pending:
    raise ValueError('to_jsonable needs settled counts (label_proxy_counts.settle).')
  features = {}
  for name, fc in sorted(counts.features.items()):
    entry: Dict[str, Any] = {'kind': fc.kind, 'coarsening': fc.coarsening}
    for field in _ARRAYS:
      value = getattr(fc, field)
      if value is not None:
        entry[field] = value.tolist() if arrays is None else _stashed(arrays, value)
    features[name] = entry
  labels = None if counts.label_counts is None else [[w, c] for w, c in sorted(counts.label_counts.items())]
  return {'examples': counts.examples, 'labelled': counts.labelled, 'label_kind': counts.label_kind,
          'label_counts': labels, 'label_names': [[w, n] for w, n in sorted(counts.label_names.items())],
          'label_sum': counts.label_sum, 'label_sumsq': counts.label_sumsq, 'features': features,
          'skipped': dict(sorted(counts.skipped.items())),
          'sample': None if counts.sample is None else sample_lib.to_jsonable(counts.sample)}


def _stashed(arrays: Dict[str, np.ndarray], value: np.ndarray) -> str:
  name = f'a{len(arrays)}'
  arrays[name] = value
  return name


def from_jsonable(value: Dict[str, Any], arrays: Optional[Mapping[str, np.ndarray]] = None) -> SplitCounts:
  """The inverse of `to_jsonable` (with the same `arrays` when tables were put there); tables of another dtype or
  shape than counts have are refused, not cast."""
  features = {}
  for name, entry in value['features'].items():
    fc = FeatureCounts(kind=entry['kind'], coarsening=int(entry['coarsening']))
    for field, dtype in _ARRAYS.items():
      if field in entry:
        setattr(fc, field, np.asarray(entry[field], dtype=dtype) if arrays is None else
                _table(arrays[entry[field]], dtype, f'{name}.{field}'))
    features[name] = fc
  labels = value['label_counts']
  return SplitCounts(examples=int(value['examples']), labelled=int(value['labelled']), label_kind=value['label_kind'],
                     label_counts=None if labels is None else {int(w): int(c) for w, c in labels},
                     label_names={int(w): str(n) for w, n in value['label_names']},
                     label_sum=float(value['label_sum']), label_sumsq=float(value['label_sumsq']),
                     features=features, skipped=dict(value['skipped']),
                     sample=None if value.get('sample') is None else sample_lib.from_jsonable(value['sample']))


def _table(array: np.ndarray, dtype: type, what: str) -> np.ndarray:
  if array.dtype != np.dtype(dtype) or array.ndim != 1:
    raise ValueError(f'The label-proxy counts hold {what} as {array.dtype} of shape {array.shape}, not a 1-D '
                     f'{np.dtype(dtype)} array: not a file this version wrote.')
  return array


def feature_names(counts: SplitCounts) -> List[str]:
  return sorted(counts.features)
