"""The strict TFRecord reader: every damaged file is an error naming it, including a gzip stream cut at a record
boundary, which Beam's own reader (and so StatisticsGen) takes for a shorter valid file."""

import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.io.filesystem import CompressedFile, CompressionTypes
from apache_beam.io.tfrecordio import _TFRecordUtil

from bench import tfdv_statistics
from tests.helpers import tabular_rows, write_tfrecords
from tfx_preflight.inputs import data, records


def test_iter_record_batches_gzip_and_plain_with_indices(tmp_path):
  rows = [{'x': float(i)} for i in range(25)]
  for name, gzip in (('a.gz', True), ('b.tfrecord', False)):
    path = write_tfrecords(os.path.join(tmp_path, name), rows, gzip=gzip)
    batches = list(records.iter_record_batches(path, batch_size=10))
    assert [s for s, _ in batches] == [0, 10, 20]
    assert sum(b.num_rows for _, b in batches) == 25
  with open(os.path.join(tmp_path, 'b.tfrecord'), 'r+b') as f:
    f.seek(30)
    f.write(b'\xff')
  with pytest.raises(ValueError, match='b.tfrecord'):
    list(records.iter_records(os.path.join(tmp_path, 'b.tfrecord'), 10))


def test_decoding_ahead_gives_every_batch_in_order_and_fails_at_the_batch_at_fault(tmp_path, monkeypatch):
  """The next batch decodes while the caller works on this one: the same batches in the same order as decoding one
  by one, and a batch the decoder rejects raises naming the file and its records, after every batch before it."""
  rows = tabular_rows(70, seed=5) + [{'f0': 1}] + tabular_rows(9, seed=6)  # f0: floats before record 70.
  path = write_tfrecords(os.path.join(tmp_path, 'a.gz'), rows)
  ahead = []
  with pytest.raises(ValueError, match=r'a.gz: records 60..79 are not valid tf.Examples: .*wrong type'):
    for start, batch in records.iter_record_batches(path, batch_size=20):
      ahead.append((start, batch))
  assert records._decode_ahead_pool() is not None  # Two cores here, as in CI: the batches above were decoded ahead.
  monkeypatch.setattr(records, '_decode_ahead_pool', lambda: None)
  one_by_one = []
  with pytest.raises(ValueError, match=r'a.gz: records 60..79'):
    for start, batch in records.iter_record_batches(path, batch_size=20):
      one_by_one.append((start, batch))
  assert [s for s, _ in ahead] == [s for s, _ in one_by_one] == [0, 20, 40]
  assert all(a.equals(b) for (_, a), (_, b) in zip(ahead, one_by_one))


def _beam_reads_silently(path: str) -> int | None:
  """How many records Beam's TFRecord reader returns for `path`, or None when it raises."""
  try:
    with open(path, 'rb') as raw:
      f = CompressedFile(raw, CompressionTypes.GZIP)
      n = 0
      while _TFRecordUtil.read_record(f) is not None:
        n += 1
      return n
  except Exception:  # noqa: BLE001 - any error means Beam noticed the damage.
    return None


def _cuts_beam_misses(content: bytes, tmp_path) -> list:
  """Cut points of a gzipped TFRecord file at which Beam's reader returns fewer records without an error."""
  missed = []
  cut_path = os.path.join(tmp_path, 'cut.gz')
  for cut in range(len(content) // 4, len(content) - 1):
    with open(cut_path, 'wb') as f:
      f.write(content[:cut])
    if _beam_reads_silently(cut_path):
      missed.append(cut)
  return missed


@pytest.fixture
def gzipped_file(tmp_path):
  path = write_tfrecords(os.path.join(tmp_path, 'full.gz'), tabular_rows(60, seed=3))
  return path, open(path, 'rb').read()


def test_every_cut_of_a_gzipped_file_is_an_error_naming_it(gzipped_file, tmp_path):
  _, content = gzipped_file
  cut_path = os.path.join(tmp_path, 'cut.gz')
  for cut in range(1, len(content)):
    with open(cut_path, 'wb') as f:
      f.write(content[:cut])
    with pytest.raises(ValueError, match='cut.gz'):
      list(records.iter_records(cut_path, 16))


def test_statistics_fail_on_a_cut_that_beam_reads_as_a_shorter_valid_file(gzipped_file, tmp_path, beam_factory):
  _, content = gzipped_file
  missed = _cuts_beam_misses(content, tmp_path)
  assert missed, 'Beam now notices every truncated gzip stream: tfdv_statistics.ReadRecords may be unnecessary'
  split_dir = os.path.join(tmp_path, 'Split-eval')
  os.makedirs(split_dir)
  cut_path = os.path.join(split_dir, 'data.gz')
  with open(cut_path, 'wb') as f:
    f.write(content[:missed[len(missed) // 2]])
  examples = {'eval': os.path.join(split_dir, '*')}
  with pytest.raises(Exception, match='cut.gz|data.gz'):
    tfdv_statistics.generate_statistics(examples, beam_factory, str(tmp_path / 'stats'))
  error = data.find_unreadable_file(examples)
  assert error is not None and cut_path in str(error) and 'gzip' in str(error)


def test_read_records_gives_every_record_of_every_file_once(tmp_path):
  paths = [write_tfrecords(os.path.join(tmp_path, f'part-{i}.gz'), tabular_rows(50, seed=i), gzip=i % 2 == 0)
           for i in range(3)]
  with beam.Pipeline() as pipeline:
    counted = (pipeline | tfdv_statistics.ReadRecords(paths) | beam.combiners.Count.Globally())
    from apache_beam.testing.util import assert_that, equal_to
    assert_that(counted, equal_to([150]))


def _record_offsets(content: bytes) -> list:
  """Byte offset of every record of an uncompressed TFRecord file."""
  offsets, position = [], 0
  while position < len(content):
    offsets.append(position)
    position += 16 + int.from_bytes(content[position:position + 8], 'little')
  return offsets


@pytest.mark.parametrize('chunk_size', [64, 1 << 20])
def test_checksum_errors_name_the_first_damaged_record_whatever_the_chunking(tmp_path, chunk_size):
  path = write_tfrecords(os.path.join(tmp_path, 'plain.tfrecord'), tabular_rows(40, seed=5), gzip=False)
  content = open(path, 'rb').read()
  offsets = _record_offsets(content)
  intact = [r for _, b in records.iter_records(path, 7, chunk_size=chunk_size) for r in b]
  assert len(intact) == 40 and intact == list(records.read_records(path))
  cases = [(offsets[17] + 20, 'data checksum mismatch', 17), (offsets[23] + 2, 'length checksum mismatch', 23),
           (offsets[30] + 7, 'length checksum mismatch', 30)]  # The last byte of a length: a length of ~2^63.
  for position, problem, index in cases:
    damaged = bytearray(content)
    damaged[position] ^= 0x80
    damaged[offsets[35] + 20] ^= 0x01  # A later damaged record never hides the first one.
    bad = os.path.join(tmp_path, 'bad.tfrecord')
    with open(bad, 'wb') as f:
      f.write(bytes(damaged))
    with pytest.raises(ValueError, match=f'bad.tfrecord: corrupted TFRecord \\({problem}\\) at record {index}$'):
      list(records.iter_records(bad, 7, chunk_size=chunk_size))
    if problem == 'data checksum mismatch':  # Unchecked, the same file reads whole (sample re-reads use this).
      assert len([r for _, b in records.iter_records(bad, 7, verify_crc=False, chunk_size=chunk_size) for r in b]) == 40


def test_length_checksums_in_numpy_equal_crc32c():
  import numpy as np
  rows = np.random.default_rng(0).integers(0, 256, size=(2000, 8), dtype=np.uint8)
  assert records._masked_crc32c_8(rows).tolist() == [records._masked_crc(r.tobytes()) for r in rows]


def test_decoding_in_pieces_equals_one_decode_also_when_pieces_infer_other_types():
  from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

  from tests.helpers import to_example
  decoder = ExamplesToRecordBatchDecoder()
  n = 2 * records.DECODE_ROWS + 5
  same = [to_example(r).SerializeToString() for r in tabular_rows(n, seed=1)]
  # 'rare' appears in the last piece only: the pieces infer different schemas.
  rows = tabular_rows(n, seed=2)
  rows[-1]['rare'] = 'x'
  mixed = [to_example(r).SerializeToString() for r in rows]
  untyped = []  # 'empty' is Feature() (no value kind) in every record: a null column in every piece.
  for row in tabular_rows(n, seed=3):
    example = to_example(row)
    example.features.feature['empty'].Clear()
    untyped.append(example.SerializeToString())
  for serialized in (same, mixed, untyped, same[:3]):
    whole, pieces = decoder.DecodeBatch(serialized), records.decode_examples(decoder, serialized)
    assert pieces.schema.equals(whole.schema, check_metadata=True) and pieces.equals(whole)


def test_every_record_is_checked_to_be_a_tf_example_whatever_the_chunking(tmp_path):
  """Issue 30: a file switching to tf.SequenceExamples after 64 tf.Examples fails at record 64, not only files that
  start with one; the vectorised form check agrees with a full parse on every kind of record."""
  from tensorflow.core.example import example_pb2

  from tests.helpers import write_examples_then_sequences
  path = write_examples_then_sequences(str(tmp_path / 'mixed.gz'), 64, 136)
  for chunk_size in (64, 1000, 1 << 20):
    with pytest.raises(records.PayloadError, match=f'{path} record 64 is a tf.SequenceExample'):
      for _ in records.iter_records(path, 16, chunk_size=chunk_size):
        pass
  example = example_pb2.Example()
  example.features.feature['a'].bytes_list.value.append(b'x' * 300)  # A two-byte length.
  context_only = example_pb2.SequenceExample()
  context_only.context.feature['a'].int64_list.value.append(1)  # The same bytes as a tf.Example: one.
  sequence = example_pb2.SequenceExample()
  sequence.feature_lists.feature_list['s'].feature.add().float_list.value.append(1.0)
  kinds = [example.SerializeToString(), b'', b'\x0a\x00', context_only.SerializeToString(),
           sequence.SerializeToString(), example.SerializeToString() + b'\x18\x05']
  plain = tmp_path / 'kinds'
  records.write_tfrecord(str(plain), kinds)
  content = plain.read_bytes()
  form = records._in_example_form(np.frombuffer(content, dtype=np.uint8), _record_offsets(content))
  assert form.tolist() == [records.payload_problem(k) is None for k in kinds] == [True] * 4 + [False] * 2
