"""All HTML of the report directory, fed by the report dict (report.build_report's output) and the statistics.

Each check draws its own section (`checks/<check>/render.py`: skew's also the statistics pages, with
`checks/skew/charts.py`; leakage's pictures of near pairs with `checks/leakage/picture.py`); `report/render/` holds
what every section draws with: `page.py` (report.html around the sections), `statistics_page.py`, `escape.py`.

Nothing here decides a status or writes a file: `run.write_report` writes what `statistics_pages` and `report_html`
return. Every value from the data is escaped, and every page forbids scripts (Content-Security-Policy).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

from tfx_preflight import constants
from tfx_preflight.checks.label_proxy import render as label_proxy
from tfx_preflight.checks.leakage import render as leakage
from tfx_preflight.checks.loss import render as loss
from tfx_preflight.checks.skew import render as skew
from tfx_preflight.inputs.statistics import StatisticsBySplit
from tfx_preflight.report.render import page


def statistics_pages(report: Mapping[str, Any], statistics: StatisticsBySplit) -> Dict[str, str]:
  """file name (relative to the report directory) -> statistics.html page of train against each eval split."""
  splits = report['splits']
  return skew.statistics_pages(report['checks'][constants.SKEW], statistics, splits['train'], splits['eval'])


def report_html(report: Mapping[str, Any], statistics: StatisticsBySplit) -> str:
  """report.html: the page with each check's own section (links to `statistics_pages`)."""
  checks, splits = report['checks'], report['splits']
  fragments = {
      constants.SKEW: skew.render_html(checks[constants.SKEW], statistics, splits['train'], splits['eval']),
      constants.LEAKAGE: leakage.render_html(checks[constants.LEAKAGE]),
      constants.LOSS: loss.render_html(checks[constants.LOSS]),
      constants.LABEL_PROXY: label_proxy.render_html(checks[constants.LABEL_PROXY]),
  }
  return page.render(report, fragments)
