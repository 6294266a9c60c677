"""Runs the checks and writes the report: the one code path shared by the TFX executor and the CLI.

Inputs are plain values (inputs/gate_inputs.PreflightInputs), not artifacts, so the whole gate can run and be tested
without ML Metadata. The checks are the registered units (checks/registry.py); this module runs them in order and
knows none by name: background checks launched first, inputs validated, one read pass feeding every check's part
(and the statistics, computed at most once), each check's interpretation, background checks awaited last.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple

import apache_beam as beam

from tfx_preflight import constants, file_writes
from tfx_preflight.checks import registry
from tfx_preflight.checks.unit import Check, Gate
from tfx_preflight.config import CHECK_NAMES, ConfigError, PreflightConfig, resolve_splits
from tfx_preflight.inputs import data, feature_names, provenance, read_pass
from tfx_preflight.inputs import statistics as statistics_lib
from tfx_preflight.inputs.gate_inputs import ExamplesArtifact, PreflightInputs
from tfx_preflight.inputs.statistics import StatisticsBySplit
from tfx_preflight.report import build as report
from tfx_preflight.report import pages as render
from tfx_preflight.report import progress, report_dir
from tfx_preflight.report.results import CheckResult, Report, settled_checks, verdict_of


@contextlib.contextmanager
def _naming_unreadable_file(examples: Mapping[str, str]) -> Iterator[None]:
  """Beam and TF read errors rarely say which file is damaged: when a step fails, find that file (a full read, on
  the failure path only) and raise an error naming it; other failures go through unchanged."""
  try:
    yield
  except (ConfigError, data.InputError):
    raise
  except Exception as e:
    bad = data.find_unreadable_file(examples) if data.looks_like_read_error(e) else None
    if bad is None and data.looks_like_type_clash(e):
      bad = data.find_type_clash(examples)
    if bad is not None:
      raise bad from e
    raise


def artifacts_read(artifacts: Sequence[ExamplesArtifact], rows_per_file: Optional[Mapping[str, int]],
                   splits: Sequence[str]) -> list:
  """Per Examples artifact (span, version, uri), the examples read from each of its used splits (None when nothing
  was read): the report shows every span of a window was seen."""
  described = []
  for artifact in artifacts:
    examples = None
    if rows_per_file is not None:
      examples = {split: sum(rows_per_file.get(path, 0)
                             for path in data.matching_files(artifact.patterns[split], f'split {split!r}'))
                  for split in splits if split in artifact.patterns}
    described.append({'uri': artifact.uri, 'span': artifact.span, 'version': artifact.version,
                      'examples': examples})
  return described


def _read(request: read_pass.PassRequest, examples: Mapping[str, str],
          make_pipeline: Callable[[], beam.Pipeline]) -> read_pass.PassOutputs:
  """The one Beam pass over every split (one progress line: what it fed and how many examples it read)."""
  if request.empty:
    return read_pass.PassOutputs()
  logging.info('Preflight: reading splits %s once for %s', ', '.join(request.splits), ', '.join(request.consumers()))
  with _naming_unreadable_file(examples), progress.stage('read') as stage:
    outputs = read_pass.run_pass(request, make_pipeline)
    stage.result = {'examples_read': read_pass.examples_read(request, outputs, request.splits),
                    'read_for': list(request.consumers())}
  return outputs


def _launch(units: Sequence[Check], config: PreflightConfig, inputs: PreflightInputs, output_dir: str,
            stack: contextlib.ExitStack) -> Dict[str, Any]:
  """Background checks' processes, launched before anything else (their Python start and TensorFlow import overlap
  the rest); the stack stops them on any error below, even in input validation."""
  return {unit.name: stack.enter_context(unit.launch(config, inputs, output_dir)) for unit in units if unit.background}


def run_checks(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
               output_dir: str) -> Report:
  """Runs every enabled check and returns the report (not yet written). Bad inputs raise with a clear message.

  Every split is read once (read_pass.py): statistics when needed and not supplied, and every check's part come from
  the same decoded batches. Background checks (the loss probe) get their request once the statistics they need are
  known: after the pass when they are computed, otherwise before it, so that they overlap the pass on another core.
  """
  running = tuple(unit for unit in registry.units() if unit.skip_reason(config, inputs) is None)
  with contextlib.ExitStack() as stack:
    launched = _launch(running, config, inputs, output_dir, stack)
    return _run_checks(inputs, config, make_pipeline, output_dir, running, launched)


def _gate(inputs: PreflightInputs, config: PreflightConfig, output_dir: str, running: Sequence[Check]) -> Gate:
  """The splits compared and their files, validated; each check's own refusals of its inputs."""
  train, evals = resolve_splits(config, tuple(inputs.examples))
  examples = {s: inputs.examples[s] for s in (train, *evals)}
  data.validate_examples(examples)
  gate = Gate(config, inputs, train, tuple(evals), examples, data.split_files(examples, (train, *evals)), output_dir)
  if inputs.statistics is not None and inputs.statistics_output is not None:
    raise ConfigError('statistics are given and also asked for as an output: give SchemaGen the statistics given.')
  if inputs.statistics is not None:
    missing = [s for s in gate.splits if s not in inputs.statistics]
    if missing:
      raise ValueError(f'The statistics have no split(s) {", ".join(missing)}; they have: '
                       f'{", ".join(sorted(inputs.statistics))}.')
  for unit in registry.units():
    unit.check_inputs(gate, unit in running)
  return gate


def _pass_request(gate: Gate, running: Sequence[Check], compute_statistics: bool) -> read_pass.PassRequest:
  """What the one read of every split feeds: statistics (when needed and not supplied), each check's part, and what
  the input side checks supplied statistics and span windows with."""
  inputs, output_dir = gate.inputs, gate.output_dir
  parts = {unit.name: unit.read_part(gate) for unit in running}
  return read_pass.PassRequest(
      examples=gate.examples, splits=gate.splits, schema=inputs.schema, files=gate.files,
      parts={name: part for name, part in parts.items() if part is not None},
      statistics_dir=os.path.join(output_dir, constants.STATISTICS_DIR) if compute_statistics else None,
      rows_per_file_dir=os.path.join(output_dir, 'inputs') if inputs.examples_artifacts else None,
      # Supplied statistics are checked feature by feature against what this pass sees (provenance.py).
      sketch_dir=os.path.join(output_dir, 'inputs', 'sketches') if inputs.statistics is not None else None)


def _check_statistics_fit(gate: Gate) -> None:
  """The statistics (given or computed) name every feature the settings name, and describe the examples."""
  feature_names.check_keys_present(gate.config, gate.statistics, gate.splits)
  feature_names.check_schema_describes_the_data(gate.inputs.schema, gate.statistics[gate.train])
  provenance.check_transform_graph_reads_the_examples(gate.inputs.transform_graph_uri, gate.statistics, gate.splits)


def _described_inputs(gate: Gate, request: read_pass.PassRequest, outputs: read_pass.PassOutputs) -> Dict[str, Any]:
  """The provenance of the inputs for report.json, once supplied statistics and transformed examples were found to
  count (and describe) the examples read; differences inside the tolerance are listed."""
  inputs = gate.inputs
  counted = read_pass.examples_read(request, outputs, gate.splits)
  differences = []
  if inputs.statistics is not None:
    differences += check_statistics_count_the_examples(inputs.statistics, counted, inputs.provenance)
    provenance.check_statistics_describe_the_examples(inputs.statistics, outputs.sketches or {}, inputs.provenance)
  differences += provenance.check_transformed_examples(inputs.transformed_examples, inputs.transform_graph_uri,
                                                       counted, inputs.provenance)
  return {**inputs.provenance, **({'count_differences': differences} if differences else {})}


def _interpreted(unit: Check, gate: Gate, request: read_pass.PassRequest, outputs: read_pass.PassOutputs,
                 launched: Mapping[str, Any]) -> CheckResult:
  """A running check's result, on its own progress line."""
  logging.info('Preflight: %s %s', 'waiting for the' if unit.background else 'running the', unit.stage)
  with progress.stage(unit.stage) as stage:
    if unit.background:
      stage.result = unit.wait(launched[unit.name])
    else:
      stage.result = unit.interpret(gate, request.parts.get(unit.name), outputs.parts.get(unit.name))
  return stage.result


def _run_checks(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
                output_dir: str, running: Sequence[Check], launched: Mapping[str, Any]) -> Report:
  gate = _gate(inputs, config, output_dir, running)
  compute_statistics = inputs.statistics is None and (
      any(unit.needs_statistics(gate) for unit in running) or inputs.statistics_output is not None)
  request = _pass_request(gate, running, compute_statistics)
  outputs = None
  statistics = inputs.statistics
  if compute_statistics:
    outputs = _read(request, gate.examples, make_pipeline)
    statistics = outputs.statistics
    if inputs.statistics_output is not None:
      statistics_lib.write_statistics(statistics, inputs.statistics_output)
  gate = dataclasses.replace(gate, statistics=statistics)
  if statistics is not None:
    _check_statistics_fit(gate)
  for unit in running:
    if unit.background:
      unit.begin(gate, launched[unit.name])
  if outputs is None:
    outputs = _read(request, gate.examples, make_pipeline)
  described = _described_inputs(gate, request, outputs)
  skipped = {unit.name: CheckResult.skipped(unit.skip_reason(config, inputs))
             for unit in registry.units() if unit not in running}
  checks = {unit.name: _interpreted(unit, gate, request, outputs, launched)
            for unit in running if not unit.background}
  if statistics is None:  # No statistics: the names a check's read saw are checked against the settings.
    seen = next((names for unit in running if unit.name in checks
                 for names in [unit.features_seen(checks[unit.name])] if names), None)
    if seen:
      feature_names.check_names(config, seen)
  checks.update({unit.name: _interpreted(unit, gate, request, outputs, launched)
                 for unit in running if unit.background})
  if inputs.examples_artifacts:
    described['examples_artifacts'] = artifacts_read(inputs.examples_artifacts, outputs.rows_per_file, gate.splits)
  return Report({**skipped, **checks}, gate.train, gate.evals, config.to_dict(), described, statistics)


def check_statistics_count_the_examples(statistics: StatisticsBySplit, counted: Mapping[str, int],
                                        described: Mapping[str, str]) -> list:
  """Supplied statistics must count the examples the read pass counted (within the tolerance), split by split:
  statistics of another Examples artifact (wrong wiring) would make the skew check judge data nobody trains on.
  Returns the differences inside the tolerance (provenance.count_difference's notes)."""
  differences = []
  for split, count in sorted(counted.items()):
    whole = statistics_lib.whole_split(statistics[split])
    if whole is None:
      continue  # No whole-split slice: the skew check refuses these statistics, naming the split.
    listed = int(whole.num_examples)
    if listed != count:
      logging.warning('Preflight: the statistics count %d examples in split %r, the examples have %d.', listed, split,
                      count)
    if provenance.beyond_tolerance(listed, count):
      raise ValueError(f'The statistics ({described.get("statistics", "given")}) count {listed} examples in split '
                       f'{split!r} but the examples ({described.get("examples", "given")}) have {count}: they were '
                       f'not computed from these examples (or were sampled). Give StatisticsGen the same examples, '
                       f'without sampling, or leave statistics out for Preflight to compute them.')
    if listed != count:
      differences.append({'input': 'statistics', 'split': split, 'listed': listed, 'counted': count})
  return differences


def relative_to(value: Any, output_dir: str) -> Any:
  """`value` with every path under `output_dir` made relative to it: a rerun into another directory gives the same
  report bytes, and the report directory can be moved or copied whole."""
  if isinstance(value, str):
    prefix = output_dir.rstrip('/') + '/'
    return value[len(prefix):] if value.startswith(prefix) else value
  if isinstance(value, dict):
    return {k: relative_to(v, output_dir) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [relative_to(v, output_dir) for v in value]
  return value


def write_report(outcome: Report, output_dir: str) -> Dict[str, Any]:
  """Writes the statistics pages and report.html (render/), then report.json (last, atomically: its presence means
  a complete report); returns report.json's content."""
  statistics = outcome.statistics or {}
  result = relative_to(outcome.to_dict(), output_dir)
  for name, page in render.statistics_pages(result, statistics).items():
    file_writes.write_atomically(os.path.join(output_dir, name), page)
  file_writes.write_atomically(os.path.join(output_dir, constants.REPORT_HTML), render.report_html(result, statistics))
  file_writes.write_atomically(os.path.join(output_dir, constants.REPORT_JSON), report.to_json(result))
  return result


def run_preflight(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
                  output_dir: str) -> Tuple[Report, Dict[str, Any]]:
  """Runs the checks and writes report.json and report.html under `output_dir`; returns the typed report and
  report.json's content.

  A transaction (report_dir.py): what `output_dir` held is invalidated first, the run writes into a fresh directory
  published at the end, so a run that fails leaves no report.json that could be mistaken for its result.
  """
  with report_dir.transaction(output_dir) as work_dir:
    return check_and_write(inputs, config, make_pipeline, work_dir)


def check_and_write(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
                    work_dir: str) -> Tuple[Report, Dict[str, Any]]:
  """Runs the checks and writes the report into `work_dir` (a transaction's fresh directory; the CLI opens its
  transaction before validating its flags); then each check's `after_report` (the leakage check publishes the train
  hashes). Returns the typed report and report.json's content."""
  outcome = run_checks(inputs, config, make_pipeline, work_dir)
  result = write_report(outcome, work_dir)
  for unit in registry.units():
    unit.after_report(config, inputs, result)
  return outcome, result


def headline_numbers(outcome: Report) -> Dict[str, Any]:
  """The numbers worth an MLMD custom property (searchable without opening the report), read from the typed report
  as report.json has them (every check settled: a pass that compared nothing is not_checked)."""
  checks = settled_checks(outcome.checks)
  verdict = verdict_of(checks)
  leakage = checks[constants.LEAKAGE].headline()
  return {
      constants.VERDICT_PROPERTY: verdict,
      constants.BLESSED_PROPERTY: int(verdict in constants.BLESSED_VERDICTS),
      **{constants.status_property(check): checks[check].status for check in CHECK_NAMES},
      **{constants.findings_property(check): len(checks[check].findings) for check in (constants.SKEW, constants.LOSS)},
      constants.LEAKED_EVAL_EXAMPLES_PROPERTY: leakage.get('leaked_eval_examples', 0),
      constants.MAX_LEAKED_FRACTION_PROPERTY: leakage.get('max_leaked_fraction', 0.0),
  }
