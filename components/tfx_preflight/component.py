"""The Preflight TFX component: refuses to let Trainer start when the data or the loss would make eval numbers lie."""

from typing import Any, Mapping, Optional, Sequence, Union

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec

from tfx_preflight import executor
from tfx_preflight.artifacts import PreflightBlessing, PreflightReport
from tfx_preflight.config import LabelProxyConfig, LeakageConfig, LossConfig, PreflightConfig, SkewConfig
from tfx_preflight.spec import PreflightSpec


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
  """

  SPEC_CLASS = PreflightSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self,
               examples: types.BaseChannel,
               statistics: Optional[types.BaseChannel] = None,
               schema: Optional[types.BaseChannel] = None,
               transform_graph: Optional[types.BaseChannel] = None,
               hyperparameters: Optional[types.BaseChannel] = None,
               module_file: Optional[str] = None,
               label_key: Optional[str] = None,
               train_split: str = 'train',
               eval_splits: Optional[Sequence[str]] = None,
               skew: Union[SkewConfig, Mapping[str, Any], None] = None,
               leakage: Union[LeakageConfig, Mapping[str, Any], None] = None,
               loss: Union[LossConfig, Mapping[str, Any], None] = None,
               label_proxy: Union[LabelProxyConfig, Mapping[str, Any], None] = None,
               fail_on_block: bool = False):
    """Constructs a Preflight component.

    Args:
      examples: Examples (tf.Example TFRecords), e.g. ExampleGen's output.
      statistics: ExampleStatistics of the same examples, e.g. StatisticsGen's output. Computed when absent.
      schema: Schema; its skew_comparator/drift_comparator thresholds are used by the skew check.
      transform_graph: TransformGraph, passed to the Trainer module's input_fn by the loss check.
      hyperparameters: HyperParameters (e.g. from Tuner), passed to the model builder by the loss check.
      module_file: The Trainer's module file, for the loss check (skipped without it).
      label_key: The label feature: left out of content hashes, used for label conflicts and the loss check.
      train_split: The split models are trained on.
      eval_splits: Splits compared with train; default: every other split.
      skew: SkewConfig or a dict of its fields (mode, thresholds, exclude_features).
      leakage: LeakageConfig or a dict of its fields (mode, fractions, exclude_features, near_duplicates, group_key).
      loss: LossConfig or a dict of its fields (mode, model_fn, input_fn, loss_fn, timeout_seconds).
      label_proxy: LabelProxyConfig or a dict of its fields (mode, thresholds, exclude_features).
      fail_on_block: Raise (fail the run) instead of emitting blessed=0, for orchestrators without conditionals.

    Raises:
      ConfigError: a setting is invalid; the message names it.
    """
    config = PreflightConfig(label_key=label_key, train_split=train_split,
                             eval_splits=tuple(eval_splits) if eval_splits is not None else None,
                             fail_on_block=fail_on_block, skew=skew, leakage=leakage, loss=loss,
                             label_proxy=label_proxy)
    spec = PreflightSpec(
        examples=examples,
        statistics=statistics,
        schema=schema,
        transform_graph=transform_graph,
        hyperparameters=hyperparameters,
        config=config.to_json(),
        module_file=module_file,
        report=types.Channel(type=PreflightReport),
        blessing=types.Channel(type=PreflightBlessing))
    super().__init__(spec=spec)
