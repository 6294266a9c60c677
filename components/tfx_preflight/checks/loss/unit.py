"""The loss check as the gate runs it (checks/unit.Check): a background check. Its probe process (probe.py) is
launched before anything else with the module to run, so that Python's start, TensorFlow's import and the module's
import overlap input validation, statistics and the other checks; it gets the rest of its request (with a schema
inferred from the statistics when none is given) once the statistics are known, and is awaited after every other
check."""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Optional

from google.protobuf import text_format

from tfx_preflight import constants, file_writes
from tfx_preflight.checks.loss import check as loss
from tfx_preflight.checks.loss import render
from tfx_preflight.checks.unit import Check, Gate, PageInputs
from tfx_preflight.config import PreflightConfig
from tfx_preflight.inputs import data
from tfx_preflight.inputs.gate_inputs import PreflightInputs
from tfx_preflight.report.results import CheckResult


class LossProbeCheck(Check):
  name = constants.LOSS
  stage = 'loss probe'
  background = True

  def skip_reason(self, config: PreflightConfig, inputs: PreflightInputs) -> Optional[str]:
    if config.loss.mode == 'off':
      return config.off_reason(self.name)
    return loss.skip_reason(config.loss, inputs.module_file, inputs.run_fn)

  def check_inputs(self, gate: Gate, runs: bool) -> None:
    mixed = data.mixed_compression(gate.examples) if runs else None
    if mixed is not None:
      raise mixed

  def needs_statistics(self, gate: Gate) -> bool:
    return True

  def launch(self, config: PreflightConfig, inputs: PreflightInputs, output_dir: str) -> loss.LossCheck:
    return loss.LossCheck.start(config.loss, os.path.join(output_dir, self.name), inputs.module_file, inputs.run_fn,
                                inputs.transform_graph_uri)

  def begin(self, gate: Gate, launched: loss.LossCheck) -> None:
    """The rest of the request (the module was imported meanwhile): it then runs in the background while the other
    checks run on another core."""
    inputs = gate.inputs
    logging.info('Preflight: loss check on %s (in the background)', inputs.module_file or inputs.run_fn)
    launched.send(loss.LossInputs(
        inputs.module_file, gate.examples, gate.train, gate.evals, gate.config.label_key, _schema_path(gate),
        inputs.transform_graph_uri, inputs.hyperparameters, gate.statistics, run_fn=inputs.run_fn,
        custom_config=inputs.custom_config, transformed_examples=inputs.transformed_examples))

  def wait(self, launched: loss.LossCheck) -> CheckResult:
    return launched.result()

  def render_html(self, check: Mapping[str, Any], page: PageInputs) -> str:
    return render.render_html(check)


def _schema_path(gate: Gate) -> Optional[str]:
  """A schema file for the user's input_fn: the given schema, else one inferred from train statistics."""
  schema = gate.inputs.schema
  if schema is None and gate.statistics is not None:
    import tensorflow_data_validation as tfdv  # Heavy import, only when a schema must be inferred.
    schema = tfdv.infer_schema(gate.statistics[gate.train])
  if schema is None:
    return None
  path = os.path.join(gate.output_dir, 'inputs', 'schema.pbtxt')
  file_writes.write_atomically(path, text_format.MessageToString(schema))
  return path


UNIT = LossProbeCheck()
