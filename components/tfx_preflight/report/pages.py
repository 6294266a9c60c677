"""All HTML of the report directory, fed by the report dict (report.build_report's output) and the statistics.

Each check draws its own section and pages (its unit's `render_html` and `pages`, checks/unit.py; e.g. skew's
statistics pages, leakage's pictures of near pairs); `report/render/` holds what every section draws with:
`page.py` (report.html around the sections) and `escape.py`.

Nothing here decides a status or writes a file: `run.write_report` writes what `statistics_pages` and `report_html`
return. Every value from the data is escaped, and every page forbids scripts (Content-Security-Policy).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

from tfx_preflight.checks import registry
from tfx_preflight.checks.unit import PageInputs
from tfx_preflight.inputs.statistics import StatisticsBySplit
from tfx_preflight.report.render import page


def _page_inputs(report: Mapping[str, Any], statistics: StatisticsBySplit) -> PageInputs:
  splits = report['splits']
  return PageInputs(statistics, splits['train'], tuple(splits['eval']))


def statistics_pages(report: Mapping[str, Any], statistics: StatisticsBySplit) -> Dict[str, str]:
  """file name (relative to the report directory) -> page of a check's own (skew: train against each eval split)."""
  inputs = _page_inputs(report, statistics)
  return {name: html for unit in registry.units() for name, html in unit.pages(report['checks'][unit.name],
                                                                                 inputs).items()}


def report_html(report: Mapping[str, Any], statistics: StatisticsBySplit) -> str:
  """report.html: the page with each check's own section (links to `statistics_pages`)."""
  inputs = _page_inputs(report, statistics)
  return page.render(report, {unit.name: unit.render_html(report['checks'][unit.name], inputs)
                              for unit in registry.units()})
