"""Canonical content hashes of whole Arrow RecordBatches of tf.Examples, vectorised with numpy; no Beam needed.

One 128-bit hash per example (two 64-bit lanes) over the selected features, canonical so that equal content gives
equal hashes whatever the encoding accident:
  * independent of feature order: each feature's hash includes its name and features are summed (mod 2^64);
  * -0.0 and 0.0 hash alike, and so do all NaN bit patterns;
  * lists are ordered and their lengths are hashed, so [1, 2], [3] != [1], [2, 3];
  * a missing feature, a feature with no value kind (`Feature()`) and an empty list all contribute nothing: they are
    one content written three ways. CsvExampleGen writes an empty cell as `Feature()` when the column is empty in the
    whole split and as an empty typed list otherwise, and tfx-bsl decodes a feature no example of a batch typed as an
    Arrow `null` column, so the same row would otherwise hash differently depending on its neighbours;
  * bytes and strings are hashed exactly, byte by byte.

Collision odds: with two 64-bit lanes the hash behaves like a 128-bit random hash, so the probability that any two of
n distinct examples collide is about n^2 / 2^129: about 1.5e-21 for n = 1e9 (a single 64-bit hash would give ~2.7%).

Work is per column, never per example: each element becomes one 64-bit word (float bits, int bits or the hash of a
byte string), is mixed with its position in the list (murmur3 fmix64, a bijection), and list sums come from a cumulative
sum over the flat values indexed by the list offsets. Byte strings are dictionary-encoded first (C++), so a categorical
column costs one hash per distinct value.

Reading the files (with the record index of each example) lives in `records`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_U64 = np.uint64
_M1 = _U64(0xff51afd7ed558ccd)
_M2 = _U64(0xc4ceb9fe1a85ec53)
_LANE_B = _U64(0x9e3779b97f4a7c15)
_POS = _U64(0xd6e8feb86659fd93)
_LEN = _U64(0xa0761d6478bd642f)
_BYTE_SEED = _U64(0xe7037ed1a0b428db)
_EMPTY_TAG = _U64(0)
_TYPE_TAGS = {'float': _U64(0x8ebc6af09c88c6e3), 'int': _U64(0x589965cc75374cc3), 'bytes': _U64(0x1d8e4e27c47d124f)}
_NAN_WORD = _U64(0x7ff8000000000001)
_POS_INF_WORD = _U64(0x7ff0000000000001)
_NEG_INF_WORD = _U64(0xfff0000000000001)
MAX_SIGNIFICANT_DIGITS = 15

HASH_LANES = 2


@dataclasses.dataclass(frozen=True)
class NearOptions:
  """How a canonicalising hash treats values: text normalized, floats rounded (near_features keys short strings
  with it; near-duplicates themselves are found and verified in near_features / near_duplicates)."""
  float_significant_digits: int = 3


def fmix64(x: np.ndarray) -> np.ndarray:
  """murmur3's 64-bit finalizer: a bijection on uint64 with full avalanche."""
  x = x ^ (x >> _U64(33))  # A new array; the steps below work in it in place.
  x *= _M1
  x ^= x >> _U64(33)
  x *= _M2
  x ^= x >> _U64(33)
  return x


def _lane_b(x: np.ndarray) -> np.ndarray:
  """A second, non-linear function of the same words: the second 64-bit lane."""
  x = (x ^ (x >> _U64(29))) * _LANE_B
  return x ^ (x >> _U64(32))


@functools.lru_cache(maxsize=4096)
def name_word(name: str) -> np.uint64:
  """A 64-bit word for a feature name (stable across processes, unlike Python's hash())."""
  data = np.frombuffer(name.encode('utf-8'), dtype=np.uint8)
  return _U64(_hash_bytes_flat(data, np.array([0, len(data)], dtype=np.int64))[0])


def _segment_sums(words: np.ndarray, offsets: np.ndarray) -> np.ndarray:
  """Sum (mod 2^64) of words[offsets[i]:offsets[i+1]] for every i, via one cumulative sum."""
  cumulative = np.zeros(len(words) + 1, dtype=np.uint64)
  np.cumsum(words, out=cumulative[1:])
  return cumulative[offsets[1:]] - cumulative[offsets[:-1]]


def _positions(offsets: np.ndarray) -> np.ndarray:
  lengths = np.diff(offsets)
  return np.arange(offsets[-1] - offsets[0], dtype=np.int64) - np.repeat(offsets[:-1] - offsets[0], lengths)


def _hash_bytes_flat(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
  """One 64-bit word per byte string given the flat bytes and string offsets: each byte is mixed with its position."""
  offsets = offsets.astype(np.int64)
  data = data[offsets[0]:offsets[-1]]
  offsets = offsets - offsets[0]
  positions = _positions(offsets).astype(np.uint64)
  words = fmix64((positions << _U64(8)) ^ data.astype(np.uint64) ^ _BYTE_SEED)
  lengths = np.diff(offsets).astype(np.uint64)
  return fmix64(_segment_sums(words, offsets) ^ fmix64(lengths * _LEN + _BYTE_SEED))


def _binary_offsets_and_data(values: pa.Array) -> Tuple[np.ndarray, np.ndarray]:
  offset_type = np.int64 if pa.types.is_large_binary(values.type) or pa.types.is_large_string(values.type) else np.int32
  buffers = values.buffers()
  offsets = np.frombuffer(buffers[1], dtype=offset_type)[values.offset:values.offset + len(values) + 1]
  data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
  return offsets, data


def hash_byte_strings(values: pa.Array) -> np.ndarray:
  """One 64-bit word per string of a (large_)binary/string array; distinct values are hashed once."""
  if len(values) == 0:
    return np.zeros(0, dtype=np.uint64)
  words, indices, _ = hash_distinct_strings(values)
  return words[indices]


def hash_distinct_strings(values: pa.Array) -> Tuple[np.ndarray, np.ndarray, pa.Array]:
  """(a 64-bit word per distinct string, each value's index into them, the distinct strings) of a (large_)binary/string
  array: hash_byte_strings(values) is words[indices]."""
  if len(values) == 0:
    return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64), values
  encoded = pc.dictionary_encode(values)
  dictionary = encoded.dictionary
  hashed = dictionary
  if pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type):
    hashed = dictionary.cast(pa.large_binary())
  offsets, data = _binary_offsets_and_data(hashed)
  return _hash_bytes_flat(data, offsets), encoded.indices.to_numpy(zero_copy_only=False), dictionary


def normalize_text(values: pa.Array) -> pa.Array:
  """Unicode NFKC, lower case, whitespace runs collapsed and trimmed; bytes that are not UTF-8 are kept as they are."""
  dictionary_encoded = pc.dictionary_encode(values)
  dictionary = dictionary_encoded.dictionary
  try:
    text = dictionary.cast(pa.large_string())
  except pa.ArrowInvalid:
    return values
  text = pc.utf8_normalize(text, form='NFKC')
  text = pc.utf8_lower(text)
  text = pc.replace_substring_regex(text, pattern=r'\s+', replacement=' ')
  text = pc.utf8_trim_whitespace(text)
  return pc.take(text.cast(pa.large_binary()), dictionary_encoded.indices)


def _canonical_float_words(values: np.ndarray) -> np.ndarray:
  """float32 bits with -0.0 folded into 0.0 and every NaN into one word."""
  values = values.astype(np.float32, copy=True)
  values[values == 0] = 0.0
  words = values.view(np.uint32).astype(np.uint64)
  words[np.isnan(values)] = _NAN_WORD
  return words


def quantized_float_words(values: np.ndarray, significant_digits: int) -> np.ndarray:
  """Words equal for floats that agree to `significant_digits` significant decimal digits (rounded, not truncated)."""
  digits = min(int(significant_digits), MAX_SIGNIFICANT_DIGITS)
  x = values.astype(np.float64)
  finite = np.isfinite(x) & (x != 0)
  magnitude = np.abs(np.where(finite, x, 1.0))
  exponent = np.floor(np.log10(magnitude))
  mantissa = np.rint(np.where(finite, x, 0.0) / 10.0 ** (exponent - digits + 1))
  overflow = np.abs(mantissa) >= 10.0 ** digits  # 9.996 -> 1000 at 3 digits: renormalise to 100e1.
  mantissa[overflow] = np.rint(mantissa[overflow] / 10.0)
  exponent[overflow] += 1
  exponent = np.where(finite, exponent, 0.0)
  words = (mantissa.astype(np.int64).view(np.uint64) << _U64(12)) ^ (exponent + 2048).astype(np.uint64)
  words[np.isnan(x)] = _NAN_WORD
  words[x == np.inf] = _POS_INF_WORD
  words[x == -np.inf] = _NEG_INF_WORD
  return words


def list_parts(column: pa.Array) -> Tuple[np.ndarray, np.ndarray, pa.Array]:
  """(present mask, offsets rebased to 0, flat values) of a list column, whatever its slicing.

  A column of Arrow type null is what tfx-bsl's decoder makes of a feature that no example of the batch has a value
  kind for (absent, or `Feature()` with no list set: tf.Example cannot tell them apart): every row is missing, exactly
  as those rows read in a batch where other examples typed the feature."""
  if pa.types.is_null(column.type):
    return (np.zeros(len(column), dtype=bool), np.zeros(len(column) + 1, dtype=np.int64),
            pa.array([], type=pa.null()))
  if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
    raise ValueError(f'expected a list column as decoded from tf.Example, got type {column.type}')
  # No null (most columns of most batches): no mask to build and convert (~14 of its ~25 us per column).
  present = np.ones(len(column), dtype=bool) if column.null_count == 0 else \
      ~column.is_null().to_numpy(zero_copy_only=False)
  offsets = np.asarray(column.offsets, dtype=np.int64)
  values = column.values.slice(offsets[0], offsets[-1] - offsets[0])
  return present, offsets - offsets[0], values


def value_kind(values: pa.Array) -> str:
  """'float', 'int', 'bytes' or 'null' (no value in the batch): how a list column's values are hashed."""
  value_type = values.type
  if pa.types.is_floating(value_type):
    return 'float'
  if pa.types.is_integer(value_type):
    return 'int'
  if pa.types.is_binary(value_type) or pa.types.is_large_binary(value_type) or pa.types.is_string(value_type) or \
      pa.types.is_large_string(value_type):
    return 'bytes'
  if pa.types.is_null(value_type):
    return 'null'
  raise ValueError(f'unsupported value type {value_type}')


def _value_words(values: pa.Array, kind: str, near: Optional[NearOptions]) -> np.ndarray:
  if kind == 'float':
    floats = values.to_numpy(zero_copy_only=False)
    if near is None:
      return _canonical_float_words(floats)
    return quantized_float_words(floats, near.float_significant_digits)
  if kind == 'int':
    return values.to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64)
  if kind == 'bytes':
    return hash_byte_strings(normalize_text(values) if near is not None else values)
  return np.zeros(len(values), dtype=np.uint64)


def hash_column(column: pa.Array, name: str, near: Optional[NearOptions] = None) -> Tuple[np.ndarray, np.ndarray]:
  """Per-row (hash lane A, present mask) of one list column; lane A words include the name, type and length."""
  present, offsets, values = list_parts(column)
  kind = value_kind(values)
  lengths = np.diff(offsets)
  words = _value_words(values, kind, near)
  if lengths.size and lengths.max(initial=0) > 1:
    words = fmix64(words ^ fmix64(_positions(offsets).astype(np.uint64) * _POS))
    sums = _segment_sums(words, offsets)
  elif len(words) == len(lengths):  # Every list has exactly one value: no positions, no cumulative sum, and the
    # length-and-type word is the same in every row.
    sums = fmix64(words)
    sums ^= _length_word(1, _TYPE_TAGS.get(kind, _EMPTY_TAG)) ^ name_word(name)
    return fmix64(sums), present
  else:
    sums = _segment_sums(fmix64(words), offsets)
  tags = np.where(lengths > 0, _TYPE_TAGS.get(kind, _EMPTY_TAG), _EMPTY_TAG)
  row_words = fmix64(sums ^ fmix64(lengths.astype(np.uint64) * _LEN ^ tags) ^ name_word(name))
  return row_words, present & (lengths > 0)


@functools.lru_cache(maxsize=16)
def _length_word(length: int, tag: np.uint64) -> np.uint64:
  """hash_column's word for a list's length and value type, as a scalar (the same as its per-row form)."""
  return fmix64(np.array([length], dtype=np.uint64) * _LEN ^ tag)[0]


def selected_features(batch: pa.RecordBatch, exclude: Iterable[str]) -> List[str]:
  excluded = set(exclude)
  return sorted(n for n in batch.schema.names if n not in excluded)


def hash_batch(batch: pa.RecordBatch, features: Sequence[str], near: Optional[NearOptions] = None) -> np.ndarray:
  """(num_rows, 2) uint64 content hashes of `batch` over `features` (those absent from the batch count as missing)."""
  lane_a = np.zeros(batch.num_rows, dtype=np.uint64)
  lane_b = np.zeros(batch.num_rows, dtype=np.uint64)
  names = set(batch.schema.names)
  for name in sorted(features):
    if name not in names:
      continue
    words, present = hash_column(batch.column(name), name, near)
    words = np.where(present, words, _U64(0))
    lane_a += words
    lane_b += np.where(present, _lane_b(words), _U64(0))
  return np.stack([fmix64(lane_a), fmix64(lane_b ^ _LANE_B)], axis=1)


def hash_single_feature(batch: pa.RecordBatch, name: str) -> Tuple[np.ndarray, np.ndarray]:
  """(num_rows, 2) hashes of one feature (labels, group keys) and its present mask (all False if absent)."""
  if name not in batch.schema.names:
    return np.zeros((batch.num_rows, 2), dtype=np.uint64), np.zeros(batch.num_rows, dtype=bool)
  words, present = hash_column(batch.column(name), name)
  return np.stack([words, _lane_b(words)], axis=1), present


def hex_digest(hash_row: np.ndarray) -> str:
  return f'{int(hash_row[0]):016x}{int(hash_row[1]):016x}'
