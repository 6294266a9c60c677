"""Runs the checks and writes the report: the one code path shared by the TFX executor and the CLI.

Inputs are plain values (split -> file pattern, protos, paths), not artifacts, so the whole gate can run and be tested
without ML Metadata. Statistics are computed at most once and shared by the skew and loss checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx.dsl.io import fileio
from tfx.utils import io_utils

from tfx_preflight import data, html_report, leakage, loss, report, skew
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
  # Free-form description of where inputs came from, copied into the report.
  provenance: Dict[str, Any] = dataclasses.field(default_factory=dict)
  # For CSV input staged as TFRecords: maps staged records back to CSV file and line (csv_staging.CsvLocations).
  csv_locations: Optional[Any] = None


def _needs_statistics(config: PreflightConfig, inputs: PreflightInputs) -> bool:
  return config.skew.mode != 'off' or _runs_loss(config, inputs)


def _runs_loss(config: PreflightConfig, inputs: PreflightInputs) -> bool:
  return config.loss.mode != 'off' and bool(inputs.module_file)


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
  keys = [('label_key', config.label_key)]
  if config.leakage.mode != 'off':
    keys.append(('leakage.group_key', config.leakage.group_key))
  for split in splits:
    names = _feature_names(statistics[split])
    for setting, key in keys:
      if key and key not in names:
        shown = ', '.join(sorted(names)[:20]) + (', ...' if len(names) > 20 else '')
        raise data.InputError(f'{setting} {key!r} is not a feature of split {split!r}; its features: {shown or "(none)"}.')


def unknown_excluded_features(config: PreflightConfig, section: str, statistics: StatisticsBySplit,
                              splits: Sequence[str]) -> None:
  """A misspelled excluded feature would silently be compared after all: names no split has are an error."""
  seen = set().union(*(_feature_names(statistics[s]) for s in splits))
  unknown = [name for name in config.excluded(section) if name not in seen]
  if unknown:
    shown = ', '.join(sorted(seen)[:20]) + (', ...' if len(seen) > 20 else '')
    raise data.InputError(f'exclude_features names {", ".join(map(repr, unknown))}, which no example has '
                          f'(misspelled?): it would be compared after all. Features: {shown}.')


def _start_loss_check(inputs: PreflightInputs, config: PreflightConfig, examples: Mapping[str, str], train: str,
                      evals: Sequence[str], statistics: Optional[StatisticsBySplit],
                      output_dir: str) -> Optional[loss.LossCheck]:
  """Starts the loss probe first: it mostly imports TensorFlow and the user's module, so it overlaps well with the
  skew and leakage checks on another core."""
  if loss.skip_reason(config.loss, inputs.module_file):
    return None
  logging.info('Preflight: loss check on %s (in the background)', inputs.module_file)
  return loss.LossCheck(inputs.module_file, examples, train, evals, config.loss, config.label_key,
                        _schema_path(inputs, statistics, train, output_dir), inputs.transform_graph_uri,
                        inputs.hyperparameters, statistics, os.path.join(output_dir, 'loss'))


def _skew(config: PreflightConfig, statistics: Optional[StatisticsBySplit], train: str, evals: Sequence[str],
          inputs: PreflightInputs) -> Dict[str, Any]:
  if config.skew.mode == 'off':
    return report.skipped('skew.mode is off')
  logging.info('Preflight: skew check')
  return skew.check_skew(statistics, train, evals, config.with_exclusions('skew'), inputs.schema, config.label_key)


def _leakage(config: PreflightConfig, examples: Mapping[str, str], train: str, evals: Sequence[str],
             make_pipeline: Callable[[], beam.Pipeline], output_dir: str) -> Dict[str, Any]:
  if config.leakage.mode == 'off':
    return report.skipped('leakage.mode is off')
  logging.info('Preflight: leakage check')
  with _naming_unreadable_file(examples):
    return leakage.check_leakage(examples, train, evals, config.with_exclusions('leakage'), make_pipeline,
                                 os.path.join(output_dir, 'leakage'), config.label_key)


def run_checks(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
               output_dir: str) -> Dict[str, Any]:
  """Runs every enabled check and returns the report (not yet written). Bad inputs raise with a clear message."""
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
    with _naming_unreadable_file(examples):
      statistics = skew.generate_statistics(examples, make_pipeline, os.path.join(output_dir, 'statistics'),
                                            inputs.schema)
  elif statistics is not None:
    missing = [s for s in used if s not in statistics]
    if missing:
      raise ValueError(f'The statistics have no split(s) {", ".join(missing)}; they have: '
                       f'{", ".join(sorted(statistics))}.')
  if statistics is not None:
    _check_keys_present(config, statistics, used)
    if config.skew.mode != 'off':
      unknown_excluded_features(config, 'skew', statistics, used)

  loss_check = _start_loss_check(inputs, config, examples, train, evals, statistics, output_dir)
  with loss_check or contextlib.nullcontext():  # An error in another check stops the probe.
    checks = {'skew': _skew(config, statistics, train, evals, inputs),
              'leakage': _leakage(config, examples, train, evals, make_pipeline, output_dir)}
    if inputs.csv_locations and checks['leakage'].get('status') != 'skipped':
      from tfx_preflight import csv_staging
      csv_staging.relocate_leakage(checks['leakage'], inputs.csv_locations)
    if loss_check is None:
      checks['loss'] = report.skipped(loss.skip_reason(config.loss, inputs.module_file))
    else:
      logging.info('Preflight: waiting for the loss check on %s', inputs.module_file)
      checks['loss'] = loss_check.result()

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
      'skew': skew.render_html(result['checks']['skew'], statistics or {}, train, evals, output_dir),
      'leakage': leakage.render_html(result['checks']['leakage']),
      'loss': loss.render_html(result['checks']['loss']),
  }
  report.write_atomically(os.path.join(output_dir, report.REPORT_HTML), html_report.render(result, fragments))
  report.write_atomically(os.path.join(output_dir, report.REPORT_JSON), report.to_json(result))
  return result


def run_preflight(inputs: PreflightInputs, config: PreflightConfig, make_pipeline: Callable[[], beam.Pipeline],
                  output_dir: str) -> Dict[str, Any]:
  """Runs the checks and writes report.json and report.html under `output_dir`; returns the report.

  A report left in `output_dir` by an earlier run is removed first, so a run that fails leaves no report.json that
  could be mistaken for its result.
  """
  for name in (report.REPORT_JSON, report.REPORT_HTML):
    stale = os.path.join(output_dir, name)
    if fileio.exists(stale):
      fileio.remove(stale)
  return write_report(run_checks(inputs, config, make_pipeline, output_dir), output_dir)


def headline_numbers(result: Mapping[str, Any]) -> Dict[str, Any]:
  """The numbers worth an MLMD custom property (searchable without opening the report)."""
  checks = result['checks']
  cross = checks['leakage'].get('cross_split', [])
  numbers: Dict[str, Any] = {
      'verdict': result['verdict'],
      'blessed': int(report.is_blessed(result)),
      'skew_status': checks['skew']['status'],
      'leakage_status': checks['leakage']['status'],
      'loss_status': checks['loss']['status'],
      'skew_findings': len(checks['skew'].get('findings', [])),
      'loss_findings': len(checks['loss'].get('findings', [])),
      'leaked_eval_examples': sum(int(c.get('duplicate_examples', 0)) for c in cross),
      'max_leaked_fraction': max((float(c.get('fraction_of_b', 0.0)) for c in cross), default=0.0),
  }
  return numbers
