"""A correct Trainer module for tests.helpers.tabular_rows: floats f0..f3 and a 0/1 `label`, binary cross-entropy.

The README's command-line example runs with it (tests/test_docs.py): `id` and `timestamp` are excluded there, so the
model reads only the four floats.
"""

from typing import List

import tensorflow as tf
from tfx_bsl.public import tfxio

_LABEL_KEY = 'label'
_FEATURES = ('f0', 'f1', 'f2', 'f3')


def _input_fn(file_pattern: List[str], data_accessor, schema, batch_size: int) -> tf.data.Dataset:
  dataset = data_accessor.tf_dataset_factory(
      file_pattern, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=_LABEL_KEY), schema)
  return dataset.map(lambda x, y: ({k: x[k] for k in _FEATURES}, y)).repeat()


def _build_keras_model() -> tf.keras.Model:
  inputs = {k: tf.keras.Input(shape=(1,), name=k) for k in _FEATURES}
  x = tf.keras.layers.Concatenate()(list(inputs.values()))
  x = tf.keras.layers.Dense(8, activation='relu')(x)
  outputs = tf.keras.layers.Dense(1, activation='sigmoid')(x)
  model = tf.keras.Model(inputs=inputs, outputs=outputs)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-2), loss=tf.keras.losses.BinaryCrossentropy(),
                metrics=['accuracy'])
  return model


def run_fn(fn_args):
  from tensorflow_metadata.proto.v0 import schema_pb2
  from tfx.utils import io_utils
  schema = io_utils.parse_pbtxt_file(fn_args.schema_path, schema_pb2.Schema())
  model = _build_keras_model()
  model.fit(_input_fn(fn_args.train_files, fn_args.data_accessor, schema, 32), steps_per_epoch=fn_args.train_steps,
            validation_data=_input_fn(fn_args.eval_files, fn_args.data_accessor, schema, 32),
            validation_steps=fn_args.eval_steps)
  model.save(fn_args.serving_model_dir)
