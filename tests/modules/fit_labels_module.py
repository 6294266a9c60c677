"""run_fns whose input pipeline changes the labels model.fit receives (and correct ones that map them on purpose).

Digits: 64 pixel values in [0, 16] under 'pixels', class index 0..9 under 'label' in every split.
"""

from typing import List

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.utils import io_utils
from tfx_bsl.public import tfxio


def _dataset(fn_args, files: List[str], relabel=None):
  schema = io_utils.parse_pbtxt_file(fn_args.schema_path, schema_pb2.Schema())
  dataset = fn_args.data_accessor.tf_dataset_factory(
      files, tfxio.TensorFlowDatasetOptions(batch_size=32, label_key='label'), schema)
  if relabel is not None:
    dataset = dataset.map(relabel)
  return dataset.repeat()


def _model(units: int = 10, extra_input: bool = False):
  pixels = tf.keras.Input(shape=(64,), name='pixels')
  inputs = {'pixels': pixels}
  x = tf.keras.layers.Rescaling(1 / 16)(pixels)
  if extra_input:
    inputs['digit'] = tf.keras.Input(shape=(1,), name='digit')
    x = tf.keras.layers.Concatenate()([x, inputs['digit']])
  x = tf.keras.layers.Dense(32, activation='relu')(x)
  model = tf.keras.Model(inputs=inputs, outputs=tf.keras.layers.Dense(units, activation='softmax')(x))
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-2), loss='sparse_categorical_crossentropy')
  return model


def _fit(fn_args, model, train_relabel=None, eval_relabel=None):
  model.fit(_dataset(fn_args, fn_args.train_files, train_relabel), steps_per_epoch=fn_args.train_steps,
            validation_data=_dataset(fn_args, fn_args.eval_files, eval_relabel), validation_steps=fn_args.eval_steps)
  model.save(fn_args.serving_model_dir + '.keras')


def _zeros(x, y):
  return x, tf.zeros_like(y)


def _binary(x, y):
  return x, tf.cast(y >= 5, tf.int64)


def zeros_run_fn(fn_args):
  """Every label mapped to 0, in both splits."""
  _fit(fn_args, _model(), _zeros, _zeros)


def zeros_eval_only_run_fn(fn_args):
  """Validation labels mapped to 0; train labels intact."""
  _fit(fn_args, _model(), None, _zeros)


def label_as_feature_run_fn(fn_args):
  """The label handed to the model as an input feature too."""
  def with_digit(x, y):
    return {'pixels': x['pixels'], 'digit': tf.cast(y, tf.float32)}, y
  _fit(fn_args, _model(extra_input=True), with_digit, with_digit)


def binary_train_only_run_fn(fn_args):
  """Train labels binarized ('5 or more?'), validation labels left as digits."""
  _fit(fn_args, _model(), _binary, None)


def binary_run_fn(fn_args):
  """Correct: both splits binarized on purpose."""
  _fit(fn_args, _model(units=2), _binary, _binary)
