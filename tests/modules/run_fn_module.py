"""Trainer modules written as TFX users write them: a run_fn that builds datasets and a model and calls model.fit.

Digits: 64 pixel values in [0, 16] under 'pixels', class index 0..9 under 'label'. Each run_fn is one case; the
loss check names it as Trainer does (`Trainer(module_file=..., run_fn='mse_softmax_run_fn')`).
"""

import time
from typing import List

import tensorflow as tf
from tfx_bsl.public import tfxio

_LABEL_KEY = 'label'


def _input_fn(file_pattern: List[str], data_accessor, schema, batch_size: int, binary: bool = False):
  dataset = data_accessor.tf_dataset_factory(
      file_pattern, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=_LABEL_KEY), schema)
  if binary:  # 'Is it 5 or more?'
    dataset = dataset.map(lambda x, y: (x, tf.cast(y >= 5, tf.float32)))
  return dataset.repeat()


def _schema(fn_args):
  from tensorflow_metadata.proto.v0 import schema_pb2
  from tfx.utils import io_utils
  return io_utils.parse_pbtxt_file(fn_args.schema_path, schema_pb2.Schema())


class _SlowToTrain(tf.keras.layers.Layer):
  """Sleeps `seconds` in every training step and passes its input on: a model slow to train (a big recurrent model,
  a busy machine) without using the CPU."""

  def __init__(self, seconds, **kwargs):
    super().__init__(**kwargs)
    self.seconds = seconds

  def call(self, x, training=None):
    if not training:
      return x
    delayed = tf.reshape(tf.numpy_function(self._sleep, [x], x.dtype), tf.shape(x))
    return x + tf.stop_gradient(delayed - x)

  def _sleep(self, x):
    time.sleep(self.seconds)
    return x


def _build_keras_model(hidden_units, learning_rate, units=10, activation='softmax', loss=None, scale=True,
                       batch_norm=False, step_seconds=0.0):
  """Two required arguments, like the TFX taxi template's builder: only run_fn knows what to pass."""
  inputs = tf.keras.Input(shape=(64,), name='pixels')
  x = tf.keras.layers.Rescaling(1 / 16)(inputs) if scale else inputs
  if step_seconds:
    x = _SlowToTrain(step_seconds)(x)
  if batch_norm:
    x = tf.keras.layers.BatchNormalization()(x)
  for n in hidden_units:
    x = tf.keras.layers.Dense(n, activation='relu')(x)
  outputs = tf.keras.layers.Dense(units, activation=activation)(x)
  model = tf.keras.Model(inputs={'pixels': inputs}, outputs=outputs)
  model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                loss=loss or tf.keras.losses.SparseCategoricalCrossentropy(), metrics=['accuracy'])
  return model


def _fit(fn_args, model, binary=False):
  schema = _schema(fn_args)
  train = _input_fn(fn_args.train_files, fn_args.data_accessor, schema, 32, binary)
  evaluation = _input_fn(fn_args.eval_files, fn_args.data_accessor, schema, 32, binary)
  model.fit(train, steps_per_epoch=fn_args.train_steps, validation_data=evaluation,
            validation_steps=fn_args.eval_steps)
  model.save(fn_args.serving_model_dir)


def run_fn(fn_args):
  """Correct: the builder gets the arguments it needs, the units come from custom_config when given."""
  units = (fn_args.custom_config or {}).get('hidden_units', [32])
  _fit(fn_args, _build_keras_model(units, 1e-2))


def slow_run_fn(fn_args):
  """Correct but slow to train: every step takes custom_config['step_seconds'] (learning_rate from it too)."""
  config = fn_args.custom_config
  _fit(fn_args, _build_keras_model([32], config.get('learning_rate', 1e-2), step_seconds=config['step_seconds']))


def mse_softmax_run_fn(fn_args):
  """Silent bug: a 10-unit softmax trained with MSE against class indices (y_true (batch, 1) broadcasts)."""
  _fit(fn_args, _build_keras_model([32], 1e-2, loss='mse'))


def batch_norm_run_fn(fn_args):
  """Correct: a binary classifier normalizing raw pixel values with BatchNormalization right after the input."""
  _fit(fn_args, _build_keras_model([], 1e-2, units=1, activation='sigmoid',
                                   loss=tf.keras.losses.BinaryCrossentropy(), scale=False, batch_norm=True),
       binary=True)


def linear_probability_run_fn(fn_args):
  """A linear output with a loss that expects probabilities (from_logits=False)."""
  _fit(fn_args, _build_keras_model([32], 1e-2, activation=None,
                                   loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=False)))


def failing_run_fn(fn_args):
  """Fails before fit, as Trainer would see it fail."""
  return fn_args.custom_config['required_setting']


def custom_loop_run_fn(fn_args):
  """A custom training loop: never calls model.fit."""
  model = _build_keras_model([8], 1e-2)
  del model  # ... a tf.GradientTape loop would train it here ...
