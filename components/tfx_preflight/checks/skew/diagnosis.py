"""Why a feature differs between train and eval, read from TFDV statistics alone (no second pass over the data).

TFDV's comparators say *that* a distribution moved; these functions name the usual causes: normalization applied to
one split only (`scale_mismatch`), a feature dropped or zeroed in one split (`missing_in_split`, `constant_in_split`),
a different list length or type (`value_count_mismatch`, `type_mismatch`), different missing-value rates, categories
eval has and train never saw. Every rule is written so that a clean random split of real data does not fire it: a
difference is reported only when sampling noise cannot explain it (binomial plausibility, robust quantile spreads
rather than the outlier-driven standard deviation).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tensorflow_metadata.proto.v0 import statistics_pb2

# A difference is "real" when chance would produce it less often than this (per feature and split pair).
IMPLAUSIBLE = 1e-6
# Two-proportion z-score above which a missing-rate difference is not sampling noise.
MISSING_RATE_Z = 4.0
# |log ratio| of spreads from which one split is a rescaled copy of the other (2x), and the tolerance (1.5x) within
# which the robust spread ratio and the std ratio must agree for a pure rescale.
RESCALE_MIN_RATIO = 2.0
# Factor from which deciles that all agree on it (and the spread with them) are a unit change: miles vs km is 1.609,
# and x1.5 must not pass; clean random splits keep the decile factor near 1 (the decile test's p-value judges noise).
UNIT_CHANGE_MIN_RATIO = 1.4
RESCALE_AGREEMENT = 1.5
# Non-zero values each split needs before its std/mean/range may be trusted for a rescale verdict.
MIN_VALUES_FOR_MOMENTS = 100
# Sampling-noise guard: a shift must exceed this many standard errors for the split sizes to be reported.
NOISE_Z = 4.0
# Round numbers a split gets multiplied or divided by, with the usual reason.
KNOWN_SCALES: Tuple[Tuple[float, str], ...] = (
    (255.0, 'pixel normalization (/255) applied to one split only'),
    (256.0, 'pixel normalization (/256) applied to one split only'),
    (100.0, 'percent in one split and fraction in the other, or an amount in units vs hundredths (cents)'),
    (1000.0, 'a unit change (e.g. m vs km, ms vs s) or a /1000 scaling in one split only'),
    (3600.0, 'time in seconds in one split and hours in the other'),
    (60.0, 'time in seconds in one split and minutes in the other (or minutes vs hours)'),
    (1e6, 'a unit change (e.g. micro vs base units) in one split only'),
    (1024.0, 'a unit change (bytes vs KiB) in one split only'),
    (10.0, 'a unit change (e.g. mm vs cm) or a /10 scaling in one split only'),
    (1.609344, 'miles in one split and kilometres in the other'),
    (2.204623, 'pounds in one split and kilograms in the other'),
    (2.54, 'inches in one split and centimetres in the other'),
    (3.28084, 'feet in one split and metres in the other'),
)
# Relative distance to a known constant that still counts as that constant (tighter for the small unit factors, so
# a x1.5 is not called miles vs km).
_SCALE_TOLERANCE = 0.1
_SMALL_SCALE_TOLERANCE = 0.03
# A factor of 100 on a column named like money is a currency unit and its hundredth, not percent vs fraction.
_MONEY_NAME = re.compile(r'(fare|price|cost|amount|amt|revenue|income|salary|wage|pay|tip|usd|eur|gbp|dollar|cent|'
                         r'fee|charge|spend|sales|balance|money|budget|profit|tax|total)', re.IGNORECASE)
_MONEY_CAUSE = 'an amount in dollars in one split and cents in the other (a currency unit and its hundredth)'

_TYPE_NAMES = {v: k for k, v in statistics_pb2.FeatureNameStatistics.Type.items()}
_NUMERIC_TYPES = ('INT', 'FLOAT')


@dataclasses.dataclass(frozen=True)
class FeatureSummary:
  """What the diagnosis needs from one feature's statistics in one split."""
  name: str
  type: str
  num_examples: int
  present: int  # Examples with at least one value (CsvExampleGen writes an empty list for an empty cell).
  tot_values: int
  min_values: int
  max_values: int
  avg_values: float
  # Numeric features.
  mean: Optional[float] = None
  std: Optional[float] = None
  min: Optional[float] = None
  max: Optional[float] = None
  num_zeros: int = 0
  deciles: Tuple[float, ...] = ()
  histogram: Tuple[Tuple[float, float, float], ...] = ()  # (low, high, count), equal-width buckets.
  # Categorical (string) features: value -> count, and whether that list holds every distinct value.
  unique: Optional[int] = None
  counts: Tuple[Tuple[str, float], ...] = ()
  counts_complete: bool = True
  avg_length: float = 0.0  # Mean length of a string value, in bytes.
  # Non-finite float values, from TFDV's standard histogram (num_nan, and the [-inf, -inf] / [inf, inf] buckets).
  num_nan: int = 0
  num_pos_inf: int = 0
  num_neg_inf: int = 0

  def non_finite(self) -> Dict[str, int]:
    return {'nan': self.num_nan, '+inf': self.num_pos_inf, '-inf': self.num_neg_inf}

  def non_finite_rates(self) -> Dict[str, float]:
    """Fraction of this split's values that are NaN, +Inf, -Inf."""
    total = self.tot_values or 1
    return {kind: count / total for kind, count in self.non_finite().items()}

  @property
  def numeric(self) -> bool:
    return self.mean is not None

  @property
  def categorical(self) -> bool:
    return self.unique is not None

  @property
  def missing(self) -> int:
    return self.num_examples - self.present

  @property
  def missing_rate(self) -> float:
    return self.missing / self.num_examples if self.num_examples else 0.0

  @property
  def spread(self) -> Optional[float]:
    """q90 - q10 from the quantiles histogram: a scale that outliers do not move."""
    if len(self.deciles) >= 9 and self.deciles[8] > self.deciles[0]:
      return self.deciles[8] - self.deciles[0]
    return None

  @property
  def constant(self) -> bool:
    if self.present == 0:
      return False
    if self.numeric:
      return self.min == self.max
    if self.categorical:
      return self.unique == 1
    return False

  def numbers(self) -> Dict[str, Any]:
    """The numbers a finding shows for this split."""
    out: Dict[str, Any] = {'num_examples': self.num_examples, 'missing_rate': round_number(self.missing_rate)}
    if self.numeric:
      out.update({k: round_number(getattr(self, k)) for k in ('min', 'max', 'mean', 'std')})
    if self.categorical:
      out['unique'] = self.unique
      out['top_values'] = [v for v, _ in sorted(self.counts, key=lambda vc: (-vc[1], vc[0]))[:5]]
    if self.max_values > 1 or self.min_values != self.max_values:
      out.update(min_num_values=self.min_values, max_num_values=self.max_values,
                 avg_num_values=round_number(self.avg_values))
    return out


def round_number(value: Optional[float]) -> Optional[float]:
  """Six significant digits: readable numbers, identical bytes for identical statistics."""
  if value is None or not math.isfinite(value):
    return value
  return float(f'{value:.6g}')


def feature_name(feature: statistics_pb2.FeatureNameStatistics) -> str:
  return '.'.join(feature.path.step) if feature.path.step else feature.name


def summarize(dataset: statistics_pb2.DatasetFeatureStatistics) -> Dict[str, FeatureSummary]:
  """One FeatureSummary per feature of a split's statistics."""
  return {feature_name(f): _summarize_feature(f, dataset.num_examples) for f in dataset.features}


def _common_stats(feature: statistics_pb2.FeatureNameStatistics) -> statistics_pb2.CommonStatistics:
  kind = feature.WhichOneof('stats')
  return getattr(feature, kind).common_stats if kind else statistics_pb2.CommonStatistics()


def _summarize_feature(feature: statistics_pb2.FeatureNameStatistics, num_examples: int) -> FeatureSummary:
  common = _common_stats(feature)
  base = dict(name=feature_name(feature), type=_TYPE_NAMES.get(feature.type, str(feature.type)),
              num_examples=int(num_examples), present=_examples_with_values(common),
              tot_values=int(common.tot_num_values),
              min_values=_min_values_when_present(common), max_values=int(common.max_num_values),
              avg_values=_avg_values_when_present(common))
  kind = feature.WhichOneof('stats')
  if kind == 'num_stats':
    stats = feature.num_stats
    deciles: Tuple[float, ...] = ()
    histogram: Tuple[Tuple[float, float, float], ...] = ()
    non_finite = {}
    for h in stats.histograms:
      if h.type == statistics_pb2.Histogram.QUANTILES and h.buckets:
        deciles = _interior_boundaries(h)
      elif h.type == statistics_pb2.Histogram.STANDARD:
        histogram = tuple((b.low_value, b.high_value, b.sample_count) for b in h.buckets)
        non_finite = _non_finite_counts(h)
    return FeatureSummary(**base, mean=stats.mean, std=stats.std_dev, min=stats.min, max=stats.max,
                          num_zeros=int(stats.num_zeros), deciles=deciles, histogram=histogram, **non_finite)
  if kind == 'string_stats':
    stats = feature.string_stats
    if stats.rank_histogram.buckets:
      counts = tuple((b.label, b.sample_count) for b in stats.rank_histogram.buckets)
    else:
      counts = tuple((v.value, v.frequency) for v in stats.top_values)
    return FeatureSummary(**base, unique=int(stats.unique), counts=counts, counts_complete=len(counts) >= stats.unique,
                          avg_length=float(stats.avg_length))
  return FeatureSummary(**base)


def _non_finite_counts(histogram: statistics_pb2.Histogram) -> Dict[str, int]:
  """TFDV's standard histogram keeps NaNs in num_nan and each infinity in a bucket whose bounds are both infinite."""
  pos = sum(b.sample_count for b in histogram.buckets if b.low_value == math.inf)
  neg = sum(b.sample_count for b in histogram.buckets if b.high_value == -math.inf)
  return {'num_nan': int(histogram.num_nan), 'num_pos_inf': int(round(pos)), 'num_neg_inf': int(round(neg))}


def _examples_with_values(common: statistics_pb2.CommonStatistics) -> int:
  """Examples with at least one value: TFDV counts an empty list as present, a missing cell is an empty list in
  tf.Examples from CsvExampleGen but a null in a DataFrame; both must read as missing."""
  if common.min_num_values >= 1 or common.num_non_missing == 0:
    return int(common.num_non_missing)
  if common.max_num_values <= 1:
    return int(common.tot_num_values)  # Single values: one value per example that has one.
  empty = sum(b.sample_count for b in common.num_values_histogram.buckets if b.high_value == 0)
  return int(round(max(common.num_non_missing - empty, 0)))


def _min_values_when_present(common: statistics_pb2.CommonStatistics) -> int:
  """Fewest values among examples that have any: empty lists are missing values, not a different list length."""
  if common.min_num_values >= 1 or common.max_num_values == 0:
    return int(common.min_num_values)
  positive = [b.low_value for b in common.num_values_histogram.buckets if b.low_value > 0]
  positive += [b.high_value for b in common.num_values_histogram.buckets if b.high_value > 0]
  return int(min(positive)) if positive else 1


def _avg_values_when_present(common: statistics_pb2.CommonStatistics) -> float:
  present = _examples_with_values(common)
  return common.tot_num_values / present if present else 0.0


def _interior_boundaries(histogram: statistics_pb2.Histogram) -> Tuple[float, ...]:
  """The quantile boundaries between buckets (deciles for TFDV's default 10 buckets)."""
  buckets = histogram.buckets
  return tuple(buckets[i].high_value for i in range(len(buckets) - 1))


# ---------------------------------------------------------------------------------------------------------------
# Plausibility under "same distribution": tiny probabilities mean the difference is real, not sampling noise.


def chance_all_absent(rate: float, trials: int) -> float:
  """P(no success in `trials` draws of probability `rate`), e.g. eval lacking a feature train has at `rate`."""
  if rate >= 1:
    return 0.0
  if trials <= 0 or rate <= 0:
    return 1.0
  return math.exp(trials * math.log1p(-rate))


def two_sided_p(z: float) -> float:
  """Two-sided normal tail probability of a z-score."""
  if math.isnan(z):
    return 0.0  # No number to judge noise by: TFDV's own verdict stands (fail closed).
  return math.erfc(abs(z) / math.sqrt(2))


def two_proportion_z(k1: float, n1: float, k2: float, n2: float) -> float:
  """z-score of the difference between proportions k1/n1 and k2/n2 under 'same rate' (pooled variance)."""
  if not n1 or not n2:
    return 0.0
  pooled = (k1 + k2) / (n1 + n2)
  variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
  diff = abs(k1 / n1 - k2 / n2)
  if variance <= 0:
    return math.inf if diff > 0 else 0.0
  return diff / math.sqrt(variance)


def benjamini_hochberg(p_values: Sequence[float], q: float, num_tests: int) -> List[bool]:
  """Which of `p_values` are discoveries at false-discovery rate q among `num_tests` hypotheses (the tests not
  listed had no candidate finding and count as p = 1, which only makes the procedure more conservative)."""
  m = max(num_tests, len(p_values), 1)
  order = sorted(range(len(p_values)), key=lambda i: p_values[i])
  largest = 0
  for rank, i in enumerate(order, start=1):
    if p_values[i] <= q * rank / m:
      largest = rank
  keep = set(order[:largest])
  return [i in keep for i in range(len(p_values))]


def quantile_points(summary: FeatureSummary) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
  """(values, probabilities) of the quantile function TFDV keeps: min, the deciles, max."""
  points = (summary.min, *summary.deciles, summary.max)
  return points, tuple(i / (len(points) - 1) for i in range(len(points)))


def is_discrete(summary: FeatureSummary) -> bool:
  """Integer values (INT features, or floats whose quantile points are all whole numbers): their CDF is a step
  function, so it may not be interpolated between quantile points."""
  return summary.type == 'INT' or all(math.isfinite(v) and float(v).is_integer()
                                      for v in quantile_points(summary)[0])


def _bounds(points: Sequence[float], probs: Sequence[float], x: float, discrete: bool) -> Tuple[float, float]:
  if x < points[0]:
    return 0.0, 0.0
  if x > points[-1]:
    return 1.0, 1.0
  left, right = bisect.bisect_left(points, x), bisect.bisect_right(points, x)  # First point >= x, first > x.
  if discrete:
    return (probs[left - 1] if left > 0 else 0.0), (probs[right] if right < len(points) else 1.0)
  if right > left:  # Tied points: their probabilities span the value.
    return probs[left], probs[right - 1]
  value = probs[left - 1] + (probs[left] - probs[left - 1]) * (x - points[left - 1]) / (points[left] - points[left - 1])
  return value, value


def cdf_bounds(summary: FeatureSummary, x: float, discrete: bool = False) -> Tuple[float, float]:
  """Bounds of the fraction of `summary`'s values below x, read from its min, deciles and max: linear in between for
  continuous values (a tie of several deciles at x spans their probabilities); for discrete values only what the
  quantile points prove (a lower bound on F(x-) and an upper bound on F(x)), since the mass between two points may
  sit on any integer."""
  points, probs = quantile_points(summary)
  return _bounds(points, probs, x, discrete)


def _decile_gaps(reference: FeatureSummary, other: FeatureSummary, discrete: bool) -> List[Tuple[float, float]]:
  """(probability, gap) at each of reference's deciles: how far the fraction of `other`'s values below the decile is,
  at least, from the decile's probability (0 when the bounds allow equality)."""
  points, probs = quantile_points(other)
  size = len(reference.deciles) + 1
  gaps = []
  for k, x in enumerate(reference.deciles, start=1):
    p = k / size
    low, high = _bounds(points, probs, x, discrete)
    gaps.append((p, max(0.0, low - p, p - high)))
  return gaps


def _decile_z(reference: FeatureSummary, other: FeatureSummary, discrete: bool) -> float:
  """Largest z-score, over reference's deciles, of the difference between the decile's probability and the fraction
  of `other`'s values below it (binomial standard errors of both splits)."""
  n1, n2 = max(reference.tot_values, 1), max(other.tot_values, 1)
  return max((gap / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2)) for p, gap in
              _decile_gaps(reference, other, discrete)), default=0.0)


def _comparable_quantiles(train: FeatureSummary, other: FeatureSummary) -> bool:
  return bool(train.numeric and other.numeric and len(train.deciles) == len(other.deciles) and train.deciles
              and all(map(math.isfinite, (train.min, train.max, other.min, other.max))))


def ks_distance(train: FeatureSummary, other: FeatureSummary) -> float:
  """Kolmogorov-Smirnov distance read at the deciles: the largest gap between the two splits' cumulative
  distributions at either split's deciles (the smaller of the two readings), i.e. the share of values that crossed a
  decile. Order-aware and rank-based: outliers cannot shrink it, a shift of the bulk (+6 h) or a rescale moves it
  whatever the histogram buckets say. 0.0 when the statistics carry no deciles."""
  if not _comparable_quantiles(train, other):
    return 0.0
  discrete = is_discrete(train) or is_discrete(other)
  return min(max((g for _, g in _decile_gaps(a, b, discrete)), default=0.0)
             for a, b in ((train, other), (other, train)))


def quantile_shift_p(train: FeatureSummary, other: FeatureSummary) -> float:
  """p-value that the two numeric distributions are the same, from their deciles alone (a coarse two-sample test in
  both directions, Bonferroni over the deciles); 1.0 when the statistics carry no deciles."""
  if not _comparable_quantiles(train, other):
    return 1.0
  discrete = is_discrete(train) or is_discrete(other)
  z = min(_decile_z(train, other, discrete), _decile_z(other, train, discrete))
  return min(1.0, len(train.deciles) * two_sided_p(z))


def decile_offset(train: FeatureSummary, other: FeatureSummary) -> Optional[float]:
  """The amount most deciles of `other` moved from train's (at least 2/3 of them within a fifth of it), when it is not
  zero: the signature of a constant offset (time zone, origin, baseline) in one split."""
  if not _comparable_quantiles(train, other):
    return None
  moves = sorted(o - t for t, o in zip(train.deciles, other.deciles))
  median = moves[len(moves) // 2]
  agreeing = sum(abs(m - median) <= 0.2 * abs(median) for m in moves)
  return median if median and agreeing * 3 >= 2 * len(moves) else None


def missing_rate_z(train: FeatureSummary, other: FeatureSummary) -> float:
  n1, n2 = train.num_examples, other.num_examples
  if not n1 or not n2:
    return 0.0
  pooled = (train.missing + other.missing) / (n1 + n2)
  variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
  diff = abs(train.missing_rate - other.missing_rate)
  if variance <= 0:
    return math.inf if diff > 0 else 0.0
  return diff / math.sqrt(variance)


def effect_size(train: FeatureSummary, other: FeatureSummary, ks: Optional[float] = None) -> float:
  """How far a numeric distribution moved, robust to heavy tails: the largest of the Kolmogorov-Smirnov distance read
  at the deciles (share of values that crossed a decile: rank-based, so outliers that inflate the std cannot shrink
  it), the median move of the deciles relative to q90-q10, and the standardized mean difference. Histogram distances
  on summaries jump for point masses near bucket edges and outliers; this number confirms that a TFDV distance is a
  real shift. (A unit change is judged apart, by the factor the deciles agree on: `diagnose_scale`.) `ks`: the
  Kolmogorov-Smirnov distance when the caller has it already."""
  if not (train.numeric and other.numeric):
    return math.inf
  pooled_std = math.sqrt(((train.std or 0) ** 2 + (other.std or 0) ** 2) / 2)
  smd = abs(train.mean - other.mean) / pooled_std if pooled_std > 0 else (math.inf if train.mean != other.mean else 0)
  move = 0.0
  if len(train.deciles) == len(other.deciles) and train.deciles:
    scale = train.spread or other.spread or pooled_std
    if scale > 0:
      moves = sorted(abs(a - b) for a, b in zip(train.deciles, other.deciles))
      move = moves[len(moves) // 2] / scale
  return max(smd, move, ks_distance(train, other) if ks is None else ks)


# ---------------------------------------------------------------------------------------------------------------
# Scale: one split a rescaled (or standardized) copy of the other.


def _looks_standardized(s: FeatureSummary) -> bool:
  return abs(s.mean) <= 0.1 and abs(s.std - 1) <= 0.1


def _known_scale(ratio: float, name: str = '') -> Tuple[str, Optional[str]]:
  """('255', cause) for a ratio near 255 or 1/255; ('37.2', None) otherwise. A feature named like money (`fare`,
  `price`) rescaled by 100 is in cents in one split."""
  big = ratio if ratio >= 1 else 1 / ratio
  for constant, cause in KNOWN_SCALES:
    tolerance = _SCALE_TOLERANCE if constant >= 10 else _SMALL_SCALE_TOLERANCE
    if abs(big / constant - 1) <= tolerance:
      if constant == 100 and _MONEY_NAME.search(name):
        cause = _MONEY_CAUSE
      return f'{constant:.4g}', cause
  return f'{big:.3g}', None


def diagnose_scale(train: FeatureSummary, other: FeatureSummary, other_split: str,
                   train_split: str) -> Optional[Tuple[str, Dict[str, Any]]]:
  """(message, numbers) when `other` looks like `train` rescaled or standardized in one split only, else None."""
  if not (train.numeric and other.numeric) or not (train.std > 0 and other.std > 0):
    return None
  name = train.name
  std_ratio = other.std / train.std
  spread_ratio = other.spread / train.spread if train.spread and other.spread else None
  decile_ratio = _decile_ratio(train, other)
  # Moments of a few non-zero values (sparse pixels, rare counts) swing by 3x between clean splits.
  enough_values = min(train.tot_values - train.num_zeros, other.tot_values - other.num_zeros) >= MIN_VALUES_FOR_MOMENTS
  pure, evidence, minimum = True, None, RESCALE_MIN_RATIO
  if decile_ratio is not None and (spread_ratio is None or _agree(decile_ratio, spread_ratio, 1.25)):
    # Every decile moved by the same factor: the robust signature of a rescale (outliers can move the std ratio by 2x
    # in a clean split of heavy-tailed data, so it is not required to agree).
    ratio, evidence, minimum = decile_ratio, 'deciles', UNIT_CHANGE_MIN_RATIO
  elif enough_values and spread_ratio is not None and _agree(std_ratio, spread_ratio, RESCALE_AGREEMENT):
    ratio, evidence = spread_ratio, 'spread'
    pure = _agree_means(train, other, ratio)
  elif (enough_values and spread_ratio is None and train.max > train.min and _agree_means(train, other, std_ratio)
        and _agree((other.max - other.min) / (train.max - train.min), std_ratio, 1.25)):
    ratio, evidence = std_ratio, 'range'  # Degenerate deciles (mostly one value): range, std and mean must agree.
  else:
    ratio = None
  numbers = {'scale_ratio': round_number(ratio if ratio is not None else spread_ratio or std_ratio),
             'std_ratio': round_number(std_ratio), 'scale_evidence': evidence}

  splits = ((train_split, train), (other_split, other))
  standardized = [(split, s) for split, s in splits if _looks_standardized(s)]
  if len(standardized) == 1:
    std_split, std_summary = standardized[0]
    raw_split, raw = next((split, s) for split, s in splits if split != std_split)
    # Raw means clearly not unit scale: a shifted standard normal is a distribution shift, not a missing scaler.
    if not 0.5 <= raw.std <= 2 or abs(raw.mean) > 4 * raw.std:
      numbers['scale_evidence'] = 'standardized'
      return (f'{std_split} values of `{name}` look standardized (mean {_fmt(std_summary.mean)}, std '
              f'{_fmt(std_summary.std)}) while {raw_split} values are raw (mean {_fmt(raw.mean)}, std '
              f'{_fmt(raw.std)}): standardization applied to one split only', numbers)

  if ratio is None or abs(math.log(ratio)) < math.log(minimum):
    return None
  constant, cause = _known_scale(ratio, name)
  how = f'about {constant}x' if ratio > 1 else f'about 1/{constant} of'
  if pure:
    why = cause or ('a different normalization or unit in each split, or values that really grew by that factor '
                    'between the splits (a split by time?)')
    return f'{other_split} values of `{name}` are {how} {train_split}: {why}', numbers
  return (f'{other_split} values of `{name}` are rescaled ({how} {train_split}) and shifted (mean '
          f'{_fmt(train.mean)} vs {_fmt(other.mean)}): a different normalization in each split, or splits drawn '
          'from different populations (a row-order split of a sorted file, a split by time)', numbers)


def _agree(a: float, b: float, factor: float) -> bool:
  return a > 0 and b > 0 and abs(math.log(a / b)) < math.log(factor)


def _agree_means(train: FeatureSummary, other: FeatureSummary, ratio: float) -> bool:
  """Means scaled by `ratio` too (or both about zero): a pure rescale, no shift."""
  if abs(train.mean) < 0.1 * train.std and abs(other.mean) < 0.1 * other.std:
    return True
  return train.mean != 0 and _agree(other.mean / train.mean, ratio, 1.25)


def _decile_ratio(train: FeatureSummary, other: FeatureSummary) -> Optional[float]:
  """The factor the deciles of `other` are of train's, when the values have one sign (a quantity with a natural zero,
  which a unit change multiplies) and at least 2/3 of the deciles that are not zero in both splits agree on it within
  1.5x (at least 3 of them: zero-inflated counts and amounts keep their zeros under a unit change)."""
  if len(train.deciles) != len(other.deciles) or not train.deciles:
    return None
  values = (*train.deciles, *other.deciles)
  if min(values) < 0 < max(values):
    return None  # Centred values: a ratio of deciles near zero is noise; the spread ratio judges them.
  pairs = [(t, o) for t, o in zip(train.deciles, other.deciles) if t or o]
  ratios = sorted(o / t for t, o in pairs if t and o)
  if len(ratios) < 3:
    return None
  median = ratios[len(ratios) // 2]
  agreeing = sum(abs(math.log(r / median)) < math.log(1.5) for r in ratios)
  return median if agreeing * 3 >= 2 * len(pairs) else None


def _fmt(value: float) -> str:
  return f'{value:.4g}'


# ---------------------------------------------------------------------------------------------------------------
# Categories.


def new_categories(train: FeatureSummary, other: FeatureSummary) -> Tuple[List[str], float]:
  """Categories of `other` that train does not have, and the fraction of `other`'s values they cover.

  When train's value list is truncated (more distinct values than TFDV keeps), a category is called new only when it
  is far more frequent in `other` than anything train could have left out of its list.
  """
  if not (train.categorical and other.categorical) or not other.tot_values:
    return [], 0.0
  train_values = {v for v, _ in train.counts}
  floor = 0.0
  if not train.counts_complete and train.counts:
    floor = 4 * min(c for _, c in train.counts) + 10
  new, mass = [], 0.0
  for value, count in other.counts:
    if value in train_values:
      continue
    if floor and count / other.tot_values * max(train.tot_values, 1) <= floor:
      continue
    new.append(value)
    mass += count
  return sorted(new), mass / other.tot_values


def frequency(summary: FeatureSummary, value: Any) -> float:
  """Fraction of a split's values equal to `value` (numeric: bounded above by its histogram bucket)."""
  if summary.categorical:
    total = summary.tot_values or 1
    for v, c in summary.counts:
      if v == value:
        return c / total
    return min((c for _, c in summary.counts), default=0.0) / total if not summary.counts_complete else 0.0
  if summary.numeric:
    total = summary.tot_values or 1
    if value == 0:
      return summary.num_zeros / total
    if summary.min <= value <= summary.max:
      in_bucket = [c for lo, hi, c in summary.histogram if lo <= value <= hi]
      return max(in_bucket, default=total) / total
  return 0.0


def constant_value(summary: FeatureSummary) -> Any:
  if summary.numeric:
    return summary.min
  return summary.counts[0][0] if summary.counts else None
