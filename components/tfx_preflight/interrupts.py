"""SIGINT, SIGTERM and SIGHUP as an exception in the CLI's main thread, so an interrupted run unwinds like a failed one.

Ctrl-C (SIGINT), SIGTERM (what Kubernetes, Kubeflow and `timeout` send) and SIGHUP (the terminal closed) then run
every `finally` on the way out: the report directory's work directory is removed (report_dir.transaction), the loss
probe's process tree is killed (loss.LossCheck; during the probe loss_process.TerminateGuard kills it first, then
calls the handler installed here), CSV staging is deleted. The CLI then says so in one line and exits 128 + the
signal's number (129, 130, 143).

One rule, whenever the signal comes: the run's commit point is report.json's rename into the report directory
(`Received.commit`, with the signals blocked around it). A signal before it leaves no report and exits 128 + its
number; a signal after it changes nothing: the report is complete and the run ends as it would have (0 or 1) within
a moment, saying in one line that the signal came too late to stop it. Repeats of a signal are ignored.

Installed by the CLI only (cli.main), for its duration: the executor runs inside TFX's launcher, whose signal handling
is its own. Light on purpose: no TensorFlow, TFX or Beam.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
from typing import Callable, Iterator, List, Optional, TextIO

from tfx_preflight import process_tree

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# After the first signal the run has this long to unwind; then the process exits anyway. Unwinding is immediate while
# the main thread runs the work itself (DirectRunner's default, one in-process worker), but with
# --direct_num_workers > 1 Beam waits for the bundles its worker threads or processes are running (its thread pool's
# shutdown), which can take as long as the whole read.
GRACE_SECONDS = 2.0
# Local directories this run owns, removed by a forced exit (the unwinding that would remove them did not finish).
_owned: List[str] = []


class Interrupted(KeyboardInterrupt):
  """Raised in the main thread on SIGINT or SIGTERM. A KeyboardInterrupt, so code that cleans up on Ctrl-C does so on
  SIGTERM too; never an `Exception`, so `except Exception` (ours, Beam's, TFX's) does not take it for an error."""

  # Beam's DoFnRunner re-raises an exception carrying this tag unchanged. Without it, a KeyboardInterrupt raised while
  # a DoFn runs comes out as a RuntimeError ("KeyboardInterrupt [while running 'Read[train]']"), logged at ERROR with
  # its traceback (apache_beam.runners.common.DoFnRunner._reraise_augmented).
  _tagged_with_step = True

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = int(signum)

  def __reduce__(self):  # Pickled and copied by its number (its message is the signal's name).
    return type(self), (self.signum,)


def exit_status(signum: int) -> int:
  """The shell's convention for a process ended by a signal: 128 + its number."""
  return 128 + int(signum)


def name(signum: int) -> str:
  return signal.Signals(signum).name


def exit_process(status: int) -> None:
  """Ends an interrupted process once its cleanup is done, without the interpreter's teardown: with
  --direct_num_workers > 1, Beam's daemon threads may still be inside a bundle, and finalizing the interpreter under
  them can abort the process in C++ ("terminate called without an active exception", exit status -6) instead of
  giving `status`. The teardown also costs ~1 s with TensorFlow loaded, for nothing left to do."""
  for stream in (sys.stdout, sys.stderr):
    with contextlib.suppress(Exception):
      stream.flush()
  os._exit(status)  # pylint: disable=protected-access


def quiet_the_rest() -> TextIO:
  """For an interrupted process about to exit: kills every process below it (Beam's workers) and sends whatever
  else this process writes to stderr from now on (Beam's threads reporting their killed workers, ~70 lines of gRPC
  tracebacks) to /dev/null; returns a stream to the real stderr for the run's last line."""
  with contextlib.suppress(Exception):
    sys.stderr.flush()
  saved = os.dup(2)
  process_tree.kill_descendants(os.getpid())
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  os.close(devnull)
  return os.fdopen(saved, 'w', buffering=1, encoding='utf-8', errors='replace')


@contextlib.contextmanager
def removed_on_forced_exit(path: Optional[str]) -> Iterator[None]:
  """Within the block, a forced exit (see GRACE_SECONDS) removes `path`, a local directory this run owns; normally
  the block's own cleanup does. Remote paths are left to the next run, which clears them."""
  if not path or '://' in path:
    yield
    return
  _owned.append(path)
  try:
    yield
  finally:
    _owned.remove(path)


class Received:
  """What the handler saw: the first signal's number (None until one arrives). Kept apart from the exception so the
  CLI still knows it was interrupted when a library turned the exception into another one.

  The grace period is kept by a watchdog thread started with the handlers, not by one started from the handler: the
  handler runs in the main thread between any two bytecodes, possibly while that thread holds threading's own locks
  (in the middle of starting a thread), and starting a thread there could deadlock."""

  def __init__(self, farewell: Callable[[int], str]):
    self.signum: Optional[int] = None
    self.committed = False  # The report is published: a signal no longer stops the run (see the module docstring).
    self.late_signum: Optional[int] = None  # The first signal after the commit point.
    self._farewell = farewell
    self._wake = threading.Event()  # Set by the first signal, or when the block ends.
    self._done = threading.Event()  # Set when the block ends.
    self._watchdog = threading.Thread(target=self._watch, name='preflight-interrupt-watchdog', daemon=True)

  def start(self) -> None:
    self._watchdog.start()

  def handle(self, signum: int, frame) -> None:  # pylint: disable=unused-argument
    if self.committed:
      self.late_signum = self.late_signum or int(signum)
      return
    if self.signum is not None:  # A repeat while unwinding: let the cleanup finish (the grace period bounds it).
      return
    self.signum = int(signum)
    self._wake.set()
    raise Interrupted(signum)

  @contextlib.contextmanager
  def commit(self) -> Iterator[None]:
    """The run's commit point: the block (report.json's rename) runs with the signals blocked, so a signal arrives
    either before it (the run is interrupted, leaving no report) or after it (the run is complete). Outside the main
    thread, where the handlers were not installed, only the flag is set."""
    main = threading.current_thread() is threading.main_thread()
    if main:
      signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
      if self.signum is not None:  # Interrupted already, and a library swallowed the exception: never publish.
        raise Interrupted(self.signum)
      yield
      self.committed = self.signum is None
    finally:
      if main:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # A pending signal is handled here.

  def finish(self) -> None:
    self._done.set()
    self._wake.set()

  def _watch(self) -> None:
    self._wake.wait()
    if not self._done.is_set() and not self._done.wait(GRACE_SECONDS):
      self._exit_now()

  def _exit_now(self) -> None:
    """The grace period is over: remove what this run owns and leave without waiting for the rest of the unwinding.
    The loss probe dies with this process (loss_process asks the kernel for that) and removes its own directory;
    Beam's worker processes are killed first, so they print nothing after the last line."""
    stream = quiet_the_rest()
    for path in list(_owned):
      shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(Exception):  # On a terminal, over the stage line still ticking (progress.py).
      stream.write(('\r\033[K' if stream.isatty() else '') + self._farewell(self.signum) + '\n')
      stream.flush()
    exit_process(exit_status(self.signum))


@contextlib.contextmanager
def raised_in_main_thread(farewell: Callable[[int], str]) -> Iterator[Received]:
  """SIGINT and SIGTERM raise `Interrupted` in the main thread for the duration of the block; the previous handlers
  are restored after it. If the block has not ended GRACE_SECONDS after the signal, the process prints
  `farewell(signum)` and exits with `exit_status(signum)`. Outside the main thread (where Python allows no handler),
  for a signal the caller's parent set to be ignored (`nohup`, a shell's background job) or one handled outside
  Python, nothing changes."""
  received = Received(farewell)
  if threading.current_thread() is not threading.main_thread():
    yield received
    return
  previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
  received.start()
  try:
    for signum, handler in previous.items():
      if handler not in (signal.SIG_IGN, None):  # None: a handler set outside Python, which could not be restored.
        signal.signal(signum, received.handle)
    yield received
  finally:
    for signum, handler in previous.items():
      if handler not in (signal.SIG_IGN, None):
        signal.signal(signum, handler)
    received.finish()
