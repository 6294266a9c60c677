"""Overlaid train-vs-eval histograms of the passing features nearest their skew threshold, for report.html.

One chart per feature, both splits on one axis (numeric: densities over the union of both value ranges; categorical:
paired bars over the most frequent categories of either split), so a reader sees at a glance how close a pass was.
Inline SVG only (the report's CSP forbids scripts); every label and value from the data goes through `esc`.
"""

from __future__ import annotations

import math
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from tfx_preflight import constants
from tfx_preflight.render.escape import esc, short
from tfx_preflight.skew_diagnosis import FeatureSummary

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


def _finite_buckets(s: FeatureSummary) -> List[Tuple[float, float, float]]:
  return [(lo, hi, c) for lo, hi, c in s.histogram if math.isfinite(lo) and math.isfinite(hi) and c > 0]


def numeric_overlay(title: str, names: Sequence[str], summaries: Sequence[FeatureSummary]) -> Optional[str]:
  """Both splits' equal-width histograms as densities on one value axis (their buckets need not line up)."""
  buckets = [_finite_buckets(s) for s in summaries]
  if not all(buckets):
    return None
  lo = min(b[0] for bs in buckets for b in bs)
  hi = max(b[1] for bs in buckets for b in bs)
  if not hi > lo:
    return None
  span = hi - lo
  min_width = span / 100  # A point mass (low == high) still gets a visible bar.
  densities = []
  for bs in buckets:
    total = sum(c for _, _, c in bs)
    densities.append([(low, max(high - low, min_width), c / total / max(high - low, min_width))
                      for low, high, c in bs])
  top = max(d for ds in densities for _, _, d in ds)
  inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD - 12
  rects = []
  for (name, color), ds in zip(zip(names, _COLORS), densities):
    for left, width, density in ds:
      h = inner_h * density / top
      x = _PAD + inner_w * (left - lo) / span
      rects.append(f'<rect x="{x:.1f}" y="{_H - _PAD - h:.1f}" width="{max(inner_w * width / span, 1):.1f}" '
                   f'height="{h:.1f}" fill="{color}" fill-opacity=".55"><title>{esc(name)}: [{short(left)}, '
                   f'{short(left + width)}]</title></rect>')
  return _frame(title, names, ''.join(rects), short(lo), short(hi))


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
  feature already has its own train and eval charts, each on its own axis: a 255x rescale would flatten an overlay)."""
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
