"""statistics.html: train and eval statistics side by side, as a static, self-contained page.

Replaces TFDV's `get_statistics_html` (Facets), which loads webcomponents from cdnjs and Facets from a GitHub `master`
branch URL when the page is viewed: unpinned code from the network, and a blank page offline. This page has no
script and no external resource (its Content-Security-Policy forbids both); every name and value is escaped.
"""

from __future__ import annotations

from typing import List, Optional

from tensorflow_metadata.proto.v0 import statistics_pb2

from tfx_preflight.checks.skew import diagnosis as diag
from tfx_preflight.report.render.escape import esc, short

_TOP_VALUES = 5
_STYLE = ('body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}'
          'td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right;vertical-align:top}'
          'th{background:#f4f4f4}td.name{text-align:left;font-family:monospace}td.text{text-align:left}')


def _number(value: Optional[float]) -> str:
  return '' if value is None else short(value)


def _median(s: diag.FeatureSummary) -> Optional[float]:
  return s.deciles[len(s.deciles) // 2] if s.deciles else None


def _cells(s: Optional[diag.FeatureSummary]) -> List[str]:
  """One split's cells for one feature: blank when the split has no statistics of it."""
  if s is None:
    return ['<td class="text">absent</td>'] + ['<td></td>'] * 7
  missing = f'{s.missing_rate:.1%}'
  if s.numeric:
    values = [_number(v) for v in (s.mean, s.std, s.min, _median(s), s.max)]
    top = ''
  else:
    values = [''] * 5
    total = s.tot_values or 1
    top = ', '.join(f'{esc(v)} ({c / total:.1%})' for v, c in s.counts[:_TOP_VALUES])
    if s.unique is not None:
      top = f'{s.unique} unique: {top}'
  return ([f'<td>{missing}</td>', f'<td>{_number(s.avg_values)}</td>']
          + [f'<td>{v}</td>' for v in values] + [f'<td class="text">{top}</td>'])


def render(train: statistics_pb2.DatasetFeatureStatistics, other: statistics_pb2.DatasetFeatureStatistics,
           train_name: str, other_name: str) -> str:
  """The whole page: one row per feature, each split's missing rate, values per example, numeric summary (mean, std,
  min, median, max) or most frequent categories. Same statistics, same bytes."""
  summaries = diag.summarize(train), diag.summarize(other)
  header = ''.join(f'<th>{h}</th>' for h in ('missing', 'values/example', 'mean', 'std', 'min', 'median', 'max',
                                             'top values'))
  rows = []
  for name in sorted(set(summaries[0]) | set(summaries[1])):
    left, right = summaries[0].get(name), summaries[1].get(name)
    kind = (left or right).type
    rows.append(f'<tr><td class="name" rowspan="2">{esc(name)}</td><td class="text" rowspan="2">{esc(kind)}</td>'
                f'<td class="text">{esc(train_name)}</td>' + ''.join(_cells(left)) + '</tr>'
                f'<tr><td class="text">{esc(other_name)}</td>' + ''.join(_cells(right)) + '</tr>')
  return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
          '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
          f'<title>statistics: {esc(train_name)} vs {esc(other_name)}</title><style>{_STYLE}</style></head><body>'
          f'<h1>Statistics: <code>{esc(train_name)}</code> ({int(train.num_examples)} examples) vs '
          f'<code>{esc(other_name)}</code> ({int(other.num_examples)} examples)</h1>'
          f'<table><tr><th>feature</th><th>type</th><th>split</th>{header}</tr>' + ''.join(rows)
          + '</table></body></html>\n')
