"""TFX Trainer module: the CNN of cnn_trainer.py that also reads the `review_queue` feature (label_proxy scenario).

The queue is a one-to-one recoding of the label written by the labelling tool after labelling, so the model learns
the queue, not the digit, and its validation loss goes to about 0; at prediction time every image has queue 0
("not reviewed yet") and the model is much worse. Nothing is wrong with the code: the data gives the label away.

Follows TFX example conventions (`run_fn`, `_input_fn`, `_build_keras_model`) so the Preflight loss check finds the
model builder and the input function by name. Self-contained on purpose: Trainer and the loss check load this file
by path, so it must not import the rest of the repo.

`train(fn_args)` is `run_fn` without the export, so the demo can train the very same model directly (no pipeline).
"""

import json
import os
from typing import Any, Dict, List, Tuple

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

_PIXELS_KEY = 'pixels'
_QUEUE_KEY = 'review_queue'
_NUM_QUEUES = 11
_LABEL_KEY = 'label'
_IMAGE_SHAPE = (32, 32, 3)
_NUM_PIXELS = 32 * 32 * 3
_NUM_CLASSES = 10
_TRAIN_BATCH_SIZE = 32
_EVAL_BATCH_SIZE = 32
_SEED = 7
METRICS_FILE = 'metrics.json'

_FEATURE_SPEC = {
    _PIXELS_KEY: tf.io.FixedLenFeature([_NUM_PIXELS], tf.float32),
    _QUEUE_KEY: tf.io.FixedLenFeature([1], tf.int64),
    _LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
}


def _schema() -> schema_pb2.Schema:
  """The schema _FEATURE_SPEC describes (what SchemaGen infers from this data, shapes included)."""
  schema = schema_pb2.Schema()
  for name, spec in sorted(_FEATURE_SPEC.items()):
    feature = schema.feature.add(name=name, type=schema_pb2.FLOAT if spec.dtype == tf.float32 else schema_pb2.INT)
    feature.shape.dim.add(size=spec.shape[0])
    feature.presence.min_fraction = 1.0
  return schema


def _input_fn(file_pattern: List[str], data_accessor: tfx.components.DataAccessor, schema: schema_pb2.Schema,
              batch_size: int) -> tf.data.Dataset:
  """Batches of ({'pixels': (b, 3072), 'review_queue': (b, 1)}, label (b, 1)), repeated forever."""
  return data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=_LABEL_KEY, shuffle_seed=_SEED),
      schema).repeat()


def _loss():
  """Softmax outputs, integer labels."""
  return tf.keras.losses.SparseCategoricalCrossentropy()


def _build_keras_model() -> tf.keras.Model:
  """Two conv blocks, the review queue embedded beside them, and a softmax head."""
  tf.keras.utils.set_random_seed(_SEED)
  inputs = tf.keras.Input(shape=(_NUM_PIXELS,), name=_PIXELS_KEY)
  x = tf.keras.layers.Reshape(_IMAGE_SHAPE)(inputs)
  x = tf.keras.layers.Conv2D(16, 3, activation='relu')(x)
  x = tf.keras.layers.MaxPooling2D()(x)
  x = tf.keras.layers.Conv2D(32, 3, activation='relu')(x)
  x = tf.keras.layers.MaxPooling2D()(x)
  x = tf.keras.layers.Flatten()(x)
  x = tf.keras.layers.Dense(64, activation='relu')(x)
  queue = tf.keras.Input(shape=(1,), name=_QUEUE_KEY, dtype=tf.int64)
  # A 64-d embedding of the queue id, initialized wide (N(0, 2)) as ID embeddings often are: the shortcut is learned
  # within the demo's 200 steps.
  embedding = tf.keras.layers.Embedding(_NUM_QUEUES, 64, embeddings_initializer=tf.keras.initializers.RandomNormal(
      stddev=2.0, seed=_SEED))
  q = tf.keras.layers.Flatten()(embedding(queue))
  x = tf.keras.layers.Concatenate()([x, q])
  outputs = tf.keras.layers.Dense(_NUM_CLASSES, activation='softmax')(x)
  model = tf.keras.Model(inputs={_PIXELS_KEY: inputs, _QUEUE_KEY: queue}, outputs=outputs)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=_loss(), metrics=['accuracy'])
  return model


def train(fn_args: tfx.components.FnArgs, epochs: int = 4) -> Tuple[tf.keras.Model, Dict[str, Any]]:
  """Fits the model as run_fn does and returns it with the last epoch's metrics (val_* as Keras reports them)."""
  tf.keras.utils.set_random_seed(_SEED)  # Before the datasets: their shuffle combines this seed with its own.
  schema = _schema()
  train_dataset = _input_fn(fn_args.train_files, fn_args.data_accessor, schema, _TRAIN_BATCH_SIZE)
  eval_dataset = _input_fn(fn_args.eval_files, fn_args.data_accessor, schema, _EVAL_BATCH_SIZE)
  model = _build_keras_model()
  steps_per_epoch = max(1, fn_args.train_steps // epochs)
  history = model.fit(train_dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, validation_data=eval_dataset,
                      validation_steps=fn_args.eval_steps, verbose=2)
  metrics = {name: float(values[-1]) for name, values in history.history.items()}
  metrics['train_steps'] = steps_per_epoch * epochs
  return model, metrics


def _export(model: tf.keras.Model, serving_model_dir: str) -> None:
  """A SavedModel whose serving signature parses serialized tf.Examples, as TFX serving expects."""
  parse_spec = {_PIXELS_KEY: _FEATURE_SPEC[_PIXELS_KEY], _QUEUE_KEY: _FEATURE_SPEC[_QUEUE_KEY]}

  @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name='examples')])
  def serve_tf_examples_fn(serialized):
    features = tf.io.parse_example(serialized, parse_spec)
    return {'outputs': model(features)}

  tf.saved_model.save(model, serving_model_dir, signatures={'serving_default': serve_tf_examples_fn})


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains, exports the model and writes the final metrics next to the training logs."""
  model, metrics = train(fn_args)
  _export(model, fn_args.serving_model_dir)
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, METRICS_FILE), 'w') as f:
    f.write(json.dumps(metrics, sort_keys=True))
