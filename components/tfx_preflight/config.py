"""Typed configuration of the Preflight gate, validated and JSON-encoded in one place.

The component carries its whole configuration as one JSON string parameter (TFX parameters are primitives); the CLI
builds the same object from flags. Every value is checked here, once, with a message that names the bad setting, so
a mistyped mode fails when the pipeline is built rather than after an hour of Beam work.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

MODES = ('block', 'warn', 'off')


class ConfigError(ValueError):
  """A configuration value is invalid; the message names the setting and the value."""


def _check_mode(section: str, mode: str) -> None:
  if mode not in MODES:
    raise ConfigError(f'{section}.mode must be one of {", ".join(MODES)}. Got {mode!r} instead.')


# Upper bounds of settings whose absurd values would hang the run or overflow the OS call they feed.
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
MAX_MEMORY_LIMIT_MB = 1 << 24  # 16 TiB: setrlimit takes bytes; 1e30 MiB overflows it.


def _check_non_negative(section: str, name: str, value: float) -> None:
  """A finite number >= 0: NaN and Infinity are refused (an infinite threshold or budget silently disables a check
  or hangs the run)."""
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
    raise ConfigError(f'{section}.{name} must be a finite non-negative number. Got {value!r} instead.')


def _check_at_most(section: str, name: str, value: float, limit: float) -> None:
  if value > limit:
    raise ConfigError(f'{section}.{name} must be at most {limit:g}. Got {value!r} instead.')


def _check_non_negative_int(section: str, name: str, value: int) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < 0:
    raise ConfigError(f'{section}.{name} must be a non-negative integer. Got {value!r} instead.')


def _check_fraction(section: str, name: str, value: float) -> None:
  _check_non_negative(section, name, value)
  if value > 1:
    raise ConfigError(f'{section}.{name} is a fraction and must be in [0, 1]. Got {value!r} instead.')


def _check_distance_threshold(name: str, distance: str, value: float) -> None:
  _check_non_negative('skew', name, value)
  if value >= 1:
    raise ConfigError(f'skew.{name} is {distance}, which is at most 1, so it must be below 1 (a threshold of 1 or '
                      f'more never blocks; set skew.mode to "warn" or "off" instead). Got {value!r} instead.')


def _check_positive_int(section: str, name: str, value: int) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ConfigError(f'{section}.{name} must be a positive integer. Got {value!r} instead.')


def _check_image_shape(value: Any) -> None:
  if (isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or len(tuple(value)) not in (0, 2, 3)
      or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
      or (len(tuple(value)) == 3 and tuple(value)[2] not in (1, 3))):
    raise ConfigError('leakage.image_shape must be [] or [height, width] or [height, width, channels] with 1 or 3 '
                      f'channels, positive integers. Got {value!r} instead.')


def _check_names(section: str, name: str, value: Any, what: str = 'feature names') -> Tuple[str, ...]:
  """A list of non-empty strings; a bare string is refused, not split into its characters."""
  if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or not all(isinstance(v, str) and v
                                                                                     for v in value):
    raise ConfigError(f'{section}.{name} must be a list of {what}. Got {value!r} instead.')
  return tuple(value)


def _check_optional_name(section: str, name: str, value: Optional[str]) -> None:
  if value is not None and (not isinstance(value, str) or not value):
    raise ConfigError(f'{section}.{name} must be a non-empty string or None. Got {value!r} instead.')


@dataclasses.dataclass(frozen=True)
class SkewConfig:
  """Train/eval skew. Thresholds apply to features the schema gives no comparator for."""
  mode: str = 'block'
  # Jensen-Shannon divergence above which a numeric feature has shifted (TFDV's skew_comparator.jensen_shannon_divergence).
  numeric_threshold: float = 0.1
  # L-infinity distance of category frequencies above which a categorical feature has shifted.
  categorical_threshold: float = 0.1
  # Kolmogorov-Smirnov distance (read at both splits' deciles: the share of values that crossed a decile) above which
  # a numeric feature without a schema comparator has shifted, whatever its Jensen-Shannon divergence: it sees a shift
  # of the bulk (a time zone slip of +6 h: 0.2) that outliers and bucket edges hide from histograms. 1 turns it off.
  numeric_ks_threshold: float = 0.15
  # Features not compared at all (IDs, timestamps).
  exclude_features: Tuple[str, ...] = ()
  # A numeric distance over its threshold is reported only if the feature also moved by this much (the largest of the
  # Kolmogorov-Smirnov distance at the deciles, the median decile move / (q90-q10), |log| of the factor the deciles
  # agree on, the standardized mean difference: robust to heavy tails) and by more than 4 standard errors of sampling
  # noise for the split sizes (categorical: the most changed category's share); histogram summaries alone jump on
  # point masses and outliers in clean random splits. 0 reports every distance over its threshold, as TFDV does.
  min_effect_size: float = 0.15
  # Absolute difference of the fraction of examples missing a feature that is reported (when not sampling noise).
  missing_rate_threshold: float = 0.05
  # Fraction of an eval split's values falling in categories train never has that is reported.
  new_category_threshold: float = 0.01
  # Benjamini-Hochberg false-discovery rate over every statistical test of a split pair (features x tests): with
  # thousands of features some cross any fixed per-feature threshold by chance; on clean splits (every difference
  # noise) this is also the chance of a false block. See schemas/README.md.
  false_discovery_rate: float = 0.01

  def validate(self) -> None:
    _check_mode('skew', self.mode)
    # Both distances lie in [0, 1]: a threshold of 1 or more could never be crossed, so the check would pass anything.
    _check_distance_threshold('numeric_threshold', 'a Jensen-Shannon divergence', self.numeric_threshold)
    _check_distance_threshold('categorical_threshold', 'an L-infinity distance of frequencies',
                              self.categorical_threshold)
    _check_fraction('skew', 'numeric_ks_threshold', self.numeric_ks_threshold)
    object.__setattr__(self, 'exclude_features', _check_names('skew', 'exclude_features', self.exclude_features))
    _check_non_negative('skew', 'min_effect_size', self.min_effect_size)
    _check_fraction('skew', 'missing_rate_threshold', self.missing_rate_threshold)
    _check_fraction('skew', 'new_category_threshold', self.new_category_threshold)
    _check_fraction('skew', 'false_discovery_rate', self.false_discovery_rate)


@dataclasses.dataclass(frozen=True)
class LeakageConfig:
  """Train/eval leakage: exact and near duplicates across and within splits, and shared groups."""
  mode: str = 'block'
  # Features left out of the content hash (IDs, timestamps). The label is always left out.
  exclude_features: Tuple[str, ...] = ()
  # Fraction of an eval split leaked from train (copies beyond what chance explains, exact and near together) above
  # which the check warns (0: any leak beyond chance warns) / at or above which it blocks.
  warn_fraction: float = 0.0
  block_fraction: float = 0.01
  # Copies count as leakage only beyond chance: when a random split of data repeating itself as train does would give
  # as many with probability below duplicate_p_value, and at least min_duplicates eval examples repeat (eval copies
  # whose train twin has another label are label conflicts, reported, never counted).
  duplicate_p_value: float = 0.001
  min_duplicates: int = 3
  # At least min_duplicates copies, more than chance predicts, with a p-value below this but not below
  # duplicate_p_value (too few examples to prove them: a small eval set) warn instead of passing (0: never).
  duplicate_warn_p_value: float = 0.05
  # Also find near-duplicates (LSH candidates, each verified by its real distance), reported apart from exact ones and
  # counted toward the fractions. A pair is near when ints and short strings are equal and every feature group is
  # within its threshold:
  near_duplicates: bool = True
  # single-value float features: |a - b| <= near_column_tolerance * max(|a|, |b|) for every column;
  near_column_tolerance: float = 0.02
  # float lists (images, embeddings): 1 - cosine of the mean-centred lists at most this (0.005: ~5.7 degrees);
  near_vector_max_distance: float = 0.005
  # strings of at least near_text_min_tokens words: 1 - Jaccard of their word bigrams at most this, when near_text is
  # on (off by default: tokenizing every string costs more than the job's budget; strings are then compared exactly).
  near_text: bool = False
  near_text_max_distance: float = 0.5
  near_text_min_tokens: int = 4
  # A band bucket with more train x eval pairs than this is skipped (and reported) to bound work and memory.
  near_max_bucket_pairs: int = 100_000
  # Shape of image-like float lists, drawn as pictures (eval example beside its train near copy) in report.html, e.g.
  # [32, 32, 3]; empty: a list whose length is a square (grey) or 3 times one (RGB) is drawn as a square picture.
  image_shape: Tuple[int, ...] = ()
  # Entity key (e.g. user_id): report groups present in more than one split.
  group_key: Optional[str] = None
  # How many duplicate examples to show in the report per split pair.
  max_samples: int = 5
  # Hash shards of the cross-split join (each holds 1/num_shards of the hashes); 0: one per 32 MiB of input files.
  num_shards: int = 0

  def validate(self) -> None:
    _check_mode('leakage', self.mode)
    object.__setattr__(self, 'exclude_features', _check_names('leakage', 'exclude_features', self.exclude_features))
    _check_fraction('leakage', 'warn_fraction', self.warn_fraction)
    _check_fraction('leakage', 'block_fraction', self.block_fraction)
    if self.warn_fraction > self.block_fraction:
      raise ConfigError(f'leakage.warn_fraction ({self.warn_fraction}) must not exceed leakage.block_fraction '
                        f'({self.block_fraction}).')
    _check_fraction('leakage', 'duplicate_p_value', self.duplicate_p_value)
    _check_positive_int('leakage', 'min_duplicates', self.min_duplicates)
    _check_fraction('leakage', 'duplicate_warn_p_value', self.duplicate_warn_p_value)
    if not isinstance(self.near_duplicates, bool):
      raise ConfigError(f'leakage.near_duplicates must be true or false. Got {self.near_duplicates!r} instead.')
    if not isinstance(self.near_text, bool):
      raise ConfigError(f'leakage.near_text must be true or false. Got {self.near_text!r} instead.')
    _check_fraction('leakage', 'near_column_tolerance', self.near_column_tolerance)
    _check_fraction('leakage', 'near_vector_max_distance', self.near_vector_max_distance)
    _check_fraction('leakage', 'near_text_max_distance', self.near_text_max_distance)
    _check_positive_int('leakage', 'near_text_min_tokens', self.near_text_min_tokens)
    _check_positive_int('leakage', 'near_max_bucket_pairs', self.near_max_bucket_pairs)
    _check_image_shape(self.image_shape)
    object.__setattr__(self, 'image_shape', tuple(self.image_shape))
    _check_optional_name('leakage', 'group_key', self.group_key)
    _check_non_negative_int('leakage', 'max_samples', self.max_samples)
    if isinstance(self.num_shards, bool) or not isinstance(self.num_shards, int) or self.num_shards < 0:
      raise ConfigError(f'leakage.num_shards must be a non-negative integer (0: automatic). '
                        f'Got {self.num_shards!r} instead.')


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """The loss/evaluation-path check; runs the user's Trainer module in a subprocess."""
  mode: str = 'block'
  # Name of the model builder in module_file; default: TFX example conventions (_build_keras_model, ...).
  model_fn: Optional[str] = None
  # Name of the input function in module_file; default: input_fn or _input_fn.
  input_fn: Optional[str] = None
  # Name of a bare (y_true, y_pred) -> loss function to check when there is no model builder.
  loss_fn: Optional[str] = None
  # Wall-clock budget for the whole subprocess, in seconds.
  timeout_seconds: float = 120.0
  # Address-space cap of the subprocess, in MiB (0: no cap).
  memory_limit_mb: int = 0
  batch_size: int = 32
  # Most optimizer steps on one batch for the cannot_fit_batch probe (it stops once the loss fell, or on its time
  # budget: half of what is left of timeout_seconds).
  fit_steps: int = 30

  def validate(self) -> None:
    _check_mode('loss', self.mode)
    for name in ('model_fn', 'input_fn', 'loss_fn'):
      _check_optional_name('loss', name, getattr(self, name))
    _check_non_negative('loss', 'timeout_seconds', self.timeout_seconds)
    if self.timeout_seconds == 0:
      raise ConfigError('loss.timeout_seconds must be greater than 0. Got 0 instead.')
    _check_at_most('loss', 'timeout_seconds', self.timeout_seconds, MAX_TIMEOUT_SECONDS)
    _check_non_negative_int('loss', 'memory_limit_mb', self.memory_limit_mb)
    _check_at_most('loss', 'memory_limit_mb', self.memory_limit_mb, MAX_MEMORY_LIMIT_MB)
    _check_positive_int('loss', 'batch_size', self.batch_size)
    _check_positive_int('loss', 'fit_steps', self.fit_steps)


@dataclasses.dataclass(frozen=True)
class LabelProxyConfig:
  """Label proxies: a single feature that predicts the label on eval (fitted on train) far better than the baseline.

  Classification when the label is a string or a number with at most max_classes distinct values, else regression.
  """
  mode: str = 'block'
  # Features never scored (features available only after the outcome that the model will not get are fine to list).
  exclude_features: Tuple[str, ...] = ()
  # Block: eval accuracy at least block_accuracy while the majority-label baseline is at most max_baseline_accuracy
  # (classification), or eval R^2 at least block_r2 (regression).
  block_accuracy: float = 0.99
  max_baseline_accuracy: float = 0.9
  block_r2: float = 0.99
  # Warn: the strongest feature's skill ((acc - baseline) / (1 - baseline), or R^2) is at least dominant_skill and
  # exceeds every other feature's by at least dominant_margin.
  dominant_skill: float = 0.9
  dominant_margin: float = 0.5
  # Eval examples with a label needed before a score can block or warn.
  min_examples: int = 20
  # Numeric labels with more distinct values are scored as regression; string labels with more are not scored.
  max_classes: int = 50
  # Distinct values kept per feature before numeric values are coarsened and categorical ones folded.
  max_values: int = 10000
  # Features with longer lists (images, embeddings) are not scored.
  max_list_length: int = 16
  # A numeric feature's 1-D fit averages windows of about n_train / num_bins train examples.
  num_bins: int = 256
  # Pairs of features (a label computed from two columns): the k best single features (by skill and by mutual
  # information) with k(k-1)/2 <= max_pairs are paired; 0 turns the pair search off. Each pair is fitted on a
  # sample of at most pair_sample_rows train rows and scored on as many eval rows.
  max_pairs: int = 66
  pair_sample_rows: int = 2048
  # A pair blocks with at least pair_min_examples sampled eval examples, when its rule reaches block_accuracy /
  # block_r2 and leaves at most pair_error_ratio of the error of each feature alone and of the best other pair.
  pair_min_examples: int = 100
  pair_error_ratio: float = 0.25

  def validate(self) -> None:
    _check_mode('label_proxy', self.mode)
    object.__setattr__(self, 'exclude_features',
                       _check_names('label_proxy', 'exclude_features', self.exclude_features))
    for name in ('block_accuracy', 'max_baseline_accuracy', 'block_r2', 'dominant_skill'):
      _check_fraction('label_proxy', name, getattr(self, name))
    _check_fraction('label_proxy', 'dominant_margin', self.dominant_margin)
    _check_non_negative('label_proxy', 'min_examples', self.min_examples)
    _check_non_negative_int('label_proxy', 'max_pairs', self.max_pairs)
    _check_non_negative_int('label_proxy', 'pair_min_examples', self.pair_min_examples)
    _check_fraction('label_proxy', 'pair_error_ratio', self.pair_error_ratio)
    for name in ('max_classes', 'max_values', 'max_list_length', 'num_bins', 'pair_sample_rows'):
      _check_positive_int('label_proxy', name, getattr(self, name))
    if self.max_classes < 2:
      raise ConfigError(f'label_proxy.max_classes must be at least 2. Got {self.max_classes!r} instead.')


# Settings of earlier versions, with what replaced them (a clear error rather than a silently different check).
_REMOVED = {'leakage': {
    'float_significant_digits': 'near-duplicate floats are now compared with leakage.near_column_tolerance',
    'image_min_values': 'float lists of 2+ values are compared by leakage.near_vector_max_distance',
    'image_hash_size': 'the perceptual image hash was replaced by verified SimHash candidates '
                       '(leakage.near_vector_max_distance)'}}


def _section_from(section: str, cls: type, value: Any) -> Any:
  if value is None:
    return cls()
  if isinstance(value, cls):
    return value
  if not isinstance(value, Mapping):
    raise ConfigError(f'{section} must be a dict or a {cls.__name__}. Got {value!r} instead.')
  known = {f.name for f in dataclasses.fields(cls)}
  removed = sorted(set(value) & set(_REMOVED.get(section, {})))
  if removed:
    raise ConfigError(f'{section}.{removed[0]} was removed: {_REMOVED[section][removed[0]]}.')
  unknown = sorted(set(value) - known)
  if unknown:
    raise ConfigError(f'Unknown {section} setting(s) {", ".join(unknown)}; known: {", ".join(sorted(known))}.')
  return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in value.items()})


@dataclasses.dataclass(frozen=True)
class PreflightConfig:
  """Everything the gate needs besides its input artifacts."""
  label_key: Optional[str] = None
  train_split: str = 'train'
  # None: every split of the examples other than train_split.
  eval_splits: Optional[Tuple[str, ...]] = None
  fail_on_block: bool = False
  # Features every check leaves out (IDs, timestamps); each section's own exclude_features adds to these.
  exclude_features: Tuple[str, ...] = ()
  skew: SkewConfig = dataclasses.field(default_factory=SkewConfig)
  leakage: LeakageConfig = dataclasses.field(default_factory=LeakageConfig)
  loss: LossConfig = dataclasses.field(default_factory=LossConfig)
  label_proxy: LabelProxyConfig = dataclasses.field(default_factory=LabelProxyConfig)
  # The checks to run (the CLI's --checks); None: every check whose mode is not off. The others are switched off and
  # their skipped reason says they were left out, not that their mode is off.
  checks: Optional[Tuple[str, ...]] = None

  def __post_init__(self):
    for section, cls in _SECTIONS.items():
      object.__setattr__(self, section, _section_from(section, cls, getattr(self, section)))
    if self.checks is not None:
      selected = _check_names('config', 'checks', self.checks, f'check names ({", ".join(_SECTIONS)})')
      unknown = sorted(set(selected) - set(_SECTIONS))
      if unknown or not selected:
        raise ConfigError(f'checks must name at least one of {", ".join(_SECTIONS)}. Got {list(selected)!r} instead.')
      object.__setattr__(self, 'checks', selected)
      for section in _SECTIONS:
        if section not in selected:
          object.__setattr__(self, section, dataclasses.replace(getattr(self, section), mode='off'))
    if isinstance(self.eval_splits, list):
      object.__setattr__(self, 'eval_splits', tuple(self.eval_splits))
    if isinstance(self.exclude_features, list):
      object.__setattr__(self, 'exclude_features', tuple(self.exclude_features))
    self.validate()

  def validate(self) -> None:
    _check_optional_name('config', 'label_key', self.label_key)
    if not isinstance(self.train_split, str) or not self.train_split:
      raise ConfigError(f'train_split must be a split name. Got {self.train_split!r} instead.')
    if self.eval_splits is not None:
      _check_names('config', 'eval_splits', self.eval_splits, 'split names, e.g. ["eval"]')
      if not self.eval_splits:
        raise ConfigError('eval_splits must name at least one split, or be None for every split but train.')
      if self.train_split in self.eval_splits:
        raise ConfigError(f'eval_splits {list(self.eval_splits)} must not contain train_split {self.train_split!r}.')
    if not isinstance(self.exclude_features, (list, tuple)):
      raise ConfigError(f'exclude_features must be a list of feature names. Got {self.exclude_features!r} instead.')
    object.__setattr__(self, 'exclude_features', _check_names('config', 'exclude_features', self.exclude_features))
    if not isinstance(self.fail_on_block, bool):
      raise ConfigError(f'fail_on_block must be true or false. Got {self.fail_on_block!r} instead.')
    for section in _SECTIONS:
      getattr(self, section).validate()

  def off_reason(self, section: str) -> str:
    """Why a switched-off check did not run: left out of `checks`, or its own mode."""
    if self.checks is not None and section not in self.checks:
      return f'left out: only {", ".join(self.checks)} selected (--checks / checks)'
    return f'{section}.mode is off'

  def excluded(self, section: str) -> Tuple[str, ...]:
    """Features `section` ('skew', 'leakage', or a later check) leaves out: the top-level list plus its own."""
    own = getattr(getattr(self, section, None), 'exclude_features', ())
    return tuple(sorted(set(self.exclude_features) | set(own)))

  def with_exclusions(self, section: str) -> Any:
    """The section's config with every excluded feature (top-level and its own) in its exclude_features."""
    return dataclasses.replace(getattr(self, section), exclude_features=self.excluded(section))

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True)

  @classmethod
  def from_dict(cls, value: Mapping[str, Any]) -> PreflightConfig:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
      raise ConfigError(f'Unknown setting(s) {", ".join(unknown)}; known: {", ".join(sorted(known))}.')
    return cls(**value)

  @classmethod
  def from_json(cls, text: str) -> PreflightConfig:
    try:
      value = json.loads(text)
    except json.JSONDecodeError as e:
      raise ConfigError(f'Preflight config is not valid JSON: {e}') from e
    if not isinstance(value, dict):
      raise ConfigError(f'Preflight config must be a JSON object. Got {text[:80]!r} instead.')
    return cls.from_dict(value)


def _sections() -> Dict[str, type]:
  """Check name -> its settings class, in report order: the fields of PreflightConfig holding a check's settings
  (a dataclass). These fields name the checks: report.json's `checks.<name>`, `--checks`, the output folders."""
  return {f.name: f.default_factory for f in dataclasses.fields(PreflightConfig)
          if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory)}


_SECTIONS = _sections()
CHECK_NAMES: Tuple[str, ...] = tuple(_SECTIONS)  # Every check, in report order.


def _refuse_duplicate_keys(pairs) -> Dict[str, Any]:
  seen: Dict[str, Any] = {}
  for key, value in pairs:
    if key in seen:
      raise ConfigError(f'setting {key!r} is given twice in one object; JSON would keep only the last one.')
    seen[key] = value
  return seen


def parse_config_file(text: str, source: str) -> Dict[str, Any]:
  """A hand-written JSON PreflightConfig (the CLI's --config) as a dict, checked where a typo would otherwise surface
  as a Python TypeError or be lost: a key given twice (JSON keeps the last silently), an unknown top-level setting, a
  section that is not an object, a bare string for exclude_features. Errors name `source` and the setting."""
  try:
    value = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
  except (json.JSONDecodeError, ConfigError) as e:
    raise ConfigError(f'{source}: {e}') from e
  if not isinstance(value, dict):
    raise ConfigError(f'{source}: must hold a JSON object.')
  known = {f.name for f in dataclasses.fields(PreflightConfig)}
  unknown = sorted(set(value) - known)
  if unknown:
    raise ConfigError(f'{source}: Unknown setting(s) {", ".join(unknown)}; known: {", ".join(sorted(known))}.')
  for section in _SECTIONS:
    if value.get(section) is not None and not isinstance(value[section], Mapping):
      raise ConfigError(f'{source}: {section} must be an object of {section} settings, e.g. {{"mode": "warn"}}. '
                        f'Got {value[section]!r} instead.')
  if 'exclude_features' in value:
    _check_names('config', 'exclude_features', value['exclude_features'])
  return value


def resolve_splits(config: PreflightConfig, available: Tuple[str, ...]) -> Tuple[str, Tuple[str, ...]]:
  """Picks train and eval splits from the splits the examples actually have; errors name what is missing."""
  if config.train_split not in available:
    raise ConfigError(f'train_split {config.train_split!r} is not a split of the examples; '
                      f'available splits: {", ".join(available) or "(none)"}.')
  if config.eval_splits is None:
    evals = tuple(s for s in available if s != config.train_split)
    if not evals:
      raise ConfigError(f'The examples have no split besides {config.train_split!r} to compare with it; '
                        f'available splits: {", ".join(available)}.')
    return config.train_split, evals
  missing = [s for s in config.eval_splits if s not in available]
  if missing:
    raise ConfigError(f'eval split(s) {", ".join(missing)} not found in the examples; '
                      f'available splits: {", ".join(available)}.')
  return config.train_split, tuple(config.eval_splits)
