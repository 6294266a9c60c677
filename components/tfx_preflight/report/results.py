"""Typed check results: `Finding`, `CheckResult` and `Report`, one shape for every check; statuses and the verdict
are decided on them, then they are turned into report.json's dicts in one place (`to_dict`).

Every check (skew, leakage, loss, label_proxy) returns a `CheckResult`. report.json's contract is kept: a finding's
code is written as `kind` (skew, leakage, label_proxy) or `code` (loss) — decided by `code_key` alone — and skew and
label_proxy findings always carry `feature` (null for a dataset-level finding).

One rule decides what a pass means (`Report.verdict`): "pass" or "warn" only when at least one check ran and compared
something real (at least one feature, at least one example of every split: its `Coverage`). A check that ran but
compared nothing has status "not_checked" (with a `reason`) instead of "pass"; when no check compared anything the
verdict is "not_checked", which never blesses. A "block" stays a block: a blocking finding is always earned.
Light module: no TensorFlow, TFX or Beam import.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterable, Mapping, Optional, Protocol, Sequence, Tuple, runtime_checkable

from tfx_preflight import constants
from tfx_preflight.config import CHECK_NAMES
from tfx_preflight.constants import Severity, Status

REPORT_VERSION = 1
# The report.json key under which each check writes a finding's code (report.json's contract).
_CODE_KEYS = {constants.LOSS: 'code'}
# Checks whose findings always hold a `feature` key in report.json, null when the finding is about no feature.
_ALWAYS_FEATURE = (constants.SKEW, constants.LABEL_PROXY)


def code_key(check: str) -> str:
  """'code' for the loss check, 'kind' for the others: the key report.json uses for a finding's code."""
  return _CODE_KEYS.get(check, 'kind')


@dataclasses.dataclass(frozen=True)
class Coverage:
  """What a check really compared: how many features (None when it does not say) and examples per split."""
  features: Optional[int]
  examples: Mapping[str, int] = dataclasses.field(default_factory=dict)

  def unchecked_reason(self) -> Optional[str]:
    """Why this coverage proves nothing (no feature, a split without examples), or None when it is real."""
    if self.features is None:
      return 'its result does not say what it compared'
    if self.features < 1:
      return 'it compared no feature'
    empty = sorted(split for split, n in self.examples.items() if int(n) < 1)
    if empty:
      return f'split(s) {", ".join(empty)} had no examples'
    return None


@runtime_checkable
class CheckDetails(Protocol):
  """A check's own numbers: the one place its report.json keys are spelled, what it compared, its headline."""

  def to_dict(self) -> Dict[str, Any]:
    """The check's report.json keys beside status, reason and findings."""

  def coverage(self) -> Coverage:
    """What the check really compared (decides a pass from not_checked)."""

  def headline(self) -> Dict[str, Any]:
    """The few numbers progress, the summaries, the CLI and the MLMD properties show."""


@dataclasses.dataclass(frozen=True)
class Finding:
  """One problem a check found. `details` holds the numbers behind the message (splits, values, thresholds...)."""
  check: str
  code: str
  severity: Severity
  message: str
  feature: Optional[str] = None
  details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.check not in CHECK_NAMES:
      raise ValueError(f'check must be one of {CHECK_NAMES}. Got {self.check!r} instead.')
    if self.severity not in constants.SEVERITIES:
      raise ValueError(f'severity must be one of {tuple(map(str, Severity))}. Got {self.severity!r} instead.')
    object.__setattr__(self, 'severity', Severity(self.severity))
    reserved = {'severity', 'message', 'feature', code_key(self.check)} & set(self.details)
    if reserved:
      raise ValueError(f'details must not set {", ".join(sorted(reserved))}: they are fields of the finding.')

  def to_dict(self) -> Dict[str, Any]:
    """The finding as report.json holds it, e.g. {severity, message, kind, feature, ...details}."""
    result: Dict[str, Any] = {'severity': self.severity, 'message': self.message, code_key(self.check): self.code}
    if self.feature is not None or self.check in _ALWAYS_FEATURE:
      result['feature'] = self.feature
    result.update(self.details)
    return result


@dataclasses.dataclass(frozen=True)
class SkippedDetails:
  """The keys a check that did not run still reports (e.g. the loss check's module_file, label_proxy's task)."""
  fields: Mapping[str, Any]

  def to_dict(self) -> Dict[str, Any]:
    return dict(self.fields)

  def coverage(self) -> Coverage:
    return Coverage(0)

  def headline(self) -> Dict[str, Any]:
    return {}


@dataclasses.dataclass(frozen=True)
class CheckResult:
  """What one check returns: its status, its findings, why it did not run (skipped) and its own numbers."""
  status: Status
  findings: Tuple[Finding, ...] = ()
  reason: Optional[str] = None
  details: Optional[CheckDetails] = None

  def __post_init__(self):
    if self.status not in constants.STATUS_RANK:
      raise ValueError(f'status must be one of {tuple(map(str, Status))}. Got {self.status!r} instead.')
    object.__setattr__(self, 'status', Status(self.status))
    if self.status == Status.SKIPPED and not self.reason:
      raise ValueError('A skipped check must say why (reason).')
    reserved = {'status', 'findings', 'reason'} & set(self.details_dict())
    if reserved:
      raise ValueError(f'details must not set {", ".join(sorted(reserved))}: they are fields of the result.')

  @classmethod
  def skipped(cls, reason: str, **details: Any) -> CheckResult:
    """A check that did not run. Never a pass: a skipped check proves nothing."""
    return cls(status=Status.SKIPPED, reason=reason, details=SkippedDetails(details) if details else None)

  def details_dict(self) -> Dict[str, Any]:
    """The check's own report.json keys (beside status, reason and findings)."""
    return {} if self.details is None else self.details.to_dict()

  def coverage(self, check: str) -> Coverage:
    """What `check` (this result's name) really compared."""
    return Coverage(None) if self.details is None else self.details.coverage()

  def headline(self) -> Dict[str, Any]:
    """The check's headline numbers ({} when it has none)."""
    return {} if self.details is None else self.details.headline()

  def unchecked_reason(self, check: str) -> Optional[str]:
    """Why this result proves nothing (it did not run, compared no feature, or saw a split without examples), or None
    when it really compared something. The one definition of "checked" behind every verdict."""
    if self.status in (Status.SKIPPED, Status.NOT_CHECKED):
      return self.reason or 'did not run'
    return self.coverage(check).unchecked_reason()

  def settled(self, check: str) -> CheckResult:
    """This result, a pass that compared nothing turned into not_checked with the reason."""
    if self.status == Status.PASS:
      reason = self.unchecked_reason(check)
      if reason:
        return dataclasses.replace(self, status=Status.NOT_CHECKED, reason=reason)
    return self

  def to_dict(self) -> Dict[str, Any]:
    """The check as report.json holds it under checks.<name>: {status, [reason], findings, ...details}."""
    result: Dict[str, Any] = {'status': self.status}
    if self.reason is not None:
      result['reason'] = self.reason
    result['findings'] = [f.to_dict() for f in self.findings]
    result.update(self.details_dict())
    return result


def worst(statuses: Iterable[str]) -> Status:
  """The most severe of `statuses`, ignoring skipped ones; pass when nothing ran or nothing was found."""
  ranked = [Status(s) for s in statuses if constants.STATUS_RANK[s] >= 0]
  return max(ranked, key=constants.STATUS_RANK.__getitem__) if ranked else Status.PASS


def status_for(findings: Iterable[Finding], mode: str) -> Status:
  """A check's status from its findings under its mode: 'warn' mode never blocks, 'off' never runs."""
  if mode == 'off':
    return Status.SKIPPED
  status = worst(f.severity for f in findings)
  return Status.WARN if mode == 'warn' and status == Status.BLOCK else status


NOT_RUN = CheckResult.skipped('not run')


def settled_checks(checks: Mapping[str, CheckResult]) -> Dict[str, CheckResult]:
  """Every check of CHECK_NAMES in report order (missing ones skipped), a pass that compared nothing not_checked."""
  return {name: (checks.get(name) or NOT_RUN).settled(name) for name in CHECK_NAMES}


def verdict_of(checks: Mapping[str, CheckResult]) -> Status:
  """block when any check blocks; else pass/warn only if at least one check compared something; else not_checked."""
  verdict = worst(c.status for c in checks.values())
  if verdict == Status.BLOCK:
    return verdict
  if all(check.unchecked_reason(name) for name, check in checks.items()):
    return Status.NOT_CHECKED
  return verdict


def not_checked_reason(checks: Mapping[str, CheckResult]) -> str:
  """The message of a not_checked verdict: every check and why it proves nothing."""
  return 'nothing was checked: ' + '; '.join(f'{name}: {check.unchecked_reason(name)}'
                                             for name, check in checks.items())


def report_dict(checks: Mapping[str, CheckResult], train_split: str, eval_splits: Iterable[str],
                inputs: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
  """report.json's content but config: every check in CHECK_NAMES (missing ones as skipped), decided typed first."""
  settled = settled_checks(checks)
  verdict = verdict_of(settled)
  result = {
      'version': REPORT_VERSION,
      'verdict': verdict,
      'splits': {'train': train_split, 'eval': list(eval_splits)},
      'inputs': dict(inputs or {}),
      'checks': {name: check.to_dict() for name, check in settled.items()},
  }
  if verdict == Status.NOT_CHECKED:
    result['verdict_reason'] = not_checked_reason(settled)
  return result


@dataclasses.dataclass(frozen=True)
class Report:
  """A run's outcome before it is written: each check's result, the splits, the configuration and inputs it ran
  with, and the statistics (split -> DatasetFeatureStatisticsList) the statistics pages are drawn from. report.json
  is `to_dict()`; the statistics are not part of it."""
  checks: Mapping[str, CheckResult]
  train_split: str
  eval_splits: Sequence[str]
  config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  inputs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  statistics: Optional[Mapping[str, Any]] = None

  def to_dict(self) -> Dict[str, Any]:
    """report.json's content: verdict, splits, inputs, every check (missing ones as skipped), config."""
    result = report_dict(self.checks, self.train_split, self.eval_splits, self.inputs)
    result['config'] = dict(self.config)
    return result
