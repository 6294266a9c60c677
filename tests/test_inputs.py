"""Input shapes real users hand the gate: mixed compression, gzip-looking TFRecords, directories, empty files, remote
module files, and failures that are not the data's fault."""

import os

import pytest
import tensorflow as tf

from tests.helpers import tabular_rows, to_example, write_tfrecords
from tfx_preflight import cli, run
from tfx_preflight.config import PreflightConfig
from tfx_preflight.inputs import data, records

MODULES = os.path.join(os.path.dirname(__file__), 'modules')


def _record_of_length(length: int) -> bytes:
  """A serialized tf.Example exactly `length` bytes long."""
  for padding in range(length, 0, -1):
    serialized = to_example({'blob': b'x' * padding}).SerializeToString()
    if len(serialized) == length:
      return serialized
  raise AssertionError(length)


def test_an_uncompressed_tfrecord_starting_with_gzip_magic_bytes_reads(tmp_path):
  record = _record_of_length(0x8b1f)  # The little-endian length field starts with 1f 8b.
  path = str(tmp_path / 'data.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(record)
  assert open(path, 'rb').read(2) == b'\x1f\x8b'
  assert list(tf.data.TFRecordDataset(path).as_numpy_iterator()) == [record]  # TF reads it.
  assert not records.is_gzip_file(path)
  assert list(records.read_records(path)) == [record]
  data.validate_examples({'train': path})
  gz = write_tfrecords(str(tmp_path / 'real.gz'), [{'a': 1.0}])
  assert records.is_gzip_file(gz)


def test_a_split_mixing_gzip_and_uncompressed_files_is_named_before_the_loss_check(tmp_path, beam_factory):
  rows = tabular_rows(40, 1)
  write_tfrecords(str(tmp_path / 'train' / 'a.gz'), rows[:20])
  write_tfrecords(str(tmp_path / 'train' / 'b'), rows[20:], gzip=False)
  write_tfrecords(str(tmp_path / 'eval' / 'a.gz'), tabular_rows(20, 2))
  examples = {'train': str(tmp_path / 'train' / '*'), 'eval': str(tmp_path / 'eval' / '*')}
  config = PreflightConfig(label_key='label')
  inputs = run.PreflightInputs(examples=examples, module_file=os.path.join(MODULES, 'good_module.py'))
  with pytest.raises(data.InputError, match=r"split 'train' mixes gzip-compressed .*a\.gz.*uncompressed.*/b\)"):
    run.run_checks(inputs, config, beam_factory, str(tmp_path / 'out')).to_dict()
  # Without the loss check the other checks read each file by its own compression.
  result = run.run_checks(run.PreflightInputs(examples=examples), PreflightConfig(label_key='label',
                          loss={'mode': 'off'}, exclude_features=['id']), beam_factory, str(tmp_path / 'out2')).to_dict()
  assert result['checks']['leakage']['examples'] == {'train': 40, 'eval': 20}


def test_directories_given_as_train_and_eval_use_their_files(tmp_path, capsys):
  write_tfrecords(str(tmp_path / 'train' / 'part-0.gz'), tabular_rows(200, 1))
  write_tfrecords(str(tmp_path / 'eval' / 'part-0.gz'), tabular_rows(100, 2))
  code = cli.main(['check', '--train', str(tmp_path / 'train'), '--eval', str(tmp_path / 'eval') + '/',
                   '--label-key', 'label', '--exclude-features', 'id', '--checks', 'leakage', '--out',
                   str(tmp_path / 'r')])
  out, err = capsys.readouterr()
  assert code == cli.EXIT_OK, (out, err)


def test_hundreds_of_empty_eval_files_are_an_empty_split(tmp_path, capsys):
  write_tfrecords(str(tmp_path / 'train' / 'part-0.gz'), tabular_rows(50, 1))
  for i in range(300):
    write_tfrecords(str(tmp_path / 'eval' / f'part-{i:03d}.gz'), [])
  with pytest.raises(data.InputError, match=r"split 'eval' has no examples: none of the 300 file"):
    data.validate_examples({'train': str(tmp_path / 'train' / '*'), 'eval': str(tmp_path / 'eval' / '*')})
  code = cli.main(['check', '--train', str(tmp_path / 'train'), '--eval', str(tmp_path / 'eval'), '--label-key',
                   'label', '--checks', 'leakage', '--out', str(tmp_path / 'r')])
  _, err = capsys.readouterr()
  assert code == cli.EXIT_USAGE and "split 'eval' has no examples" in err


def test_a_remote_module_file_is_looked_up_through_tfx_fileio():
  tf.io.gfile.makedirs('ram://preflight-modules')
  with tf.io.gfile.GFile('ram://preflight-modules/trainer.py', 'w') as f:
    f.write('x = 1\n')
  assert cli._is_file('ram://preflight-modules/trainer.py')  # pylint: disable=protected-access
  assert not cli._is_file('ram://preflight-modules/missing.py')  # pylint: disable=protected-access


def test_only_read_errors_trigger_the_rescan_that_names_a_damaged_file(tmp_path, monkeypatch):
  path = write_tfrecords(str(tmp_path / 'train' / 'a.gz'), tabular_rows(50, 1))
  examples = {'train': path}
  rescans = []
  real = data.find_unreadable_file
  monkeypatch.setattr(data, 'find_unreadable_file', lambda *a, **k: rescans.append(a) or real(*a, **k))
  with pytest.raises(MemoryError):
    with run._naming_unreadable_file(examples):  # pylint: disable=protected-access
      raise MemoryError('worker ran out of memory')
  assert rescans == []
  cut = str(tmp_path / 'cut.gz')
  with open(path, 'rb') as f, open(cut, 'wb') as g:
    g.write(f.read()[:-30])
  with pytest.raises(data.InputError, match='cut.gz'):
    with run._naming_unreadable_file({'train': cut}):  # pylint: disable=protected-access
      raise RuntimeError('Error decoding gzip stream [while running ReadStrictly]')
  assert len(rescans) == 1
  assert data.find_unreadable_file({'train': cut}, max_bytes=0) is not None  # The file being read is finished.
