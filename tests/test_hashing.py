"""Canonical content hashing of decoded tf.Example RecordBatches (no Beam)."""


import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

from tests.helpers import to_example
from tfx_preflight.inputs import hashing

_DECODER = ExamplesToRecordBatchDecoder()


def decode(rows):
  return _DECODER.DecodeBatch([to_example(r).SerializeToString() for r in rows])


def hashes(rows, exclude=(), near=None):
  batch = decode(rows)
  return hashing.hash_batch(batch, hashing.selected_features(batch, exclude), near)


def same(rows_a, rows_b, **kwargs):
  return [bool(np.array_equal(a, b)) for a, b in zip(hashes(rows_a, **kwargs), hashes(rows_b, **kwargs))]


def test_canonical_zero_nan_lengths_and_missing():
  assert hashes([{'x': [-0.0]}, {'x': [0.0]}])[0].tolist() == hashes([{'x': [0.0]}])[0].tolist()
  batch = pa.RecordBatch.from_arrays(
      [pa.array([[np.float32(np.nan)], [np.frombuffer(b'\x01\x00\xc0\x7f', np.float32)[0]]], pa.list_(pa.float32()))],
      ['x'])
  h = hashing.hash_batch(batch, ['x'])
  assert np.array_equal(h[0], h[1])
  a = hashes([{'a': [1, 2], 'b': [3]}])
  b = hashes([{'a': [1], 'b': [2, 3]}])
  assert not np.array_equal(a, b)
  missing = hashing.hash_batch(pa.RecordBatch.from_arrays([pa.array([None], pa.list_(pa.int64()))], ['x']), ['x'])
  empty = hashing.hash_batch(pa.RecordBatch.from_arrays([pa.array([[]], pa.list_(pa.int64()))], ['x']), ['x'])
  empty_float = hashing.hash_batch(pa.RecordBatch.from_arrays([pa.array([[]], pa.list_(pa.float32()))], ['x']), ['x'])
  absent = hashing.hash_batch(pa.RecordBatch.from_arrays([pa.array([[1]], pa.list_(pa.int64()))], ['y']), ['x'])
  assert np.array_equal(missing, empty)  # CsvExampleGen writes an empty cell either way, depending on other rows.
  assert np.array_equal(empty, empty_float)  # tf.Example carries no type for an empty list.
  assert np.array_equal(missing, absent)
  assert not np.array_equal(hashes([{'x': 1.0}]), hashes([{'x': 1}]))  # int 1 != float 1.0
  assert same([{'s': b'ab', 't': b'c'}], [{'s': b'a', 't': b'bc'}]) == [False]
  assert same([{'x': 1, 'id': 1, 'label': 0}], [{'x': 1, 'id': 2, 'label': 1}], exclude=('id', 'label')) == [True]


def test_sliced_batches_hash_like_whole_ones():
  batch = decode([{'x': [float(i), 2.0], 's': f'v{i % 3}', 'n': list(range(i + 1))} for i in range(10)])
  whole = hashing.hash_batch(batch, ['x', 's', 'n'])
  assert np.array_equal(hashing.hash_batch(batch.slice(3, 4), ['x', 's', 'n']), whole[3:7])


values = st.one_of(
    st.lists(st.floats(width=32, allow_nan=True), min_size=0, max_size=4),
    st.lists(st.integers(min_value=-2**63, max_value=2**63 - 1), min_size=1, max_size=4),
    st.lists(st.binary(max_size=6), min_size=1, max_size=3))
rows = st.dictionaries(st.text('abcdefgh', min_size=1, max_size=3), values, min_size=1, max_size=5)


def _reordered(row):
  return dict(reversed(list(row.items())))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=rows, data=st.data())
def test_order_invariant_and_every_feature_matters(row, data):
  base = hashes([row])[0]
  assert np.array_equal(base, hashes([_reordered(row)])[0])
  name = data.draw(st.sampled_from(sorted(row)))
  changed = dict(row)
  old = row[name]
  new = data.draw(values.filter(lambda v: not _equal_content(v, old)))
  changed[name] = new
  assert not np.array_equal(base, hashes([changed])[0]), (row, changed)
  dropped = {k: v for k, v in row.items() if k != name}
  if dropped:  # An empty list is no content: dropping it leaves the hash as it was.
    assert np.array_equal(base, hashes([dropped])[0]) == (len(old) == 0)


def _equal_content(a, b):
  """Same tf.Example content after the canonicalisation the hash promises (float32, -0 == 0, NaN == NaN)."""
  if len(a) != len(b):
    return False
  if not a:
    return True
  if isinstance(a[0], float) != isinstance(b[0], float) or isinstance(a[0], bytes) != isinstance(b[0], bytes):
    return False
  if isinstance(a[0], float):
    x, y = np.float32(a), np.float32(b)
    return bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))
  return list(a) == list(b)


def test_near_hash_quantizes_floats_and_normalizes_text():
  near = hashing.NearOptions(float_significant_digits=3)
  a = [{'x': 1.2341, 'y': 1234.1, 't': 'Hello   World '}]
  b = [{'x': 1.2339, 'y': 1233.9, 't': 'hello world'}]
  assert same(a, b, near=near) == [True]
  assert same(a, b) == [False]
  assert same([{'x': 9.9996}], [{'x': 10.0004}], near=near) == [True]  # 1.00e1 both
  assert same([{'x': 1.25}], [{'x': 1.26}], near=near) == [False]


def _serialized(features):
  import tensorflow as tf
  return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def test_an_example_hashes_alike_whether_its_batch_typed_a_missing_feature_as_null_or_as_a_list():
  import tensorflow as tf
  feature = tf.train.Feature
  untyped = _serialized({'x': feature(), 'y': feature(float_list=tf.train.FloatList(value=[1.0]))})
  absent = _serialized({'y': feature(float_list=tf.train.FloatList(value=[1.0]))})
  typed = _serialized({'x': feature(int64_list=tf.train.Int64List(value=[3])),
                       'y': feature(float_list=tf.train.FloatList(value=[1.0]))})
  empty = _serialized({'x': feature(int64_list=tf.train.Int64List()),
                       'y': feature(float_list=tf.train.FloatList(value=[1.0]))})
  null_batch = _DECODER.DecodeBatch([untyped, absent])
  assert pa.types.is_null(null_batch.schema.field('x').type)  # What tfx-bsl makes of an all-missing feature.
  mixed_batch = _DECODER.DecodeBatch([untyped, absent, typed, empty])
  assert not pa.types.is_null(mixed_batch.schema.field('x').type)
  in_null = hashing.hash_batch(null_batch, ['x', 'y'])
  in_mixed = hashing.hash_batch(mixed_batch, ['x', 'y'])
  assert np.array_equal(in_null, in_mixed[:2])
  assert np.array_equal(in_null[0], in_null[1])  # Feature() with no kind is absent, as the decoder reads it.
  assert not np.array_equal(in_mixed[0], in_mixed[2]) and np.array_equal(in_mixed[0], in_mixed[3])
  label, present = hashing.hash_single_feature(null_batch, 'x')
  assert not present.any() and label.shape == (2, 2)


def test_every_shape_of_batch_hashes_and_a_feature_one_batch_lacks_counts_as_missing():
  rows = [{'a': [1, 2, 3], 'b': 'u'}, {'z': [], 'b': 'v'}, {'b': 'w'}, {'a': [7], 'c': [0.5] * 9}]
  whole = hashes(rows)
  singles = np.concatenate([hashes([r]) for r in rows])
  assert np.array_equal(whole, singles)
  assert len({tuple(h) for h in whole}) == len(rows)
  all_missing = pa.RecordBatch.from_arrays([pa.nulls(3), pa.array([[1], [2], [3]], pa.large_list(pa.int64()))],
                                           ['gone', 'k'])
  assert np.array_equal(hashing.hash_batch(all_missing, ['gone', 'k']), hashing.hash_batch(all_missing, ['k']))
  empty_lists_of_null = pa.RecordBatch.from_arrays([pa.array([[], []], pa.large_list(pa.null()))], ['e'])
  empty_ints = pa.RecordBatch.from_arrays([pa.array([[], []], pa.large_list(pa.int64()))], ['e'])
  assert np.array_equal(hashing.hash_batch(empty_lists_of_null, ['e']), hashing.hash_batch(empty_ints, ['e']))


def test_hash_values_are_those_of_earlier_versions():
  """Stored train hashes (leakage history: `--save-history`, then `--history`) are compared with new runs: a faster hash must give the
  same words. Pinned from the version before the one-value-per-row shortcut of hash_column."""
  rows = [{'x': [1.5], 'n': 3, 's': b'ab'}, {'x': [0.25, -2.0], 's': b''}, {'n': 7},
          {'x': [float('nan')], 'n': [1, 2], 's': [b'a', b'b']}]
  batch = decode(rows)
  features = hashing.selected_features(batch, [])
  assert [hashing.hex_digest(h) for h in hashing.hash_batch(batch, features)] == [
      '22318038d13aa435d23245d48b33db3b', 'c33f59c9c8ccefc4f15eae8594d94253', '587f9e11b77592f59855f8c1f4e51ff3',
      '6a0403c4596db28c65db3c6a19f4d92f']
  assert [hashing.hex_digest(h) for h in hashing.hash_batch(batch, features, hashing.NearOptions())][:2] == [
      '64e3fcc70d523be64d556d332a538dbe', '130a9946f3383603a2fe088137ef22ca']
  assert [hashing.hex_digest(h) for h in hashing.hash_single_feature(batch, 'n')[0]] == [
      '7ec3e88b54a4901ac5bd1cdfab0a759f', 'd81f8481c6da6bfdfe8ab0654796f28a', 'ef6fab0e08de349ef6d3520fc5246589',
      '39e31557584b13cd16cc3e9b8bd5e458']
