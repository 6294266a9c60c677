"""report.html: the verdict, each check's findings and the check's own pictures, every value escaped.

Feature names, values and messages come from user data: everything goes through `escape.esc`, and the page has a
Content-Security-Policy that forbids scripts, so a feature named `<script>` is text, never code.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from tfx_preflight import constants
from tfx_preflight.config import CHECK_NAMES
from tfx_preflight.report import summaries
from tfx_preflight.report.render.escape import esc, number

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
.verdict{font-size:1.6em;padding:.4em .8em;border-radius:6px;display:inline-block}
.pass{background:#d7f5dd}.warn{background:#fff1c2}.block{background:#ffd6d6}.skipped{background:#eee}
.within_noise{background:#fdf6e3}
.not_checked{background:#ffe0b3}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;
vertical-align:top}th{background:#f4f4f4}code{background:#f4f4f4;padding:0 .2em}
table.kv{margin:0;font-size:.9em}table.kv td{border:none;border-bottom:1px solid #eee;padding:.05em .4em}
table.kv td:first-child{color:#555;white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}
.track{display:inline-block;width:5em;height:.7em;background:linear-gradient(90deg,#eee 50%,#f6dada 50%);
vertical-align:middle;margin-left:.4em}.bar{display:block;height:100%;background:#4a7ebb}.bar.over{background:#c0392b}
"""

# Findings keys shown as their own columns; the rest go into a details column.
_MAIN_KEYS = ('severity', 'kind', 'code', 'feature', 'message')
def scalar(value: Any) -> str:
  """A number or a list of numbers as text, '–' for none."""
  if value is None:
    return '&ndash;'
  if isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list, tuple)) for v in value):
    return ', '.join(number(v) for v in value)
  return number(value)


def key_values(mapping: Mapping[str, Any]) -> str:
  """A dict as readable key/value rows (nested dicts and lists of dicts as nested rows), never a dict dump."""
  rows = []
  for key, value in sorted(mapping.items(), key=lambda kv: str(kv[0])):
    if isinstance(value, Mapping):
      shown = key_values(value) if value else '&ndash;'
    elif isinstance(value, (list, tuple)) and any(isinstance(v, (Mapping, list, tuple)) for v in value):
      shown = ''.join(key_values(v) if isinstance(v, Mapping) else scalar(v) for v in value)
    else:
      shown = scalar(value)
    rows.append(f'<tr><td>{esc(key)}</td><td>{shown}</td></tr>')
  return '<table class="kv">' + ''.join(rows) + '</table>' if rows else ''


def split_numbers(train: Mapping[str, Any], other: Mapping[str, Any], splits: list) -> str:
  """A skew finding's numbers of both splits as one table: statistic | train | eval."""
  names = [str(n) for n in (splits + ['train', 'eval'])[:2]]
  rows = ''.join(f'<tr><td>{esc(k)}</td><td class="num">{scalar(train.get(k))}</td>'
                 f'<td class="num">{scalar(other.get(k))}</td></tr>'
                 for k in sorted(set(train) | set(other), key=str))
  return (f'<table class="kv"><tr><td></td><td><b>{esc(names[0])}</b></td><td><b>{esc(names[1])}</b></td></tr>'
          + rows + '</table>')


def findings_table(findings: list, check: Optional[Mapping[str, Any]] = None) -> str:
  """The findings of `check`; one of a check in warn mode is shown as the warning it was (it blocked nothing)."""
  if not findings:
    return '<p>No findings.</p>'
  check = check or {}
  rows = []
  for f in findings:
    tag = summaries.shown_tag(check, f)
    severity = summaries.shown_severity(check, f)
    side_by_side = isinstance(f.get('train'), Mapping) and isinstance(f.get('eval'), Mapping)
    hidden = _MAIN_KEYS + (('train', 'eval') if side_by_side else ())
    details = key_values({k: v for k, v in f.items() if k not in hidden})
    if side_by_side:
      details += split_numbers(f['train'], f['eval'], f.get('splits') or ['train', 'eval'])
    rows.append(f'<tr><td class="{esc(severity)}">{esc(severity)}</td><td>{esc(tag)}</td>'
                f'<td>{esc(f.get("feature") or "")}</td><td>{esc(f["message"])}</td><td>{details}</td></tr>')
  return ('<table><tr><th>severity</th><th>kind</th><th>feature</th><th>message</th><th>details</th></tr>'
          + ''.join(rows) + '</table>')


def _top_finding(check: Mapping[str, Any]) -> str:
  findings = check.get('findings') or []
  if not findings:
    return esc(check.get('reason') or ('no findings' if check.get('status') == constants.PASS else ''))
  f = sorted(findings, key=lambda f: f['severity'] != constants.BLOCK)[0]
  more = f' <small>(+{len(findings) - 1} more)</small>' if len(findings) > 1 else ''
  return f'[{esc(summaries.shown_severity(check, f))}] {esc(f["message"])}{more}'


def overview(report: Mapping[str, Any]) -> str:
  """Each check's status and its top finding, at the top of the page."""
  rows = []
  for name in CHECK_NAMES:
    check = report['checks'][name]
    status = check['status']
    rows.append(f'<tr><td><a href="#check-{esc(name)}">{esc(name)}</a></td>'
                f'<td class="{esc(status)}">{esc(status)}</td><td>{_top_finding(check)}</td></tr>')
  return '<table class="overview"><tr><th>check</th><th>status</th><th>top finding</th></tr>' + ''.join(rows) + '</table>'


def artifacts_table(report: Mapping[str, Any]) -> str:
  """The Examples artifacts read (a span window: every span Trainer reads), with the examples of each split."""
  artifacts = (report.get('inputs') or {}).get('examples_artifacts') or []
  if not artifacts:
    return ''
  splits = [report['splits']['train'], *report['splits']['eval']]
  head = ''.join(f'<th>{esc(s)}</th>' for s in splits)
  rows = ''.join(
      f'<tr><td class="num">{number(a["span"])}</td><td class="num">{number(a["version"])}</td>'
      + ''.join(f'<td class="num">{scalar((a.get("examples") or {}).get(s))}</td>' for s in splits)
      + f'<td><code>{esc(a["uri"])}</code></td></tr>' for a in artifacts)
  return (f'<p>{len(artifacts)} Examples artifact(s) read, each split of every one:</p>'
          f'<table class="kv"><tr><th>span</th><th>version</th>{head}<th>uri</th></tr>{rows}</table>')


def count_differences(inputs: Mapping[str, Any]) -> str:
  """Inputs that count a few examples more or fewer than the examples hold (inside the tolerance): shown, since a
  difference means they were not made from exactly these examples."""
  rows = [d for d in inputs.get('count_differences') or [] if isinstance(d, Mapping)]
  if not rows:
    return ''
  body = ''.join(f'<tr><td>{esc(d.get("input"))}</td><td>{esc(d.get("split"))}</td><td>{number(d.get("listed"))}'
                 f'</td><td>{number(d.get("counted"))}</td></tr>' for d in rows)
  return ('<p>Inputs that count other examples than the examples hold (inside the tolerance):</p><table><tr>'
          '<th>input</th><th>split</th><th>its count</th><th>examples read</th></tr>' + body + '</table>')


def render(report: Mapping[str, Any], fragments: Mapping[str, str]) -> str:
  """The whole page. `fragments[check]` is check-specific HTML that its module has already escaped."""
  verdict = report['verdict']
  sections = []
  for name in CHECK_NAMES:
    check = report['checks'][name]
    status = check['status']
    reason = f' <small>({esc(check["reason"])})</small>' if check.get('reason') else ''
    sections.append(f'<h2 id="check-{esc(name)}">{esc(name)}: <span class="{esc(status)}">{esc(status)}</span>'
                    f'{reason}</h2>' + findings_table(check.get('findings', []), check) + fragments.get(name, ''))
  splits = report['splits']
  return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
          '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
          'img-src data:">'
          f'<title>tfx-preflight: {esc(verdict)}</title><style>{_STYLE}</style></head><body>'
          f'<h1>tfx-preflight report</h1><p class="verdict {esc(verdict)}">verdict: {esc(verdict)}</p>'
          + (f'<p>{esc(report["verdict_reason"])}</p>' if report.get('verdict_reason') else '')
          + f'<p>train split <code>{esc(splits["train"])}</code> compared with '
          + ', '.join(f'<code>{esc(s)}</code>' for s in splits['eval']) + '</p>' + artifacts_table(report)
          + count_differences(report.get('inputs') or {}) + overview(report) + ''.join(sections) + '</body></html>\n')
