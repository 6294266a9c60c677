"""The labels model.fit receives, against the label column's statistics of the matching split: an input pipeline that
makes them constant where the data varies, that gives train and validation different label sets, or that hands a
feature over as the label, trains a model on something else than the data's labels (the loss still moves, and the
validation numbers look excellent). Runs inside the probe (probe.py), on the batches read from fit's datasets.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from tfx_preflight.checks.loss.recorder import SEVERITY_BLOCK, Probe

CODE = 'labels_changed_by_input_fn'
# A varying label column gives n labels that are all equal with probability at most q ** n (q: the largest share one
# value can have, given the column's variance and range); below this, constant labels are not chance.
_CHANCE = 1e-6
# Train and validation class labels disagree when this share of one split's labels has a value the other never takes.
_UNSHARED = 0.2


def _dense_labels(batches: List[Tuple[Any, Any]]) -> Optional[Any]:
  """The labels of the batches as one float array, None when they are not a dense numeric tensor."""
  import numpy as np
  import tensorflow as tf
  arrays = []
  for _, y in batches:
    if isinstance(y, (tf.SparseTensor, tf.RaggedTensor, dict, list, tuple)):
      return None
    array = np.asarray(y)
    if array.dtype.kind not in 'biuf':
      return None
    arrays.append(array.reshape(array.shape[0], -1).astype(np.float64))
  return np.concatenate(arrays, axis=0) if arrays else None


def describe_labels(labels: Any) -> str:
  import numpy as np
  values = np.unique(labels)
  shown = ', '.join(f'{v:g}' for v in values[:10]) + (', ...' if len(values) > 10 else '')
  return (f'{labels.shape[0]} examples read, {len(values)} distinct value(s) {{{shown}}}, mean {np.mean(labels):.4g}, '
          f'min {np.min(labels):.4g}, max {np.max(labels):.4g}')


def describe_stats(stats: Mapping[str, Any]) -> str:
  parts = [f'{k} {stats[k]:.4g}' for k in ('min', 'max', 'mean', 'std') if stats.get(k) is not None]
  return ', '.join(parts)


def chance_all_equal(stats: Mapping[str, Any], n: int) -> Optional[float]:
  """An upper bound on the chance that n labels drawn from the split are all equal: one value holds at most a share
  q = 1 - variance / range^2 of a column with that variance in that range."""
  low, high, std = stats.get('min'), stats.get('max'), stats.get('std')
  if low is None or high is None or std is None or not high > low:
    return None
  q = max(0.0, 1.0 - (std * std) / ((high - low) ** 2))
  return q ** n if q > 0 else 0.0


def _equal_feature(features: List[Any], labels: Any) -> Optional[str]:
  """The name of a dense numeric feature equal to the labels in every batch read, if any."""
  import numpy as np
  import tensorflow as tf
  candidates: Optional[set] = None
  offset = 0
  for x, _ in features:
    if not isinstance(x, Mapping):
      return None
    n = None
    equal = set()
    for name, value in x.items():
      if isinstance(value, (tf.SparseTensor, tf.RaggedTensor)):
        continue
      array = np.asarray(value)
      if array.dtype.kind not in 'biuf' or array.ndim == 0:
        continue
      n = array.shape[0]
      column = array.reshape(n, -1).astype(np.float64)
      if column.shape == labels[offset:offset + n].shape and np.array_equal(column, labels[offset:offset + n]):
        equal.add(name)
    candidates = equal if candidates is None else candidates & equal
    offset += n or 0
  return sorted(candidates)[0] if candidates else None


def check_fit_labels(probe: Probe, batches: Dict[str, List[Tuple[Any, Any]]], stats_of: Mapping[str, Mapping],
                     label_key: Optional[str], data_source: str) -> None:
  """labels_changed_by_input_fn, per split whose label statistics are known (`stats_of`: fit's split name -> the
  statistics of the matching split; raw labels only)."""
  import numpy as np
  column = repr(label_key) if label_key else 'the label column'
  labels_of = {split: _dense_labels(b) for split, b in batches.items()}
  for split, labels in labels_of.items():
    stats = stats_of.get(split)
    if labels is None or not stats or labels.size == 0:
      continue
    said = (f'The labels {data_source} for split {split!r} ({describe_labels(labels)}) are not the data\'s: the label '
            f'column {column} of split {split!r} has {describe_stats(stats)}')
    chance = chance_all_equal(stats, labels.shape[0])
    if np.all(labels == labels[0]) and chance is not None and chance < _CHANCE:
      probe.add(CODE, SEVERITY_BLOCK,
                f'{said}. They are all {labels.reshape(-1)[0]:g} where the data varies (chance at most {chance:.1g}): '
                'the input function replaces the labels (e.g. tf.zeros_like(y), a wrong key or a map that drops '
                'them), so the model learns a constant and its validation numbers mean nothing.',
                split=split, fit_labels=describe_labels(labels), statistics=describe_stats(stats))
      continue
    feature = _equal_feature(batches[split], labels) if not np.all(labels == labels[0]) else None
    if feature:
      probe.add(CODE, SEVERITY_BLOCK,
                f'The labels {data_source} for split {split!r} equal the input feature {feature!r} in every batch '
                f'read ({describe_labels(labels)}): the model is given its answer as an input. Remove the label from '
                'the features (or use the right label_key).', split=split, feature_equal=feature,
                fit_labels=describe_labels(labels), statistics=describe_stats(stats))
  if not probe.has(CODE):  # One cause per split: constant or copied labels already explain a disagreement.
    _check_train_and_validation_agree(probe, labels_of, stats_of, data_source)


def _unshared_share(labels: Any, other: Any) -> float:
  """The share of `labels` whose value never occurs in `other`."""
  import numpy as np
  return float(np.mean(~np.isin(labels, np.unique(other))))


def _check_train_and_validation_agree(probe: Probe, labels_of: Mapping[str, Any], stats_of: Mapping[str, Mapping],
                                      data_source: str) -> None:
  """Class labels of one split that the other split's fit labels never take (for a fifth of its examples or more),
  while both splits' label columns are integral with the same range: the input pipeline maps the labels of one split
  and not of the other. Sampling cannot hide a class holding a fifth of a split from a few hundred labels."""
  import numpy as np
  splits = list(labels_of)
  if len(splits) < 2 or any(labels_of[s] is None or not stats_of.get(s) for s in splits[:2]):
    return
  train, valid = splits[0], splits[1]
  train_labels, valid_labels = labels_of[train], labels_of[valid]
  train_stats, valid_stats = stats_of[train], stats_of[valid]
  integral = all(stats.get('integral') for stats in (train_stats, valid_stats)) and all(
      np.all(np.rint(y) == y) for y in (train_labels, valid_labels))
  same_range = valid_stats['min'] == train_stats['min'] and valid_stats['max'] == train_stats['max']
  share = max(_unshared_share(valid_labels, train_labels), _unshared_share(train_labels, valid_labels))
  if integral and same_range and share >= _UNSHARED:
    probe.add(CODE, SEVERITY_BLOCK,
              f'The labels {data_source} differ between splits whose label columns agree: train {train!r} '
              f'({describe_labels(train_labels)}; statistics {describe_stats(train_stats)}) against validation '
              f'{valid!r} ({describe_labels(valid_labels)}; statistics {describe_stats(valid_stats)}). The input '
              'pipeline maps the labels of one split and not of the other, so validation measures another task.',
              split=valid, fit_labels=describe_labels(valid_labels), statistics=describe_stats(valid_stats))
