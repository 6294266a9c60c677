"""The loss probe as a process: started in its own process group with the request on stdin, waited for within its
budget, and killed group-wide (the probe and anything the module started) on every exit path of the gate.

A SIGTERM to the gate kills the probe first (`TerminateGuard`); if the gate dies outright, the kernel's parent-death
signal (PR_SET_PDEATHSIG) and the probe's own watch on its parent pid end it (loss_probe._watch_parent).

Containment: the probe is a child subreaper (PR_SET_CHILD_SUBREAPER), so whatever the module starts stays below it
even in a new session or after a double fork, and every descendant is killed with it (process_tree.py): by the
parent before it kills the probe, and by the probe itself when it ends. The probe's temporary files (autograph's
generated modules included) go to its own working directory (TMPDIR), removed with it; the working directory records
its owner, so the next run removes the directory of a run that was killed outright.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, Optional

from tfx_preflight import process_tree
from tfx_preflight.checks.loss import keras_api as loss_keras
from tfx_preflight.checks.loss import protocol as loss_protocol

PROBE_MODULE = 'tfx_preflight.checks.loss.probe'
SEED = 7
_PR_SET_PDEATHSIG = 1
WORKDIR_PREFIX = 'preflight-loss-'
_OWNER_FILE = '.owner'  # In a working directory: '<pid> <start time>' of the process that made it.


def _owner_alive(owner: str) -> bool:
  try:
    pid_text, start = (owner.split() + [''])[:2]
    pid = int(pid_text)
  except ValueError:
    return True  # Not ours to judge.
  if os.path.isdir('/proc'):
    now = process_tree.start_time(pid)
    return bool(now) and (not start or now == start)
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass
  return True


def clear_stale_workdirs(root: Optional[str] = None) -> None:
  """Removes the working directories of probes whose gate died without removing them (SIGKILL, power loss): only
  those that name their owner, and only when that process is gone."""
  root = root or tempfile.gettempdir()
  try:
    names = [n for n in os.listdir(root) if n.startswith(WORKDIR_PREFIX)]
  except OSError:
    return
  for name in names:
    path = os.path.join(root, name)
    try:
      with open(os.path.join(path, _OWNER_FILE), encoding='utf-8') as f:
        owner = f.read()
    except OSError:
      continue  # No owner written (an older version's, or one being made this instant): left alone.
    if not _owner_alive(owner):
      shutil.rmtree(path, ignore_errors=True)


def make_workdir() -> str:
  """A fresh private working directory for one probe, marked with its owner; stale ones are cleared first."""
  clear_stale_workdirs()
  workdir = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
  with open(os.path.join(workdir, _OWNER_FILE), 'w', encoding='utf-8') as f:
    f.write(f'{os.getpid()} {process_tree.start_time(os.getpid())}\n')
  return workdir


def child_env(keras: loss_keras.TrainerKeras) -> Dict[str, str]:
  """The probe's environment: CPU only, seeded, one thread; and TF_USE_LEGACY_KERAS set (or removed) so that the
  probe binds the Keras Trainer gets (loss_keras.trainer_keras), whatever this process's os.environ says now."""
  env = dict(os.environ)
  loss_keras.apply_to_env(env, keras)
  env.update({'CUDA_VISIBLE_DEVICES': '', 'TF_CPP_MIN_LOG_LEVEL': '2', 'PYTHONHASHSEED': str(SEED),
              'TF_DETERMINISTIC_OPS': '1', 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'})
  package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env['PYTHONPATH'] = os.pathsep.join(p for p in (package_root, env.get('PYTHONPATH')) if p)
  return env


def _prctl() -> Optional[Any]:
  """libc's prctl, resolved in the parent: after fork, the child should run as little as possible."""
  try:
    return ctypes.CDLL(None, use_errno=True).prctl
  except (OSError, AttributeError):
    return None  # Not Linux: the probe's parent watch still ends it.


def _preexec(limit_mb: int, set_death_signal: bool, parent: int):
  """preexec_fn of the child: become a child subreaper (the module's processes stay below the probe, whatever session
  they start), ask the kernel for SIGTERM when the parent dies (PR_SET_PDEATHSIG; the probe's handler then kills its
  whole tree), and cap the address space. The death signal tracks the thread that started the child, so it is only
  requested from the main thread; the probe also watches its parent pid (loss_probe._watch_parent)."""
  prctl = _prctl()

  def apply() -> None:
    if prctl is not None:
      prctl(process_tree.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    if prctl is not None and set_death_signal:
      prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
      if os.getppid() != parent:  # The parent died before prctl took effect.
        os._exit(1)
    if limit_mb:
      limit = int(limit_mb) * 1024 * 1024
      resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
  return apply


class ProbeProcess:
  """The child running the battery, leading its own process group. Started as early as possible (before the parent
  has read the data) with a `Warmup` line and the request's head (which module; the nonce and the result descriptor)
  on stdin, so Python's start, TensorFlow's import and the module's import overlap the parent's work; `send` then
  writes the whole request and closes stdin, and `wait` enforces the wall-clock budget counted from the request.
  Results come back over an inherited pipe with a per-run nonce (protocol.py): nothing in argv, the environment or
  the working directory says where results go."""

  def __init__(self, warmup: loss_protocol.Warmup, head: loss_protocol.ProbeRequest, memory_limit_mb: int,
               workdir: str, keras: loss_keras.TrainerKeras):
    self.stderr_path = os.path.join(workdir, 'stderr.txt')
    self.spawned_at = time.time()
    self.sent_at: Optional[float] = None
    self._timeout = 0.0
    self._started = time.monotonic()
    self._nonce = secrets.token_hex(16)
    read_fd, self._write_fd = os.pipe()
    main_thread = threading.current_thread() is threading.main_thread()
    env = child_env(keras)
    env['TMPDIR'] = os.path.join(workdir, 'tmp')  # Autograph's generated modules too: removed with the workdir.
    os.makedirs(env['TMPDIR'], exist_ok=True)
    try:
      with open(os.path.join(workdir, 'stdout.txt'), 'wb') as out, open(self.stderr_path, 'wb') as err:
        self._process = subprocess.Popen(
            [sys.executable, '-m', PROBE_MODULE], stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=workdir,
            env=env, start_new_session=True, pass_fds=(self._write_fd,),
            preexec_fn=_preexec(memory_limit_mb, main_thread, os.getpid()))
    except BaseException:
      os.close(read_fd)
      raise
    finally:
      os.close(self._write_fd)  # The child has its copy; the number alone goes in the request.
    self._reader = loss_protocol.ParentReader(read_fd, self._nonce)
    head = dataclasses.replace(head, nonce=self._nonce, result_fd=self._write_fd)
    self._write_stdin(warmup.to_json() + '\n' + head.to_json() + '\n', close=False)

  def _write_stdin(self, text: str, close: bool) -> None:
    try:
      self._process.stdin.write(text.encode())
      self._process.stdin.flush()
    except OSError:  # The child died already; `wait` reports it.
      pass
    finally:
      if close:
        try:
          self._process.stdin.close()
        except OSError:
          pass

  def send(self, request: loss_protocol.ProbeRequest, timeout_seconds: float) -> None:
    """Sends the whole request (never the nonce: the probe took it from the head, before the module could read
    stdin) and closes stdin; the budget of `timeout_seconds` starts now.

    Written by a thread: the probe reads it only once the module is imported, and a pipe holds 64 KiB, so a larger
    request (many files, a large custom_config) written here to a module whose import hangs would block the parent
    before the budget that ends the hang could start."""
    self._timeout = timeout_seconds
    self._started = time.monotonic()
    self.sent_at = time.time()
    message = dataclasses.replace(request, nonce='', result_fd=-1, timeout_seconds=timeout_seconds,
                                  sent_at=self.sent_at).to_json()
    threading.Thread(target=self._write_stdin, args=(message, True), name='preflight-probe-request',
                     daemon=True).start()

  def _wait_unreaped(self, timeout: float) -> bool:
    """Waits for the child to exit without reaping it, so its process group id cannot be reused before `kill`."""
    deadline = time.monotonic() + timeout
    while True:
      try:
        info = os.waitid(os.P_PID, self._process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
      except ChildProcessError:
        return True
      if info is not None:
        return True
      if time.monotonic() >= deadline:
        return False
      time.sleep(0.05)

  def wait(self) -> loss_protocol.ProbeRun:
    """Waits for the child (what is left of the budget) and says how it ended: complete (exit code 0 and a complete
    result), timeout or crashed, with its last messages."""
    remaining = max(0.0, self._timeout - (time.monotonic() - self._started))
    try:
      outcome = loss_protocol.COMPLETE if self._wait_unreaped(remaining) else loss_protocol.TIMEOUT
    finally:
      self.kill()  # Always: a timeout, an exception here (e.g. KeyboardInterrupt), or the module's leftover children.
    returncode = self._process.returncode if outcome == loss_protocol.COMPLETE else None
    elapsed = time.monotonic() - self._started
    logging.info('Preflight loss probe: %s after %.1f s (exit code %s)', outcome, elapsed, returncode)
    self._reader.join(timeout=5)
    result = self._reader.result
    if outcome == loss_protocol.COMPLETE and (returncode != 0 or result is None or not result.complete):
      outcome = loss_protocol.CRASHED
    return loss_protocol.ProbeRun(outcome, returncode, result, self._reader.progress, self.stderr_path, elapsed)

  def kill(self) -> None:
    """Kills everything below the probe (its orphans are its own: a subreaper), then its whole process group, then
    reaps it. A probe that ended by itself killed its descendants first (loss_probe.main)."""
    process_tree.kill_descendants(self._process.pid)
    try:
      os.killpg(self._process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
      pass
    self._process.wait()


class TerminateGuard:
  """While the probe runs, SIGTERM to this process first kills the probe's group and removes its directory, then goes
  to the handler that was there before (by default: terminate). Installed only from the main thread (the only place
  Python allows it) and only over the default or a Python handler; restored by `restore`."""

  def __init__(self, cleanup):
    self._previous = None
    self._installed = False
    self._handling = False
    self._cleanup = cleanup
    if threading.current_thread() is not threading.main_thread():
      return
    previous = signal.getsignal(signal.SIGTERM)
    if previous in (signal.SIG_IGN, None):
      return
    self._previous = previous
    signal.signal(signal.SIGTERM, self._handle)
    self._installed = True

  def _handle(self, signum, frame) -> None:
    # A second SIGTERM while the first one's cleanup runs (it waits for the probe under subprocess's own lock) must not
    # start the cleanup again inside it: that waited on the lock its own thread held, for ever.
    if self._handling:
      return
    self._handling = True
    self._cleanup()
    self.restore()
    if callable(self._previous):
      self._previous(signum, frame)
    else:
      os.kill(os.getpid(), signal.SIGTERM)

  def restore(self) -> None:
    if self._installed and signal.getsignal(signal.SIGTERM) == self._handle:
      signal.signal(signal.SIGTERM, self._previous)
    self._installed = False
