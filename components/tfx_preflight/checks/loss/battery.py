"""The loss battery: what a compiled Keras model and its loss do on real batches, as findings and measurements.

Runs inside the probe subprocess (see loss_probe.py); every function here takes a Probe that collects findings.
"""

from __future__ import annotations

import inspect
import math
import re
import sys
import time
import types
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tfx_preflight.checks.loss.protocol import PROGRESS, RESULT, NullWriter, ProbeRequest

_STARTED = time.monotonic()

SEVERITY_BLOCK = 'block'
SEVERITY_WARN = 'warn'

# Synthetic predictions: confidence of a "perfect" prediction and of an inverted one on the wrong class.
_CONFIDENCE = 0.98
# Two losses closer than this (relative) are the same number.
_SAME_REL = 1e-6
# The initial loss of a fresh classifier is reported when outside [expected / _INIT_RATIO, expected * _INIT_RATIO + 0.5].
_INIT_RATIO = 3.0
# Relative agreement required between model.evaluate and the loss computed directly.
_EVAL_REL_TOL = 1e-3

_REGRESSION = re.compile(r'mean_squared|mean_absolute|huber|log_cosh|logcosh|\bmse\b|\bmae\b|\bmape\b|\bmsle\b|poisson')


def _fmt(value: float) -> str:
  return f'{value:.4g}'


def _round(value: Optional[float]) -> Optional[float]:
  """4 significant digits: the report must not change with the last bits of a float."""
  if value is None or not math.isfinite(value):
    return value
  return float(f'{value:.4g}')


def error_text(error: BaseException) -> str:
  """The exception type and the first lines of its message (TF errors are long)."""
  text = ' '.join(str(error).split())
  return f'{type(error).__name__}: {text[:400]}' if text else type(error).__name__


def probe_deadline(request: ProbeRequest) -> float:
  """When the parent kills the probe, on this process's monotonic clock: `timeout_seconds` after the parent sent the
  request (which waits in the pipe while the probe still imports TensorFlow); inf without a budget."""
  if request.timeout_seconds <= 0:
    return math.inf
  waited = min(max(0.0, time.time() - request.sent_at), request.timeout_seconds) if request.sent_at else 0.0
  return time.monotonic() - waited + request.timeout_seconds


class Probe:
  """Collects findings and measurements and sends them to the parent (progress messages, then the result)."""

  def __init__(self, request: ProbeRequest, writer: Any = None):
    self.request = request
    self.writer = writer or NullWriter()
    self.findings: List[Dict[str, Any]] = []
    self.measurements: Dict[str, Any] = {}
    self.info: Dict[str, Any] = {}
    self.stage = 'start'
    self.function: Optional[str] = None
    # (stage, wall-clock time it began): where the probe's time goes (loss.timing.json; never in report.json).
    self.timing: List[Tuple[str, float]] = []
    # When the parent's budget for the probe runs out (time.monotonic()): stages that loop stop on a share of it.
    self.deadline = probe_deadline(request)

  def add(self, code: str, severity: str, message: str, **details: Any) -> None:
    self.findings.append({'code': code, 'severity': severity, 'message': message, **details})

  def has(self, *codes: str) -> bool:
    return any(f['code'] in codes for f in self.findings)

  def enter(self, stage: str, function: Optional[str] = None) -> None:
    """Records the stage about to run, so the parent can name it if the process hangs or dies there."""
    self.stage = stage
    self.function = function
    self.timing.append((stage, time.time()))
    print(f'preflight-probe: {time.monotonic() - _STARTED:7.1f}s {stage} {function or ""}', file=sys.stderr, flush=True)
    self.writer.send(PROGRESS, {'stage': stage, 'function': function, **self._payload()})

  def _payload(self) -> Dict[str, Any]:
    return {'findings': self.findings, 'measurements': self.measurements, 'info': self.info, 'timing': self.timing}

  def finish(self) -> None:
    self.timing.append(('end', time.time()))
    self.writer.send(RESULT, {'complete': True, **self._payload()})


# ---------------------------------------------------------------------------------------------------------------------
# What the model and its loss are.


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
  probe.measurements['loss_on_synthetic_predictions'] = {k: _round(v) for k, v in values.items()}
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
              f'{described} gives {_fmt(values["perfect"])} for perfect, random and inverted predictions of {where}: '
              'it does not depend on the predictions, so training cannot learn and validation loss means nothing. '
              'Check for a constant return value, a mask that zeroes every example, or a 1-unit softmax.',
              loss_value=_round(values['perfect']))
    return
  if not gradient_ok:
    what = 'missing' if gradient is None else ('NaN or Inf' if not np.all(np.isfinite(gradient)) else 'all zero')
    probe.add('no_gradient', SEVERITY_BLOCK,
              f'The gradient of {described} with respect to the predictions is {what}: the optimizer gets no signal. '
              'Remove casts to integer, argmax/round, tf.stop_gradient or .numpy() from the loss.', gradient=what)
  other, _ = scalar_loss(loss_fn, inputs['y_other'], inputs['perfect'])
  probe.measurements['loss_with_other_labels'] = _round(other)
  if _same(other, values['perfect']):
    probe.add('ignores_labels', SEVERITY_BLOCK,
              f'{described} gives {_fmt(other)} whether or not the labels match the predictions: it ignores y_true. '
              'Check the argument order (Keras calls loss(y_true, y_pred)) and that y_true is used.')
  if len(finite) == 3:
    if not values['perfect'] < values['random']:
      probe.add('wrong_ordering', SEVERITY_BLOCK,
                f'{described}: perfect predictions score {_fmt(values["perfect"])}, not lower than random ones '
                f'({_fmt(values["random"])}). Lower must be better: check for a sign error or swapped arguments.',
                **{k: _round(v) for k, v in values.items()})
    elif not values['random'] < values['inverted']:
      probe.add('wrong_ordering', SEVERITY_BLOCK,
                f'{described}: random predictions score {_fmt(values["random"])}, not lower than inverted ones '
                f'({_fmt(values["inverted"])}). Check for a sign error or swapped arguments.',
                **{k: _round(v) for k, v in values.items()})


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


def check_labels(probe: Probe, layout: str, labels_by_split: Dict[str, Any], units: int, described: str,
                 label_stats: Dict[str, Dict[str, Any]]) -> None:
  """label_out_of_range / label_shape_mismatch on the label values actually in each split."""
  import numpy as np
  for split, y in sorted(labels_by_split.items()):
    y = np.asarray(y)
    stats = label_stats.get(split) or {}
    low = float(np.nanmin(y)) if y.size else math.nan
    high = float(np.nanmax(y)) if y.size else math.nan
    if stats.get('min') is not None:  # The whole split's range, from statistics (labels not transformed).
      low, high = min(low, stats['min']), max(high, stats['max'])
    label_units = int(y.shape[-1]) if y.ndim > 1 else 1
    integral = bool(np.all(np.isfinite(y)) and np.all(np.round(y) == y))
    if layout == 'sparse':
      if label_units > 1:
        probe.add('label_shape_mismatch', SEVERITY_BLOCK,
                  f'{described} expects one class index per example, but split {split!r} has labels of shape '
                  f'{list(y.shape[1:])} (one-hot?). Use CategoricalCrossentropy, or feed class indices.', split=split)
      elif not integral or low < 0 or high >= units:
        values = sorted({int(v) for v in np.unique(y) if np.isfinite(v) and (v < 0 or v >= units or v != int(v))})
        probe.add('label_out_of_range', SEVERITY_BLOCK,
                  f'{described} needs class indices in [0, {units}) (the model has {units} output units), but '
                  f'split {split!r} has labels in [{_fmt(low)}, {_fmt(high)}]'
                  f'{", e.g. " + ", ".join(map(str, values[:10])) if values else ""}. Give the last layer as many '
                  'units as classes, or map the labels to 0..units-1.',
                  split=split, label_min=_round(low), label_max=_round(high), units=units)
    elif layout == 'onehot':
      if label_units != units:
        probe.add('label_shape_mismatch', SEVERITY_BLOCK,
                  f'{described} expects one-hot labels of width {units}, but split {split!r} has labels of shape '
                  f'{list(y.shape[1:]) or [1]}{" (class indices?)" if integral else ""}. Use '
                  'SparseCategoricalCrossentropy for integer labels, or one-hot encode them.', split=split)
      elif low < 0 or high > 1:
        probe.add('label_out_of_range', SEVERITY_BLOCK,
                  f'{described} expects one-hot or probability labels in [0, 1], but split {split!r} has labels in '
                  f'[{_fmt(low)}, {_fmt(high)}].', split=split, label_min=_round(low), label_max=_round(high))
    elif layout == 'binary':
      if low < 0 or high > 1:
        probe.add('label_out_of_range', SEVERITY_BLOCK,
                  f'{described} expects labels in {{0, 1}}, but split {split!r} has labels in [{_fmt(low)}, '
                  f'{_fmt(high)}]. Map the labels to 0/1, or use a multi-class loss.',
                  split=split, label_min=_round(low), label_max=_round(high))
      elif label_units != units and units > 1:
        probe.add('label_shape_mismatch', SEVERITY_BLOCK,
                  f'{described} compares labels of width {label_units} with {units} output units in split {split!r}: '
                  'they broadcast silently. Use one unit per binary label.', split=split)
    elif layout == 'regression' and label_units == 1 and units > 1:
      classes = ' The labels are integers and the model has several outputs: for class indices use ' \
                'SparseCategoricalCrossentropy.' if integral else ''
      probe.add('label_shape_mismatch', SEVERITY_BLOCK,
                f'{described} is element-wise, but split {split!r} has one label per example and the model has {units} '
                f'output units: y_true of shape (batch, 1) broadcasts against y_pred of shape (batch, {units}), so '
                'training runs and the loss falls while the model learns nothing useful.' + classes,
                split=split, units=units)


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
  probe.measurements['initial_loss'] = _round(value)
  if expected is None or not math.isfinite(value):
    return
  probe.measurements['expected_initial_loss'] = _round(expected)
  classifier = layout != 'regression'
  if value > expected * _INIT_RATIO + 0.5 or (classifier and value < expected / _INIT_RATIO):
    basis = 'ln of the number of classes' if layout in ('sparse', 'onehot') else (
        'ln 2 per binary label' if classifier else 'the mean squared label, for predictions near 0')
    probe.add('suspicious_initial_loss', SEVERITY_WARN,
              f'The freshly built model scores {_fmt(value)} with {described} on a real train batch; an untrained '
              f'model should be near {_fmt(expected)} ({basis}). Check the output activation, from_logits, the label '
              'encoding and input scaling (e.g. normalize features in Transform).',
              initial_loss=_round(value), expected=_round(expected))


def _evaluate_loss(model: Any, x: Any, y: Any) -> float:
  result = model.evaluate(x, y, batch_size=_batch_len(y), verbose=0, return_dict=True)
  return float(result['loss'])


def _batch_len(y: Any) -> int:
  import numpy as np
  return int(np.asarray(y).shape[0])


# The fit of one batch spends at most this share of what is left of the probe's budget when it starts, so the probe
# ends with an answer (how many steps ran) instead of being killed (a timeout blocks).
_FIT_BUDGET_SHARE = 0.5
# Above this, one eager pass of model(x) is slow (a recurrent model runs its time loop op by op: ~4 s a pass for TFX's
# imdb BiLSTM): the loss during and after the fit is then measured by a graph traced once.
_EAGER_SECONDS = 0.2
# The loss is measured during the fit after about every 1.5x more steps (1, 2, 3, 4, 6, 8, 12, 18, 26 of 30).
_CHECK_GROWTH = 1.5

# Why the fit of one batch stopped (measurements.fit_batch.stopped_because).
FIT_LOSS_FELL = 'loss_fell'
FIT_ALL_STEPS = 'fit_steps'
FIT_TIME_BUDGET = 'time_budget'


def _tolerance(before: float) -> float:
  return 1e-6 * max(1.0, abs(before))


def loss_fell(before: float, after: float) -> bool:
  """The loss fell as check_fit requires to pass: clearly lower, and by at least 1%."""
  return math.isfinite(after) and after < before - _tolerance(before) and after <= before * 0.99


class _BatchLoss:
  """The loss of model(x, training=False) on one batch with `direct_loss` (never read from fit's logs, where a metric
  may be named 'loss'). Eager, unless an eager pass is slower than _EAGER_SECONDS and the model trains as a graph."""

  def __init__(self, model: Any, x: Any, y: Any, direct_loss: Callable):
    self.model, self.x, self.y, self.direct_loss = model, x, y, direct_loss
    self._graph: Optional[Callable] = None
    self._eager_only = bool(getattr(model, 'run_eagerly', False))

  def __call__(self) -> float:
    if self._graph is not None:
      try:
        return float(self._graph().numpy())
      except Exception:  # A model that cannot be traced outside fit: eager says the same, or raises what fit would.
        self._graph, self._eager_only = None, True
    started = time.monotonic()
    value = scalar_loss(self.direct_loss, self.y, self.model(self.x, training=False))[0]
    if not self._eager_only and time.monotonic() - started > _EAGER_SECONDS:
      self._graph = self._traced()
      return self()  # Every value the fit is judged on from the same graph (eager may differ in the last bits).
    return value

  def _traced(self) -> Callable:
    import tensorflow as tf

    def value():
      loss = self.direct_loss(tf.convert_to_tensor(self.y), self.model(self.x, training=False))
      return tf.reduce_mean(tf.cast(tf.convert_to_tensor(loss), tf.float32))

    return tf.function(value)


def _check_points(steps: int) -> List[int]:
  """After which optimizer steps the fit measures the loss: about every _CHECK_GROWTH x more steps, below `steps`."""
  points, point = [], 1.0
  while math.ceil(point) < steps:
    if not points or math.ceil(point) > points[-1]:
      points.append(math.ceil(point))
    point *= _CHECK_GROWTH
  return points


def _callback_base(model: Any) -> type:
  """Callback of the Keras the model belongs to (tf_keras' fit takes tf_keras callbacks only)."""
  if any(cls.__module__.split('.')[0] == 'tf_keras' for cls in type(model).__mro__):
    import tf_keras
    return tf_keras.callbacks.Callback
  import keras
  return keras.callbacks.Callback


def _fit_stopper(model: Any, loss_now: _BatchLoss, before: float, steps: int, stop_at: float) -> Any:
  """A Keras callback that stops the fit (model.stop_training, as EarlyStopping does) once the loss fell
  (loss_fell, measured at _check_points) or at `stop_at` (time.monotonic()); it counts the steps that ran."""
  points = _check_points(steps)

  class FitStopper(_callback_base(model)):

    def __init__(self):
      super().__init__()
      self.steps = 0
      self.stopped_because = FIT_ALL_STEPS

    def on_train_batch_end(self, batch, logs=None):
      self.steps = int(batch) + 1  # Keras passes the last step's index (several with steps_per_execution).
      if self.steps >= steps:
        return
      if points and self.steps >= points[0]:
        while points and points[0] <= self.steps:
          points.pop(0)
        if loss_fell(before, loss_now()):
          self.stopped_because = FIT_LOSS_FELL
      if self.stopped_because == FIT_ALL_STEPS and time.monotonic() >= stop_at:
        self.stopped_because = FIT_TIME_BUDGET
      if self.stopped_because != FIT_ALL_STEPS:
        model.stop_training = True

  return FitStopper()


def check_fit(probe: Probe, model: Any, x: Any, y: Any, steps: int, described: str, direct_loss: Callable,
              weights: Any = None) -> None:
  """cannot_fit_batch: up to `steps` optimizer steps on one small real batch (with the weights fit applies) must lower
  the loss computed from model(x) with `direct_loss`. The fit stops as soon as the loss fell, or when its time budget
  (a share of what is left of the probe's) runs out: then too few steps to tell is fit_not_concluded, not a verdict."""
  import tensorflow as tf
  started = time.monotonic()
  budget = _FIT_BUDGET_SHARE * max(0.0, probe.deadline - started)
  loss_now = _BatchLoss(model, x, y, direct_loss)
  before = loss_now()
  stopper = _fit_stopper(model, loss_now, before, steps, started + budget)
  try:
    # One fit over the batch repeated: train_on_batch builds and distributes a dataset per call (0.13 s a step under
    # the MirroredStrategy TFX's examples use, against a few ms here).
    element = (x, y) if weights is None else (x, y, weights)
    model.fit(tf.data.Dataset.from_tensors(element).repeat(steps), epochs=1, verbose=0, callbacks=[stopper])
  except ValueError as e:
    if 'No gradients provided' in str(e):
      probe.add('no_gradient', SEVERITY_BLOCK,
                f'model.fit fails with "No gradients provided for any variable": {described} does not depend on '
                'the model (a constant such as `return 0.0`, or a value computed outside TensorFlow).')
      return
    raise
  after = loss_now()
  fit = {'before': _round(before), 'after': _round(after), 'steps': stopper.steps,
         'stopped_because': stopper.stopped_because}
  if stopper.stopped_because == FIT_TIME_BUDGET:  # Only then: seconds differ from run to run, the report must not.
    fit.update(seconds=round(time.monotonic() - started, 1), budget_seconds=round(budget, 1))
  probe.measurements['fit_batch'] = fit
  print(f'preflight-probe: fit_batch {stopper.steps} of {steps} steps in {time.monotonic() - started:.1f} s (budget '
        f'{budget:.1f} s), stopped: {stopper.stopped_because}', file=sys.stderr, flush=True)
  _fit_findings(probe, before, after, fit, steps, described, _batch_len(y))


def _fit_findings(probe: Probe, before: float, after: float, fit: Dict[str, Any], configured: int, described: str,
                  examples: int) -> None:
  """The findings of the fit of one batch. Stopped by its time budget before the loss fell, the steps that ran
  decide only when the loss did not move at all (or became NaN); else too few steps ran to tell."""
  ran = fit['steps']
  timed_out = fit['stopped_because'] == FIT_TIME_BUDGET
  steps_text = f'{ran} optimizer steps' + (f' (of {configured}: the time budget stopped the fit)' if timed_out else '')
  if not math.isfinite(after):
    probe.add('non_finite', SEVERITY_BLOCK,
              f'{described} became NaN or Inf after {steps_text} on one batch (it was {_fmt(before)}): '
              'lower the learning rate, clip gradients, or fix log(0)/division in the loss.', step='fit')
  elif timed_out and not loss_fell(before, after) and abs(after - before) > _tolerance(before):
    probe.add('fit_not_concluded', SEVERITY_WARN,
              f'The loss check\'s time budget for fitting one batch ran out after {ran} of {configured} optimizer '
              f'steps ({fit["seconds"]:g} s: {_FIT_BUDGET_SHARE:.0%} of what was left of loss.timeout_seconds='
              f'{probe.request.timeout_seconds:g}); they moved {described} from {_fmt(before)} to {_fmt(after)}, too '
              'few steps to tell whether the model learns with it. The model is slow to train here (or the machine '
              'is busy): raise loss.timeout_seconds for a conclusive answer.',
              steps=ran, fit_steps=configured, seconds=fit['seconds'], before=_round(before), after=_round(after))
  elif not after < before - _tolerance(before):
    probe.add('cannot_fit_batch', SEVERITY_BLOCK,
              f'{steps_text} on one batch of {examples} train examples did not lower {described} '
              f'({_fmt(before)} -> {_fmt(after)}): the model cannot learn with this loss and optimizer. Check the '
              'learning rate, frozen layers, and that the loss depends on the model output.',
              before=_round(before), after=_round(after))
  elif not loss_fell(before, after):
    probe.add('cannot_fit_batch', SEVERITY_WARN,
              f'{steps_text} on one batch barely lowered {described} ({_fmt(before)} -> {_fmt(after)}): '
              'a model should memorize one small batch quickly. Check the learning rate.',
              before=_round(before), after=_round(after))


def check_eval_path(probe: Probe, model: Any, split: str, x: Any, y: Any, direct_loss: Callable,
                    described: str) -> None:
  """eval_path_mismatch: model.evaluate must report the loss computed from model(x) and the labels."""
  evaluated = _evaluate_loss(model, x, y)
  preds = model(x, training=False)
  direct, _ = scalar_loss(direct_loss, y, preds)
  probe.measurements.setdefault('eval_path', {})[split] = {'evaluate': _round(evaluated), 'direct': _round(direct)}
  if not math.isfinite(evaluated) or not math.isfinite(direct):
    probe.add('non_finite', SEVERITY_BLOCK,
              f'{described} is NaN or Inf on a batch of split {split!r} (evaluate: {_fmt(evaluated)}, from model(x): '
              f'{_fmt(direct)}): validation loss will be NaN.', split=split)
    return
  if abs(evaluated - direct) > _EVAL_REL_TOL * max(1.0, abs(direct)):
    probe.add('eval_path_mismatch', SEVERITY_BLOCK,
              f'On a batch of split {split!r}, model.evaluate reports loss {_fmt(evaluated)} but {described} computed '
              f'from model(x) and the labels is {_fmt(direct)}: the evaluation path does not measure the trained '
              'loss. Check overridden test_step/compute_loss, sample weights and label preprocessing that differs '
              'between train and eval.', split=split, evaluate=_round(evaluated), direct=_round(direct))


# ---------------------------------------------------------------------------------------------------------------------
# The stages.


def compiled_loss(model: Any) -> Any:
  loss = getattr(model, 'loss', None)
  if isinstance(loss, dict) and len(loss) == 1:
    loss = next(iter(loss.values()))
  if isinstance(loss, (list, tuple)) and len(loss) == 1:
    loss = loss[0]
  return loss


def _as_callable(loss: Any) -> Callable:
  import keras
  return keras.losses.get(loss) if isinstance(loss, str) else loss


def _loss_with_regularization(model: Any, loss: Any, weights: Any = None) -> Callable:
  """The loss as Keras' compiled loss computes it: the loss function (mean-reduced, with the per-example weights fit
  applies, if any) plus regularization losses. Computed independently of model.compute_loss/test_step, so an
  overridden evaluation path shows up as a mismatch, and of evaluate's logs, where a metric named 'loss' replaces it."""
  import tensorflow as tf
  raw = _as_callable(loss) if weights is None else weighted(_as_callable(loss), weights)

  def with_regularization(y_true, y_pred):
    value = tf.reduce_mean(tf.cast(tf.convert_to_tensor(raw(y_true, y_pred)), tf.float32))
    extra = [tf.cast(tf.reduce_sum(r), tf.float32) for r in model.losses]
    return value + tf.add_n(extra) if extra else value

  return with_regularization



# ---------------------------------------------------------------------------------------------------------------------
# The whole battery on a compiled model and real batches.

# Findings that a specific cause explains: shown as part of that cause, not as causes of their own.
_IMPLIED = ('constant_loss', 'cannot_fit_batch', 'no_gradient', 'wrong_ordering', 'ignores_labels',
            'suspicious_initial_loss')
_SPECIFIC = ('label_shape_mismatch', 'from_logits_mismatch')


def fold_implied_findings(probe: Probe) -> None:
  """When a blocking specific finding (from_logits_mismatch, label_shape_mismatch) explains the numbers, the generic
  findings it implies are folded into it (listed under `implies`) instead of being shown as separate causes."""
  specific = [f for f in probe.findings if f['code'] in _SPECIFIC and f['severity'] == SEVERITY_BLOCK]
  if not specific:
    return
  implied = sorted({f['code'] for f in probe.findings if f['code'] in _IMPLIED})
  if not implied:
    return
  probe.findings = [f for f in probe.findings if f['code'] not in _IMPLIED]
  for finding in specific:
    finding['implies'] = implied
    finding['message'] += f' (This also explains: {", ".join(implied)}.)'


def _labels_keras_cannot_take(probe: Probe, batches: Dict[str, List[Tuple[Any, Any]]], described: str) -> bool:
  """Labels no Keras loss takes, so Trainer's fit fails on them: a SparseTensor or RaggedTensor (the schema leaves the
  label optional because some examples have none, or it is a list) or strings. One finding naming the cause."""
  import numpy as np
  import tensorflow as tf
  for split, split_batches in batches.items():
    y = split_batches[0][1] if split_batches else None
    if isinstance(y, (tf.SparseTensor, tf.RaggedTensor)):
      probe.add('label_shape_mismatch', SEVERITY_BLOCK,
                f'{described} gets the label as a {type(y).__name__} in split {split!r}: the schema leaves the label '
                'optional (some examples have no label value) or makes it a list, and a Keras loss takes dense '
                "tensors only, so Trainer's fit fails on it. Drop or fill the examples without a label and make the "
                'label required in the schema (presence min_fraction 1, one value), or densify it in the input '
                'function.', split=split)
      return True
    if y is None or isinstance(y, (dict, list, tuple)):
      continue
    labels = np.asarray(y)
    if labels.dtype.kind in 'OSU':
      first = labels.reshape(-1)[0] if labels.size else b''
      first = first.decode('utf-8', 'replace') if isinstance(first, bytes) else str(first)
      probe.add('label_out_of_range', SEVERITY_BLOCK,
                f'{described} needs numeric labels, but split {split!r} has string labels (e.g. {first[:40]!r}), on '
                "which Trainer's fit fails. Map them to class indices (e.g. tft.compute_and_apply_vocabulary in "
                'Transform, or a lookup in the input function).', split=split)
      return True
  return False


def _labels_numpy(batches: List[Tuple[Any, Any]]) -> Any:
  import numpy as np
  arrays = [np.asarray(y) for _, y in batches]
  return np.concatenate(arrays, axis=0) if arrays else np.zeros((0,))


def check_compiled_model(probe: Probe, model: Any, source: str, batches: Dict[str, List[Tuple[Any, Any]]],
                         data_source: str, label_stats: Dict[str, Dict[str, Any]], trains: bool = False,
                         weights: Any = None) -> None:
  """Every model check on `model` (as compiled by `source`) and real batches (train split first in `batches`).

  Args:
    probe: collects the findings.
    model: the compiled Keras model Trainer would train.
    source: what built it, for messages ('run_fn', '_build_keras_model').
    batches: split -> (features, labels) batches; the first key is the train split, the others are evaluated.
    data_source: where the batches came from, for messages.
    label_stats: split -> whole-split label range from statistics (only when labels are not transformed).
    trains: `source` is the run_fn that passes the model to fit (else the builder that compiled it).
    weights: per-example weights of the first train batch, as fit applies them (loss_weights.fit_weights), or None.
  """
  request = probe.request
  loss = compiled_loss(model)
  if loss is None:
    probe.add('model_build_error', SEVERITY_BLOCK,
              f'The model from {source}() in {request.module_file} is not compiled with a loss (or has several '
              'outputs with different losses, which this check does not cover): compile it with a single loss.',
              function=source)
    return
  role = 'of the model {}() passes to model.fit' if trains else 'compiled by {}()'
  described = f'the loss {loss_name(loss)!r} ' + role.format(source)
  probe.info['loss'] = loss_name(loss)
  splits = list(batches)
  train_split, eval_splits = splits[0], splits[1:]
  x, y = batches[train_split][0]
  _check_model_on_batches(probe, model, loss, source, described, batches, train_split, eval_splits, x, y,
                          data_source, label_stats, weights)
  fold_implied_findings(probe)


def _check_model_on_batches(probe: Probe, model: Any, loss: Any, source: str, described: str,
                            batches: Dict[str, List[Tuple[Any, Any]]], train_split: str, eval_splits: List[str],
                            x: Any, y: Any, data_source: str, label_stats: Dict[str, Dict[str, Any]],
                            weights: Any = None) -> None:
  import numpy as np
  request = probe.request
  probe.enter('forward', source)
  try:
    preds = model(x, training=False)
  except Exception as e:
    probe.add('input_fn_error', SEVERITY_BLOCK,
              f'The model from {source}() cannot consume a batch from {data_source}: {error_text(e)}. The feature '
              'names/shapes the input function yields must match the model inputs.', function=source)
    return
  if isinstance(preds, (dict, list, tuple)):
    probe.add('model_build_error', SEVERITY_WARN,
              f'The model from {source}() has several outputs; the loss check covers single-output models '
              'only and did not check this one.', function=source)
    return
  if _labels_keras_cannot_take(probe, batches, described):
    return
  preds_np = np.asarray(preds)
  output_shape = list(preds_np.shape)
  units = int(output_shape[-1]) if len(output_shape) > 1 else 1
  activation = output_activation(model)
  layout = label_layout(loss_name(loss), np.asarray(y), output_shape)
  probe.info.update({'layout': layout, 'output_units': units})

  probe.enter('labels', source)
  labels = {split: _labels_numpy(b) for split, b in batches.items()}
  check_labels(probe, layout, labels, units, described, label_stats)

  probe.enter('battery', source)
  logits = check_from_logits(probe, loss, described, activation, preds_np)
  loss_fn = _as_callable(loss)
  if weights is not None:
    loss_fn = weighted(loss_fn, weights)
  inputs = battery_inputs(np.asarray(y), layout, output_shape, Space(logits), request.seed)
  run_battery(probe, loss_fn, described, inputs, 'a real train batch')
  if probe.has('constant_loss'):
    # Nothing below can tell more: every number would be the same constant.
    return
  if probe.has('label_out_of_range', 'label_shape_mismatch'):
    return  # The real labels do not fit the model: every number below would be about broadcasting or a crash.

  probe.enter('initial_loss', source)
  try:
    # As the first training step sees it: training mode, so BatchNormalization normalizes with batch statistics.
    initial, _ = scalar_loss(loss_fn, y, model(x, training=True))
  except Exception as e:
    probe.add('loss_error', SEVERITY_BLOCK, f'{described} raised on a real train batch: {error_text(e)}.')
    return
  if not math.isfinite(initial):
    probe.add('non_finite', SEVERITY_BLOCK,
              f'{described} is NaN or Inf for the fresh model on a real train batch: check for NaN features '
              '(impute them in Transform) and log(0) in the loss.', split=train_split)
  else:
    check_initial_loss(probe, initial, expected_initial_loss(layout, units, y, loss_name(loss)), layout, described)

  probe.enter('eval_path', source)
  for split in eval_splits:
    ex, ey = batches[split][0]
    check_eval_path(probe, model, split, ex, ey, _loss_with_regularization(model, loss), described)

  probe.enter('fit_batch', source)
  check_fit(probe, model, x, y, request.fit_steps, described, _loss_with_regularization(model, loss, weights), weights)
