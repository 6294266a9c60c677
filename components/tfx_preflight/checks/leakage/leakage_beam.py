"""The leakage check's Beam part: decoded, located RecordBatches in; typed counts and duplicate-list lines out.

`LeakageHashes` takes one PCollection of every split's (file id, index of the first record, RecordBatch), as the read
pass (read_pass.py) decodes them once for every check:

  Hash: hash the whole batch with numpy (inputs/hashing.py) -> per batch, compact arrays (hash, split, label hash,
  file, index) -> Shard: cut each batch's arrays by hash into num_shards pieces -> GroupByKey((kind, shard))
  -> Join: per shard, sort by hash and count per split with numpy (`join_shard`) -> `LeakageCounts`, merged by
  `LeakageCountsCombineFn` (beam_util.CombineToOne), and the duplicate list in parts, one per join shard.
  With near_duplicates, Hash also emits LSH band keys and a verification payload per batch (near_features.py),
  joined by band bucket, verified by real distance and counted per eval example in three shuffles (near_duplicates.py).

The counts are a typed dataclass merged field by field; check.py turns them into findings (pure functions).

No worker and not the driver ever holds all hashes: each shard holds 1/num_shards of them (about 40 bytes per example).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np

from tfx_preflight import beam_util, constants, file_io, file_writes
from tfx_preflight.checks.leakage import history, near_duplicates, near_features, wire
from tfx_preflight.inputs import hashing
from tfx_preflight.inputs.located_batches import LocatedBatch, SplitBatches

EXACT = constants.LEAKAGE_EXACT
NEAR = constants.LEAKAGE_NEAR
GROUP = constants.LEAKAGE_GROUP
HISTORY = constants.LEAKAGE_HISTORY
# The near join's reference: a held-out sample of train probed against the rest of train, counted under
# (NEAR_REFERENCE, train split); its train_examples is the sample's size. How often train's own examples have a near
# twin in train is what chance predicts for eval (duplicate_chance.py).
NEAR_REFERENCE = 'near_reference'

DUPLICATES_FILE = constants.DUPLICATES_FILE
STATS_FILE = constants.LEAKAGE_STATS_FILE
DUPLICATES_HEADER = ('kind\thash\tsplit\tfile\trecord_index\tpair_split\tpair_file\tpair_record_index\tdistance\t'
                     'threshold')
_EXACT_LINE_PADDING = '\t' * 5
_NO_LABEL = np.uint64(0)

_COUNTS = 'counts'
_NEAR_BANDS = 'near_bands'
_NEAR_TRAIN = 'near_train'
_NEAR_EVAL = 'near_eval'
_TRAIN_HASHES = 'train_hashes'
_PARTS_DIR = 'duplicates.parts'  # Under output_dir while the job runs; collect_outputs joins and removes it.

@dataclasses.dataclass(frozen=True)
class Plan:
  """Everything the Beam steps need; small and picklable."""
  splits: Tuple[str, ...]  # index 0 is train.
  files: Tuple[Tuple[int, str], ...]  # (split id, path) by file id.
  exclude: Tuple[str, ...]
  label_key: Optional[str]
  group_key: Optional[str]
  near: Optional[near_features.NearSettings]
  num_shards: int
  max_samples: int
  # Earlier runs' train hashes (history.py): (index into history_dirs, stored file) joined with eval in the exact
  # join; and where this run's distinct train hashes are staged (saved when the run blesses).
  history_files: Tuple[Tuple[int, str], ...] = ()
  history_dirs: Tuple[str, ...] = ()
  save_hashes_dir: Optional[str] = None

  @property
  def history_split(self) -> int:
    """The split id marking stored hashes in the exact join's pieces (one past the last split)."""
    return len(self.splits)

  @property
  def kinds(self) -> Tuple[str, ...]:
    return self.hash_kinds[:1] + ((NEAR,) if self.near else ()) + self.hash_kinds[1:]

  @property
  def hash_kinds(self) -> Tuple[str, ...]:
    """Kinds joined by equal hashes (near-duplicates have their own join, near_duplicates.py)."""
    return (EXACT,) + ((GROUP,) if self.group_key else ())


# --- Typed counts, merged field by field -----------------------------------------------------------------------------


def _merged_samples(a: Sequence[tuple], b: Sequence[tuple], max_samples: int,
                    order: Optional[Callable[[Sequence[Any]], tuple]] = None) -> List[tuple]:
  """The max_samples first samples by `order` (default: by location, as eval file and eval index lead every sample),
  whatever the merge order."""
  return sorted([*a, *b], key=order)[:max_samples]


def _add_ints(a: Dict[Any, int], b: Mapping[Any, int]) -> None:
  for key, value in b.items():
    a[key] = a.get(key, 0) + int(value)


def _add_int_fields(target: Any, other: Any) -> None:
  """Adds every int field of the dataclass `other` into `target`'s (a field added later is merged too)."""
  for field in dataclasses.fields(target):
    if field.type in ('int', int):
      setattr(target, field.name, getattr(target, field.name) + getattr(other, field.name))


@dataclasses.dataclass
class PairCounts:
  """One kind (exact, near, group) between train and one eval split. Samples are tuples led by (eval file, eval
  index, train file, train index); exact/group: then hash, copies in eval, copies in train, label conflict; near: then
  distances (columns, vectors, text), not exact, label conflict, feature-group mask. The first max_samples are kept:
  by location, near ones by near_duplicates.sample_order (cheapest to read back)."""
  duplicate_examples: int = 0
  unique_duplicates: int = 0
  train_examples: int = 0
  label_conflicts: int = 0
  near_only_examples: int = 0
  history_only_examples: int = 0  # history: eval examples found in earlier runs' training data but not in train.
  near_only_label_conflicts: int = 0
  samples: List[tuple] = dataclasses.field(default_factory=list)

  def merge(self, other: PairCounts, max_samples: int,
            order: Optional[Callable[[Sequence[Any]], tuple]] = None) -> None:
    _add_int_fields(self, other)
    self.samples = _merged_samples(self.samples, other.samples, max_samples, order)


@dataclasses.dataclass
class WithinCounts:
  """Exact duplicates inside one split: repeated examples (beyond the first copy) and contents repeated; and the
  examples (and contents) whose copies in the split carry more than one label."""
  duplicate_examples: int = 0
  duplicate_groups: int = 0
  label_conflict_examples: int = 0
  label_conflict_groups: int = 0

  def merge(self, other: WithinCounts) -> None:
    _add_int_fields(self, other)


@dataclasses.dataclass
class NearBucketCounts:
  """The near-duplicate join's work: band buckets shared across splits, skipped as too large, pairs verified."""
  buckets_shared: int = 0
  buckets_skipped: int = 0
  pairs_skipped: int = 0
  candidate_pairs: int = 0
  verified_pairs: int = 0

  def merge(self, other: NearBucketCounts) -> None:
    _add_int_fields(self, other)


@dataclasses.dataclass
class LeakageCounts:
  """Everything the interpretation needs, per split and split pair; the accumulator of `LeakageCountsCombineFn`."""
  examples: Dict[str, int] = dataclasses.field(default_factory=dict)
  features: Dict[str, Tuple[str, ...]] = dataclasses.field(default_factory=dict)  # sorted names seen per split.
  label_present: Dict[str, int] = dataclasses.field(default_factory=dict)
  group_present: Dict[str, int] = dataclasses.field(default_factory=dict)
  cross: Dict[Tuple[str, str], PairCounts] = dataclasses.field(default_factory=dict)  # (kind, eval split).
  within: Dict[str, WithinCounts] = dataclasses.field(default_factory=dict)  # exact duplicates per split.
  near_buckets: Optional[NearBucketCounts] = None  # Set once the near-duplicate join counted anything.

  def pair(self, kind: str, eval_split: str) -> PairCounts:
    """The counts of (kind, eval split); empty when nothing was counted (no duplicate of that kind)."""
    return self.cross.get((kind, eval_split)) or PairCounts()

  def merge(self, other: LeakageCounts, max_samples: int) -> LeakageCounts:
    """Adds `other` into self (other is not modified nor shared) and returns self."""
    _add_ints(self.examples, other.examples)
    _add_ints(self.label_present, other.label_present)
    _add_ints(self.group_present, other.group_present)
    for split, names in other.features.items():
      self.features[split] = tuple(sorted(set(self.features.get(split, ())) | set(names)))
    for key, counts in other.cross.items():
      self.cross.setdefault(key, PairCounts()).merge(
          counts, max_samples, near_duplicates.sample_order if key[0] == NEAR else None)
    for split, counts in other.within.items():
      self.within.setdefault(split, WithinCounts()).merge(counts)
    if other.near_buckets is not None:
      if self.near_buckets is None:
        self.near_buckets = NearBucketCounts()
      self.near_buckets.merge(other.near_buckets)
    return self

  def to_jsonable(self) -> Dict[str, Any]:
    return {'examples': self.examples, 'features': {s: list(f) for s, f in self.features.items()},
            'label_present': self.label_present, 'group_present': self.group_present,
            'cross': [[kind, split, {**dataclasses.asdict(c), 'samples': [list(s) for s in c.samples]}]
                      for (kind, split), c in sorted(self.cross.items())],
            'within': {s: dataclasses.asdict(c) for s, c in self.within.items()},
            'near_buckets': dataclasses.asdict(self.near_buckets) if self.near_buckets is not None else None}

  @staticmethod
  def from_jsonable(value: Mapping[str, Any]) -> LeakageCounts:
    cross = {}
    for kind, split, counts in value['cross']:
      cross[(kind, split)] = PairCounts(**{**counts, 'samples': [tuple(s) for s in counts['samples']]})
    near = value.get('near_buckets')
    return LeakageCounts(examples=dict(value['examples']),
                         features={s: tuple(f) for s, f in value['features'].items()},
                         label_present=dict(value['label_present']), group_present=dict(value['group_present']),
                         cross=cross, within={s: WithinCounts(**c) for s, c in value['within'].items()},
                         near_buckets=NearBucketCounts(**near) if near is not None else None)


@beam.typehints.with_input_types(LeakageCounts)
@beam.typehints.with_output_types(LeakageCounts)
class LeakageCountsCombineFn(beam.CombineFn):
  """Small typed accumulators: a few numbers per split pair, feature names per split and a few sample locations."""

  def __init__(self, max_samples: int):
    self._max_samples = max_samples

  def create_accumulator(self) -> LeakageCounts:
    return LeakageCounts()

  def add_input(self, accumulator: LeakageCounts, element: LeakageCounts) -> LeakageCounts:
    return accumulator.merge(element, self._max_samples)

  def merge_accumulators(self, accumulators: Iterable[LeakageCounts]) -> LeakageCounts:
    merged = LeakageCounts()
    for accumulator in accumulators:
      merged.merge(accumulator, self._max_samples)
    return merged

  def extract_output(self, accumulator: LeakageCounts) -> LeakageCounts:
    return accumulator


# --- Hashing (one element per batch) ------------------------------------------------------------------------------


def _split_of(plan: Plan, file_id: int) -> int:
  return plan.files[file_id][0]


class _HashBatchFn(beam.DoFn):
  """One decoded batch -> the compact arrays of every hash kind, its counts, and (near) band keys and payloads."""

  def __init__(self, plan: Plan):
    self._plan = plan

  def process(self, located: LocatedBatch) -> Iterable[Any]:
    plan = self._plan
    file_id, start, batch = located
    split_id = _split_of(plan, file_id)
    split = plan.splits[split_id]
    n = batch.num_rows
    features = hashing.selected_features(batch, plan.exclude)
    part = {'split': split_id, 'file': np.full(n, file_id, dtype=np.uint32),
            'index': np.arange(start, start + n, dtype=np.int64), EXACT: hashing.hash_batch(batch, features)}
    counts = LeakageCounts(examples={split: n}, features={split: tuple(sorted(batch.schema.names))})
    if plan.label_key:
      label, present = hashing.hash_single_feature(batch, plan.label_key)
      part['label'] = np.where(present, label[:, 0], _NO_LABEL)
      counts.label_present[split] = int(present.sum())
    else:
      part['label'] = np.zeros(n, dtype=np.uint64)
    if plan.near:
      reference = self._reference_rows(part, counts) if split_id == 0 else None
      near = near_features.near_batch(batch, features, plan.near, probe=split_id > 0, reference_rows=reference)
      outputs = [(split_id, near_duplicates.batch_outputs(split_id, part['file'], part['index'], part[EXACT],
                                                          part['label'], near, plan.num_shards))]
      if reference is not None and len(reference):  # Probed like eval rows (split id len(splits), flagged ids).
        outputs.append((len(plan.splits), near_duplicates.batch_outputs(
            len(plan.splits), part['file'][reference], part['index'][reference], part[EXACT][reference],
            part['label'][reference], near.reference, plan.num_shards, id_flag=near_duplicates.REFERENCE_FLAG)))
      for payload_split, (bands, payloads) in outputs:
        for item in bands:
          yield beam.pvalue.TaggedOutput(_NEAR_BANDS, item)
        for item in payloads:
          yield beam.pvalue.TaggedOutput(_NEAR_EVAL if payload_split > 0 else _NEAR_TRAIN, item)
    if plan.group_key:
      group, present = hashing.hash_single_feature(batch, plan.group_key)
      part[GROUP] = group
      part['group_present'] = present
      counts.group_present[split] = int(present.sum())
    yield beam.pvalue.TaggedOutput(_COUNTS, counts)
    yield part

  def _reference_rows(self, part: Mapping[str, Any], counts: LeakageCounts) -> np.ndarray:
    """The train rows of the held-out reference sample (counted as its train_examples)."""
    plan = self._plan
    rows = np.flatnonzero(near_duplicates.in_reference(part['file'], part['index'], plan.near.reference_fraction))
    counts.cross[(NEAR_REFERENCE, plan.splits[0])] = PairCounts(train_examples=int(len(rows)))
    return rows


class _ShardFn(beam.DoFn):
  """Cuts one batch's arrays into per-shard pieces keyed (kind, shard): a few large elements per batch."""

  def __init__(self, plan: Plan):
    self._plan = plan

  def start_bundle(self) -> None:
    if self._plan.near:  # The first step after the near shuffles were written (see _NearJoinFn).
      beam_util.release_free_memory()

  def process(self, part: Mapping[str, Any]) -> Iterable[Tuple[Tuple[str, int], Tuple]]:
    for kind in self._plan.hash_kinds:
      keep = part['group_present'] if kind == GROUP else slice(None)
      hashes = part[kind][keep]
      columns = (hashes, part['label'][keep], part['file'][keep], part['index'][keep])
      shard = (hashes[:, 1] % np.uint64(self._plan.num_shards)).astype(np.int64)
      for s, rows in near_duplicates.split_by_shard(shard, self._plan.num_shards):
        yield (kind, s), (part['split'],) + tuple(c[rows] for c in columns)


def _row_order(hashes: np.ndarray, split: np.ndarray, file_id: np.ndarray, index: np.ndarray) -> np.ndarray:
  """Rows in (hash, split, file, index) order. One argsort of the first hash lane places every row whose first lane is
  unique (almost all); the full five-key sort runs only on rows whose first lane repeats (duplicates, and the rare
  first-lane collision), far less CPU than sorting every row by five keys."""
  order = np.argsort(hashes[:, 0], kind='stable')
  first_lane = hashes[order, 0]
  same = first_lane[1:] == first_lane[:-1]
  repeated = np.zeros(len(order), dtype=bool)
  repeated[1:] |= same
  repeated[:-1] |= same
  if repeated.any():  # Runs of one first lane stay where they are, in ascending order: sort within them.
    rows = order[repeated]
    order[repeated] = rows[np.lexsort((index[rows], file_id[rows], split[rows], hashes[rows, 1], hashes[rows, 0]))]
  return order


def _label_conflicts_within(group: np.ndarray, split: np.ndarray, label: np.ndarray, split_id: int,
                            copies: np.ndarray) -> Tuple[int, int]:
  """(examples, contents) of split `split_id` whose copies in that split carry more than one label hash; rows are
  sorted by group, and only contents repeated in the split are looked at."""
  rows = np.flatnonzero((split == split_id) & (copies[group] > 1))
  if not len(rows):
    return 0, 0
  run_starts = np.flatnonzero(np.r_[True, group[rows][1:] != group[rows][:-1]])
  differ = np.minimum.reduceat(label[rows], run_starts) != np.maximum.reduceat(label[rows], run_starts)
  sizes = np.diff(np.r_[run_starts, len(rows)])
  return int(sizes[differ].sum()), int(np.count_nonzero(differ))


def join_shard(kind: str, pieces: Iterable[Tuple], plan: Plan) -> Tuple[LeakageCounts, List[str]]:
  """Counts one shard's duplicates with numpy. Returns (counts, duplicate-list lines). Pieces of stored hashes
  (split id `plan.history_split`, exact kind) are joined with the eval rows only (`_count_history`)."""
  pieces = list(pieces)
  stored = [(p[1], np.full(len(p[1]), p[2], dtype=np.int64)) for p in pieces if p[0] == plan.history_split]
  pieces = [p for p in pieces if p[0] != plan.history_split]
  if not pieces:
    return LeakageCounts(), []
  split = np.concatenate([np.full(len(p[1]), p[0], dtype=np.int64) for p in pieces])
  hashes = np.concatenate([p[1] for p in pieces])
  label = np.concatenate([p[2] for p in pieces])
  file_id = np.concatenate([p[3] for p in pieces]).astype(np.int64)
  index = np.concatenate([p[4] for p in pieces])
  order = _row_order(hashes, split, file_id, index)
  split, hashes, label, file_id, index = split[order], hashes[order], label[order], file_id[order], index[order]
  starts = np.ones(len(split), dtype=bool)
  starts[1:] = (hashes[1:, 0] != hashes[:-1, 0]) | (hashes[1:, 1] != hashes[:-1, 1])
  group = np.cumsum(starts) - 1
  num_groups = int(group[-1]) + 1
  num_splits = len(plan.splits)
  counts = np.bincount(group * num_splits + split, minlength=num_groups * num_splits).reshape(num_groups, num_splits)

  result = LeakageCounts()
  if kind == EXACT:
    for s, name in enumerate(plan.splits):
      column = counts[:, s]
      conflicts = _label_conflicts_within(group, split, label, s, column) if plan.label_key else (0, 0)
      result.within[name] = WithinCounts(duplicate_examples=int(column.sum() - np.count_nonzero(column)),
                                         duplicate_groups=int(np.count_nonzero(column > 1)),
                                         label_conflict_examples=conflicts[0], label_conflict_groups=conflicts[1])

  train_rows = np.flatnonzero(split == 0)
  first_train = np.full(num_groups, -1, dtype=np.int64)
  label_min = np.full(num_groups, np.iinfo(np.uint64).max, dtype=np.uint64)
  label_max = np.zeros(num_groups, dtype=np.uint64)
  if len(train_rows):  # Rows are sorted by group, so each group's train rows are one run: reduce per run.
    train_group = group[train_rows]
    run_starts = np.flatnonzero(np.r_[True, train_group[1:] != train_group[:-1]])
    groups_with_train = train_group[run_starts]
    first_train[groups_with_train] = train_rows[run_starts]
    label_min[groups_with_train] = np.minimum.reduceat(label[train_rows], run_starts)
    label_max[groups_with_train] = np.maximum.reduceat(label[train_rows], run_starts)
  in_train = counts[:, 0] > 0
  for s in range(1, num_splits):
    shared = in_train & (counts[:, s] > 0)
    rows = np.flatnonzero((split == s) & shared[group])
    conflicts = (label_min[group[rows]] != label_max[group[rows]]) | (label[rows] != label_min[group[rows]])
    ordered = rows[np.lexsort((index[rows], file_id[rows]))][:plan.max_samples]
    samples = []
    for row in ordered:
      g, t = group[row], first_train[group[row]]
      conflict = bool(conflicts[np.searchsorted(rows, row)]) if kind != GROUP else False
      samples.append((int(file_id[row]), int(index[row]), int(file_id[t]), int(index[t]),
                      hashing.hex_digest(hashes[row]), int(counts[g, s]), int(counts[g, 0]), conflict))
    result.cross[(kind, plan.splits[s])] = PairCounts(
        duplicate_examples=int(len(rows)), unique_duplicates=int(np.count_nonzero(shared)),
        train_examples=int(counts[shared, 0].sum()),
        label_conflicts=int(np.count_nonzero(conflicts)) if kind != GROUP and plan.label_key else 0,
        samples=samples)

  lines: List[str] = []
  if kind != GROUP:
    listed = np.flatnonzero(counts.sum(axis=1)[group] > 1)
    lines = [f'{kind}\t{hashing.hex_digest(hashes[r])}\t{file_writes.tsv_field(plan.splits[split[r]])}\t'
             f'{file_writes.tsv_field(plan.files[file_id[r]][1])}\t{int(index[r])}{_EXACT_LINE_PADDING}' for r in listed]
  if stored and kind == EXACT:
    lines += _count_history(result, np.concatenate([h for h, _ in stored]), np.concatenate([i for _, i in stored]),
                            plan, split, hashes, file_id, index, group, counts)
  return result, lines


def _count_history(result: LeakageCounts, stored: np.ndarray, stored_ids: np.ndarray, plan: Plan, split: np.ndarray, hashes: np.ndarray,
                   file_id: np.ndarray, index: np.ndarray, group: np.ndarray, counts: np.ndarray) -> List[str]:
  """Per eval split, its rows whose hash an earlier run trained on (and those today's train lacks), with samples;
  returns their duplicates.tsv lines. Rows are sorted by hash, so each content's rows are one run."""
  eval_rows = np.flatnonzero(split > 0)
  found = eval_rows[history.in_stored(hashes[eval_rows], stored)]
  for s in range(1, len(plan.splits)):
    rows = found[split[found] == s]
    if not len(rows):
      continue
    ordered = rows[np.lexsort((index[rows], file_id[rows]))][:plan.max_samples]
    samples = [(int(file_id[r]), int(index[r]), _stored_in(stored, stored_ids, hashes[r]), -1,
                hashing.hex_digest(hashes[r]), int(counts[group[r], s]), 0, False) for r in ordered]
    result.cross[(HISTORY, plan.splits[s])] = PairCounts(
        duplicate_examples=int(len(rows)), unique_duplicates=int(len(np.unique(group[rows]))),
        history_only_examples=int(np.count_nonzero(counts[group[rows], 0] == 0)), samples=samples)
  return history.history_lines(found, hashes, plan.splits, split, plan.files, file_id, index)


def _stored_in(stored: np.ndarray, stored_ids: np.ndarray, digest: np.ndarray) -> int:
  """The first stored directory (index into plan.history_dirs) holding `digest`: for the few sampled rows only."""
  return int(stored_ids[np.flatnonzero((stored[:, 0] == digest[0]) & (stored[:, 1] == digest[1]))].min())


_PART = re.compile(r'[a-z]+-\d{5,}')


def part_name(kind: str, shard: int) -> str:
  """The duplicate-list part of one join shard; parts sort by name into duplicates.tsv's order (kind, then shard)."""
  return f'{kind}-{shard:05d}'


class _JoinShardFn(beam.DoFn):

  def __init__(self, plan: Plan):
    self._plan = plan

  def start_bundle(self) -> None:
    if self._plan.near:  # The first step after the near shuffles were written (see _NearJoinFn).
      beam_util.release_free_memory()

  def process(self, element) -> Iterable[Any]:
    (kind, shard), pieces = element
    pieces = list(pieces)
    counts, lines = join_shard(kind, pieces, self._plan)
    if self._plan.save_hashes_dir and kind == EXACT:
      train = [p[1] for p in pieces if p[0] == 0]
      if train:
        yield beam.pvalue.TaggedOutput(_TRAIN_HASHES, (shard, history.distinct_rows(np.concatenate(train))))
    yield beam.pvalue.TaggedOutput(_COUNTS, counts)
    if lines:
      yield part_name(kind, shard), '\n'.join(lines)


# --- Near-duplicate join ----------------------------------------------------------------------------------------------


class _NearJoinFn(beam.DoFn):
  """A step of the near join: it follows the large shuffles of band keys and payloads, so it hands the pages the
  runner freed (and its own) back to the OS before and after its bundle (beam_util.release_free_memory)."""

  def start_bundle(self) -> None:
    beam_util.release_free_memory()

  def finish_bundle(self) -> None:
    beam_util.release_free_memory()


class _BucketPairsFn(_NearJoinFn):
  """One band shard: distinct cross-split pairs sharing a bucket, sharded by their train example."""

  def __init__(self, plan: Plan):
    self._plan = plan

  def process(self, element) -> Iterable[Any]:
    _, pieces = element
    pairs, counters = near_duplicates.bucket_pairs(pieces, self._plan.near.max_bucket_pairs)
    yield beam.pvalue.TaggedOutput(_COUNTS, LeakageCounts(near_buckets=NearBucketCounts(**counters)))
    for shard, rows in near_duplicates.split_by_shard(near_duplicates.id_shard(pairs[:, 0], self._plan.num_shards),
                                                      self._plan.num_shards):
      yield shard, pairs[rows]


class _AttachTrainFn(_NearJoinFn):

  def __init__(self, plan: Plan):
    self._plan = plan

  def process(self, element) -> Iterable[Any]:
    _, grouped = element
    yield from near_duplicates.attach_train(grouped['pairs'], grouped['payload'], self._plan.num_shards)


def near_counts(counted: Mapping[str, Any], buckets: Mapping[str, int]) -> LeakageCounts:
  """near_duplicates.count_best's per-split counters (and the shard's bucket counters) as typed counts."""
  cross = {(NEAR, split): PairCounts(duplicate_examples=c['duplicate_examples'],
                                     near_only_examples=c['near_only_examples'], label_conflicts=c['label_conflicts'],
                                     near_only_label_conflicts=c['near_only_label_conflicts'],
                                     samples=[tuple(s) for s in c['samples']])
           for split, c in counted['cross'].items()}
  reference = counted.get('reference')
  if reference:
    cross[(NEAR_REFERENCE, counted['train_split'])] = PairCounts(**reference)
  return LeakageCounts(cross=cross, near_buckets=NearBucketCounts(**buckets))


class _VerifyFn(_NearJoinFn):
  """One eval shard: every candidate pair verified, the best per eval example counted and listed."""

  def __init__(self, plan: Plan):
    self._plan = plan

  def process(self, element) -> Iterable[Any]:
    shard, grouped = element
    plan = self._plan
    buckets, best = near_duplicates.verify_eval_shard(grouped['pairs'], grouped['payload'], plan.near)
    counted, lines = near_duplicates.count_best(best, plan.splits, plan.files, plan.max_samples, plan.near)
    yield beam.pvalue.TaggedOutput(_COUNTS, near_counts(counted, buckets))
    if lines:
      yield part_name(NEAR, shard), '\n'.join(lines)


class _PairedIdsFn(beam.CombineFn):
  """Every example id of the candidate pairs, sorted and distinct, as one wire blob (8 bytes per paired example)."""

  def create_accumulator(self) -> List[np.ndarray]:
    return []

  def add_input(self, accumulator: List[np.ndarray], element: Tuple[int, np.ndarray]) -> List[np.ndarray]:
    accumulator.append(element[1].reshape(-1))
    return accumulator

  def merge_accumulators(self, accumulators: Iterable[List[np.ndarray]]) -> List[np.ndarray]:
    return [ids for accumulator in accumulators for ids in accumulator]

  def extract_output(self, accumulator: List[np.ndarray]) -> bytes:
    """One sort of every pair's ids (accumulators hold the pairs' ids as they come: no more than the pairs)."""
    ids = np.unique(np.concatenate(accumulator)) if accumulator else np.zeros(0, np.int64)
    return wire.encode([ids.astype(np.int64)], [False])


def _paired_payloads(shard_blob: Tuple[int, bytes], paired: bytes) -> Iterable[Tuple[int, bytes]]:
  """The rows of a payload piece that some candidate pair needs (most examples are in none)."""
  shard, blob = shard_blob
  (ids,) = wire.decode(paired)
  if not len(ids):
    return
  _, payload = near_duplicates.Payload.from_wire(blob)
  rows = near_duplicates.members(payload.row_id, ids)
  if len(rows):
    yield shard, payload.take(rows).to_wire()


def _near_join(bands: beam.PCollection, train: beam.PCollection, evals: beam.PCollection,
               plan: Plan) -> Tuple[beam.PCollection, beam.PCollection]:
  """Band shards -> pairs -> with train payloads -> with eval payloads (and the reference sample's), verified;
  returns (tsv lines, counts).

  Only the payload rows of paired examples go through the joins' shuffles: the pairs' ids (a side input of 8 bytes
  per paired example) pick them from the read step's payloads first. Joining every payload made the in-process runner
  materialize, group and re-encode ~90 bytes per example, of which the pairs need a few rows."""
  pairs = (bands
           | 'GroupByBand' >> beam.GroupByKey()
           | 'BucketPairs' >> beam.ParDo(_BucketPairsFn(plan)).with_outputs(_COUNTS, main='pairs'))
  paired = beam.pvalue.AsSingleton(pairs.pairs | 'PairedIds' >> beam_util.CombineToOne(_PairedIdsFn()))
  train = train | 'PairedTrainPayloads' >> beam.FlatMap(_paired_payloads, paired)
  evals = evals | 'PairedEvalPayloads' >> beam.FlatMap(_paired_payloads, paired)
  with_train = ({'pairs': pairs.pairs, 'payload': train}
                | 'JoinTrainExamples' >> beam.CoGroupByKey()
                | 'AttachTrain' >> beam.ParDo(_AttachTrainFn(plan)))
  verified = ({'pairs': with_train, 'payload': evals}
              | 'JoinEvalExamples' >> beam.CoGroupByKey()
              | 'Verify' >> beam.ParDo(_VerifyFn(plan)).with_outputs(_COUNTS, main='lines'))
  counts = (pairs[_COUNTS], verified[_COUNTS]) | 'FlattenNearCounts' >> beam.Flatten()
  return verified.lines, counts


# --- The transform ------------------------------------------------------------------------------------------------


class LeakageHashes(beam.PTransform):
  """PCollection of LocatedBatch of every split (file ids index `plan.files`, whose split ids index `plan.splits`) ->
  {'counts': one LeakageCounts, 'lines': (part name, duplicates.tsv lines) per join shard with duplicates}.

  One hashing step takes every split (the read pass's SplitBatches.every): with one step per split, the runner would
  materialize the Flatten of their band keys, payloads and hashes before the shuffles, one more encoding and decoding
  of every byte of them.
  """

  def __init__(self, plan: Plan):
    super().__init__()
    if not plan.splits or plan.num_shards < 1 or plan.max_samples < 0:
      raise ValueError(f'LeakageHashes: invalid plan (splits {plan.splits}, num_shards {plan.num_shards}, '
                       f'max_samples {plan.max_samples}).')
    self._plan = plan

  def expand(self, batches: beam.PCollection) -> Dict[str, beam.PCollection]:
    plan = self._plan
    hashed = batches | 'Hash' >> beam.ParDo(_HashBatchFn(plan)).with_outputs(
        _COUNTS, _NEAR_BANDS, _NEAR_TRAIN, _NEAR_EVAL, main='parts')
    sharded = [hashed.parts | 'Shard' >> beam.ParDo(_ShardFn(plan))]
    if plan.history_files:
      sharded.append(batches.pipeline | 'History' >> history.ReadStoredHashes(
          plan.history_files, plan.num_shards, plan.history_split, EXACT))
    joined = (sharded
              | 'FlattenShards' >> beam.Flatten()
              | 'GroupByShard' >> beam.GroupByKey()
              | 'Join' >> beam.ParDo(_JoinShardFn(plan)).with_outputs(_COUNTS, _TRAIN_HASHES, main='lines'))
    if plan.save_hashes_dir:
      _ = joined[_TRAIN_HASHES] | 'WriteTrainHashes' >> beam.Map(history.write_shard, plan.save_hashes_dir)
    lines, counts = [joined.lines], [hashed[_COUNTS], joined[_COUNTS]]
    if plan.near:
      near_lines, near_counted = _near_join(hashed[_NEAR_BANDS], hashed[_NEAR_TRAIN], hashed[_NEAR_EVAL], plan)
      lines.append(near_lines)
      counts.append(near_counted)
    return {'counts': (counts
                       | 'FlattenCounts' >> beam.Flatten()
                       | 'MergeCounts' >> beam_util.CombineToOne(LeakageCountsCombineFn(plan.max_samples))),
            'lines': lines | 'FlattenLines' >> beam.Flatten()}


class WriteLeakageOutputs(beam.PTransform):
  """LeakageHashes' outputs -> the merged counts as JSON and one duplicate-list part per join shard with duplicates,
  each written whole by the step that made it (a retried step rewrites the same file); `collect_outputs` joins the
  parts into duplicates.tsv. Beam's WriteToText would cost five more steps and three side inputs per file."""

  def __init__(self, output_dir: str):
    super().__init__()
    self._output_dir = output_dir

  def expand(self, outputs: Mapping[str, beam.PCollection]) -> beam.pvalue.PDone:
    parts_dir = os.path.join(self._output_dir, _PARTS_DIR)
    _ = outputs['lines'] | 'WriteDuplicateParts' >> beam.Map(_write_part, parts_dir)
    return outputs['counts'] | 'WriteCounts' >> beam.Map(_write_counts, os.path.join(self._output_dir, STATS_FILE))


def _write_part(part: Tuple[str, str], parts_dir: str) -> None:
  name, text = part
  file_writes.write_atomically(os.path.join(parts_dir, name), text + '\n')


def _write_counts(counts: LeakageCounts, path: str) -> None:
  file_writes.write_atomically(path, json.dumps(counts.to_jsonable(), sort_keys=True))


def clear_outputs(output_dir: str) -> None:
  """Removes what an earlier run left in `output_dir` (parts of a run that failed), so no stale part is joined."""
  parts_dir = os.path.join(output_dir, _PARTS_DIR)
  if file_io.exists(parts_dir):
    file_io.rmtree(parts_dir)


def collect_outputs(output_dir: str) -> LeakageCounts:
  """After the pipeline: duplicates.tsv from the parts (header, then parts in name order: the same input gives the
  same file), and the merged counts."""
  parts_dir = os.path.join(output_dir, _PARTS_DIR)
  # Only whole parts: a temp file a failed attempt left (write_atomically's '.<name>.tmp-<uuid>') is not one.
  names = sorted(n for n in (file_io.listdir(parts_dir) if file_io.exists(parts_dir) else []) if _PART.fullmatch(n))
  with file_io.open(os.path.join(output_dir, DUPLICATES_FILE), 'w') as out:
    out.write(DUPLICATES_HEADER + '\n')
    for name in names:
      with file_io.open(os.path.join(parts_dir, name), 'r') as part:
        shutil.copyfileobj(part, out)
  clear_outputs(output_dir)
  with file_io.open(os.path.join(output_dir, STATS_FILE), 'r') as f:
    return LeakageCounts.from_jsonable(json.loads(f.read()))


@dataclasses.dataclass(frozen=True)
class LeakageReadPart:
  """The leakage check's consumer of the one read pass (inputs/read_pass.ReadPart): hashes of every split joined
  across splits, written under `output_dir` (duplicates.tsv, the merged counts)."""
  plan: Plan
  output_dir: str
  history: Tuple = ()  # history.Stored of every --history directory / history artifact given, compared or not.
  label: str = 'leakage hashes'

  def prepare(self) -> None:
    file_io.makedirs(self.output_dir)
    clear_outputs(self.output_dir)

  def expand(self, batches: SplitBatches, splits: Tuple[str, ...], files: Tuple) -> None:
    _ = (batches.every
         | 'Leakage' >> LeakageHashes(self.plan)
         | 'WriteLeakage' >> WriteLeakageOutputs(self.output_dir))

  def collect(self, splits: Tuple[str, ...]) -> LeakageCounts:
    return collect_outputs(self.output_dir)

  def examples_read(self, output: LeakageCounts, splits: Sequence[str]) -> Dict[str, int]:
    return {split: int(output.examples.get(split, 0)) for split in splits}
