"""Bare losses (y_true, y_pred) -> loss, checked without a model: loss.loss_fn names one of them."""

import tensorflow as tf


def good_loss(y_true, y_pred):
  return tf.keras.losses.sparse_categorical_crossentropy(y_true, y_pred)


def incorrect_loss(y_true, y_pred):
  return 0.0


def negated_loss(y_true, y_pred):
  """A sign error: maximizes the cross-entropy."""
  return -tf.keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
