"""Containment (issue 30.3): every process the user's module starts dies with the loss probe, also in a new session
or after a double fork; the probe's temporary files (autograph's too) go with its working directory; a working
directory left by a run killed outright is cleared by the next run, only when its owner is dead."""

import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from tests.helpers import gone, run_cli, tabular_rows, write_splits
from tfx_preflight import process_tree
from tfx_preflight.checks.loss import process as loss_process

MODULES = os.path.join(os.path.dirname(__file__), 'modules')


def waitgone(*pids, seconds=10):
  deadline = time.monotonic() + seconds
  while not all(map(gone, pids)) and time.monotonic() < deadline:
    time.sleep(0.1)
  return {pid: gone(pid) for pid in pids}


@pytest.fixture(scope='module')
def base(tmp_path_factory):
  rows = tabular_rows(200, seed=4)
  return write_splits(str(tmp_path_factory.mktemp('base')), {'train': rows[:150], 'eval': rows[150:]})


def test_helpers_in_new_sessions_and_temp_files_do_not_outlive_the_probe(tmp_path, capsys, monkeypatch, base):
  marker = tmp_path / 'marker.json'
  monkeypatch.setenv('PREFLIGHT_TEST_MARKER', str(marker))
  code, text, err = run_cli(capsys, 'check', '--train', base['train'], '--eval', base['eval'], '--label-key', 'label',
                            '--checks', 'loss', '--module-file', os.path.join(MODULES, 'escaping_module.py'),
                            '--out', tmp_path / 'out')
  info = json.loads(marker.read_text())
  assert waitgone(info['server_pid'], info['daemon_pid']) == {info['server_pid']: True, info['daemon_pid']: True}, \
      text + err
  assert info['temp_file'].startswith(info['workdir'] + os.sep)  # TMPDIR: the probe's own directory...
  assert not os.path.exists(info['workdir'])  # ...removed with it.


def _dead_pid() -> int:
  child = subprocess.Popen([sys.executable, '-c', 'pass'])
  child.wait()
  return child.pid


def test_a_killed_runs_working_directory_is_cleared_by_the_next_run_only_when_its_owner_is_dead(tmp_path):
  root = tmp_path / 'tmp'
  dead, alive, unmarked = (root / f'{loss_process.WORKDIR_PREFIX}{name}' for name in ('dead', 'alive', 'unmarked'))
  for path in (dead, alive, unmarked):
    (path / 'tmp').mkdir(parents=True)
  (dead / '.owner').write_text(f'{_dead_pid()} 1\n')
  (alive / '.owner').write_text(f'{os.getpid()} {process_tree.start_time(os.getpid())}\n')
  loss_process.clear_stale_workdirs(str(root))
  assert not dead.exists() and alive.exists() and unmarked.exists()
  # A live pid with another start time is another process (the pid was reused): the owner is dead.
  (alive / '.owner').write_text(f'{os.getpid()} 1\n')
  loss_process.clear_stale_workdirs(str(root))
  assert not alive.exists()
  workdir = loss_process.make_workdir()
  try:
    assert os.path.dirname(workdir) == tempfile.gettempdir()
    assert (open(os.path.join(workdir, '.owner')).read().split()[0]) == str(os.getpid())
  finally:
    import shutil
    shutil.rmtree(workdir)


def test_kill_descendants_reaches_a_child_in_a_new_session():
  script = ('import subprocess, sys, time\n'
            'p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)\n'
            'print(p.pid, flush=True)\n'
            'time.sleep(600)\n')
  parent = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True)
  try:
    grandchild = int(parent.stdout.readline())
    assert grandchild in process_tree.descendants(parent.pid)
    assert process_tree.kill_descendants(parent.pid) == [grandchild]
    assert waitgone(grandchild) == {grandchild: True}
  finally:
    parent.kill()
    parent.wait()
    parent.stdout.close()
