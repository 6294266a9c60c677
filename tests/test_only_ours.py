"""Only what is ours (issue 30.1): the report directory removes or replaces only files a run of ours wrote (recorded
with their identity in its manifest), never follows a symbolic link out of --out, and refuses to publish over a
user's file, naming it; --summary-md / --junit-xml never overwrite an input.

CLI runs are in-process on the small `base` data (skew + leakage).
"""

import json
import os
import shutil

import pytest

from tests.helpers import assert_usage_error, files_under, run_cli, tabular_rows, write_splits
from tfx_preflight.report import report_dir

# The user's own files the tester put in --out: in the directories a run writes and beside its pages.
USER_FILES = {'loss/mycode.py': 'print("mine")\n', 'inputs/mydata.csv': 'a,b\n1,2\n',
              'leakage/notes.txt': 'notes\n', 'statistics_notes.html': '<p>mine</p>\n'}


@pytest.fixture(scope='module')
def base(tmp_path_factory):
  rows = tabular_rows(300, seed=8)
  return write_splits(str(tmp_path_factory.mktemp('base')), {'train': rows[:200], 'eval': rows[200:]})


def check(capsys, base, out, *flags):
  return run_cli(capsys, 'check', '--train', base['train'], '--eval', base['eval'], '--label-key', 'label',
                 '--exclude-features', 'id', '--checks', 'skew,leakage', '--out', out, *flags)


def put(root, files):
  for name, text in files.items():
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def contents(root, names):
  return {name: (root / name).read_text() for name in names if (root / name).exists()}


def test_runs_keep_the_users_files_in_and_beside_the_report_directories(tmp_path, capsys, base):
  out = tmp_path / 'out'
  put(out, USER_FILES)
  for _ in range(2):  # The first run publishes beside them, the second removes the first's files, not theirs.
    code, text, err = check(capsys, base, out)
    assert code == 0, text + err
    assert contents(out, USER_FILES) == USER_FILES
    assert (out / 'report.json').exists() and (out / 'leakage' / 'duplicates.tsv').exists()
  manifest = json.loads((out / report_dir.MANIFEST).read_text())
  assert 'leakage/duplicates.tsv' in manifest['files'] and 'leakage/notes.txt' not in manifest['files']
  assert 'leakage' not in manifest['dirs']  # The user's directory: ours to write into, never to remove.
  code, _, err = check(capsys, base, out, '--label-key', 'lable')  # A failing run: no report, their files kept.
  assert code == 2, err
  assert contents(out, USER_FILES) == USER_FILES and not (out / 'report.json').exists()
  assert not (out / 'leakage' / 'duplicates.tsv').exists() and not (out / 'report.html').exists()


def test_a_file_of_ours_changed_by_the_user_is_kept_and_the_run_refuses_naming_it(tmp_path, capsys, base):
  out = tmp_path / 'out'
  code, _, err = check(capsys, base, out)
  assert code == 0, err
  (out / 'report.html').write_text('<p>my annotated copy</p>')
  code, _, err = check(capsys, base, out)
  assert_usage_error(code, err, str(out / 'report.html'), 'did not write')
  assert (out / 'report.html').read_text() == '<p>my annotated copy</p>'
  assert not (out / 'report.json').exists() and not [f for f in os.listdir(out) if f.startswith('.tmp-')]


def test_a_symbolic_link_out_of_the_report_directory_is_never_followed(tmp_path, capsys, base):
  out = tmp_path / 'out'
  code, _, err = check(capsys, base, out)
  assert code == 0, err
  elsewhere = tmp_path / 'elsewhere'
  put(elsewhere, {'duplicates.tsv': 'the user\'s own table\n', 'leakage_stats.json': '{}', 'keep.txt': 'keep\n'})
  before = contents(elsewhere, ['duplicates.tsv', 'leakage_stats.json', 'keep.txt'])
  for name in os.listdir(out / 'leakage'):  # The user replaces our directory by a link to theirs.
    os.remove(out / 'leakage' / name)
  os.rmdir(out / 'leakage')
  os.symlink(elsewhere, out / 'leakage')
  code, _, err = check(capsys, base, out)
  assert_usage_error(code, err, str(out / 'leakage'), 'symbolic link')
  assert contents(elsewhere, before) == before and sorted(os.listdir(elsewhere)) == sorted(before)
  assert os.path.islink(out / 'leakage') and not (out / 'report.json').exists()


def test_a_report_json_no_run_of_ours_wrote_is_neither_removed_nor_taken_for_a_report(tmp_path, capsys, base):
  out = tmp_path / 'out'
  put(out, {'report.json': '{"my": "own report"}'})
  code, _, err = check(capsys, base, out)
  assert_usage_error(code, err, str(out), 'report.json was not written by tfx-preflight')
  assert (out / 'report.json').read_text() == '{"my": "own report"}'
  assert sorted(files_under(out)) == ['.lock', 'report.json']


@pytest.mark.parametrize('flag', ['--junit-xml', '--summary-md'])
def test_summaries_never_overwrite_an_input(tmp_path, capsys, base, flag):
  train_file = os.path.join(os.path.dirname(base['train']), os.listdir(os.path.dirname(base['train']))[0])
  with open(train_file, 'rb') as f:
    before = f.read()
  code, _, err = check(capsys, base, tmp_path / 'out', flag, train_file)
  assert_usage_error(code, err, flag, train_file, 'input of this run', '--train')
  with open(train_file, 'rb') as f:
    assert f.read() == before


def test_summaries_never_overwrite_a_hidden_input(tmp_path, capsys, base):
  """A `*` matches hidden files as TF's glob (and Trainer's reader) does, so a summary aimed at one is refused too."""
  train_dir = tmp_path / 'train'
  shutil.copytree(os.path.dirname(base['train']), train_dir)
  name = sorted(os.listdir(train_dir))[0]
  hidden = train_dir / f'.{name}'
  shutil.copyfile(train_dir / name, hidden)
  before = hidden.read_bytes()
  code, _, err = run_cli(capsys, 'check', '--train', str(train_dir / '*'), '--eval', base['eval'], '--label-key',
                         'label', '--checks', 'leakage', '--out', str(tmp_path / 'out'), '--summary-md', str(hidden))
  assert_usage_error(code, err, '--summary-md', str(hidden), 'input of this run', '--train')
  assert hidden.read_bytes() == before
