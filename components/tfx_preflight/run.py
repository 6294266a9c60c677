"""Runs the checks and writes the report: the one code path shared by the TFX executor and the CLI.

Inputs are plain values (split -> file pattern, protos, paths), not artifacts, so the whole gate can run and be tested
without ML Metadata. Statistics are computed at most once and shared by the skew and loss checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional, Sequence

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx.utils import io_utils

from tfx_preflight import constants, data, html_report, label_proxy, leakage, loss, progress, report, report_dir, skew
from tfx_preflight import statistics as statistics_lib
from tfx_preflight.config import ConfigError, PreflightConfig, resolve_splits

StatisticsBySplit = Dict[str, statistics_pb2.DatasetFeatureStatisticsList]


@dataclasses.dataclass
class PreflightInputs:
  """What the gate looks at. Only `examples` is required."""
  # split name -> file pattern of tf.Example TFRecord files (gzip or not).
  examples: Dict[str, str]
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
  # For CSV input staged as TFRecords: maps staged records back to CSV file and line (csv_staging.CsvLocations).
  csv_locations: Optional[Any] = None


def _needs_statistics(config: PreflightConfig, inputs: PreflightInputs) -> bool:
  return config.skew.mode != 'off' or _runs_loss(config, inputs)


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
    if bad is not None:
      raise bad from e
    raise


def _feature_names(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> set:
  return {'.'.join(f.path.step) or f.name for dataset in statistics.datasets for f in dataset.features}


def _check_keys_present(config: PreflightConfig, statistics: StatisticsBySplit, splits: Sequence[str]) -> None:
  """label_key and group_key must name a feature of every split: checking without them would prove nothing."""
  check_names(config, {split: _feature_names(statistics[split]) for split in splits})


def _shown(names: Iterable[str]) -> str:
  names = sorted(names)
  return (', '.join(names[:20]) + (', ...' if len(names) > 20 else '')) or '(none)'


def check_names(config: PreflightConfig, names_by_split: Mapping[str, Iterable[str]]) -> None:
  """Every feature name the user gave, checked against the features the data really has, whichever checks run:
  label_key and leakage.group_key in every split, each section's exclude_features in at least one split (an ID may
  exist in train only). A misspelled name would otherwise silently check something else."""
  names_by_split = {split: set(names) for split, names in names_by_split.items()}
  for setting, key in (('label_key', config.label_key), ('leakage.group_key', config.leakage.group_key)):
    for split, names in names_by_split.items():
      if key and key not in names:
        raise data.InputError(f'{setting} {key!r} is not a feature of split {split!r}; its features: '
                              f'{_shown(names)}.')
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


def _launch_loss_probe(inputs: PreflightInputs, config: PreflightConfig, output_dir: str) -> Optional[loss.LossCheck]:
  """The loss probe's process, launched before anything else: Python's start and TensorFlow's import (most of its
  time) overlap input validation, statistics and the Beam checks; its request follows in `_start_loss_check`."""
  if not _runs_loss(config, inputs):
    return None
  return loss.LossCheck.start(config.loss, os.path.join(output_dir, 'loss'), inputs.transform_graph_uri)


def _start_loss_check(inputs: PreflightInputs, config: PreflightConfig, examples: Mapping[str, str], train: str,
                      evals: Sequence[str], statistics: Optional[StatisticsBySplit], output_dir: str,
                      launched: Optional[loss.LossCheck] = None) -> Optional[loss.LossCheck]:
  """Sends the launched probe its request (the schema and statistics are known now); it then runs in the background,
  mostly importing the user's module, while the skew and leakage checks run on another core."""
  if loss.skip_reason(config.loss, inputs.module_file, inputs.run_fn):
    return None
  logging.info('Preflight: loss check on %s (in the background)', inputs.module_file or inputs.run_fn)
  running = launched or loss.LossCheck.start(config.loss, os.path.join(output_dir, 'loss'),
                                             inputs.transform_graph_uri)
  return running.send(inputs.module_file, examples, train, evals, config.label_key,
                      _schema_path(inputs, statistics, train, output_dir), inputs.transform_graph_uri,
                      inputs.hyperparameters, statistics, run_fn=inputs.run_fn, custom_config=inputs.custom_config,
                      transformed_examples=inputs.transformed_examples)


def _skew(config: PreflightConfig, statistics: Optional[StatisticsBySplit], train: str, evals: Sequence[str],
          inputs: PreflightInputs) -> Dict[str, Any]:
  if config.skew.mode == 'off':
    return report.skipped('skew.mode is off')
  logging.info('Preflight: skew check')
  with progress.stage('skew') as stage:
    stage.result = skew.check_skew(statistics, train, evals, config.with_exclusions('skew'), inputs.schema, config.label_key)
  return stage.result


def _leakage(config: PreflightConfig, examples: Mapping[str, str], train: str, evals: Sequence[str],
             make_pipeline: Callable[[], beam.Pipeline], output_dir: str) -> Dict[str, Any]:
  if config.leakage.mode == 'off':
    return report.skipped('leakage.mode is off')
  logging.info('Preflight: leakage check')
  with _naming_unreadable_file(examples), progress.stage('leakage') as stage:
    stage.result = leakage.check_leakage(examples, train, evals, config.with_exclusions('leakage'), make_pipeline,
                                         os.path.join(output_dir, 'leakage'), config.label_key)
  return stage.result


def _label_proxy(config: PreflightConfig, examples: Mapping[str, str], train: str, evals: Sequence[str],
                 make_pipeline: Callable[[], beam.Pipeline], output_dir: str) -> Dict[str, Any]:
  """Its own Beam pass for now (the leakage pass decodes the same batches; see label_proxy's docstring)."""
  if config.label_proxy.mode == 'off':
    return report.skipped('label_proxy.mode is off')
  if not config.label_key:
    return report.skipped('no label_key: nothing to predict')
  logging.info('Preflight: label-proxy check')
  with _naming_unreadable_file(examples), progress.stage('label proxy') as stage:
    stage.result = label_proxy.check_label_proxy(examples, train, evals, config.with_exclusions('label_proxy'),
                                                 make_pipeline, os.path.join(output_dir, 'label_proxy'),
                                                 config.label_key)
  return stage.result


def run_checks(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
               output_dir: str) -> Dict[str, Any]:
  """Runs every enabled check and returns the report (not yet written). Bad inputs raise with a clear message."""
  launched = _launch_loss_probe(inputs, config, output_dir)
  with launched or contextlib.nullcontext():  # Any error below, even in input validation, stops the probe.
    return _run_checks(inputs, config, make_pipeline, output_dir, launched)


def _run_checks(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
                output_dir: str, launched: Optional[loss.LossCheck]) -> Dict[str, Any]:
  train, evals = resolve_splits(config, tuple(inputs.examples))
  used = (train, *evals)
  examples = {s: inputs.examples[s] for s in used}
  data.validate_examples(examples)
  if _runs_loss(config, inputs):
    mixed = data.mixed_compression(examples)
    if mixed is not None:
      raise mixed
  statistics = inputs.statistics
  if statistics is None and _needs_statistics(config, inputs):
    logging.info('Preflight: computing statistics of splits %s with TFDV', ', '.join(used))
    with _naming_unreadable_file(examples), progress.stage('statistics') as stage:
      statistics = stage.result = statistics_lib.generate_statistics(
          examples, make_pipeline, os.path.join(output_dir, constants.STATISTICS_DIR), inputs.schema)
  elif statistics is not None:
    missing = [s for s in used if s not in statistics]
    if missing:
      raise ValueError(f'The statistics have no split(s) {", ".join(missing)}; they have: '
                       f'{", ".join(sorted(statistics))}.')
  if statistics is not None:
    _check_keys_present(config, statistics, used)

  loss_check = _start_loss_check(inputs, config, examples, train, evals, statistics, output_dir, launched)
  with loss_check or contextlib.nullcontext():  # An error in another check stops the probe.
    checks = {'skew': _skew(config, statistics, train, evals, inputs),
              'leakage': _leakage(config, examples, train, evals, make_pipeline, output_dir),
              'label_proxy': _label_proxy(config, examples, train, evals, make_pipeline, output_dir)}
    if statistics is None and checks['leakage'].get('features_seen'):  # No statistics: the hashing saw the names.
      check_names(config, checks['leakage']['features_seen'])
    if inputs.csv_locations and checks['leakage'].get('status') != 'skipped':
      from tfx_preflight import csv_staging
      csv_staging.relocate_leakage(checks['leakage'], inputs.csv_locations)
    if loss_check is None:
      checks['loss'] = report.skipped(loss.skip_reason(config.loss, inputs.module_file, inputs.run_fn))
    else:
      logging.info('Preflight: waiting for the loss check on %s', inputs.module_file)
      with progress.stage('loss probe') as stage:
        checks['loss'] = stage.result = loss_check.result()

  result = report.build_report(checks, train, evals, inputs.provenance)
  result['config'] = config.to_dict()
  result['_statistics'] = statistics  # Used for rendering, dropped before writing.
  return result


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


def write_report(result: Dict[str, Any], output_dir: str) -> Dict[str, Any]:
  """Writes report.html, then report.json (last, atomically: its presence means a complete report)."""
  statistics = result.pop('_statistics', None)
  result = relative_to(result, output_dir)
  train, evals = result['splits']['train'], result['splits']['eval']
  fragments = {
      constants.SKEW: skew.render_html(result['checks'][constants.SKEW], statistics or {}, train, evals, output_dir),
      constants.LEAKAGE: leakage.render_html(result['checks'][constants.LEAKAGE]),
      constants.LOSS: loss.render_html(result['checks'][constants.LOSS]),
      constants.LABEL_PROXY: label_proxy.render_html(result['checks'][constants.LABEL_PROXY]),
  }
  report.write_atomically(os.path.join(output_dir, report.REPORT_HTML), html_report.render(result, fragments))
  report.write_atomically(os.path.join(output_dir, report.REPORT_JSON), report.to_json(result))
  return result


def run_preflight(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
                  output_dir: str) -> Dict[str, Any]:
  """Runs the checks and writes report.json and report.html under `output_dir`; returns the report.

  A transaction (report_dir.py): what `output_dir` held is invalidated first, the run writes into a fresh directory
  published at the end, so a run that fails leaves no report.json that could be mistaken for its result.
  """
  with report_dir.transaction(output_dir) as work_dir:
    return check_and_write(inputs, config, make_pipeline, work_dir)


def check_and_write(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
                    work_dir: str) -> Dict[str, Any]:
  """Runs the checks and writes the report into `work_dir` (a transaction's fresh directory; the CLI opens its
  transaction before validating its flags)."""
  return write_report(run_checks(inputs, config, make_pipeline, work_dir), work_dir)


def headline_numbers(result: Mapping[str, Any]) -> Dict[str, Any]:
  """The numbers worth an MLMD custom property (searchable without opening the report)."""
  checks = result['checks']
  cross = checks[constants.LEAKAGE].get('cross_split', [])
  numbers: Dict[str, Any] = {
      constants.VERDICT_PROPERTY: result['verdict'],
      constants.BLESSED_PROPERTY: int(report.is_blessed(result)),
      **{constants.status_property(check): checks[check]['status'] for check in constants.CHECK_NAMES},
      **{constants.findings_property(check): len(checks[check].get('findings', []))
         for check in (constants.SKEW, constants.LOSS)},
      constants.LEAKED_EVAL_EXAMPLES_PROPERTY: sum(int(c.get('duplicate_examples', 0)) for c in cross),
      constants.MAX_LEAKED_FRACTION_PROPERTY: max((float(c.get('fraction_of_b', 0.0)) for c in cross), default=0.0),
  }
  return numbers
