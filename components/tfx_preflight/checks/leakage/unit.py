"""The leakage check as the gate runs it (checks/unit.Check): content hashes of every split from its part of the one
read pass (leakage_beam.LeakageReadPart), joined across splits and with earlier runs' train hashes (history), then
summarized by check.summarize; the train hashes of a blessed run are published after the report."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from tfx_preflight import constants, file_io
from tfx_preflight.checks.leakage import check as leakage
from tfx_preflight.checks.leakage import csv_relocation, history, history_findings, render
from tfx_preflight.checks.leakage.leakage_beam import LeakageCounts, LeakageReadPart, Plan
from tfx_preflight.checks.unit import Check, Gate, PageInputs
from tfx_preflight.config import ConfigError, PreflightConfig
from tfx_preflight.constants import Status
from tfx_preflight.inputs.gate_inputs import PreflightInputs
from tfx_preflight.report import build
from tfx_preflight.report.results import CheckResult


class LeakageCheck(Check):
  name = constants.LEAKAGE
  stage = 'leakage'

  def skip_reason(self, config: PreflightConfig, inputs: PreflightInputs) -> Optional[str]:
    return config.off_reason(self.name) if config.leakage.mode == 'off' else None

  def check_inputs(self, gate: Gate, runs: bool) -> None:
    if not runs and (gate.inputs.history or gate.inputs.save_history):
      raise ConfigError('history and save_history (train hashes) need the leakage check: leakage.mode is off.')

  def read_part(self, gate: Gate) -> LeakageReadPart:
    plan = leakage.make_plan(gate.examples, gate.train, gate.evals, gate.config.with_exclusions(self.name),
                             gate.config.label_key, files=gate.files)
    plan, stored = _with_history(plan, gate.inputs)
    return LeakageReadPart(plan, os.path.join(gate.output_dir, self.name), stored)

  def interpret(self, gate: Gate, part: LeakageReadPart, output: LeakageCounts) -> CheckResult:
    result = leakage.summarize(output, part.plan, gate.config.with_exclusions(self.name), part.output_dir)
    if part.history:
      result = history_findings.with_history(result, output, part.plan, part.history, gate.config.leakage)
    if gate.inputs.csv_locations and result.status != Status.SKIPPED:
      result = csv_relocation.relocated_leakage(result, gate.inputs.csv_locations)
    return result

  def features_seen(self, result: CheckResult) -> Optional[Mapping[str, Iterable[str]]]:
    return result.details_dict().get('features_seen') or None

  def after_report(self, config: PreflightConfig, inputs: PreflightInputs, report: Mapping[str, Any]) -> None:
    if inputs.save_history:
      save_history(report, config, inputs.save_history)

  def render_html(self, check: Mapping[str, Any], page: PageInputs) -> str:
    return render.render_html(check)


def _with_history(plan: Plan, inputs: PreflightInputs) -> Tuple[Plan, Tuple[history.Stored, ...]]:
  """The leakage plan with the stored hashes it can compare (history.select) and, when this run's are to be saved,
  their staging directory (emptied first); and every stored directory given, compared or not."""
  stored = tuple(history.load(directory) for directory in inputs.history)
  used, _ = history.select(stored, plan.exclude, plan.label_key)
  staging = None
  if inputs.save_history:
    staging = history.staging_dir(inputs.save_history)
    if file_io.exists(staging):
      file_io.rmtree(staging)
    file_io.makedirs(staging)
  return dataclasses.replace(plan, history_files=tuple((i, f) for i, item in enumerate(used) for f in item.files),
                             history_dirs=tuple(item.path for item in used), save_hashes_dir=staging), stored


def save_history(result: Mapping[str, Any], config: PreflightConfig, destination: str) -> Dict[str, Any]:
  """Publishes the train hashes the read pass staged: kept when the run blessed (Trainer will train on them), else
  the manifest alone says nothing was trained on. Returns the manifest."""
  details = result['checks'][constants.LEAKAGE]
  train = result['splits']['train']
  return history.publish(history.staging_dir(destination), destination, build.is_blessed(result),
                         details['examples'][train], details['excluded_features'], config.label_key,
                         details['features_seen'][train])


UNIT = LeakageCheck()
