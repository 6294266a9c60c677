"""Near-duplicate join on Beam: band buckets -> cross-split candidate pairs -> verified by real distance -> per eval row.

Steps (inside leakage's one pipeline, see leakage.build_pipeline):
  1. per batch (near_features.near_batch): band keys and a compact payload per example;
  2. NearShard: cut each batch by key into shards, each piece carrying only the payload of rows it keys;
  3. GroupByKey per shard, then `join_shard`: sort keys, and within every bucket holding train and eval rows pair each
     eval row with each train row (a bucket with more than max_bucket_pairs pairs is skipped and counted), drop repeats
     across bands, verify every pair by its real distance and keep each eval row's best verified pair;
  4. NearBest: regroup the (few) verified pairs by eval example (`reduce_best`) so bands that landed in different shards
     count an eval example once: counts, label conflicts and samples per eval split, and one duplicates.tsv line each.
No all-pairs step: work is proportional to bucket sizes; nothing but small counters reaches the driver.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import numpy as np

from tfx_preflight import hashing
from tfx_preflight.near_features import NearBatch, NearSettings, Ragged

GROUPS = ('columns', 'vectors', 'text')
# Columns of a best-pair record (float64 matrix rows).
BEST_FIELDS = ('eval_split', 'eval_file', 'eval_index', 'train_file', 'train_index', 'not_exact', 'score',
               'label_conflict', 'columns', 'vectors', 'text')
_F = {name: i for i, name in enumerate(BEST_FIELDS)}


@dataclasses.dataclass
class Piece:
  """One batch's share of one shard: keys, and the payload of the rows they key."""
  split: int
  file: np.ndarray
  index: np.ndarray
  exact: np.ndarray  # (k, 2) full content hash: a pair with equal hashes is an exact copy
  label: np.ndarray
  exact_part: np.ndarray
  shape: np.ndarray
  columns: Ragged
  vectors: Ragged
  segments: Ragged
  shingles: Ragged
  keys: np.ndarray
  key_rows: np.ndarray


def shard_pieces(split: int, file: np.ndarray, index: np.ndarray, exact: np.ndarray, label: np.ndarray,
                 near: NearBatch, num_shards: int) -> Iterable[Tuple[int, Piece]]:
  """(shard, piece) per shard that any key of this batch falls in."""
  shard = (near.keys % np.uint64(num_shards)).astype(np.int64)
  order = np.argsort(shard, kind='stable')
  bounds = np.searchsorted(shard[order], np.arange(num_shards + 1))
  for s in range(num_shards):
    if bounds[s] == bounds[s + 1]:
      continue
    chosen = order[bounds[s]:bounds[s + 1]]
    rows, key_rows = np.unique(near.key_rows[chosen], return_inverse=True)
    yield s, Piece(split, file[rows], index[rows], exact[rows], label[rows], near.exact_part[rows], near.shape[rows],
                   near.columns.take(rows), near.vectors.take(rows), near.segments.take(rows),
                   near.shingles.take(rows), near.keys[chosen], key_rows.astype(np.int64))


def _concat(pieces: Sequence[Piece]) -> Tuple[Piece, np.ndarray]:
  """All pieces as one (rows renumbered) and the split of every row."""
  sizes = np.array([len(p.file) for p in pieces], dtype=np.int64)
  starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
  split = np.repeat(np.array([p.split for p in pieces], dtype=np.int64), sizes)
  merged = Piece(
      0, np.concatenate([p.file for p in pieces]).astype(np.int64), np.concatenate([p.index for p in pieces]),
      np.concatenate([p.exact for p in pieces]), np.concatenate([p.label for p in pieces]),
      np.concatenate([p.exact_part for p in pieces]), np.concatenate([p.shape for p in pieces]),
      Ragged.concat([p.columns for p in pieces]), Ragged.concat([p.vectors for p in pieces]),
      Ragged.concat([p.segments for p in pieces]), Ragged.concat([p.shingles for p in pieces]),
      np.concatenate([p.keys for p in pieces]),
      np.concatenate([p.key_rows + start for p, start in zip(pieces, starts)]))
  return merged, split


def candidate_pairs(keys: np.ndarray, key_rows: np.ndarray, split: np.ndarray,
                    max_bucket_pairs: int) -> Tuple[np.ndarray, np.ndarray, Dict[str, int]]:
  """(train rows, eval rows) of every distinct cross-split pair sharing a bucket, and bucket counters."""
  is_eval = (split[key_rows] > 0).astype(np.int64)
  order = np.lexsort((key_rows, is_eval, keys))
  keys, rows, is_eval = keys[order], key_rows[order], is_eval[order]
  starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]])) if len(keys) else np.zeros(0, np.int64)
  ends = np.append(starts[1:], len(keys))
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
  """Per pair, 1 - |A and B| / |A or B| of the (sorted, unique) shingle sets; 0 when both are empty."""
  out = np.zeros(len(train))
  lengths = shingles.lengths
  for i in np.flatnonzero((lengths[train] > 0) | (lengths[evals] > 0)):
    a = shingles.values[shingles.offsets[train[i]]:shingles.offsets[train[i] + 1]]
    b = shingles.values[shingles.offsets[evals[i]]:shingles.offsets[evals[i] + 1]]
    common = len(np.intersect1d(a, b, assume_unique=True))
    out[i] = 1.0 - common / (len(a) + len(b) - common)
  return out


def _ratio(distance: np.ndarray, threshold: float) -> np.ndarray:
  if threshold > 0:
    return distance / threshold
  return np.where(distance > 0, np.inf, 0.0)


def verify(rows: Piece, train: np.ndarray, evals: np.ndarray, settings: NearSettings) -> Dict[str, np.ndarray]:
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


def join_shard(pieces: Iterable[Piece], settings: NearSettings) -> Tuple[Dict[str, int], np.ndarray]:
  """One shard: candidate pairs, verified; returns (counters, best verified pair per eval row as BEST_FIELDS rows)."""
  rows, split = _concat(list(pieces))
  train, evals, counters = candidate_pairs(rows.keys, rows.key_rows, split, settings.max_bucket_pairs)
  result = verify(rows, train, evals, settings)
  passed = np.flatnonzero(result['score'] <= 1.0)
  counters.update(candidate_pairs=int(len(train)), verified_pairs=int(len(passed)))
  t, e = train[passed], evals[passed]
  not_exact = np.any(rows.exact[t] != rows.exact[e], axis=1)
  best = np.empty((len(passed), len(BEST_FIELDS)))
  best[:, _F['eval_split']] = split[e]
  best[:, _F['eval_file']] = rows.file[e]
  best[:, _F['eval_index']] = rows.index[e]
  best[:, _F['train_file']] = rows.file[t]
  best[:, _F['train_index']] = rows.index[t]
  best[:, _F['not_exact']] = not_exact
  best[:, _F['score']] = result['score'][passed]
  best[:, _F['label_conflict']] = rows.label[t] != rows.label[e]
  for group in GROUPS:
    best[:, _F[group]] = result[group][passed]
  return counters, best_per_eval_row(best)


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


def eval_shard(best: np.ndarray, num_shards: int) -> np.ndarray:
  """Shard of each best pair by its eval example, so all of an eval example's pairs meet."""
  words = best[:, _F['eval_file']].astype(np.uint64) * np.uint64(0x9e3779b97f4a7c15) ^ \
      best[:, _F['eval_index']].astype(np.uint64)
  return (hashing.fmix64(words) % np.uint64(num_shards)).astype(np.int64)


def reduce_best(parts: Iterable[np.ndarray], splits: Sequence[str], files: Sequence[Tuple[int, str]],
                max_samples: int, settings: NearSettings) -> Tuple[Dict[str, Any], List[str]]:
  """Counters per eval split (near-duplicate examples, near-only, label conflicts, samples) and duplicates.tsv lines."""
  best = best_per_eval_row(np.concatenate(list(parts)))
  cross: Dict[str, Any] = {}
  lines = []
  f = _F
  for s in range(1, len(splits)):
    mine = best[best[:, f['eval_split']] == s]
    samples = [sample_record(r) for r in mine[:max_samples]]
    cross[splits[s]] = {'duplicate_examples': int(len(mine)), 'near_only_examples': int(mine[:, f['not_exact']].sum()),
                        'label_conflicts': int(mine[:, f['label_conflict']].sum()), 'samples': samples}
    for r in mine:
      distance, threshold = tsv_distance(r, settings)
      lines.append('\t'.join(['near' if r[f['not_exact']] else 'near(exact)', '', splits[s],
                              files[int(r[f['eval_file']])][1], str(int(r[f['eval_index']])), splits[0],
                              files[int(r[f['train_file']])][1], str(int(r[f['train_index']])), distance, threshold]))
  return {'cross': cross}, lines


def sample_record(r: np.ndarray) -> List[Any]:
  """[eval file, eval index, train file, train index, columns, vectors, text, not exact, label conflict] (JSON)."""
  f = _F
  return [int(r[f['eval_file']]), int(r[f['eval_index']]), int(r[f['train_file']]), int(r[f['train_index']]),
          round(float(r[f['columns']]), 6), round(float(r[f['vectors']]), 6), round(float(r[f['text']]), 6),
          bool(r[f['not_exact']]), bool(r[f['label_conflict']])]


DISTANCE_NAMES = {'columns': 'column_rel_diff', 'vectors': 'vector_cosine_distance', 'text': 'text_jaccard_distance'}


def thresholds(settings: NearSettings) -> Dict[str, float]:
  return {'columns': settings.column_tolerance, 'vectors': settings.vector_max_distance,
          'text': settings.text_max_distance}


def tsv_distance(r: np.ndarray, settings: NearSettings) -> Tuple[str, str]:
  """('column_rel_diff=..;vector_cosine_distance=..;text_jaccard_distance=..', the same names with '<=' thresholds)."""
  limits = thresholds(settings)
  distance = ';'.join(f'{DISTANCE_NAMES[g]}={float(r[_F[g]]):.6g}' for g in GROUPS)
  return distance, ';'.join(f'{DISTANCE_NAMES[g]}<={limits[g]:g}' for g in GROUPS)
