"""Preflight executor: resolves artifacts into plain inputs, runs the checks, writes the report and the blessing."""

import json
import logging
import os
from typing import Any, Dict, List, Optional

from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils, json_utils

from tfx_preflight import constants, file_writes, run, spec
from tfx_preflight.checks.leakage import history
from tfx_preflight.config import PreflightConfig, resolve_splits
from tfx_preflight.inputs import statistics as statistics_lib
from tfx_preflight.report import build as report_lib
from tfx_preflight.report import summaries


class PreflightBlocked(RuntimeError):
  """Raised with fail_on_block=True when the verdict does not bless (block or not_checked); the message is the
  findings summary."""


def _examples_by_split(examples: types.Artifact) -> Dict[str, str]:
  payload = examples_utils.get_payload_format(examples)
  if payload != example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE:
    raise ValueError(f'Preflight reads tf.Example payloads only; examples {examples.uri} have payload format '
                     f'{example_gen_pb2.PayloadFormat.Name(payload)}.')
  splits = artifact_utils.decode_split_names(examples.split_names)
  return {s: io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], s)) for s in splits}


def _int_property(artifact: types.Artifact, name: str) -> int:
  """`span` / `version`: a property, or (ExampleGen in TFX 1.16 writes them so) a custom property; 0 when unset."""
  if artifact.has_property(name):
    return int(getattr(artifact, name))
  return int(artifact.get_int_custom_property(name)) if artifact.has_custom_property(name) else 0


def _in_span_order(artifacts: List[types.Artifact]) -> List[types.Artifact]:
  """A span window's artifacts by (span, version, uri): the same window gives the same report whatever order the
  resolver returned."""
  return sorted(artifacts, key=lambda a: (_int_property(a, 'span'), _int_property(a, 'version'), a.uri))


def _describe(artifacts: List[types.Artifact]) -> List[run.ExamplesArtifact]:
  return [run.ExamplesArtifact(uri=a.uri, span=_int_property(a, 'span'), version=_int_property(a, 'version'),
                               patterns=_examples_by_split(a)) for a in _in_span_order(artifacts)]


def _patterns_by_split(artifacts: List[run.ExamplesArtifact], what: str) -> Dict[str, Any]:
  """split -> pattern (one artifact) or list of patterns, one per artifact, as Trainer reads every artifact of the
  channel; a split that some artifact lacks is left out (resolve_splits then names it if it is used)."""
  if len(artifacts) == 1:
    return dict(artifacts[0].patterns)
  common = set.intersection(*(set(a.patterns) for a in artifacts))
  partial = sorted(set().union(*(a.patterns for a in artifacts)) - common)
  if partial:
    logging.warning('Preflight: split(s) %s are not in every %s artifact: not checked.', ', '.join(partial), what)
  return {split: [a.patterns[split] for a in artifacts] for split in sorted(common)}


def _read_schema(schema: types.Artifact) -> schema_pb2.Schema:
  return io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri))


def _read_hyperparameters(hyperparameters: types.Artifact) -> Dict[str, Any]:
  path = io_utils.get_only_uri_in_dir(hyperparameters.uri)
  return json.loads(io_utils.read_string_file(path))


def _single(input_dict: Dict[str, List[types.Artifact]], key: str) -> Optional[types.Artifact]:
  artifacts = input_dict.get(key) or []
  return artifact_utils.get_single_instance(artifacts) if artifacts else None


def _set_custom_properties(artifact: types.Artifact, values: Dict[str, Any]) -> None:
  for name, value in values.items():
    if isinstance(value, float):
      artifact.set_float_custom_property(name, value)
    elif isinstance(value, int):
      artifact.set_int_custom_property(name, value)
    else:
      artifact.set_string_custom_property(name, str(value))


def _add_statistics_output(outputs: List[types.Artifact], config: PreflightConfig,
                           examples: List[run.ExamplesArtifact], inputs: run.PreflightInputs) -> None:
  """The `example_statistics` output (output_statistics=True): the read pass writes the statistics there, and the
  artifact gets StatisticsGen's properties: the splits the gate reads (train and its eval splits: every split by
  default), the span (of a window: the newest; the statistics are of the union Trainer reads), an unsampled read."""
  if not outputs:
    return
  statistics = artifact_utils.get_single_instance(outputs)
  inputs.statistics_output = statistics.uri
  train, evals = resolve_splits(config, tuple(inputs.examples))
  names = [train, *evals]
  statistics.split_names = artifact_utils.encode_split_names(names)
  statistics.span = max(a.span for a in examples)
  statistics.set_json_value_custom_property(constants.SAMPLE_RATE_BY_SPLIT_PROPERTY,
                                           json_utils.dumps({s: 1.0 for s in names}))


class Executor(base_beam_executor.BaseBeamExecutor):
  """Runs every enabled check in Beam pipelines made with this executor's beam_pipeline_args."""

  @staticmethod
  def _add_statistics(statistics: List[types.Artifact], examples: List[run.ExamplesArtifact], config: PreflightConfig,
                      inputs: run.PreflightInputs) -> None:
    """One ExampleStatistics artifact describes one Examples artifact: used as given. Statistics of a span window
    (several artifacts) cannot be merged exactly (TFDV's histograms and quantiles do not add up), so the read pass
    recomputes those of the union, which is what Trainer reads; the report says so."""
    if not statistics:
      return
    if len(statistics) == 1 and len(examples) == 1:
      train, evals = resolve_splits(config, tuple(inputs.examples))
      inputs.statistics = statistics_lib.load_artifact_statistics(statistics[0], [train, *evals])
      inputs.provenance['statistics'] = statistics[0].uri
      return
    inputs.provenance['statistics'] = {
        'given': [a.uri for a in _in_span_order(statistics)],
        'used': f'recomputed from the {len(examples)} Examples artifact(s): statistics of several spans are not '
                'merged from per-span statistics'}

  def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    config = PreflightConfig.from_json(exec_properties[spec.CONFIG_KEY])
    examples = _describe(input_dict[spec.EXAMPLES_KEY])
    if not examples:
      raise ValueError('Preflight got no Examples artifact (an empty span window?): nothing to check.')
    inputs = run.PreflightInputs(examples=_patterns_by_split(examples, 'examples'),
                                 module_file=exec_properties.get(spec.MODULE_FILE_KEY) or None,
                                 run_fn=exec_properties.get(spec.RUN_FN_KEY) or None,
                                 custom_config=json_utils.loads(exec_properties.get(spec.CUSTOM_CONFIG_KEY) or 'null'),
                                 provenance={'examples': examples[0].uri if len(examples) == 1
                                             else [a.uri for a in examples]},
                                 examples_artifacts=examples)
    self._add_statistics(input_dict.get(spec.STATISTICS_KEY) or [], examples, config, inputs)
    schema = _single(input_dict, spec.SCHEMA_KEY)
    if schema is not None:
      inputs.schema = _read_schema(schema)
      inputs.provenance['schema'] = schema.uri
    transform_graph = _single(input_dict, spec.TRANSFORM_GRAPH_KEY)
    if transform_graph is not None:
      inputs.transform_graph_uri = transform_graph.uri
    transformed = _describe(input_dict.get(spec.TRANSFORMED_EXAMPLES_KEY) or [])
    if transformed:
      inputs.transformed_examples = _patterns_by_split(transformed, 'transformed_examples')
      inputs.provenance['transformed_examples'] = (transformed[0].uri if len(transformed) == 1
                                                   else [a.uri for a in transformed])
    inputs.history = [a.uri for a in sorted(input_dict.get(spec.HISTORY_KEY) or [], key=lambda a: a.id)]
    train_hashes = (output_dict.get(spec.TRAIN_HASHES_KEY) or [None])[0]
    inputs.save_history = train_hashes.uri if train_hashes is not None else None
    _add_statistics_output(output_dict.get(spec.EXAMPLE_STATISTICS_KEY) or [], config, examples, inputs)
    hyperparameters = _single(input_dict, spec.HYPERPARAMETERS_KEY)
    if hyperparameters is not None:
      inputs.hyperparameters = _read_hyperparameters(hyperparameters)

    report_artifact = artifact_utils.get_single_instance(output_dict[spec.REPORT_KEY])
    blessing = artifact_utils.get_single_instance(output_dict[spec.BLESSING_KEY])
    outcome, result = run.run_preflight(inputs, config, self._make_beam_pipeline, report_artifact.uri)

    summary = '\n'.join(report_lib.findings_summary(result))
    logging.info('%s', summaries.verdict_line(result))  # One greppable line first: verdict and headline numbers.
    logging.info('Preflight report at %s:\n%s', os.path.join(report_artifact.uri, constants.REPORT_HTML), summary)
    _set_custom_properties(report_artifact, run.headline_numbers(outcome))
    blessed = report_lib.is_blessed(result)
    blessing.set_int_custom_property(spec.BLESSED_PROPERTY, int(blessed))
    blessing.set_string_custom_property(constants.VERDICT_PROPERTY, result['verdict'])
    blessing.set_string_custom_property(constants.REPORT_PROPERTY, report_artifact.uri)
    if train_hashes is not None:
      stored = history.load(train_hashes.uri)
      _set_custom_properties(train_hashes, {constants.BLESSED_PROPERTY: int(stored.blessed),
                                            constants.HASHED_EXAMPLES_PROPERTY: stored.examples,
                                            constants.DISTINCT_HASHES_PROPERTY: stored.distinct_hashes})
    marker = constants.BLESSED_FILE if blessed else constants.NOT_BLESSED_FILE
    file_writes.write_atomically(os.path.join(blessing.uri, marker), '')
    if not blessed and config.fail_on_block:
      raise PreflightBlocked(f'Preflight blocked training, verdict {result["verdict"]} (report: '
                             f'{os.path.join(report_artifact.uri, constants.REPORT_HTML)}):\n{summary}')
