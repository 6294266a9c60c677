"""The battery: synthetic predictions in the model's output space (perfect, inverted, constant...) through the loss,
and the checks of the loss against the labels and the model's head (from_logits, label ranges, initial loss).

Runs inside the probe subprocess (probe.py); the stages on real batches that call it are in real_batch.py.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

from tfx_preflight.checks.loss.model import looks_like_probabilities, loss_from_logits
from tfx_preflight.checks.loss.recorder import SEVERITY_BLOCK, SEVERITY_WARN, Probe, fmt, rounded

# Synthetic predictions: confidence of a "perfect" prediction and of an inverted one on the wrong class.
_CONFIDENCE = 0.98
# Two losses closer than this (relative) are the same number.
_SAME_REL = 1e-6
# The initial loss of a fresh classifier is reported when outside [expected / _INIT_RATIO, expected * _INIT_RATIO + 0.5].
_INIT_RATIO = 3.0


# ---------------------------------------------------------------------------------------------------------------------
# Synthetic predictions in the model's output space.


class Space:
  """Turns probabilities into what the model outputs (probabilities, or logits for a linear head)."""

  def __init__(self, logits: bool):
    self.logits = logits

  def categorical(self, probs):
    import numpy as np
    return np.log(np.clip(probs, 1e-7, 1.0)) if self.logits else probs

  def binary(self, probs):
    import numpy as np
    p = np.clip(probs, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p)) if self.logits else probs


def _class_indices(labels, layout: str, units: int):
  import numpy as np
  y = np.asarray(labels)
  if layout == 'onehot':
    return np.argmax(y.reshape(y.shape[0], -1), axis=-1)
  idx = np.rint(y.reshape(y.shape[0], -1)[:, 0]).astype(np.int64)
  return np.mod(idx, max(units, 1))  # The battery needs valid labels; bad ones are reported separately.


def _one_hot_probs(idx, units: int, confidence: float):
  import numpy as np
  rest = (1 - confidence) / (units - 1) if units > 1 else 0.0
  p = np.full((len(idx), units), rest)
  p[np.arange(len(idx)), idx] = confidence if units > 1 else 1.0
  return p


def battery_inputs(labels, layout: str, output_shape: Sequence[int], space: Space, seed: int) -> Dict[str, Any]:
  """Valid labels, other labels, and perfect / random / inverted predictions for them, shaped as the model outputs."""
  import numpy as np
  rng = np.random.default_rng(seed)
  y = np.asarray(labels)
  n = y.shape[0]
  shape = (n, *[int(d) for d in output_shape[1:]])
  units = int(shape[-1]) if len(shape) > 1 else 1
  if layout in ('sparse', 'onehot'):
    idx = _class_indices(y, layout, units)
    wrong = np.mod(idx + 1, max(units, 1))
    perfect = _one_hot_probs(idx, units, _CONFIDENCE)
    inverted = _one_hot_probs(wrong, units, _CONFIDENCE)
    random = rng.dirichlet(np.ones(units), size=n) if units > 1 else np.ones((n, 1))
    convert = space.categorical
    if layout == 'sparse':
      y_valid = idx.reshape(y.shape if y.size == n else (n, 1)).astype(y.dtype if y.dtype.kind in 'iu' else np.int64)
      y_other = wrong.reshape(y_valid.shape).astype(y_valid.dtype)
    else:
      y_valid = np.eye(units, dtype=np.float32)[idx]
      y_other = np.eye(units, dtype=np.float32)[wrong]
  elif layout == 'binary':
    y_valid = (np.asarray(y, dtype=np.float64).reshape(shape) > 0.5).astype(np.float32) if y.size == int(np.prod(
        shape)) else (rng.random(shape) > 0.5).astype(np.float32)
    y_other = 1 - y_valid
    perfect = np.where(y_valid > 0.5, _CONFIDENCE, 1 - _CONFIDENCE)
    inverted = 1 - perfect
    random = rng.uniform(0.05, 0.95, size=shape)
    convert = space.binary
  else:
    yf = np.asarray(y, dtype=np.float64)
    y_valid = yf.reshape(shape) if yf.size == int(np.prod(shape)) else np.resize(yf, shape)
    spread = max(float(np.std(y_valid)), 1e-3 * abs(float(np.mean(y_valid))), 1e-3)
    perfect = y_valid
    random = float(np.mean(y_valid)) + spread * rng.standard_normal(shape)
    inverted = y_valid + 4 * spread * np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    y_other = y_valid + 4 * spread
    y_valid = y_valid.astype(np.float32)
    y_other = y_other.astype(np.float32)

    def convert(v):
      return v
  return {
      'y': y_valid, 'y_other': y_other, 'layout': layout,
      'perfect': convert(perfect).astype(np.float32), 'random': convert(random).astype(np.float32),
      'inverted': convert(inverted).astype(np.float32),
  }


# ---------------------------------------------------------------------------------------------------------------------
# The battery on a loss callable (y_true, y_pred) -> scalar.


def scalar_loss(loss_fn: Callable, y, preds, watch: bool = False) -> Tuple[float, Optional[Any]]:
  """Mean loss (as Keras reduces a function's per-example output) and, if `watch`, its gradient wrt predictions."""
  import numpy as np
  import tensorflow as tf
  p = tf.convert_to_tensor(preds)
  with tf.GradientTape() as tape:
    tape.watch(p)
    value = loss_fn(tf.convert_to_tensor(y), p)
    value = tf.reduce_mean(tf.cast(tf.convert_to_tensor(value), tf.float32))
  gradient = tape.gradient(value, p) if watch else None
  return float(value.numpy()), (None if gradient is None else np.asarray(gradient))


def weighted(loss_fn: Callable, weights: Any) -> Callable:
  """The loss as fit computes it with these per-example weights: per-example values times the weights, summed and
  divided by the number of values (Keras' default reduction, sum_over_batch_size)."""
  import tensorflow as tf

  def loss(y_true, y_pred):
    per = loss_fn.call(y_true, y_pred) if hasattr(loss_fn, 'call') and hasattr(loss_fn, 'reduction') else \
        loss_fn(y_true, y_pred)
    per = tf.cast(tf.convert_to_tensor(per), tf.float32)
    w = tf.cast(tf.convert_to_tensor(weights), tf.float32)
    if per.shape.rank:
      w = tf.reshape(w, [-1] + [1] * (per.shape.rank - 1))
    product = per * w
    return tf.reduce_sum(product) / tf.cast(tf.size(product), tf.float32)

  return loss


def _same(a: float, b: float) -> bool:
  if not (math.isfinite(a) and math.isfinite(b)):
    return False
  return abs(a - b) <= _SAME_REL * max(1.0, abs(a), abs(b))


def run_battery(probe: Probe, loss_fn: Callable, described: str, inputs: Dict[str, Any], where: str) -> None:
  """non_finite, constant_loss, no_gradient, ignores_labels, wrong_ordering on synthetic predictions."""
  import numpy as np
  values = {}
  gradient = None
  for kind in ('perfect', 'random', 'inverted'):
    value, grad = scalar_loss(loss_fn, inputs['y'], inputs[kind], watch=kind == 'random')
    values[kind] = value
    if kind == 'random':
      gradient = grad
  probe.measurements['loss_on_synthetic_predictions'] = {k: rounded(v) for k, v in values.items()}
  bad = sorted(k for k, v in values.items() if not math.isfinite(v))
  if bad:
    probe.add('non_finite', SEVERITY_BLOCK,
              f'{described} is NaN or Inf on {", ".join(bad)} predictions of {where}: clip probabilities or use '
              'from_logits=True with a linear output, and avoid log(0) or division by zero in a custom loss.',
              predictions=bad)
  gradient_ok = gradient is not None and bool(np.all(np.isfinite(gradient))) and bool(np.any(gradient != 0))
  finite = [values[k] for k in ('perfect', 'random', 'inverted') if math.isfinite(values[k])]
  if len(finite) == 3 and _same(finite[0], finite[1]) and _same(finite[1], finite[2]):
    probe.add('constant_loss', SEVERITY_BLOCK,
              f'{described} gives {fmt(values["perfect"])} for perfect, random and inverted predictions of {where}: '
              'it does not depend on the predictions, so training cannot learn and validation loss means nothing. '
              'Check for a constant return value, a mask that zeroes every example, or a 1-unit softmax.',
              loss_value=rounded(values['perfect']))
    return
  if not gradient_ok:
    what = 'missing' if gradient is None else ('NaN or Inf' if not np.all(np.isfinite(gradient)) else 'all zero')
    probe.add('no_gradient', SEVERITY_BLOCK,
              f'The gradient of {described} with respect to the predictions is {what}: the optimizer gets no signal. '
              'Remove casts to integer, argmax/round, tf.stop_gradient or .numpy() from the loss.', gradient=what)
  other, _ = scalar_loss(loss_fn, inputs['y_other'], inputs['perfect'])
  probe.measurements['loss_with_other_labels'] = rounded(other)
  if _same(other, values['perfect']):
    probe.add('ignores_labels', SEVERITY_BLOCK,
              f'{described} gives {fmt(other)} whether or not the labels match the predictions: it ignores y_true. '
              'Check the argument order (Keras calls loss(y_true, y_pred)) and that y_true is used.')
  if len(finite) == 3:
    if not values['perfect'] < values['random']:
      probe.add('wrong_ordering', SEVERITY_BLOCK,
                f'{described}: perfect predictions score {fmt(values["perfect"])}, not lower than random ones '
                f'({fmt(values["random"])}). Lower must be better: check for a sign error or swapped arguments.',
                **{k: rounded(v) for k, v in values.items()})
    elif not values['random'] < values['inverted']:
      probe.add('wrong_ordering', SEVERITY_BLOCK,
                f'{described}: random predictions score {fmt(values["random"])}, not lower than inverted ones '
                f'({fmt(values["inverted"])}). Check for a sign error or swapped arguments.',
                **{k: rounded(v) for k, v in values.items()})


# ---------------------------------------------------------------------------------------------------------------------
# Checks that need the model.


def check_from_logits(probe: Probe, loss: Any, described: str, activation: Optional[str], preds: Any) -> bool:
  """Adds from_logits_mismatch; returns whether the model outputs are logits (used to build synthetic predictions)."""
  from_logits = loss_from_logits(loss)
  in_unit, sums_to_one = looks_like_probabilities(preds)
  probability_head = activation in ('softmax', 'sigmoid')
  known_linear = activation in ('linear', None) and activation is not None
  probe.info['output_activation'] = activation or 'unknown'
  probe.info['loss_from_logits'] = from_logits
  if from_logits is True and probability_head:
    probe.add('from_logits_mismatch', SEVERITY_BLOCK,
              f'The model ends in {activation} but {described} has from_logits=True: it applies {activation} a second '
              f'time. Use from_logits=False, or remove the activation from the last layer (then apply it at serving).',
              activation=activation)
  elif from_logits is False and (known_linear or not in_unit) and not probability_head:
    probe.add('from_logits_mismatch', SEVERITY_BLOCK,
              f'The model outputs unbounded values (last layer activation {activation or "unknown"}) but {described} '
              'expects probabilities (from_logits=False): Keras clips them to [0, 1] and the loss is meaningless. '
              'Use from_logits=True, or end the model in softmax/sigmoid.', activation=activation or 'unknown')
  elif from_logits is True and activation is None and in_unit:
    probe.add('from_logits_mismatch', SEVERITY_WARN,
              f'{described} has from_logits=True but every model output on a real batch is in [0, 1]'
              f'{" and rows sum to 1" if sums_to_one else ""}: if the model ends in softmax/sigmoid, use '
              'from_logits=False.', activation='unknown')
  if probability_head:
    return False
  if activation is None:
    return not in_unit
  return True


class _SplitLabels(NamedTuple):
  """The label values of one split, summarised for the checks below."""
  split: str
  y: Any
  low: float  # Over the batches read, widened to the whole split's range when statistics give it.
  high: float
  units: int  # Width of one label.
  integral: bool


def _split_labels(split: str, y: Any, stats: Dict[str, Any]) -> _SplitLabels:
  import numpy as np
  y = np.asarray(y)
  low = float(np.nanmin(y)) if y.size else math.nan
  high = float(np.nanmax(y)) if y.size else math.nan
  if stats.get('min') is not None:  # The whole split's range, from statistics (labels not transformed).
    low, high = min(low, stats['min']), max(high, stats['max'])
  label_units = int(y.shape[-1]) if y.ndim > 1 else 1
  integral = bool(np.all(np.isfinite(y)) and np.all(np.round(y) == y))
  return _SplitLabels(split, y, low, high, label_units, integral)


def _sparse_labels(probe: Probe, labels: _SplitLabels, units: int, described: str) -> None:
  import numpy as np
  split, y, low, high = labels.split, labels.y, labels.low, labels.high
  if labels.units > 1:
    probe.add('label_shape_mismatch', SEVERITY_BLOCK,
              f'{described} expects one class index per example, but split {split!r} has labels of shape '
              f'{list(y.shape[1:])} (one-hot?). Use CategoricalCrossentropy, or feed class indices.', split=split)
  elif not labels.integral or low < 0 or high >= units:
    values = sorted({int(v) for v in np.unique(y) if np.isfinite(v) and (v < 0 or v >= units or v != int(v))})
    probe.add('label_out_of_range', SEVERITY_BLOCK,
              f'{described} needs class indices in [0, {units}) (the model has {units} output units), but '
              f'split {split!r} has labels in [{fmt(low)}, {fmt(high)}]'
              f'{", e.g. " + ", ".join(map(str, values[:10])) if values else ""}. Give the last layer as many '
              'units as classes, or map the labels to 0..units-1.',
              split=split, label_min=rounded(low), label_max=rounded(high), units=units)


def _onehot_labels(probe: Probe, labels: _SplitLabels, units: int, described: str) -> None:
  split, low, high = labels.split, labels.low, labels.high
  if labels.units != units:
    probe.add('label_shape_mismatch', SEVERITY_BLOCK,
              f'{described} expects one-hot labels of width {units}, but split {split!r} has labels of shape '
              f'{list(labels.y.shape[1:]) or [1]}{" (class indices?)" if labels.integral else ""}. Use '
              'SparseCategoricalCrossentropy for integer labels, or one-hot encode them.', split=split)
  elif low < 0 or high > 1:
    probe.add('label_out_of_range', SEVERITY_BLOCK,
              f'{described} expects one-hot or probability labels in [0, 1], but split {split!r} has labels in '
              f'[{fmt(low)}, {fmt(high)}].', split=split, label_min=rounded(low), label_max=rounded(high))


def _binary_labels(probe: Probe, labels: _SplitLabels, units: int, described: str) -> None:
  split, low, high = labels.split, labels.low, labels.high
  if low < 0 or high > 1:
    probe.add('label_out_of_range', SEVERITY_BLOCK,
              f'{described} expects labels in {{0, 1}}, but split {split!r} has labels in [{fmt(low)}, '
              f'{fmt(high)}]. Map the labels to 0/1, or use a multi-class loss.',
              split=split, label_min=rounded(low), label_max=rounded(high))
  elif labels.units != units and units > 1:
    probe.add('label_shape_mismatch', SEVERITY_BLOCK,
              f'{described} compares labels of width {labels.units} with {units} output units in split {split!r}: '
              'they broadcast silently. Use one unit per binary label.', split=split)


def _regression_labels(probe: Probe, labels: _SplitLabels, units: int, described: str) -> None:
  if labels.units != 1 or units <= 1:
    return
  split = labels.split
  classes = ' The labels are integers and the model has several outputs: for class indices use ' \
            'SparseCategoricalCrossentropy.' if labels.integral else ''
  probe.add('label_shape_mismatch', SEVERITY_BLOCK,
            f'{described} is element-wise, but split {split!r} has one label per example and the model has {units} '
            f'output units: y_true of shape (batch, 1) broadcasts against y_pred of shape (batch, {units}), so '
            'training runs and the loss falls while the model learns nothing useful.' + classes,
            split=split, units=units)


_LABEL_CHECKS = {'sparse': _sparse_labels, 'onehot': _onehot_labels, 'binary': _binary_labels,
                 'regression': _regression_labels}


def check_labels(probe: Probe, layout: str, labels_by_split: Dict[str, Any], units: int, described: str,
                 label_stats: Dict[str, Dict[str, Any]]) -> None:
  """label_out_of_range / label_shape_mismatch on the label values actually in each split."""
  check = _LABEL_CHECKS.get(layout)
  for split, y in sorted(labels_by_split.items()):
    labels = _split_labels(split, y, label_stats.get(split) or {})
    if check is not None:
      check(probe, labels, units, described)


def expected_initial_loss(layout: str, units: int, labels: Any, name: str) -> Optional[float]:
  """What a fresh, untrained model should score: ln C for C classes, ln 2 per binary label, E[y^2] for squared error
  (an untrained regressor predicts about 0)."""
  import numpy as np
  if layout in ('sparse', 'onehot'):
    return math.log(units) if units > 1 else None
  if layout == 'binary':
    return math.log(2)
  if re.search(r'squared|mse', name.lower()):
    return float(np.mean(np.square(np.asarray(labels, dtype=np.float64))))
  return None


def check_initial_loss(probe: Probe, value: float, expected: Optional[float], layout: str, described: str) -> None:
  probe.measurements['initial_loss'] = rounded(value)
  if expected is None or not math.isfinite(value):
    return
  probe.measurements['expected_initial_loss'] = rounded(expected)
  classifier = layout != 'regression'
  if value > expected * _INIT_RATIO + 0.5 or (classifier and value < expected / _INIT_RATIO):
    basis = 'ln of the number of classes' if layout in ('sparse', 'onehot') else (
        'ln 2 per binary label' if classifier else 'the mean squared label, for predictions near 0')
    probe.add('suspicious_initial_loss', SEVERITY_WARN,
              f'The freshly built model scores {fmt(value)} with {described} on a real train batch; an untrained '
              f'model should be near {fmt(expected)} ({basis}). Check the output activation, from_logits, the label '
              'encoding and input scaling (e.g. normalize features in Transform).',
              initial_loss=rounded(value), expected=rounded(expected))
