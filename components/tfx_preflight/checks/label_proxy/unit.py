"""The label-proxy check as the gate runs it (checks/unit.Check): counts of (feature value, label) from its part of
the one read pass (label_proxy_beam.LabelProxyReadPart), scored by check.summarize. The worked example of
docs/architecture.md."""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from tfx_preflight import constants
from tfx_preflight.checks.label_proxy import check as label_proxy
from tfx_preflight.checks.label_proxy import render
from tfx_preflight.checks.label_proxy.label_proxy_beam import LabelProxyReadPart
from tfx_preflight.checks.unit import Check, Gate, PageInputs
from tfx_preflight.config import PreflightConfig
from tfx_preflight.inputs.gate_inputs import PreflightInputs
from tfx_preflight.report.results import CheckResult


class LabelProxyCheck(Check):
  name = constants.LABEL_PROXY
  stage = 'label proxy'

  def skip_reason(self, config: PreflightConfig, inputs: PreflightInputs) -> Optional[str]:
    if config.label_proxy.mode == 'off':
      return config.off_reason(self.name)
    return None if config.label_key else 'no label_key: nothing to predict'

  def read_part(self, gate: Gate) -> LabelProxyReadPart:
    options = label_proxy.count_options(gate.config.with_exclusions(self.name), gate.config.label_key)
    return LabelProxyReadPart(options, os.path.join(gate.output_dir, self.name))

  def interpret(self, gate: Gate, part: Any, output: Mapping[str, Any]) -> CheckResult:
    return label_proxy.summarize(output[gate.train], {split: output[split] for split in gate.evals}, gate.train,
                                 gate.config.with_exclusions(self.name), gate.config.label_key)

  def render_html(self, check: Mapping[str, Any], page: PageInputs) -> str:
    return render.render_html(check)


UNIT = LabelProxyCheck()
