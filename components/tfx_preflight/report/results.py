"""Typed check results: `Finding` and `CheckResult`, one shape for every check, turned into report.json's dicts in
one place (`to_dict`).

Every check (skew, leakage, loss, label_proxy) returns a `CheckResult`; `report.build_report` turns them into
report.json's dicts (it still takes a plain dict too, for a check written elsewhere, with the same bytes).
report.json's contract is kept: a finding's code is written as `kind` (skew, leakage, label_proxy) or `code` (loss),
and skew and label_proxy findings always carry `feature` (null for a dataset-level finding).
Light module: no TensorFlow, TFX or Beam import.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from tfx_preflight import constants

# The report.json key under which each check writes a finding's code (report.py's contract).
_CODE_KEYS = {constants.LOSS: 'code'}
# Checks whose findings always hold a `feature` key in report.json, null when the finding is about no feature.
_ALWAYS_FEATURE = (constants.SKEW, constants.LABEL_PROXY)


def code_key(check: str) -> str:
  """'code' for the loss check, 'kind' for the others: the key report.json uses for a finding's code."""
  return _CODE_KEYS.get(check, 'kind')


@dataclasses.dataclass(frozen=True)
class Finding:
  """One problem a check found. `details` holds the numbers behind the message (splits, values, thresholds...)."""
  check: str
  code: str
  severity: str
  message: str
  feature: Optional[str] = None
  details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.check not in constants.CHECK_NAMES:
      raise ValueError(f'check must be one of {constants.CHECK_NAMES}. Got {self.check!r} instead.')
    if self.severity not in constants.SEVERITIES:
      raise ValueError(f'severity must be one of {constants.SEVERITIES}. Got {self.severity!r} instead.')
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
class CheckResult:
  """What one check returns: its status, its findings, why it did not run (skipped) and its own numbers."""
  status: str
  findings: Tuple[Finding, ...] = ()
  reason: Optional[str] = None
  details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.status not in constants.STATUS_RANK:
      raise ValueError(f'status must be one of {tuple(constants.STATUS_RANK)}. Got {self.status!r} instead.')
    if self.status == constants.SKIPPED and not self.reason:
      raise ValueError('A skipped check must say why (reason).')
    reserved = {'status', 'findings', 'reason'} & set(self.details)
    if reserved:
      raise ValueError(f'details must not set {", ".join(sorted(reserved))}: they are fields of the result.')

  @classmethod
  def skipped(cls, reason: str, **details: Any) -> CheckResult:
    """A check that did not run. Never a pass: a skipped check proves nothing."""
    return cls(status=constants.SKIPPED, reason=reason, details=details)

  def to_dict(self) -> Dict[str, Any]:
    """The check as report.json holds it under checks.<name>: {status, [reason], findings, ...details}."""
    result: Dict[str, Any] = {'status': self.status}
    if self.reason is not None:
      result['reason'] = self.reason
    result['findings'] = [f.to_dict() for f in self.findings]
    result.update(self.details)
    return result


def severity_of(finding: Union[Finding, Mapping[str, Any]]) -> str:
  """A finding's severity, whether a Finding or its report.json dict."""
  return finding.severity if isinstance(finding, Finding) else finding['severity']


def as_dict(check: Union[CheckResult, Mapping[str, Any]]) -> Dict[str, Any]:
  """A check's result as a fresh dict, whether a CheckResult or a dict from a check not yet typed."""
  return check.to_dict() if isinstance(check, CheckResult) else dict(check)


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
    from tfx_preflight.report import build as report  # report.py imports this module.
    result = report.build_report(self.checks, self.train_split, self.eval_splits, self.inputs)
    result['config'] = dict(self.config)
    return result
