"""Near-duplicates: LSH candidates verified by real distance, on real Beam, measured on real data with planted copies.

The accuracy bars (recall >= 0.95, precision >= 0.95, at most 0.5% of clean eval rows flagged) hold on sklearn digits
images, breast_cancer rows and standard-library docstring sentences. The perceptual hash this replaced measured, on the
same data (tests/near_data.py): digits recall 0.76 / precision 0.91 / 1.8% of clean eval rows flagged; breast_cancer
and text recall 0.0 (rounding 30 columns to 3 digits, or exact normalized text, never matches an edited copy).
"""

import itertools
import math
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

from tests import near_data
from tests.helpers import to_example, write_splits
from tfx_preflight.checks.leakage import check as leakage
from tfx_preflight.checks.leakage import leakage_beam, near_duplicates, near_features, wire
from tfx_preflight.checks.leakage import render as render_leakage
from tfx_preflight.config import ConfigError, LeakageConfig, PreflightConfig

_DECODER = ExamplesToRecordBatchDecoder()
GROUP_OF = {'digits': 'vector_cosine_distance', 'breast_cancer': 'column_rel_diff', 'text': 'text_jaccard_distance'}


def _decode(rows):
  return _DECODER.DecodeBatch([to_example(r).SerializeToString() for r in rows])


def _run(patterns, config, tmp_path, label):
  return leakage.check_leakage(patterns, 'train', ['eval'], config, lambda: beam.Pipeline(options=PipelineOptions([])),
                               os.path.join(tmp_path, 'out'), label_key=label).to_dict()


def _near_lines(result):
  lines = [line.split('\t') for line in open(result['duplicates_file']).read().splitlines()[1:]]
  return [line for line in lines if line[0].startswith('near')]


@pytest.mark.parametrize('name', ['digits', 'breast_cancer', 'text'])
def test_planted_copies_found_and_clean_rows_left_alone(name, tmp_path):
  train, evals, planted, exclude, label = getattr(near_data, name)()
  patterns = write_splits(str(tmp_path / 'd'), {'train': train, 'eval': evals})
  result = _run(patterns, LeakageConfig(near_text=True, exclude_features=exclude), tmp_path, label)
  lines = _near_lines(result)
  flagged = {int(line[4]) for line in lines}
  planted = set(planted.tolist())
  recall = len(flagged & planted) / len(planted)
  precision = len(flagged & planted) / max(1, len(flagged))
  clean_flagged = len(flagged - planted) / (len(evals) - len(planted))
  assert (recall, precision) >= (0.95, 0.95) and min(recall, precision) >= 0.95, (recall, precision)
  assert clean_flagged <= 0.005, clean_flagged
  near = result['near_duplicates'][0]
  assert near['duplicate_examples'] == len(flagged) == len(lines)
  assert near['near_only_examples'] == len(flagged)  # every planted copy differs from its source
  assert result['cross_split'][0]['duplicate_examples'] == 0
  assert result['near_buckets']['buckets_skipped'] == 0
  # Each listed pair: the eval example, its train source, every group's distance and the thresholds it passed.
  for line in lines:
    distances = dict(part.split('=') for part in line[8].split(';'))
    limits = dict(part.split('<=') for part in line[9].split(';'))
    assert all(float(distances[k]) <= float(limits[k]) for k in distances), line
    assert set(distances) == {GROUP_OF[name]}  # only the group the examples have
  sample = near['samples'][0]
  assert sample['features'] and sample['train_features'] and set(sample['distances']) == set(sample['thresholds'])
  # The samples are the listed pairs cheapest to read back (their deeper record first), not the first eval rows.
  depths = sorted(max(int(line[4]), int(line[7])) for line in lines)
  assert [max(s['index'], s['train_index']) for s in near['samples']] == depths[:len(near['samples'])]
  # Near copies beyond chance count toward block_fraction: on by default, and blocking.
  assert {f['kind'] for f in result['findings']} == {'near_duplicates'} and result['status'] == 'block'
  assert near['chance']['significant'] and near['chance']['observed'] == len(flagged)


def test_exact_copies_count_as_near_but_not_near_only(tmp_path):
  train, evals, planted, exclude, label = near_data.breast_cancer(num_copies=20)
  evals = evals + [dict(train[i], id=9000 + i) for i in range(10)]  # ten exact copies (new ids, excluded)
  patterns = write_splits(str(tmp_path / 'd'), {'train': train, 'eval': evals})
  result = _run(patterns, LeakageConfig(near_duplicates=True, exclude_features=exclude, mode='warn'), tmp_path, label)
  near = result['near_duplicates'][0]
  assert result['cross_split'][0]['duplicate_examples'] == 10
  assert (near['duplicate_examples'], near['near_only_examples']) == (30, 20)
  assert sum(line[0] == 'near(exact)' for line in _near_lines(result)) == 10
  page = render_leakage.render_html(result)
  assert 'eval example' in page and 'train example' in page and 'column_rel_diff' in page


def test_mixed_rows_need_every_group_within_its_threshold(tmp_path):
  rng = np.random.default_rng(3)
  sentences = near_data.doc_sentences()[:60]
  train = [{'pixels': rng.random(16).tolist(), 'text': sentences[i], 'size': float(rng.uniform(1, 100)),
            'city': f'c{i % 4}', 'label': 0} for i in range(60)]
  evals = []
  for i in range(0, 60, 2):
    row = dict(train[i], pixels=(np.array(train[i]['pixels']) + rng.normal(0, 0.005, 16)).tolist(),
               size=train[i]['size'] * 1.001, text=train[i]['text'].upper())
    evals.append(row)  # near in every group: flagged
  evals.append(dict(evals[0], text=sentences[59]))  # text of another row
  evals.append(dict(evals[1], size=evals[1]['size'] * 1.5))  # a column beyond tolerance
  evals.append(dict(evals[2], city='elsewhere'))  # a category differs
  evals.append(dict(evals[3], pixels=rng.random(16).tolist()))  # another image
  patterns = write_splits(str(tmp_path / 'd'), {'train': train, 'eval': evals})
  result = _run(patterns, LeakageConfig(near_text=True, mode='warn'), tmp_path, 'label')
  flagged = sorted(int(line[4]) for line in _near_lines(result))
  assert flagged == list(range(30))


def test_oversized_buckets_are_skipped_and_reported(tmp_path):
  train = [{'x': 1.0 + i * 1e-4, 'c': 'a', 'label': 0} for i in range(60)]  # all in one cell
  evals = [{'x': 1.0 + i * 1e-4, 'c': 'a', 'label': 0} for i in range(0, 60, 3)] + [{'x': 50.0, 'c': 'b', 'label': 0}]
  patterns = write_splits(str(tmp_path / 'd'), {'train': train, 'eval': evals})
  capped = _run(patterns, LeakageConfig(near_duplicates=True, near_max_bucket_pairs=100, mode='warn'), tmp_path, 'label')
  assert capped['near_buckets']['buckets_skipped'] >= 1 and capped['near_buckets']['pairs_skipped'] >= 1200
  assert 'near_duplicates_incomplete' in {f['kind'] for f in capped['findings']}
  assert capped['near_duplicates'][0]['duplicate_examples'] < 20
  full = _run(patterns, LeakageConfig(near_duplicates=True, mode='warn'), tmp_path / 'full', 'label')
  assert full['near_duplicates'][0]['duplicate_examples'] == 20 and full['near_buckets']['buckets_skipped'] == 0


def test_bands_follow_the_documented_math():
  settings = near_features.NearSettings()
  bands, rows = settings.vector_bands
  theta = math.acos(1 - settings.vector_max_distance)
  assert near_features.candidate_probability(1 - theta / math.pi, bands, rows) >= near_features.TARGET_RECALL
  assert near_features.candidate_probability(1 - 2 * theta / math.pi, bands, rows) < 0.7
  bands, rows = settings.text_bands
  assert near_features.candidate_probability(1 - settings.text_max_distance, bands, rows) >= near_features.TARGET_RECALL
  assert near_features.candidate_probability(0.1, bands, rows) < 0.25
  delta = settings.column_delta
  assert [round(settings.column_cell_width(k) / delta, 9) for k in range(1, 9)] == [4, 4, 4, 4, 6, 8, 10, 12]
  assert max(len(band) for band in near_features._column_bands(tuple(f'c{j}' for j in range(20)))) == 8
  for p_near, p_far in ((0.9, 0.5), (0.968, 0.936), (0.5, 0.25)):  # brute force over every (bands, rows)
    chosen = near_features.choose_bands(p_near, p_far)
    feasible = [(near_features.candidate_probability(p_far, b, r), b * r) for b in range(1, near_features.MAX_BANDS + 1)
                for r in range(1, near_features.MAX_ROWS + 1)
                if near_features.candidate_probability(p_near, b, r) >= near_features.TARGET_RECALL]
    assert (near_features.candidate_probability(p_far, *chosen), chosen[0] * chosen[1]) == min(feasible)


@pytest.mark.parametrize('seed,d', [(0, 5), (1, 5), (2, 5), (3, 3), (4, 12), (5, 30)])
def test_column_keys_meet_whenever_values_are_within_tolerance(seed, d):
  """Values straddling a cell border still share a key: the eval side probes the neighbouring cell, whatever the
  band's size and so its cells' width (4 delta up to 4 columns, 12 delta at 8)."""
  settings = near_features.NearSettings(column_tolerance=0.02)
  rng = np.random.default_rng(seed)
  n = 400
  train = rng.lognormal(0, 3, (n, d)) * rng.choice([-1, 1], (n, d))
  # Every eval value within tolerance of its train value, many of them right at the limit.
  factor = 1 - rng.choice([0.0199, -0.0199, 0.01, 0.0], (n, d))
  evals = np.where(rng.random((n, d)) < 0.5, train * factor, train / np.maximum(factor, 1 - 0.0199))
  within = np.abs(train - evals) <= 0.02 * np.maximum(np.abs(train), np.abs(evals))
  evals = np.where(within, evals, train)
  names = [f'c{j}' for j in range(d)]
  base = np.zeros(n, dtype=np.uint64)
  train_keys, train_rows = near_features.column_keys(train, names, base, False, settings)
  eval_keys, eval_rows = near_features.column_keys(evals, names, base, True, settings)
  train_sets = [set(train_keys[train_rows == i].tolist()) for i in range(n)]
  eval_sets = [set(eval_keys[eval_rows == i].tolist()) for i in range(n)]
  assert all(train_sets[i] & eval_sets[i] for i in range(n))
  far = np.roll(evals, 1, axis=0)  # other rows: almost never in the same cells
  far_keys, far_rows = near_features.column_keys(far, names, base, True, settings)
  meets = sum(bool(train_sets[i] & set(far_keys[far_rows == i].tolist())) for i in range(n))
  assert meets <= 2


def test_candidate_pairs_equal_brute_force():
  rng = np.random.default_rng(0)
  keys = rng.integers(0, 30, 500).astype(np.uint64)
  key_rows = rng.integers(0, 120, 500)
  split = (np.arange(120) % 3 == 0).astype(np.int64)  # rows 0, 3, 6, ... are eval
  train, evals, counters = near_duplicates.candidate_pairs(keys, key_rows, split, max_bucket_pairs=10 ** 9)
  expected = {(int(t), int(e)) for (k1, t), (k2, e) in itertools.product(zip(keys, key_rows), repeat=2)
              if k1 == k2 and split[t] == 0 and split[e] == 1}
  assert set(zip(train.tolist(), evals.tolist())) == expected and len(train) == len(expected)
  assert counters['buckets_skipped'] == 0
  _, _, capped = near_duplicates.candidate_pairs(keys, key_rows, split, max_bucket_pairs=5)
  assert capped['buckets_skipped'] > 0 and capped['pairs_skipped'] > 0


def test_distances_equal_their_definitions():
  a = np.array([[1.0, 0.0, np.nan, -2.0]])
  b = np.array([[1.01, 0.0, np.nan, -2.0]])
  assert near_duplicates.column_distances(a, b)[0] == pytest.approx(0.01 / 1.01)
  assert near_duplicates.column_distances(a, -b)[0] >= 1
  x = np.arange(8.0)
  unit = near_features.unit_centred(np.stack([x, 3 * x + 5, x[::-1], np.full(8, 2.0), np.full(8, 7.0)]))
  d = near_duplicates.vector_distances(unit[[0, 0, 3]], unit[[1, 2, 4]], np.array([8]))
  assert d == pytest.approx([0.0, 2.0, 0.0], abs=1e-6)  # scale and shift free; reversed ramp is anti-correlated
  batch = _decode([{'t': 'The quick brown fox jumps over the lazy dog'},
                   {'t': 'the QUICK, brown fox jumped over the lazy dog!'}])
  near = near_features.near_batch(batch, ['t'], near_features.NearSettings(), probe=False)
  distance = near_duplicates.jaccard_distances(near.shingles, np.array([0]), np.array([1]))[0]
  assert distance == pytest.approx(1 - 6 / 10)  # bigrams: 8 each, 6 shared (jumps/jumped breaks two)


def test_vectorized_jaccard_equals_python_sets():
  rng = np.random.default_rng(1)
  sets = [np.unique(rng.integers(0, 40, rng.integers(0, 25))).astype(np.uint64) for _ in range(60)]
  offsets = np.concatenate([[0], np.cumsum([len(x) for x in sets])]).astype(np.int64)
  shingles = near_features.Ragged(np.concatenate(sets), offsets)
  train, evals = rng.integers(0, 60, 300), rng.integers(0, 60, 300)
  got = near_duplicates.jaccard_distances(shingles, train, evals)
  for d, t, e in zip(got, train, evals):
    a, b = set(sets[t].tolist()), set(sets[e].tolist())
    assert d == pytest.approx(1 - len(a & b) / len(a | b) if a | b else 0.0)


def test_removed_settings_name_their_replacement():
  with pytest.raises(ConfigError, match='image_hash_size was removed.*near_vector_max_distance'):
    PreflightConfig(leakage={'near_duplicates': True, 'image_hash_size': 8})
  with pytest.raises(ConfigError, match='float_significant_digits was removed.*near_column_tolerance'):
    PreflightConfig(leakage={'float_significant_digits': 3})
  with pytest.raises(ConfigError, match='near_text_max_distance'):
    PreflightConfig(leakage={'near_text_max_distance': 1.5})


def _mixed_batch():
  """Rows keyed by each group: scalar columns only, a float list, text; a category and an int throughout."""
  rng = np.random.default_rng(3)
  rows = []
  for i in range(90):
    row = {'city': f'c{i % 4}', 'n': i % 3, 'x': float(rng.lognormal()), 'y': float(rng.normal())}
    if i % 3 == 1:
      row['v'] = rng.random(6).tolist()
    if i % 3 == 2:
      row['t'] = f'row {i} says the quick brown fox jumps'
    rows.append(row)
  return _decode(rows)


def test_reference_rows_keyed_as_a_probed_batch_of_those_rows():
  """The held-out reference sample reuses its rows' payload and probes their column cells: the same keys and
  payload as probing a batch of those rows alone (as earlier versions did)."""
  batch, settings = _mixed_batch(), near_features.NearSettings()
  features = ['city', 'n', 't', 'v', 'x', 'y']
  reference = np.array([0, 1, 2, 5, 7, 30, 31, 32, 89])
  got = near_features.near_batch(batch, features, settings, probe=False, reference_rows=reference).reference
  want = near_features.near_batch(batch.take(reference), features, settings, probe=True)
  assert sorted(zip(got.key_rows.tolist(), got.keys.tolist())) == sorted(zip(want.key_rows.tolist(),
                                                                             want.keys.tolist()))
  for field in ('exact_part', 'shape'):
    assert np.array_equal(getattr(got, field), getattr(want, field))
  for field in ('columns', 'vectors', 'segments', 'shingles'):
    assert np.array_equal(getattr(got, field).values, getattr(want, field).values)
    assert np.array_equal(getattr(got, field).offsets, getattr(want, field).offsets)


def test_shuffled_payloads_round_trip_exactly_and_smaller():
  rng = np.random.default_rng(4)
  cases = [np.zeros(0, np.int64), np.full(300, 7, np.int64), np.arange(5, 2053, dtype=np.int64) | (3 << 40),
           rng.integers(0, 2 ** 63, 5, dtype=np.uint64)[rng.integers(0, 5, 3000)],
           rng.integers(0, 2 ** 63, 3000, dtype=np.uint64), np.array([0, 2 ** 64 - 1], np.uint64)]
  for values in cases:
    back = wire.unpack_ints(wire.pack_ints(values))
    assert back.dtype == values.dtype and np.array_equal(back, values)
  batch = _mixed_batch()
  near = near_features.near_batch(batch, ['city', 'n', 't', 'v', 'x', 'y'], near_features.NearSettings(), probe=False)
  assert near.columns.values.dtype == np.float32  # as tf.Example stores them: verified in float64, exactly
  n = batch.num_rows
  payload = near_duplicates.Payload(np.zeros(n, np.int64), np.arange(n, dtype=np.int64) | (2 << 40),
                                    rng.integers(0, 2 ** 63, n, dtype=np.uint64), np.zeros(n, np.uint64),
                                    near.exact_part, near.shape, near.columns, near.vectors, near.segments,
                                    near.shingles)
  blob = payload.to_wire(np.arange(n, dtype=np.int64) + 9)
  (leading,), back = near_duplicates.Payload.from_wire(blob, leading=1)
  assert np.array_equal(leading, np.arange(n) + 9)
  for field in near_duplicates._ARRAYS:
    assert np.array_equal(getattr(back, field), getattr(payload, field))
  for field in near_duplicates._RAGGED:
    assert np.array_equal(getattr(back, field).values, getattr(payload, field).values)
    assert np.array_equal(getattr(back, field).offsets, getattr(payload, field).offsets)
  raw = sum(getattr(payload, f).nbytes for f in near_duplicates._ARRAYS) + sum(
      getattr(payload, f).values.nbytes + getattr(payload, f).offsets.nbytes for f in near_duplicates._RAGGED)
  assert len(payload.to_wire()) < 0.8 * raw


def test_few_distinct_values_pack_as_np_unique_would_even_when_the_sample_misses_some():
  """pack_ints finds a column's distinct values from a sample and adds those the sample missed: the same packed form
  as np.unique gives, and over 256 distinct values no 'distinct' form at all."""
  rng = np.random.default_rng(8)
  for rare in (0, 1, 100, 250, 300):
    common = rng.integers(0, 2 ** 63, 3, dtype=np.uint64)
    values = common[rng.integers(0, 3, 6000)]
    values[rng.choice(6000, rare, replace=False)] = rng.integers(0, 2 ** 63, rare, dtype=np.uint64)
    sample_distinct = len(np.unique(values[::max(1, len(values) // 64)]))
    packed = wire.pack_ints(values)
    distinct, index = np.unique(values, return_inverse=True)
    if len(distinct) <= 256:
      assert packed[0] == 'distinct' and len(distinct) > sample_distinct or rare == 0
      assert np.array_equal(packed[1], distinct) and np.array_equal(packed[2], index.astype(np.uint8))
    else:
      assert packed[0] == 'array'
    assert np.array_equal(wire.unpack_ints(packed), values)


def test_wire_blobs_round_trip_and_run_no_code():
  """The shuffle's blobs give back every array exactly (views, aligned); a header naming a non-numeric dtype (what
  pickle would need to run code) is refused."""
  arrays = [np.zeros(0, np.int64), np.arange(3, dtype=np.uint8), np.array([1.5, np.nan], np.float32),
            np.array([2 ** 64 - 1, 0], np.uint64), np.full(5, -3, np.int64)]
  back = wire.decode(wire.encode(arrays, [True, False, False, True, True]))
  assert len(back) == len(arrays)
  for got, want in zip(back, arrays):
    assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=want.dtype.kind == 'f')
  blob = wire.encode([np.arange(4, dtype=np.int64)], [False])
  forged = blob.replace(b'<i8', b'|O8')
  with pytest.raises(ValueError, match='not a numeric dtype'):
    wire.decode(forged)


def test_bucket_pairs_equal_candidate_pairs_over_every_key():
  """Dropping one-sided buckets before pairing changes neither the pairs nor the bucket counters."""
  rng = np.random.default_rng(5)
  pieces = []
  for split in (0, 1, 0, 1, 2):
    keys = rng.integers(0, 400, 300).astype(np.uint64)
    ids = rng.integers(0, 150, 300).astype(np.int64) + (split > 0) * 1000
    pieces.append((split, keys, ids))
  pairs, counters = near_duplicates.bucket_pairs([near_duplicates.band_piece(*p) for p in pieces], max_bucket_pairs=6)
  keys = np.concatenate([p[1] for p in pieces])
  ids = np.concatenate([p[2] for p in pieces])
  unique_ids, local = np.unique(ids, return_inverse=True)
  row_split = np.zeros(len(unique_ids), np.int64)
  row_split[local] = np.concatenate([np.full(len(p[1]), p[0]) for p in pieces])
  train, evals, expected = near_duplicates.candidate_pairs(keys, local.astype(np.int64), row_split, 6)
  assert counters == expected and expected['buckets_skipped'] > 0
  assert sorted(map(tuple, pairs.tolist())) == sorted(zip(unique_ids[train].tolist(), unique_ids[evals].tolist()))


def test_a_reference_row_alone_with_its_own_train_row_shares_no_bucket():
  """A reference row's keys meet its own train row's in every bucket: such buckets give no pair, so they are dropped
  before pairing and not counted as shared; a bucket that also holds another example still pairs with it."""
  flag = int(near_duplicates.REFERENCE_FLAG)
  own = [(0, np.array([10, 11, 12], np.uint64), np.array([5, 5, 5])),  # train row 5, three bands
         (2, np.array([10, 11, 12], np.uint64), np.array([5, 5, 5]) | flag)]  # its reference probe
  pairs, counters = near_duplicates.bucket_pairs([near_duplicates.band_piece(*p) for p in own], max_bucket_pairs=6)
  assert len(pairs) == 0 and counters['buckets_shared'] == 0
  other = [*own, (0, np.array([11], np.uint64), np.array([7])), (1, np.array([12], np.uint64), np.array([1 << 40]))]
  pairs, counters = near_duplicates.bucket_pairs([near_duplicates.band_piece(*p) for p in other], max_bucket_pairs=6)
  assert sorted(map(tuple, pairs.tolist())) == [(5, 1 << 40), (7, 5 | flag)]
  assert counters['buckets_shared'] == 2  # 11 (train 7 with the probe of 5), 12 (eval 1<<40 with train 5)

def test_needed_rows_take_exactly_the_wanted_rows_of_every_piece():
  """The join takes each wanted payload row from whichever batch piece holds it, once, in piece order; ids held by no
  piece (and ids beyond every stored one) take nothing."""
  rng = np.random.default_rng(6)
  batch = _mixed_batch()
  near = near_features.near_batch(batch, ['city', 'n', 't', 'v', 'x', 'y'], near_features.NearSettings(), probe=False)
  n = batch.num_rows
  pieces = []
  for file_id in range(4):
    ids = np.sort(rng.choice(1000, n, replace=False)).astype(np.int64) | (file_id << 40)
    pieces.append(near_duplicates.Payload(np.zeros(n, np.int64), ids, np.zeros(n, np.uint64), np.zeros(n, np.uint64),
                                          near.exact_part, near.shape, near.columns, near.vectors, near.segments,
                                          near.shingles))
  every = np.concatenate([p.row_id for p in pieces])
  wanted = np.concatenate([rng.choice(every, 7), every[:2], [np.int64(5 << 40), np.int64(2 ** 62)]])
  taken = near_duplicates.needed_rows(iter(pieces), wanted)
  assert taken.row_id.tolist() == [i for i in every.tolist() if i in set(wanted.tolist())]
  assert np.array_equal(taken.columns.values, near_duplicates.Payload.concat(
      [p.take(np.flatnonzero(np.isin(p.row_id, wanted))) for p in pieces]).columns.values)
  assert near_duplicates.needed_rows(iter(pieces), np.array([2 ** 62], np.int64)) is None
  assert near_duplicates.needed_rows(iter(pieces), np.zeros(0, np.int64)) is None


def test_only_the_payload_rows_of_paired_examples_reach_the_joins():
  """The pairs' ids, combined into one sorted blob, pick from each payload piece the rows some pair needs (reference
  ids by their flag, not by their location); a piece with none, or no pair at all, ships nothing."""
  batch = _mixed_batch()
  n = batch.num_rows
  near = near_features.near_batch(batch, ['city', 'n', 't', 'v', 'x', 'y'], near_features.NearSettings(), probe=False)
  flag = int(near_duplicates.REFERENCE_FLAG)
  ids = np.arange(n, dtype=np.int64) | flag
  blob = near_duplicates.Payload(np.full(n, 2, np.int64), ids, np.zeros(n, np.uint64), np.zeros(n, np.uint64),
                                 near.exact_part, near.shape, near.columns, near.vectors, near.segments,
                                 near.shingles).to_wire()
  combine = leakage_beam._PairedIdsFn()
  parts = [combine.add_input(combine.create_accumulator(), (0, np.array([[3, 1 << 40], [4, 2 | flag]])))]
  parts.append(combine.add_input(combine.create_accumulator(), (1, np.array([[3, 5 | flag]]))))
  paired = combine.extract_output(combine.merge_accumulators(parts))
  assert wire.decode(paired)[0].tolist() == [3, 4, 1 << 40, 2 | flag, 5 | flag]
  [(shard, kept)] = list(leakage_beam._paired_payloads((7, blob), paired))
  _, payload = near_duplicates.Payload.from_wire(kept)
  assert shard == 7 and payload.row_id.tolist() == [2 | flag, 5 | flag]  # Rows 3 and 4 unflagged: not these.
  assert np.array_equal(payload.columns.values, near.columns.take(np.array([2, 5])).values)
  nothing = combine.extract_output(combine.merge_accumulators([combine.create_accumulator()]))
  assert not list(leakage_beam._paired_payloads((7, blob), nothing))
  assert not list(leakage_beam._paired_payloads((7, blob), wire.encode([np.array([9], np.int64)], [False])))


def test_payload_shards_ship_each_batch_in_contiguous_slices_and_stay_even():
  """A batch's payload goes out as one piece per run of records sharing a shard (a block of a file), each piece
  exactly the rows id_shard assigns to that shard, the reference flag included; a file's blocks spread round robin."""
  batch = _mixed_batch()
  n = batch.num_rows
  near = near_features.near_batch(batch, ['city', 'n', 't', 'v', 'x', 'y'], near_features.NearSettings(), probe=False)
  start = (1 << near_duplicates._BLOCK_BITS) - 40  # The batch crosses a block boundary.
  file_ids, index = np.full(n, 3, np.uint32), np.arange(start, start + n, dtype=np.int64)
  exact = np.stack([np.arange(n, dtype=np.uint64)] * 2, axis=1)
  for flag in (0, int(near_duplicates.REFERENCE_FLAG)):
    ids = near_duplicates.row_ids(file_ids, index) | np.int64(flag)
    shards = near_duplicates.id_shard(ids, 5)
    _, payloads = near_duplicates.batch_outputs(1, file_ids, index, exact, np.zeros(n, np.uint64), near, 5,
                                                id_flag=flag)
    assert len(payloads) == 2 and payloads[0][0] != payloads[1][0]
    for shard, blob in payloads:
      back = near_duplicates.Payload.from_wire(blob)[1]
      rows = np.flatnonzero(shards == shard)
      assert np.array_equal(back.row_id, ids[rows])
      assert np.array_equal(back.columns.values, near.columns.take(rows).values)
      assert np.array_equal(back.shingles.offsets, near.shingles.take(rows).offsets)
  blocks = near_duplicates.row_ids(np.full(70, 9), np.arange(70) << near_duplicates._BLOCK_BITS)
  assert np.bincount(near_duplicates.id_shard(blocks, 7), minlength=7).tolist() == [10] * 7
