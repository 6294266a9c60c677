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
the counts are the same whatever the batching and the merge order.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np
import pyarrow as pa

from tfx_preflight import hashing
from tfx_preflight import label_proxy_sample as sample_lib

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
  # The row sample of the pair search (label_proxy_sample.py): at most sample_rows rows and sample_cells values.
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


# --- Keys -----------------------------------------------------------------------------------------------------------


def numeric_keys(values: np.ndarray, mantissa_bits: int) -> np.ndarray:
  """Order-preserving uint64 keys of float64 values with the mantissa cut to `mantissa_bits` bits (never 0).

  -0.0 and 0.0 share a key, every NaN shares one (above +inf)."""
  v = np.asarray(values, dtype=np.float64)
  v = np.where(v == 0, 0.0, v)
  v = np.where(np.isnan(v), np.nan, v)
  bits = v.view(np.uint64)
  drop = np.uint64(52 - mantissa_bits)
  bits = (bits >> drop) << drop
  return np.where(bits & _SIGN, ~bits, bits | _SIGN)


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
  present = ~column.is_null().to_numpy(zero_copy_only=False) & (lengths > 0)
  values = column.values.take(pa.array(offsets[:-1][present]))
  return present, values, int(lengths.max(initial=0)), _value_kind(column.type.value_type)


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
    starts[1:] = np.any([c[1:] != c[:-1] for c in columns], axis=0)
  return np.flatnonzero(starts)


def reduce_pairs(keys: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> Tuple[np.ndarray, ...]:
  """Sums counts of equal (key, label) pairs; output sorted by key, then label.

  One stable sort by key (inputs are concatenations of sorted tables, which a stable sort merges in linear time),
  then a bincount of (run of equal keys, label index): no sort by label."""
  if len(keys) == 0:
    return keys.astype(np.uint64), labels.astype(np.uint64), counts.astype(np.int64)
  classes = np.unique(labels)
  order = np.argsort(keys, kind='stable')
  sorted_keys = keys[order]
  starts = _runs(sorted_keys)
  run_of_row = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(keys))))
  width = len(classes)
  table = np.bincount(run_of_row * width + np.searchsorted(classes, labels[order]), weights=counts[order],
                      minlength=len(starts) * width).reshape(len(starts), width)
  runs, columns = np.nonzero(table)
  return sorted_keys[starts][runs], classes[columns], np.rint(table[runs, columns]).astype(np.int64)


def reduce_moments(keys: np.ndarray, n: np.ndarray, total: np.ndarray,
                   sumsq: np.ndarray) -> Tuple[np.ndarray, ...]:
  """Sums count, sum and sum of squares of equal keys; output sorted by key."""
  if len(keys) == 0:
    return keys.astype(np.uint64), n.astype(np.int64), total.astype(np.float64), sumsq.astype(np.float64)
  order = np.argsort(keys, kind='stable')
  keys, n, total, sumsq = keys[order], n[order], total[order], sumsq[order]
  starts = _runs(keys)
  return (keys[starts], np.add.reduceat(n, starts).astype(np.int64), np.add.reduceat(total, starts),
          np.add.reduceat(sumsq, starts))


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
  if fc.pair_keys is not None:
    out.pair_keys, out.pair_labels, out.pair_counts = reduce_pairs(
        _apply_coarsening(fc.pair_keys, fc.kind, level, options), fc.pair_labels, fc.pair_counts)
  if fc.moment_keys is not None:
    out.moment_keys, out.moment_n, out.moment_sum, out.moment_sumsq = reduce_moments(
        _apply_coarsening(fc.moment_keys, fc.kind, level, options), fc.moment_n, fc.moment_sum, fc.moment_sumsq)
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


def merge_feature(a: FeatureCounts, b: FeatureCounts, options: CountOptions) -> FeatureCounts:
  """a + b at the coarser of their two levels; pair or moment tables absent in either are absent in the result."""
  level = max(a.coarsening, b.coarsening)
  a, b = at_level(a, level, options), at_level(b, level, options)
  out = FeatureCounts(kind=a.kind, coarsening=level)
  if a.pair_keys is not None and b.pair_keys is not None:
    out.pair_keys, out.pair_labels, out.pair_counts = reduce_pairs(
        np.concatenate([a.pair_keys, b.pair_keys]), np.concatenate([a.pair_labels, b.pair_labels]),
        np.concatenate([a.pair_counts, b.pair_counts]))
  if a.moment_keys is not None and b.moment_keys is not None:
    out.moment_keys, out.moment_n, out.moment_sum, out.moment_sumsq = reduce_moments(
        *[np.concatenate([getattr(a, f), getattr(b, f)]) for f in ('moment_keys', 'moment_n', 'moment_sum',
                                                                    'moment_sumsq')])
  return bound_values(out, options)


def _drop_pairs(counts: SplitCounts) -> None:
  counts.label_counts = None
  counts.features = {name: dataclasses.replace(fc, pair_keys=None, pair_labels=None, pair_counts=None)
                     for name, fc in counts.features.items()}


# --- One batch ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _BatchLabels:
  """A batch's labels, prepared once for every feature: words, their sorted distinct values and each row's index
  into them (pairs), and values and squares (moments of a numeric label)."""
  words: np.ndarray
  classes: Optional[np.ndarray]
  class_index: Optional[np.ndarray]
  y: Optional[np.ndarray]
  y_squared: Optional[np.ndarray]


def _feature_counts(kind: str, keys: np.ndarray, labels: _BatchLabels, options: CountOptions) -> FeatureCounts:
  """One sort of the feature's keys for both tables: per run of equal keys, a bincount of (run, class) for the pairs
  and sums for the moments; the same arrays, in the same order, as reduce_pairs and reduce_moments give."""
  fc = FeatureCounts(kind=kind)
  order = np.argsort(keys, kind='stable')
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


def count_batch(batch: pa.RecordBatch, options: CountOptions) -> SplitCounts:
  """The counts of one RecordBatch of decoded tf.Examples."""
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
  labels = _BatchLabels(words, unique if with_pairs else None, class_index if with_pairs else None, y, y_squared)
  columns: Dict[str, sample_lib.Column] = {}
  for index, name in enumerate(batch.schema.names):
    if name == options.label_key or name in options.exclude:
      continue
    present, values, longest, kind = first_values(batch.column(index))
    if longest > options.max_list_length:
      out.skipped[name] = f'lists of up to {longest} values (image- or embedding-like): a first value says nothing'
      columns[name] = sample_lib.Column(sample_lib.UNUSABLE)
      continue
    keys = np.full(batch.num_rows, MISSING_KEY, dtype=np.uint64)
    if kind == NUMERIC:
      numbers = values.to_numpy(zero_copy_only=False)
      keys[present] = numeric_keys(numbers, options.mantissa_bits)
      if options.sample_rows:
        column = np.full(batch.num_rows, np.nan)
        column[present] = numbers
        columns[name] = sample_lib.Column(sample_lib.NUMERIC, column[labelled])
    elif kind == CATEGORICAL:
      hashes = hashing.hash_byte_strings(values)
      keys[present] = np.maximum(hashes, np.uint64(options.max_values + 1))
      if options.sample_rows:
        column = np.zeros(batch.num_rows, dtype=np.uint64)
        column[present] = np.maximum(hashes, np.uint64(1))
        columns[name] = sample_lib.Column(sample_lib.CATEGORICAL, column[labelled], sample_lib.category_names(values))
    else:
      columns[name] = sample_lib.Column(sample_lib.EMPTY)
    out.features[name] = _feature_counts(kind or '', keys[labelled], labels, options)
  if options.sample_rows:
    out.sample = sample_lib.from_batch(words, columns, options.sample_rows, options.sample_cells)
  return out


# --- Merging --------------------------------------------------------------------------------------------------------


def merge_split_counts(a: SplitCounts, b: SplitCounts, options: CountOptions) -> SplitCounts:
  """a + b: a is updated and returned, b left as it was. Raises ValueError when the label changes type between
  batches; a feature that does is listed in `skipped`."""
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
      _drop_pairs(a)
  else:
    _drop_pairs(a)
  if a.label_counts is None:
    a.label_names = {}
  for name, reason in b.skipped.items():
    a.skipped.setdefault(name, reason)
  for name, fc in b.features.items():
    fc = dataclasses.replace(fc)  # A shallow copy: b is never changed (its arrays are never written in place).
    if a.label_counts is None:
      fc.pair_keys = fc.pair_labels = fc.pair_counts = None
    mine = a.features.get(name)
    if mine is None:
      a.features[name] = fc
    elif mine.kind and fc.kind and mine.kind != fc.kind:
      a.skipped.setdefault(name, 'numeric in some examples and bytes in others')
    else:
      mine.kind = fc.kind = mine.kind or fc.kind  # A batch where the feature is always missing has no kind.
      a.features[name] = merge_feature(mine, fc, options)
  for name in a.skipped:
    a.features.pop(name, None)
  if b.sample is not None:
    a.sample = b.sample if a.sample is None else sample_lib.merge(a.sample, b.sample, options.sample_rows,
                                                                  options.sample_cells)
  return a


def merge_all(parts: Iterable[SplitCounts], options: CountOptions) -> SplitCounts:
  merged = SplitCounts()
  for part in parts:
    merge_split_counts(merged, part, options)
  return merged


# --- JSON (the Beam job's output; no pickles on disk) -------------------------------------------------------------

_ARRAYS = {'pair_keys': np.uint64, 'pair_labels': np.uint64, 'pair_counts': np.int64, 'moment_keys': np.uint64,
           'moment_n': np.int64, 'moment_sum': np.float64, 'moment_sumsq': np.float64}


def to_jsonable(counts: SplitCounts) -> Dict[str, Any]:
  features = {}
  for name, fc in sorted(counts.features.items()):
    entry: Dict[str, Any] = {'kind': fc.kind, 'coarsening': fc.coarsening}
    for field in _ARRAYS:
      value = getattr(fc, field)
      if value is not None:
        entry[field] = value.tolist()
    features[name] = entry
  labels = None if counts.label_counts is None else [[w, c] for w, c in sorted(counts.label_counts.items())]
  return {'examples': counts.examples, 'labelled': counts.labelled, 'label_kind': counts.label_kind,
          'label_counts': labels, 'label_names': [[w, n] for w, n in sorted(counts.label_names.items())],
          'label_sum': counts.label_sum, 'label_sumsq': counts.label_sumsq, 'features': features,
          'skipped': dict(sorted(counts.skipped.items())),
          'sample': None if counts.sample is None else sample_lib.to_jsonable(counts.sample)}


def from_jsonable(value: Dict[str, Any]) -> SplitCounts:
  features = {}
  for name, entry in value['features'].items():
    fc = FeatureCounts(kind=entry['kind'], coarsening=int(entry['coarsening']))
    for field, dtype in _ARRAYS.items():
      if field in entry:
        setattr(fc, field, np.asarray(entry[field], dtype=dtype))
    features[name] = fc
  labels = value['label_counts']
  return SplitCounts(examples=int(value['examples']), labelled=int(value['labelled']), label_kind=value['label_kind'],
                     label_counts=None if labels is None else {int(w): int(c) for w, c in labels},
                     label_names={int(w): str(n) for w, n in value['label_names']},
                     label_sum=float(value['label_sum']), label_sumsq=float(value['label_sumsq']),
                     features=features, skipped=dict(value['skipped']),
                     sample=None if value.get('sample') is None else sample_lib.from_jsonable(value['sample']))


def feature_names(counts: SplitCounts) -> List[str]:
  return sorted(counts.features)
