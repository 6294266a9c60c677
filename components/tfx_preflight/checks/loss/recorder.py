"""The probe's record of one run: findings, measurements and info, sent to the parent before every stage and at the end.

Runs inside the probe subprocess (probe.py); every check of the loss wing takes the `Probe` it reports to.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from tfx_preflight.checks.loss.protocol import (
  NullWriter,
  ProbeFinding,
  ProbeInfo,
  ProbeMeasurements,
  ProbeProgress,
  ProbeRequest,
  ProbeResult,
  ProbeState,
)

_STARTED = time.monotonic()

SEVERITY_BLOCK = 'block'
SEVERITY_WARN = 'warn'


def fmt(value: float) -> str:
  return f'{value:.4g}'


def rounded(value: Optional[float]) -> Optional[float]:
  """4 significant digits: the report must not change with the last bits of a float."""
  if value is None or not math.isfinite(value):
    return value
  return float(f'{value:.4g}')


def error_text(error: BaseException) -> str:
  """The exception type and the first lines of its message (TF errors are long)."""
  text = ' '.join(str(error).split())
  return f'{type(error).__name__}: {text[:400]}' if text else type(error).__name__


def probe_deadline(request: ProbeRequest) -> float:
  """When the parent kills the probe, on this process's monotonic clock: `timeout_seconds` after the parent sent the
  request (which waits in the pipe while the probe still imports TensorFlow); inf without a budget."""
  if request.timeout_seconds <= 0:
    return math.inf
  waited = min(max(0.0, time.time() - request.sent_at), request.timeout_seconds) if request.sent_at else 0.0
  return time.monotonic() - waited + request.timeout_seconds


class Probe:
  """Collects findings and measurements and sends them to the parent (progress messages, then the result)."""

  def __init__(self, request: ProbeRequest, writer: Any = None):
    self.request = request
    self.writer = writer or NullWriter()
    self.findings: List[Dict[str, Any]] = []
    self.measurements: Dict[str, Any] = {}
    self.info: Dict[str, Any] = {}
    # Why the probe could not check at all (a run_fn that never trains with Keras fit); sent apart from `info`.
    self.skipped_reason: Optional[str] = None
    self.stage = 'start'
    self.function: Optional[str] = None
    # (stage, wall-clock time it began): where the probe's time goes (loss.timing.json; never in report.json).
    self.timing: List[Tuple[str, float]] = []
    # When the parent's budget for the probe runs out (time.monotonic()): stages that loop stop on a share of it.
    self.deadline = probe_deadline(request)

  def add(self, code: str, severity: str, message: str, **details: Any) -> None:
    self.findings.append({'code': code, 'severity': severity, 'message': message, **details})

  def has(self, *codes: str) -> bool:
    return any(f['code'] in codes for f in self.findings)

  def enter(self, stage: str, function: Optional[str] = None) -> None:
    """Records the stage about to run, so the parent can name it if the process hangs or dies there."""
    self.stage = stage
    self.function = function
    self.timing.append((stage, time.time()))
    print(f'preflight-probe: {time.monotonic() - _STARTED:7.1f}s {stage} {function or ""}', file=sys.stderr, flush=True)
    self.writer.send(ProbeProgress(stage, function, self.state()))

  def state(self) -> ProbeState:
    """What the probe has found so far, as it crosses the process boundary."""
    return ProbeState(tuple(ProbeFinding.of(f) for f in self.findings), ProbeMeasurements(self.measurements),
                      ProbeInfo(self.info, self.skipped_reason), tuple(self.timing))

  def finish(self) -> None:
    self.timing.append(('end', time.time()))
    self.writer.send(ProbeResult(self.state()))
