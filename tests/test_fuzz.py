"""Random tf.Examples (random features, types, list lengths, NaN, +-Inf, -0.0, empty lists, odd bytes) through the
content hash, the leakage pipeline and the skew check, compared with brute-force pure-Python oracles.

Oracles:
  * hashing: two examples hash alike exactly when their canonical content is equal (float32 bits with -0.0 = 0.0 and
    one NaN; an empty list equal to any other empty list of that feature; a missing feature differs from an empty one).
  * leakage: duplicate_examples = eval examples whose canonical content (label left out) occurs in train.
  * skew: an exact copy of train as eval has no findings, and findings only ever name features that some example has.
Hypothesis examples are bounded so the file runs in well under a minute.
"""

import math
import os
import struct
import tempfile
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow_data_validation.statistics import stats_impl
from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

from tfx_preflight.checks.skew import check as skew
from tfx_preflight.config import LeakageConfig, SkewConfig
from tfx_preflight.inputs import hashing

NAMES = ('a', 'b', 'c', 'label', 'x y', '<é>')
KINDS = ('float', 'int', 'bytes')
OTHER_NAN = struct.unpack('<f', struct.pack('<I', 0x7fc00123))[0]  # A NaN with another payload.
FLOATS = st.sampled_from([0.0, -0.0, 1.0, -1.5, 1e-30, 3.4e38, math.nan, OTHER_NAN, math.inf, -math.inf, 0.1, 7.0])
INTS = st.sampled_from([0, 1, -1, 7, 2 ** 63 - 1, -2 ** 63, 255])
BYTES = st.sampled_from([b'', b'a', b'b', b'ab', b'\xff\xfe', 'é'.encode(), b'a' * 100, b'\x00'])
VALUES = {'float': FLOATS, 'int': INTS, 'bytes': BYTES}

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


# ---------------------------------------------------------------------------------------------------------------
# Random examples: a dict name -> (kind, list of values); one kind per feature within a batch (tf.Example decoding
# needs it), but a feature may have another kind in another split.


@st.composite
def schemas(draw):
  names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
  return {name: draw(st.sampled_from(KINDS)) for name in names}


@st.composite
def rows(draw, schema):
  row = {}
  for name, kind in schema.items():
    if draw(st.booleans()) or draw(st.booleans()):  # Present 3 times out of 4.
      row[name] = (kind, draw(st.lists(VALUES[kind], min_size=0, max_size=3)))
  return row


@st.composite
def batches(draw, schema=None, min_size=1, max_size=12):
  """Rows with deliberate duplicates (re-drawn copies of earlier rows), so equal hashes are common."""
  schema = schema if schema is not None else draw(schemas())
  result = draw(st.lists(rows(schema), min_size=min_size, max_size=max_size))
  copies = draw(st.lists(st.integers(0, len(result) - 1), max_size=4)) if result else []
  return schema, result + [dict(result[i]) for i in copies]


def to_example(row):
  features = {}
  for name, (kind, values) in row.items():
    if kind == 'float':
      features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    elif kind == 'int':
      features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    else:
      features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
  return tf.train.Example(features=tf.train.Features(feature=features))


def decode(batch_rows):
  return ExamplesToRecordBatchDecoder().DecodeBatch([to_example(r).SerializeToString() for r in batch_rows])


def canonical_value(kind, value):
  if kind == 'float':
    f = np.float32(value)
    if np.isnan(f):
      return 'nan'
    return int(np.float32(0.0 if f == 0 else f).view(np.uint32))
  return value


def canonical(row, exclude=()):
  """The brute-force identity of an example: what the hash must (and must only) tell apart. An empty list is no
  value, like an absent feature (CsvExampleGen writes an empty cell either way)."""
  return tuple(sorted((name, kind, tuple(canonical_value(kind, v) for v in values))
                      for name, (kind, values) in row.items() if name not in exclude and values))


def hashes_of(batch_rows, features, near=None):
  return [tuple(h) for h in hashing.hash_batch(decode(batch_rows), features, near)]


# ---------------------------------------------------------------------------------------------------------------
# Hashing.


@FUZZ
@given(train=batches(), data=st.data())
def test_hash_groups_examples_exactly_like_the_brute_force_oracle(train, data):
  schema, train_rows = train
  other_schema = {name: data.draw(st.sampled_from(KINDS)) for name in schema}  # Same names, maybe other types.
  _, eval_rows = data.draw(batches(other_schema))
  features = sorted(schema)
  all_rows = train_rows + eval_rows
  all_hashes = hashes_of(train_rows, features) + hashes_of(eval_rows, features)
  keys = [canonical(r) for r in all_rows]
  for i in range(len(all_rows)):
    for j in range(i + 1, len(all_rows)):
      assert (keys[i] == keys[j]) == (all_hashes[i] == all_hashes[j]), (all_rows[i], all_rows[j])


@FUZZ
@given(train=batches(), dropped=st.sampled_from(NAMES))
def test_excluded_features_do_not_count_and_exact_copies_are_near_copies(train, dropped):
  schema, batch_rows = train
  features = [name for name in sorted(schema) if name != dropped]
  exact = hashes_of(batch_rows, features)
  near = hashes_of(batch_rows, features, hashing.NearOptions())
  keys = [canonical(r, exclude=(dropped,)) for r in batch_rows]
  for i in range(len(batch_rows)):
    for j in range(i + 1, len(batch_rows)):
      assert (keys[i] == keys[j]) == (exact[i] == exact[j])
      if keys[i] == keys[j]:
        assert near[i] == near[j]


def test_hash_edge_cases_the_fuzzer_might_not_draw():
  """Hand-picked pairs: -0.0 = 0.0, NaN payloads alike, empty = missing, list order and boundaries matter."""
  same = [({'a': ('float', [0.0])}, {'a': ('float', [-0.0])}),
          ({'a': ('float', [math.nan])}, {'a': ('float', [OTHER_NAN])}),
          ({'a': ('float', [])}, {'a': ('float', [])}),
          ({'a': ('float', [])}, {})]  # CsvExampleGen writes an empty cell as [] or as no value, by column.
  different = [({'a': ('float', [0.0])}, {}),
               ({'a': ('float', [1.0, 2.0])}, {'a': ('float', [2.0, 1.0])}),
               ({'a': ('int', [1]), 'b': ('int', [2, 3])}, {'a': ('int', [1, 2]), 'b': ('int', [3])}),
               ({'a': ('bytes', [b'ab', b''])}, {'a': ('bytes', [b'a', b'b'])})]
  for pair, expected in [(p, True) for p in same] + [(p, False) for p in different]:
    h = hashes_of(list(pair), ['a', 'b'])
    assert (h[0] == h[1]) == expected, pair


# ---------------------------------------------------------------------------------------------------------------
# Leakage: the Beam pipeline's counts against a brute-force count.


def write_rows(path, batch_rows):
  with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type='GZIP')) as writer:
    for r in batch_rows:
      writer.write(to_example(r).SerializeToString())


def direct_pipeline():
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  return beam.Pipeline(options=PipelineOptions([]))


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(train=batches(min_size=2, max_size=8), data=st.data())
def test_leakage_counts_match_the_brute_force_count(train, data):
  from tfx_preflight.checks.leakage import check as leakage
  schema, train_rows = train
  _, eval_rows = data.draw(batches(schema, min_size=1, max_size=8))
  eval_rows = eval_rows + [dict(r) for r in data.draw(st.lists(st.sampled_from(train_rows), max_size=3))]
  with tempfile.TemporaryDirectory() as tmp:
    patterns = {}
    for split, split_rows in (('train', train_rows), ('eval', eval_rows)):
      os.makedirs(os.path.join(tmp, f'Split-{split}'))
      write_rows(os.path.join(tmp, f'Split-{split}', 'data.gz'), split_rows)
      patterns[split] = os.path.join(tmp, f'Split-{split}', '*')
    has_content = all(any(name != 'label' for name in r) for r in train_rows + eval_rows)
    try:
      result = leakage.check_leakage(patterns, 'train', ['eval'], LeakageConfig(), direct_pipeline,
                                     os.path.join(tmp, 'out'), label_key='label').to_dict()
    except ValueError as e:  # Allowed only when there is really nothing to hash.
      assert not has_content and 'no feature left to hash' in str(e), e
      return
  in_train = Counter(canonical(r, exclude=('label',)) for r in train_rows)
  expected = sum(1 for r in eval_rows if in_train[canonical(r, exclude=('label',))])
  pair = result['cross_split'][0]
  assert pair['splits'] == ['train', 'eval']
  assert pair['duplicate_examples'] == expected


# ---------------------------------------------------------------------------------------------------------------
# Skew.


def _utf8(value: bytes) -> bool:
  try:
    value.decode('utf-8')
    return True
  except UnicodeDecodeError:
    return False


def statistics_of(batch_rows):
  return stats_impl.generate_statistics_in_memory(decode(batch_rows))


def present_features(batch_rows):
  return {name for r in batch_rows for name in r}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(train=batches(min_size=10, max_size=16), data=st.data())  # 10: skew.MIN_EXAMPLES_TO_COMPARE, tested apart.
def test_skew_never_crashes_and_names_only_real_features(train, data):
  schema, train_rows = train
  train_stats = statistics_of(train_rows)
  copy = skew.check_skew({'train': train_stats, 'eval': statistics_of(list(train_rows))}, 'train', ['eval'],
                         SkewConfig(), label_key='label').to_dict()
  # A copy never differs; only the label speaks on its own: NaN/Inf blocks (training on it gives NaN losses), and
  # examples without a label value (absent or an empty list) warn.
  label_is_finite = all(np.isfinite(r['label'][1]).all() for r in train_rows
                        if 'label' in r and r['label'][0] == 'float' and r['label'][1])
  labelled = sum(1 for r in train_rows if 'label' in r and len(r['label'][1]))
  expected = (['label_missing'] if 0 < labelled < len(train_rows) else []) + (
      [] if label_is_finite else ['non_finite_label'])
  assert sorted(f['kind'] for f in copy['findings'] if f['kind'] != 'undecodable_values') == sorted(expected), \
      copy['findings']
  # What the check cannot see is said even for a copy: text that is not UTF-8, which TFDV folds into one value.
  undecodable = {f['feature'] for f in copy['findings'] if f['kind'] == 'undecodable_values'}
  assert undecodable <= {name for r in train_rows for name, (kind, values) in r.items()
                         if kind == 'bytes' and any(not _utf8(v) for v in values)}, copy['findings']

  other_schema = dict(schema, **data.draw(schemas()))
  _, eval_rows = data.draw(batches(other_schema, min_size=10, max_size=16))
  result = skew.check_skew({'train': train_stats, 'eval': statistics_of(eval_rows)}, 'train', ['eval'],
                           SkewConfig(), label_key='label').to_dict()
  assert result['status'] in ('pass', 'warn', 'block')
  named = {f['feature'] for f in result['findings'] if f.get('feature') is not None}
  assert named <= present_features(train_rows) | present_features(eval_rows), named


@pytest.mark.parametrize('values', [[math.inf], [1.0, math.inf], [1.0, 2.0, -math.inf, 3.0], [1.0, math.nan]],
                         ids=str)
def test_identical_splits_with_infinities_or_nan_have_no_skew_and_zero_distance(values):
  """Found by the fuzzer: TFDV's Jensen-Shannon divergence counts histogram buckets with an infinite bound (and NaN
  counts) as divergent mass, so an exact copy of train with +-Inf values 'shifted' by the fraction of infinite
  values (a blocking distribution_shift), and the report showed a distance of 0.5 between identical splits."""
  # Ten copies of each value: splits of fewer than skew.MIN_EXAMPLES_TO_COMPARE examples are not compared at all.
  stats = statistics_of([{'a': ('float', [v])} for v in values * 10])
  result = skew.check_skew({'train': stats, 'eval': stats}, 'train', ['eval'], SkewConfig()).to_dict()
  assert result['findings'] == [], result['findings']
  assert all(d['distance'] == 0 for d in result['comparisons']['eval'].values()), result['comparisons']


def test_statistics_helper_really_decodes_the_examples():
  """Guards the oracle: the decoded batch has the features and rows we wrote."""
  batch = decode([{'a': ('float', [1.0, math.nan])}, {'b': ('bytes', [b'x'])}])
  assert isinstance(batch, pa.RecordBatch) and batch.num_rows == 2 and sorted(batch.schema.names) == ['a', 'b']
  with pytest.raises(ValueError):
    skew.check_skew({'train': statistics_of([{'a': ('int', [1])}])}, 'train', ['eval'], SkewConfig())
