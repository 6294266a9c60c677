"""A lean gated pipeline around TFX's own taxi_utils_native_keras.py, unmodified: ImportExampleGen (one shard of
each split of TFX's taxi testdata, ~800 + ~400 examples), ImportSchemaGen, Transform, Preflight (loss check only) and
Trainer under `tfx.dsl.Cond`. Run as `python -m tests.taxi_keras_pipeline ROOT` in a process launched with the
environment under test: LocalDagRunner runs Trainer in that process, under the Keras it binds."""

import os
import sys

import tfx
from tfx import v1 as tfx_v1

from tfx_preflight import Preflight

TESTDATA = os.path.join(os.path.dirname(tfx.__file__), 'components', 'testdata')
MODULE = os.path.join(os.path.dirname(tfx.__file__), 'examples', 'chicago_taxi_pipeline', 'taxi_utils_native_keras.py')


def create_pipeline(root: str) -> tfx_v1.dsl.Pipeline:
  example_gen = tfx_v1.components.ImportExampleGen(
      input_base=os.path.join(TESTDATA, 'csv_example_gen'), input_config=tfx_v1.proto.Input(splits=[
          tfx_v1.proto.Input.Split(name=split, pattern=f'Split-{split}/data_tfrecord-00000-of-00012.gz')
          for split in ('train', 'eval')]))
  schema_gen = tfx_v1.components.ImportSchemaGen(schema_file=os.path.join(TESTDATA, 'schema_gen', 'schema.pbtxt'))
  transform = tfx_v1.components.Transform(examples=example_gen.outputs['examples'],
                                          schema=schema_gen.outputs['schema'], module_file=MODULE)
  preflight = Preflight(examples=example_gen.outputs['examples'], schema=schema_gen.outputs['schema'],
                        transform_graph=transform.outputs['transform_graph'],
                        transformed_examples=transform.outputs['transformed_examples'], module_file=MODULE,
                        label_key='tips', skew={'mode': 'off'}, leakage={'mode': 'off'},
                        label_proxy={'mode': 'off'}, loss={'timeout_seconds': 300})
  with tfx_v1.dsl.Cond(preflight.outputs['blessing'].future()[0].custom_property('blessed') == 1):
    trainer = tfx_v1.components.Trainer(
        module_file=MODULE, examples=transform.outputs['transformed_examples'],
        transform_graph=transform.outputs['transform_graph'], schema=schema_gen.outputs['schema'],
        train_args=tfx_v1.proto.TrainArgs(num_steps=3), eval_args=tfx_v1.proto.EvalArgs(num_steps=2))
  return tfx_v1.dsl.Pipeline(
      pipeline_name='taxi-keras-preflight', pipeline_root=os.path.join(root, 'root'),
      components=[example_gen, schema_gen, transform, preflight, trainer],
      metadata_connection_config=tfx_v1.orchestration.metadata.sqlite_metadata_connection_config(
          os.path.join(root, 'metadata.db')))


if __name__ == '__main__':
  tfx_v1.orchestration.LocalDagRunner().run(create_pipeline(sys.argv[1]))
