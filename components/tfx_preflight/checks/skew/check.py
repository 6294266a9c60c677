"""Train/eval skew: TFDV statistics per split, TFDV's own distribution comparators, and a diagnosis a human can act on.

The distances come from `tfdv.validate_statistics(eval, schema, previous_statistics=train)`, the call TFX's
DistributionValidator makes between two splits: Jensen-Shannon divergence for numeric features, L-infinity distance
for categorical ones, thresholds from the schema's `skew_comparator` (else `drift_comparator`) when it sets one, the
SkewConfig defaults otherwise, and the schema's example-count comparator when present. `skew_diagnosis` then says why
a feature differs (rescaled, standardized, zeroed, missing, other list length...).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from tfx_preflight import constants
from tfx_preflight.checks.skew import diagnosis as diag
from tfx_preflight.checks.skew.details import SkewDetails
from tfx_preflight.config import SkewConfig
from tfx_preflight.constants import Severity, Status
from tfx_preflight.inputs import statistics as statistics_lib
from tfx_preflight.inputs.statistics import StatisticsBySplit
from tfx_preflight.report.results import CheckResult, Finding, status_for

JSD = 'jensen_shannon_divergence'
# Fewer examples than this in train or an eval split: that comparison is not checked (the distance between one value
# and another says nothing about two distributions, and would block with confidence).
MIN_EXAMPLES_TO_COMPARE = 10
L_INFINITY = 'l_infinity'
_METRICS = {anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: JSD,
            anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: L_INFINITY}
_EXAMPLE_COUNT_ANOMALIES = (anomalies_pb2.AnomalyInfo.COMPARATOR_LOW_NUM_EXAMPLES,
                            anomalies_pb2.AnomalyInfo.COMPARATOR_HIGH_NUM_EXAMPLES)
# A JSD comparator that does not pin a histogram is evaluated on both histograms TFDV keeps and the smaller distance
# wins: equal-width buckets jump when an outlier stretches one split's range, quantile buckets when point masses tie.
_HISTOGRAM_SOURCES = (schema_pb2.HistogramSelection.STANDARD, schema_pb2.HistogramSelection.QUANTILES)


# ---------------------------------------------------------------------------------------------------------------
# TFDV comparison.


def _has_comparator(comparator: schema_pb2.FeatureComparator) -> bool:
  return bool(comparator.ListFields())


def _is_categorical(feature: schema_pb2.Feature) -> bool:
  return feature.type == schema_pb2.BYTES or (feature.HasField('int_domain') and feature.int_domain.is_categorical)


def comparison_schema(train: statistics_pb2.DatasetFeatureStatisticsList, schema: Optional[schema_pb2.Schema],
                      config: SkewConfig, source: int) -> Tuple[schema_pb2.Schema, Dict[str, str]]:
  """A schema with one drift comparator per compared feature, and where each feature's threshold came from.

  Features are those of the train statistics (a user schema may list fewer). A user comparator is copied as is,
  `skew_comparator` first (train vs eval is the train vs serving question), `drift_comparator` otherwise.
  """
  effective = statistics_lib.tfdv().infer_schema(train, infer_feature_shape=False)
  user = {f.name: f for f in schema.feature} if schema is not None else {}
  if schema is not None and schema.dataset_constraints.HasField('num_examples_drift_comparator'):
    effective.dataset_constraints.num_examples_drift_comparator.CopyFrom(
        schema.dataset_constraints.num_examples_drift_comparator)
  # TFDV can only take a divergence of histograms; features without one (no values, e.g. empty in almost every row)
  # are reported under `not_compared` instead of triggering TFDV warnings.
  with_histogram = {diag.feature_name(f) for f in train.datasets[0].features if f.num_stats.histograms}
  origins = {}
  for feature in effective.feature:
    if feature.name in config.exclude_features:
      continue
    given = user.get(feature.name)
    if given is not None and given.HasField('int_domain') and given.int_domain.is_categorical:
      feature.int_domain.is_categorical = True
    if given is not None and _has_comparator(given.skew_comparator):
      feature.drift_comparator.CopyFrom(given.skew_comparator)
      origins[feature.name] = 'schema.skew_comparator'
    elif given is not None and _has_comparator(given.drift_comparator):
      feature.drift_comparator.CopyFrom(given.drift_comparator)
      origins[feature.name] = 'schema.drift_comparator'
    elif _is_categorical(feature):
      feature.drift_comparator.infinity_norm.threshold = config.categorical_threshold
      origins[feature.name] = 'config.categorical_threshold'
    elif feature.name in with_histogram:
      feature.drift_comparator.jensen_shannon_divergence.threshold = config.numeric_threshold
      origins[feature.name] = 'config.numeric_threshold'
    jsd = feature.drift_comparator.jensen_shannon_divergence
    if feature.drift_comparator.HasField('jensen_shannon_divergence') and not jsd.HasField('source'):
      jsd.source.type = source
  return effective, origins


def _finite_histograms(statistics: statistics_pb2.DatasetFeatureStatisticsList
                       ) -> statistics_pb2.DatasetFeatureStatisticsList:
  """A copy without infinite-bound buckets and NaN counts: TFDV counts those as divergent mass, so identical splits
  holding +-Inf or NaN would otherwise score a large distance (missing/odd values are diagnosed separately)."""
  result = statistics_pb2.DatasetFeatureStatisticsList()
  result.CopyFrom(statistics)
  for dataset in result.datasets:
    for feature in dataset.features:
      if feature.HasField('num_stats'):
        for histogram in feature.num_stats.histograms:
          kept = [b for b in histogram.buckets if math.isfinite(b.low_value) and math.isfinite(b.high_value)]
          del histogram.buckets[:]
          histogram.buckets.extend(kept)
          histogram.num_nan = 0
  return result


# TFDV's validation time grows with the square of the number of features (5,000 features: 30 s per call, 100:
# 0.02 s), so features are validated in chunks of this many; each comparator only looks at its own feature.
FEATURES_PER_VALIDATION = 100


def _chunked(statistics: statistics_pb2.DatasetFeatureStatisticsList,
             chunks: Sequence[Sequence[str]]) -> List[statistics_pb2.DatasetFeatureStatisticsList]:
  """The whole-dataset statistics restricted to each chunk of feature names (dataset counts kept)."""
  dataset = statistics.datasets[0]
  by_name = {diag.feature_name(f): f for f in dataset.features}
  result = []
  for names in chunks:
    subset = statistics_pb2.DatasetFeatureStatisticsList()
    chunk = subset.datasets.add(name=dataset.name, num_examples=dataset.num_examples,
                                weighted_num_examples=dataset.weighted_num_examples)
    chunk.features.extend(by_name[n] for n in names if n in by_name)
    result.append(subset)
  return result


def tfdv_comparison(train: statistics_pb2.DatasetFeatureStatisticsList,
                    other: statistics_pb2.DatasetFeatureStatisticsList, schema: Optional[schema_pb2.Schema],
                    config: SkewConfig) -> Tuple[Dict[str, Dict[str, Any]], List[anomalies_pb2.AnomalyInfo.Reason]]:
  """feature -> {metric, distance, threshold, threshold_source} from TFDV, and its example-count anomalies."""
  tfdv = statistics_lib.tfdv()
  train, other = _finite_histograms(train), _finite_histograms(other)
  distances: Dict[str, Dict[str, Any]] = {}
  example_count: List[anomalies_pb2.AnomalyInfo.Reason] = []
  names = sorted({diag.feature_name(f) for s in (train, other) for f in s.datasets[0].features})
  chunks = [names[i:i + FEATURES_PER_VALIDATION] for i in range(0, len(names), FEATURES_PER_VALIDATION)] or [[]]
  chunks = list(zip(_chunked(train, chunks), _chunked(other, chunks)))
  for i, (source, (train_chunk, other_chunk)) in enumerate(
      (source, chunk) for source in _HISTOGRAM_SOURCES for chunk in chunks):
    effective, origins = comparison_schema(train_chunk, schema, config, source)
    anomalies = tfdv.validate_statistics(other_chunk, effective, previous_statistics=train_chunk)
    for info in anomalies.drift_skew_info:
      name = '.'.join(info.path.step)
      for measurement in info.drift_measurements:
        metric = _METRICS.get(measurement.type)
        if metric is None:
          continue
        known = distances.get(name)
        if known is None or (known['metric'] == metric and measurement.value < known['distance']):
          distances[name] = {'metric': metric, 'distance': measurement.value, 'threshold': measurement.threshold,
                             'threshold_source': origins.get(name, 'schema')}
    if i == 0:
      example_count = [r for r in anomalies.dataset_anomaly_info.reason if r.type in _EXAMPLE_COUNT_ANOMALIES]
  return distances, example_count


# ---------------------------------------------------------------------------------------------------------------
# The check.


# TFDV's label for every string value that is not valid UTF-8 (its top-k generator; see top_k_uniques_stats_generator).
TFDV_BYTES_VALUE = '__BYTES_VALUE__'
# Mean value length (bytes) above which undecodable strings are binary data (images), not text in another encoding.
MAX_TEXT_LENGTH = 256


# The likely cause when the label itself differs in kind between splits (constant, classes missing, ranges apart).
SORTED_BY_LABEL = ('the file looks sorted by the label and was split without shuffling (shuffle it before splitting, '
                   'or split by hash as ExampleGen does)')
# Share of one split's labels that must lie outside the other's classes or range for a row-order split to be named.
SORTED_LABEL_MIN_SHARE = 0.1


def sorted_label_signature(train: Optional[diag.FeatureSummary], other: Optional[diag.FeatureSummary],
                           train_split: str, other_split: str) -> Optional[str]:
  """What shows that the two splits hold different labels, not a sample of the same ones: the label constant in one
  split only, classes of one split missing from the other, or a sizeable share of one split's labels outside the
  other's range; each beyond what chance gives for the split sizes. None when there is no such sign."""
  if not (train and other and train.present and other.present):
    return None
  for const_split, const, var in ((other_split, other, train), (train_split, train, other)):
    if const.constant and not var.constant:
      value = diag.constant_value(const)
      p = diag.frequency(var, value)
      if (math.exp(const.present * math.log(p)) if p > 0 else 0.0) < diag.IMPLAUSIBLE:
        return f'the label is always {value!r} in {const_split}'
  for a_split, a, b_split, b in ((train_split, train, other_split, other), (other_split, other, train_split, train)):
    share, what = _share_outside(a, b, b_split)
    if share >= SORTED_LABEL_MIN_SHARE and diag.chance_all_absent(share, b.present) < diag.IMPLAUSIBLE:
      return f'{share:.0%} of {a_split} labels are {what}'
  return None


def _share_outside(a: diag.FeatureSummary, b: diag.FeatureSummary, b_split: str) -> Tuple[float, str]:
  """(share of `a`'s values that `b` never has, where they are): classes missing from b, or beyond b's range."""
  if a.categorical and b.categorical and b.counts_complete and a.tot_values:
    present = {v for v, _ in b.counts}
    missing = sorted(str(v) for v, _ in a.counts if v not in present)
    share = sum(c for v, c in a.counts if v not in present) / a.tot_values
    return share, f'in classes {b_split} never has ({", ".join(missing[:5])})'
  if a.numeric and b.numeric and a.deciles and None not in (b.min, b.max):
    discrete = diag.is_discrete(a)
    below = diag.cdf_bounds(a, b.min, discrete)[0]
    above = 1 - diag.cdf_bounds(a, b.max, discrete)[1]
    return max(below, above), f'outside the range of {b_split} labels ({b.min:.6g} to {b.max:.6g})'
  return 0.0, ''


class _FeatureComparison:
  """Builds the findings of one feature between train and one eval split."""

  def __init__(self, name: str, train: Optional[diag.FeatureSummary], other: Optional[diag.FeatureSummary],
               train_split: str, other_split: str, num_examples: Tuple[int, int], distance: Optional[Finding],
               config: SkewConfig, label_key: Optional[str], sorted_label: Optional[str] = None):
    self.name, self.train, self.other = name, train, other
    self.n_train, self.n_other = num_examples
    self.train_split, self.other_split = train_split, other_split
    self.distance, self.config, self.label_key = distance, config, label_key
    # What shows the splits hold different labels (`sorted_label_signature`), with its likely cause; None otherwise.
    self.label_context = f'{sorted_label}: {SORTED_BY_LABEL}' if sorted_label else None

  def finding(self, kind: str, severity: Severity, message: str, **extra: Any) -> Finding:
    numbers: Dict[str, Any] = {}
    if self.distance:
      numbers = {k: diag.round_number(v) if isinstance(v, float) else v for k, v in self.distance.items()}
    return Finding(constants.SKEW, kind, severity, message, feature=self.name,
                   details={'splits': [self.train_split, self.other_split],
                            'train': self.train.numbers() if self.train else None,
                            'eval': self.other.numbers() if self.other else None, **numbers, **extra})

  def findings(self) -> List[Finding]:
    missing = self._missing()
    if missing is not None:
      return missing
    t, o = self.train, self.other
    out = []
    if t.type != o.type:
      numbers = ('; from CSV this is often whole numbers written as "3.0" in one split and "3" in the other (pandas '
                 'writes a column with missing values as floats), which CsvExampleGen types per split: write one '
                 'number format in every split') if {t.type, o.type} == {'INT', 'FLOAT'} else ''
      out.append(self.finding('type_mismatch', Severity.BLOCK,
                              f'`{self.name}` is {t.type} in {self.train_split} but {o.type} in {self.other_split}: '
                              'the splits were written by different code; parsing both with one feature spec fails '
                              f'or casts{numbers}'))
      if not (t.numeric and o.numeric):  # INT vs FLOAT values still compare; strings vs numbers do not.
        return out
    out.extend(self._value_counts())
    specific = self._constant() or self._scale()
    if specific:
      out.append(specific)
    else:
      out.extend(self._shift())
    out.extend(self._new_categories())
    out.extend(self._undecodable_text())
    out.extend(self._missing_label() if self.name == self.label_key else self._missing_rate())
    out.extend(self._non_finite())
    return out

  def _missing_label(self) -> List[Finding]:
    """Examples without a label: Trainer's input_fn either fails on them or gives them its default value, and then
    the model trains and is scored on labels nobody wrote. Said whatever the rates (a default of 0 looks like a real
    class); a warning, because some pipelines mean it (unlabelled examples dropped by the input_fn)."""
    t, o = self.train, self.other
    if not (t.missing_rate or o.missing_rate):
      return []
    return [self.finding('label_missing', Severity.WARN,
                         f'label `{self.name}` is absent from {t.missing_rate:.1%} of {self.train_split} and '
                         f'{o.missing_rate:.1%} of {self.other_split} examples: an input_fn fails on them, or fills in '
                         'its default value and the model trains and is evaluated on labels nobody wrote; drop or '
                         'label them before the split',
                         missing_rate={self.train_split: diag.round_number(t.missing_rate),
                                       self.other_split: diag.round_number(o.missing_rate)})]

  def _missing(self) -> Optional[List[Finding]]:
    t, o = self.train, self.other
    t_present = t.present if t else 0
    o_present = o.present if o else 0
    if t_present and o_present:
      return None
    if not t_present and not o_present:
      return []
    if t_present:
      rate = t_present / t.num_examples
      chance = diag.chance_all_absent(rate, self.n_other)
      if chance >= diag.IMPLAUSIBLE:
        return []
      return [self.finding('missing_in_split', Severity.BLOCK,
                           f'`{self.name}` is in {rate:.0%} of {self.train_split} examples but in none of '
                           f'{self.other_split}: the feature was dropped, renamed or not exported in one split',
                           p_value=chance)]
    rate = o_present / o.num_examples
    chance = diag.chance_all_absent(rate, self.n_train)
    if chance >= diag.IMPLAUSIBLE:
      return []
    return [self.finding('missing_in_split', Severity.WARN,
                         f'`{self.name}` is in {rate:.0%} of {self.other_split} examples but in none of '
                         f'{self.train_split}: the model never sees it in training (renamed or added feature?)',
                         p_value=chance)]

  def _value_counts(self) -> List[Finding]:
    t, o = self.train, self.other
    if (t.min_values, t.max_values) == (o.min_values, o.max_values):
      return []
    fixed = t.min_values == t.max_values and o.min_values == o.max_values
    disjoint = t.max_values < o.min_values or o.max_values < t.min_values
    if fixed or disjoint:
      what = (f'{t.max_values} values per example in {self.train_split} but {o.max_values} in {self.other_split}'
              if fixed else f'{t.min_values}-{t.max_values} values per example in {self.train_split} but '
              f'{o.min_values}-{o.max_values} in {self.other_split}')
      return [self.finding('value_count_mismatch', Severity.BLOCK,
                           f'`{self.name}` has {what}: a different shape (e.g. images flattened at another size or '
                           'channel count) in one split')]
    ratio = o.avg_values / t.avg_values if t.avg_values else math.inf
    if not 0.5 <= ratio <= 2:
      return [self.finding('value_count_mismatch', Severity.WARN,
                           f'`{self.name}` has {t.avg_values:.3g} values per example on average in {self.train_split} '
                           f'but {o.avg_values:.3g} in {self.other_split}: lists were built differently in each split')]
    return []

  def _constant(self) -> Optional[Finding]:
    for const_split, const, var_split, var in ((self.other_split, self.other, self.train_split, self.train),
                                               (self.train_split, self.train, self.other_split, self.other)):
      if not const.constant or var.constant:
        continue
      value = diag.constant_value(const)
      p = diag.frequency(var, value)
      chance = math.exp(const.present * math.log(p)) if p > 0 else 0.0
      if chance >= diag.IMPLAUSIBLE:
        continue
      what = 'all zeros' if value == 0 else f'always {value!r}'
      if self.name == self.label_key:
        why = f'it is the label: {SORTED_BY_LABEL}'
        subject = f'label `{self.name}`'
      else:
        subject = f'`{self.name}`'
        why = (f'the splits hold different labels ({self.label_context}), and this feature follows the label'
               if self.label_context else
               'the feature was zeroed, filled with a default or broken by preprocessing in one split')
      return self.finding('constant_in_split', Severity.BLOCK, f'{subject} is {what} in {const_split} but varies in '
                          f'{var_split}: {why}', constant_value=value, p_value=chance)
    return None

  def _scale(self) -> Optional[Finding]:
    if self.label_context and self.name != self.label_key:
      return None  # Features move with the label when the splits hold different labels: not a normalization.
    found = diag.diagnose_scale(self.train, self.other, self.other_split, self.train_split)
    if not found:
      return None
    message, numbers = found
    if numbers.get('scale_evidence') not in ('deciles', 'standardized') and self._ranges_disjoint():
      return None  # Ranges that do not overlap: an ID, row order or timestamp the split was cut by (`_shift` says so).
    p_value = diag.quantile_shift_p(self.train, self.other)
    if p_value >= diag.IMPLAUSIBLE ** 0.5:  # Deciles of heavy tails in small splits swing 2x by chance.
      return None
    return self.finding('scale_mismatch', Severity.BLOCK, message, **numbers, p_value=p_value)

  def _shift(self) -> List[Finding]:
    t, o = self.train, self.other
    # Standard error of a standardized difference for these split sizes: tiny splits (150-row iris) move a lot.
    # min_effect_size 0 turns both confirmations off: TFDV's verdict alone, as DistributionValidator gives it.
    standard_error = math.sqrt(1 / t.present + 1 / o.present)
    noise = diag.NOISE_Z * standard_error if self.config.min_effect_size > 0 else 0.0
    if t.numeric and o.numeric:
      found = self._numeric_shift(standard_error, noise)
    else:
      found = self._categorical_shift(noise)
    if found is None:
      return []
    detail, extra = found
    if self.name == self.label_key:
      why = self.label_context or ('class balance or label definition differs between splits, so eval metrics do '
                                   'not measure the training task')
      return [self.finding('label_shift', Severity.BLOCK,
                           f'label `{self.name}` is distributed differently in {self.train_split} and '
                           f'{self.other_split} ({detail}): {why}', **extra)]
    why = (f'the splits hold different labels ({self.label_context}), and this feature moves with the label'
           if self.label_context else 'the splits do not come from the same data or preprocessing (time-based split, '
           'different source, filter or feature code)')
    return [self.finding('distribution_shift', Severity.BLOCK,
                         f'`{self.name}` is distributed differently in {self.train_split} and {self.other_split} '
                         f'({detail}): {why}{self._disjoint_ranges()}', **extra)]

  def _numeric_shift(self, standard_error: float, noise: float) -> Optional[Tuple[str, Dict[str, Any]]]:
    """Two ways a numeric feature has shifted: TFDV's divergence over its threshold, confirmed by a robust effect size
    beyond sampling noise; or, for a feature the schema sets no comparator for, the Kolmogorov-Smirnov distance read at
    the deciles over `numeric_ks_threshold` (order-aware: a shift of the bulk that histograms do not see), its
    p-value from the decile test."""
    d, t, o = self.distance, self.train, self.other
    over = bool(d) and d['distance'] > d['threshold']
    own_threshold = not d or str(d.get('threshold_source', '')).startswith('config')
    if not (over or own_threshold and self.config.numeric_ks_threshold < 1):
      return None
    ks = diag.ks_distance(t, o)
    ks_over = own_threshold and ks > self.config.numeric_ks_threshold
    effect = diag.effect_size(t, o, ks)
    confirmed = over and effect >= max(self.config.min_effect_size, noise)
    if not (confirmed or ks_over):
      return None
    extra: Dict[str, Any] = {'effect_size': diag.round_number(effect) if math.isfinite(effect) else None,
                             'ks_distance': diag.round_number(ks)}
    p_values = []
    if confirmed and noise:
      p_values.append(diag.two_sided_p(effect / standard_error))
    if ks_over:
      extra['ks_threshold'] = self.config.numeric_ks_threshold
      p_values.append(diag.quantile_shift_p(t, o))
    if p_values:
      extra['p_value'] = min(p_values)
    parts = []
    if d:
      parts.append(f'Jensen-Shannon divergence {_over(d)}' if over else
                   f'Jensen-Shannon divergence {d["distance"]:.3g}, under its threshold {d["threshold"]:.3g}')
    if ks_over:
      parts.append(f'Kolmogorov-Smirnov distance {ks:.3g} > {self.config.numeric_ks_threshold:g} at the deciles: the '
                   f'share of values below a decile differs by {ks:.0%}')
    parts.append(f'median {_median(t):.4g} vs {_median(o):.4g}, q10-q90 {t.deciles[0]:.4g}-{t.deciles[-1]:.4g} vs '
                 f'{o.deciles[0]:.4g}-{o.deciles[-1]:.4g}' if t.deciles and o.deciles else
                 f'mean {t.mean:.4g} vs {o.mean:.4g}, std {t.std:.4g} vs {o.std:.4g}')
    offset = None if self.label_context else diag.decile_offset(t, o)
    if offset is not None:
      parts.append(f'every decile moved by about {offset:+.4g}: a constant offset in one split (time zone, origin, '
                   'baseline)')
    return '; '.join(parts), extra

  def _categorical_shift(self, noise: float) -> Optional[Tuple[str, Dict[str, Any]]]:
    d, t, o = self.distance, self.train, self.other
    if not d or not d['distance'] > d['threshold']:
      return None
    extra: Dict[str, Any] = {}
    if d['metric'] == JSD:  # A distance over histograms of features not both numeric (INT vs bytes...).
      effect = diag.effect_size(t, o)
      if effect < max(self.config.min_effect_size, noise):
        return None
      return f'Jensen-Shannon divergence {_over(d)}', extra
    detail = f'L-infinity distance of category frequencies {_over(d)}'
    moved = _most_changed_category(t, o)
    if moved:
      value, f_train, f_other = moved
      pooled = (f_train * t.present + f_other * o.present) / (t.present + o.present)
      if abs(f_train - f_other) < math.sqrt(pooled * (1 - pooled)) * noise:
        return None  # Within NOISE_Z standard errors of that category's share for these split sizes.
      if noise:
        extra['p_value'] = diag.two_sided_p(diag.two_proportion_z(f_train * t.present, t.present,
                                                                  f_other * o.present, o.present))
      detail += f'; {value!r} is {f_train:.1%} of {self.train_split} and {f_other:.1%} of {self.other_split}'
    return detail, extra

  def _ranges_disjoint(self) -> bool:
    t, o = self.train, self.other
    return bool(t.numeric and o.numeric and None not in (t.min, t.max, o.min, o.max)
                and (t.max < o.min or o.max < t.min))

  def _disjoint_ranges(self) -> str:
    """Value ranges that do not overlap at all are the signature of a row number, ID or timestamp in a split made
    by it (or by time): say so, with the setting that leaves an identifier out."""
    t, o = self.train, self.other
    if not self._ranges_disjoint():
      return ''
    return (f'; the value ranges do not overlap ({self.train_split} {t.min:.10g} to {t.max:.10g}, {self.other_split} '
            f'{o.min:.10g} to {o.max:.10g}): an ID, row number or timestamp the splits were cut by? Leave identifiers '
            'out with exclude_features')

  def _undecodable_text(self) -> List[Finding]:
    """TFDV counts every string value that is not valid UTF-8 as one value, '__BYTES_VALUE__': Latin-1 text (short
    values) then compares as one category, so 'Koeln' in train turning into 'Muenchen' in eval moves no distance.
    Said instead of passed. Binary values (encoded images: long, or nearly all distinct) are not categories and are
    left alone."""
    t, o = self.train, self.other
    if not (t.categorical and o.categorical) or max(t.avg_length, o.avg_length) > MAX_TEXT_LENGTH:
      return []
    if max(t.unique / max(t.tot_values, 1), o.unique / max(o.tot_values, 1)) > 0.5:
      return []  # Mostly distinct values (small encoded images, IDs): not categories TFDV's distance compares.
    # Each distinct undecodable value is its own bucket, all under the one label.
    shares = [sum(c for v, c in s.counts if v == TFDV_BYTES_VALUE) / max(s.tot_values, 1) for s in (t, o)]
    if not any(shares):
      return []
    return [self.finding('undecodable_values', Severity.WARN,
                         f'{shares[0]:.0%} of `{self.name}` values in {self.train_split} and {shares[1]:.0%} in '
                         f'{self.other_split} are not valid UTF-8: TFDV counts them all as one value '
                         f'({TFDV_BYTES_VALUE}), so the skew check cannot see how they changed. Text in another '
                         'encoding (Latin-1?): write it as UTF-8.', undecodable_share=[diag.round_number(x)
                                                                                      for x in shares])]

  def _new_categories(self) -> List[Finding]:
    values, mass = diag.new_categories(self.train, self.other)
    if not values or mass < self.config.new_category_threshold:
      return []
    chance = diag.chance_all_absent(mass, self.train.tot_values)
    if chance >= diag.IMPLAUSIBLE:
      return []
    # Rare categories are often missing from one split by chance. Given a category's count in both splits together,
    # the chance that every occurrence fell in this split is share^count: judge the most frequent new category,
    # Bonferroni over all categories.
    share = self.other.tot_values / (self.other.tot_values + self.train.tot_values)
    top = max((c for v, c in self.other.counts if v in set(values)), default=0)
    chance = min(1.0, (len(self.train.counts) + len(values)) * share ** top)
    if chance >= diag.IMPLAUSIBLE ** 0.5:
      return []
    shown = ', '.join(repr(v) for v in values[:5]) + (', ...' if len(values) > 5 else '')
    return [self.finding('new_categories', Severity.WARN,
                         f'{mass:.1%} of `{self.name}` values in {self.other_split} are categories {self.train_split} '
                         f'never has ({shown}): a vocabulary built on train will map them to OOV',
                         new_category_fraction=diag.round_number(mass), new_categories=values[:20],
                         new_category_count=len(values), p_value=chance)]

  def _missing_rate(self) -> List[Finding]:
    t, o = self.train, self.other
    diff = abs(t.missing_rate - o.missing_rate)
    z = diag.missing_rate_z(t, o)
    if diff < self.config.missing_rate_threshold or z < diag.MISSING_RATE_Z:
      return []
    return [self.finding('missing_rate_mismatch', Severity.WARN,
                         f'`{self.name}` is missing in {t.missing_rate:.1%} of {self.train_split} examples but '
                         f'{o.missing_rate:.1%} of {self.other_split}: missing values are produced or imputed '
                         'differently in each split', missing_rate_difference=diag.round_number(diff),
                         p_value=diag.two_sided_p(z))]

  def _non_finite(self) -> List[Finding]:
    """NaN / +Inf / -Inf rates (of the feature's values) that differ between splits beyond sampling noise; any
    non-finite label blocks (a NaN label makes the loss and every eval metric NaN)."""
    t, o = self.train, self.other
    t_rates, o_rates = t.non_finite_rates(), o.non_finite_rates()
    shown = ', '.join(f'{kind} {t_rates[kind]:.1%} vs {o_rates[kind]:.1%}' for kind in t_rates
                      if t_rates[kind] or o_rates[kind])
    numbers = {'non_finite_rates': {self.train_split: {k: diag.round_number(v) for k, v in t_rates.items()},
                                    self.other_split: {k: diag.round_number(v) for k, v in o_rates.items()}}}
    if self.name == self.label_key and (any(t_rates.values()) or any(o_rates.values())):
      return [self.finding('non_finite_label', Severity.BLOCK,
                           f'label `{self.name}` has non-finite values ({self.train_split} vs {self.other_split}: '
                           f'{shown}): the loss and eval metrics of those examples are NaN or infinite', **numbers)]
    t_counts, o_counts = t.non_finite(), o.non_finite()
    z = max(diag.two_proportion_z(t_counts[k], t.tot_values, o_counts[k], o.tot_values) for k in t_counts)
    if z < diag.NOISE_Z:
      return []
    return [self.finding('non_finite_rate_mismatch', Severity.BLOCK,
                         f'`{self.name}` has non-finite values at different rates ({self.train_split} vs '
                         f'{self.other_split}: {shown}): NaN/Inf are produced (division by zero, log of 0, failed '
                         'parsing) or filtered differently in each split', **numbers,
                         p_value=min(1.0, 3 * diag.two_sided_p(z)))]


def _over(comparison: Mapping[str, Any]) -> str:
  """'0.1002 > 0.1': with as many significant digits as it takes for the distance to read as over its threshold
  (three digits made a distance of 0.100195 read '0.1 > 0.1')."""
  distance, threshold = comparison['distance'], comparison['threshold']
  for digits in range(3, 10):
    if float(f'{distance:.{digits}g}') > float(f'{threshold:.{digits}g}'):
      return f'{distance:.{digits}g} > {threshold:.{digits}g}'
  return f'{distance!r} > {threshold!r}'


def _median(summary: diag.FeatureSummary) -> float:
  deciles = summary.deciles
  return deciles[len(deciles) // 2] if deciles else summary.mean


def _most_changed_category(train: diag.FeatureSummary, other: diag.FeatureSummary
                           ) -> Optional[Tuple[str, float, float]]:
  if not (train.categorical and other.categorical and train.tot_values and other.tot_values):
    return None
  f_train = {v: c / train.tot_values for v, c in train.counts}
  f_other = {v: c / other.tot_values for v, c in other.counts}
  values = sorted(set(f_train) | set(f_other))
  if not values:
    return None
  value = max(values, key=lambda v: abs(f_train.get(v, 0) - f_other.get(v, 0)))
  return value, f_train.get(value, 0.0), f_other.get(value, 0.0)


def _example_count_findings(reasons: Sequence[anomalies_pb2.AnomalyInfo.Reason],
                            train: statistics_pb2.DatasetFeatureStatistics,
                            other: statistics_pb2.DatasetFeatureStatistics, train_split: str, other_split: str,
                            schema: schema_pb2.Schema) -> List[Finding]:
  comparator = schema.dataset_constraints.num_examples_drift_comparator
  out = []
  for reason in reasons:
    ratio = other.num_examples / train.num_examples
    out.append(Finding(
        constants.SKEW, 'example_count', Severity.BLOCK,
        f'{other_split} has {other.num_examples} examples, {ratio:.3g}x the {train.num_examples} of '
        f'{train_split}, outside the schema\'s example-count comparator ({reason.description}): a split lost or '
        'gained data (failed shard, filter, wrong split ratio)',
        details={'splits': [train_split, other_split], 'train': {'num_examples': train.num_examples},
                 'eval': {'num_examples': other.num_examples}, 'ratio': diag.round_number(ratio),
                 'min_fraction_threshold': comparator.min_fraction_threshold or None,
                 'max_fraction_threshold': comparator.max_fraction_threshold or None}))
  return out


# Statistical tests run per feature and split pair (shift by effect size, shift by the decile test, missing, constant,
# new categories, missing rate, non-finite rate): the size of the family whose false-discovery rate is controlled.
TESTS_PER_FEATURE = 7
# Withheld findings listed in the report (the closest calls first); the count covers all of them.
MAX_WITHHELD_SHOWN = 50


def _p_value(value: float) -> float:
  """A p-value as the report shows it: 3 significant digits."""
  return float(f'{value:.3g}')


def sorted_findings(findings: Sequence[Finding]) -> List[Finding]:
  """Deterministic order: block before warn, then split pair, feature, kind."""
  return sorted(findings, key=lambda f: (-constants.STATUS_RANK[f.severity], f.details['splits'], str(f.feature or ''),
                                         f.code))


def control_false_discoveries(findings: Sequence[Finding], num_features: int,
                              rate: float) -> Tuple[List[Finding], List[Dict[str, Any]]]:
  """Keeps deterministic findings (no p_value: type, shape, scale, labels) and those statistical findings that are
  discoveries under Benjamini-Hochberg at `rate` over every test of this split pair; returns (kept, withheld) where
  withheld lists (feature, kind, p_value) of findings dropped as within the chance of thousands of tests."""
  statistical = [i for i, f in enumerate(findings) if f.details.get('p_value') is not None]
  significant = diag.benjamini_hochberg([findings[i].details['p_value'] for i in statistical], rate,
                                        num_features * TESTS_PER_FEATURE)
  dropped = {i for i, ok in zip(statistical, significant) if not ok}
  kept = []
  for i, f in enumerate(findings):
    if i in dropped:
      continue
    if 'p_value' in f.details:
      f = dataclasses.replace(f, details={**f.details, 'p_value': _p_value(f.details['p_value'])})
    kept.append(f)
  withheld = sorted(({'feature': findings[i].feature, 'kind': findings[i].code,
                      'p_value': _p_value(findings[i].details['p_value'])} for i in dropped),
                    key=lambda w: (w['p_value'], w['feature'], w['kind']))
  return kept, withheld


def feature_findings(names: Sequence[str], summaries: Tuple[Mapping[str, diag.FeatureSummary], ...],
                     splits: Tuple[str, str], num_examples: Tuple[int, int], distances: Mapping[str, Dict[str, Any]],
                     config: SkewConfig, label_key: Optional[str], sorted_label: Optional[str] = None
                     ) -> List[Finding]:
  """Every finding of features `names` between two summarized datasets (train first), before the false-discovery
  control: the one comparison of two distributions, used between splits and between the spans of a window."""
  findings: List[Finding] = []
  for name in names:
    comparison = _FeatureComparison(name, summaries[0].get(name), summaries[1].get(name), splits[0], splits[1],
                                    num_examples, distances.get(name), config, label_key, sorted_label)
    findings.extend(comparison.findings())
  return findings


def check_skew(statistics: StatisticsBySplit, train_split: str, eval_splits: Sequence[str], config: SkewConfig,
               schema: Optional[schema_pb2.Schema] = None, label_key: Optional[str] = None) -> CheckResult:
  """Compares every eval split with train.

  Returns a CheckResult: status, findings and details {'comparisons': {eval split: {feature: {metric, distance,
  threshold, threshold_source}}}, 'not_compared': {eval split: [features TFDV had no distance for]}, 'num_examples',
  'excluded_features', 'multiple_testing', 'compared'}. Findings carry the feature, the kind as code, and in details
  splits [train, eval], the numbers of both splits (`train`, `eval`: min/max/mean/std, missing rate, list
  lengths...), TFDV's distance and threshold when there is one; the message gives the probable cause. Raises
  ValueError when a split's statistics are missing or empty (the check fails closed, never 'pass').
  """
  train = statistics_lib.default_slice(statistics, train_split)
  train_list = statistics_lib.as_list(train)
  train_summary = diag.summarize(train)
  excluded = set(config.exclude_features)
  findings: List[Finding] = []
  comparisons: Dict[str, Dict[str, Any]] = {}
  # Features TFDV could not compare (no values in one split, or no comparator applies): said, never silently passed.
  not_compared: Dict[str, List[str]] = {}
  num_examples = {train_split: int(train.num_examples)}
  multiple_testing: Dict[str, Dict[str, Any]] = {}
  too_few: Dict[str, Dict[str, int]] = {}
  for other_split in eval_splits:
    other = statistics_lib.default_slice(statistics, other_split)
    num_examples[other_split] = int(other.num_examples)
    if min(int(train.num_examples), int(other.num_examples)) < MIN_EXAMPLES_TO_COMPARE:
      too_few[other_split] = {train_split: int(train.num_examples), other_split: int(other.num_examples)}
      continue  # One value per split gives a distance of 1 from nothing: no comparison, not a confident finding.
    other_summary = diag.summarize(other)
    distances, example_count = tfdv_comparison(train_list, statistics_lib.as_list(other), schema, config)
    comparisons[other_split] = {name: {k: diag.round_number(v) if isinstance(v, float) else v for k, v in d.items()}
                                for name, d in sorted(distances.items()) if name not in excluded}
    names = sorted((set(train_summary) | set(other_summary)) - excluded)
    not_compared[other_split] = [name for name in names if name not in distances]
    sorted_label = sorted_label_signature(train_summary.get(label_key), other_summary.get(label_key), train_split,
                                          other_split) if label_key else None
    pair_findings = feature_findings(names, (train_summary, other_summary), (train_split, other_split),
                                     (int(train.num_examples), int(other.num_examples)), distances, config,
                                     label_key, sorted_label)
    kept, withheld = control_false_discoveries(pair_findings, len(names), config.false_discovery_rate)
    findings.extend(kept)
    multiple_testing[other_split] = {'method': 'benjamini-hochberg', 'false_discovery_rate': config.false_discovery_rate,
                                     'tests': len(names) * TESTS_PER_FEATURE, 'withheld_count': len(withheld),
                                     'withheld_findings': withheld[:MAX_WITHHELD_SHOWN]}
    findings.extend(_example_count_findings(example_count, train, other, train_split, other_split,
                                            schema or schema_pb2.Schema()))
  findings = sorted_findings(findings)
  too_few_examples = {'minimum': MIN_EXAMPLES_TO_COMPARE, 'splits': too_few} if too_few else None
  details = SkewDetails(comparisons, not_compared, num_examples, sorted(excluded), multiple_testing,
                        compared_features(statistics, train_split, comparisons, findings), too_few_examples)
  status = status_for(findings, config.mode)
  if too_few and status == Status.PASS:
    return CheckResult(Status.NOT_CHECKED, tuple(findings), reason=_too_few_reason(too_few), details=details)
  return CheckResult(status, tuple(findings), details=details)


def _too_few_reason(too_few: Mapping[str, Mapping[str, int]]) -> str:
  pairs = '; '.join(' vs '.join(f'{split} {n} example{"s" if n != 1 else ""}' for split, n in counts.items())
                    for counts in too_few.values())
  return (f'too few examples to compare ({pairs}); a distribution needs at least {MIN_EXAMPLES_TO_COMPARE} '
          'examples in each split')


def compared_features(statistics: StatisticsBySplit, train_split: str, comparisons: Mapping[str, Mapping[str, Any]],
                      findings: Sequence[Finding]) -> List[Dict[str, Any]]:
  """Every TFDV comparison as one row {split, feature, metric, distance, threshold, ratio, effect_size, status},
  nearest its threshold first, so a passing report shows how close it came. `status` is the worst finding of that
  feature and split, else 'pass', or 'within_noise' for a distance over its threshold that the effect-size and
  sampling-noise confirmations did not turn into a finding."""
  summaries = {s: diag.summarize(statistics_lib.default_slice(statistics, s))
               for s in sorted({train_split, *comparisons})}
  worst: Dict[Tuple[Any, Any], str] = {}
  for f in findings:
    key = (f.feature, (f.details.get('splits') or [None])[-1])
    if worst.get(key) != Severity.BLOCK:
      worst[key] = f.severity
  rows = []
  for split, features in sorted(comparisons.items()):
    for name, c in sorted(features.items()):
      t, o = summaries[train_split].get(name), summaries[split].get(name)
      effect = diag.effect_size(t, o) if t and o and t.numeric and o.numeric else math.nan
      ratio = c['distance'] / c['threshold'] if c['threshold'] else math.inf
      rows.append({'split': split, 'feature': name, 'metric': c['metric'], 'distance': c['distance'],
                   'threshold': c['threshold'], 'ratio': diag.round_number(ratio) if math.isfinite(ratio) else None,
                   'effect_size': diag.round_number(effect) if math.isfinite(effect) else None,
                   'status': worst.get((name, split)) or (Status.PASS if not c['distance'] > c['threshold'] else
                                                         'within_noise')})
  return sorted(rows, key=lambda r: (-(math.inf if r['ratio'] is None else r['ratio']), r['split'], r['feature']))

