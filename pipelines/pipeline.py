"""The demo pipeline: ExampleGen -> StatisticsGen -> SchemaGen -> Preflight -> Trainer (gated), or, with
`statistics_from_gate=True`, ExampleGen -> Preflight -> SchemaGen -> Trainer: SchemaGen reads the statistics of the
gate's read pass and StatisticsGen is left out.

`create_pipeline` is a pure factory, as in TFX's templates: it builds the pipeline and touches nothing; runners
(`local_runner.py`, the Kubeflow runner) own paths, metadata and Beam settings.
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence

from tfx import v1 as tfx
from tfx.proto import example_gen_pb2

from tfx_preflight import Preflight, constants

LABEL_KEY = 'label'
TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'eval'
DEFAULT_TRAIN_STEPS = 200
DEFAULT_EVAL_STEPS = 12

# The demo's gate settings: the gate's defaults (near-duplicates on: leaky_split's augmented copies block, and none of
# clean's eval images is flagged), but for the loss check's budget, raised so a busy 2-core machine does not time it
# out.
DEFAULT_PREFLIGHT_KWARGS: Mapping[str, Any] = {'loss': {'timeout_seconds': 300.0}}


def presplit_input_config(train_pattern: str = f'{TRAIN_SPLIT}/*',
                          eval_pattern: str = f'{EVAL_SPLIT}/*') -> example_gen_pb2.Input:
  """ExampleGen input for prepared splits in folders under input_base (the layout pipelines.data writes)."""
  return example_gen_pb2.Input(splits=[
      example_gen_pb2.Input.Split(name=TRAIN_SPLIT, pattern=train_pattern),
      example_gen_pb2.Input.Split(name=EVAL_SPLIT, pattern=eval_pattern),
  ])


def _preflight_kwargs(module_file: str, overrides: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
  kwargs: Dict[str, Any] = {'module_file': module_file, 'label_key': LABEL_KEY}
  for key, value in DEFAULT_PREFLIGHT_KWARGS.items():
    kwargs[key] = dict(value) if isinstance(value, Mapping) else value
  for key, value in (overrides or {}).items():
    if isinstance(value, Mapping) and isinstance(kwargs.get(key), dict):
      kwargs[key] = {**kwargs[key], **value}  # Per-check settings merge with the demo's defaults.
    else:
      kwargs[key] = value
  return kwargs


def create_pipeline(pipeline_name: str,
                    pipeline_root: str,
                    data_root: str,
                    module_file: str,
                    preflight_kwargs: Optional[Mapping[str, Any]] = None,
                    train_steps: int = DEFAULT_TRAIN_STEPS,
                    eval_steps: int = DEFAULT_EVAL_STEPS,
                    beam_pipeline_args: Sequence[str] = (),
                    metadata_connection_config: Optional[Any] = None,
                    enable_gate: bool = True,
                    input_config: Optional[example_gen_pb2.Input] = None,
                    enable_cache: bool = False,
                    statistics_from_gate: bool = False) -> tfx.dsl.Pipeline:
  """Builds the pipeline.

  Args:
    pipeline_name: Name of the pipeline (one MLMD context per name).
    pipeline_root: Where component outputs go (local path or gs://).
    data_root: input_base of ImportExampleGen: gzipped tf.Example TFRecords.
    module_file: Trainer module (run_fn), also given to Preflight's loss check.
    preflight_kwargs: Extra Preflight arguments (e.g. {'fail_on_block': True, 'skew': {'mode': 'warn'}}); dicts of
      per-check settings are merged into the demo's defaults (DEFAULT_PREFLIGHT_KWARGS).
    train_steps: Trainer's TrainArgs.num_steps.
    eval_steps: Trainer's EvalArgs.num_steps.
    beam_pipeline_args: Beam options for every Beam component (ExampleGen, StatisticsGen, Preflight...).
    metadata_connection_config: ML Metadata connection; None lets the orchestrator provide it (Kubeflow).
    enable_gate: Run Trainer only when Preflight blesses (tfx.dsl.Cond). False: Trainer runs regardless, after
      Preflight, and the report is informational.
    input_config: ExampleGen input splits; default: pre-split folders `train/` and `eval/` under data_root.
    enable_cache: TFX execution caching.
    statistics_from_gate: No StatisticsGen: SchemaGen reads Preflight's `example_statistics` (output_statistics=True),
      and the gate, upstream of SchemaGen, gets no schema.

  Returns:
    The pipeline; its components are, in order, ImportExampleGen, StatisticsGen, SchemaGen, Preflight, Trainer
    (statistics_from_gate: ImportExampleGen, Preflight, SchemaGen, Trainer).
  """
  example_gen = tfx.components.ImportExampleGen(
      input_base=data_root, input_config=input_config or presplit_input_config())
  if statistics_from_gate:
    preflight = Preflight(examples=example_gen.outputs['examples'], output_statistics=True,
                          **_preflight_kwargs(module_file, preflight_kwargs))
    schema_gen = tfx.components.SchemaGen(statistics=preflight.outputs['example_statistics'], infer_feature_shape=True)
    components: List[Any] = [example_gen, preflight, schema_gen]
  else:
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs['examples'])
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs['statistics'], infer_feature_shape=True)
    preflight = Preflight(
        examples=example_gen.outputs['examples'],
        statistics=statistics_gen.outputs['statistics'],
        schema=schema_gen.outputs['schema'],
        **_preflight_kwargs(module_file, preflight_kwargs))
    components = [example_gen, statistics_gen, schema_gen, preflight]
  trainer_args = dict(
      module_file=module_file,
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      train_args=tfx.proto.TrainArgs(num_steps=train_steps),
      eval_args=tfx.proto.EvalArgs(num_steps=eval_steps))
  if enable_gate:
    with tfx.dsl.Cond(preflight.outputs['blessing'].future()[0].custom_property(constants.BLESSED_PROPERTY) == 1):
      trainer = tfx.components.Trainer(**trainer_args)
  else:
    trainer = tfx.components.Trainer(**trainer_args)
    trainer.add_upstream_node(preflight)
  components.append(trainer)

  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(beam_pipeline_args))
