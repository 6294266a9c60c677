"""report.html: the verdict, each check's findings and the check's own pictures, every value escaped.

Feature names, values and messages come from user data: everything goes through `html.escape`, and the page has a
Content-Security-Policy that forbids scripts, so a feature named `<script>` is text, never code.
"""

from __future__ import annotations

import html
import json
from typing import Any, Mapping

from tfx_preflight import report as report_lib

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
.verdict{font-size:1.6em;padding:.4em .8em;border-radius:6px;display:inline-block}
.pass{background:#d7f5dd}.warn{background:#fff1c2}.block{background:#ffd6d6}.skipped{background:#eee}
.not_checked{background:#ffe0b3}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;
vertical-align:top}th{background:#f4f4f4}code{background:#f4f4f4;padding:0 .2em}
"""

# Findings keys shown as their own columns; the rest go into a details column.
_MAIN_KEYS = ('severity', 'kind', 'code', 'feature', 'message')


def esc(value: Any) -> str:
  """Escapes any value for HTML text or attribute context."""
  return html.escape(str(value), quote=True)


def _plain(value: Any) -> str:
  """Nested numbers as compact JSON rather than Python reprs."""
  if isinstance(value, (dict, list, tuple)):
    return json.dumps(value, sort_keys=True, default=str, separators=(', ', ': '))
  return str(value)


def findings_table(findings: list) -> str:
  if not findings:
    return '<p>No findings.</p>'
  rows = []
  for f in findings:
    tag = f.get('kind') or f.get('code') or ''
    details = '<br>'.join(f'{esc(k)}: {esc(_plain(v))}' for k, v in sorted(f.items()) if k not in _MAIN_KEYS)
    rows.append(f'<tr><td class="{esc(f["severity"])}">{esc(f["severity"])}</td><td>{esc(tag)}</td>'
                f'<td>{esc(f.get("feature") or "")}</td><td>{esc(f["message"])}</td><td>{details}</td></tr>')
  return ('<table><tr><th>severity</th><th>kind</th><th>feature</th><th>message</th><th>details</th></tr>'
          + ''.join(rows) + '</table>')


def render(report: Mapping[str, Any], fragments: Mapping[str, str]) -> str:
  """The whole page. `fragments[check]` is check-specific HTML that its module has already escaped."""
  verdict = report['verdict']
  sections = []
  for name in report_lib.CHECK_NAMES:
    check = report['checks'][name]
    status = check['status']
    reason = f' <small>({esc(check["reason"])})</small>' if check.get('reason') else ''
    sections.append(f'<h2>{esc(name)}: <span class="{esc(status)}">{esc(status)}</span>{reason}</h2>'
                    + findings_table(check.get('findings', [])) + fragments.get(name, ''))
  splits = report['splits']
  return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
          '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
          'img-src data:">'
          f'<title>tfx-preflight: {esc(verdict)}</title><style>{_STYLE}</style></head><body>'
          f'<h1>tfx-preflight report</h1><p class="verdict {esc(verdict)}">verdict: {esc(verdict)}</p>'
          + (f'<p>{esc(report["verdict_reason"])}</p>' if report.get('verdict_reason') else '')
          + f'<p>train split <code>{esc(splits["train"])}</code> compared with '
          + ', '.join(f'<code>{esc(s)}</code>' for s in splits['eval']) + '</p>'
          + ''.join(sections) + '</body></html>\n')
