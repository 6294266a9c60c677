"""The report contract's files: report.json written canonically and without half-written files, the blessing rule,
and the findings summary of logs and the CLI. Statuses and the verdict are decided on typed results (results.py).

Users parse report.json in their CI, so the keys here are stable (add freely, never rename):

  verdict: "pass" | "warn" | "block" | "not_checked"
  verdict_reason: why nothing was checked (only with verdict "not_checked")
  checks.<skew|leakage|loss|label_proxy>.status: "pass" | "warn" | "block" | "skipped" | "not_checked"
  checks.<name>.findings[]: {severity, message, kind (skew, leakage, label_proxy) or code (loss), ...}
  checks.label_proxy.findings[]: also {feature, eval_split, metric, eval_score, baseline, skill, ...}
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, List, Mapping, Optional

from tfx_preflight import constants
from tfx_preflight.config import CHECK_NAMES
from tfx_preflight.constants import Status
from tfx_preflight.report import results, summaries


def build_report(checks: Mapping[str, results.CheckResult], train_split: str, eval_splits: Iterable[str],
                 inputs: Optional[Mapping[str, Any]] = None) -> dict:
  """report.json's content but config; every check in CHECK_NAMES is present, missing ones as skipped."""
  return results.report_dict(checks, train_split, eval_splits, inputs)


def is_blessed(report: Mapping[str, Any]) -> bool:
  """Only an earned pass or warn blesses: block and not_checked (and any verdict unknown here) do not."""
  return report['verdict'] in constants.BLESSED_VERDICTS


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
    unproven = check['status'] in (Status.SKIPPED, Status.NOT_CHECKED)
    extra = f' ({check["reason"]})' if unproven and check.get('reason') else ''
    lines.append(f'  {name}: {check["status"]}{extra}')
    ordered = summaries.ordered_findings(check)
    for f in ordered[:limit]:  # A check in warn mode blocks nothing: its findings are shown as warnings.
      lines.append(f'    [{summaries.shown_severity(check, f)}] {summaries.shown_tag(check, f)}: {f["message"]}')
    if len(ordered) > limit:
      lines.append(f'    ... and {len(ordered) - limit} more in the report')
  return lines

