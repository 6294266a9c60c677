"""The near-duplicate join's steps, in numpy: band buckets -> cross-split candidate pairs -> verified by real distance
-> counted. leakage_beam.py runs them as three shuffles inside leakage's one pipeline; no all-pairs step, nothing on
the driver but small counters, and only the payloads (the values verification needs) of examples in some candidate
pair shuffled, picked by the pairs' ids (a side input) from the read step's payloads:
  1. Bands: per batch (near_features.near_batch) the band keys with the example's id go to shards by key. Per shard,
     `bucket_pairs` keeps the buckets holding both a train and an eval key and pairs each eval example with each
     train example of the bucket (a bucket with more than max_bucket_pairs pairs is skipped and counted: this bounds
     work and memory), dropping repeats.
  2. Train side: the pairs, sharded by their train example, meet the train payloads of that shard (`attach_train`).
  3. Eval side: the pairs with their train payload, sharded by their eval example, meet the eval payloads of that
     shard (`verify_eval_shard`): every pair is verified by its real distance and each eval example keeps its best
     verified pair, so an eval example found by several bands counts once. Then counts, samples, duplicates.tsv lines.
A held-out reference sample of train (ids flagged with REFERENCE_FLAG) goes through the same join as if it were an
eval split, so the chance rate of near twins within train is measured the same way (duplicate_chance.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from tfx_preflight import file_writes
from tfx_preflight.checks.leakage import wire
from tfx_preflight.checks.leakage.near_features import NearBatch, NearSettings, Ragged
from tfx_preflight.inputs import hashing

GROUPS = ('columns', 'vectors', 'text')
# Columns of a best-pair record (float64 matrix rows).
BEST_FIELDS = ('eval_split', 'eval_file', 'eval_index', 'train_file', 'train_index', 'not_exact', 'score',
               'label_conflict', 'columns', 'vectors', 'text', 'groups')
_F = {name: i for i, name in enumerate(BEST_FIELDS)}
_INDEX_BITS = 40
_INDEX_MASK = np.int64((1 << _INDEX_BITS) - 1)
# Records of a file per payload-shard block (id_shard): the read pass's batch size, so a batch is one block or two.
_BLOCK_BITS = 13
# Set in the ids of the held-out reference sample of train (leakage_beam.NEAR_REFERENCE), which are probed like eval
# rows against train: its ids differ from their own train rows', and a pair of a row with itself is dropped.
REFERENCE_FLAG = np.int64(1 << 62)
_LOCATION = np.int64((1 << 62) - 1)
_ARRAYS = ('split', 'row_id', 'exact', 'label', 'exact_part', 'shape')
_RAGGED = ('columns', 'vectors', 'segments', 'shingles')
_PACKED = ('split', 'row_id', 'label', 'exact_part', 'shape')
# The band join sorts every key of its shard at once (several per example, most in no shared bucket): more, smaller
# shards than the payload joins keep that working set small. Results do not depend on it.
BAND_SHARDS_PER_SHARD = 4


@dataclasses.dataclass
class Payload:
  """What verification needs of some examples: where they are, their hashes and their feature groups."""
  split: np.ndarray  # int64 split id (0: train)
  row_id: np.ndarray  # int64 file id << 40 | record index
  # The content hash's first 64-bit lane: a pair within every threshold with equal lanes is an exact copy (a false
  # match needs a 64-bit collision between two examples already near each other); half the bytes of both lanes.
  exact: np.ndarray
  label: np.ndarray
  exact_part: np.ndarray
  shape: np.ndarray
  columns: Ragged
  vectors: Ragged
  segments: Ragged
  shingles: Ragged

  def to_wire(self, *leading: np.ndarray) -> bytes:
    """The payload (after `leading` integer arrays) as one wire blob: the payloads of every example are shuffled."""
    arrays = [*leading, *(getattr(self, f) for f in _ARRAYS)]
    packed = [True] * len(leading) + [f in _PACKED for f in _ARRAYS]
    for field in _RAGGED:
      ragged = getattr(self, field)
      arrays += [ragged.values, ragged.lengths]
      packed += [False, True]
    return wire.encode(arrays, packed)

  @staticmethod
  def from_wire(blob: bytes, leading: int = 0) -> Tuple[List[np.ndarray], Payload]:
    """(the `leading` arrays, the payload) of a `to_wire` blob."""
    arrays = wire.decode(blob)
    fields = arrays[leading:]
    ragged = [Ragged.from_lengths(fields[i], fields[i + 1]) for i in range(len(_ARRAYS), len(fields), 2)]
    return arrays[:leading], Payload(*fields[:len(_ARRAYS)], *ragged)

  def take(self, rows: np.ndarray) -> Payload:
    return Payload(*(getattr(self, f)[rows] for f in _ARRAYS), *(getattr(self, f).take(rows) for f in _RAGGED))

  def slice(self, start: int, stop: int) -> Payload:
    """Rows start..stop-1, as views."""
    return Payload(*(getattr(self, f)[start:stop] for f in _ARRAYS),
                   *(getattr(self, f).slice(start, stop) for f in _RAGGED))

  @staticmethod
  def concat(parts: Sequence[Payload]) -> Payload:
    return Payload(*(np.concatenate([getattr(p, f) for p in parts]) for f in _ARRAYS),
                   *(Ragged.concat([getattr(p, f) for p in parts]) for f in _RAGGED))


def row_ids(file_id: np.ndarray, index: np.ndarray) -> np.ndarray:
  return (file_id.astype(np.int64) << _INDEX_BITS) | index.astype(np.int64)


def in_reference(file_id: np.ndarray, index: np.ndarray, fraction: float) -> np.ndarray:
  """Whether each train row is in the held-out reference sample: a fixed hash of its location below the fraction."""
  if fraction >= 1.0:
    return np.ones(len(index), dtype=bool)
  words = hashing.fmix64(row_ids(file_id, index).astype(np.uint64) ^ np.uint64(0x5bd1e9955bd1e995))
  return words < np.uint64(int(fraction * float(1 << 63)) << 1)


def id_shard(ids: np.ndarray, num_shards: int) -> np.ndarray:
  """The payload shard of each example id. Consecutive blocks of 2^_BLOCK_BITS records of a file go to consecutive
  shards, from a start hashed from the file id (and reference flag): a batch's payload then ships as one or two
  contiguous slices instead of being gathered shard by shard (~2 ms less per 8,192-row batch), and the shards stay as
  even as round robin makes them."""
  ids = ids.astype(np.int64)
  start = hashing.fmix64((ids >> _INDEX_BITS).astype(np.uint64))
  block = ((ids & _INDEX_MASK) >> _BLOCK_BITS).astype(np.uint64)
  return ((start + block) % np.uint64(num_shards)).astype(np.int64)


def _run_bounds(values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """(starts, stops) of each run of equal values (sorted keys, shard numbers), in order; none for no values."""
  if not len(values):
    return np.zeros(0, np.int64), np.zeros(0, np.int64)
  starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
  return starts, np.append(starts[1:], len(values))


def shard_runs(shard: np.ndarray) -> List[Tuple[int, int, int]]:
  """(shard, start, stop) of each run of equal shard numbers, in order."""
  return [(int(shard[a]), int(a), int(b)) for a, b in zip(*_run_bounds(shard))]


def split_by_shard(shard: np.ndarray, num_shards: int) -> Iterable[Tuple[int, np.ndarray]]:
  """(shard, positions in it) of every non-empty shard, positions in order."""
  order = _shard_order(shard, num_shards)
  bounds = np.searchsorted(shard[order], np.arange(num_shards + 1))
  for s in range(num_shards):
    if bounds[s] < bounds[s + 1]:
      yield s, order[bounds[s]:bounds[s + 1]]


def _shard_order(shard: np.ndarray, num_shards: int) -> np.ndarray:
  """A stable argsort of shard numbers, in the smallest integer type: numpy sorts 8- and 16-bit integers by radix,
  several times faster than 64-bit ones (every band key, payload row and exact hash of every batch goes through here)."""
  return np.argsort(shard.astype(np.min_scalar_type(max(num_shards - 1, 0))), kind='stable')


def band_shards(num_shards: int) -> int:
  """Shards of the band join: BAND_SHARDS_PER_SHARD times the payload joins' (pairing sorts a whole band shard)."""
  return num_shards * BAND_SHARDS_PER_SHARD


def batch_outputs(split: int, file: np.ndarray, index: np.ndarray, exact: np.ndarray, label: np.ndarray,
                  near: NearBatch, num_shards: int,
                  id_flag: int = 0) -> Tuple[List[Tuple[int, bytes]], List[Tuple[int, bytes]]]:
  """A batch's (key shard, band piece) and (id shard, payload blob) pieces (band_piece, Payload.to_wire)."""
  ids = row_ids(file, index) | np.int64(id_flag)
  key_ids = ids[near.key_rows]
  key_shards = band_shards(num_shards)
  bands = [(s, band_piece(split, near.keys[rows], key_ids[rows]))
           for s, rows in split_by_shard((near.keys % np.uint64(key_shards)).astype(np.int64), key_shards)]
  payload = Payload(np.full(len(ids), split, dtype=np.int64), ids, exact[:, 0].copy(), label, near.exact_part, near.shape,
                    near.columns, near.vectors, near.segments, near.shingles)
  payloads = [(s, payload.slice(start, stop).to_wire()) for s, start, stop in shard_runs(id_shard(ids, num_shards))]
  return bands, payloads


def band_piece(split: int, keys: np.ndarray, ids: np.ndarray) -> bytes:
  """Band keys of one split with the id of each key's example, as one wire blob."""
  return wire.encode([np.full(len(keys), split, dtype=np.int64), keys, ids], [True, False, True])


def bucket_pairs(pieces: Iterable[bytes], max_bucket_pairs: int) -> Tuple[np.ndarray, Dict[str, int]]:
  """(k, 2) distinct (train id, eval id) pairs of one band shard (band_piece blobs), and bucket counters."""
  split, keys, ids = (np.concatenate(arrays) for arrays in zip(*(wire.decode(p) for p in pieces)))
  keep = in_shared_buckets(keys, split > 0, ids)
  keys, ids, split = keys[keep], ids[keep], split[keep]
  unique_ids, local = np.unique(ids, return_inverse=True)
  row_split = np.zeros(len(unique_ids), dtype=np.int64)
  row_split[local] = split
  train, evals, counters = candidate_pairs(keys, local.astype(np.int64), row_split, max_bucket_pairs)
  pairs = np.stack([unique_ids[train], unique_ids[evals]], axis=1)
  return pairs[pairs[:, 0] != (pairs[:, 1] & _LOCATION)], counters  # A reference row never pairs with itself.


def in_shared_buckets(keys: np.ndarray, is_eval: np.ndarray, ids: np.ndarray) -> np.ndarray:
  """Positions of the keys whose bucket can give a pair: it holds a train and an eval key of two different examples.
  Most buckets hold one side only, and a reference row shares each of its own buckets with its own train row alone
  (96% of the shared buckets at 1M): one sort of the keys drops both before the pairing sorts (key, side,
  example) and numbers the examples."""
  if not len(keys):
    return np.zeros(0, dtype=np.int64)
  order = np.argsort(keys)
  starts, stops = _run_bounds(keys[order])
  sizes = stops - starts
  evals = np.add.reduceat(is_eval[order].astype(np.int64), starts)
  shared = (evals > 0) & (evals < sizes)
  kept = order[np.repeat(shared, sizes)]
  if not len(kept):
    return kept
  kept_sizes = sizes[shared]
  kept_starts = np.cumsum(kept_sizes) - kept_sizes
  locations = ids[kept] & _LOCATION
  # Both sides and two locations: then some eval key and some train key belong to different examples.
  two_examples = np.minimum.reduceat(locations, kept_starts) != np.maximum.reduceat(locations, kept_starts)
  return kept[np.repeat(two_examples, kept_sizes)]


def candidate_pairs(keys: np.ndarray, key_rows: np.ndarray, split: np.ndarray,
                    max_bucket_pairs: int) -> Tuple[np.ndarray, np.ndarray, Dict[str, int]]:
  """(train rows, eval rows) of every distinct cross-split pair sharing a bucket, and bucket counters."""
  is_eval = (split[key_rows] > 0).astype(np.int64)
  order = np.lexsort((key_rows, is_eval, keys))
  keys, rows, is_eval = keys[order], key_rows[order], is_eval[order]
  starts, ends = _run_bounds(keys)
  evals = np.add.reduceat(is_eval, starts) if len(keys) else np.zeros(0, np.int64)
  trains = ends - starts - evals
  pairs = trains * evals
  shared = pairs > 0
  too_big = shared & (pairs > max_bucket_pairs)
  chosen = np.flatnonzero(shared & ~too_big)
  counters = {'buckets_shared': int(shared.sum()), 'buckets_skipped': int(too_big.sum()),
              'pairs_skipped': int(pairs[too_big].sum())}
  # Each eval entry of a chosen bucket pairs with the bucket's train entries (train entries sort first).
  eval_counts, train_counts, bucket_starts = evals[chosen], trains[chosen], starts[chosen]
  eval_pos = np.repeat(bucket_starts + train_counts, eval_counts) + _ramp(eval_counts)
  per_eval = np.repeat(train_counts, eval_counts)
  train_pos = np.repeat(np.repeat(bucket_starts, eval_counts), per_eval) + _ramp(per_eval)
  eval_rows = np.repeat(rows[eval_pos], per_eval)
  train_rows = rows[train_pos]
  n = np.int64(len(split) + 1)
  unique = np.unique(eval_rows.astype(np.int64) * n + train_rows)
  return unique % n, unique // n, counters


def _ramp(counts: np.ndarray) -> np.ndarray:
  """0..c-1 for every c in counts, concatenated."""
  total = int(counts.sum())
  return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


def column_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Per pair, max over columns of |a-b| / max(|a|, |b|): 0 for equal values (0 = 0, NaN = NaN, inf = inf)."""
  if a.shape[1] == 0:
    return np.zeros(len(a))
  a, b = a.astype(np.float64), b.astype(np.float64)  # float32 payloads: exact in float64, as before
  with np.errstate(invalid='ignore', divide='ignore'):
    relative = np.abs(a - b) / np.maximum(np.abs(a), np.abs(b))
  equal = (a == b) | (np.isnan(a) & np.isnan(b))
  relative = np.where(equal, 0.0, np.where(np.isnan(relative), np.inf, relative))
  return relative.max(axis=1)


def vector_distances(a: np.ndarray, b: np.ndarray, segments: np.ndarray) -> np.ndarray:
  """Per pair, max over float lists of 1 - cos of the (already unit, mean-centred) vectors."""
  if a.shape[1] == 0:
    return np.zeros(len(a))
  starts = np.concatenate([[0], np.cumsum(segments)[:-1]]).astype(np.int64)
  dots = np.add.reduceat(a.astype(np.float64) * b.astype(np.float64), starts, axis=1)
  return np.clip(1.0 - dots, 0.0, 2.0).max(axis=1)


def jaccard_distances(shingles: Ragged, train: np.ndarray, evals: np.ndarray) -> np.ndarray:
  """Per pair, 1 - |A and B| / |A or B| of the (sorted, unique) shingle sets; 0 when both are empty. Vectorized: both
  sets of every pair side by side, sorted within the pair; a value seen twice is in both."""
  if not len(train):
    return np.zeros(0)
  rows = np.empty(2 * len(train), dtype=np.int64)
  rows[0::2], rows[1::2] = train, evals
  both = shingles.take(rows)
  pair = np.repeat(np.arange(len(rows)) // 2, both.lengths)
  order = np.lexsort((both.values, pair))
  values, pair = both.values[order], pair[order]
  repeated = (values[1:] == values[:-1]) & (pair[1:] == pair[:-1])
  common = np.bincount(pair[1:][repeated], minlength=len(train)).astype(np.float64)
  union = shingles.lengths[train] + shingles.lengths[evals] - common
  return np.where(union > 0, 1.0 - common / np.maximum(union, 1), 0.0)


def _ratio(distance: np.ndarray, threshold: float) -> np.ndarray:
  if threshold > 0:
    return distance / threshold
  return np.where(distance > 0, np.inf, 0.0)


def verify(rows: Payload, train: np.ndarray, evals: np.ndarray, settings: NearSettings) -> Dict[str, np.ndarray]:
  """Distances of every candidate pair per group, and score = the largest distance/threshold (a pair passes at <= 1;
  a different exact part scores inf)."""
  distances = {name: np.zeros(len(train)) for name in GROUPS}
  same_part = rows.exact_part[train] == rows.exact_part[evals]
  for shape in np.unique(rows.shape[evals[same_part]]):
    chosen = np.flatnonzero(same_part & (rows.shape[evals] == shape))
    t, e = train[chosen], evals[chosen]
    width = int(rows.columns.lengths[e[0]])
    distances['columns'][chosen] = column_distances(rows.columns.matrix(t, width), rows.columns.matrix(e, width))
    width = int(rows.vectors.lengths[e[0]])
    segments = rows.segments.values[rows.segments.offsets[e[0]]:rows.segments.offsets[e[0] + 1]]
    distances['vectors'][chosen] = vector_distances(rows.vectors.matrix(t, width), rows.vectors.matrix(e, width),
                                                    segments)
  checked = np.flatnonzero(same_part)
  distances['text'][checked] = jaccard_distances(rows.shingles, train[checked], evals[checked])
  limits = thresholds(settings)
  score = np.max([_ratio(distances[g], limits[g]) for g in GROUPS], axis=0) if len(train) else np.zeros(0)
  score = np.where(same_part, score, np.inf)
  return {'score': score, **distances}


def attach_train(pairs: Iterable[np.ndarray], payloads: Iterable[bytes],
                 num_shards: int) -> Iterable[Tuple[int, bytes]]:
  """Train-side shard: each distinct pair with its train example's payload, sharded by the eval example (a
  Payload.to_wire blob led by the eval ids)."""
  pairs = [p for p in pairs if len(p)]
  if not pairs:
    return
  pairs = np.unique(np.concatenate(pairs), axis=0)
  train = needed_rows((Payload.from_wire(p)[1] for p in payloads), pairs[:, 0])
  if train is None:
    return
  order = np.argsort(train.row_id, kind='stable')
  position = order[np.searchsorted(train.row_id[order], pairs[:, 0])]
  for s, rows in split_by_shard(id_shard(pairs[:, 1], num_shards), num_shards):
    yield s, train.take(position[rows]).to_wire(pairs[rows, 1])


def needed_rows(payloads: Iterable[Payload], ids: np.ndarray) -> Optional[Payload]:
  """The rows of `payloads` whose id is in `ids`, taken piece by piece: a shard's payloads are never copied whole
  (most examples are in no candidate pair); None when there are none."""
  wanted = np.unique(ids)
  if not len(wanted):
    return None
  taken = [p.take(rows) for p in payloads for rows in [members(p.row_id, wanted)] if len(rows)]
  return Payload.concat(taken) if taken else None


def members(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
  """Positions of `values` found in `sorted_unique` (non-empty): a binary search per value. np.isin sorts both arrays
  on every call; a shard's payloads come in one piece per batch, so that sorted the shard's wanted ids once per piece
  (30 of the near join's 80 post-read seconds at 10M)."""
  found = sorted_unique[np.minimum(np.searchsorted(sorted_unique, values), len(sorted_unique) - 1)]
  return np.flatnonzero(found == values)


def verify_eval_shard(pairs: Iterable[bytes], payloads: Iterable[bytes],
                      settings: NearSettings) -> Tuple[Dict[str, int], np.ndarray]:
  """Eval-side shard: every pair (attach_train's blobs) verified against the eval payloads; returns (counters, best
  verified pair per eval example, BEST_FIELDS)."""
  pairs = [(ids[0], payload) for ids, payload in (Payload.from_wire(p, leading=1) for p in pairs)]
  evals = needed_rows((Payload.from_wire(p)[1] for p in payloads),
                      np.concatenate([p[0] for p in pairs])) if pairs else None
  if evals is None:
    return {'candidate_pairs': 0, 'verified_pairs': 0}, np.zeros((0, len(BEST_FIELDS)))
  eval_ids = np.concatenate([p[0] for p in pairs])
  order = np.argsort(evals.row_id, kind='stable')
  eval_rows = order[np.searchsorted(evals.row_id[order], eval_ids)]
  rows = Payload.concat([p[1] for p in pairs] + [evals])
  t, e = np.arange(len(eval_ids)), len(eval_ids) + eval_rows
  result = verify(rows, t, e, settings)
  passed = np.flatnonzero(result['score'] <= 1.0)
  counters = {'candidate_pairs': int(len(t)), 'verified_pairs': int(len(passed))}
  t, e = t[passed], e[passed]
  best = np.empty((len(passed), len(BEST_FIELDS)))
  best[:, _F['eval_split']] = rows.split[e]
  best[:, _F['eval_file']] = (rows.row_id[e] & _LOCATION) >> _INDEX_BITS
  best[:, _F['eval_index']] = rows.row_id[e] & _INDEX_MASK
  best[:, _F['train_file']] = rows.row_id[t] >> _INDEX_BITS
  best[:, _F['train_index']] = rows.row_id[t] & _INDEX_MASK
  best[:, _F['not_exact']] = rows.exact[t] != rows.exact[e]
  best[:, _F['score']] = result['score'][passed]
  best[:, _F['label_conflict']] = rows.label[t] != rows.label[e]
  for group in GROUPS:
    best[:, _F[group]] = result[group][passed]
  best[:, _F['groups']] = group_mask(rows, e)
  return counters, best_per_eval_row(best)


def group_mask(rows: Payload, index: np.ndarray) -> np.ndarray:
  """Bit i set when the example has feature group GROUPS[i] (the pair's distances mean something only there)."""
  present = [rows.columns.lengths[index] > 0, rows.vectors.lengths[index] > 0, rows.shingles.lengths[index] > 0]
  return sum(p.astype(np.int64) << i for i, p in enumerate(present))


def present_groups(mask: int) -> List[str]:
  return [g for i, g in enumerate(GROUPS) if int(mask) >> i & 1]


def best_per_eval_row(best: np.ndarray) -> np.ndarray:
  """Keeps each eval example's best pair: an exact copy first, then the smallest score, then the first train row."""
  if not len(best):
    return best
  f = _F
  order = np.lexsort((best[:, f['train_index']], best[:, f['train_file']], best[:, f['score']],
                      best[:, f['not_exact']], best[:, f['eval_index']], best[:, f['eval_file']]))
  best = best[order]
  first = np.ones(len(best), dtype=bool)
  first[1:] = (best[1:, f['eval_file']] != best[:-1, f['eval_file']]) | \
              (best[1:, f['eval_index']] != best[:-1, f['eval_index']])
  return best[first]


def count_best(best: np.ndarray, splits: Sequence[str], files: Sequence[Tuple[int, str]], max_samples: int,
               settings: NearSettings) -> Tuple[Dict[str, Any], List[str]]:
  """Counters per eval split (near-duplicate examples, near-only, label conflicts, samples) and duplicates.tsv lines."""
  cross: Dict[str, Any] = {}
  lines = []
  f = _F
  reference = best[best[:, f['eval_split']] == len(splits)]
  for s in range(1, len(splits)):
    mine = best[best[:, f['eval_split']] == s]
    samples = [sample_record(r) for r in mine[_shallowest(mine, max_samples)]]
    cross[splits[s]] = {**_best_counts(mine), 'samples': samples}
    for r in mine:
      distance, threshold = tsv_distance(r, settings)
      lines.append('\t'.join(['near' if r[f['not_exact']] else 'near(exact)', '', file_writes.tsv_field(splits[s]),
                              file_writes.tsv_field(files[int(r[f['eval_file']])][1]), str(int(r[f['eval_index']])),
                              file_writes.tsv_field(splits[0]), file_writes.tsv_field(files[int(r[f['train_file']])][1]),
                              str(int(r[f['train_index']])), distance, threshold]))
  return {'cross': cross, 'reference': _best_counts(reference) if len(reference) else None,
          'train_split': splits[0]}, lines


def sample_order(sample: Sequence[Any]) -> tuple:
  """Near samples are the pairs whose deeper record (eval index, train index) comes first, then by location. The
  report reads both records of each sample back from the start of its gzipped file, and a train partner lies
  anywhere in train: taking the first pairs by eval location read most of every train file, growing with the data;
  any max_samples verified pairs show the copy as well, and these stop each read early."""
  return (max(sample[1], sample[3]), *sample)


def _shallowest(best: np.ndarray, count: int) -> np.ndarray:
  """Rows of the `count` pairs first in sample_order, in that order (deeper record index, then eval file, eval index,
  train file, train index: one row per eval example here, so no tie goes further)."""
  f = _F
  depth = np.maximum(best[:, f['eval_index']], best[:, f['train_index']])
  order = np.lexsort((best[:, f['train_index']], best[:, f['train_file']], best[:, f['eval_index']],
                      best[:, f['eval_file']], depth))
  return order[:count]


def _best_counts(best: np.ndarray) -> Dict[str, int]:
  """Examples with a verified near twin, near-only ones (no exact twin), and those whose twin has another label."""
  not_exact, conflict = best[:, _F['not_exact']] > 0, best[:, _F['label_conflict']] > 0
  return {'duplicate_examples': int(len(best)), 'near_only_examples': int(not_exact.sum()),
          'label_conflicts': int(conflict.sum()), 'near_only_label_conflicts': int((not_exact & conflict).sum())}


def sample_record(r: np.ndarray) -> List[Any]:
  """[eval file, eval index, train file, train index, columns, vectors, text, not exact, label conflict, group mask]
  (JSON)."""
  f = _F
  return [int(r[f['eval_file']]), int(r[f['eval_index']]), int(r[f['train_file']]), int(r[f['train_index']]),
          round(float(r[f['columns']]), 6), round(float(r[f['vectors']]), 6), round(float(r[f['text']]), 6),
          bool(r[f['not_exact']]), bool(r[f['label_conflict']]), int(r[f['groups']])]


DISTANCE_NAMES = {'columns': 'column_rel_diff', 'vectors': 'vector_cosine_distance', 'text': 'text_jaccard_distance'}


def thresholds(settings: NearSettings) -> Dict[str, float]:
  return {'columns': settings.column_tolerance, 'vectors': settings.vector_max_distance,
          'text': settings.text_max_distance}


def tsv_distance(r: np.ndarray, settings: NearSettings) -> Tuple[str, str]:
  """('column_rel_diff=..;text_jaccard_distance=..' of the groups the pair has, the same names with '<=' thresholds);
  a pair of ints and short strings alone ('exact_part=equal', '')."""
  limits = thresholds(settings)
  groups = present_groups(r[_F['groups']])
  if not groups:
    return 'exact_part=equal', ''
  distance = ';'.join(f'{DISTANCE_NAMES[g]}={float(r[_F[g]]):.6g}' for g in groups)
  return distance, ';'.join(f'{DISTANCE_NAMES[g]}<={limits[g]:g}' for g in groups)
