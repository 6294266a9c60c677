"""Near-duplicate features of whole RecordBatches: LSH band keys plus the compact payload that verifies a candidate.

Each example splits into feature groups, decided per example and feature (no pass over the data needed):
  * exact part: int lists and short strings (fewer than `text_min_tokens` words, after case/whitespace/Unicode
    normalization), plus the layout (which features are present, with which kind and list length). Compared exactly.
  * columns: float features holding exactly one value (tabular). Compared with a per-column relative tolerance.
  * vectors: float features holding two or more values (images, embeddings, signals). Compared by the cosine distance
    of the mean-centred vectors (1 - Pearson correlation), so brightness shifts and contrast changes do not count.
  * text: string features with at least `text_min_tokens` words. Compared by the Jaccard distance of their word-bigram
    sets, after normalization and with punctuation dropped.
A pair is a near-duplicate when the exact parts are equal and every group is within its threshold.

Candidates come from one group per example (vectors, else text, else columns, else the exact part alone), always
keyed together with the exact part, so only examples with the same layout, ints and categories can meet:
  * vectors: SimHash. For mean-centred vectors at angle theta a random hyperplane puts both on the same side with
    probability p = 1 - theta / pi. A band of r bits matches with p^r; with b bands a pair becomes a candidate with
    P = 1 - (1 - p^r)^b. (b, r) are chosen from the threshold: the threshold angle theta* = arccos(1 - t) must reach
    P >= TARGET_RECALL, and among such (b, r) with b <= MAX_BANDS we take the one with the fewest candidates at 2 theta*.
  * text: MinHash. One min-hash matches with probability J (Jaccard similarity); bands as above with p = 1 - t, the far
    point at J*/5 and up to MAX_TEXT_BANDS bands (unrelated texts share frequent bigrams, so J ~ 0.05 is common).
  * columns: quantized keys. log|x| is cut into cells of width w >= 2 delta, delta = -log(1 - tolerance): two values
    within tolerance differ by at most delta in log|x|, so they share a cell or sit within delta of a common border. The
    eval side also emits the neighbouring cell when it is within delta of a border, the train side only its own cell:
    every pair within tolerance then meets (no probability involved). A band keys up to `COLUMN_BAND_SIZE` columns
    picked by a hash of their names; a few bands give other chances when one band's bucket is too large to check.
    Unrelated rows meet in a band when every column of it shares a cell, so more columns per band keep random pairs
    (which grow with train x eval) rare; each eval key forks with probability 2 delta / w per column, so wider cells
    keep the eval side's keys few: `column_cell_width` widens the cells with the band's size (4 delta up to 4 columns,
    12 delta at 8).

Everything is numpy over whole batches; no Python object per example.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tfx_preflight.inputs import hashing

_U64 = np.uint64
_TAG_COLUMN = _U64(0x243f6a8885a308d3)
_TAG_VECTOR = _U64(0x13198a2e03707344)
_TAG_TEXT = _U64(0xa4093822299f31d0)
_TAG_EMPTY = _U64(0x082efa98ec4e6c89)
_TAG_BIGRAM = _U64(0x452821e638d01377)
_PRIMARY_TAGS = {'exact': _U64(0xbe5466cf34e90c6c), 'columns': _U64(0xc0ac29b7c97c50dd),
                 'vectors': _U64(0x3f84d5b5b5470917), 'text': _U64(0x9216d5d98979fb1b)}
_BAND = _U64(0xd1310ba698dfb5ac)
_ZERO_CELL = np.int64(-(1 << 40))
_NAN_CELL = np.int64(-(1 << 41))
_TINY = 1e-30

TARGET_RECALL = 0.995
MAX_BANDS = 24
MAX_TEXT_BANDS = 64
MAX_ROWS = 64
COLUMN_BAND_SIZE = 8
COLUMN_BANDS = 3
SEED = 20260515


def _mix(word, tag) -> np.uint64:
  """fmix64(word ^ tag) (or of word * tag for a small int word) of scalars, without numpy's scalar overflow warning."""
  array = np.array([word], dtype=np.uint64)
  return hashing.fmix64(array * tag if isinstance(word, int) else array ^ tag)[0]


@dataclasses.dataclass(frozen=True)
class NearSettings:
  """Thresholds (what a near-duplicate is) and the LSH bands derived from them; small and picklable."""
  column_tolerance: float = 0.02
  vector_max_distance: float = 0.005
  text_max_distance: float = 0.5
  text_min_tokens: int = 4
  # Strings compared as text (word-bigram Jaccard); off: every string is compared exactly (after normalization), which
  # spares tokenizing every string of every example (the default: see LeakageConfig.near_text).
  text: bool = True
  max_bucket_pairs: int = 100_000
  # Share of train held out as the reference sample (probed against the rest of train: the chance rate of near twins).
  reference_fraction: float = 1.0

  @property
  def vector_bands(self) -> Tuple[int, int]:
    theta = math.acos(max(-1.0, 1.0 - self.vector_max_distance))
    return choose_bands(1 - theta / math.pi, 1 - min(math.pi, 2 * theta) / math.pi)

  @property
  def text_bands(self) -> Tuple[int, int]:
    # Unrelated texts still share frequent bigrams ("of the"): Jaccard ~0.02-0.1, which more rows per band keep apart;
    # more bands (each key is 24 bytes of shuffle) keep the recall at the threshold.
    similarity = 1.0 - self.text_max_distance
    return choose_bands(similarity, similarity / 5, max_bands=MAX_TEXT_BANDS)

  def column_cell_width(self, band_size: int) -> float:
    """4 delta for bands of up to 4 columns, 2 delta wider per column beyond: 1.5^4 ~ 5 eval keys per band at 4
    columns, (1 + 1/6)^8 ~ 3.4 at 8, each band of 8 far more selective than one of 4 (docs/leakage.md)."""
    return 2.0 * max(2, band_size - 2) * self.column_delta

  @property
  def column_delta(self) -> float:
    return -math.log1p(-min(self.column_tolerance, 0.999999))

  def describe(self) -> Dict[str, object]:
    """Thresholds and bands for the report (readable: which distance, which limit, which (bands, rows))."""
    vb, vr = self.vector_bands
    tb, tr = self.text_bands
    return {'columns': {'distance': 'max over columns of |a-b| / max(|a|, |b|)', 'threshold': self.column_tolerance,
                        'bands': COLUMN_BANDS, 'columns_per_band': COLUMN_BAND_SIZE,
                        'cell_width_log': {str(size): round(self.column_cell_width(size), 6)
                                           for size in range(1, COLUMN_BAND_SIZE + 1)}},
            'vectors': {'distance': 'max over float lists of 1 - cos(a - mean(a), b - mean(b))',
                        'threshold': self.vector_max_distance, 'bands': vb, 'rows': vr},
            'text': {'distance': '1 - Jaccard of word bigrams (normalized text, punctuation dropped)',
                     'threshold': self.text_max_distance, 'bands': tb, 'rows': tr,
                     'min_tokens': self.text_min_tokens, 'compared': self.text,
                     **({} if self.text else {'not_compared': _TEXT_OFF})},
            'max_bucket_pairs': self.max_bucket_pairs, 'reference_fraction': self.reference_fraction}


_TEXT_OFF = ('near-text comparison is off (leakage.near_text): strings, long or short, are compared exactly after '
             'case, whitespace and Unicode normalization, so a reworded or edited text is not found as a near copy; '
             'tokenizing every string of every example costs more than the leakage job\'s budget allows by default')


def candidate_probability(p: float, bands: int, rows: int) -> float:
  """P(a pair shares at least one band) when each hash agrees with probability p."""
  return 1.0 - (1.0 - p ** rows) ** bands


def choose_bands(p_near: float, p_far: float, target: float = TARGET_RECALL, max_bands: int = MAX_BANDS,
                 max_rows: int = MAX_ROWS) -> Tuple[int, int]:
  """(bands, rows): P(candidate | p_near) >= target with the fewest candidates at p_far (ties: fewer hashes)."""
  best = None
  for rows in range(1, max_rows + 1):
    near = p_near ** rows
    if near <= 0:
      break
    bands = 1 if near >= target else math.ceil(math.log(1 - target) / math.log(1 - near))
    if bands > max_bands:
      break
    cost = (candidate_probability(p_far, bands, rows), bands * rows)
    if best is None or cost < best[0]:
      best = (cost, (bands, rows))
  return best[1] if best else (max_bands, 1)


# --- Ragged arrays (flat values + row offsets) ---------------------------------------------------------------------


@dataclasses.dataclass
class Ragged:
  values: np.ndarray
  offsets: np.ndarray  # int64, len = rows + 1

  @staticmethod
  def from_lengths(values: np.ndarray, lengths: np.ndarray) -> Ragged:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Ragged(values, offsets)

  @property
  def lengths(self) -> np.ndarray:
    return np.diff(self.offsets)

  def take(self, rows: np.ndarray) -> Ragged:
    lengths = self.lengths[rows]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.repeat(self.offsets[rows] - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
    return Ragged(self.values[flat], offsets)

  def slice(self, start: int, stop: int) -> Ragged:
    """Rows start..stop-1: a view of the values, offsets from 0."""
    offsets = self.offsets[start:stop + 1]
    return Ragged(self.values[offsets[0]:offsets[-1]], offsets - offsets[0])

  def matrix(self, rows: np.ndarray, width: int) -> np.ndarray:
    """The rows (all of length `width`) as a (len(rows), width) matrix."""
    return self.values[self.offsets[rows][:, None] + np.arange(width)[None, :]]

  @staticmethod
  def concat(parts: Sequence[Ragged]) -> Ragged:
    lengths = np.concatenate([p.lengths for p in parts])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Ragged(np.concatenate([p.values for p in parts]), offsets)


def _ragged_from_pieces(num_rows: int, pieces: List[Tuple[np.ndarray, np.ndarray]], dtype) -> Ragged:
  """Builds per-row concatenations of (rows, matrix) pieces, in piece order."""
  if pieces and all(len(rows) == num_rows for rows, _ in pieces):  # Every piece covers every row (rows 0..n-1).
    matrix = np.concatenate([m for _, m in pieces], axis=1).astype(dtype, copy=False)
    return Ragged(matrix.reshape(-1), np.arange(num_rows + 1, dtype=np.int64) * matrix.shape[1])
  lengths = np.zeros(num_rows, dtype=np.int64)
  for rows, matrix in pieces:
    lengths[rows] += matrix.shape[1]
  offsets = np.zeros(num_rows + 1, dtype=np.int64)
  np.cumsum(lengths, out=offsets[1:])
  values = np.zeros(offsets[-1], dtype=dtype)
  cursor = offsets[:-1].copy()
  for rows, matrix in pieces:
    width = matrix.shape[1]
    values[cursor[rows][:, None] + np.arange(width)[None, :]] = matrix
    cursor[rows] += width
  return Ragged(values, offsets)


# --- Per batch -----------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class NearBatch:
  """Band keys (key, row) and per-row payload of one batch."""
  keys: np.ndarray  # uint64
  key_rows: np.ndarray  # int64 row of each key
  exact_part: np.ndarray  # uint64 per row
  shape: np.ndarray  # uint64 per row: column count and vector segment lengths, to group rows for verification
  columns: Ragged  # scalar column values as decoded (float32 for tf.Example: half the shuffle of float64), by name
  vectors: Ragged  # float32 unit mean-centred float lists, concatenated by feature name
  segments: Ragged  # int64 length of each float list in `vectors`
  shingles: Ragged  # uint64 sorted unique word-bigram hashes of all text features
  # The held-out reference rows of a train batch with their probe keys (rows renumbered 0..k-1), when asked for.
  reference: Optional[NearBatch] = None

  def subset(self, rows: np.ndarray, keys: np.ndarray, key_rows: np.ndarray) -> NearBatch:
    """The payload of `rows` with the given keys (key_rows index `rows`)."""
    return NearBatch(keys, key_rows, self.exact_part[rows], self.shape[rows], self.columns.take(rows),
                     self.vectors.take(rows), self.segments.take(rows), self.shingles.take(rows))


def _text_tokens(values: pa.Array) -> Optional[pa.Array]:
  """Word lists of normalized strings (punctuation dropped), or None when the bytes are not UTF-8."""
  normalized = hashing.normalize_text(values)
  try:
    text = normalized.cast(pa.large_string())
  except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
    return None
  text = pc.replace_substring_regex(text, pattern=r'[^\p{L}\p{N}]+', replacement=' ')
  return pc.utf8_split_whitespace(pc.utf8_trim_whitespace(text))


def _bigram_words(token_words: np.ndarray, token_offsets: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Word-bigram hashes per string (a single word counts as its own shingle); returns (words, per-string offsets)."""
  lengths = np.diff(token_offsets)
  first = np.ones(len(token_words), dtype=bool)
  first[token_offsets[:-1][lengths > 0]] = False  # a bigram ends at every token except a string's first one
  ends = np.flatnonzero(first)
  words = hashing.fmix64(token_words[ends - 1] * _TAG_BIGRAM ^ hashing.fmix64(token_words[ends]))
  singles = np.flatnonzero(lengths == 1)
  counts = np.maximum(lengths - 1, 0)
  counts[singles] = 1
  offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
  np.cumsum(counts, out=offsets[1:])
  out = np.zeros(offsets[-1], dtype=np.uint64)
  multi = np.repeat(lengths > 1, counts)
  out[multi] = words
  out[offsets[singles]] = token_words[token_offsets[singles]]
  return out, offsets


class _Builder:
  """Accumulates one batch's groups feature by feature (features in name order)."""

  def __init__(self, num_rows: int):
    self.n = num_rows
    self.exact_part = np.zeros(num_rows, dtype=np.uint64)
    self.shape = np.zeros(num_rows, dtype=np.uint64)  # layout of the float groups alone, to batch verification
    self.column_pieces: List[Tuple[np.ndarray, np.ndarray]] = []
    self.column_names = np.zeros(num_rows, dtype=np.uint64)  # which scalar columns a row has (sum of name words)
    self.vector_pieces: List[Tuple[np.ndarray, np.ndarray]] = []
    self.segment_pieces: List[Tuple[np.ndarray, np.ndarray]] = []
    self.shingle_rows: List[np.ndarray] = []
    self.shingle_words: List[np.ndarray] = []
    self.column_name_list: List[Tuple[np.ndarray, str]] = []

  def add(self, rows: np.ndarray, words: np.ndarray) -> None:
    self.exact_part[rows] += words

  def add_float(self, name: str, name_word: np.uint64, present: np.ndarray, offsets: np.ndarray,
                floats: np.ndarray) -> None:
    lengths = np.diff(offsets)
    one_value = present & (lengths == 1)
    if one_value.all():  # One value in every row (the common tabular case): no empty or longer lists.
      self._add_scalars(np.arange(self.n), name, name_word, floats[offsets[0]:offsets[0] + self.n])
      return
    scalar = np.flatnonzero(one_value)
    if len(scalar):
      self._add_scalars(scalar, name, name_word, floats[offsets[scalar]])
    empty = np.flatnonzero(present & (lengths == 0))
    self.add(empty, np.full(len(empty), _mix(name_word, _TAG_EMPTY)))
    vector_rows = np.flatnonzero(present & (lengths >= 2))
    for length in np.unique(lengths[vector_rows]):
      rows = vector_rows[lengths[vector_rows] == length]
      matrix = floats[offsets[rows][:, None] + np.arange(length)[None, :]]
      self.add(rows, np.full(len(rows), _mix(name_word, _TAG_VECTOR ^ _U64(length))))
      self.shape[rows] += _mix(name_word, _TAG_VECTOR ^ _U64(length))
      self.vector_pieces.append((rows, unit_centred(matrix)))
      self.segment_pieces.append((rows, np.full((len(rows), 1), length, dtype=np.int64)))

  def _add_scalars(self, rows: np.ndarray, name: str, name_word: np.uint64, values: np.ndarray) -> None:
    """The feature's scalar column at `rows` (their one value each); whole-array updates when `rows` is every row,
    where indexing every row cost more than the rest of the column's keying."""
    at = slice(None) if len(rows) == self.n else rows
    word = _mix(name_word, _TAG_COLUMN)
    self.exact_part[at] += word
    self.shape[at] += word
    self.column_names[at] += name_word
    self.column_pieces.append((rows, values[:, None]))  # float32 from tf.Example: kept as is
    self.column_name_list.append((rows, name))

  def add_bytes(self, column: pa.Array, name: str, name_word: np.uint64, present: np.ndarray, offsets: np.ndarray,
                values: pa.Array, min_tokens: Optional[int]) -> None:
    categorical_words, _ = hashing.hash_column(column, name, hashing.NearOptions())
    tokens = _text_tokens(values) if len(values) and min_tokens is not None else None
    if tokens is None:
      rows = np.flatnonzero(present)
      self.add(rows, categorical_words[rows])
      return
    token_offsets = np.asarray(tokens.offsets, dtype=np.int64)
    token_counts = np.diff(token_offsets)
    row_tokens = np.add.reduceat(np.append(token_counts, 0), offsets[:-1]) * (np.diff(offsets) > 0)
    is_text = present & (row_tokens >= min_tokens)
    categorical = np.flatnonzero(present & ~is_text)
    self.add(categorical, categorical_words[categorical])
    text_rows = np.flatnonzero(is_text)
    if not len(text_rows):
      return
    self.add(text_rows, np.full(len(text_rows), _mix(name_word, _TAG_TEXT)))
    flat_tokens = tokens.values.slice(token_offsets[0], token_offsets[-1] - token_offsets[0])
    token_words = hashing.hash_byte_strings(flat_tokens)
    bigrams, string_offsets = _bigram_words(token_words, token_offsets - token_offsets[0])
    string_rows = np.repeat(np.arange(self.n), np.diff(offsets))
    per_string = np.diff(string_offsets)
    shingle_rows = np.repeat(string_rows, per_string)
    keep = is_text[shingle_rows]
    self.shingle_rows.append(shingle_rows[keep])
    self.shingle_words.append(hashing.fmix64(bigrams[keep] ^ name_word))

  def shingles(self) -> Ragged:
    if not self.shingle_rows:
      return Ragged(np.zeros(0, np.uint64), np.zeros(self.n + 1, np.int64))
    rows = np.concatenate(self.shingle_rows)
    words = np.concatenate(self.shingle_words)
    order = np.lexsort((words, rows))
    rows, words = rows[order], words[order]
    keep = np.ones(len(rows), dtype=bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (words[1:] != words[:-1])
    rows, words = rows[keep], words[keep]
    offsets = np.searchsorted(rows, np.arange(self.n + 1)).astype(np.int64)
    return Ragged(words, offsets)


def unit_centred(matrix: np.ndarray) -> np.ndarray:
  """Each row minus its mean, scaled to unit length; a constant row becomes the constant unit vector (so two constant
  rows are at distance 0 and a constant and a varying row at distance 1). NaN/Inf count as 0."""
  x = np.nan_to_num(matrix.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
  x -= x.mean(axis=1, keepdims=True)
  norms = np.linalg.norm(x, axis=1, keepdims=True)
  constant = norms[:, 0] <= 1e-12 * max(1.0, float(np.abs(matrix).max(initial=0.0)) if matrix.size else 1.0)
  x = np.where(constant[:, None], 1.0 / math.sqrt(x.shape[1]), x / np.where(norms > 0, norms, 1.0))
  return x.astype(np.float32)


@functools.lru_cache(maxsize=16)
def _hyperplanes(length: int, bits: int) -> np.ndarray:
  return np.random.default_rng([SEED, length, bits]).standard_normal((length, bits)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _minhash_seeds(count: int) -> Tuple[np.ndarray, np.ndarray]:
  """(xor seeds, odd multipliers): x -> (x ^ s) * m is a bijection of uint64 per hash function; shingle words are
  already fmix64 outputs, so one xor-multiply per (shingle, function) is enough to reorder them (cheaper than a full hash)."""
  seeds = hashing.fmix64(np.arange(1, count + 1, dtype=np.uint64) * _U64(0x9e3779b97f4a7c15))
  return seeds, hashing.fmix64(seeds ^ _BAND) | _U64(1)


def _band_keys(values: np.ndarray, bands: int, rows: int, base: np.ndarray, tag: np.uint64) -> np.ndarray:
  """(k, bands) keys: each band's `rows` words folded together with the row's base word."""
  keys = np.empty((len(base), bands), dtype=np.uint64)
  for band in range(bands):
    word = base ^ tag ^ _mix(band + 1, _BAND)
    for r in range(rows):
      word = hashing.fmix64(word ^ values[:, band * rows + r])
    keys[:, band] = word
  return keys


def vector_keys(vectors: Ragged, rows: np.ndarray, base: np.ndarray, settings: NearSettings) -> np.ndarray:
  """SimHash band keys (len(rows), bands) of rows that all have vectors of the same total length."""
  bands, per_band = settings.vector_bands
  width = int(vectors.lengths[rows[0]])
  projected = vectors.matrix(rows, width) @ _hyperplanes(width, bands * per_band)
  return _band_keys((projected > 0).astype(np.uint64), bands, per_band, base, _PRIMARY_TAGS['vectors'])


def text_keys(shingles: Ragged, rows: np.ndarray, base: np.ndarray, settings: NearSettings) -> np.ndarray:
  """MinHash band keys (len(rows), bands); every row has at least one shingle."""
  bands, per_band = settings.text_bands
  seeds, multipliers = _minhash_seeds(bands * per_band)
  sub = shingles.take(rows)
  hashed = (sub.values[:, None] ^ seeds[None, :]) * multipliers[None, :]
  minimums = np.minimum.reduceat(hashed, sub.offsets[:-1], axis=0)
  return _band_keys(minimums, bands, per_band, base, _PRIMARY_TAGS['text'])


def column_cells(values: np.ndarray, settings: NearSettings, width: float) -> Tuple[np.ndarray, np.ndarray]:
  """(cell, step) per value: the log|x| cell of `width`, signed (2 cell + negative), and the step to the neighbouring
  cell to probe when within delta of its border (-2, +2; 0 when not near one)."""
  x = values.astype(np.float64)
  finite = np.isfinite(x) & (np.abs(x) > _TINY)
  u = np.log(np.abs(np.where(finite, x, 1.0))) / width
  cell = np.floor(u)
  frac = u - cell
  margin = settings.column_delta / width
  direction = ((frac > 1 - margin).astype(np.int64) - (frac < margin)) * 2  # Exclusive: margin <= 1/4.
  cells = cell.astype(np.int64) * 2 + (x < 0)
  if finite.all():
    return cells, direction
  cells = np.where(finite, cells, np.where(np.isnan(x), _NAN_CELL, np.where(np.isinf(x), _NAN_CELL + 1 + (x > 0),
                                                                              _ZERO_CELL)))
  return cells, np.where(finite, direction, 0)


def column_keys(columns: np.ndarray, names: Sequence[str], base: np.ndarray, probe: bool,
                settings: NearSettings) -> Tuple[np.ndarray, np.ndarray]:
  """(keys, row of each key) of rows with the same scalar columns; `probe` adds the neighbouring cells (eval side).

  A band's key is fmix64 of the row's base word plus the sum of its cells times a fixed odd multiplier per column
  position (wrapping): the probed neighbour of a cell then adds one product to the key's word, where hashing the band
  column by column re-hashed every key so far for every column. Equal cells give equal keys either way."""
  picks = _column_bands(tuple(names))
  used = sorted(set().union(*picks))
  position = {column: i for i, column in enumerate(used)}
  width = settings.column_cell_width(len(picks[0]))  # Every band has the same size (_column_bands).
  all_cells, all_directions = column_cells(columns[:, used], settings, width)
  keys, key_rows = [], []
  for band, chosen in enumerate(picks):
    at = [position[column] for column in chosen]
    multipliers = _cell_multipliers(band, len(chosen))
    word = (base ^ (_PRIMARY_TAGS['columns'] ^ _mix(band + 1, _BAND))) + \
        (all_cells[:, at].view(np.uint64) * multipliers).sum(axis=1, dtype=np.uint64)
    rows = np.arange(len(base))
    if probe:  # Each key so far also continues through the neighbouring cell, where the value is within delta of it.
      directions = all_directions[:, at]
      for j in range(len(chosen)):
        turn = np.flatnonzero(directions[rows, j] != 0)
        step = directions[rows[turn], j].view(np.uint64) * multipliers[j]
        word = np.concatenate([word, word[turn] + step])
        rows = np.concatenate([rows, rows[turn]])
    keys.append(hashing.fmix64(word))
    key_rows.append(rows)
  return np.concatenate(keys), np.concatenate(key_rows)


@functools.lru_cache(maxsize=64)
def _cell_multipliers(band: int, size: int) -> np.ndarray:
  """Odd 64-bit multipliers of a band's column positions (column_keys): distinct cells meet by chance only when their
  weighted sums agree modulo 2^64."""
  positions = np.arange(1, size + 1, dtype=np.uint64) * _U64(0x9e3779b97f4a7c15)
  return hashing.fmix64(positions ^ _mix(band + 1, _BAND)) | _U64(1)


@functools.lru_cache(maxsize=256)
def _column_bands(names: Tuple[str, ...]) -> Tuple[Tuple[int, ...], ...]:
  """COLUMN_BANDS picks of COLUMN_BAND_SIZE column positions, by a hash of the names (same names, same picks)."""
  size = min(COLUMN_BAND_SIZE, len(names))
  words = np.array([hashing.name_word(n) for n in names], dtype=np.uint64)
  picks = []
  for band in range(COLUMN_BANDS if len(names) > size else 1):
    order = np.argsort(hashing.fmix64(words ^ _mix(band + 1, _BAND)), kind='stable')
    picks.append(tuple(sorted(int(i) for i in order[:size])))
  return tuple(dict.fromkeys(picks))


def near_batch(batch: pa.RecordBatch, features: Sequence[str], settings: NearSettings, probe: bool,
               reference_rows: Optional[np.ndarray] = None) -> NearBatch:
  """Band keys and payload of every example of `batch` over `features`; `probe`: the eval side of column bands.
  `reference_rows` (sorted): also their probe keys, as `.reference`; their payload is taken from the batch's own."""
  builder = _Builder(batch.num_rows)
  names = set(batch.schema.names)
  for name in sorted(features):
    if name not in names:
      continue
    column = batch.column(name)
    present, offsets, values = hashing.list_parts(column)
    kind = hashing.value_kind(values)
    name_word = hashing.name_word(name)
    if kind == 'float':
      builder.add_float(name, name_word, present, offsets, values.to_numpy(zero_copy_only=False))
    elif kind == 'bytes':
      builder.add_bytes(column, name, name_word, present, offsets, values,
                        settings.text_min_tokens if settings.text else None)
    else:
      words, _ = hashing.hash_column(column, name)
      rows = np.flatnonzero(present)
      builder.add(rows, words[rows])
  exact_part = hashing.fmix64(builder.exact_part)
  columns = _ragged_from_pieces(batch.num_rows, builder.column_pieces,
                                np.result_type(np.float32, *(m.dtype for _, m in builder.column_pieces)))
  vectors = _ragged_from_pieces(batch.num_rows, builder.vector_pieces, np.float32)
  segments = _ragged_from_pieces(batch.num_rows, builder.segment_pieces, np.int64)
  shingles = builder.shingles()
  shape = hashing.fmix64(builder.shape)
  keys, key_rows = _keys(np.ones(batch.num_rows, dtype=bool), exact_part, columns, vectors, shingles, builder,
                         settings, probe)
  near = NearBatch(keys, key_rows, exact_part, shape, columns, vectors, segments, shingles)
  if reference_rows is not None:
    # Only column bands differ on the probing side: the other rows' keys are reused, the column rows' computed again.
    held_out = np.zeros(batch.num_rows, dtype=bool)
    held_out[reference_rows] = True
    probed = held_out & _keyed_by_columns(columns, vectors, shingles)
    reused = held_out[key_rows] & ~probed[key_rows]
    extra, extra_rows = _keys(probed, exact_part, columns, vectors, shingles, builder, settings, probe=True)
    near.reference = near.subset(reference_rows, np.concatenate([keys[reused], extra]),
                                 np.searchsorted(reference_rows, np.concatenate([key_rows[reused], extra_rows])))
  return near


def _holds(sorted_rows: np.ndarray, row: int) -> bool:
  i = np.searchsorted(sorted_rows, row)
  return bool(i < len(sorted_rows) and sorted_rows[i] == row)


def _keyed_by_columns(columns: Ragged, vectors: Ragged, shingles: Ragged) -> np.ndarray:
  """Rows whose band keys come from their scalar columns (no float list, no text)."""
  return (vectors.lengths == 0) & (shingles.lengths == 0) & (columns.lengths > 0)


def _keys(keyed: np.ndarray, exact_part: np.ndarray, columns: Ragged, vectors: Ragged, shingles: Ragged,
          builder: _Builder, settings: NearSettings, probe: bool) -> Tuple[np.ndarray, np.ndarray]:
  """Band keys of the `keyed` rows from each row's primary group: vectors, else text, else columns, else the exact
  part."""
  keys: List[np.ndarray] = []
  key_rows: List[np.ndarray] = []
  has_vector = keyed & (vectors.lengths > 0)
  has_text = keyed & ~has_vector & (shingles.lengths > 0)
  has_columns = keyed & _keyed_by_columns(columns, vectors, shingles)
  exact_only = np.flatnonzero(keyed & ~has_vector & ~has_text & ~has_columns)
  keys.append(hashing.fmix64(exact_part[exact_only] ^ _PRIMARY_TAGS['exact']))
  key_rows.append(exact_only)
  rows = np.flatnonzero(has_vector)
  for width in np.unique(vectors.lengths[rows]):
    chosen = rows[vectors.lengths[rows] == width]
    block = vector_keys(vectors, chosen, exact_part[chosen], settings)
    keys.append(block.reshape(-1))
    key_rows.append(np.repeat(chosen, block.shape[1]))
  rows = np.flatnonzero(has_text)
  if len(rows):
    block = text_keys(shingles, rows, exact_part[rows], settings)
    keys.append(block.reshape(-1))
    key_rows.append(np.repeat(rows, block.shape[1]))
  rows = np.flatnonzero(has_columns)
  for signature in np.unique(builder.column_names[rows]):
    chosen = rows[builder.column_names[rows] == signature]
    names = [name for piece_rows, name in builder.column_name_list if _holds(piece_rows, chosen[0])]
    block, block_rows = column_keys(columns.matrix(chosen, len(names)), names, exact_part[chosen], probe, settings)
    keys.append(block)
    key_rows.append(chosen[block_rows])
  return np.concatenate(keys), np.concatenate(key_rows).astype(np.int64)
