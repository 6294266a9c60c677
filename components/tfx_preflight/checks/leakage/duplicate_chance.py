"""How many cross-split duplicates a random split of the data would give by chance, and whether more were found.

Real tables repeat: survey answers, rounded measurements, low-cardinality rows. A random split puts some of those
natural repeats on both sides, and that is not leakage. The data's own duplication is measured on a reference set
drawn from train (every train example for exact copies; a held-out sample of train probed against the rest of train
for near copies): `repeats` of its `reference` examples have a twin (same label) among the other train examples. An
eval example drawn from the same data has a twin in train with the same probability, so under "eval is a random
split of the same data" the eval and reference events are two Poisson counts with rates in the ratio of their sizes,
and given their sum the eval count is Binomial(observed + repeats, eval / (eval + reference)): the exact conditional
test of two Poisson rates. Its upper tail is the p-value of the count found; a count blocks or warns only when that
p-value is below `p_value` and at least `min_count` examples repeat, so one natural repeat in a small eval set or the
coincidences of a low-cardinality table never block, while copies on data without natural repeats (any real
continuous table) do from a handful on. A small eval set cannot prove a handful of copies (with no natural repeat, an
80/20 split needs 5 for p < 0.001): a count beyond expectation with a p-value below `warn_p_value` is `suspect` and
warns instead of passing in silence.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict

import numpy as np


def binomial_upper_tail(successes: int, trials: int, probability: float) -> float:
  """P(X >= successes) for X ~ Binomial(trials, probability), summed in log space over the terms that matter."""
  if successes <= 0:
    return 1.0
  if successes > trials or probability <= 0.0:
    return 0.0
  if probability >= 1.0:
    return 1.0
  mean = trials * probability
  spread = math.sqrt(mean * (1.0 - probability))
  last = int(min(trials, max(successes, mean) + 40.0 * spread + 50))
  i = np.arange(successes, last + 1, dtype=np.float64)
  log_terms = (math.lgamma(trials + 1) - _lgamma(i + 1) - _lgamma(trials - i + 1) + i * math.log(probability)
               + (trials - i) * math.log1p(-probability))
  top = float(log_terms.max())
  return float(min(1.0, math.exp(top) * np.exp(log_terms - top).sum()))


def _lgamma(x: np.ndarray) -> np.ndarray:
  return np.fromiter((math.lgamma(v) for v in x), dtype=np.float64, count=len(x))


@dataclasses.dataclass(frozen=True)
class ChanceSettings:
  """When a count beyond chance blocks (p below `p_value`, at least `min_count` examples) or warns (p below
  `warn_p_value`; 0: never): LeakageConfig's duplicate_p_value, min_duplicates and duplicate_warn_p_value."""
  p_value: float
  min_count: int
  warn_p_value: float = 0.0

  def to_dict(self) -> Dict[str, Any]:
    return {'duplicate_p_value': self.p_value, 'min_duplicates': self.min_count,
            'duplicate_warn_p_value': self.warn_p_value}


@dataclasses.dataclass(frozen=True)
class ChanceTest:
  """Eval examples with a twin in train (same label) against what train's own repeats predict."""
  observed: int  # eval examples with a twin in train carrying the same label
  eval_examples: int
  repeats: int  # reference examples with a twin (same label) among the other train examples
  reference: int  # reference examples (drawn from train)
  expected: float  # observed expected by chance: eval_examples * repeats / reference
  p_value: float  # P(at least `observed` | a random split), conditional binomial test
  significant: bool  # p_value < the setting and at least min_count examples
  # Not significant, yet more than expected at a p-value below the warning setting: too few examples to prove copies
  # (a small eval set), too many to pass them in silence. A warning.
  suspect: bool
  settings: ChanceSettings

  @property
  def excess(self) -> float:
    """Examples beyond what chance explains (0 unless significant)."""
    return max(0.0, self.observed - self.expected) if self.significant else 0.0

  @property
  def excess_fraction(self) -> float:
    return self.excess / self.eval_examples if self.eval_examples else 0.0

  def reason(self) -> str:
    """Why the count blocks or not, with its numbers."""
    p_value, min_count = self.settings.p_value, self.settings.min_count
    numbers = (f'{self.observed} found, {self.expected:.3g} expected by chance from train\'s own repeats '
               f'({self.repeats} of {self.reference} reference train examples have a twin in train), '
               f'p = {self.p_value:.3g}')
    if self.significant:
      return f'{numbers} < {p_value:g}: more than chance, counted as leakage ({self.excess:.3g} beyond chance).'
    if not self.observed:
      return f'{numbers}: no eval example has a twin with the same label in train.'
    if self.observed < min_count:
      return f'{numbers}: fewer than leakage.min_duplicates ({min_count}), not counted as leakage.'
    if self.suspect:
      return (f'{numbers} >= {p_value:g}: more than chance predicts, but too few examples to rule chance out, so '
              'not counted as leakage; a warning.')
    return (f'{numbers} >= {p_value:g}: as many as a random split of data that repeats itself gives, not counted '
            'as leakage.')

  def to_dict(self) -> Dict[str, Any]:
    return {'observed': self.observed, 'eval_examples': self.eval_examples, 'reference_repeats': self.repeats,
            'reference_examples': self.reference, 'expected': round(self.expected, 6),
            'p_value': float(f'{self.p_value:.6g}'), 'significant': self.significant, 'suspect': self.suspect,
            'excess_examples': round(self.excess, 6), 'excess_fraction': round(self.excess_fraction, 6),
            'reason': self.reason()}


def chance_test(observed: int, eval_examples: int, repeats: int, reference: int,
                settings: ChanceSettings) -> ChanceTest:
  """The conditional binomial test of `observed` eval events against `repeats` reference events (module docstring)."""
  observed, repeats = int(observed), int(repeats)
  if reference <= 0:  # No reference: nothing predicts a repeat, every copy is beyond chance.
    expected, tail = 0.0, 0.0 if observed else 1.0
  else:
    expected = eval_examples * repeats / reference
    tail = binomial_upper_tail(observed, observed + repeats, eval_examples / (eval_examples + reference))
  beyond = observed >= max(1, settings.min_count) and observed > expected
  significant = beyond and tail < settings.p_value
  suspect = beyond and not significant and tail < settings.warn_p_value
  return ChanceTest(observed, int(eval_examples), repeats, int(reference), expected, tail, significant, suspect,
                    settings)
