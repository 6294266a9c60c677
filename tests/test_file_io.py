"""file_io: local paths served without TensorFlow, with the answers TensorFlow's gfile (what TFX's fileio and Trainer's
reader use) gives for them; remote paths through TFX's fileio. gfile itself is the reference here."""

import os

import pytest
import tensorflow as tf

from tfx_preflight import file_io, file_writes


@pytest.fixture
def tree(tmp_path):
  """Data files, a hidden file, a subdirectory, a broken link, text with CR/LF and non-ASCII."""
  root = tmp_path / 'data'
  (root / 'Split-train' / 'nested').mkdir(parents=True)
  (root / 'Split-eval').mkdir()
  for name in ('data-00000-of-00002.gz', 'data-00001-of-00002.gz', '.hidden.gz', 'notes[1].txt'):
    (root / 'Split-train' / name).write_bytes(b'x' * len(name))
  (root / 'Split-eval' / 'data-00000-of-00001.gz').write_bytes(b'eval')
  (root / 'Split-train' / 'nested' / 'deep.gz').write_bytes(b'deep')
  os.symlink(str(tmp_path / 'nowhere'), str(root / 'Split-train' / 'broken.gz'))
  (root / 'text.txt').write_bytes('a,é\r\nb\rc\n'.encode())
  return str(root)


@pytest.mark.parametrize('pattern', [
    'Split-train/*', 'Split-train/*.gz', 'Split-train/data-0000?-of-*', 'Split-train/[.d]*', 'Split-*/*.gz',
    '*/*', 'Split-train', 'Split-train/nested/deep.gz', 'Split-train/broken.gz', 'missing/*', 'Split-*/nested/*',
    'Split-train/notes[[]1].txt', 'Split-*/', 'Split-train/n*/', 'Split-train/'])
def test_glob_matches_what_gfile_matches_hidden_files_included(tree, pattern):
  full = os.path.join(tree, pattern)
  assert sorted(file_io.glob(full)) == sorted(tf.io.gfile.glob(full))


def test_glob_of_a_hidden_file_is_not_left_out(tree):
  """Python's glob leaves out '.hidden.gz' for '*'; Trainer's reader (gfile) would read it, so the gate reads it too."""
  assert os.path.join(tree, 'Split-train', '.hidden.gz') in file_io.glob(os.path.join(tree, 'Split-train', '*'))


def test_text_is_read_as_gfile_reads_it(tree):
  """UTF-8, nothing translated. (gfile's line iterator also drops every '\\r', which `read` keeps; lines here end at
  '\\n' and keep what the file holds, as csv.reader wants them.)"""
  path = os.path.join(tree, 'text.txt')
  with file_io.open(path, 'r') as f, tf.io.gfile.GFile(path, 'r') as g:
    assert f.read() == g.read() == 'a,é\r\nb\rc\n'
  with file_io.open(path, 'r') as f:
    assert list(f) == ['a,é\r\n', 'b\rc\n']


def test_text_is_written_as_utf8_untranslated(tmp_path):
  path = str(tmp_path / 'out.txt')
  with file_io.open(path, 'w') as f:
    f.write('é\r\n')
  assert open(path, 'rb').read() == 'é\r\n'.encode()


def test_sizes_directories_and_listings_are_gfiles(tree):
  train = os.path.join(tree, 'Split-train')
  for name in ('data-00000-of-00002.gz', '.hidden.gz'):
    assert file_io.size(os.path.join(train, name)) == tf.io.gfile.stat(os.path.join(train, name)).length
  assert sorted(file_io.listdir(train)) == sorted(tf.io.gfile.listdir(train))
  for path in (train, os.path.join(train, 'nested'), os.path.join(train, '.hidden.gz'), os.path.join(train, 'broken.gz')):
    assert (file_io.isdir(path), file_io.exists(path)) == (tf.io.gfile.isdir(path), tf.io.gfile.exists(path))
  assert [(d, sorted(s), sorted(f)) for d, s, f in file_io.walk(tree)] == \
      [(d, sorted(s), sorted(f)) for d, s, f in tf.io.gfile.walk(tree)]


def test_rename_refuses_to_overwrite_unless_asked(tmp_path):
  src, dst = str(tmp_path / 'a'), str(tmp_path / 'b')
  file_writes.write_atomically(src, 'new')
  file_writes.write_atomically(dst, 'old')
  with pytest.raises(FileExistsError):
    file_io.rename(src, dst)
  file_io.rename(src, dst, overwrite=True)
  assert open(dst).read() == 'new' and not file_io.exists(src)


def test_a_path_with_a_scheme_goes_through_tfxs_fileio():
  """TensorFlow's in-memory filesystem (ram://) stands for gs:// or s3://: the same code path, no network."""
  directory = 'ram://file_io_test/out'
  file_writes.write_atomically(f'{directory}/part.txt', 'remote ✓\n')
  assert file_io.exists(f'{directory}/part.txt') and not file_io.exists(f'{directory}/other.txt')
  assert file_io.glob(f'{directory}/*.txt') == [f'{directory}/part.txt']
  assert file_io.size(f'{directory}/part.txt') == len('remote ✓\n'.encode())
  with file_io.open(f'{directory}/part.txt', 'r') as f:
    assert f.read() == 'remote ✓\n'
  file_io.rmtree(directory)
  assert not file_io.exists(f'{directory}/part.txt')
