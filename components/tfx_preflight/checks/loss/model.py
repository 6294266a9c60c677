"""What the model and its loss are: the loss's name and from_logits, the label layout it implies, the output
activation, the compiled loss. Introspection only: nothing here runs the model on data.
"""

from __future__ import annotations

import inspect
import re
import types
from typing import Any, Callable, Optional, Sequence, Tuple

_REGRESSION = re.compile(r'mean_squared|mean_absolute|huber|log_cosh|logcosh|\bmse\b|\bmae\b|\bmape\b|\bmsle\b|poisson')



def _snake(name: str) -> str:
  return re.sub(r'(?<!^)(?=[A-Z])', '_', name).lower()


def loss_name(loss: Any) -> str:
  if isinstance(loss, str):
    return loss
  fn = getattr(loss, 'fn', None)  # keras LossFunctionWrapper around a function
  if fn is not None and getattr(fn, '__name__', None):
    return fn.__name__
  if isinstance(loss, types.FunctionType) or inspect.isfunction(loss):
    return loss.__name__
  return _snake(type(loss).__name__)


def loss_from_logits(loss: Any) -> Optional[bool]:
  """True/False when the loss declares it; None for custom functions (unknown)."""
  if isinstance(loss, str):
    return False if 'crossentropy' in loss or 'focal' in loss else None
  config = None
  if hasattr(loss, 'get_config'):
    try:
      config = loss.get_config()
    except Exception:  # Custom losses may not implement it.
      config = None
  if isinstance(config, dict) and 'from_logits' in config:
    return bool(config['from_logits'])
  module = getattr(loss, '__module__', '') or ''
  if inspect.isfunction(loss) and module.startswith('keras') and 'from_logits' in inspect.signature(loss).parameters:
    return False  # Keras' own functions default to probabilities.
  return None


def label_layout(name: str, labels: Any, output_shape: Sequence[int]) -> str:
  """sparse (class indices), onehot, binary or regression: from the loss's name, else from the shapes and values."""
  import numpy as np
  name = name.lower()
  if 'sparse' in name:
    return 'sparse'
  if 'categorical' in name:
    return 'onehot'
  if 'binary' in name:
    return 'binary'
  if _REGRESSION.search(name):
    return 'regression'
  units = int(output_shape[-1]) if len(output_shape) > 1 else 1
  y = np.asarray(labels)
  integral = y.size > 0 and bool(np.all(np.isfinite(y)) and np.all(np.round(y) == y))
  label_units = int(y.shape[-1]) if y.ndim > 1 else 1
  if units > 1 and label_units == 1 and integral:
    return 'sparse'
  if units > 1 and label_units == units:
    return 'onehot'
  if integral and set(np.unique(y).tolist()) <= {0, 1}:
    return 'binary'
  return 'regression'


def _layer_activation(layer: Any) -> Optional[str]:
  kind = type(layer).__name__
  if kind == 'Softmax':
    return 'softmax'
  activation = getattr(layer, 'activation', None)
  name = getattr(activation, '__name__', None)
  if name is None and isinstance(activation, str):
    name = activation
  return name


def output_activation(model: Any) -> Optional[str]:
  """The declared activation of the output layer (softmax, sigmoid, linear, ...), None when it cannot be told."""
  layers = list(getattr(model, 'layers', []))
  if not layers:
    return None
  try:
    outputs = model.outputs  # Functional / Sequential: the layer producing the output.
    last = outputs[0]._keras_history[0] if outputs and len(outputs) == 1 else layers[-1]
  except (AttributeError, ValueError, TypeError, IndexError):
    last = layers[-1]
  return _layer_activation(last)


def looks_like_probabilities(preds: Any) -> Tuple[bool, bool]:
  """(all in [0, 1], rows sum to 1)."""
  import numpy as np
  p = np.asarray(preds, dtype=np.float64)
  in_unit = bool(np.all(np.isfinite(p)) and p.min() >= 0 and p.max() <= 1)
  sums_to_one = in_unit and p.ndim > 1 and p.shape[-1] > 1 and bool(np.allclose(p.sum(-1), 1, atol=1e-3))
  return in_unit, sums_to_one


def compiled_loss(model: Any) -> Any:
  loss = getattr(model, 'loss', None)
  if isinstance(loss, dict) and len(loss) == 1:
    loss = next(iter(loss.values()))
  if isinstance(loss, (list, tuple)) and len(loss) == 1:
    loss = loss[0]
  return loss


def as_callable(loss: Any) -> Callable:
  import keras
  return keras.losses.get(loss) if isinstance(loss, str) else loss
