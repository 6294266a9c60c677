"""The skew check as the gate runs it (checks/unit.Check): from the statistics of each split, and of each span of a
window from its read part (span_statistics_beam.py)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Mapping, Optional

from tfx_preflight import constants
from tfx_preflight.checks.skew import check as skew
from tfx_preflight.checks.skew import render
from tfx_preflight.checks.skew import spans as span_skew
from tfx_preflight.checks.skew.span_statistics_beam import SpanStatisticsReadPart
from tfx_preflight.checks.unit import Check, Gate, PageInputs
from tfx_preflight.config import PreflightConfig
from tfx_preflight.constants import Status
from tfx_preflight.inputs import data
from tfx_preflight.inputs.gate_inputs import PreflightInputs
from tfx_preflight.report.results import CheckResult, status_for


class SkewCheck(Check):
  name = constants.SKEW
  stage = 'skew'

  def skip_reason(self, config: PreflightConfig, inputs: PreflightInputs) -> Optional[str]:
    return config.off_reason(self.name) if config.skew.mode == 'off' else None

  def needs_statistics(self, gate: Gate) -> bool:
    return True

  def read_part(self, gate: Gate) -> Optional[SpanStatisticsReadPart]:
    """Per-span statistics of a window (two or more Examples artifacts) for spans.py."""
    artifacts = gate.inputs.examples_artifacts
    if len(artifacts) < 2:
      return None
    spans = {split: tuple(tuple(data.matching_files(a.patterns[split], f'split {split!r}')) for a in artifacts)
             for split in gate.examples if all(split in a.patterns for a in artifacts)}
    return SpanStatisticsReadPart(os.path.join(gate.output_dir, 'inputs'), spans, gate.inputs.schema)

  def interpret(self, gate: Gate, part: Any, output: Optional[Mapping[str, Any]]) -> CheckResult:
    config = gate.config
    result = skew.check_skew(gate.statistics, gate.train, gate.evals, config.with_exclusions(self.name),
                             gate.inputs.schema, config.label_key)
    return result if output is None else _with_span_departures(result, output, gate)

  def render_html(self, check: Mapping[str, Any], page: PageInputs) -> str:
    return render.render_html(check, page.statistics, page.train, page.evals)

  def pages(self, check: Mapping[str, Any], page: PageInputs) -> Dict[str, str]:
    return render.statistics_pages(check, page.statistics, page.train, page.evals)


def _with_span_departures(result: CheckResult, span_statistics: Mapping[str, Any], gate: Gate) -> CheckResult:
  """The skew result with the spans of a window that depart from the others (spans.py): their warnings among its
  findings, one row per span and split under `spans`."""
  config = gate.config
  artifacts = [{'span': a.span, 'version': a.version} for a in gate.inputs.examples_artifacts]
  found, rows = span_skew.check_span_departures(span_statistics, artifacts, config.with_exclusions(constants.SKEW),
                                                gate.inputs.schema, config.label_key)
  findings = skew.sorted_findings([*result.findings, *found])
  status = status_for(findings, config.skew.mode) if found else result.status
  reason = result.reason if status == Status.NOT_CHECKED else None
  return CheckResult(status, tuple(findings), reason=reason, details=dataclasses.replace(result.details, spans=rows))


UNIT = SkewCheck()
