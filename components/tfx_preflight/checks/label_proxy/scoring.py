"""Scores every feature as a one-feature predictor of the label: fitted on train counts, scored on eval counts.

The predictor is the simplest one that a copy, a recoding or a monotone transform of the label cannot escape:
  * categorical feature (and the "missing" value of any feature): a lookup, value -> train majority label (mean label
    for regression); a value train never had predicts the baseline. So an identifier unique per row predicts nothing
    on eval, however well it memorizes train.
  * numeric feature: a piecewise-constant 1-D fit over the ordered value keys: each key predicts the majority (mean)
    label of a window of about `ceil(n_train / num_bins)` train rows centred on it, its own rows counting a little
    more, which reproduces a sharp class boundary exactly and smooths noise elsewhere; and the unsmoothed per-value
    fit (window of one row), the better of the two on eval being kept (two candidates: a negligible optimism, and a
    monotone transform of a skewed label is not smoothed away). A value train never had takes the prediction of the
    nearest train key.
Scores: accuracy against the majority-label baseline (classification), R^2 on eval against the train-mean baseline
(regression). The task is classification when the label is a string, or a number with at most `max_classes` distinct
values over train and eval; otherwise (numeric, more values) regression.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tfx_preflight.checks.label_proxy import counts as counts_lib
from tfx_preflight.checks.label_proxy.counts import CATEGORICAL, MISSING_KEY, NUMERIC, FeatureCounts, SplitCounts

CLASSIFICATION = 'classification'
REGRESSION = 'regression'


@dataclasses.dataclass(frozen=True)
class FeatureScore:
  """How well one feature predicts the label on one eval split."""
  feature: str
  eval_split: str
  metric: str  # 'accuracy' or 'r2'
  eval_score: float
  baseline: float
  # Share of the way from the baseline to a perfect score: (acc - base) / (1 - base), or R^2 itself.
  skill: float
  eval_examples: int
  train_examples: int
  feature_kind: str
  distinct_train_values: int

  def to_dict(self) -> Dict[str, object]:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}


def choose_task(train: SplitCounts, evals: Sequence[SplitCounts], max_classes: int) -> Tuple[Optional[str], str]:
  """(task, why) from the label's type and number of distinct values; task None when it cannot be scored."""
  tables = [train.label_counts] + [e.label_counts for e in evals]
  classes = None if any(t is None for t in tables) else set().union(*tables)
  if train.label_kind == CATEGORICAL:
    if classes is None or len(classes) > max_classes:
      return None, f'the label is a string with more than max_classes={max_classes} distinct values'
    return CLASSIFICATION, f'the label is a string with {len(classes)} distinct values'
  if classes is not None and len(classes) <= max_classes:
    return CLASSIFICATION, f'the label is a number with {len(classes)} distinct values (<= max_classes={max_classes})'
  return REGRESSION, f'the label is a number with more than max_classes={max_classes} distinct values'


def _key_index(keys: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  unique, inverse = np.unique(keys, return_inverse=True)
  return unique, inverse


def window_widths(n_train: float, num_bins: int) -> Tuple[float, ...]:
  """The two 1-D fits tried for a numeric feature: per value (width 1) and smoothed over n_train / num_bins rows."""
  return tuple(sorted({1.0, max(1.0, float(math.ceil(n_train / num_bins)))}))


def _window(n: np.ndarray, values: np.ndarray, width: float) -> np.ndarray:
  """Per numeric key (sorted): window sums of `values` (rows x columns) over ~`width` train rows centred on the key,
  plus half the key's own values (so the key's own majority wins ties)."""
  end = np.cumsum(n).astype(np.float64)
  start = end - n
  centre = (start + end) / 2
  lo = np.searchsorted(end, centre - width / 2, side='right')
  hi = np.searchsorted(start, centre + width / 2, side='left')
  cumulative = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
  return cumulative[hi] - cumulative[lo] + 0.5 * values


def _numeric_rows(keys: np.ndarray, kind: str) -> np.ndarray:
  return (keys != MISSING_KEY) if kind == NUMERIC else np.zeros(len(keys), dtype=bool)


def _map_eval_keys(train_keys: np.ndarray, eval_keys: np.ndarray, kind: str) -> np.ndarray:
  """Index into train_keys of the train key predicting each eval key; -1 for the baseline."""
  if len(train_keys) == 0:
    return np.full(len(eval_keys), -1, dtype=np.int64)
  found = np.minimum(np.searchsorted(train_keys, eval_keys), len(train_keys) - 1)
  seen = train_keys[found] == eval_keys
  result = np.where(seen, found, -1)
  numeric_train = np.flatnonzero(_numeric_rows(train_keys, kind))
  unseen = np.flatnonzero(~seen & _numeric_rows(eval_keys, kind))
  if len(numeric_train) and len(unseen):
    ordered = train_keys[numeric_train]
    position = np.searchsorted(ordered, eval_keys[unseen])
    left = np.maximum(position - 1, 0)
    right = np.minimum(position, len(ordered) - 1)
    key = eval_keys[unseen]
    left_gap = np.where(key >= ordered[left], key - ordered[left], ordered[left] - key).astype(np.float64)
    right_gap = np.where(ordered[right] >= key, ordered[right] - key, key - ordered[right]).astype(np.float64)
    result[unseen] = numeric_train[np.where(right_gap < left_gap, right, left)]
  return result


def classification_score(train: FeatureCounts, evaluation: FeatureCounts, classes: np.ndarray, num_bins: int,
                         options: counts_lib.CountOptions) -> Tuple[float, float, int, int, int]:
  """(eval accuracy, baseline accuracy, eval rows, train rows, distinct train keys) of the train-fitted lookup/1-D
  predictor; `classes` are the sorted label words of train and eval."""
  level = max(train.coarsening, evaluation.coarsening)
  train, evaluation = counts_lib.at_level(train, level, options), counts_lib.at_level(evaluation, level, options)
  t_keys, t_index = _key_index(train.pair_keys)
  table = np.zeros((len(t_keys), len(classes)))
  np.add.at(table, (t_index, np.searchsorted(classes, train.pair_labels)), train.pair_counts)
  baseline_class = int(np.argmax(table.sum(axis=0)))
  numeric = _numeric_rows(t_keys, train.kind)
  e_keys, e_index = _key_index(evaluation.pair_keys)
  source = _map_eval_keys(t_keys, e_keys, train.kind)
  e_classes = np.searchsorted(classes, evaluation.pair_labels)
  counts = evaluation.pair_counts.astype(np.float64)
  total = counts.sum()
  best = 0.0
  for width in window_widths(table[numeric].sum(), num_bins):
    scores = table.copy()
    if numeric.any():
      scores[numeric] = _window(table[numeric].sum(axis=1), table[numeric], width)
    predicted = np.argmax(scores, axis=1)
    per_key = np.where(source >= 0, predicted[np.maximum(source, 0)], baseline_class)
    best = max(best, float(counts[per_key[e_index] == e_classes].sum() / total) if total else 0.0)
  base = counts[e_classes == baseline_class].sum()
  return best, float(base / total) if total else 0.0, int(total), int(train.pair_counts.sum()), len(t_keys)


def regression_score(train: FeatureCounts, evaluation: FeatureCounts, num_bins: int,
                     options: counts_lib.CountOptions) -> Optional[Tuple[float, float, int, int, int]]:
  """(eval R^2, baseline R^2 of the train mean, eval rows, train rows, distinct train keys); None when the eval
  label is constant (R^2 undefined)."""
  level = max(train.coarsening, evaluation.coarsening)
  train, evaluation = counts_lib.at_level(train, level, options), counts_lib.at_level(evaluation, level, options)
  t_keys, n, total = train.moment_keys, train.moment_n.astype(np.float64), train.moment_sum
  train_mean = float(total.sum() / n.sum())
  numeric = _numeric_rows(t_keys, train.kind)
  source = _map_eval_keys(t_keys, evaluation.moment_keys, train.kind)
  en, es, ess = evaluation.moment_n.astype(np.float64), evaluation.moment_sum, evaluation.moment_sumsq
  count = en.sum()
  total_sq = float(ess.sum() - es.sum() ** 2 / count) if count else 0.0
  if count < 2 or total_sq <= 1e-12 * max(1.0, float(ess.sum())):
    return None
  best = -math.inf
  for width in window_widths(n[numeric].sum(), num_bins):
    sums = np.stack([n, total], axis=1)
    if numeric.any():
      sums[numeric] = _window(n[numeric], sums[numeric], width)
    predicted = sums[:, 1] / sums[:, 0]
    p = np.where(source >= 0, predicted[np.maximum(source, 0)], train_mean)
    error = float(np.sum(ess - 2 * p * es + en * p * p))
    best = max(best, 1 - max(error, 0.0) / total_sq)
  base_error = float(np.sum(ess - 2 * train_mean * es + en * train_mean ** 2))
  return best, 1 - base_error / total_sq, int(count), int(n.sum()), len(t_keys)


def score_features(train: SplitCounts, evals: Mapping[str, SplitCounts], task: str, num_bins: int,
                   options: counts_lib.CountOptions) -> List[FeatureScore]:
  """Every feature counted in train and in the eval split, scored on that eval split; sorted by split, then skill."""
  classes = None
  if task == CLASSIFICATION:
    classes = np.array(sorted(set(train.label_counts).union(*[e.label_counts for e in evals.values()])),
                       dtype=np.uint64)
  scores = []
  for split, evaluation in sorted(evals.items()):
    for name in sorted(set(train.features) & set(evaluation.features)):
      t, e = train.features[name], evaluation.features[name]
      kind = t.kind or e.kind or CATEGORICAL
      t, e = dataclasses.replace(t, kind=kind), dataclasses.replace(e, kind=kind)
      if task == CLASSIFICATION:
        result = classification_score(t, e, classes, num_bins, options)
        metric = 'accuracy'
      else:
        result = regression_score(t, e, num_bins, options)
        metric = 'r2'
      if result is None:
        continue
      value, base, n_eval, n_train, distinct = result
      skill = (value - base) / (1 - base) if metric == 'accuracy' and base < 1 else value
      scores.append(FeatureScore(name, split, metric, value, base, max(skill, 0.0), n_eval, n_train, kind, distinct))
  return sorted(scores, key=lambda s: (s.eval_split, -s.skill, s.feature))
