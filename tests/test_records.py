"""The strict TFRecord reader: every damaged file is an error naming it, including a gzip stream cut at a record
boundary, which Beam's own reader (and so StatisticsGen) takes for a shorter valid file."""

import os

import apache_beam as beam
import pytest
from apache_beam.io.filesystem import CompressedFile, CompressionTypes
from apache_beam.io.tfrecordio import _TFRecordUtil

from tests.conftest import tabular_rows, write_tfrecords
from tfx_preflight import data, records, statistics


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
  assert missed, 'Beam now notices every truncated gzip stream: records.ReadRecords may be unnecessary'
  split_dir = os.path.join(tmp_path, 'Split-eval')
  os.makedirs(split_dir)
  cut_path = os.path.join(split_dir, 'data.gz')
  with open(cut_path, 'wb') as f:
    f.write(content[:missed[len(missed) // 2]])
  examples = {'eval': os.path.join(split_dir, '*')}
  with pytest.raises(Exception, match='cut.gz|data.gz'):
    statistics.generate_statistics(examples, beam_factory, str(tmp_path / 'stats'))
  error = data.find_unreadable_file(examples)
  assert error is not None and cut_path in str(error) and 'gzip' in str(error)


def test_read_records_gives_every_record_of_every_file_once(tmp_path):
  paths = [write_tfrecords(os.path.join(tmp_path, f'part-{i}.gz'), tabular_rows(50, seed=i), gzip=i % 2 == 0)
           for i in range(3)]
  with beam.Pipeline() as pipeline:
    counted = (pipeline | records.ReadRecords(paths) | beam.combiners.Count.Globally())
    from apache_beam.testing.util import assert_that, equal_to
    assert_that(counted, equal_to([150]))
