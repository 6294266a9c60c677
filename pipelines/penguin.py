"""TFX's penguin pipeline with the gate in front of Trainer: ImportExampleGen, StatisticsGen, ImportSchemaGen,
Transform, Preflight (reading the transformed examples Trainer reads) and Trainer under `tfx.dsl.Cond`, all with
TFX's own `penguin_utils_keras.py`, unmodified.

One definition for the compatibility test (tests/test_loss_compat.py) and the pipeline-cost benchmark (bench job
`pipeline_cost`). `create_pipeline` is a pure factory as in pipeline.py; `component_seconds` reads what each
component took back from ML Metadata.
"""

import os
from typing import Dict

from tfx import v1 as tfx_v1

from tfx_preflight import Preflight

SPLITS = ('train', 'eval')
LABEL_KEY = 'species'
# TFX's penguin testdata (data/Split-{train,eval}/ and schema/schema.pbtxt), kept in the repository: TFX 1.15.1's
# wheel does not ship it.
TESTDATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'data', 'penguin')
SCHEMA_FILE = os.path.join(TESTDATA_DIR, 'schema', 'schema.pbtxt')


def create_pipeline(pipeline_name: str, pipeline_root: str, data_root: str, module_file: str, metadata_path: str,
                    train_steps: int = 3, eval_steps: int = 2) -> tfx_v1.dsl.Pipeline:
  """The gated penguin pipeline over `data_root` (Split-train/ and Split-eval/ of gzipped tf.Examples), with
  `module_file` (a copy of penguin_utils_keras.py) for Transform, Preflight and Trainer, and sqlite ML Metadata."""
  example_gen = tfx_v1.components.ImportExampleGen(
      input_base=data_root, input_config=tfx_v1.proto.Input(splits=[
          tfx_v1.proto.Input.Split(name=split, pattern=f'Split-{split}/*') for split in SPLITS]))
  statistics_gen = tfx_v1.components.StatisticsGen(examples=example_gen.outputs['examples'])
  schema_gen = tfx_v1.components.ImportSchemaGen(schema_file=SCHEMA_FILE)
  transform = tfx_v1.components.Transform(examples=example_gen.outputs['examples'],
                                          schema=schema_gen.outputs['schema'], module_file=module_file)
  preflight = Preflight(examples=example_gen.outputs['examples'], statistics=statistics_gen.outputs['statistics'],
                        schema=schema_gen.outputs['schema'], transform_graph=transform.outputs['transform_graph'],
                        transformed_examples=transform.outputs['transformed_examples'], module_file=module_file,
                        label_key=LABEL_KEY, loss={'timeout_seconds': 240})
  with tfx_v1.dsl.Cond(preflight.outputs['blessing'].future()[0].custom_property('blessed') == 1):
    trainer = tfx_v1.components.Trainer(
        module_file=module_file, examples=transform.outputs['transformed_examples'],
        transform_graph=transform.outputs['transform_graph'], schema=schema_gen.outputs['schema'],
        train_args=tfx_v1.proto.TrainArgs(num_steps=train_steps),
        eval_args=tfx_v1.proto.EvalArgs(num_steps=eval_steps))
  return tfx_v1.dsl.Pipeline(
      pipeline_name=pipeline_name, pipeline_root=pipeline_root,
      components=[example_gen, statistics_gen, schema_gen, transform, preflight, trainer],
      metadata_connection_config=tfx_v1.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))


def component_seconds(metadata_path: str) -> Dict[str, float]:
  """Each component's execution time in ML Metadata (create to last update), by its execution type's last part
  ('Preflight', 'StatisticsGen', ...)."""
  from ml_metadata import metadata_store
  store = metadata_store.MetadataStore(
      tfx_v1.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))
  seconds = {}
  for execution in store.get_executions():
    kind = store.get_execution_types_by_id([execution.type_id])[0].name.rsplit('.', 1)[-1]
    seconds[kind] = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
  return seconds
