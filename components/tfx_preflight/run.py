"""Runs the checks and writes the report: the one code path shared by the TFX executor and the CLI.

Inputs are plain values (split -> file pattern, protos, paths), not artifacts, so the whole gate can run and be tested
without ML Metadata. Statistics are computed at most once and shared by the skew and loss checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import unicodedata
from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx.dsl.io import fileio
from tfx.utils import io_utils

from tfx_preflight import constants, file_writes
from tfx_preflight.checks.label_proxy import check as label_proxy
from tfx_preflight.checks.leakage import check as leakage
from tfx_preflight.checks.leakage import history, history_findings
from tfx_preflight.checks.loss import check as loss
from tfx_preflight.checks.skew import check as skew
from tfx_preflight.checks.skew import spans as span_skew
from tfx_preflight.config import ConfigError, PreflightConfig, resolve_splits
from tfx_preflight.constants import Status
from tfx_preflight.inputs import data, provenance, read_pass
from tfx_preflight.inputs import statistics as statistics_lib
from tfx_preflight.inputs.statistics import StatisticsBySplit
from tfx_preflight.report import build as report
from tfx_preflight.report import pages as render
from tfx_preflight.report import progress, report_dir
from tfx_preflight.report.results import CheckResult, Report, settled_checks, status_for, verdict_of


@dataclasses.dataclass(frozen=True)
class ExamplesArtifact:
  """One Examples artifact of the inputs (one span of a window): where it is and its split -> file pattern."""
  uri: str
  span: int
  version: int
  patterns: Mapping[str, str]


@dataclasses.dataclass
class PreflightInputs:
  """What the gate looks at. Only `examples` is required."""
  # split name -> file pattern(s) of tf.Example TFRecord files (gzip or not): one per Examples artifact, as Trainer
  # reads every span of a window (every span's train split is train, every span's eval split is eval).
  examples: Dict[str, data.Patterns]
  # split name -> statistics, e.g. StatisticsGen's output; computed with TFDV when None.
  statistics: Optional[StatisticsBySplit] = None
  schema: Optional[schema_pb2.Schema] = None
  module_file: Optional[str] = None
  transform_graph_uri: Optional[str] = None
  hyperparameters: Optional[Dict[str, Any]] = None
  # As Trainer takes them (see loss.check_loss): run_fn name or dotted path, custom_config, transformed examples.
  run_fn: Optional[str] = None
  custom_config: Optional[Dict[str, Any]] = None
  transformed_examples: Optional[Dict[str, str]] = None
  # Free-form description of where inputs came from, copied into the report.
  provenance: Dict[str, Any] = dataclasses.field(default_factory=dict)
  # For CSV input staged as TFRecords: maps staged records back to CSV file and line (csv_lines.CsvLocations).
  csv_locations: Optional[Any] = None
  # The Examples artifacts `examples` was made of (the executor sets it): each counted in the report.
  examples_artifacts: Sequence[ExamplesArtifact] = ()
  # Earlier runs' train hashes (train_hashes directories) joined with eval; where this run's are saved if it blesses.
  history: Sequence[str] = ()
  save_history: Optional[str] = None
  # Where the statistics the read pass computes are also written, laid out as StatisticsGen's output (the
  # component's `example_statistics`): they are computed even when no check needs them. Not with `statistics`.
  statistics_output: Optional[str] = None


def _needs_statistics(config: PreflightConfig, inputs: PreflightInputs) -> bool:
  return config.skew.mode != 'off' or _runs_loss(config, inputs) or inputs.statistics_output is not None


def _runs_loss(config: PreflightConfig, inputs: PreflightInputs) -> bool:
  return loss.skip_reason(config.loss, inputs.module_file, inputs.run_fn) is None


def _schema_path(inputs: PreflightInputs, statistics: Optional[StatisticsBySplit], train_split: str,
                 output_dir: str) -> Optional[str]:
  """A schema file for the loss check's input_fn: the given schema, else one inferred from train statistics."""
  schema = inputs.schema
  if schema is None and statistics is not None:
    import tensorflow_data_validation as tfdv  # Heavy import, only when a schema must be inferred.
    schema = tfdv.infer_schema(statistics[train_split])
  if schema is None:
    return None
  path = os.path.join(output_dir, 'inputs', 'schema.pbtxt')
  io_utils.write_pbtxt_file(path, schema)
  return path


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


def _feature_names(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> set:
  return {'.'.join(f.path.step) or f.name for dataset in statistics.datasets for f in dataset.features}


def _check_keys_present(config: PreflightConfig, statistics: StatisticsBySplit, splits: Sequence[str]) -> None:
  """label_key and group_key must name a feature of every split: checking without them would prove nothing."""
  check_names(config, {split: _feature_names(statistics[split]) for split in splits})


def _shown(names: Iterable[str]) -> str:
  """Names listed for a message; one holding an invisible character (a byte-order mark, a zero-width space) is quoted
  with it escaped, so 'label' and '\\ufefflabel' do not look the same."""
  names = [name if name.isprintable() else repr(name) for name in sorted(names)]
  return (', '.join(names[:20]) + (', ...' if len(names) > 20 else '')) or '(none)'


def _bom_hint(key: str, names: Iterable[str]) -> str:
  return (" (a CSV saved with a UTF-8 byte-order mark: CsvExampleGen keeps it in the first column's name; save the "
          'files as UTF-8 without BOM)') if '\ufeff' + key in names else ''


def _normal_form(name: str) -> str:
  return next((form for form in ('NFC', 'NFD') if unicodedata.normalize(form, name) == name), 'mixed')


def _check_normalization(names_by_split: Mapping[str, Iterable[str]]) -> None:
  """Feature names that differ only in Unicode normalization ('café' composed in one split, 'e' + combining accent in
  another) print alike, and TFX takes them for two features: each split would seem to miss the other's."""
  seen: Dict[str, Tuple[str, str]] = {}
  for split, names in sorted(names_by_split.items()):
    for name in sorted(names):
      first = seen.setdefault(unicodedata.normalize('NFC', name), (name, split))
      if first[0] != name:
        raise data.InputError(
            f'feature {first[0]!r} of split {first[1]!r} ({_normal_form(first[0])}: {ascii(first[0])}) and {name!r} '
            f'of split {split!r} ({_normal_form(name)}: {ascii(name)}) differ only in Unicode normalization; TFX and '
            'the model take them for two different features. Write the names in one form (NFC).')


def check_names(config: PreflightConfig, names_by_split: Mapping[str, Iterable[str]]) -> None:
  """Every feature name the user gave, checked against the features the data really has, whichever checks run:
  label_key and leakage.group_key in every split, each section's exclude_features in at least one split (an ID may
  exist in train only). A misspelled name would otherwise silently check something else."""
  names_by_split = {split: set(names) for split, names in names_by_split.items()}
  _check_normalization(names_by_split)
  for setting, key in (('label_key', config.label_key), ('leakage.group_key', config.leakage.group_key)):
    for split, names in names_by_split.items():
      if key and key not in names:
        raise data.InputError(f'{setting} {key!r} is not a feature of split {split!r}; its features: '
                              f'{_shown(names)}{_bom_hint(key, names)}.')
  seen = set().union(*names_by_split.values())
  excluded = [('skew.exclude_features', config.skew.exclude_features),
              ('leakage.exclude_features', config.leakage.exclude_features),
              ('label_proxy.exclude_features', config.label_proxy.exclude_features),
              ('exclude_features', config.exclude_features)]
  for setting, names in excluded:
    unknown = [name for name in names if name not in seen]
    if unknown:
      raise data.InputError(f'{setting} names {", ".join(map(repr, unknown))}, which no example has (misspelled? '
                            f'it would be compared after all); features: {_shown(seen)}.')


def check_schema_describes_the_data(schema: Any, train_statistics: Any) -> None:
  """A schema none of whose features the data has is a schema of other data (or of Transform's output): its
  comparators would set no threshold and its types describe nothing, while the report said they were used."""
  if schema is None or not schema.feature:
    return
  described = {f.name for f in schema.feature}
  names = _feature_names(train_statistics)
  if not described & names:
    raise data.InputError(f'the schema describes none of the features of the data ({_shown(described)}); features: '
                          f'{_shown(names)}. A schema of other data, or of transformed features? Its thresholds '
                          'would apply to nothing.')


def _launch_loss_probe(inputs: PreflightInputs, config: PreflightConfig, output_dir: str) -> Optional[loss.LossCheck]:
  """The loss probe's process, launched before anything else: Python's start and TensorFlow's import (most of its
  time) overlap input validation, statistics and the Beam checks; its request follows in `_start_loss_check`."""
  if not _runs_loss(config, inputs):
    return None
  return loss.LossCheck.start(config.loss, os.path.join(output_dir, 'loss'), inputs.transform_graph_uri)


def _start_loss_check(inputs: PreflightInputs, config: PreflightConfig, examples: Mapping[str, str], train: str,
                      evals: Sequence[str], statistics: Optional[StatisticsBySplit], output_dir: str,
                      launched: Optional[loss.LossCheck]) -> Optional[loss.LossCheck]:
  """Sends the probe `_launch_loss_probe` started its request (the schema and statistics are known now); it then
  runs in the background, mostly importing the user's module, while the skew and leakage checks run on another core.
  None when the loss check does not run (then nothing was launched)."""
  if launched is None:
    return None
  logging.info('Preflight: loss check on %s (in the background)', inputs.module_file or inputs.run_fn)
  return launched.send(loss.LossInputs(
      inputs.module_file, examples, train, tuple(evals), config.label_key,
      _schema_path(inputs, statistics, train, output_dir), inputs.transform_graph_uri, inputs.hyperparameters,
      statistics, run_fn=inputs.run_fn, custom_config=inputs.custom_config,
      transformed_examples=inputs.transformed_examples))


def _skew(config: PreflightConfig, statistics: Optional[StatisticsBySplit], train: str, evals: Sequence[str],
          inputs: PreflightInputs, outputs: read_pass.PassOutputs) -> CheckResult:
  if config.skew.mode == 'off':
    return CheckResult.skipped(config.off_reason(constants.SKEW))
  logging.info('Preflight: skew check')
  with progress.stage('skew') as stage:
    stage.result = skew.check_skew(statistics, train, evals, config.with_exclusions(constants.SKEW), inputs.schema,
                                   config.label_key)
    if outputs.span_statistics is not None:
      stage.result = _with_span_departures(stage.result, outputs.span_statistics, config, inputs)
  return stage.result


def _with_span_departures(result: CheckResult, span_statistics: Mapping[str, Any], config: PreflightConfig,
                          inputs: PreflightInputs) -> CheckResult:
  """The skew result with the spans of a window that depart from the others (span_skew.py): their warnings among
  its findings, one row per span and split under `spans`."""
  artifacts = [{'span': a.span, 'version': a.version} for a in inputs.examples_artifacts]
  found, rows = span_skew.check_span_departures(span_statistics, artifacts, config.with_exclusions(constants.SKEW),
                                                inputs.schema, config.label_key)
  findings = skew.sorted_findings([*result.findings, *found])
  status = status_for(findings, config.skew.mode) if found else result.status
  reason = result.reason if status == Status.NOT_CHECKED else None
  return CheckResult(status, tuple(findings), reason=reason, details=dataclasses.replace(result.details, spans=rows))


def _runs_label_proxy(config: PreflightConfig) -> bool:
  return config.label_proxy.mode != 'off' and bool(config.label_key)


def _pass_request(config: PreflightConfig, inputs: PreflightInputs, examples: Mapping[str, str], train: str,
                  evals: Sequence[str], compute_statistics: bool, output_dir: str) -> read_pass.PassRequest:
  """What the one read of every split feeds: statistics (when needed and not supplied), leakage, label proxy."""
  leakage_part = label_proxy_part = None
  if config.leakage.mode != 'off':
    plan = leakage.make_plan(examples, train, evals, config.with_exclusions(constants.LEAKAGE), config.label_key)
    plan, stored = _with_history(plan, inputs)
    leakage_part = read_pass.LeakagePart(plan, os.path.join(output_dir, constants.LEAKAGE), stored)
  elif inputs.history or inputs.save_history:
    raise ConfigError('history and save_history (train hashes) need the leakage check: leakage.mode is off.')
  if _runs_label_proxy(config):
    options = label_proxy.count_options(config.with_exclusions(constants.LABEL_PROXY), config.label_key)
    label_proxy_part = read_pass.LabelProxyPart(options, os.path.join(output_dir, constants.LABEL_PROXY))
  return read_pass.PassRequest(
      examples=examples, splits=(train, *evals), schema=inputs.schema, leakage=leakage_part,
      label_proxy=label_proxy_part,
      statistics_dir=os.path.join(output_dir, constants.STATISTICS_DIR) if compute_statistics else None,
      rows_per_file_dir=os.path.join(output_dir, 'inputs') if inputs.examples_artifacts else None,
      # Supplied statistics are checked feature by feature against what this pass sees (provenance.py).
      sketch_dir=os.path.join(output_dir, 'inputs', 'sketches') if inputs.statistics is not None else None,
      span_statistics=_span_statistics_part(config, inputs, examples, output_dir))


def _span_statistics_part(config: PreflightConfig, inputs: PreflightInputs, examples: Mapping[str, Any],
                          output_dir: str) -> Optional[read_pass.SpanStatisticsPart]:
  """Per-span statistics of a window (two or more Examples artifacts) for span_skew.py, when skew runs."""
  if config.skew.mode == 'off' or len(inputs.examples_artifacts) < 2:
    return None
  spans = {split: tuple(tuple(data.matching_files(a.patterns[split], f'split {split!r}'))
                        for a in inputs.examples_artifacts)
           for split in examples if all(split in a.patterns for a in inputs.examples_artifacts)}
  return read_pass.SpanStatisticsPart(os.path.join(output_dir, 'inputs'), spans)


def _with_history(plan: Any, inputs: PreflightInputs) -> Any:
  """The leakage plan with the stored hashes it can compare (history.select) and, when this run's are to be saved,
  their staging directory (emptied first)."""
  stored = tuple(history.load(directory) for directory in inputs.history)
  used, _ = history.select(stored, plan.exclude, plan.label_key)
  staging = None
  if inputs.save_history:
    staging = history.staging_dir(inputs.save_history)
    if fileio.exists(staging):
      fileio.rmtree(staging)
    fileio.makedirs(staging)
  return dataclasses.replace(plan, history_files=tuple((i, f) for i, item in enumerate(used) for f in item.files),
                             history_dirs=tuple(item.path for item in used), save_hashes_dir=staging), stored


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
    stage.result = {'examples_read': read_pass.examples_read(outputs, request.splits),
                    'read_for': list(request.consumers())}
  return outputs


def _leakage(config: PreflightConfig, request: read_pass.PassRequest, outputs: read_pass.PassOutputs
             ) -> CheckResult:
  if request.leakage is None:
    return CheckResult.skipped(config.off_reason(constants.LEAKAGE))
  logging.info('Preflight: leakage check')
  with progress.stage('leakage') as stage:
    stage.result = leakage.summarize(outputs.leakage, request.leakage.plan, config.with_exclusions(constants.LEAKAGE),
                                     request.leakage.output_dir)
    if request.leakage.history:
      stage.result = history_findings.with_history(stage.result, outputs.leakage, request.leakage.plan,
                                                   request.leakage.history, config.leakage)
  return stage.result


def _label_proxy(config: PreflightConfig, request: read_pass.PassRequest, outputs: read_pass.PassOutputs,
                 train: str, evals: Sequence[str]) -> CheckResult:
  """From the counts the read pass made of the same batches as the other checks."""
  if config.label_proxy.mode == 'off':
    return CheckResult.skipped(config.off_reason(constants.LABEL_PROXY))
  if not config.label_key:
    return CheckResult.skipped('no label_key: nothing to predict')
  logging.info('Preflight: label-proxy check')
  with progress.stage('label proxy') as stage:
    counts = outputs.label_proxy
    stage.result = label_proxy.summarize(counts[train], {split: counts[split] for split in evals}, train,
                                         config.with_exclusions(constants.LABEL_PROXY), config.label_key)
  return stage.result


def run_checks(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
               output_dir: str) -> Report:
  """Runs every enabled check and returns the report (not yet written). Bad inputs raise with a clear message.

  Every split is read once (read_pass.py): statistics when needed and not supplied, leakage hashes and label-proxy
  counts come from the same decoded batches. The loss probe is launched first (Python and TensorFlow start while the
  rest runs) and gets its request once the statistics it needs (its inferred schema) are known: after the pass when
  they are computed, otherwise before it, so that it overlaps the pass on another core.
  """
  launched = _launch_loss_probe(inputs, config, output_dir)
  with launched or contextlib.nullcontext():  # Any error below, even in input validation, stops the probe.
    return _run_checks(inputs, config, make_pipeline, output_dir, launched)


def _run_checks(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
                output_dir: str, launched: Optional[loss.LossCheck]) -> Report:
  train, evals = resolve_splits(config, tuple(inputs.examples))
  used = (train, *evals)
  examples = {s: inputs.examples[s] for s in used}
  data.validate_examples(examples)
  if _runs_loss(config, inputs):
    mixed = data.mixed_compression(examples)
    if mixed is not None:
      raise mixed
  statistics = inputs.statistics
  if statistics is not None and inputs.statistics_output is not None:
    raise ConfigError('statistics are given and also asked for as an output: give SchemaGen the statistics given.')
  compute_statistics = statistics is None and _needs_statistics(config, inputs)
  if statistics is not None:
    missing = [s for s in used if s not in statistics]
    if missing:
      raise ValueError(f'The statistics have no split(s) {", ".join(missing)}; they have: '
                       f'{", ".join(sorted(statistics))}.')
  request = _pass_request(config, inputs, examples, train, evals, compute_statistics, output_dir)
  outputs = None
  if compute_statistics:
    outputs = _read(request, examples, make_pipeline)
    statistics = outputs.statistics
    if inputs.statistics_output is not None:
      statistics_lib.write_statistics(statistics, inputs.statistics_output)
  if statistics is not None:
    _check_keys_present(config, statistics, used)
    check_schema_describes_the_data(inputs.schema, statistics[train])
    provenance.check_transform_graph_reads_the_examples(inputs.transform_graph_uri, statistics, used)

  loss_check = _start_loss_check(inputs, config, examples, train, evals, statistics, output_dir, launched)
  with loss_check or contextlib.nullcontext():  # An error in another check stops the probe.
    if outputs is None:
      outputs = _read(request, examples, make_pipeline)
    counted = read_pass.examples_read(outputs, used)
    differences = []
    if inputs.statistics is not None:
      differences += check_statistics_count_the_examples(inputs.statistics, counted, inputs.provenance)
      provenance.check_statistics_describe_the_examples(inputs.statistics, outputs.sketches or {}, inputs.provenance)
    differences += provenance.check_transformed_examples(inputs.transformed_examples, inputs.transform_graph_uri,
                                                         counted, inputs.provenance)
    # Differences inside the tolerance, yet not quite the same examples: in report.json's inputs and report.html.
    described = {**inputs.provenance, **({'count_differences': differences} if differences else {})}
    checks: Dict[str, CheckResult] = {
        constants.SKEW: _skew(config, statistics, train, evals, inputs, outputs),
        constants.LEAKAGE: _leakage(config, request, outputs),
        constants.LABEL_PROXY: _label_proxy(config, request, outputs, train, evals)}
    leakage_details = checks[constants.LEAKAGE].details_dict()
    if statistics is None and leakage_details.get('features_seen'):  # No statistics: the hashing saw the names.
      check_names(config, leakage_details['features_seen'])
    if inputs.csv_locations and checks[constants.LEAKAGE].status != Status.SKIPPED:
      from tfx_preflight.inputs import csv_lines
      checks[constants.LEAKAGE] = csv_lines.relocated_leakage(checks[constants.LEAKAGE], inputs.csv_locations)
    if loss_check is None:
      checks[constants.LOSS] = CheckResult.skipped(config.off_reason(constants.LOSS) if config.loss.mode == 'off' else
                                                   loss.skip_reason(config.loss, inputs.module_file, inputs.run_fn))
    else:
      logging.info('Preflight: waiting for the loss check on %s', inputs.module_file)
      with progress.stage('loss probe') as stage:
        checks[constants.LOSS] = stage.result = loss_check.result()

  if inputs.examples_artifacts:
    described['examples_artifacts'] = artifacts_read(inputs.examples_artifacts, outputs.rows_per_file, used)
  return Report(checks, train, tuple(evals), config.to_dict(), described, statistics)


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
                  output_dir: str) -> Dict[str, Any]:
  """Runs the checks and writes report.json and report.html under `output_dir`; returns the report.

  A transaction (report_dir.py): what `output_dir` held is invalidated first, the run writes into a fresh directory
  published at the end, so a run that fails leaves no report.json that could be mistaken for its result.
  """
  return run_preflight_report(inputs, config, make_pipeline, output_dir)[1]


def run_preflight_report(inputs: PreflightInputs, config: PreflightConfig,
                         make_pipeline: Callable[[], beam.Pipeline], output_dir: str) -> Tuple[Report, Dict[str, Any]]:
  """`run_preflight`, returning the typed report beside report.json's content (for headline_numbers)."""
  with report_dir.transaction(output_dir) as work_dir:
    return check_and_write_report(inputs, config, make_pipeline, work_dir)


def check_and_write(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
                    work_dir: str) -> Dict[str, Any]:
  """Runs the checks and writes the report into `work_dir` (a transaction's fresh directory; the CLI opens its
  transaction before validating its flags)."""
  return check_and_write_report(inputs, config, make_pipeline, work_dir)[1]


def check_and_write_report(inputs: PreflightInputs, config: PreflightConfig,
                           make_pipeline: Callable[[], beam.Pipeline], work_dir: str) -> Tuple[Report, Dict[str, Any]]:
  """`check_and_write`, returning the typed report beside report.json's content."""
  outcome = run_checks(inputs, config, make_pipeline, work_dir)
  result = write_report(outcome, work_dir)
  if inputs.save_history:
    save_history(result, config, inputs.save_history)
  return outcome, result


def save_history(result: Mapping[str, Any], config: PreflightConfig, destination: str) -> Dict[str, Any]:
  """Publishes the train hashes the read pass staged: kept when the run blessed (Trainer will train on them), else
  the manifest alone says nothing was trained on. Returns the manifest."""
  details = result['checks'][constants.LEAKAGE]
  train = result['splits']['train']
  return history.publish(history.staging_dir(destination), destination, report.is_blessed(result),
                         details['examples'][train], details['excluded_features'], config.label_key,
                         details['features_seen'][train])


def headline_numbers(outcome: Report) -> Dict[str, Any]:
  """The numbers worth an MLMD custom property (searchable without opening the report), read from the typed report
  as report.json has them (every check settled: a pass that compared nothing is not_checked)."""
  checks = settled_checks(outcome.checks)
  verdict = verdict_of(checks)
  leakage = checks[constants.LEAKAGE].headline()
  return {
      constants.VERDICT_PROPERTY: verdict,
      constants.BLESSED_PROPERTY: int(verdict in constants.BLESSED_VERDICTS),
      **{constants.status_property(check): checks[check].status for check in constants.CHECK_NAMES},
      **{constants.findings_property(check): len(checks[check].findings) for check in (constants.SKEW, constants.LOSS)},
      constants.LEAKED_EVAL_EXAMPLES_PROPERTY: leakage.get('leaked_eval_examples', 0),
      constants.MAX_LEAKED_FRACTION_PROPERTY: leakage.get('max_leaked_fraction', 0.0),
  }
