"""The weights model.fit applies to the loss, combined as Keras combines them: `sample_weight` (fit's argument or the
dataset's third element) times `class_weight[label class]` times the compiled `loss_weights`. Weights that are 0 for
every example make the loss 0 whatever the model predicts (training learns nothing and the loss reads 0.0000); a class
whose weight is 0 is never learned. Runs inside the probe (probe.py); findings go to its Probe.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from tfx_preflight.checks.loss.recorder import SEVERITY_BLOCK, Probe


def compiled_loss_weight(model: Any) -> Optional[float]:
  """The single output's `loss_weights` from compile (Keras 3 keeps it on `_compile_loss`, tf_keras on
  `compiled_loss`), None when not given."""
  holder = getattr(model, '_compile_loss', None) or getattr(model, 'compiled_loss', None)
  value = getattr(holder, '_user_loss_weights', None)
  if isinstance(value, dict) and len(value) == 1:
    value = next(iter(value.values()))
  if isinstance(value, (list, tuple)) and len(value) == 1:
    value = value[0]
  try:
    return None if value is None else float(value)
  except (TypeError, ValueError):
    return None


def label_classes(labels: Any) -> Any:
  """Class index per example, as Keras maps labels to class_weight: argmax of one-hot rows, else the rounded value."""
  import numpy as np
  y = np.asarray(labels)
  if y.ndim > 1 and y.shape[-1] > 1:
    return np.argmax(y.reshape(y.shape[0], -1), axis=-1)
  return np.rint(y.reshape(y.shape[0], -1)[:, 0]).astype(np.int64)


def _numeric(values: Any) -> Any:
  import numpy as np
  return np.asarray(values, dtype=np.float64).reshape(-1)


def fit_weights(probe: Probe, call: Any, train_labels: List[Any], dataset_weights: List[Any],
                loss_described: str) -> Tuple[Optional[Any], bool]:
  """(weights of the first train batch, as fit applies them, or None when fit applies none; whether the weights zero
  the loss of every example). Adds constant_loss (naming the weights) or zero_class_weight findings."""
  import numpy as np
  read = [_numeric(w) for w in dataset_weights if w is not None]
  loss_weight = compiled_loss_weight(call.model)
  if call.sample_weight is None and not read and not call.class_weight and loss_weight is None:
    return None, False
  labels = [np.asarray(y) for y in train_labels]
  if any(y.ndim == 0 for y in labels):  # Sparse or ragged labels: the battery names them; no weights to apply.
    return None, False
  n = labels[0].shape[0]
  first = np.ones(n)
  given: List[str] = []
  zeroing: List[str] = []
  if call.sample_weight is not None:
    first = first * _sample_weight_factor(call.sample_weight, n, given, zeroing)
  if read:
    first = first * np.resize(read[0], n)
    given.append('the sample weights the dataset yields (its third element)')
    if not any(np.any(w) for w in read):
      zeroing.append(f'the sample weights the dataset yields (its third element) are 0 in all {len(read)} batches '
                     'read')
  if call.class_weight:
    first = first * _class_weight_factor(probe, call.class_weight, labels, loss_described, given, zeroing)
  if loss_weight is not None:
    first = first * loss_weight
    given.append(f'loss_weights {loss_weight:g} from compile')
    if loss_weight == 0:
      zeroing.append('loss_weights from compile is 0')
  if not given:
    return None, False
  probe.info['fit_weights'] = given
  if not zeroing and not np.any(first):
    zeroing.append(f'{" times ".join(given)} are 0 for every example of the first train batch')
  if zeroing:
    probe.add('constant_loss', SEVERITY_BLOCK,
              f'The weights model.fit applies to {loss_described} zero it: {"; ".join(zeroing)}. The weighted loss is '
              '0 whatever the model predicts, so training learns nothing and the reported loss reads 0.',
              weights='; '.join(zeroing), loss_value=0.0)
  return first.astype(np.float32), bool(zeroing)


def _sample_weight_factor(sample_weight: Any, n: int, given: List[str], zeroing: List[str]) -> Any:
  """fit's sample_weight over the first batch of `n` examples; notes it in `given`, and in `zeroing` when all 0."""
  import numpy as np
  whole = _numeric(sample_weight)
  given.append('sample_weight passed to model.fit')
  if whole.size and not np.any(whole):
    zeroing.append(f'sample_weight passed to model.fit is 0 for all {whole.size} examples')
  return np.resize(whole[:n], n)


def _class_weight_factor(probe: Probe, class_weight: Any, labels: List[Any], loss_described: str, given: List[str],
                         zeroing: List[str]) -> Any:
  """fit's class_weight over the first batch's labels; notes it in `given`, in `zeroing` when 0 for every class in
  the labels read, and adds zero_class_weight when 0 for some of them only."""
  import numpy as np
  weights_of = _class_weights(class_weight)
  classes = np.concatenate([label_classes(y) for y in labels])
  factor = np.array([weights_of(c) for c in label_classes(labels[0])])
  given.append(f'class_weight {_shown(class_weight)}')
  present = sorted(set(classes.tolist()))
  zero = [c for c in present if weights_of(c) == 0]
  if zero and zero == present:
    zeroing.append(f'class_weight {_shown(class_weight)} is 0 for every class in the labels ({present})')
  elif zero:
    shares = ', '.join(f'class {c}: {np.mean(classes == c):.0%} of the train labels read' for c in zero)
    probe.add('zero_class_weight', SEVERITY_BLOCK,
              f'class_weight {_shown(class_weight)} passed to model.fit gives weight 0 to class(es) '
              f'{", ".join(str(c) for c in zero)} ({shares}): their examples add nothing to {loss_described}, so '
              'the model never learns them. Give every class a positive weight (a typo such as 0.0 for 1.0?).',
              classes=[int(c) for c in zero])
  return factor


def _class_weights(class_weight: Any) -> Callable[[int], float]:
  table: Dict[int, float] = {}
  for key, value in dict(class_weight).items():
    table[int(key)] = float(value)
  return lambda c: table.get(int(c), 1.0)


def _shown(class_weight: Any) -> str:
  return '{' + ', '.join(f'{int(k)}: {float(v):g}' for k, v in sorted(dict(class_weight).items())) + '}'
