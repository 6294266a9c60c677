"""Label proxies over two features: the simplest rule on a pair of columns that reproduces the label on eval.

A label computed from columns that stay in the data (`late = delivered - promised > 2`, `churned = inactive > 30
and plan == 'free'`, `profit = revenue - cost`) escapes the one-feature scores: no column alone predicts it, any
model seeing both reaches ~1.0. What a careful data scientist would do by hand, on the row samples the read pass
collected (sample.py), fitted on the train sample and scored on the eval sample:

  * candidates: the k features ranked best by their one-feature skill (on the full counts) and by their mutual
    information with the label (train sample), interleaved; k is the largest with k(k-1)/2 <= max_pairs.
  * per pair, classification: a depth-2 tree on the two features (conjunctions and disjunctions of per-feature
    thresholds; categories ordered by their train label rate, so a split is a set of categories) and a depth-2
    tree on each of a + b, a - b, a * b, a / b, b / a (thresholds on sums, differences, products, ratios).
  * per pair, regression: least squares on (a, b), and on each derived column a line and a binned-mean fit.
  * each feature alone, fitted the same way on the same rows, and the best pair sharing no feature with the pair
    (the honest pair baseline): a pair is only remarkable when it clearly beats both (check.py decides).

Everything is numpy over at most sample_rows rows; the cost is bounded by max_pairs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tfx_preflight.checks.label_proxy import counts as counts_lib
from tfx_preflight.checks.label_proxy import sample as sample_lib

CLASSIFICATION = 'classification'
REGRESSION = 'regression'
TREE = 'tree'
_DERIVED = (('sum', '{a} + {b}'), ('difference', '{a} - {b}'), ('product', '{a} * {b}'), ('ratio', '{a} / {b}'),
            ('inverse_ratio', '{b} / {a}'))
_MI_BINS = 16
_REGRESSION_BINS = 64
_SHOWN_CATEGORIES = 4


@dataclasses.dataclass(frozen=True)
class PairScore:
  """The best simple rule on one pair of features, scored on one eval split's sample."""
  features: Tuple[str, str]
  eval_split: str
  metric: str  # 'accuracy' or 'r2'
  eval_score: float
  form: str  # 'tree', or the derived column: 'sum', 'difference', 'product', 'ratio', 'inverse_ratio', 'linear'
  rule: str  # The rule in words, e.g. "1 when `a - b` > 2, else 0".
  alone: Tuple[float, float]  # Each feature alone: the better of the same fit on the sample and its full-count score.
  honest_pair: float  # The best pair sharing no feature with this one (the baseline when there is none).
  honest_pair_features: Tuple[str, ...]
  baseline: float  # Majority label / train mean, on the eval sample.
  eval_examples: int
  train_examples: int

  def to_dict(self) -> Dict[str, object]:
    out = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}
    out['features'] = list(self.features)
    out['alone'] = [round(v, 6) for v in self.alone]
    out['honest_pair_features'] = list(self.honest_pair_features)
    return out


@dataclasses.dataclass(frozen=True)
class PairSearch:
  """What the search compared on one eval split, and every pair scored (best first)."""
  eval_split: str
  candidates: Tuple[str, ...]
  pairs: Tuple[PairScore, ...]
  train_rows: int
  eval_rows: int
  forms: Tuple[str, ...]
  too_wide: bool = False  # Too many features for the row sample (label_proxy_sample.MIN_ROWS): nothing paired.


# --- Encoding the sample --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Data:
  """A split's sample as model inputs: one float column per feature (categories as codes), the label as class
  indices (classification) or floats (regression)."""
  x: Dict[str, np.ndarray]
  y: np.ndarray
  names: Dict[str, Dict[float, str]]  # Categorical feature -> code -> category text (for the rule).


def _category_codes(train: sample_lib.Column, target: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Sorted category keys of train and the code of each: its train mean of `target` plus a tiny key-rank term,
  so codes are distinct and a threshold on them is a set of categories."""
  keys, inverse = np.unique(train.values, return_inverse=True)
  present = keys != 0
  sums = np.bincount(inverse, weights=target, minlength=len(keys))
  counts = np.bincount(inverse, minlength=len(keys))
  means = sums / np.maximum(counts, 1)
  codes = np.where(present, means + np.arange(len(keys)) * 1e-9, np.nan)
  return keys, codes


def _encode(values: sample_lib.Column, keys: np.ndarray, codes: np.ndarray) -> np.ndarray:
  position = np.minimum(np.searchsorted(keys, values.values), max(len(keys) - 1, 0))
  if not len(keys):
    return np.full(len(values.values), np.nan)
  return np.where(keys[position] == values.values, codes[position], np.nan)


def _category_target(y: np.ndarray, task: str, num_classes: int) -> np.ndarray:
  """What categories are ordered by: the label (regression), else the indicator of the class whose rate varies most
  across rows (for two classes, the optimal order of categories for a split)."""
  if task == REGRESSION:
    return y
  rates = np.bincount(y, minlength=num_classes) / max(len(y), 1)
  return (y == int(np.argmax(rates * (1 - rates)))).astype(np.float64)


def encode(train: sample_lib.RowSample, evaluation: sample_lib.RowSample, features: Sequence[str], task: str,
           classes: Optional[np.ndarray]) -> Tuple[_Data, _Data]:
  """Both samples as float columns, categories coded from the train sample alone."""
  if task == CLASSIFICATION:
    y_train, y_eval = np.searchsorted(classes, train.labels), np.searchsorted(classes, evaluation.labels)
  else:
    y_train, y_eval = counts_lib.word_to_float(train.labels), counts_lib.word_to_float(evaluation.labels)
  target = _category_target(y_train, task, 0 if classes is None else len(classes))
  tx, ex, names = {}, {}, {}
  for name in features:
    t, e = train.columns[name], evaluation.columns[name]
    if t.kind == sample_lib.NUMERIC:
      tx[name], ex[name] = t.values, e.values
      continue
    keys, codes = _category_codes(t, target)
    tx[name], ex[name] = _encode(t, keys, codes), _encode(e, keys, codes)
    texts = {**(e.names or {}), **(t.names or {})}
    names[name] = {float(c): texts.get(int(k), f'#{int(k) % 100000}') for k, c in zip(keys.tolist(), codes.tolist())
                   if c == c}
  return _Data(tx, y_train, names), _Data(ex, y_eval, names)


# --- Mutual information: the second way candidates are picked -----------------------------------------------------


def _quantile_codes(x: np.ndarray, bins: int) -> np.ndarray:
  """Bin index of each value (equal-count bins on the value's order; missing its own bin)."""
  finite = np.isfinite(x)
  codes = np.full(len(x), bins, dtype=np.int64)
  if finite.any():
    edges = np.unique(np.quantile(x[finite], np.linspace(0, 1, bins + 1)[1:-1]))
    codes[finite] = np.searchsorted(edges, x[finite], side='right')
  return codes


def mutual_information(x: np.ndarray, y_codes: np.ndarray, num_y: int) -> float:
  """Plug-in mutual information (nats) of a binned feature and the (binned) label."""
  x_codes = _quantile_codes(x, _MI_BINS)
  joint = np.bincount(x_codes * num_y + y_codes, minlength=(_MI_BINS + 1) * num_y).reshape(_MI_BINS + 1, num_y)
  p = joint / max(joint.sum(), 1)
  px, py = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
  nz = p > 0
  return float(np.sum(p[nz] * np.log(p[nz] / (px @ py)[nz])))


def pick_candidates(train: _Data, task: str, skills: Mapping[str, float], k: int) -> List[str]:
  """The k features best by one-feature skill and by mutual information, taken in turns (ties by name)."""
  if task == CLASSIFICATION:
    y_codes, num_y = train.y, int(train.y.max(initial=0)) + 1
  else:
    y_codes, num_y = _quantile_codes(train.y, _MI_BINS), _MI_BINS + 1
  names = sorted(train.x)
  by_skill = sorted(names, key=lambda n: (-skills.get(n, 0.0), n))
  by_information = sorted(names, key=lambda n: (-round(mutual_information(train.x[n], y_codes, num_y), 9), n))
  chosen: List[str] = []
  for a, b in zip(by_skill, by_information):
    for name in (a, b):
      if name not in chosen and len(chosen) < k:
        chosen.append(name)
  return chosen


def features_for(max_pairs: int) -> int:
  """The largest k with k(k-1)/2 <= max_pairs."""
  return int((1 + math.isqrt(1 + 8 * max_pairs)) // 2) if max_pairs > 0 else 0


# --- Depth-2 trees (classification) ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Split:
  column: int
  threshold: float  # Rows with value <= threshold (and missing) go left.


@dataclasses.dataclass(frozen=True)
class _Tree:
  root: Optional[_Split]
  # Per side of the root: (split or None, class left / only class, class right).
  sides: Tuple[Tuple[Optional[_Split], int, int], ...]


def _filled(x: np.ndarray) -> np.ndarray:
  return np.where(np.isnan(x), -np.inf, x)


def _split_scores(xs: np.ndarray, onehot: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """Per split position of rows sorted by value xs (onehot: classes x rows, or the 0/1 label itself for two
  classes): (valid, rows right, Gini score).

  Rows right = correct rows with each side predicting its majority; Gini score = sum over sides of squared class
  counts / side count (higher is purer)."""
  if len(xs) < 2:
    return None
  valid = xs[1:] > xs[:-1]
  if not valid.any():
    return None
  n_left = np.arange(1, len(xs), dtype=np.float64)
  n_right = len(xs) - n_left
  if onehot.ndim == 1:  # Two classes: the counts of class 1, the rest is class 0.
    ones = np.cumsum(onehot)
    ones_left = ones[:-1]
    ones_right = ones[-1] - ones_left
    zeros_left, zeros_right = n_left - ones_left, n_right - ones_right
    correct = np.maximum(ones_left, zeros_left) + np.maximum(ones_right, zeros_right)
    gini = (ones_left ** 2 + zeros_left ** 2) / n_left + (ones_right ** 2 + zeros_right ** 2) / n_right
    return valid, correct, gini
  cumulative = np.cumsum(onehot, axis=1)
  left = cumulative[:, :-1]
  right = cumulative[:, -1:] - left
  gini = np.einsum('ij,ij->j', left, left) / n_left + np.einsum('ij,ij->j', right, right) / n_right
  correct = left.max(axis=0) + right.max(axis=0)
  return valid, correct, gini


def _best_of(xs: np.ndarray, valid: np.ndarray, score: np.ndarray) -> Tuple[float, float]:
  masked = np.where(valid, score, -np.inf)
  i = int(np.argmax(masked))
  return float(xs[i]), float(masked[i])


class _TreeFitter:
  """Depth-2 trees on one or two columns of the train sample, sharing each column's sort."""

  def __init__(self, columns: Sequence[np.ndarray], y: np.ndarray, num_classes: int):
    self.columns = [_filled(c) for c in columns]
    # Rows of equal value are never split apart, so their order within a sort does not matter.
    self.orders = [np.argsort(c) for c in self.columns]
    self.onehot = y.astype(np.float64) if num_classes == 2 else \
        (np.arange(num_classes)[:, None] == y[None, :]).astype(np.float64)
    self.y = y
    self.num_classes = num_classes

  def _best(self, mask: Optional[np.ndarray]) -> Tuple[Optional[Tuple[_Split, float]], Optional[_Split]]:
    """(the split getting most rows right with its count, the purest split by Gini) over every column."""
    by_correct = by_gini = None
    for i, (column, order) in enumerate(zip(self.columns, self.orders)):
      rows = order if mask is None else order[mask[order]]
      xs = column[rows]
      found = _split_scores(xs, self.onehot[..., rows])
      if found is None:
        continue
      valid, correct, gini = found
      threshold, score = _best_of(xs, valid, correct)
      if by_correct is None or score > by_correct[1]:
        by_correct = (_Split(i, threshold), score)
      threshold, score = _best_of(xs, valid, gini)
      if by_gini is None or score > by_gini[1]:
        by_gini = (_Split(i, threshold), score)
    return by_correct, by_gini[0] if by_gini else None

  def _majority(self, mask: np.ndarray) -> int:
    return int(np.argmax(np.bincount(self.y[mask], minlength=self.num_classes)))

  def _side(self, mask: np.ndarray) -> Tuple[Tuple[Optional[_Split], int, int], int]:
    """The best stump inside one side of the root, and how many train rows it gets right."""
    only = self._majority(mask) if mask.any() else 0
    stay = int((self.y[mask] == only).sum())
    best, _ = self._best(mask)
    if best is None or best[1] <= stay:
      return (None, only, only), stay
    split = best[0]
    left = mask & (self.columns[split.column] <= split.threshold)
    return (split, self._majority(left), self._majority(mask & ~left)), int(best[1])

  def stump_correct(self) -> float:
    """Train rows a single split gets right (to rank derived columns before growing their trees)."""
    best, _ = self._best(None)
    return best[1] if best else float(np.bincount(self.y, minlength=self.num_classes).max(initial=0))

  def fit(self) -> _Tree:
    by_correct, by_gini = self._best(None)
    roots = {s for s in (by_gini, by_correct[0] if by_correct else None) if s is not None}
    everything = np.ones(len(self.y), dtype=bool)
    best_tree, best_correct = _Tree(None, ((None, self._majority(everything), 0),)), -1
    for root in sorted(roots, key=lambda s: (s.column, s.threshold)):
      left = self.columns[root.column] <= root.threshold
      (side_left, correct_left), (side_right, correct_right) = self._side(left), self._side(~left)
      if correct_left + correct_right > best_correct:
        best_tree, best_correct = _Tree(root, (side_left, side_right)), correct_left + correct_right
    return best_tree


def _apply_side(side: Tuple[Optional[_Split], int, int], columns: Sequence[np.ndarray]) -> np.ndarray:
  split, left, right = side
  if split is None:
    return np.full(len(columns[0]), left)
  return np.where(columns[split.column] <= split.threshold, left, right)


def predict(tree: _Tree, columns: Sequence[np.ndarray]) -> np.ndarray:
  columns = [_filled(c) for c in columns]
  if tree.root is None:
    return np.full(len(columns[0]), tree.sides[0][1])
  left = columns[tree.root.column] <= tree.root.threshold
  return np.where(left, _apply_side(tree.sides[0], columns), _apply_side(tree.sides[1], columns))


# --- Rules in words -------------------------------------------------------------------------------------------------


def _number(value: float) -> str:
  return f'{value:.6g}'


def _condition(label: str, split: _Split, left: bool, names: Optional[Dict[float, str]]) -> str:
  if names is not None:
    chosen = sorted((t for c, t in names.items() if (c <= split.threshold) == left))
    shown = ', '.join(repr(t) for t in chosen[:_SHOWN_CATEGORIES])
    more = f', ... ({len(chosen)} values)' if len(chosen) > _SHOWN_CATEGORIES else ''
    return f'{label} in {{{shown}{more}}}'
  if math.isinf(split.threshold):
    return f'{label} is missing' if left else f'{label} is present'
  return f'{label} <= {_number(split.threshold)}' if left else f'{label} > {_number(split.threshold)}'


def _leaves(tree: _Tree) -> List[Tuple[Tuple[Tuple[_Split, bool], ...], int]]:
  """(conditions, class) of every leaf; a condition is (split, goes left)."""
  if tree.root is None:
    return [((), tree.sides[0][1])]
  leaves = []
  for side, went_left in zip(tree.sides, (True, False)):
    split, left, right = side
    base = ((tree.root, went_left),)
    if split is None:
      leaves.append((base, left))
    else:
      leaves.extend([(base + ((split, True),), left), (base + ((split, False),), right)])
  return leaves


def tree_rule(tree: _Tree, labels: Sequence[str], class_names: Sequence[str],
              names: Sequence[Optional[Dict[float, str]]]) -> str:
  """"<class> when <conditions> or ..., else <class>": the least common predicted class regions spelled out."""
  leaves = _leaves(tree)
  by_class: Dict[int, List[str]] = {}
  for conditions, cls in leaves:
    text = ' and '.join(_condition(labels[s.column], s, left, names[s.column]) for s, left in conditions)
    by_class.setdefault(cls, []).append(text or 'always')
  default = max(by_class, key=lambda c: (len(by_class[c]), -c))
  parts = [f'{class_names[c]} when ' + ' or '.join(f'({t})' if ' and ' in t and len(by_class[c]) > 1 else t
                                                   for t in by_class[c])
           for c in sorted(by_class) if c != default]
  return '; '.join(parts + [f'else {class_names[default]}']) if parts else f'always {class_names[default]}'


# --- Scoring ------------------------------------------------------------------------------------------------------


def _derived(kind: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
  with np.errstate(all='ignore'):
    if kind == 'sum':
      return a + b
    if kind == 'difference':
      return a - b
    if kind == 'product':
      return a * b
    if kind == 'ratio':
      return np.where(b != 0, a / b, np.nan)
    return np.where(a != 0, b / a, np.nan)


def _accuracy(predicted: np.ndarray, y: np.ndarray) -> float:
  return float((predicted == y).mean()) if len(y) else 0.0


def _r2(predicted: np.ndarray, y: np.ndarray, total: float) -> float:
  return 1 - float(np.sum((y - predicted) ** 2)) / total if total > 0 else 0.0


def _least_squares(columns: Sequence[np.ndarray], y: np.ndarray) -> Optional[np.ndarray]:
  design = np.column_stack([*columns, np.ones(len(y))])
  finite = np.isfinite(design).all(axis=1)
  if finite.sum() < design.shape[1] + 1:
    return None
  coefficients, *_ = np.linalg.lstsq(design[finite], y[finite], rcond=None)
  return coefficients


def _linear_predict(coefficients: np.ndarray, columns: Sequence[np.ndarray], fallback: float) -> np.ndarray:
  with np.errstate(all='ignore'):
    predicted = np.column_stack([*columns, np.ones(len(columns[0]))]) @ coefficients
  return np.where(np.isfinite(predicted), predicted, fallback)


def _binned_fit(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, fallback: float) -> np.ndarray:
  """Each eval row predicted by the train mean of its equal-count bin of x (missing its own bin)."""
  finite = np.isfinite(x_train)
  if not finite.any():
    return np.full(len(x_eval), fallback)
  edges = np.unique(np.quantile(x_train[finite], np.linspace(0, 1, _REGRESSION_BINS + 1)[1:-1]))
  def codes(x):
    out = np.full(len(x), len(edges) + 1)
    ok = np.isfinite(x)
    out[ok] = np.searchsorted(edges, x[ok], side='right')
    return out
  train_codes = codes(x_train)
  sums = np.bincount(train_codes, weights=y_train, minlength=len(edges) + 2)
  counts = np.bincount(train_codes, minlength=len(edges) + 2)
  means = np.where(counts > 0, sums / np.maximum(counts, 1), fallback)
  return means[codes(x_eval)]


@dataclasses.dataclass(frozen=True)
class _Fit:
  score: float
  form: str
  rule: str


def _classify(train: _Data, evaluation: _Data, a: str, b: Optional[str], num_classes: int,
              class_names: Sequence[str], label: str) -> _Fit:
  """The better of a depth-2 tree on (a, b) (on a alone when b is None) and one on the derived column whose single
  best split gets most train rows right."""
  used = [a] if b is None else [a, b]
  fitter = _TreeFitter([train.x[n] for n in used], train.y, num_classes)
  best = _scored_tree(fitter, [evaluation.x[n] for n in used], TREE, [f'`{n}`' for n in used],
                      [train.names.get(n) for n in used], evaluation.y, class_names, label)
  if b is None or a in train.names or b in train.names:
    return best
  derived = []
  for form, template in _DERIVED:
    fitter = _TreeFitter([_derived(form, train.x[a], train.x[b])], train.y, num_classes)
    derived.append((-fitter.stump_correct(), form, template, fitter))
  _, form, template, fitter = min(derived, key=lambda d: d[0])
  found = _scored_tree(fitter, [_derived(form, evaluation.x[a], evaluation.x[b])], form,
                       [f"`{template.format(a=a, b=b)}`"], [None], evaluation.y, class_names, label)
  return found if found.score > best.score else best


def _scored_tree(fitter: _TreeFitter, eval_columns: Sequence[np.ndarray], form: str, labels: Sequence[str],
                 names: Sequence[Optional[Dict[float, str]]], y: np.ndarray, class_names: Sequence[str],
                 label: str) -> _Fit:
  tree = fitter.fit()
  return _Fit(_accuracy(predict(tree, eval_columns), y), form,
              f'`{label}` is ' + tree_rule(tree, labels, class_names, names))


def _regress(train: _Data, evaluation: _Data, a: str, b: Optional[str], label: str) -> _Fit:
  """The best of least squares on (a, b) and, per derived column, a line and a binned-mean fit (a alone when b is
  None)."""
  mean = float(train.y.mean())
  total = float(np.sum((evaluation.y - evaluation.y.mean()) ** 2))
  best = _Fit(-math.inf, '', '')
  used = [a] if b is None else [a, b]
  coefficients = _least_squares([train.x[n] for n in used], train.y)
  if coefficients is not None:
    score = _r2(_linear_predict(coefficients, [evaluation.x[n] for n in used], mean), evaluation.y, total)
    terms = ' + '.join(f'{_number(c)} * `{n}`' for c, n in zip(coefficients[:-1], used))
    best = _Fit(score, 'linear', f'`{label}` ~ {terms} + {_number(coefficients[-1])}')
  if b is None:
    score = _r2(_binned_fit(train.x[a], train.y, evaluation.x[a], mean), evaluation.y, total)
    return best if best.score >= score else _Fit(score, 'binned', f'`{label}` ~ a function of `{a}`')
  if a in train.names or b in train.names:
    return best
  for form, template in _DERIVED:
    column = template.format(a=f'`{a}`', b=f'`{b}`')
    t, e = _derived(form, train.x[a], train.x[b]), _derived(form, evaluation.x[a], evaluation.x[b])
    line = _least_squares([t], train.y)
    if line is not None:
      score = _r2(_linear_predict(line, [e], mean), evaluation.y, total)
      if score > best.score:
        best = _Fit(score, form, f'`{label}` ~ {_number(line[0])} * ({column}) + {_number(line[1])}')
    score = _r2(_binned_fit(t, train.y, e, mean), evaluation.y, total)
    if score > best.score:
      best = _Fit(score, form, f'`{label}` ~ a function of {column}')
  return best


def _baseline(train: _Data, evaluation: _Data, task: str, num_classes: int) -> float:
  if task == CLASSIFICATION:
    return _accuracy(np.full(len(evaluation.y), int(np.argmax(np.bincount(train.y, minlength=num_classes)))),
                     evaluation.y)
  total = float(np.sum((evaluation.y - evaluation.y.mean()) ** 2))
  return _r2(np.full(len(evaluation.y), float(train.y.mean())), evaluation.y, total)


def search(train_sample: sample_lib.RowSample, eval_sample: sample_lib.RowSample, eval_split: str, task: str,
           classes: Optional[np.ndarray], class_names: Sequence[str], features: Sequence[str],
           single_scores: Mapping[str, float], skills: Mapping[str, float], max_pairs: int,
           label: str) -> PairSearch:
  """Scores the pairs of the best k candidate features on one eval split (see the module docstring).

  Args:
    features: the features the pair search may use (scored alone, usable in both samples).
    single_scores: each feature's full-count one-feature eval score (accuracy or R^2) on this split.
    skills: each feature's one-feature skill on this split (ranks candidates).
  """
  usable = set(sample_lib.usable_columns(train_sample)) & set(sample_lib.usable_columns(eval_sample))
  names = [n for n in sorted(features) if n in usable]
  train, evaluation = encode(train_sample, eval_sample, names, task, classes)
  num_classes = 0 if classes is None else len(classes)
  forms = (TREE, *[k for k, _ in _DERIVED]) if task == CLASSIFICATION else ('linear', *[k for k, _ in _DERIVED])
  candidates = pick_candidates(train, task, skills, features_for(max_pairs)) if len(train.y) else []
  if len(candidates) < 2 or not len(evaluation.y):
    return PairSearch(eval_split, tuple(candidates), (), len(train.y), len(evaluation.y), forms,
                      train_sample.too_wide or eval_sample.too_wide)

  def fit(a: str, b: Optional[str]) -> _Fit:
    if task == CLASSIFICATION:
      return _classify(train, evaluation, a, b, num_classes, class_names, label)
    return _regress(train, evaluation, a, b, label)

  alone = {n: max(fit(n, None).score, single_scores.get(n, -math.inf)) for n in candidates}
  fits = {(a, b): fit(a, b) for i, a in enumerate(candidates) for b in candidates[i + 1:]}
  baseline = _baseline(train, evaluation, task, num_classes)
  metric = 'accuracy' if task == CLASSIFICATION else 'r2'
  pairs = []
  for (a, b), found in fits.items():
    others = [(f.score, pair) for pair, f in fits.items() if a not in pair and b not in pair]
    honest, honest_pair = max(others, default=(baseline, ()), key=lambda o: (o[0], o[1]))
    pairs.append(PairScore((a, b), eval_split, metric, found.score, found.form, found.rule, (alone[a], alone[b]),
                           honest, tuple(honest_pair), baseline, len(evaluation.y), len(train.y)))
  pairs.sort(key=lambda p: (-(p.eval_score - max(p.alone)), p.features))
  return PairSearch(eval_split, tuple(candidates), tuple(pairs), len(train.y), len(evaluation.y), forms)
