"""A Trainer module whose import fails: a dependency missing from the Trainer image."""

import preflight_package_that_does_not_exist  # noqa: F401
import tensorflow as tf  # noqa: F401


def _build_keras_model():
  raise AssertionError('never reached')
