"""What the CLI prints while it works: one line per stage (read, skew, leakage, loss probe) with its counts and
elapsed time, and nothing from the libraries underneath unless -v.

Stages report through `stage(name)`; the CLI turns on plain lines on stderr with `enable()`. On a terminal the line
shows while the stage runs, its elapsed time ticking every second, and is completed in place. Without `enable()`
(inside a TFX pipeline) each stage is one INFO log line instead. Light on purpose: importing this module imports no
TensorFlow, TFX or Beam.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
import warnings
from typing import Any, Iterator, Mapping, Optional, TextIO

from tfx_preflight.constants import Status
from tfx_preflight.report import results

# Progress lines look like "[statistics] train 400, eval 200 examples; 3.1 s", so tools (and tests) can tell them
# from the one-line error reason.
_LINE = re.compile(r'^\[[a-z][a-z ]*\] ')
_enabled = False


def enable() -> None:
  """Stage lines go to stderr (looked up when written, so redirections and pytest's capture apply)."""
  global _enabled
  _enabled = True


def disable() -> None:
  global _enabled
  _enabled = False


def is_progress_line(line: str) -> bool:
  return bool(_LINE.match(line))


def quiet_libraries() -> None:
  """Silences TensorFlow's C++ log, absl, Python warnings (Google client FutureWarnings, deprecations) and Beam's
  INFO chatter. Must run before TensorFlow is imported for the C++ part; child processes inherit the environment."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  os.environ.setdefault('PYTHONWARNINGS', 'ignore')
  os.environ.setdefault('GRPC_VERBOSITY', 'ERROR')
  warnings.simplefilter('ignore')
  from absl import logging as absl_logging  # Light (no TensorFlow); absl keeps its own verbosity.
  absl_logging.set_verbosity(absl_logging.ERROR)
  for name in ('apache_beam', 'tensorflow', 'absl', 'tfx', 'tfx_bsl', 'tensorflow_data_validation', 'google'):
    logging.getLogger(name).setLevel(logging.ERROR)
  # Beam logs every exception raised in a step with its traceback before re-raising it; the CLI says it in one line.
  logging.getLogger('apache_beam.runners.common').setLevel(logging.CRITICAL)


class Stage:
  """Handed to the `with` block: set `result` (statistics or a check's result) and its counts are described."""

  def __init__(self, name: str):
    self.name = name
    self.result: Any = None


def _examples(statistics: Mapping[str, Any]) -> str:
  counts = [f'{split} {sum(int(d.num_examples) for d in stats.datasets):,}' for split, stats in sorted(
      statistics.items())]
  return ', '.join(counts) + ' examples'


def describe(result: Any) -> str:
  """The counts worth a progress line: a check's typed result, the read pass's counts, or statistics by split."""
  if isinstance(result, results.CheckResult):
    return _describe_check(result)
  if not isinstance(result, Mapping) or not result:
    return 'done'
  if 'examples_read' in result:  # The read pass (read_pass.py): what it read once, for what.
    counts = ', '.join(f'{split} {int(n):,}' for split, n in result['examples_read'].items())
    return f'{counts} examples read once for {", ".join(result.get("read_for", []))}'
  return _examples(result)  # Statistics by split.


def _describe_check(result: results.CheckResult) -> str:
  """A typed check result's progress line: its status and headline numbers (CheckDetails.headline)."""
  if result.status == Status.SKIPPED:
    return f'skipped ({result.reason or ""})'
  headline = result.headline()
  parts = [result.status.value]
  if 'feature_comparisons' in headline:
    parts.append(f'{headline["feature_comparisons"]} feature comparisons')
  if 'examples_hashed' in headline:
    parts.append(', '.join(f'{s} {int(n):,}' for s, n in headline['examples_hashed'].items()) + ' examples hashed')
  if 'leaked_eval_examples' in headline:
    parts.append(f'{headline["leaked_eval_examples"]:,} eval examples in train')
  parts.append(f'{len(result.findings)} finding(s)')
  return ', '.join(parts)


def _write(line: str, tty: bool) -> None:
  stream: Optional[TextIO] = sys.stderr
  if stream is None:
    return
  stream.write(('\r\033[K' if tty else '') + line + '\n')
  stream.flush()


class _Ticker:
  """On a terminal, rewrites the running stage's line every `interval` seconds with its elapsed time, so a long Beam
  job or the loss probe is visibly alive rather than silent until it ends."""

  def __init__(self, name: str, start: float, interval: float = 1.0):
    self._name, self._start, self._interval = name, start, interval
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, name=f'progress-{name}', daemon=True)

  def _show(self) -> None:
    stream = sys.stderr
    if stream is not None:
      stream.write(f'\r\033[K[{self._name}] running... {time.monotonic() - self._start:.0f} s')
      stream.flush()

  def _run(self) -> None:
    while not self._stop.wait(self._interval):
      self._show()

  def __enter__(self) -> _Ticker:
    self._show()
    self._thread.start()
    return self

  def __exit__(self, *exc_info) -> None:
    self._stop.set()
    self._thread.join()


@contextlib.contextmanager
def stage(name: str) -> Iterator[Stage]:
  """Times a stage and reports one line when it ends. A failing stage reports nothing: the error says why."""
  current = Stage(name)
  start = time.monotonic()
  tty = _enabled and sys.stderr is not None and sys.stderr.isatty()
  try:
    with _Ticker(name, start) if tty else contextlib.nullcontext():
      yield current
  except BaseException:
    if tty:
      sys.stderr.write('\r\033[K')
    raise
  line = f'[{name}] {describe(current.result)}; {time.monotonic() - start:.1f} s'
  if _enabled:
    _write(line, tty)
  else:
    logging.info('Preflight %s', line)
