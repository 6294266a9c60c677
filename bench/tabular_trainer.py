"""TFX Trainer module for the benchmark's tabular data (bench/generate.py): 20 float features, an int label in 0..3.

The pipeline benchmark (`pipeline_gated` / `pipeline_statistics_gen` in bench/jobs.py) runs it in Trainer and, in
the gated pipeline, in Preflight's loss check: a small, correct model, so the gate passes and Trainer trains in both
pipelines and the two differ only by StatisticsGen against Preflight. Follows TFX example conventions (`run_fn`,
`_input_fn`, `_build_keras_model`); self-contained, as Trainer loads it by path. Keras 2 or 3 (`tf.keras`).
"""

from typing import Dict, List, Tuple

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

_FLOAT_KEYS = tuple(f'f{i:02d}' for i in range(20))
_LABEL_KEY = 'label'
_NUM_CLASSES = 4
_BATCH_SIZE = 256
_SEED = 7


def _floats_only(features: Dict[str, tf.Tensor], label: tf.Tensor) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
  """The model reads the float features; the string feature stays in the data (Keras 3 rejects unused inputs)."""
  return {key: features[key] for key in _FLOAT_KEYS}, label


def _input_fn(file_pattern: List[str], data_accessor: tfx.components.DataAccessor, schema: schema_pb2.Schema,
              batch_size: int) -> tf.data.Dataset:
  """Batches of ({'f00': (b, 1), ...}, label (b, 1)), repeated forever."""
  return data_accessor.tf_dataset_factory(
      file_pattern, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=_LABEL_KEY, shuffle_seed=_SEED),
      schema).map(_floats_only).repeat()


def _build_keras_model() -> tf.keras.Model:
  """Features of very different scales, normalised per batch, one hidden layer, logits for 4 classes."""
  tf.keras.utils.set_random_seed(_SEED)
  inputs = {key: tf.keras.Input(shape=(1,), name=key) for key in _FLOAT_KEYS}
  x = tf.keras.layers.Concatenate()([inputs[key] for key in _FLOAT_KEYS])
  x = tf.keras.layers.BatchNormalization()(x)
  x = tf.keras.layers.Dense(16, activation='relu')(x)
  outputs = tf.keras.layers.Dense(_NUM_CLASSES)(x)
  model = tf.keras.Model(inputs=inputs, outputs=outputs)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-2),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
  return model


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains for fn_args.train_steps, validates on eval, exports a SavedModel."""
  schema = tfx.utils.parse_pbtxt_file(fn_args.schema_path, schema_pb2.Schema())
  train_dataset = _input_fn(fn_args.train_files, fn_args.data_accessor, schema, _BATCH_SIZE)
  eval_dataset = _input_fn(fn_args.eval_files, fn_args.data_accessor, schema, _BATCH_SIZE)
  model = _build_keras_model()
  model.fit(train_dataset, steps_per_epoch=fn_args.train_steps, validation_data=eval_dataset,
            validation_steps=fn_args.eval_steps, verbose=2)
  tf.saved_model.save(model, fn_args.serving_model_dir)
