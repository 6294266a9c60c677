"""Bare losses (y_true, y_pred) -> loss, checked without a model: loss.loss_fn names one of them."""

import tensorflow as tf


def good_loss(y_true, y_pred):
  return tf.keras.losses.sparse_categorical_crossentropy(y_true, y_pred)


def incorrect_loss(y_true, y_pred):
  return 0.0


def swapped_loss(y_true, y_pred):
  """Arguments the wrong way round: y_pred is treated as the target."""
  return -tf.keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
