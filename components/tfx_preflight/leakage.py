"""Train/eval leakage: exact and near duplicates across and within splits, and entities (groups) shared by splits.

One Beam pipeline for all splits:

  files of each split -> Hash[split]: read records sequentially, decode a batch with tfx-bsl's tf.Example decoder,
  hash the whole batch with numpy (hashing.py) -> per batch, compact arrays (hash, split, label hash, file, index)
  -> Shard: cut each batch's arrays by hash into num_shards pieces -> GroupByKey((kind, shard))
  -> Join: per shard, sort by hash and count per split with numpy -> small counters (CombineGlobally) + duplicate list.
  With near_duplicates, Hash[split] also emits LSH band keys and a verification payload per batch (near_features.py),
  joined by band bucket, verified by real distance and counted per eval example in three shuffles (near_duplicates.py).

Why raw records rather than `TFExampleRecord(...).BeamSource()`: TFXIO's RecordBatches do not say which file and
record an example came from, and the report must point at every duplicate. Reading each file sequentially in one DoFn
gives exact record indices, keeps Beam elements few and large (one per batch of 8192 examples, never one per example),
and decodes with the same C++ decoder TFXIO uses (`ExamplesToRecordBatchDecoder`, types inferred per batch; the hash
does not depend on the inferred type of an empty list). Gzipped files cannot be split anyway, so parallelism is per file.

No worker and not the driver ever holds all hashes: each shard holds 1/num_shards of them (about 40 bytes per example).
The driver only reads back the merged counters and re-reads a few sample records for the report.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
from tfx.dsl.io import fileio

from tfx_preflight import constants, hashing, near_duplicates, near_features, records, report
from tfx_preflight.config import LeakageConfig
from tfx_preflight.data import InputError
from tfx_preflight.results import CheckResult, Finding

EXACT = constants.LEAKAGE_EXACT
NEAR = constants.LEAKAGE_NEAR
GROUP = constants.LEAKAGE_GROUP

DUPLICATES_FILE = constants.DUPLICATES_FILE
STATS_FILE = constants.LEAKAGE_STATS_FILE
DUPLICATES_HEADER = ('kind\thash\tsplit\tfile\trecord_index\tpair_split\tpair_file\tpair_record_index\tdistance\t'
                     'threshold')
_EXACT_LINE_PADDING = '\t' * 5

BATCH_SIZE = 8192
# Auto sharding: one shard per this many bytes of input files, within [MIN_SHARDS, MAX_SHARDS].
_BYTES_PER_SHARD = 32 << 20
MIN_SHARDS = 4
MAX_SHARDS = 4096
_MAX_SHOWN_VALUES = 8
_MAX_SHOWN_CHARS = 60
_NO_LABEL = np.uint64(0)

_STATS = 'stats'
_NEAR_BANDS = 'near_bands'
_NEAR_TRAIN = 'near_train'
_NEAR_EVAL = 'near_eval'


@dataclasses.dataclass(frozen=True)
class _Plan:
  """Everything the Beam steps need; small and picklable."""
  splits: Tuple[str, ...]  # index 0 is train.
  files: Tuple[Tuple[int, str], ...]  # (split id, path) by file id.
  exclude: Tuple[str, ...]
  label_key: Optional[str]
  group_key: Optional[str]
  near: Optional[near_features.NearSettings]
  num_shards: int
  max_samples: int
  batch_size: int = BATCH_SIZE

  @property
  def kinds(self) -> Tuple[str, ...]:
    return self.hash_kinds[:1] + ((NEAR,) if self.near else ()) + self.hash_kinds[1:]

  @property
  def hash_kinds(self) -> Tuple[str, ...]:
    """Kinds joined by equal hashes (near-duplicates have their own join, near_duplicates.py)."""
    return (EXACT,) + ((GROUP,) if self.group_key else ())


# --- Counters merged across batches and shards --------------------------------------------------------------------


def merge_stats(a: Dict[str, Any], b: Mapping[str, Any], max_samples: int) -> Dict[str, Any]:
  """Merges b into a: numbers add, feature lists unite, sample lists keep the max_samples first by location."""
  for key, value in b.items():
    if key not in a:
      a[key] = json.loads(json.dumps(value)) if isinstance(value, (dict, list)) else value
    elif isinstance(value, Mapping):
      merge_stats(a[key], value, max_samples)
    elif key == 'features':
      a[key] = sorted(set(a[key]) | set(value))
    elif key == 'samples':
      a[key] = sorted(a[key] + [list(v) for v in value])[:max_samples]
    else:
      a[key] += value
  return a


class _MergeStatsFn(beam.CombineFn):
  """Small dict accumulators: a few numbers per split pair, a feature list per split and a few sample locations."""

  def __init__(self, max_samples: int):
    self._max_samples = max_samples

  def create_accumulator(self) -> Dict[str, Any]:
    return {}

  def add_input(self, accumulator, element):
    return merge_stats(accumulator, element, self._max_samples)

  def merge_accumulators(self, accumulators):
    merged: Dict[str, Any] = {}
    for accumulator in accumulators:
      merge_stats(merged, accumulator, self._max_samples)
    return merged

  def extract_output(self, accumulator):
    return accumulator


# --- Hashing (one element per batch) ------------------------------------------------------------------------------


class _HashFileFn(beam.DoFn):
  """Reads one TFRecord file and emits, per batch, the compact arrays of every hash kind plus per-split counters."""

  def __init__(self, plan: _Plan):
    self._plan = plan

  def process(self, file_id: int) -> Iterable[Any]:
    plan = self._plan
    split_id, path = plan.files[file_id]
    split = plan.splits[split_id]
    for start, batch in records.iter_record_batches(path, plan.batch_size):
      n = batch.num_rows
      features = hashing.selected_features(batch, plan.exclude)
      part = {'split': split_id, 'file': np.full(n, file_id, dtype=np.uint32),
              'index': np.arange(start, start + n, dtype=np.int64),
              EXACT: hashing.hash_batch(batch, features)}
      counters = {'examples': {split: n}, 'features': {split: {'features': list(batch.schema.names)}}}
      if plan.label_key:
        label, present = hashing.hash_single_feature(batch, plan.label_key)
        part['label'] = np.where(present, label[:, 0], _NO_LABEL)
        counters['label_present'] = {split: int(present.sum())}
      else:
        part['label'] = np.zeros(n, dtype=np.uint64)
      if plan.near:
        near = near_features.near_batch(batch, features, plan.near, probe=split_id > 0)
        bands, payloads = near_duplicates.batch_outputs(split_id, part['file'], part['index'], part[EXACT],
                                                        part['label'], near, plan.num_shards)
        for item in bands:
          yield beam.pvalue.TaggedOutput(_NEAR_BANDS, item)
        for item in payloads:
          yield beam.pvalue.TaggedOutput(_NEAR_TRAIN if split_id == 0 else _NEAR_EVAL, item)
      if plan.group_key:
        group, present = hashing.hash_single_feature(batch, plan.group_key)
        part[GROUP] = group
        part['group_present'] = present
        counters['group_present'] = {split: int(present.sum())}
      yield beam.pvalue.TaggedOutput(_STATS, counters)
      yield part


class _ShardFn(beam.DoFn):
  """Cuts one batch's arrays into per-shard pieces keyed (kind, shard): a few large elements per batch."""

  def __init__(self, plan: _Plan):
    self._plan = plan

  def process(self, part: Mapping[str, Any]) -> Iterable[Tuple[Tuple[str, int], Tuple]]:
    for kind in self._plan.hash_kinds:
      keep = part['group_present'] if kind == GROUP else slice(None)
      hashes = part[kind][keep]
      columns = (hashes, part['label'][keep], part['file'][keep], part['index'][keep])
      shard = (hashes[:, 1] % np.uint64(self._plan.num_shards)).astype(np.int64)
      order = np.argsort(shard, kind='stable')
      bounds = np.searchsorted(shard[order], np.arange(self._plan.num_shards + 1))
      for s in range(self._plan.num_shards):
        if bounds[s] == bounds[s + 1]:
          continue
        rows = order[bounds[s]:bounds[s + 1]]
        yield (kind, s), (part['split'],) + tuple(c[rows] for c in columns)


def join_shard(kind: str, pieces: Iterable[Tuple], plan: _Plan) -> Tuple[Dict[str, Any], List[str]]:
  """Counts one shard's duplicates with numpy. Returns (counters, duplicate-list lines)."""
  pieces = list(pieces)
  split = np.concatenate([np.full(len(p[1]), p[0], dtype=np.int64) for p in pieces])
  hashes = np.concatenate([p[1] for p in pieces])
  label = np.concatenate([p[2] for p in pieces])
  file_id = np.concatenate([p[3] for p in pieces]).astype(np.int64)
  index = np.concatenate([p[4] for p in pieces])
  order = np.lexsort((index, file_id, split, hashes[:, 1], hashes[:, 0]))
  split, hashes, label, file_id, index = split[order], hashes[order], label[order], file_id[order], index[order]
  starts = np.ones(len(split), dtype=bool)
  starts[1:] = (hashes[1:, 0] != hashes[:-1, 0]) | (hashes[1:, 1] != hashes[:-1, 1])
  group = np.cumsum(starts) - 1
  num_groups = int(group[-1]) + 1
  num_splits = len(plan.splits)
  counts = np.bincount(group * num_splits + split, minlength=num_groups * num_splits).reshape(num_groups, num_splits)

  counters: Dict[str, Any] = {kind: {'cross': {}, 'within': {}}}
  if kind == EXACT:
    for s, name in enumerate(plan.splits):
      column = counts[:, s]
      counters[kind]['within'][name] = {'duplicate_examples': int(column.sum() - np.count_nonzero(column)),
                                        'duplicate_groups': int(np.count_nonzero(column > 1))}

  is_train = split == 0
  train_rows = np.flatnonzero(is_train)
  first_train = np.full(num_groups, -1, dtype=np.int64)
  label_min = np.full(num_groups, np.iinfo(np.uint64).max, dtype=np.uint64)
  label_max = np.zeros(num_groups, dtype=np.uint64)
  if len(train_rows):
    first_train[group[train_rows[::-1]]] = train_rows[::-1]  # Last write wins: the first train row of each group.
    np.minimum.at(label_min, group[train_rows], label[train_rows])
    np.maximum.at(label_max, group[train_rows], label[train_rows])
  in_train = counts[:, 0] > 0
  for s in range(1, num_splits):
    shared = in_train & (counts[:, s] > 0)
    rows = np.flatnonzero((split == s) & shared[group])
    conflicts = (label_min[group[rows]] != label_max[group[rows]]) | (label[rows] != label_min[group[rows]])
    ordered = rows[np.lexsort((index[rows], file_id[rows]))][:plan.max_samples]
    samples = []
    for row in ordered:
      g, t = group[row], first_train[group[row]]
      samples.append([int(file_id[row]), int(index[row]), int(file_id[t]), int(index[t]), hashing.hex_digest(hashes[row]),
                      int(counts[g, s]), int(counts[g, 0]), bool(conflicts[np.searchsorted(rows, row)]) if kind != GROUP else False])
    counters[kind]['cross'][plan.splits[s]] = {
        'duplicate_examples': int(len(rows)), 'unique_duplicates': int(np.count_nonzero(shared)),
        'train_examples': int(counts[shared, 0].sum()),
        'label_conflicts': int(np.count_nonzero(conflicts)) if kind != GROUP and plan.label_key else 0,
        'samples': samples}

  lines: List[str] = []
  if kind != GROUP:
    listed = np.flatnonzero(counts.sum(axis=1)[group] > 1)
    lines = [f'{kind}\t{hashing.hex_digest(hashes[r])}\t{report.tsv_field(plan.splits[split[r]])}\t'
             f'{report.tsv_field(plan.files[file_id[r]][1])}\t{int(index[r])}{_EXACT_LINE_PADDING}' for r in listed]
  return counters, lines


class _JoinShardFn(beam.DoFn):

  def __init__(self, plan: _Plan):
    self._plan = plan

  def process(self, element) -> Iterable[Any]:
    (kind, _), pieces = element
    counters, lines = join_shard(kind, pieces, self._plan)
    yield beam.pvalue.TaggedOutput(_STATS, counters)
    if lines:
      yield '\n'.join(lines)


class _BucketPairsFn(beam.DoFn):
  """One band shard: distinct cross-split pairs sharing a bucket, sharded by their train example."""

  def __init__(self, plan: _Plan):
    self._plan = plan

  def process(self, element) -> Iterable[Any]:
    _, pieces = element
    pairs, counters = near_duplicates.bucket_pairs(pieces, self._plan.near.max_bucket_pairs)
    yield beam.pvalue.TaggedOutput(_STATS, {NEAR: {'buckets': counters}})
    for shard, rows in near_duplicates.split_by_shard(near_duplicates.id_shard(pairs[:, 0], self._plan.num_shards),
                                                      self._plan.num_shards):
      yield shard, pairs[rows]


class _AttachTrainFn(beam.DoFn):

  def __init__(self, plan: _Plan):
    self._plan = plan

  def process(self, element) -> Iterable[Any]:
    _, grouped = element
    yield from near_duplicates.attach_train(grouped['pairs'], grouped['payload'], self._plan.num_shards)


class _VerifyFn(beam.DoFn):
  """One eval shard: every candidate pair verified, the best per eval example counted and listed."""

  def __init__(self, plan: _Plan):
    self._plan = plan

  def process(self, element) -> Iterable[Any]:
    _, grouped = element
    plan = self._plan
    counters, best = near_duplicates.verify_eval_shard(grouped['pairs'], grouped['payload'], plan.near)
    counted, lines = near_duplicates.count_best(best, plan.splits, plan.files, plan.max_samples, plan.near)
    yield beam.pvalue.TaggedOutput(_STATS, {NEAR: {'buckets': counters, **counted}})
    if lines:
      yield '\n'.join(lines)


def _near_join(bands: Sequence[beam.PCollection], train: Sequence[beam.PCollection],
               evals: Sequence[beam.PCollection], plan: _Plan) -> Tuple[beam.PCollection, beam.PCollection]:
  """Band shards -> pairs -> with train payloads -> with eval payloads, verified; returns (tsv lines, counters)."""
  pairs = (bands
           | 'FlattenNearBands' >> beam.Flatten()
           | 'GroupByBand' >> beam.GroupByKey()
           | 'BucketPairs' >> beam.ParDo(_BucketPairsFn(plan)).with_outputs(_STATS, main='pairs'))
  with_train = ({'pairs': pairs.pairs, 'payload': train | 'FlattenNearTrain' >> beam.Flatten()}
                | 'JoinTrainExamples' >> beam.CoGroupByKey()
                | 'AttachTrain' >> beam.ParDo(_AttachTrainFn(plan)))
  verified = ({'pairs': with_train, 'payload': evals | 'FlattenNearEval' >> beam.Flatten()}
              | 'JoinEvalExamples' >> beam.CoGroupByKey()
              | 'Verify' >> beam.ParDo(_VerifyFn(plan)).with_outputs(_STATS, main='lines'))
  counters = (pairs[_STATS], verified[_STATS]) | 'FlattenNearStats' >> beam.Flatten()
  return verified.lines, counters


# --- Driver side ----------------------------------------------------------------------------------------------------


def _split_files(examples: Mapping[str, str], splits: Sequence[str]) -> List[Tuple[int, str]]:
  files = []
  for split_id, split in enumerate(splits):
    if split not in examples:
      raise ValueError(f'Leakage check: split {split!r} has no examples; available: {", ".join(sorted(examples))}.')
    matched = sorted(f for f in fileio.glob(examples[split]) if not fileio.isdir(f))
    if not matched:
      raise ValueError(f'Leakage check: no file matches {examples[split]!r} (split {split!r}).')
    files.extend((split_id, path) for path in matched)
  return files


def _auto_shards(files: Sequence[Tuple[int, str]]) -> int:
  total = 0
  for _, path in files:
    try:
      total += int(fileio.stat(path).length)
    except Exception:  # Size unknown (some filesystems): assume one shard's worth.
      total += _BYTES_PER_SHARD
  return int(min(MAX_SHARDS, max(MIN_SHARDS, total // _BYTES_PER_SHARD)))


def make_plan(examples: Mapping[str, str], train_split: str, eval_splits: Sequence[str], config: LeakageConfig,
              label_key: Optional[str]) -> _Plan:
  splits = (train_split, *eval_splits)
  files = _split_files(examples, splits)
  exclude = tuple(sorted(set(config.exclude_features) | ({label_key} if label_key else set())))
  near = near_features.NearSettings(
      column_tolerance=config.near_column_tolerance, vector_max_distance=config.near_vector_max_distance,
      text_max_distance=config.near_text_max_distance, text_min_tokens=config.near_text_min_tokens,
      max_bucket_pairs=config.near_max_bucket_pairs) if config.near_duplicates else None
  return _Plan(splits=splits, files=tuple(files), exclude=exclude, label_key=label_key, group_key=config.group_key,
               near=near, num_shards=config.num_shards or _auto_shards(files), max_samples=int(config.max_samples))


def build_pipeline(pipeline: beam.Pipeline, plan: _Plan, output_dir: str) -> None:
  """Adds the leakage steps to `pipeline`; results land in output_dir (stats JSON and the duplicate list)."""
  parts, counters, near_bands, near_train, near_eval = [], [], [], [], []
  for split_id, split in enumerate(plan.splits):
    file_ids = [i for i, (s, _) in enumerate(plan.files) if s == split_id]
    hashed = (pipeline
              | f'Files[{split}]' >> beam.Create(file_ids)
              | f'Hash[{split}]' >> beam.ParDo(_HashFileFn(plan)).with_outputs(_STATS, _NEAR_BANDS, _NEAR_TRAIN,
                                                                              _NEAR_EVAL, main='parts'))
    parts.append(hashed.parts)
    counters.append(hashed[_STATS])
    near_bands.append(hashed[_NEAR_BANDS])
    (near_train if split_id == 0 else near_eval).append(hashed[_NEAR_TRAIN if split_id == 0 else _NEAR_EVAL])
  joined = (parts
            | 'FlattenParts' >> beam.Flatten()
            | 'Shard' >> beam.ParDo(_ShardFn(plan))
            | 'GroupByShard' >> beam.GroupByKey()
            | 'Join' >> beam.ParDo(_JoinShardFn(plan)).with_outputs(_STATS, main='lines'))
  lines = [joined.lines]
  if plan.near:
    near_lines, near_counters = _near_join(near_bands, near_train, near_eval, plan)
    lines.append(near_lines)
    counters.append(near_counters)
  _ = (lines
       | 'FlattenLines' >> beam.Flatten()
       | 'WriteDuplicates' >> beam.io.WriteToText(os.path.join(output_dir, DUPLICATES_FILE), shard_name_template='',
                                                  header=DUPLICATES_HEADER))
  _ = ((*counters, joined[_STATS])
       | 'FlattenStats' >> beam.Flatten()
       | 'MergeStats' >> beam.CombineGlobally(_MergeStatsFn(plan.max_samples))
       | 'StatsToJson' >> beam.Map(lambda s: json.dumps(s, sort_keys=True))
       | 'WriteStats' >> beam.io.WriteToText(os.path.join(output_dir, STATS_FILE), shard_name_template=''))


def _read_stats(output_dir: str) -> Dict[str, Any]:
  with fileio.open(os.path.join(output_dir, STATS_FILE), 'r') as f:
    return json.loads(f.read())


def _shown_value(value: Any) -> Any:
  if isinstance(value, bytes):
    text = value.decode('utf-8', errors='replace')
    return text if len(text) <= _MAX_SHOWN_CHARS else text[:_MAX_SHOWN_CHARS] + '…'
  if isinstance(value, float):
    return float(f'{value:.6g}') if np.isfinite(value) else str(value)
  return value


def readable_example(features: Mapping[str, Any]) -> Dict[str, Any]:
  """Feature values for the report: at most a few values per feature, long strings cut."""
  shown = {}
  for name in sorted(features):
    values = features[name]
    if values is None:
      continue
    head = [_shown_value(v) for v in values[:_MAX_SHOWN_VALUES]]
    shown[name] = head + ([f'… ({len(values)} values)'] if len(values) > _MAX_SHOWN_VALUES else [])
  return shown


def read_examples_at(locations: Iterable[Tuple[str, int]]) -> Dict[Tuple[str, int], Dict[str, Any]]:
  """Decodes the records at (file, index); each file is read once, up to its largest wanted index."""
  from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder
  wanted: Dict[str, set] = {}
  for path, index in locations:
    wanted.setdefault(path, set()).add(index)
  decoder = ExamplesToRecordBatchDecoder()
  found = {}
  for path, indices in sorted(wanted.items()):
    last = max(indices)
    for start, serialized in records.iter_records(path, BATCH_SIZE, verify_crc=False):
      for i in sorted(j for j in indices if start <= j < start + len(serialized)):
        batch = decoder.DecodeBatch([serialized[i - start]])
        found[(path, i)] = {name: column[0] for name, column in batch.to_pydict().items()}
      if start + len(serialized) > last:
        break
  return found


def _fraction(count: int, total: int) -> float:
  return round(count / total, 6) if total else 0.0


def _severity(fraction: float, config: LeakageConfig) -> Optional[str]:
  if fraction > config.block_fraction:
    return constants.BLOCK
  if fraction > config.warn_fraction:
    return constants.WARN
  return None


def _hashed_features(stats: Mapping[str, Any], plan: _Plan) -> Dict[str, List[str]]:
  return {split: [f for f in stats['features'][split]['features'] if f not in plan.exclude] for split in plan.splits}


def _check_inputs_seen(stats: Mapping[str, Any], plan: _Plan, config: LeakageConfig) -> None:
  """Fail closed: an empty split, nothing to hash, a misspelled excluded feature or an absent group key."""
  seen = set()
  for split_id, split in enumerate(plan.splits):
    if not stats.get('examples', {}).get(split):
      files = ', '.join(path for s, path in plan.files if s == split_id)
      raise ValueError(f'Leakage check: split {split!r} has no examples ({files}).')
    seen |= set(stats['features'][split]['features'])
    if not _hashed_features(stats, plan)[split]:
      raise ValueError(f'Leakage check: split {split!r} has no feature left to hash after excluding '
                       f'{", ".join(plan.exclude)}.')
  unknown = [name for name in config.exclude_features if name not in seen]
  if unknown:
    raise InputError(f'exclude_features (top-level or leakage) names {", ".join(map(repr, unknown))}, which no '
                     'example has (misspelled?): the content hash would silently include what was meant to be '
                     f'excluded. Features: {", ".join(sorted(seen))}.')
  if plan.group_key:
    absent = [s for s in plan.splits if not stats.get('group_present', {}).get(s)]
    if absent:
      raise ValueError(f'Leakage check: group_key {plan.group_key!r} is absent from every example of split(s) '
                       f'{", ".join(absent)}. Features: {", ".join(sorted(seen))}.')


def _samples(kind: str, raw: Sequence[Sequence[Any]], plan: _Plan, values: Mapping[Tuple[str, int], Any]) -> List[Dict]:
  samples = []
  for eval_file, eval_index, train_file, train_index, digest, eval_count, train_count, conflict in raw:
    eval_path, train_path = plan.files[eval_file][1], plan.files[train_file][1]
    eval_values = values.get((eval_path, eval_index), {})
    sample = {'hash': digest, 'file': eval_path, 'index': eval_index, 'train_file': train_path,
              'train_index': train_index, 'copies_in_b': eval_count, 'copies_in_a': train_count}
    if kind == GROUP:
      sample['group'] = readable_example({plan.group_key: eval_values.get(plan.group_key)}).get(plan.group_key)
    else:
      sample['label_conflict'] = conflict
      sample['features'] = readable_example({k: v for k, v in eval_values.items() if k not in plan.exclude})
      if plan.label_key:
        sample['label'] = readable_example({plan.label_key: eval_values.get(plan.label_key)}).get(plan.label_key)
    samples.append(sample)
  return samples


def _near_samples(raw: Sequence[Sequence[Any]], plan: _Plan, values: Mapping[Tuple[str, int], Any]) -> List[Dict]:
  """Both examples of each sampled pair, their distances per feature group and the thresholds they passed."""
  samples = []
  limits = near_duplicates.thresholds(plan.near)
  for eval_file, eval_index, train_file, train_index, columns, vectors, text, not_exact, conflict, mask in raw:
    eval_path, train_path = plan.files[eval_file][1], plan.files[train_file][1]
    distances = dict(zip(near_duplicates.GROUPS, (columns, vectors, text)))
    groups = near_duplicates.present_groups(mask)
    sample = {'file': eval_path, 'index': eval_index, 'train_file': train_path, 'train_index': train_index,
              'exact': not not_exact, 'label_conflict': conflict,
              'distances': {near_duplicates.DISTANCE_NAMES[g]: distances[g] for g in groups},
              'thresholds': {near_duplicates.DISTANCE_NAMES[g]: limits[g] for g in groups}}
    for prefix, path, index in (('', eval_path, eval_index), ('train_', train_path, train_index)):
      found = values.get((path, index), {})
      sample[prefix + 'features'] = readable_example({k: v for k, v in found.items() if k not in plan.exclude})
      if plan.label_key:
        sample[prefix + 'label'] = readable_example({plan.label_key: found.get(plan.label_key)}).get(plan.label_key)
    samples.append(sample)
  return samples


def _near_result(stats: Mapping[str, Any], plan: _Plan, eval_split: str,
                 values: Mapping[Tuple[str, int], Any]) -> Dict[str, Any]:
  pair = stats.get(NEAR, {}).get('cross', {}).get(eval_split, {})
  found = int(pair.get('duplicate_examples', 0))
  return {'splits': [plan.splits[0], eval_split], 'duplicate_examples': found,
          'near_only_examples': int(pair.get('near_only_examples', 0)),
          'fraction_of_b': _fraction(found, int(stats['examples'][eval_split])),
          'label_conflicts': int(pair.get('label_conflicts', 0)),
          'samples': _near_samples(pair.get('samples', []), plan, values)}


def _sample_locations(stats: Mapping[str, Any], plan: _Plan) -> List[Tuple[str, int]]:
  locations = []
  for kind in plan.kinds:
    for pair in stats.get(kind, {}).get('cross', {}).values():
      for eval_file, eval_index, train_file, train_index, *_ in pair.get('samples', []):
        locations.append((plan.files[eval_file][1], eval_index))
        if kind == NEAR:
          locations.append((plan.files[train_file][1], train_index))
  return locations


def _pair_result(kind: str, stats: Mapping[str, Any], plan: _Plan, eval_split: str,
                 values: Mapping[Tuple[str, int], Any]) -> Dict[str, Any]:
  pair = stats.get(kind, {}).get('cross', {}).get(eval_split, {})
  total = int(stats['examples'][eval_split])
  duplicates = int(pair.get('duplicate_examples', 0))
  result = {'splits': [plan.splits[0], eval_split], 'duplicate_examples': duplicates,
            'unique_duplicates': int(pair.get('unique_duplicates', 0)), 'fraction_of_b': _fraction(duplicates, total),
            'examples_in_a_involved': int(pair.get('train_examples', 0)),
            'samples': _samples(kind, pair.get('samples', []), plan, values)}
  if kind != GROUP:
    result['label_conflicts'] = int(pair.get('label_conflicts', 0))
  return result


def _finding(severity: str, kind: str, message: str, feature: Optional[str] = None, **details: Any) -> Finding:
  return Finding(constants.LEAKAGE, kind, severity, message, feature=feature, details=details)


def _findings(result: Mapping[str, Any], config: LeakageConfig, plan: _Plan) -> List[Finding]:
  """The findings of the per-split results: cross-split, near and group duplicates over the warn / block fractions,
  label conflicts, an incomplete near-duplicate search and duplicates within a split."""
  findings = []
  for pair in result['cross_split']:
    a, b = pair['splits']
    severity = _severity(pair['fraction_of_b'], config) if pair['duplicate_examples'] else None
    if severity:
      findings.append(_finding(
          severity, 'cross_split_duplicates', f'{pair["duplicate_examples"]} example(s) of {b} '
          f'({pair["fraction_of_b"]:.2%}) have the same content as an example of {a} ({pair["unique_duplicates"]} '
          'distinct).', splits=[a, b], duplicate_examples=pair['duplicate_examples'],
          fraction_of_b=pair['fraction_of_b']))
    if pair['label_conflicts']:
      findings.append(_finding(
          constants.WARN, 'label_conflict',
          f'{pair["label_conflicts"]} example(s) of {b} occur in {a} with a different {plan.label_key!r}.',
          splits=[a, b], label_conflicts=pair['label_conflicts']))
  for pair in result.get('near_duplicates') or []:
    a, b = pair['splits']
    if pair['near_only_examples'] and _severity(pair['fraction_of_b'], config):
      findings.append(_finding(
          constants.WARN, 'near_duplicates', f'{pair["near_only_examples"]} example(s) of {b} are near-duplicates '
          f'(not exact) of examples of {a}; {pair["duplicate_examples"]} ({pair["fraction_of_b"]:.2%}) counting exact '
          'ones.', splits=[a, b], near_only_examples=pair['near_only_examples'],
          fraction_of_b=pair['fraction_of_b']))
  skipped = (result.get('near_buckets') or {}).get('buckets_skipped', 0)
  if skipped:
    findings.append(_finding(
        constants.WARN, 'near_duplicates_incomplete',
        f'Near-duplicate search skipped {skipped} bucket(s) holding more than '
        f'{result["near_settings"]["max_bucket_pairs"]} train x eval pairs ({result["near_buckets"]["pairs_skipped"]} '
        f'pairs unchecked); raise leakage.near_max_bucket_pairs to check them.', buckets_skipped=skipped))
  for pair in result.get('group_leakage') or []:
    a, b = pair['splits']
    severity = _severity(pair['fraction_of_b'], config) if pair['shared_groups'] else None
    if severity:
      findings.append(_finding(
          severity, 'group_leakage',
          f'{pair["shared_groups"]} {plan.group_key!r} group(s) occur in both {a} and {b}: they hold '
          f'{pair["duplicate_examples"]} example(s) of {b} ({pair["fraction_of_b"]:.2%}) and '
          f'{pair["examples_in_a_involved"]} of {a}.', feature=plan.group_key, splits=[a, b],
          shared_groups=pair['shared_groups'], fraction_of_b=pair['fraction_of_b']))
  for split, count in sorted(result['within_split'].items()):
    if count:
      findings.append(_finding(
          constants.WARN, 'within_split_duplicates',
          f'{count} example(s) of {split} repeat another example of {split} (same content).', splits=[split],
          duplicate_examples=count))
  return findings


def summarize(stats: Mapping[str, Any], plan: _Plan, config: LeakageConfig, output_dir: str) -> CheckResult:
  """The check's result from the merged counters (plus a few re-read sample records): per-split numbers in details,
  findings over the config's fractions."""
  _check_inputs_seen(stats, plan, config)
  values = read_examples_at(_sample_locations(stats, plan))
  evals = plan.splits[1:]
  cross = [_pair_result(EXACT, stats, plan, b, values) for b in evals]
  within = {s: int(stats.get(EXACT, {}).get('within', {}).get(s, {}).get('duplicate_examples', 0))
            for s in plan.splits}
  result: Dict[str, Any] = {
      'cross_split': cross, 'within_split': within,
      'examples': {s: int(stats['examples'][s]) for s in plan.splits},
      'hashed_features': _hashed_features(stats, plan), 'excluded_features': list(plan.exclude),
      'features_seen': {s: sorted(stats['features'][s]['features']) for s in plan.splits},
      'duplicates_file': os.path.join(output_dir, DUPLICATES_FILE),
      'hash': '128-bit canonical content hash (two 64-bit lanes) of the hashed features',
  }
  if plan.near:
    result['near_duplicates'] = [_near_result(stats, plan, b, values) for b in evals]
    result['near_settings'] = plan.near.describe()
    result['near_buckets'] = {k: int(v) for k, v in sorted(stats.get(NEAR, {}).get('buckets', {}).items())}
  if plan.group_key:
    groups = [_pair_result(GROUP, stats, plan, b, values) for b in evals]
    for pair in groups:
      pair['shared_groups'] = pair.pop('unique_duplicates')
    result['group_leakage'] = groups
    result['group_key'] = plan.group_key
  findings = _findings(result, config, plan)
  return CheckResult(report.status_for(findings, config.mode), tuple(findings), details=result)


def check_leakage(examples: Mapping[str, str], train_split: str, eval_splits: Sequence[str], config: LeakageConfig,
                  make_pipeline: Callable[[], beam.Pipeline], output_dir: str,
                  label_key: Optional[str] = None) -> CheckResult:
  """Finds eval examples whose content (all features but the label and config.exclude_features) also occurs in train.

  Args:
    examples: split name -> file pattern of tf.Example TFRecord files (gzip when the name ends in .gz).
    train_split, eval_splits: every eval split is compared with train_split.
    config: thresholds, excluded features, near-duplicate and group settings.
    make_pipeline: builds the Beam pipeline (so `beam_pipeline_args` apply); one pipeline runs every split.
    output_dir: receives duplicates.tsv (every example whose hash occurs more than once) and the merged counters.
    label_key: left out of the hash; same content with a different label is a label conflict.

  Returns:
    A CheckResult: status, findings, details {cross_split: [...], within_split: {split: n}, near_duplicates?,
    group_leakage?, ...}.

  Raises:
    ValueError naming the split, file or feature when the check cannot really run.
  """
  plan = make_plan(examples, train_split, eval_splits, config, label_key)
  fileio.makedirs(output_dir)
  with make_pipeline() as pipeline:
    build_pipeline(pipeline, plan, output_dir)
  return summarize(_read_stats(output_dir), plan, config, output_dir)
