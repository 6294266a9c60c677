"""The report contract: findings, check statuses, the verdict, and writing report.json without half-written files.

Users parse report.json in their CI, so the keys here are stable (add freely, never rename):

  verdict: "pass" | "warn" | "block" | "not_checked"
  verdict_reason: why nothing was checked (only with verdict "not_checked")
  checks.<skew|leakage|loss|label_proxy>.status: "pass" | "warn" | "block" | "skipped" | "not_checked"
  checks.<name>.findings[]: {severity, message, kind (skew, leakage, label_proxy) or code (loss), ...}
  checks.label_proxy.findings[]: also {feature, eval_split, metric, eval_score, baseline, skill, ...}

One rule decides what a pass means (`verdict_of`): "pass" or "warn" only when at least one check ran and compared
something real (at least one feature, at least one example of every split; see `unchecked_reason`). A check that ran
but compared nothing has status "not_checked" (with a `reason`) instead of "pass"; when no check compared anything
the verdict is "not_checked", which never blesses. A "block" stays a block: a blocking finding is always earned.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from tfx_preflight import constants
from tfx_preflight.report import results, summaries

REPORT_VERSION = 1
# Aliases of constants.py, kept for the modules that read them from here.
CHECK_NAMES = constants.CHECK_NAMES
SEVERITIES = constants.SEVERITIES
NOT_CHECKED = constants.NOT_CHECKED
_RANK = constants.STATUS_RANK
BLESSED_VERDICTS = constants.BLESSED_VERDICTS

REPORT_JSON = constants.REPORT_JSON
REPORT_HTML = constants.REPORT_HTML


def finding(severity: str, message: str, **details: Any) -> Dict[str, Any]:
  """One problem found by a check. `details` holds the numbers behind the message (feature, splits, values...)."""
  if severity not in SEVERITIES:
    raise ValueError(f'severity must be one of {SEVERITIES}. Got {severity!r} instead.')
  return {'severity': severity, 'message': message, **details}


def worst(statuses: Iterable[str]) -> str:
  """The most severe of `statuses`, ignoring skipped ones; 'pass' when nothing ran or nothing was found."""
  ranked = [s for s in statuses if _RANK[s] >= 0]
  return max(ranked, key=_RANK.__getitem__) if ranked else 'pass'


def status_for(findings: Iterable[Union[results.Finding, Mapping[str, Any]]], mode: str) -> str:
  """A check's status from its findings (results.Finding or their dicts) under its mode: 'warn' mode never blocks,
  'off' never runs."""
  if mode == 'off':
    return 'skipped'
  status = worst(results.severity_of(f) for f in findings)
  if mode == 'warn' and status == 'block':
    return 'warn'
  return status


def skipped(reason: str, **details: Any) -> Dict[str, Any]:
  """The result of a check that did not run. Never 'pass': a skipped check proves nothing."""
  return {'status': 'skipped', 'reason': reason, 'findings': [], **details}


def _compared(name: str, check: Mapping[str, Any]) -> Tuple[Optional[int], Dict[str, int]]:
  """(features compared, examples per split) of a check that ran, read from its result; None features when the check
  does not say. A check may state it as `compared: {features, examples}`; the built-in checks' own keys are read."""
  if isinstance(check.get('compared'), Mapping):
    compared = check['compared']
    return compared.get('features'), dict(compared.get('examples') or {})
  if name == constants.SKEW:
    comparisons = check.get('comparisons') or {}
    per_split = [len(features) for features in comparisons.values()]
    return (min(per_split) if per_split else 0), dict(check.get('num_examples') or {})
  if name == constants.LEAKAGE:
    hashed = check.get('hashed_features') or {}
    return (min((len(f) for f in hashed.values()), default=0)), dict(check.get('examples') or {})
  if name == constants.LOSS:  # The probe ran the module on real batches only when it completed.
    return (1 if check.get('outcome', 'complete') == 'complete' else 0), {}
  return None, {}


def unchecked_reason(name: str, check: Mapping[str, Any]) -> Optional[str]:
  """Why `check` proves nothing (it did not run, compared no feature, or saw a split without examples), or None when
  it really compared something. The one definition of "checked" behind every verdict."""
  if check['status'] in ('skipped', NOT_CHECKED):
    return check.get('reason') or 'did not run'
  features, examples = _compared(name, check)
  if features is None:
    return 'its result does not say what it compared'
  if features < 1:
    return 'it compared no feature'
  empty = sorted(split for split, n in examples.items() if int(n) < 1)
  if empty:
    return f'split(s) {", ".join(empty)} had no examples'
  return None


def _mark_unchecked(checks: Dict[str, Dict[str, Any]]) -> None:
  """A check that ran but compared nothing cannot 'pass': its status becomes not_checked, with the reason."""
  for name, check in checks.items():
    if check['status'] == 'pass':
      reason = unchecked_reason(name, check)
      if reason:
        check['status'], check['reason'] = NOT_CHECKED, reason


def verdict_of(checks: Mapping[str, Mapping[str, Any]]) -> str:
  """block when any check blocks; else pass/warn only if at least one check compared something; else not_checked."""
  verdict = worst(c['status'] for c in checks.values())
  if verdict == 'block':
    return verdict
  if all(unchecked_reason(name, check) for name, check in checks.items()):
    return NOT_CHECKED
  return verdict


def not_checked_reason(checks: Mapping[str, Mapping[str, Any]]) -> str:
  """The message of a not_checked verdict: every check and why it proves nothing."""
  return 'nothing was checked: ' + '; '.join(f'{name}: {unchecked_reason(name, check)}'
                                             for name, check in checks.items())


def build_report(checks: Mapping[str, Union[results.CheckResult, Mapping[str, Any]]], train_split: str,
                 eval_splits: Iterable[str], inputs: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
  """Assembles the report; every check in CHECK_NAMES is present, missing ones as skipped. A check's result is a
  results.CheckResult or (checks not yet typed) its dict; both give the same report."""
  all_checks = {name: results.as_dict(checks.get(name) or skipped('not run')) for name in CHECK_NAMES}
  _mark_unchecked(all_checks)
  result = {
      'version': REPORT_VERSION,
      'verdict': verdict_of(all_checks),
      'splits': {'train': train_split, 'eval': list(eval_splits)},
      'inputs': dict(inputs or {}),
      'checks': all_checks,
  }
  if result['verdict'] == NOT_CHECKED:
    result['verdict_reason'] = not_checked_reason(all_checks)
  return result


def is_blessed(report: Mapping[str, Any]) -> bool:
  """Only an earned pass or warn blesses: block and not_checked (and any verdict unknown here) do not."""
  return report['verdict'] in BLESSED_VERDICTS


def _json_safe(value: Any) -> Any:
  """NaN/Inf are not JSON: write them as strings so every parser reads the report."""
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  if isinstance(value, Mapping):
    return {str(k): _json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(v) for v in value]
  if hasattr(value, 'item') and callable(value.item):  # numpy scalars
    return _json_safe(value.item())
  return value


def to_json(report: Mapping[str, Any]) -> str:
  """Canonical JSON: sorted keys, fixed separators, so the same run gives the same bytes."""
  return json.dumps(_json_safe(report), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + '\n'


def findings_summary(report: Mapping[str, Any], limit: int = 20) -> List[str]:
  """One line per check and per finding, most severe first, for logs, the CLI and fail_on_block errors."""
  lines = [f'verdict: {report["verdict"]}']
  if report.get('verdict_reason'):
    lines[0] += f' ({report["verdict_reason"]})'
  for name in CHECK_NAMES:
    check = report['checks'][name]
    extra = f' ({check["reason"]})' if check['status'] in ('skipped', NOT_CHECKED) and check.get('reason') else ''
    lines.append(f'  {name}: {check["status"]}{extra}')
    ordered = sorted(check.get('findings', []), key=lambda f: -_RANK[f['severity']])
    for f in ordered[:limit]:  # A check in warn mode blocks nothing: its findings are shown as warnings.
      lines.append(f'    [{summaries.shown_severity(check, f)}] {summaries.shown_tag(check, f)}: {f["message"]}')
    if len(ordered) > limit:
      lines.append(f'    ... and {len(ordered) - limit} more in the report')
  return lines

