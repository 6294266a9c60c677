"""The leakage job's Beam pieces on their own (leakage_beam.py): the typed counts' CombineFn (Beam combiners_test
style, each method called directly, then once in a real pipeline) and `join_shard`, each against an oracle computed
another way (collect every input then reduce once; pandas group-bys)."""

import copy
import dataclasses
import itertools
import json
from typing import Any, Dict, List

import apache_beam as beam
import numpy as np
import pandas as pd
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tfx_preflight.checks.leakage import leakage_beam
from tfx_preflight.checks.leakage.leakage_beam import LeakageCounts, NearBucketCounts, PairCounts, WithinCounts

SPLITS = ('train', 'eval', 'test')
MAX_SAMPLES = 3
EXACT, NEAR, GROUP = leakage_beam.EXACT, leakage_beam.NEAR, leakage_beam.GROUP


# --- LeakageCountsCombineFn -------------------------------------------------------------------------------------


def _counts(rng: np.random.Generator) -> LeakageCounts:
  """One element as _HashBatchFn / _JoinShardFn / the near join emit them: per-split numbers, feature names, pair
  counts with sample tuples, within-split counts, sometimes near-duplicate bucket counts."""
  split = SPLITS[int(rng.integers(len(SPLITS)))]
  other = SPLITS[1 + int(rng.integers(len(SPLITS) - 1))]
  kind = (EXACT, NEAR, GROUP)[int(rng.integers(3))]
  samples = [(int(rng.integers(3)), int(rng.integers(50)), 0, int(rng.integers(50)), f'{int(rng.integers(9)):032x}',
              1, 1, bool(rng.integers(2))) for _ in range(int(rng.integers(4)))]
  near = NearBucketCounts(*(int(v) for v in rng.integers(0, 5, 5))) if rng.integers(3) == 0 else None
  return LeakageCounts(
      examples={split: int(rng.integers(1, 100))}, label_present={split: int(rng.integers(100))},
      group_present={split: int(rng.integers(100))} if rng.integers(2) else {},
      features={split: tuple(sorted({f'f{int(i)}' for i in rng.integers(0, 6, 3)}))},
      cross={(kind, other): PairCounts(*(int(v) for v in rng.integers(0, 10, 5)), samples=samples)},
      within={split: WithinCounts(int(rng.integers(5)), int(rng.integers(5)))}, near_buckets=near)


def _sum_ints(dicts) -> Dict[str, int]:
  total: Dict[str, int] = {}
  for d in dicts:
    for k, v in d.items():
      total[k] = total.get(k, 0) + v
  return total


def _oracle(elements: List[LeakageCounts]) -> LeakageCounts:
  """Collects every field of every element first, then reduces each once: sums, set unions, k smallest samples."""
  features: Dict[str, set] = {}
  for e in elements:
    for split, names in e.features.items():
      features.setdefault(split, set()).update(names)
  cross = {}
  for key in {k for e in elements for k in e.cross}:
    pairs = [e.cross[key] for e in elements if key in e.cross]
    numbers = {f.name: sum(getattr(p, f.name) for p in pairs) for f in dataclasses.fields(PairCounts)
               if f.name != 'samples'}
    # Near samples: the pairs cheapest to read back first (the deeper of their two record indices).
    order = (lambda s: (max(s[1], s[3]), *s)) if key[0] == NEAR else None
    cross[key] = PairCounts(**numbers, samples=sorted(itertools.chain.from_iterable(p.samples for p in pairs),
                                                      key=order)[:MAX_SAMPLES])
  within = {split: WithinCounts(sum(e.within[split].duplicate_examples for e in elements if split in e.within),
                                sum(e.within[split].duplicate_groups for e in elements if split in e.within))
            for split in {s for e in elements for s in e.within}}
  near = [e.near_buckets for e in elements if e.near_buckets is not None]
  near_total = NearBucketCounts(*(sum(getattr(n, f.name) for n in near) for f in dataclasses.fields(
      NearBucketCounts))) if near else None
  return LeakageCounts(examples=_sum_ints(e.examples for e in elements),
                       features={s: tuple(sorted(n)) for s, n in features.items()},
                       label_present=_sum_ints(e.label_present for e in elements),
                       group_present=_sum_ints(e.group_present for e in elements),
                       cross=cross, within=within, near_buckets=near_total)


@pytest.fixture
def elements():
  rng = np.random.default_rng(7)
  return [_counts(rng) for _ in range(40)]


def test_create_accumulator_is_empty_and_extract_output_returns_it():
  fn = leakage_beam.LeakageCountsCombineFn(MAX_SAMPLES)
  assert fn.create_accumulator() == LeakageCounts()
  assert fn.extract_output(fn.create_accumulator()) == LeakageCounts()
  assert fn.create_accumulator() is not fn.create_accumulator()  # Never a shared default.


def test_add_input_equals_collect_then_reduce(elements):
  fn = leakage_beam.LeakageCountsCombineFn(MAX_SAMPLES)
  accumulator = fn.create_accumulator()
  for element in elements:
    accumulator = fn.add_input(accumulator, element)
  expected = _oracle(elements)
  assert fn.extract_output(accumulator) == expected
  assert expected.near_buckets is not None and expected.cross and expected.within  # Every field is exercised.


def test_add_input_copies_what_it_keeps(elements):
  """The accumulator must not share lists or dicts with an input: Beam may reuse or hand the input elsewhere."""
  fn = leakage_beam.LeakageCountsCombineFn(MAX_SAMPLES)
  before = copy.deepcopy(elements)
  accumulator = fn.create_accumulator()
  for element in elements:
    accumulator = fn.add_input(accumulator, element)
  accumulator = fn.add_input(accumulator, elements[0])
  assert elements == before


@pytest.mark.parametrize('seed', range(5))
def test_merge_accumulators_in_any_grouping_and_order(elements, seed):
  """Accumulators built on random partitions, merged in random order and in nested merges, give the oracle."""
  rng = np.random.default_rng(seed)
  fn = leakage_beam.LeakageCountsCombineFn(MAX_SAMPLES)
  cuts = sorted(rng.choice(np.arange(1, len(elements)), size=4, replace=False))
  accumulators = []
  for part in np.split(np.array(elements, dtype=object), cuts):
    accumulator = fn.create_accumulator()
    for element in part:
      accumulator = fn.add_input(accumulator, element)
    accumulators.append(accumulator)
  accumulators.append(fn.create_accumulator())  # An empty bundle merges as nothing.
  order = list(rng.permutation(len(accumulators)))
  nested = fn.merge_accumulators([fn.merge_accumulators([accumulators[i] for i in order[:2]]),
                                  *[accumulators[i] for i in order[2:]]])
  assert fn.extract_output(nested) == _oracle(elements)
  assert fn.merge_accumulators(reversed(accumulators)) == _oracle(elements)


def test_samples_keep_the_first_by_location_whatever_the_arrival_order():
  fn = leakage_beam.LeakageCountsCombineFn(2)
  sample = lambda file, index: (file, index, 0, 0, 'h', 1, 1, False)  # noqa: E731
  element = lambda *samples: LeakageCounts(cross={(EXACT, 'eval'): PairCounts(samples=list(samples))})  # noqa: E731
  accumulator = fn.create_accumulator()
  for e in (element(sample(1, 5)), element(sample(0, 9), sample(2, 0)), element(sample(0, 3))):
    accumulator = fn.add_input(accumulator, e)
  assert accumulator.pair(EXACT, 'eval').samples == [sample(0, 3), sample(0, 9)]
  assert accumulator.pair(NEAR, 'eval') == PairCounts()  # Nothing counted: zeros, not a KeyError.


def test_counts_survive_the_json_file_the_driver_reads(elements):
  fn = leakage_beam.LeakageCountsCombineFn(MAX_SAMPLES)
  merged = fn.merge_accumulators([fn.add_input(fn.create_accumulator(), e) for e in elements])
  assert LeakageCounts.from_jsonable(json.loads(json.dumps(merged.to_jsonable()))) == merged


def test_combine_globally_in_a_real_pipeline(elements):
  expected = _oracle(elements)
  with TestPipeline() as p:
    merged = (p | beam.Create(elements, reshuffle=False)
              | beam.CombineGlobally(leakage_beam.LeakageCountsCombineFn(MAX_SAMPLES)))
    assert_that(merged, equal_to([expected]))


# --- join_shard ---------------------------------------------------------------------------------------------------


def _plan(label_key='label', group_key=None, max_samples=MAX_SAMPLES) -> leakage_beam.Plan:
  files = tuple((split_id, f'{split}-{k}.tfrecord') for split_id, split in enumerate(SPLITS) for k in range(2))
  return leakage_beam.Plan(splits=SPLITS, files=files, exclude=(), label_key=label_key, group_key=group_key, near=None,
                       num_shards=1, max_samples=max_samples)


def _rows(seed: int, plan: leakage_beam.Plan, n: int = 300) -> pd.DataFrame:
  """Examples with hashes from a small pool (so duplicates within and across splits happen) and 0/1 labels."""
  rng = np.random.default_rng(seed)
  file_id = rng.integers(0, len(plan.files), n)
  pool = rng.integers(0, 2**63, size=(40, 2), dtype=np.uint64)
  frame = pd.DataFrame({'file': file_id, 'split': [plan.files[f][0] for f in file_id],
                        'h': rng.integers(0, len(pool), n), 'label': rng.integers(1, 3, n).astype(np.uint64)})
  frame['index'] = frame.groupby('file').cumcount().astype(np.int64)
  frame['h0'], frame['h1'] = pool[frame.h, 0], pool[frame.h, 1]
  frame['hex'] = [f'{int(a):016x}{int(b):016x}' for a, b in pool[frame.h]]  # Before any row turns uint64 to float.
  return frame


def _pieces(frame: pd.DataFrame, rng: np.random.Generator) -> List[tuple]:
  """What _ShardFn yields for one shard: per batch (split, hashes, labels, files, indices), batches shuffled."""
  pieces = []
  for split, rows in frame.sample(frac=1, random_state=int(rng.integers(1000))).groupby('split'):
    for batch in np.array_split(rows, 3):
      pieces.append((int(split), batch[['h0', 'h1']].to_numpy(dtype=np.uint64), batch.label.to_numpy(np.uint64),
                     batch.file.to_numpy(np.uint32), batch['index'].to_numpy(np.int64)))
  rng.shuffle(pieces)
  return pieces


def _pandas_cross(frame: pd.DataFrame, split: int, max_samples: int) -> Dict[str, Any]:
  train = frame[frame.split == 0]
  other = frame[frame.split == split]
  train_labels = train.groupby('h')['label'].agg(set)
  joined = other[other.h.isin(train_labels.index)].sort_values(['file', 'index'])
  conflict = [bool(train_labels[h] | {lab} != {lab}) for h, lab in zip(joined.h, joined.label)]
  first_train = train.sort_values(['file', 'index']).groupby('h').first()
  samples = [(int(r.file), int(r['index']), int(first_train.loc[r.h, 'file']), int(first_train.loc[r.h, 'index']),
              r.hex, int((other.h == r.h).sum()),
              int((train.h == r.h).sum()), c) for (_, r), c in zip(joined.head(max_samples).iterrows(), conflict)]
  return {'duplicate_examples': len(joined), 'unique_duplicates': int(joined.h.nunique()),
          'train_examples': int(train.h.isin(joined.h).sum()), 'label_conflicts': int(sum(conflict)),
          'samples': samples}


def _pandas_within(split_frame: pd.DataFrame) -> dict:
  per_content = split_frame.groupby('h')['label'].agg(['size', 'nunique'])
  conflicting = per_content[(per_content['size'] > 1) & (per_content['nunique'] > 1)]
  return {'duplicate_examples': int(len(split_frame) - split_frame.h.nunique()),
          'duplicate_groups': int((per_content['size'] > 1).sum()),
          'label_conflict_examples': int(conflicting['size'].sum()), 'label_conflict_groups': len(conflicting)}


@pytest.mark.parametrize('seed', range(4))
def test_join_shard_exact_counts_equal_pandas(seed):
  plan = _plan()
  frame = _rows(seed, plan)
  counters, lines = leakage_beam.join_shard(EXACT, _pieces(frame, np.random.default_rng(seed)), plan)

  within = {SPLITS[s]: _pandas_within(g) for s, g in frame.groupby('split')}
  cross = {SPLITS[s]: _pandas_cross(frame, s, MAX_SAMPLES) for s in range(1, len(SPLITS))}
  assert counters == LeakageCounts(within={s: WithinCounts(**c) for s, c in within.items()},
                                   cross={(EXACT, s): PairCounts(**c) for s, c in cross.items()})
  assert sum(c['duplicate_examples'] for c in cross.values()) > 0  # The data really leaks.
  assert sum(c['label_conflict_examples'] for c in within.values()) > 0  # And has copies with other labels.

  repeated = frame[frame.h.map(frame.h.value_counts()) > 1]
  expected_lines = sorted((EXACT, r.hex, SPLITS[r.split], plan.files[r.file][1], str(r['index'])) for _, r in repeated.iterrows())
  fields = [line.split('\t') for line in lines]
  assert all(len(f) == len(leakage_beam.DUPLICATES_HEADER.split('\t')) for f in fields)
  assert sorted(tuple(f[:5]) for f in fields) == expected_lines


def test_join_shard_without_label_key_counts_no_conflict():
  plan = _plan(label_key=None)
  frame = _rows(11, plan)
  counters, _ = leakage_beam.join_shard(EXACT, _pieces(frame, np.random.default_rng(0)), plan)
  assert all(c.label_conflicts == 0 for c in counters.cross.values())
  assert counters.pair(EXACT, 'eval').duplicate_examples == _pandas_cross(frame, 1, 0)['duplicate_examples']


def test_join_shard_group_kind_counts_shared_entities_only():
  """Groups: cross-split counts as for exact hashes, but no within-split counters, no conflicts, no list lines."""
  plan = _plan(group_key='user')
  frame = _rows(5, plan)
  counters, lines = leakage_beam.join_shard(GROUP, _pieces(frame, np.random.default_rng(1)), plan)
  assert lines == []
  assert counters.within == {}
  for s in range(1, len(SPLITS)):
    expected = _pandas_cross(frame, s, MAX_SAMPLES)
    got = dataclasses.asdict(counters.pair(GROUP, SPLITS[s]))
    assert got['label_conflicts'] == 0 and all(sample[-1] is False for sample in got['samples'])
    assert {k: got[k] for k in ('duplicate_examples', 'unique_duplicates', 'train_examples')} == {
        k: expected[k] for k in ('duplicate_examples', 'unique_duplicates', 'train_examples')}


def test_join_shard_with_no_train_rows_finds_no_leak():
  plan = _plan()
  frame = _rows(3, plan)
  frame = frame[frame.split > 0]
  counters, _ = leakage_beam.join_shard(EXACT, _pieces(frame, np.random.default_rng(2)), plan)
  assert all(c.duplicate_examples == 0 and c.samples == [] for c in counters.cross.values())


# --- LeakageHashes: the PTransform on located batches -------------------------------------------------------------


def _decoded(rows: List[Dict[str, Any]]):
  from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

  from tests.helpers import to_example
  return ExamplesToRecordBatchDecoder().DecodeBatch([to_example(r).SerializeToString() for r in rows])


def test_leakage_hashes_counts_located_batches_as_pandas_does():
  """Two splits given as located batches in one PCollection (two files each, cut into batches of 7; a file's split
  from the plan): counts, sample locations and every listed duplicate equal a pandas group-by on the same rows."""
  rng = np.random.default_rng(4)
  pool = [{'x': float(i), 'c': str(i % 3)} for i in range(20)]
  rows = {split: [dict(pool[int(p)], label=int(rng.integers(2))) for p in rng.integers(0, 20, n)]
          for split, n in (('train', 40), ('eval', 30))}
  files = tuple((s, f'{split}-{k}.tfrecord') for s, split in enumerate(('train', 'eval')) for k in range(2))
  plan = leakage_beam.Plan(splits=('train', 'eval'), files=files, exclude=('label',), label_key='label',
                           group_key=None, near=None, num_shards=3, max_samples=2)
  located, table = {}, []
  for s, split in enumerate(('train', 'eval')):
    located[split] = []
    halves = (rows[split][:len(rows[split]) // 2], rows[split][len(rows[split]) // 2:])
    for k, half in enumerate(halves):
      for start in range(0, len(half), 7):
        located[split].append((2 * s + k, start, _decoded(half[start:start + 7])))
      table += [{'split': split, 'file': 2 * s + k, 'index': i, 'key': (r['x'], r['c'])} for i, r in enumerate(half)]
  frame = pd.DataFrame(table)
  train_keys = set(frame[frame.split == 'train'].key)
  leaked = frame[(frame.split == 'eval') & frame.key.isin(train_keys)].sort_values(['file', 'index'])
  listed = frame[frame.key.map(frame.key.value_counts()) > 1]

  def check_counts(outputs):
    (counts,) = outputs
    assert counts.examples == {'train': 40, 'eval': 30}
    assert counts.features == {'train': ('c', 'label', 'x'), 'eval': ('c', 'label', 'x')}
    pair = counts.pair(EXACT, 'eval')
    assert pair.duplicate_examples == len(leaked) > 0
    assert pair.unique_duplicates == leaked.key.nunique()
    assert [s[:2] for s in pair.samples] == [(int(f), int(i)) for f, i in zip(leaked.file, leaked['index'])][:2]

  def check_lines(parts):
    names = [name for name, _ in parts]  # One part per join shard with duplicates: (kind-shard, its lines).
    assert len(set(names)) == len(names) and all(name.startswith('exact-') for name in names)
    fields = [line.split('\t') for _, text in parts for line in text.split('\n')]
    assert sorted((f[2], f[3], int(f[4])) for f in fields) == sorted(
        (r.split, files[r.file][1], int(r['index'])) for _, r in listed.iterrows())

  with TestPipeline() as p:
    batches = p | beam.Create([item for items in located.values() for item in items], reshuffle=False)
    outputs = batches | leakage_beam.LeakageHashes(plan)
    assert_that(outputs['counts'], check_counts, label='CheckCounts')
    assert_that(outputs['lines'], check_lines, label='CheckLines')


# --- Interpretation: counts -> result and findings, a pure function -------------------------------------------------


def test_interpret_turns_counts_into_fractions_and_findings_without_reading_files():
  from tfx_preflight.checks.leakage import check as leakage
  from tfx_preflight.config import LeakageConfig
  plan = leakage_beam.Plan(splits=('train', 'eval', 'test'), files=((0, 't.gz'), (1, 'e.gz'), (2, 's.gz')),
                           exclude=('label',), label_key='label', group_key=None, near=None, num_shards=4,
                           max_samples=5)
  sample = (1, 7, 0, 3, 'ab' * 16, 2, 1, True)
  counts = LeakageCounts(
      examples={'train': 1000, 'eval': 200, 'test': 1000}, features={s: ('label', 'x') for s in plan.splits},
      cross={(EXACT, 'eval'): PairCounts(duplicate_examples=40, unique_duplicates=30, train_examples=30,
                                         label_conflicts=4, samples=[sample]),
             (EXACT, 'test'): PairCounts(duplicate_examples=5, unique_duplicates=5, train_examples=5)},
      within={'train': WithinCounts(duplicate_examples=2, duplicate_groups=1)})
  values = {('e.gz', 7): {'x': [1.5], 'label': [1]}}
  typed = leakage.interpret(counts, plan, LeakageConfig(), '/out', values)
  result = typed.to_dict()

  assert [p['fraction_of_b'] for p in result['cross_split']] == [0.2, 0.005]
  # eval: 36 same-label copies where train's own repeats (3 of 1000) predict 0.6; test: 5 where they predict 3.
  eval_chance, test_chance = (p['chance'] for p in result['cross_split'])
  assert (eval_chance['observed'], eval_chance['expected'], eval_chance['significant']) == (36, 0.6, True)
  assert eval_chance['p_value'] < 1e-20 and result['cross_split'][0]['leaked_fraction'] == pytest.approx(0.177)
  assert (test_chance['observed'], test_chance['expected'], test_chance['significant']) == (5, 3.0, False)
  assert test_chance['p_value'] == pytest.approx(93 / 256)  # P(Binomial(8, 1/2) >= 5): 8 events, sizes 1000:1000.
  assert 'p = 0.363 >= 0.001' in test_chance['reason'] and 'not counted as leakage' in test_chance['reason']
  assert result['within_split'] == {'train': 2, 'eval': 0, 'test': 0}
  assert result['cross_split'][0]['samples'] == [
      {'hash': 'ab' * 16, 'file': 'e.gz', 'index': 7, 'train_file': 't.gz', 'train_index': 3, 'copies_in_b': 2,
       'copies_in_a': 1, 'label_conflict': True, 'features': {'x': [1.5]}, 'label': [1]}]
  kinds = [(f['kind'], f['severity'], tuple(f.get('splits', ()))) for f in result['findings']]
  assert kinds == [('cross_split_duplicates', 'block', ('train', 'eval')), ('label_conflict', 'warn', ('train', 'eval')),
                   ('within_split_duplicates', 'warn', ('train',))]
  assert result['status'] == 'block'
  assert leakage.interpret(counts, plan, LeakageConfig(), '/out', values) == typed  # Same counts, same result.
