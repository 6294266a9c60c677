"""run_fns whose fit applies weights, or that call fit more than once: what Trainer's model.fit really gets.

Digits: 64 pixel values in [0, 16] under 'pixels', class index 0..9 under 'label'. Each run_fn is one case.
"""

from typing import List

import numpy as np
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.utils import io_utils
from tfx_bsl.public import tfxio


def _dataset(fn_args, files: List[str], binary: bool = False, batch_size: int = 32):
  schema = io_utils.parse_pbtxt_file(fn_args.schema_path, schema_pb2.Schema())
  dataset = fn_args.data_accessor.tf_dataset_factory(
      files, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key='label'), schema)
  if binary:  # 'Is it 5 or more?'
    dataset = dataset.map(lambda x, y: (x, tf.cast(y >= 5, tf.int64)))
  return dataset.repeat()


def _model(units: int = 10, loss=None, loss_weights=None):
  inputs = tf.keras.Input(shape=(64,), name='pixels')
  x = tf.keras.layers.Rescaling(1 / 16)(inputs)
  x = tf.keras.layers.Dense(32, activation='relu')(x)
  outputs = tf.keras.layers.Dense(units, activation='softmax')(x)
  model = tf.keras.Model(inputs={'pixels': inputs}, outputs=outputs)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-2), loss=loss or 'sparse_categorical_crossentropy',
                loss_weights=loss_weights, metrics=['accuracy'])
  return model


def _zeroed_loss(y_true, y_pred):
  """Cross-entropy times an all-zero mask: Keras trains with it silently, at loss 0.0000."""
  return tf.keras.losses.sparse_categorical_crossentropy(y_true, y_pred) * 0.0


def _fit(fn_args, model, train, **kwargs):
  model.fit(train, steps_per_epoch=fn_args.train_steps, validation_data=_dataset(fn_args, fn_args.eval_files),
            validation_steps=fn_args.eval_steps, **kwargs)
  model.save(fn_args.serving_model_dir + '.keras')


def dataset_zero_weights_run_fn(fn_args):
  """(x, y, zeros): the third element is a sample weight of 0 for every example."""
  train = _dataset(fn_args, fn_args.train_files).map(lambda x, y: (x, y, tf.zeros_like(y, tf.float32)))
  _fit(fn_args, _model(), train)


def sample_weight_zero_run_fn(fn_args):
  """Arrays with sample_weight=np.zeros(n)."""
  for x, y in _dataset(fn_args, fn_args.train_files, batch_size=256).take(1):
    x, y = {k: v.numpy() for k, v in x.items()}, y.numpy()
  model = _model()
  model.fit(x, y, batch_size=32, epochs=1, sample_weight=np.zeros(len(y)))
  model.save(fn_args.serving_model_dir + '.keras')


def class_weight_all_zero_run_fn(fn_args):
  _fit(fn_args, _model(), _dataset(fn_args, fn_args.train_files), class_weight={c: 0.0 for c in range(10)})


def class_weight_typo_run_fn(fn_args):
  """Binary labels, class_weight={0: 1.0, 1: 0.0}: meant 1.0 for both; class 1 is never learned."""
  _fit(fn_args, _model(units=2), _dataset(fn_args, fn_args.train_files, binary=True), class_weight={0: 1.0, 1: 0.0})


def loss_weights_zero_run_fn(fn_args):
  _fit(fn_args, _model(loss_weights=[0.0]), _dataset(fn_args, fn_args.train_files))


def weighted_run_fn(fn_args):
  """Correct: weights that vary but never zero the loss (class_weight and the dataset's weights)."""
  train = _dataset(fn_args, fn_args.train_files).map(
      lambda x, y: (x, y, 1.0 + tf.cast(tf.reshape(y, [-1]) % 2, tf.float32)))
  _fit(fn_args, _model(), train, class_weight={c: 1.0 + c / 10 for c in range(10)})


def fine_tune_zeroed_run_fn(fn_args):
  """The fine-tuning pattern: a short warm-up fit with a good loss, then compile with a zeroed loss and the real fit:
  the saved model is trained by the second one."""
  model = _model()
  model.fit(_dataset(fn_args, fn_args.train_files), steps_per_epoch=2, epochs=1)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=_zeroed_loss)
  _fit(fn_args, model, _dataset(fn_args, fn_args.train_files))


def zeroed_warm_up_run_fn(fn_args):
  """A warm-up fit with a zeroed loss, then the real fit with a good one: the saved model is trained correctly."""
  model = _model(loss=_zeroed_loss)
  model.fit(_dataset(fn_args, fn_args.train_files), steps_per_epoch=2, epochs=1)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-2), loss='sparse_categorical_crossentropy')
  _fit(fn_args, model, _dataset(fn_args, fn_args.train_files))


def train_on_batch_run_fn(fn_args):
  """A loop of its own over train_on_batch, with a zeroed loss."""
  model = _model(loss=_zeroed_loss)
  for step, (x, y) in enumerate(_dataset(fn_args, fn_args.train_files)):
    if step >= fn_args.train_steps:
      break
    model.train_on_batch(x, y)
  model.save(fn_args.serving_model_dir + '.keras')
