"""A quiet CLI: no TensorFlow / absl / Google-client / Beam chatter on stderr unless -v, one progress line per stage
with its counts and time, then the verdict block on stdout."""

import os
import re
import subprocess
import sys

import pytest

from tests.helpers import tabular_rows, write_splits
from tfx_preflight.checks.skew.details import SkewDetails
from tfx_preflight.report import progress
from tfx_preflight.report.results import CheckResult, Finding

ROOT = os.path.join(os.path.dirname(__file__), '..')
# TF's C++ log ("2026-01-01 12:00:00.000: W tensorflow/..."), Python warnings ("...: FutureWarning: ..."), absl and
# Beam's log prefixes.
NOISE = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |Warning:|^[IWEF]\d{4} |^(INFO|WARNING):(absl|apache_beam)|'
                   r'tensorflow|TensorRT|oneDNN|cuda', re.IGNORECASE)


def run_cli(args, tmp_path):
  env = {k: v for k, v in os.environ.items() if k not in ('TF_CPP_MIN_LOG_LEVEL', 'PYTHONWARNINGS', 'GRPC_VERBOSITY')}
  env['PYTHONPATH'] = os.pathsep.join([os.path.join(ROOT, 'components'), ROOT])
  return subprocess.run([sys.executable, '-m', 'tfx_preflight.cli', *args], capture_output=True, text=True,
                        timeout=300, env=env, cwd=str(tmp_path))


@pytest.fixture(scope='module')
def splits(tmp_path_factory):
  rows = tabular_rows(400, seed=5)
  return write_splits(str(tmp_path_factory.mktemp('quiet')), {'train': rows[:300], 'eval': rows[300:]})


def check_args(splits, out):
  return ['check', '--train', splits['train'], '--eval', splits['eval'], '--label-key', 'label',
          '--exclude-features', 'id', '--out', str(out)]


def test_cli_stderr_is_stage_lines_only(splits, tmp_path):
  result = run_cli(check_args(splits, tmp_path / 'r'), tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stderr.splitlines()
  assert [line for line in lines if NOISE.search(line)] == []
  assert all(progress.is_progress_line(line) for line in lines), lines
  stages = {line.split(']')[0][1:]: line for line in lines}
  assert sorted(stages) == ['label proxy', 'leakage', 'read', 'skew']
  assert re.search(r'^\[read\] train 300, eval 100 examples read once for statistics, leakage hashes, label-proxy '
                   r'counts; \d+\.\d s$', stages['read'])
  assert 'train 300, eval 100 examples hashed, 0 eval examples in train' in stages['leakage']
  assert result.stdout.startswith('verdict: pass\n')


def test_cli_bad_input_inside_beam_is_one_line_without_beams_traceback(tmp_path):
  """A row the CSV conversion refuses is raised inside a Beam step, which logs it with its traceback at ERROR."""
  (tmp_path / 'train.csv').write_bytes(b'a,city,label\n1,Berlin,0\n2,Koeln,1\n')
  (tmp_path / 'eval.csv').write_bytes(b'a,city,label\n1,K\xf6ln,1\n')
  result = run_cli(['check', '--train', 'train.csv', '--eval', 'eval.csv', '--checks', 'skew', '--out', 'r'],
                   tmp_path)
  assert result.returncode == 2, result.stderr[-3000:]
  assert result.stderr.splitlines() == [
      f'tfx-preflight: {tmp_path / "eval.csv"} line 2: not UTF-8 (byte 0xf6, byte 4 of the line); CsvExampleGen reads '
      'CSV as UTF-8 and fails on it too: re-encode the file (e.g. iconv -f latin1 -t utf-8).'], result.stderr[-3000:]


def test_a_usage_error_that_clears_an_earlier_report_stays_quiet(tmp_path):
  """Invalidating the earlier report in --out imports TFX; its TensorFlow and Google-client logs (20 lines) followed
  the usage error on stderr."""
  out = tmp_path / 'r'
  out.mkdir()
  (out / 'report.json').write_text('{"verdict": "pass", "checks": {}}')  # One of ours: a usage error invalidates it.
  result = run_cli(['check', '--train', 'x.gz', '--out', str(out)], tmp_path)
  assert result.returncode == 2 and not (out / 'report.json').exists()
  assert [line for line in result.stderr.splitlines() if NOISE.search(line)] == [], result.stderr[-3000:]
  assert result.stderr.strip().splitlines()[-1].endswith('the following arguments are required: --eval')


@pytest.mark.slow
def test_verbose_shows_the_library_logs(splits, tmp_path):
  """Control: with -v the same run does print TensorFlow's log, so the quiet test above can fail."""
  result = run_cli(check_args(splits, tmp_path / 'r') + ['-v'], tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]
  assert [line for line in result.stderr.splitlines() if NOISE.search(line)]


def test_stage_descriptions():
  comparisons = {'eval': {'a': {}, 'b': {}}, 'eval_2': {'a': {}}}
  typed = CheckResult('block', (Finding('skew', 'x', 'block', 'm'),) * 2, details=SkewDetails(
      comparisons, {}, {'train': 5, 'eval': 5, 'eval_2': 5}, [], {}, []))
  assert progress.describe(typed) == 'block, 3 feature comparisons, 2 finding(s)'
  assert progress.describe(CheckResult('pass', details=SkewDetails(comparisons, {}, {}, [], {}, []))) == (
      'pass, 3 feature comparisons, 0 finding(s)')
  assert progress.describe(CheckResult.skipped('no module_file given')) == 'skipped (no module_file given)'
  assert progress.is_progress_line('[loss probe] pass, 0 finding(s); 1.0 s')
  read = {'examples_read': {'train': 1200, 'eval': 300}, 'read_for': ['statistics', 'leakage hashes']}
  assert progress.describe(read) == 'train 1,200, eval 300 examples read once for statistics, leakage hashes'
  assert not progress.is_progress_line('tfx-preflight: --train: no file matches')


class _Terminal:
  """A stderr that says it is a terminal and keeps what is written."""

  def __init__(self):
    self.text = ''

  def isatty(self) -> bool:
    return True

  def write(self, text: str) -> None:
    self.text += text

  def flush(self) -> None:
    pass


def test_on_a_terminal_a_running_stage_shows_its_elapsed_time_until_it_ends(monkeypatch):
  import time
  terminal = _Terminal()
  monkeypatch.setattr(sys, 'stderr', terminal)
  progress.enable()
  try:
    with progress.stage('leakage') as stage:
      time.sleep(2.3)
      stage.result = CheckResult('pass')
  finally:
    progress.disable()
  ticks = re.findall(r'\[leakage\] running\.\.\. (\d+) s', terminal.text)
  assert ticks[0] == '0' and '1' in ticks, terminal.text  # Alive while it runs, once a second.
  assert re.search(r'\r\033\[K\[leakage\] pass, 0 finding\(s\); 2\.\d s\n$', terminal.text), terminal.text
  written = len(terminal.text)
  time.sleep(1.2)
  assert len(terminal.text) == written  # The ticker stopped with the stage.
