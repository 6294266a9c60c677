"""The label-proxy check in report.html: the strongest single features per eval split with their score and the
baseline, and what the pair search compared with the pairs that gained most. Fed by the report's label_proxy dict;
everything escaped."""

from __future__ import annotations

from typing import Any, Mapping

from tfx_preflight import constants
from tfx_preflight.report.render.escape import esc


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
  parts.extend(_pairs_html(split, search) for split, search in sorted((result.get('pairs') or {}).items()))
  skipped = result.get('skipped_features') or {}
  if skipped:
    parts.append('<p>Not scored: ' + '; '.join(f'<code>{esc(k)}</code> ({esc(v)})' for k, v in sorted(skipped.items()))
                 + '</p>')
  return ''.join(parts)


def _pairs_html(split: str, search: Mapping[str, Any]) -> str:
  """What the pair search compared on one eval split and the pairs that gained most over their features alone."""
  sample = search.get('sample') or {}
  intro = (f'<p>Pairs on {esc(split)}: {esc(search.get("pairs_scored"))} pairs of the candidate features '
           f'{", ".join(f"<code>{esc(c)}</code>" for c in search.get("candidates") or [])}; rules tried: '
           f'{esc(", ".join(search.get("forms") or []))}; fitted on {esc(sample.get("train"))} sampled train '
           f'examples, scored on {esc(sample.get("eval"))} sampled eval examples.</p>')
  rows = ''.join(
      f'<tr><td>{esc(" + ".join(r["features"]))}</td><td>{esc(r["rule"])}</td><td>{esc(r["metric"])}</td>'
      f'<td>{r["eval_score"]:.4f}</td><td>{" / ".join(f"{a:.4f}" for a in r["alone"])}</td>'
      f'<td>{r["honest_pair"]:.4f}</td><td>{r["baseline"]:.4f}</td><td>{"block" if r.get("blocks") else ""}</td></tr>'
      for r in search.get('best') or [])
  if not rows:
    return intro
  return (intro + f'<h3>Strongest pairs on {esc(split)}</h3><table><tr><th>features</th><th>rule</th><th>metric</th>'
          f'<th>eval score</th><th>alone</th><th>best pair without either</th><th>baseline</th><th></th></tr>'
          f'{rows}</table>')
