"""Overlaid train-vs-eval histograms of the passing features nearest their skew threshold, for report.html.

One chart per feature, both splits on the same bins (numeric: shares of values on bins cut at both splits' quantile
points, so heavy tails do not crush one split into a spike; categorical: paired bars over the most frequent categories
of either split), so a reader sees at a glance how close a pass was.
Inline SVG only (the report's CSP forbids scripts); every label and value from the data goes through `esc`.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from tfx_preflight import constants
from tfx_preflight.checks.skew.diagnosis import FeatureSummary, quantile_points
from tfx_preflight.report.render.escape import esc, short

# Features charted (the first rows of `compared`, nearest their threshold first).
TOP_FEATURES = 6
_W, _H, _PAD = 340, 150, 24
_MAX_CATEGORIES = 10
_COLORS = ('#4a7ebb', '#d9822b')


def _frame(title: str, legend: Sequence[str], body: str, left: str, right: str) -> str:
  inner_w = _W - 2 * _PAD
  keys = ''.join(f'<rect x="{_PAD + inner_w - 150 + i * 80}" y="20" width="9" height="9" fill="{c}" '
                 f'fill-opacity=".6"/><text x="{_PAD + inner_w - 138 + i * 80}" y="28" font-size="10">'
                 f'{esc(name[:10])}</text>' for i, (name, c) in enumerate(zip(legend, _COLORS)))
  return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img">'
          f'<text x="{_PAD}" y="13" font-size="11">{esc(title)}</text>{keys}{body}'
          f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#888"/>'
          f'<text x="{_PAD}" y="{_H - 8}" font-size="10">{esc(left)}</text>'
          f'<text x="{_W - _PAD}" y="{_H - 8}" font-size="10" text-anchor="end">{esc(right)}</text></svg>')


# At most this many shared bins (the union of both splits' quantile points gives about 20).
MAX_BINS = 24


def _finite_quantile_points(s: FeatureSummary) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
  """skew_diagnosis's quantile function of `s`, or nothing when TFDV kept no deciles or an infinite end point."""
  if s.deciles and s.min is not None and s.max is not None and math.isfinite(s.min) and math.isfinite(s.max):
    return quantile_points(s)
  return (), ()


def _cdf_points(s: FeatureSummary) -> List[Tuple[float, float, float]]:
  """(value, F just below it, F at it) of one split's distribution, from both summaries TFDV keeps: min, deciles and
  max (quantile points: outliers cannot crush the bulk into one bucket) and the equal-width histogram's cumulative
  counts (which TFDV derives from 1,000 quantiles: they place the mass of a heavy tail between the last decile and
  a far maximum)."""
  raw = list(zip(*_finite_quantile_points(s)))
  buckets = [(lo, hi, c) for lo, hi, c in s.histogram if math.isfinite(lo) and math.isfinite(hi) and c > 0]
  total = sum(c for _, _, c in buckets)
  seen = 0.0
  for lo, hi, c in buckets:
    raw.append((lo, seen / total))
    seen += c
    raw.append((hi, seen / total))
  merged: List[Tuple[float, float, float]] = []
  for value, p in sorted(raw):
    p = max(p, merged[-1][2]) if merged else p  # The two summaries disagree by rounding: keep F monotone.
    if merged and merged[-1][0] == value:
      merged[-1] = (value, merged[-1][1], p)
    else:
      merged.append((value, p, p))
  return merged


def _cdf(points: Sequence[Tuple[float, float, float]], x: float) -> float:
  """F(x), linear between the points, jumping at a point mass."""
  values = [v for v, _, _ in points]
  i = bisect.bisect_right(values, x) - 1
  if i < 0:
    return 0.0
  if i == len(points) - 1:
    return 1.0
  (v0, _, p0), (v1, q1, _) = points[i], points[i + 1]
  return p0 + (q1 - p0) * (x - v0) / (v1 - v0)


def shared_bins(summaries: Sequence[FeatureSummary]) -> Optional[Tuple[List[Tuple[float, float]], List[List[float]]]]:
  """Bins every split is drawn on, and each split's share of values per bin: the edges are the union of the splits'
  quantile points (so heavy tails get quantile bins, not one spike at 0), each split's share read from its own CDF.
  A picture then shows a shift when there is one and agreement when there is none. None without values."""
  cdfs = [_cdf_points(s) for s in summaries]
  if not all(cdfs):
    return None
  edges = sorted({v for s, points in zip(summaries, cdfs) for v in (_finite_quantile_points(s)[0] or [p[0] for p in points])})
  if len(edges) > MAX_BINS + 1:
    step = (len(edges) - 1) / MAX_BINS
    edges = sorted({edges[round(i * step)] for i in range(MAX_BINS + 1)})
  if len(edges) == 1:
    return [(edges[0], edges[0])], [[1.0] for _ in summaries]
  bins = list(zip(edges[:-1], edges[1:]))
  shares = []
  for points in cdfs:
    at = [_cdf(points, e) for e in edges]
    shares.append([at[1]] + [at[i + 1] - at[i] for i in range(1, len(bins))])  # The first bin holds its low edge.
  return bins, shares


def numeric_overlay(title: str, names: Sequence[str], summaries: Sequence[FeatureSummary]) -> Optional[str]:
  """Both splits' shares of values on the same bins (`shared_bins`), paired bars per bin."""
  shared = shared_bins(summaries)
  if shared is None:
    return None
  bins, shares = shared
  top = max(max(s) for s in shares)
  if top <= 0:
    return None
  inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD - 12
  slot = inner_w / len(bins)
  rects = []
  for i, (low, high) in enumerate(bins):
    for j, (name, color) in enumerate(zip(names, _COLORS)):
      h = inner_h * shares[j][i] / top
      rects.append(f'<rect x="{_PAD + i * slot + j * slot / 2:.1f}" y="{_H - _PAD - h:.1f}" '
                   f'width="{max(slot / 2 - 0.5, 1):.1f}" height="{h:.1f}" fill="{color}" fill-opacity=".8">'
                   f'<title>{esc(name)}: [{short(low)}, {short(high)}] {shares[j][i]:.1%}</title></rect>')
  return _frame(title + ' (shared quantile bins)', names, ''.join(rects), short(bins[0][0]), short(bins[-1][1]))


def _shortened(value: Any, limit: int = 80) -> str:
  """A category as a tooltip: values may be megabytes (blobs); the report must stay small."""
  text = str(value)
  return text if len(text) <= limit else text[:limit] + '…'


def categorical_overlay(title: str, names: Sequence[str], summaries: Sequence[FeatureSummary]) -> Optional[str]:
  """Paired bars (train, eval) over the most frequent categories of either split."""
  shares = [{v: c / (s.tot_values or 1) for v, c in s.counts} for s in summaries]
  categories = sorted(set(shares[0]) | set(shares[1]), key=lambda v: (-max(shares[0].get(v, 0), shares[1].get(v, 0)),
                                                                      v))[:_MAX_CATEGORIES]
  top = max((f.get(v, 0.0) for f in shares for v in categories), default=0.0)
  if not categories or top <= 0:
    return None
  inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD - 12
  slot = inner_w / len(categories)
  rects = []
  for i, value in enumerate(categories):
    for j, (name, color) in enumerate(zip(names, _COLORS)):
      share = shares[j].get(value, 0.0)
      h = inner_h * share / top
      rects.append(f'<rect x="{_PAD + i * slot + j * slot / 2:.1f}" y="{_H - _PAD - h:.1f}" '
                   f'width="{max(slot / 2 - 1, 1):.1f}" height="{h:.1f}" fill="{color}" fill-opacity=".8">'
                   f'<title>{esc(name)}: {esc(_shortened(value))} {share:.2%}</title></rect>')
  return _frame(title, names, ''.join(rects), str(categories[0])[:16], str(categories[-1])[:16])


def overlay(feature: str, train_split: str, train: Optional[FeatureSummary], other_split: str,
            other: Optional[FeatureSummary], label: str) -> Optional[str]:
  if train is None or other is None:
    return None
  title = f'{feature[:40]}: {label}'
  names, pair = (train_split, other_split), (train, other)
  if train.categorical and other.categorical:
    return categorical_overlay(title, names, pair)
  if train.numeric and other.numeric:
    return numeric_overlay(title, names, pair)
  return None


def top_overlays(compared: Sequence[Mapping[str, Any]], summaries: Mapping[str, Mapping[str, FeatureSummary]],
                 train_split: str, limit: int = TOP_FEATURES) -> str:
  """Overlaid histograms of the `limit` compared features nearest their threshold that have no finding (a flagged
  feature already has its own train and eval charts)."""
  charts: List[str] = []
  unflagged = [row for row in compared if row.get('status') not in constants.SEVERITIES]
  for row in unflagged[:limit]:
    split, feature = row.get('split'), row.get('feature')
    if split not in summaries or train_split not in summaries:
      continue
    ratio = row.get('ratio')
    label = f'{row.get("status")}, {ratio:.2f} of threshold' if isinstance(ratio, (int, float)) else str(
        row.get('status'))
    chart = overlay(str(feature), train_split, summaries[train_split].get(feature), str(split),
                    summaries[split].get(feature), label)
    if chart:
      charts.append(chart)
  if not charts:
    return ''
  return ('<h3>Passing features nearest their threshold: train vs eval overlaid</h3>'
          '<div style="display:flex;flex-wrap:wrap;gap:.5em">' + ''.join(charts) + '</div>')
