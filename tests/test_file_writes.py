"""file_writes: every file the package writes is whole or absent, and names in TSV rows never shift a column."""

import os

import pytest

from tfx_preflight import file_writes


def test_write_atomically_replaces_the_file_and_leaves_no_temp(tmp_path):
  path = str(tmp_path / 'deep' / 'part')
  file_writes.write_atomically(path, 'first\n')
  file_writes.write_atomically(path, 'second ✓\n')  # A retried step writes the same name again.
  assert open(path, encoding='utf-8').read() == 'second ✓\n'
  assert os.listdir(tmp_path / 'deep') == ['part']


def test_write_atomically_writes_bytes_as_they_are(tmp_path):
  path = str(tmp_path / 'stats.pb')
  file_writes.write_atomically(path, b'\x00\xff\n')
  assert open(path, 'rb').read() == b'\x00\xff\n'


def test_write_atomically_leaves_neither_file_nor_temp_file_when_writing_fails(tmp_path):
  with pytest.raises(TypeError):
    file_writes.write_atomically(str(tmp_path / 'report.json'), None)
  assert os.listdir(tmp_path) == []


def test_tsv_field_escapes_what_would_shift_or_split_a_row():
  assert file_writes.tsv_field('a\tb\nc\rd\\e') == 'a\\tb\\nc\\rd\\\\e'
  assert file_writes.tsv_field('train.csv') == 'train.csv'
