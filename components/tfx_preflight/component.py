"""The Preflight TFX component: refuses to let Trainer start when the data or the loss would make eval numbers lie."""

import hashlib
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from tfx import types
from tfx.components.util import udf_utils
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.dsl.input_resolution import resolver_function
from tfx.dsl.input_resolution.ops import ops
from tfx.types import standard_artifacts
from tfx.utils import json_utils

from tfx_preflight import constants, executor, spec, worker_packaging
from tfx_preflight.artifacts import PreflightBlessing, PreflightReport, TrainHashes
from tfx_preflight.config import LabelProxyConfig, LeakageConfig, LossConfig, PreflightConfig, SkewConfig
from tfx_preflight.spec import PreflightSpec


def module_folder_fingerprint(module_file: Any) -> Optional[str]:
  """A hash of every .py file in module_file's folder (names and bytes), as Trainer packages that folder into its
  wheel; None when Trainer does not package it or module_file is not a local file (e.g. a RuntimeParameter)."""
  if not isinstance(module_file, str) or not os.path.isfile(module_file) or not udf_utils.should_package_user_modules():
    return None
  folder = os.path.dirname(os.path.abspath(module_file))
  digest = hashlib.sha256()
  for name in sorted(n for n in os.listdir(folder) if n.endswith('.py')):
    with open(os.path.join(folder, name), 'rb') as source:
      content = source.read()
    digest.update(f'{len(name)}:{name}:{len(content)}:'.encode())
    digest.update(content)
  return digest.hexdigest()


class PreflightExecutorSpec(executor_spec.BeamExecutorSpec):
  """Preflight's BeamExecutorSpec: refuses Beam args that would start Dataflow workers without tfx_preflight.

  Checked when the pipeline hands the component its beam_pipeline_args (tfx.dsl.Pipeline(...)) and when a compiler
  encodes the spec, i.e. when the pipeline is built, not after a Dataflow job was submitted.
  """

  @property
  def beam_pipeline_args(self) -> List[Any]:
    return self._beam_pipeline_args

  @beam_pipeline_args.setter
  def beam_pipeline_args(self, args: List[Any]) -> None:
    worker_packaging.check_worker_package(args, "Preflight's beam_pipeline_args")
    self._beam_pipeline_args = args

  def encode(self, component_spec: Optional[types.ComponentSpec] = None) -> Any:
    worker_packaging.check_worker_package(self._beam_pipeline_args, "Preflight's beam_pipeline_args")
    return super().encode(component_spec=component_spec)


class Preflight(base_beam_component.BaseBeamComponent):
  """Checks train/eval skew, train/eval leakage, label proxies and the Trainer's loss before training.

  Usage, between ExampleGen (and StatisticsGen/SchemaGen) and Trainer:

  ```
  preflight = Preflight(
      examples=example_gen.outputs['examples'],
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'],
      module_file=module_file,
      label_key='label')
  with tfx.dsl.Cond(preflight.outputs['blessing'].future()[0].custom_property('blessed') == 1):
    trainer = tfx.components.Trainer(...)
  ```

  Component `outputs` contains:
   - `report`: Channel of type `PreflightReport`: report.json, report.html and per-check details.
   - `blessing`: Channel of type `PreflightBlessing` with int custom property `blessed` (1 or 0).
   - `train_hashes` (with save_train_hashes=True): Channel of type `TrainHashes`, the content hashes of the train
     data when the run blessed; later runs take them as `history` (see the README for the resolver).
   - `example_statistics` (with output_statistics=True): Channel of type `ExampleStatistics`, laid out as
     StatisticsGen's `statistics` (Split-<name>/FeatureStats.pb), for SchemaGen in a pipeline without StatisticsGen.
  """

  SPEC_CLASS = PreflightSpec
  EXECUTOR_SPEC = PreflightExecutorSpec(executor.Executor)

  def __init__(self,
               examples: types.BaseChannel,
               statistics: Optional[types.BaseChannel] = None,
               schema: Optional[types.BaseChannel] = None,
               transform_graph: Optional[types.BaseChannel] = None,
               hyperparameters: Optional[types.BaseChannel] = None,
               module_file: Optional[str] = None,
               run_fn: Optional[str] = None,
               custom_config: Optional[Dict[str, Any]] = None,
               transformed_examples: Optional[types.BaseChannel] = None,
               label_key: Optional[str] = None,
               train_split: str = 'train',
               eval_splits: Optional[Sequence[str]] = None,
               skew: Union[SkewConfig, Mapping[str, Any], None] = None,
               leakage: Union[LeakageConfig, Mapping[str, Any], None] = None,
               loss: Union[LossConfig, Mapping[str, Any], None] = None,
               label_proxy: Union[LabelProxyConfig, Mapping[str, Any], None] = None,
               fail_on_block: bool = False,
               exclude_features: Sequence[str] = (),
               history: Optional[types.BaseChannel] = None,
               save_train_hashes: bool = False,
               output_statistics: bool = False):
    """Constructs a Preflight component.

    Args:
      examples: Examples (tf.Example TFRecords), e.g. ExampleGen's output.
      statistics: ExampleStatistics of the same examples, e.g. StatisticsGen's output. Computed when absent.
      schema: Schema; its skew_comparator/drift_comparator thresholds are used by the skew check.
      transform_graph: TransformGraph, passed to the Trainer module's input_fn by the loss check.
      hyperparameters: HyperParameters (e.g. from Tuner), passed to the model builder by the loss check.
      module_file: The Trainer's module file, for the loss check (skipped without it or run_fn).
      run_fn: As given to Trainer: the run_fn name in module_file, or a dotted 'package.module.run_fn'. The loss check
        calls it with Trainer's FnArgs and stops it at model.fit.
      custom_config: Trainer's custom_config (a dict), passed to run_fn in FnArgs.
      transformed_examples: What Trainer reads (Transform's transformed_examples): FnArgs.train_files/eval_files of
        the loss check. Skew and leakage keep using `examples`.
      label_key: The label feature: left out of content hashes, used for label conflicts and the loss check.
      train_split: The split models are trained on.
      eval_splits: Splits compared with train; default: every other split.
      skew: SkewConfig or a dict of its fields (mode, thresholds, exclude_features).
      leakage: LeakageConfig or a dict of its fields (mode, fractions, exclude_features, near_duplicates, group_key).
      loss: LossConfig or a dict of its fields (mode, model_fn, input_fn, loss_fn, timeout_seconds).
      label_proxy: LabelProxyConfig or a dict of its fields (mode, thresholds, exclude_features).
      fail_on_block: Raise (fail the run) instead of emitting blessed=0, for orchestrators without conditionals.
      exclude_features: Features every check leaves out (IDs, timestamps); per-check lists add to it.
      history: TrainHashes of earlier runs (several, e.g. the latest N through a resolver): the leakage check also
        joins eval with the training data they hold, without reading those examples.
      save_train_hashes: Output `train_hashes`: this run's train content hashes, kept when it blesses.
      output_statistics: Output `example_statistics`: the statistics of the gate's read pass, as StatisticsGen
        writes them (equal to its own), so SchemaGen can read them and StatisticsGen be left out. Not with
        `statistics`.

    Raises:
      ConfigError: a setting is invalid; the message names it.
      ValueError: `statistics` is given with output_statistics=True.
    """
    if output_statistics and statistics is not None:
      raise ValueError('output_statistics=True computes the statistics StatisticsGen would; `statistics` are given '
                       'as well. Either wire SchemaGen to the statistics given (and leave output_statistics False), '
                       'or leave StatisticsGen out and give SchemaGen preflight.outputs["example_statistics"].')
    if custom_config is not None and not isinstance(custom_config, dict):
      raise ValueError(f'custom_config needs to be a dict. Got {type(custom_config).__name__} instead.')
    config = PreflightConfig(label_key=label_key, train_split=train_split,
                             eval_splits=(eval_splits if eval_splits is None or isinstance(eval_splits, str)
                                          else tuple(eval_splits)),  # A bare 'eval' is refused, not split up.
                             fail_on_block=fail_on_block, skew=skew, leakage=leakage, loss=loss,
                             label_proxy=label_proxy,
                             exclude_features=tuple(exclude_features)
                             if isinstance(exclude_features, (list, tuple)) else exclude_features)
    spec = PreflightSpec(
        examples=examples,
        statistics=statistics,
        schema=schema,
        transform_graph=transform_graph,
        hyperparameters=hyperparameters,
        config=config.to_json(),
        module_file=module_file,
        run_fn=run_fn,
        custom_config=json_utils.dumps(custom_config) if custom_config is not None else None,
        module_folder_fingerprint=module_folder_fingerprint(module_file),
        transformed_examples=transformed_examples,
        history=history,
        train_hashes=types.Channel(type=TrainHashes) if save_train_hashes else None,
        example_statistics=(types.Channel(type=standard_artifacts.ExampleStatistics) if output_statistics
                            else None),
        report=types.Channel(type=PreflightReport),
        blessing=types.Channel(type=PreflightBlessing))
    super().__init__(spec=spec)


@resolver_function.resolver_function
def _latest_blessed(artifacts, n: int):
  return ops.LatestCreateTime(ops.EqualPropertyValues(artifacts, property_key=constants.BLESSED_PROPERTY,
                                                      property_value=1, is_custom_property=True), n=n)


def earlier_train_hashes(n: int, preflight_id: str = 'Preflight') -> types.BaseChannel:
  """The `train_hashes` of the latest `n` runs of this pipeline's gate that blessed (fewer, or none, early on): what
  the models of those runs trained on, for `Preflight(history=...)`. `preflight_id` is the gate's component id."""
  return _latest_blessed(types.Channel(type=TrainHashes, producer_component_id=preflight_id,
                                       output_key=spec.TRAIN_HASHES_KEY), n=n)
