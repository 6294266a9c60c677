"""The report contract: findings, check statuses, the verdict, and writing report.json without half-written files.

Users parse report.json in their CI, so the keys here are stable (add freely, never rename):

  verdict: "pass" | "warn" | "block"
  checks.<skew|leakage|loss|label_proxy>.status: "pass" | "warn" | "block" | "skipped"
  checks.<name>.findings[]: {severity, message, kind (skew, leakage, label_proxy) or code (loss), ...}
  checks.label_proxy.findings[]: also {feature, eval_split, metric, eval_score, baseline, skill, ...}
"""

from __future__ import annotations

import json
import math
import os
import uuid
from typing import Any, Dict, Iterable, List, Mapping, Optional

from tfx.dsl.io import fileio

REPORT_VERSION = 1
CHECK_NAMES = ('skew', 'leakage', 'loss', 'label_proxy')
SEVERITIES = ('warn', 'block')
_RANK = {'skipped': -1, 'pass': 0, 'warn': 1, 'block': 2}

REPORT_JSON = 'report.json'
REPORT_HTML = 'report.html'


def finding(severity: str, message: str, **details: Any) -> Dict[str, Any]:
  """One problem found by a check. `details` holds the numbers behind the message (feature, splits, values...)."""
  if severity not in SEVERITIES:
    raise ValueError(f'severity must be one of {SEVERITIES}. Got {severity!r} instead.')
  return {'severity': severity, 'message': message, **details}


def worst(statuses: Iterable[str]) -> str:
  """The most severe of `statuses`, ignoring skipped ones; 'pass' when nothing ran or nothing was found."""
  ranked = [s for s in statuses if _RANK[s] >= 0]
  return max(ranked, key=_RANK.__getitem__) if ranked else 'pass'


def status_for(findings: Iterable[Mapping[str, Any]], mode: str) -> str:
  """A check's status from its findings under its mode: 'warn' mode never blocks, 'off' never runs."""
  if mode == 'off':
    return 'skipped'
  status = worst(f['severity'] for f in findings)
  if mode == 'warn' and status == 'block':
    return 'warn'
  return status


def skipped(reason: str, **details: Any) -> Dict[str, Any]:
  """The result of a check that did not run. Never 'pass': a skipped check proves nothing."""
  return {'status': 'skipped', 'reason': reason, 'findings': [], **details}


def verdict_of(checks: Mapping[str, Mapping[str, Any]]) -> str:
  return worst(c['status'] for c in checks.values())


def build_report(checks: Mapping[str, Mapping[str, Any]], train_split: str, eval_splits: Iterable[str],
                 inputs: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
  """Assembles the report; every check in CHECK_NAMES is present, missing ones as skipped."""
  all_checks = {name: dict(checks.get(name) or skipped('not run')) for name in CHECK_NAMES}
  return {
      'version': REPORT_VERSION,
      'verdict': verdict_of(all_checks),
      'splits': {'train': train_split, 'eval': list(eval_splits)},
      'inputs': dict(inputs or {}),
      'checks': all_checks,
  }


def is_blessed(report: Mapping[str, Any]) -> bool:
  return report['verdict'] != 'block'


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


def write_atomically(path: str, content: str) -> None:
  """Writes `content` to a temp file beside `path` and renames it into place: readers never see half a file."""
  directory = os.path.dirname(path)
  if directory:
    fileio.makedirs(directory)
  tmp = os.path.join(directory, f'.{os.path.basename(path)}.tmp-{uuid.uuid4().hex}')
  try:
    with fileio.open(tmp, 'w') as f:
      f.write(content)
    fileio.rename(tmp, path, overwrite=True)
  except BaseException:
    if fileio.exists(tmp):  # A failed write leaves nothing behind, not even the temp file.
      fileio.remove(tmp)
    raise


def findings_summary(report: Mapping[str, Any], limit: int = 20) -> List[str]:
  """One line per check and per finding, most severe first, for logs, the CLI and fail_on_block errors."""
  lines = [f'verdict: {report["verdict"]}']
  for name in CHECK_NAMES:
    check = report['checks'][name]
    extra = f' ({check["reason"]})' if check['status'] == 'skipped' and check.get('reason') else ''
    lines.append(f'  {name}: {check["status"]}{extra}')
    ordered = sorted(check.get('findings', []), key=lambda f: -_RANK[f['severity']])
    for f in ordered[:limit]:
      tag = f.get('kind') or f.get('code') or ''
      lines.append(f'    [{f["severity"]}] {tag}: {f["message"]}')
    if len(ordered) > limit:
      lines.append(f'    ... and {len(ordered) - limit} more in the report')
  return lines
