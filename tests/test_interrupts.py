"""Interrupting `tfx-preflight check` (Ctrl-C, SIGTERM from `timeout` or Kubernetes): one line on stderr, exit status
130 / 143, and nothing left behind: no report in --out (not even an earlier one), no work directory, no probe.

Real runs: the CLI as a subprocess (its stderr on a pseudo-terminal, so the stage line shows when a stage starts) with
a real signal, or in-process with the signal sent to this process at a chosen point of the run.
"""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import apache_beam as beam
import pytest
import tfx

from tests.helpers import USER_ENTRIES, files_under, fill, gone, tabular_rows, without_progress, write_splits
from tfx_preflight import cli, interrupts

ROOT = os.path.join(os.path.dirname(__file__), '..')
MODULES = os.path.join(os.path.dirname(__file__), 'modules')
TAXI = {split: os.path.join(os.path.dirname(tfx.__file__), 'components', 'testdata', 'csv_example_gen',
                            f'Split-{split}', '*') for split in ('train', 'eval')}
# A passing report an earlier run left in --out, and a user's files beside it (tests/test_failclosed.py).
EARLIER = ['report.json', 'report.html', 'leakage/duplicates.tsv', '.published', *USER_ENTRIES]


@pytest.fixture(autouse=True)
def signals_not_ignored():
  """A suite started under `nohup` (or as a shell's background job) inherits SIGHUP (or SIGINT) ignored, and the CLI
  rightly leaves an ignored signal ignored: these tests send the signals, so they run with the default disposition
  (inherited by the CLI processes they start), and the inherited one comes back after each."""
  ignored = [signum for signum in interrupts.SIGNALS if signal.getsignal(signum) is signal.SIG_IGN]
  for signum in ignored:
    signal.signal(signum, signal.SIG_DFL)
  yield
  for signum in ignored:
    signal.signal(signum, signal.SIG_IGN)


def assert_nothing_left(out):
  """Only the user's files and the lock file: no report.json, no report.html, no .tmp-* work directory."""
  assert sorted(files_under(out)) == sorted(['.lock', *USER_ENTRIES])


def assert_one_line(err, signum, out):
  assert 'Traceback' not in err and 'KeyboardInterrupt' not in err, err[-3000:]
  text = err.replace('\r\n', '\n').replace('\r\x1b[K', '\n')  # A terminal's line ends; a stage line cleared.
  lines = [line.rstrip() for line in without_progress(text).splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0] == f'tfx-preflight: interrupted ({signum.name}); no report was written to {out}', \
      err[-3000:]


# ---------------------------------------------------------------------------------------------------------------------
# The exception itself: raised in the main thread, through Beam unchanged.


class _Raise(beam.DoFn):
  def __init__(self, error):
    self._error = error

  def process(self, element):
    raise self._error
    yield element  # pylint: disable=unreachable


def test_an_interrupt_raised_inside_a_dofn_reaches_the_caller_unchanged():
  with pytest.raises(interrupts.Interrupted) as raised:
    with beam.Pipeline() as p:
      _ = p | beam.Create([1]) | 'Step' >> beam.ParDo(_Raise(interrupts.Interrupted(signal.SIGTERM)))
  assert raised.value.signum == signal.SIGTERM
  # Control: Beam turns a plain KeyboardInterrupt raised in a DoFn into a RuntimeError (the CLI would have said
  # "cannot check the input" and exited 2).
  with pytest.raises(RuntimeError, match='KeyboardInterrupt'):
    with beam.Pipeline() as p:
      _ = p | beam.Create([1]) | 'Step' >> beam.ParDo(_Raise(KeyboardInterrupt()))


def test_handlers_are_installed_for_the_block_only_and_ignored_signals_stay_ignored():
  before = signal.getsignal(signal.SIGTERM)
  with pytest.raises(interrupts.Interrupted), interrupts.raised_in_main_thread(str) as received:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # The handler runs in this thread and raises.
  assert received.signum == signal.SIGTERM and signal.getsignal(signal.SIGTERM) is before
  previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # As `nohup` or a shell's background job leaves it.
  try:
    with interrupts.raised_in_main_thread(str):
      assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
  finally:
    signal.signal(signal.SIGINT, previous)


_STUCK = """
import os, sys, time
from tfx_preflight import interrupts
interrupts.GRACE_SECONDS = 1.0
with interrupts.raised_in_main_thread(lambda signum: f'gave up after signal {signum}'), \\
     interrupts.removed_on_forced_exit(sys.argv[1]):
  announced = False
  while True:  # Code that swallows the interrupt and carries on (as Beam waits for its worker threads).
    try:
      if not announced:  # Inside the try: the signal may come while 'ready' is still being printed.
        announced = True
        print('ready', flush=True)
      time.sleep(60)
    except KeyboardInterrupt:
      pass
"""


def test_a_run_that_does_not_unwind_is_ended_after_the_grace_period(tmp_path):
  owned = tmp_path / 'work'
  (owned / 'sub').mkdir(parents=True)
  env = {**os.environ, 'PYTHONPATH': os.pathsep.join([os.path.join(ROOT, 'components'), ROOT])}
  child = subprocess.Popen([sys.executable, '-c', _STUCK, str(owned)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env)
  try:
    assert child.stdout.readline() == 'ready\n'
    sent = time.monotonic()
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=30)
  finally:
    if child.poll() is None:
      child.kill()
  assert child.returncode == 143 and 1.0 <= time.monotonic() - sent < 10, err
  assert err == f'gave up after signal {int(signal.SIGTERM)}\n'
  assert not owned.exists()


# ---------------------------------------------------------------------------------------------------------------------
# In-process CLI runs, a real signal sent at a chosen point.


@pytest.fixture(scope='module')
def small(tmp_path_factory):
  rows = tabular_rows(400, seed=3)
  return write_splits(str(tmp_path_factory.mktemp('small')), {'train': rows[:300], 'eval': rows[300:]})


def _signal_after(monkeypatch, module, name, signum):
  """`module.name` runs, then this process gets `signum` (its handler runs in the main thread before the caller
  continues)."""
  original = getattr(module, name)

  def then_signal(*args, **kwargs):
    result = original(*args, **kwargs)
    os.kill(os.getpid(), signum)
    time.sleep(5)  # Never reached: the handler raises first.
    return result
  monkeypatch.setattr(module, name, then_signal)


@pytest.mark.parametrize('where, signum', [
    ('input checks', signal.SIGINT),  # Before the run took --out over: the earlier report must go all the same.
    ('report writing', signal.SIGTERM),  # The report is written in the work directory, not yet published.
    ('report writing', signal.SIGHUP),  # The terminal closed (issue 30: exit 129 without a word, .tmp-* left).
])
def test_interrupted_in_process_exits_128_plus_signal_leaving_no_report(tmp_path, capsys, monkeypatch, small, where,
                                                                        signum):
  from tfx_preflight import run
  target = {'input checks': (cli, '_check_local_paths'), 'report writing': (run, 'write_report')}[where]
  _signal_after(monkeypatch, *target, signum)
  out = tmp_path / 'out'
  fill(out, EARLIER)
  before = signal.getsignal(signal.SIGTERM)
  code = cli.main(['check', '--train', small['train'], '--eval', small['eval'], '--label-key', 'label',
                   '--exclude-features', 'id', '--summary-md', str(tmp_path / 'summary.md'), '--out', str(out)])
  _, err = capsys.readouterr()
  assert code == 128 + signum
  assert_one_line(err, signum, out)
  assert_nothing_left(out)
  assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_after_the_report_was_published_changes_nothing(tmp_path, capsys, monkeypatch, small):
  """The commit point is report.json's rename (issue 30: a SIGTERM just after it exited 143 and kept the report)."""
  _signal_after(monkeypatch, cli, '_write_summaries', signal.SIGTERM)
  out = tmp_path / 'out'
  code = cli.main(['check', '--train', small['train'], '--eval', small['eval'], '--label-key', 'label',
                   '--exclude-features', 'id', '--summary-md', str(tmp_path / 'summary.md'), '--out', str(out)])
  text, err = capsys.readouterr()
  assert code == 0 and json.loads((out / 'report.json').read_text())['verdict'] == 'pass', err
  assert 'verdict: pass' in text and (tmp_path / 'summary.md').exists()
  assert without_progress(err).strip() == \
      'tfx-preflight: SIGTERM came after the report was complete; it stands (exit status 0).'


# ---------------------------------------------------------------------------------------------------------------------
# The CLI as a subprocess: a real signal while Beam reads, or while the loss probe runs.


def _start(args, cwd, env_extra=None):
  """`tfx-preflight check ...` as a user runs it (the environment conftest.py sets for the tests removed), stderr on a
  pseudo-terminal (the stage line shows when the stage starts)."""
  env = {k: v for k, v in os.environ.items() if k not in ('TF_CPP_MIN_LOG_LEVEL', 'PYTHONWARNINGS', 'GRPC_VERBOSITY')}
  env.update(env_extra or {}, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, 'components'), ROOT]))
  controller, terminal = pty.openpty()
  try:
    process = subprocess.Popen([sys.executable, '-m', 'tfx_preflight.cli', 'check', *map(str, args)], cwd=str(cwd),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal, env=env)
  finally:
    os.close(terminal)
  return process, controller


def _read(controller, seconds: float) -> str:
  """What the child wrote to its terminal within `seconds` (less if it closed it)."""
  chunks, deadline = [], time.monotonic() + seconds
  while time.monotonic() < deadline:
    ready, _, _ = select.select([controller], [], [], 0.1)
    if ready:
      try:
        chunk = os.read(controller, 65536)
      except OSError:  # EIO: the child closed its end.
        break
      if not chunk:
        break
      chunks.append(chunk.decode(errors='replace'))
  return ''.join(chunks)


def _interrupt(process, controller, signum, when, timeout=240, repeat_after=None):
  """Sends `signum` once `when(stderr so far)` holds (again `repeat_after` seconds later if given); returns (stderr,
  seconds from the signal to the exit)."""
  err, deadline = '', time.monotonic() + timeout
  try:
    while not when(err):
      assert process.poll() is None and time.monotonic() < deadline, f'ended before the signal: {err[-3000:]}'
      err += _read(controller, 0.2)
    process.send_signal(signum)
    sent = time.monotonic()
    if repeat_after is not None:
      time.sleep(repeat_after)
      if process.poll() is None:
        process.send_signal(signum)
    process.wait(timeout=60)
    elapsed = time.monotonic() - sent
    return err + _read(controller, 2), elapsed
  finally:
    if process.poll() is None:
      process.kill()
    process.stdout.close()
    os.close(controller)


def test_the_commit_point_publishes_only_an_uninterrupted_run_and_ends_interruptions_after_it():
  received = interrupts.Received(str)
  with received.commit():
    pass
  assert received.committed
  received.handle(signal.SIGTERM, None)  # After the commit point: noted, not raised.
  assert received.late_signum == signal.SIGTERM and received.signum is None
  swallowed = interrupts.Received(str)
  swallowed.signum = signal.SIGTERM  # Interrupted before, and a library swallowed the exception (issue 30).
  with pytest.raises(interrupts.Interrupted):
    with swallowed.commit():
      pytest.fail('published after an interrupt')
  assert not swallowed.committed


@pytest.mark.parametrize('signum, beam_args', [
    (signal.SIGINT, []),
    # Worker processes: killed, and the threads watching them silenced, before the one line (issue 30: ~70 lines of
    # gRPC tracebacks after it).
    (signal.SIGTERM, ['--', '--direct_num_workers=2', '--direct_running_mode=multi_processing']),
    # Bundles in Beam's worker threads: the main thread waits on them, the process must still end at once (without
    # exit_process the interpreter's teardown under them aborted it: "terminate called without an active exception").
    (signal.SIGTERM, ['--', '--direct_num_workers=2', '--direct_running_mode=multi_threading']),
])
def test_a_signal_while_beam_reads_ends_the_run_at_once_leaving_nothing(tmp_path, signum, beam_args):
  out = tmp_path / 'out'
  fill(out, EARLIER)
  process, controller = _start(['--train', TAXI['train'], '--eval', TAXI['eval'], '--label-key', 'tips', '--out', out,
                                *beam_args], tmp_path)
  started = []

  def reading(err):  # Half a second into the read stage: Beam is building or running the pipeline.
    if '[read] running' in err and not started:
      started.append(time.monotonic())
    return bool(started) and time.monotonic() - started[0] > 0.5
  err, elapsed = _interrupt(process, controller, signum, reading)
  assert process.returncode == 128 + signum, err[-3000:]
  assert '[read] train' not in err  # Interrupted while reading, not after.
  assert_one_line(err, signum, out)
  assert_nothing_left(out)
  assert elapsed < 5


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
  from sklearn.datasets import load_digits
  data = load_digits()
  rows = [{'pixels': data.data[i].astype(float), 'label': int(data.target[i])} for i in range(400)]
  return write_splits(str(tmp_path_factory.mktemp('digits')), {'train': rows[:300], 'eval': rows[300:]})


@pytest.mark.parametrize('signum, repeat', [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True)])
def test_a_signal_while_the_loss_probe_runs_kills_its_group_and_leaves_nothing(tmp_path, digits, signum, repeat):
  """SIGTERM goes first to loss_process.TerminateGuard (kills the probe's group), then to the CLI's handler; SIGINT
  to the CLI's handler only, and LossCheck's exit kills the group."""
  marker = tmp_path / 'marker.json'
  out = tmp_path / 'out'
  fill(out, EARLIER)
  process, controller = _start(['--train', digits['train'], '--eval', digits['eval'], '--label-key', 'label',
                                '--module-file', os.path.join(MODULES, 'orphan_module.py'), '--out', out], tmp_path,
                               env_extra={'PREFLIGHT_TEST_MARKER': str(marker)})
  # The probe runs the module. Repeated: a second SIGTERM 50 ms later, in the first one's cleanup (issue 30: the CLI
  # hung for ever, the probe a zombie, the lock and temp directory held).
  err, elapsed = _interrupt(process, controller, signum, lambda _: marker.exists(), repeat_after=0.05 if repeat else None)
  info = json.loads(marker.read_text())
  assert process.returncode == 128 + signum, err[-3000:]
  assert_one_line(err, signum, out)
  assert_nothing_left(out)
  assert elapsed < 5
  deadline = time.monotonic() + 10
  while not (gone(info['probe_pid']) and gone(info['sleep_pid'])) and time.monotonic() < deadline:
    time.sleep(0.2)
  assert gone(info['probe_pid']) and gone(info['sleep_pid']) and not os.path.exists(info['workdir'])


# ---------------------------------------------------------------------------------------------------------------------
# Property: a signal at any moment of a whole run.


@pytest.mark.slow
def test_a_signal_at_any_moment_leaves_a_complete_report_with_0_or_1_or_none_with_128_plus_its_number(tmp_path, small):
  """Sweeps the signal's time across a whole (small) CLI run, with every signal and some sent twice 50 ms apart:
  each run ends within seconds of the signal, either with its complete report and exit 0 / 1, or with no report,
  no work directory and 128 + the signal's number; one line on stderr either way, never a traceback."""
  env = {k: v for k, v in os.environ.items() if k not in ('TF_CPP_MIN_LOG_LEVEL', 'PYTHONWARNINGS', 'GRPC_VERBOSITY')}
  env['PYTHONPATH'] = os.pathsep.join([os.path.join(ROOT, 'components'), ROOT])

  def start(out):
    return subprocess.Popen([sys.executable, '-m', 'tfx_preflight.cli', 'check', '--train', small['train'], '--eval',
                             small['eval'], '--label-key', 'label', '--exclude-features', 'id', '--out', str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path))
  began = time.monotonic()
  whole = start(tmp_path / 'whole')
  whole.communicate(timeout=300)
  span = time.monotonic() - began
  assert whole.returncode == 0
  points = [(0.15, signal.SIGTERM, True), (0.45, signal.SIGINT, False), (0.75, signal.SIGHUP, True),
            (0.97, signal.SIGTERM, False)]
  outcomes = []
  for i, (fraction, signum, twice) in enumerate(points):
    out = tmp_path / f'out-{i}'
    process = start(out)
    time.sleep(max(0.5, fraction * span))  # Not before Python has started and installed the handlers.
    process.send_signal(signum)
    sent = time.monotonic()
    if twice:
      time.sleep(0.05)
      if process.poll() is None:
        process.send_signal(signum)
    text, err = process.communicate(timeout=60)
    elapsed = time.monotonic() - sent
    lines = [line for line in without_progress(err).splitlines() if line.strip()]
    context = (fraction, signum.name, process.returncode, round(elapsed, 2), err[-2000:])
    assert elapsed < 3 and 'Traceback' not in err and len(lines) <= 1, context
    left = os.listdir(out) if out.exists() else []
    assert not [n for n in left if n.startswith('.tmp-')], context
    if process.returncode in (0, 1):
      assert json.loads((out / 'report.json').read_text())['verdict'] == 'pass' and (out / 'report.html').exists()
      assert 'verdict: pass' in text and lines in ([], [f'tfx-preflight: {signum.name} came after the report was '
                                                       'complete; it stands (exit status 0).']), context
    else:
      assert process.returncode == 128 + signum and 'report.json' not in left, context
      assert lines == [f'tfx-preflight: interrupted ({signum.name}); no report was written to {out}'], context
    outcomes.append(process.returncode)
  assert 128 + signal.SIGTERM in outcomes  # The sweep did interrupt runs (and, near the end, may have let one be).
