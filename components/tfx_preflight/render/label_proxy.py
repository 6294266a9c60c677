"""The label-proxy check in report.html: the strongest single features per eval split with their score and the
baseline. Fed by the report's label_proxy dict; everything escaped."""

from __future__ import annotations

from typing import Any, Mapping

from tfx_preflight import constants
from tfx_preflight.render.escape import esc


def render_html(result: Mapping[str, Any]) -> str:
  """The strongest features per eval split, with their score and the baseline; everything escaped."""
  if result.get('status') == constants.SKIPPED or 'scores' not in result:
    return ''
  parts = [f'<p>Label <code>{esc(result.get("label_key"))}</code>: {esc(result.get("task"))} '
           f'({esc(result.get("task_reason"))}); each feature fitted alone on train, scored on eval.</p>']
  for split, rows in sorted(result['scores'].items()):
    body = ''.join(f'<tr><td>{esc(r["feature"])}</td><td>{esc(r["feature_kind"])}</td><td>{esc(r["metric"])}</td>'
                   f'<td>{r["eval_score"]:.4f}</td><td>{r["baseline"]:.4f}</td><td>{r["skill"]:.3f}</td>'
                   f'<td>{esc(r["eval_examples"])}</td></tr>' for r in rows)
    parts.append(f'<h3>Strongest single features on {esc(split)}</h3><table><tr><th>feature</th><th>kind</th>'
                 f'<th>metric</th><th>eval score</th><th>baseline</th><th>skill</th><th>eval examples</th></tr>'
                 f'{body}</table>')
  skipped = result.get('skipped_features') or {}
  if skipped:
    parts.append('<p>Not scored: ' + '; '.join(f'<code>{esc(k)}</code> ({esc(v)})' for k, v in sorted(skipped.items()))
                 + '</p>')
  return ''.join(parts)
