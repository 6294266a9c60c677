"""The leakage check in report.html: a table per split pair (exact, near, group) with a few sample examples, and the
within-split counts. Fed by the report's leakage dict; every value escaped."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from tfx_preflight import constants
from tfx_preflight.checks.leakage import picture
from tfx_preflight.report.render.escape import esc

EXACT = constants.LEAKAGE_EXACT
GROUP = constants.LEAKAGE_GROUP

def _where(pair: Mapping[str, Any], s: Mapping[str, Any]) -> str:
  """The sample's file and record (#index), or CSV file and line (:line) once relocated, and its train copy's."""
  at, train_at = (f':{esc(s["line"])}' if 'line' in s else f' #{esc(s["index"])}',
                  f':{esc(s["train_line"])}' if 'train_line' in s else f' #{esc(s["train_index"])}')
  return f'{esc(s["file"])}{at}<br><small>{esc(pair["splits"][0])}: {esc(s["train_file"])}{train_at}</small>'


def _sample_rows(pair: Mapping[str, Any], kind: str) -> str:
  rows = []
  for s in pair.get('samples', []):
    where = _where(pair, s)
    if kind == GROUP:
      content = f'<code>{esc(s.get("group"))}</code>'
    else:
      content = ', '.join(f'<code>{esc(k)}</code>={esc(v)}' for k, v in s.get('features', {}).items())
      if 'label' in s:
        content += f'<br>label={esc(s["label"])}' + (' <b>(label conflict)</b>' if s.get('label_conflict') else '')
    copies = f'{esc(s["copies_in_b"])} / {esc(s["copies_in_a"])}'
    rows.append(f'<tr><td>{where}</td><td>{copies}</td><td>{content}</td></tr>')
  if not rows:
    return ''
  return ('<table><tr><th>example (eval file #record; train copy)</th><th>copies eval / train</th><th>content</th></tr>'
          + ''.join(rows) + '</table>')


def _pairs_table(title: str, pairs: Sequence[Mapping[str, Any]], kind: str) -> str:
  columns = [('duplicate_examples', 'examples of b'), ('fraction_of_b', 'fraction of b')]
  columns += [('shared_groups', 'shared groups')] if kind == GROUP else [('unique_duplicates', 'distinct contents')]
  columns += [('label_conflicts', 'label conflicts'), ('leaked_fraction', 'leaked (beyond chance, exact + near)')] \
      if kind == EXACT else []
  columns += [('examples_in_a_involved', 'examples of a')]
  header = '<tr><th>a</th><th>b</th>' + ''.join(f'<th>{esc(label)}</th>' for _, label in columns) + '</tr>'
  body = ''.join('<tr><td>' + esc(p['splits'][0]) + '</td><td>' + esc(p['splits'][1]) + '</td>'
                 + ''.join(f'<td>{esc(p.get(key, ""))}</td>' for key, _ in columns) + '</tr>' for p in pairs)
  samples = ''.join(_sample_rows(p, kind) for p in pairs)
  return f'<h3>{esc(title)}</h3><table>{header}{body}</table>{_chance_notes(pairs)}{samples}'


def _near_sample_rows(pair: Mapping[str, Any]) -> str:
  """Eval and train example side by side with the pair's distances and thresholds."""
  rows = []
  for s in pair.get('samples', []):
    where = _where(pair, s)
    distances = '<br>'.join(f'{esc(name)} = {esc(value)} &le; {esc(s["thresholds"][name])}'
                            for name, value in s['distances'].items())
    if not s['distances']:
      distances = 'ints and short strings equal'
    if s.get('exact'):
      distances += '<br><b>exact copy</b>'
    cells = []
    for prefix in ('', 'train_'):
      content = ', '.join(f'<code>{esc(k)}</code>={esc(v)}' for k, v in s.get(prefix + 'features', {}).items())
      if prefix + 'label' in s:
        content += f'<br>label={esc(s[prefix + "label"])}'
      cells.append(f'<td>{content}</td>')
    conflict = ' <b>(label conflict)</b>' if s.get('label_conflict') else ''
    drawn = ''.join(picture.side_by_side(name, p) for name, p in sorted((s.get('pictures') or {}).items())
                    if isinstance(p, Mapping))
    rows.append(f'<tr><td>{where}</td><td>{distances}{conflict}</td>{"".join(cells)}</tr>'
                + (f'<tr><td></td><td colspan="3">{drawn}</td></tr>' if drawn else ''))
  if not rows:
    return ''
  return ('<table><tr><th>example (eval file #record; train copy)</th><th>distance &le; threshold</th>'
          '<th>eval example</th><th>train example</th></tr>' + ''.join(rows) + '</table>')


def _near_table(pairs: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> str:
  columns = [('duplicate_examples', 'examples of b'), ('near_only_examples', 'near only (not exact)'),
             ('fraction_of_b', 'fraction of b'), ('label_conflicts', 'label conflicts'),
             ('near_only_label_conflicts', 'near-only label conflicts')]
  header = '<tr><th>a</th><th>b</th>' + ''.join(f'<th>{esc(label)}</th>' for _, label in columns) + '</tr>'
  body = ''.join('<tr><td>' + esc(p['splits'][0]) + '</td><td>' + esc(p['splits'][1]) + '</td>'
                 + ''.join(f'<td>{esc(p.get(key, ""))}</td>' for key, _ in columns) + '</tr>' for p in pairs)
  rules = ''.join(f'<li>{esc(group)}: {esc(s.get("distance"))} &le; {esc(s.get("threshold"))}'
                  + (f'<br><b>not compared</b>: {esc(s["not_compared"])}' if s.get('not_compared') else '') + '</li>'
                  for group, s in settings.items() if isinstance(s, Mapping))
  samples = ''.join(_near_sample_rows(p) for p in pairs)
  return (f'<h3>Near-duplicates across splits (verified pairs)</h3><table>{header}{body}</table>{_chance_notes(pairs)}'
          f'<p>A pair counts when every feature group is within its threshold:</p><ul>{rules}</ul>{samples}')


def _history_table(result: Mapping[str, Any]) -> str:
  """Eval examples found in earlier runs' training data (their saved train hashes), and which stores were compared."""
  rows = ''.join(f'<tr><td>{esc(p["splits"][1])}</td><td>{esc(p["duplicate_examples"])}</td>'
                 f'<td>{esc(p["fraction_of_b"])}</td><td>{esc(p["history_only_examples"])}</td></tr>'
                 for p in result['history'])
  stores = ''.join(f'<li><code>{esc(h["path"])}</code>: {esc(h["examples"])} train examples, '
                   + ('compared' if h['compared'] else f'not compared ({esc(h.get("reason", ""))})') + '</li>'
                   for h in result.get('history_artifacts', []))
  samples = ''.join(f'<li>{esc(s["file"])} #{esc(s["index"])} <small>in {esc(s["history"])}</small></li>'
                    for p in result['history'] for s in p.get('samples', []))
  return ('<h3>Eval examples in earlier runs\' training data</h3><table><tr><th>eval split</th><th>examples</th>'
          f'<th>fraction</th><th>not in today\'s train</th></tr>{rows}</table><ul>{stores}</ul>'
          + (f'<ul>{samples}</ul>' if samples else ''))


def _chance_notes(pairs: Sequence[Mapping[str, Any]]) -> str:
  """Per split pair, why its copies count as leakage or not: found, expected by chance, p-value."""
  notes = ''.join(f'<li>{esc(p["splits"][1])}: {esc(p["chance"].get("reason", ""))}</li>' for p in pairs
                  if isinstance(p.get('chance'), Mapping))
  return f'<p>Copies beyond chance (same label):</p><ul>{notes}</ul>' if notes else ''


def render_html(result: Mapping[str, Any]) -> str:
  """A table per split pair (exact, near, group) with a few samples, and within-split counts; all escaped."""
  if result.get('status') == constants.SKIPPED or 'cross_split' not in result:
    return ''
  parts = [_pairs_table('Exact duplicates across splits', result['cross_split'], EXACT)]
  if result.get('near_duplicates'):
    parts.append(_near_table(result['near_duplicates'], result.get('near_settings', {})))
  if result.get('group_leakage'):
    parts.append(_pairs_table(f'Groups ({result.get("group_key")}) shared across splits', result['group_leakage'],
                              GROUP))
  if 'history' in result:
    parts.append(_history_table(result))
  conflicts = result.get('within_split_label_conflicts')
  within = ''.join(f'<tr><td>{esc(s)}</td><td>{esc(n)}</td>'
                   + (f'<td>{esc(conflicts[s]["examples"])}</td>' if conflicts and s in conflicts else '') + '</tr>'
                   for s, n in sorted(result['within_split'].items()))
  conflict_header = '<th>examples whose copies have another label</th>' if conflicts else ''
  parts.append(f'<h3>Duplicates within a split</h3><table><tr><th>split</th><th>repeated examples</th>'
               f'{conflict_header}</tr>{within}</table>')
  parts.append(f'<p>Every duplicate is listed in <code>{esc(result.get("duplicates_file", ""))}</code>.</p>')
  return ''.join(parts)
