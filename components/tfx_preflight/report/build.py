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
import os
import uuid
from typing import Any, Iterable, List, Mapping, Optional

from tfx.dsl.io import fileio

from tfx_preflight import constants
from tfx_preflight.constants import Status
from tfx_preflight.report import results, summaries

# TODO(#24): report_dir.py (outside this change) still reads the file name from here; constants.REPORT_JSON is its home.
REPORT_JSON = constants.REPORT_JSON


def status_for(findings: Iterable[results.Finding], mode: str) -> Status:
  """A check's status from its findings under its mode (results.status_for)."""
  return results.status_for(findings, mode)


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
  if report.get('verdict_reason'):
    lines[0] += f' ({report["verdict_reason"]})'
  for name in constants.CHECK_NAMES:
    check = report['checks'][name]
    unproven = check['status'] in (Status.SKIPPED, Status.NOT_CHECKED)
    extra = f' ({check["reason"]})' if unproven and check.get('reason') else ''
    lines.append(f'  {name}: {check["status"]}{extra}')
    ordered = sorted(check.get('findings', []), key=lambda f: -constants.STATUS_RANK[f['severity']])
    for f in ordered[:limit]:  # A check in warn mode blocks nothing: its findings are shown as warnings.
      lines.append(f'    [{summaries.shown_severity(check, f)}] {summaries.shown_tag(check, f)}: {f["message"]}')
    if len(ordered) > limit:
      lines.append(f'    ... and {len(ordered) - limit} more in the report')
  return lines


_TSV_ESCAPES = str.maketrans({'\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r'})


def tsv_field(text: str) -> str:
  """A file or split name as one TSV field: backslash, tab, newline and carriage return escaped as \\\\, \\t, \\n,
  \\r (a file name may hold any of them; unescaped, one would shift or split the row)."""
  return text.translate(_TSV_ESCAPES)
