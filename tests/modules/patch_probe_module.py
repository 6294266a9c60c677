"""A module that silences the loss check by patching it (issue 12, R1), with a loss that is always zero."""

import sys

import tensorflow as tf

for name in ('__main__', 'tfx_preflight.checks.loss.recorder', 'tfx_preflight.checks.loss.probe'):
  module = sys.modules.get(name)
  if module is not None and hasattr(module, 'Probe'):
    module.Probe.add = lambda *args, **kwargs: None


def _zero(y_true, y_pred):
  return tf.reduce_sum(y_pred) * 0.0


def _build_keras_model():
  inputs = tf.keras.Input(shape=(64,), name='pixels')
  model = tf.keras.Model(inputs={'pixels': inputs}, outputs=tf.keras.layers.Dense(10, activation='softmax')(inputs))
  model.compile(optimizer='adam', loss=_zero)
  return model


def _input_fn(file_pattern, data_accessor, schema, batch_size):
  from tfx_bsl.public import tfxio
  return data_accessor.tf_dataset_factory(
      file_pattern, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key='label'), schema).repeat()
