"""The stages on real batches of a compiled model: forward pass, labels, the battery, initial loss, the evaluation
path and the fit of one batch (does the loss fall?), in the order the probe runs them.

Runs inside the probe subprocess (probe.py), on the model and batches run_fn passes to model.fit.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from tfx_preflight.checks.loss.battery import (
  Space,
  battery_inputs,
  check_from_logits,
  check_initial_loss,
  check_labels,
  expected_initial_loss,
  run_battery,
  scalar_loss,
  weighted,
)
from tfx_preflight.checks.loss.model import as_callable, compiled_loss, label_layout, loss_name, output_activation
from tfx_preflight.checks.loss.recorder import SEVERITY_BLOCK, SEVERITY_WARN, Probe, error_text, fmt, rounded

# Relative agreement required between model.evaluate and the loss computed directly.
_EVAL_REL_TOL = 1e-3

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
  fit = {'before': rounded(before), 'after': rounded(after), 'steps': stopper.steps,
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
              f'{described} became NaN or Inf after {steps_text} on one batch (it was {fmt(before)}): '
              'lower the learning rate, clip gradients, or fix log(0)/division in the loss.', step='fit')
  elif timed_out and not loss_fell(before, after) and abs(after - before) > _tolerance(before):
    probe.add('fit_not_concluded', SEVERITY_WARN,
              f'The loss check\'s time budget for fitting one batch ran out after {ran} of {configured} optimizer '
              f'steps ({fit["seconds"]:g} s: {_FIT_BUDGET_SHARE:.0%} of what was left of loss.timeout_seconds='
              f'{probe.request.timeout_seconds:g}); they moved {described} from {fmt(before)} to {fmt(after)}, too '
              'few steps to tell whether the model learns with it. The model is slow to train here (or the machine '
              'is busy): raise loss.timeout_seconds for a conclusive answer.',
              steps=ran, fit_steps=configured, seconds=fit['seconds'], before=rounded(before), after=rounded(after))
  elif not after < before - _tolerance(before):
    probe.add('cannot_fit_batch', SEVERITY_BLOCK,
              f'{steps_text} on one batch of {examples} train examples did not lower {described} '
              f'({fmt(before)} -> {fmt(after)}): the model cannot learn with this loss and optimizer. Check the '
              'learning rate, frozen layers, and that the loss depends on the model output.',
              before=rounded(before), after=rounded(after))
  elif not loss_fell(before, after):
    probe.add('cannot_fit_batch', SEVERITY_WARN,
              f'{steps_text} on one batch barely lowered {described} ({fmt(before)} -> {fmt(after)}): '
              'a model should memorize one small batch quickly. Check the learning rate.',
              before=rounded(before), after=rounded(after))


def check_eval_path(probe: Probe, model: Any, split: str, x: Any, y: Any, direct_loss: Callable,
                    described: str) -> None:
  """eval_path_mismatch: model.evaluate must report the loss computed from model(x) and the labels."""
  evaluated = _evaluate_loss(model, x, y)
  preds = model(x, training=False)
  direct, _ = scalar_loss(direct_loss, y, preds)
  probe.measurements.setdefault('eval_path', {})[split] = {'evaluate': rounded(evaluated), 'direct': rounded(direct)}
  if not math.isfinite(evaluated) or not math.isfinite(direct):
    probe.add('non_finite', SEVERITY_BLOCK,
              f'{described} is NaN or Inf on a batch of split {split!r} (evaluate: {fmt(evaluated)}, from model(x): '
              f'{fmt(direct)}): validation loss will be NaN.', split=split)
    return
  if abs(evaluated - direct) > _EVAL_REL_TOL * max(1.0, abs(direct)):
    probe.add('eval_path_mismatch', SEVERITY_BLOCK,
              f'On a batch of split {split!r}, model.evaluate reports loss {fmt(evaluated)} but {described} computed '
              f'from model(x) and the labels is {fmt(direct)}: the evaluation path does not measure the trained '
              'loss. Check overridden test_step/compute_loss, sample weights and label preprocessing that differs '
              'between train and eval.', split=split, evaluate=rounded(evaluated), direct=rounded(direct))

def _loss_with_regularization(model: Any, loss: Any, weights: Any = None) -> Callable:
  """The loss as Keras' compiled loss computes it: the loss function (mean-reduced, with the per-example weights fit
  applies, if any) plus regularization losses. Computed independently of model.compute_loss/test_step, so an
  overridden evaluation path shows up as a mismatch, and of evaluate's logs, where a metric named 'loss' replaces it."""
  import tensorflow as tf
  raw = as_callable(loss) if weights is None else weighted(as_callable(loss), weights)

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
  """The stages in order, each stopping the rest when what follows could tell nothing more."""
  request = probe.request
  preds = _forward(probe, model, x, source, data_source)
  if preds is None or _labels_keras_cannot_take(probe, batches, described):
    return
  battery = _labels_and_battery(probe, model, loss, source, described, batches, preds, y, label_stats, weights)
  if battery is None:
    return
  loss_fn, layout, units = battery
  if not _initial_loss(probe, model, loss, loss_fn, source, described, x, y, train_split, layout, units):
    return
  probe.enter('eval_path', source)
  for split in eval_splits:
    ex, ey = batches[split][0]
    check_eval_path(probe, model, split, ex, ey, _loss_with_regularization(model, loss), described)

  probe.enter('fit_batch', source)
  check_fit(probe, model, x, y, request.fit_steps, described, _loss_with_regularization(model, loss, weights), weights)


def _forward(probe: Probe, model: Any, x: Any, source: str, data_source: str) -> Optional[Any]:
  """The model's predictions on a real train batch (inference mode), or None (with a finding) when it cannot
  consume the batch or has several outputs."""
  probe.enter('forward', source)
  try:
    preds = model(x, training=False)
  except Exception as e:
    probe.add('input_fn_error', SEVERITY_BLOCK,
              f'The model from {source}() cannot consume a batch from {data_source}: {error_text(e)}. The feature '
              'names/shapes the input function yields must match the model inputs.', function=source)
    return None
  if isinstance(preds, (dict, list, tuple)):
    probe.add('model_build_error', SEVERITY_WARN,
              f'The model from {source}() has several outputs; the loss check covers single-output models '
              'only and did not check this one.', function=source)
    return None
  return preds


def _labels_and_battery(probe: Probe, model: Any, loss: Any, source: str, described: str,
                        batches: Dict[str, List[Tuple[Any, Any]]], preds: Any, y: Any,
                        label_stats: Dict[str, Dict[str, Any]], weights: Any) -> Optional[Tuple[Callable, str, int]]:
  """The labels of every split against the model's head, then the battery on the first train batch's labels: (the
  loss as fit applies it, the label layout, the output units), or None when nothing after could tell more."""
  import numpy as np
  request = probe.request
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
  loss_fn = as_callable(loss)
  if weights is not None:
    loss_fn = weighted(loss_fn, weights)
  inputs = battery_inputs(np.asarray(y), layout, output_shape, Space(logits), request.seed)
  run_battery(probe, loss_fn, described, inputs, 'a real train batch')
  if probe.has('constant_loss'):
    # Nothing below can tell more: every number would be the same constant.
    return None
  if probe.has('label_out_of_range', 'label_shape_mismatch'):
    return None  # The real labels do not fit the model: every number below would be about broadcasting or a crash.
  return loss_fn, layout, units


def _initial_loss(probe: Probe, model: Any, loss: Any, loss_fn: Callable, source: str, described: str, x: Any, y: Any,
                  train_split: str, layout: str, units: int) -> bool:
  """The fresh model's loss on a real train batch against what it should be; False when the loss raised."""
  probe.enter('initial_loss', source)
  try:
    # As the first training step sees it: training mode, so BatchNormalization normalizes with batch statistics.
    initial, _ = scalar_loss(loss_fn, y, model(x, training=True))
  except Exception as e:
    probe.add('loss_error', SEVERITY_BLOCK, f'{described} raised on a real train batch: {error_text(e)}.')
    return False
  if not math.isfinite(initial):
    probe.add('non_finite', SEVERITY_BLOCK,
              f'{described} is NaN or Inf for the fresh model on a real train batch: check for NaN features '
              '(impute them in Transform) and log(0) in the loss.', split=train_split)
  else:
    check_initial_loss(probe, initial, expected_initial_loss(layout, units, y, loss_name(loss)), layout, described)
  return True
