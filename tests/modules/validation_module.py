"""run_fns whose model.fit validates on the wrong data, on too little, or on nothing (digits: 'pixels', 'label').

Each is one way a TFX user's run_fn goes wrong in the validation loop; `run_fn` itself is correct. The model and the
training data are the same in every case, so only what model.fit validates on differs.
"""

import numpy as np
import tensorflow as tf
from tfx_bsl.public import tfxio

_LABEL_KEY = 'label'


def _schema(fn_args):
  from tensorflow_metadata.proto.v0 import schema_pb2
  from tfx.utils import io_utils
  return io_utils.parse_pbtxt_file(fn_args.schema_path, schema_pb2.Schema())


def _dataset(fn_args, files, batch_size=32, num_epochs=None, drop_final_batch=False):
  options = tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=_LABEL_KEY, num_epochs=num_epochs,
                                           drop_final_batch=drop_final_batch)
  return fn_args.data_accessor.tf_dataset_factory(files, options, _schema(fn_args))


def _model(keras=tf.keras):
  inputs = keras.Input(shape=(64,), name='pixels')
  outputs = keras.layers.Dense(10, activation='softmax')(keras.layers.Rescaling(1 / 16)(inputs))
  model = keras.Model(inputs={'pixels': inputs}, outputs=outputs)
  model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')
  return model


def _arrays(fn_args, files):
  """The whole split in memory, as users who 'just load the data' do."""
  features, labels = [], []
  for x, y in _dataset(fn_args, files, num_epochs=1):
    features.append(x['pixels'].numpy())
    labels.append(y.numpy())
  return np.concatenate(features), np.concatenate(labels)


def run_fn(fn_args):
  """Correct: validation on fn_args.eval_files, one full pass (num_epochs=1)."""
  model = _model()
  model.fit(_dataset(fn_args, fn_args.train_files).repeat(), steps_per_epoch=fn_args.train_steps,
            validation_data=_dataset(fn_args, fn_args.eval_files, num_epochs=1))


def train_files_run_fn(fn_args):
  """A one-word copy-paste slip: the validation dataset is built from fn_args.train_files."""
  model = _model()
  model.fit(_dataset(fn_args, fn_args.train_files), steps_per_epoch=fn_args.train_steps,
            validation_data=_dataset(fn_args, fn_args.train_files), validation_steps=fn_args.eval_steps)


def empty_run_fn(fn_args, keras=tf.keras):
  """One epoch of eval in batches larger than the eval split, the last partial batch dropped: no batch at all."""
  model = _model(keras)
  model.fit(_dataset(fn_args, fn_args.train_files), steps_per_epoch=fn_args.train_steps,
            validation_data=_dataset(fn_args, fn_args.eval_files, batch_size=512, num_epochs=1,
                                     drop_final_batch=True))


def empty_tf_keras_run_fn(fn_args):
  """The same with tf_keras, which raises where Keras 3 trains on silently."""
  import tf_keras
  empty_run_fn(fn_args, tf_keras)


def few_steps_run_fn(fn_args):
  """validation_steps hard-coded to 1 batch of 8: val_loss on 8 eval examples."""
  model = _model()
  model.fit(_dataset(fn_args, fn_args.train_files), steps_per_epoch=fn_args.train_steps,
            validation_data=_dataset(fn_args, fn_args.eval_files, batch_size=8), validation_steps=1)


def validation_split_run_fn(fn_args):
  """In-memory training arrays with validation_split: Keras validates on the last 20% of train."""
  x, y = _arrays(fn_args, fn_args.train_files)
  _model().fit({'pixels': x}, y, validation_split=0.2, epochs=1)


def in_memory_train_run_fn(fn_args):
  """In-memory arrays; the 'validation' arrays are the training arrays again."""
  x, y = _arrays(fn_args, fn_args.train_files)
  _model().fit({'pixels': x}, y, validation_data=({'pixels': x}, y), epochs=1)


def in_memory_eval_run_fn(fn_args):
  """Correct with in-memory arrays: validation on the eval split's arrays."""
  x, y = _arrays(fn_args, fn_args.train_files)
  vx, vy = _arrays(fn_args, fn_args.eval_files)
  _model().fit({'pixels': x}, y, validation_data=({'pixels': vx}, vy), epochs=1)


def no_validation_run_fn(fn_args):
  """No validation at all (Evaluator evaluates later)."""
  _model().fit(_dataset(fn_args, fn_args.train_files), steps_per_epoch=fn_args.train_steps)


def endless_run_fn(fn_args):
  """The eval dataset repeats forever (tfxio's default num_epochs=None) and fit gets no validation_steps."""
  _model().fit(_dataset(fn_args, fn_args.train_files), steps_per_epoch=fn_args.train_steps,
               validation_data=_dataset(fn_args, fn_args.eval_files))
