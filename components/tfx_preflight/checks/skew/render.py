"""The skew check in report.html: train and eval histograms of every flagged feature, the passing features nearest
their threshold overlaid (charts.py), and links to the statistics pages (statistics_page.py).

Fed by the report's skew dict and the statistics; writes nothing itself (`write_statistics_pages` writes the linked
pages, called by run.write_report). Inline SVG only (the report's CSP forbids scripts); every text escaped.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from tfx_preflight import constants
from tfx_preflight.checks.skew import charts, statistics_page
from tfx_preflight.checks.skew import diagnosis as diag
from tfx_preflight.inputs import statistics as statistics_lib
from tfx_preflight.inputs.statistics import StatisticsBySplit
from tfx_preflight.report.render.escape import esc, number, short
from tfx_preflight.report.render.page import scalar

# Rows of the compared-features table; the rest are in report.json (checks.skew.compared).
MAX_COMPARED_ROWS = 500

_SVG_W, _SVG_H, _PAD = 360, 140, 22
_MAX_CATEGORIES = 10
_TRAIN_COLOR, _EVAL_COLOR = '#4a7ebb', '#d9822b'


def _svg(title: str, bars: Sequence[Tuple[str, float]], left_label: str, right_label: str, color: str,
         top: float) -> str:
  """A bar chart of fractions as inline SVG (no script: the report's CSP forbids it); every text escaped. `top` is
  shared by the two charts of a feature so bar heights compare."""
  inner_w, inner_h = _SVG_W - 2 * _PAD, _SVG_H - 2 * _PAD
  top = top or 1
  width = inner_w / max(len(bars), 1)
  rects = []
  for i, (label, value) in enumerate(bars):
    h = inner_h * value / top
    rects.append(f'<rect x="{_PAD + i * width:.1f}" y="{_PAD + inner_h - h:.1f}" width="{max(width - 1, 1):.1f}" '
                 f'height="{h:.1f}" fill="{color}"><title>{esc(label)}: {value:.2%}</title></rect>')
  return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_SVG_W}" height="{_SVG_H}" role="img">'
          f'<text x="{_PAD}" y="14" font-size="11">{esc(title)}</text>'
          f'<text x="{_SVG_W - _PAD}" y="14" font-size="10" text-anchor="end">max {top:.0%}</text>' + ''.join(rects)
          + f'<line x1="{_PAD}" y1="{_SVG_H - _PAD}" x2="{_SVG_W - _PAD}" y2="{_SVG_H - _PAD}" stroke="#888"/>'
          f'<text x="{_PAD}" y="{_SVG_H - 6}" font-size="10">{esc(left_label)}</text>'
          f'<text x="{_SVG_W - _PAD}" y="{_SVG_H - 6}" font-size="10" text-anchor="end">{esc(right_label)}</text>'
          '</svg>')


def _numeric_bars(s: diag.FeatureSummary) -> List[Tuple[str, float]]:
  """One split's own histogram (when the other split has no statistics of the feature)."""
  total = sum(c for _, _, c in s.histogram) or 1
  return [(f'[{short(lo)}, {short(hi)}]', c / total) for lo, hi, c in s.histogram]


def _numeric_svg(split: str, s: diag.FeatureSummary, color: str, top: float) -> str:
  title = f'{split}: mean {short(s.mean)}, std {short(s.std)}, n={s.num_examples}'
  return _svg(title, _numeric_bars(s), short(s.min), short(s.max), color, top)


def _numeric_svgs(train_split: str, train: diag.FeatureSummary, other_split: str, other: diag.FeatureSummary
                  ) -> Optional[Tuple[str, str]]:
  """Both splits on the same bins (charts.shared_bins: cut at both splits' quantile points), so bars line up and a
  shift shows as one, agreement as agreement, heavy tails included."""
  shared = charts.shared_bins((train, other))
  if shared is None:
    return None
  bins, shares = shared
  top = max(max(s) for s in shares)
  labels = [f'[{short(low)}, {short(high)}]' for low, high in bins]
  svgs = []
  for split, s, split_shares, color in ((train_split, train, shares[0], _TRAIN_COLOR),
                                        (other_split, other, shares[1], _EVAL_COLOR)):
    title = f'{split}: median {short(_median(s))}, n={s.num_examples} (shared quantile bins)'
    svgs.append(_svg(title, list(zip(labels, split_shares)), short(bins[0][0]), short(bins[-1][1]), color, top))
  return svgs[0], svgs[1]


def _median(s: diag.FeatureSummary) -> float:
  return s.deciles[len(s.deciles) // 2] if s.deciles else s.mean


def _categorical_svgs(train_split: str, train: diag.FeatureSummary, other_split: str, other: diag.FeatureSummary
                      ) -> Tuple[str, str]:
  """Both splits over the same categories (the most frequent of either), so bars line up."""
  fractions = []
  for s in (train, other):
    total = s.tot_values or 1
    fractions.append({v: c / total for v, c in s.counts})
  categories = sorted(set(fractions[0]) | set(fractions[1]),
                      key=lambda v: (-max(fractions[0].get(v, 0), fractions[1].get(v, 0)), v))[:_MAX_CATEGORIES]
  top = max((f.get(v, 0.0) for f in fractions for v in categories), default=0.0)
  svgs = []
  for split, s, f, color in ((train_split, train, fractions[0], _TRAIN_COLOR),
                             (other_split, other, fractions[1], _EVAL_COLOR)):
    bars = [(v, f.get(v, 0.0)) for v in categories]
    svgs.append(_svg(f'{split}: {s.unique} categories, n={s.num_examples}', bars,
                     categories[0][:16] if categories else '', categories[-1][:16] if categories else '', color, top))
  return svgs[0], svgs[1]


def _feature_pictures(train_split: str, train: Optional[diag.FeatureSummary], other_split: str,
                      other: Optional[diag.FeatureSummary]) -> str:
  """Train and eval charts side by side; the one split's chart and a note when the feature is absent from the other."""
  if train is None or other is None:
    absent_in, where, present, color = ((other_split, train_split, train, _TRAIN_COLOR) if train is not None
                                        else (train_split, other_split, other, _EVAL_COLOR))
    note = f'<p>No statistics of this feature in {esc(absent_in)}.</p>'
    if present is not None and present.numeric and present.histogram:
      return note + _numeric_svg(where, present, color, max(v for _, v in _numeric_bars(present)))
    return note
  if train.categorical and other.categorical:
    left, right = _categorical_svgs(train_split, train, other_split, other)
  else:
    pair = _numeric_svgs(train_split, train, other_split, other) if train.numeric and other.numeric else None
    if pair is None:
      return '<p>No histogram in the statistics of this feature.</p>'
    left, right = pair
  return f'<div style="display:flex;gap:1em">{left}{right}</div>'


def _statistics_html_name(index: int) -> str:
  """statistics.html for the first eval split; numbered names (never user text) for the others."""
  return constants.STATISTICS_HTML if index == 0 else f'statistics-{index + 1}.html'


def _shown(result: Mapping[str, Any], statistics: StatisticsBySplit, train_split: str) -> bool:
  """Pictures and statistics pages only for a skew check that ran, on statistics that have its train split."""
  return result.get('status') != constants.SKIPPED and bool(statistics) and train_split in statistics


def _page_names(statistics: StatisticsBySplit, eval_splits: Sequence[str]) -> List[Tuple[str, str]]:
  """(file name, eval split) of each statistics page, in eval-split order."""
  return [(_statistics_html_name(index), split)
          for index, split in enumerate(s for s in eval_splits if s in statistics)]


def statistics_pages(result: Mapping[str, Any], statistics: StatisticsBySplit, train_split: str,
                     eval_splits: Sequence[str]) -> Dict[str, str]:
  """file name -> statistics.html page (statistics_page.py: static, no Facets scripts from CDNs) of train against
  each eval split; none when the skew check was skipped or there are no statistics. The caller writes them."""
  if not _shown(result, statistics, train_split):
    return {}
  train = statistics_lib.default_slice(statistics, train_split)
  return {name: statistics_page.render(train, statistics_lib.default_slice(statistics, split), train_split, split)
          for name, split in _page_names(statistics, eval_splits)}


def _ratio_bar(ratio: Any) -> str:
  """distance / threshold as a bar in a track whose middle is the threshold (red beyond it); CSS only, no script."""
  if not isinstance(ratio, (int, float)):
    return '<span class="track"><span class="bar over" style="width:100%"></span></span>'
  width = min(float(ratio), 2.0) * 50
  return f'<span class="track"><span class="bar{" over" if ratio > 1 else ""}" style="width:{width:.1f}%"></span></span>'


def compared_table(rows: list) -> str:
  """Every compared feature with its distance, threshold, effect size and status, nearest its threshold first."""
  if not rows:
    return ''
  body = []
  for r in rows[:MAX_COMPARED_ROWS]:
    ratio = r.get('ratio')
    body.append(f'<tr><td>{esc(r.get("split"))}</td><td><code>{esc(r.get("feature"))}</code></td>'
                f'<td>{esc(r.get("metric"))}</td><td class="num">{number(r.get("distance"))}</td>'
                f'<td class="num">{number(r.get("threshold"))}</td>'
                f'<td class="num">{number(ratio) if ratio is not None else "&infin;"} {_ratio_bar(ratio)}</td>'
                f'<td class="num">{scalar(r.get("effect_size"))}</td>'
                f'<td class="{esc(r.get("status"))}">{esc(r.get("status"))}</td></tr>')
  more = (f'<p>... and {len(rows) - MAX_COMPARED_ROWS} more in report.json (checks.skew.compared).</p>'
          if len(rows) > MAX_COMPARED_ROWS else '')
  return ('<h3>Compared features</h3><p>Every feature TFDV compared, nearest its threshold first (distance / '
          'threshold 1 is the threshold; effect size is the shift in spreads, numeric features only).</p>'
          '<table><tr><th>eval split</th><th>feature</th><th>metric</th><th>distance</th><th>threshold</th>'
          '<th>distance / threshold</th><th>effect size</th><th>status</th></tr>' + ''.join(body) + '</table>' + more)


def render_html(result: Mapping[str, Any], statistics: StatisticsBySplit, train_split: str,
                eval_splits: Sequence[str]) -> str:
  """Every compared feature's distance (`compared_table`), then histograms of every flagged feature, train and eval
  side by side, the passing features nearest their threshold overlaid, and links to the statistics pages
  (`statistics_pages`)."""
  return compared_table(result.get('compared') or []) + _pictures(result, statistics, train_split, eval_splits)


def _pictures(result: Mapping[str, Any], statistics: StatisticsBySplit, train_split: str,
              eval_splits: Sequence[str]) -> str:
  if not _shown(result, statistics, train_split):
    return ''
  summaries = {train_split: diag.summarize(statistics_lib.default_slice(statistics, train_split))}
  links = []
  for name, other_split in _page_names(statistics, eval_splits):
    summaries[other_split] = diag.summarize(statistics_lib.default_slice(statistics, other_split))
    links.append(f'<a href="{esc(name)}">{esc(train_split)} vs {esc(other_split)}</a>')
  parts = ['<p>Statistics side by side: ' + ', '.join(links) + '</p>'] if links else []
  parts.append(charts.top_overlays(result.get('compared') or [], summaries, train_split))
  flagged = sorted({(tuple(f['splits']), f['feature']) for f in result.get('findings', []) if f.get('feature')})
  for (t_split, o_split), feature in flagged:
    if o_split not in summaries:
      continue
    parts.append(f'<h3><code>{esc(feature)}</code>: {esc(t_split)} vs {esc(o_split)}</h3>'
                 + _feature_pictures(t_split, summaries[t_split].get(feature), o_split,
                                     summaries[o_split].get(feature)))
  return '<div class="skew">' + ''.join(parts) + '</div>'
