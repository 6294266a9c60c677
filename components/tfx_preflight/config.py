"""Typed configuration of the Preflight gate, validated and JSON-encoded in one place.

The component carries its whole configuration as one JSON string parameter (TFX parameters are primitives); the CLI
builds the same object from flags. Every value is checked here, once, with a message that names the bad setting, so
a mistyped mode fails when the pipeline is built rather than after an hour of Beam work.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Dict, Mapping, Optional, Tuple

MODES = ('block', 'warn', 'off')


class ConfigError(ValueError):
  """A configuration value is invalid; the message names the setting and the value."""


def _check_mode(section: str, mode: str) -> None:
  if mode not in MODES:
    raise ConfigError(f'{section}.mode must be one of {", ".join(MODES)}. Got {mode!r} instead.')


def _check_non_negative(section: str, name: str, value: float) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
    raise ConfigError(f'{section}.{name} must be a non-negative number. Got {value!r} instead.')


def _check_fraction(section: str, name: str, value: float) -> None:
  _check_non_negative(section, name, value)
  if value > 1:
    raise ConfigError(f'{section}.{name} is a fraction and must be in [0, 1]. Got {value!r} instead.')


def _check_positive_int(section: str, name: str, value: int) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ConfigError(f'{section}.{name} must be a positive integer. Got {value!r} instead.')


def _check_names(section: str, name: str, value: Any) -> Tuple[str, ...]:
  if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
    raise ConfigError(f'{section}.{name} must be a list of feature names. Got {value!r} instead.')
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
  # Features not compared at all (IDs, timestamps).
  exclude_features: Tuple[str, ...] = ()
  # A numeric distance over its threshold is reported only if the feature also moved by this many spreads (larger of
  # standardized mean difference and median decile move / (q90-q10)) and by more than 4 standard errors of sampling
  # noise for the split sizes (categorical: the most changed category's share); histogram summaries alone jump on
  # point masses and outliers in clean random splits. 0 reports every distance over its threshold, as TFDV does.
  min_effect_size: float = 0.15
  # Absolute difference of the fraction of examples missing a feature that is reported (when not sampling noise).
  missing_rate_threshold: float = 0.05
  # Fraction of an eval split's values falling in categories train never has that is reported.
  new_category_threshold: float = 0.01

  def validate(self) -> None:
    _check_mode('skew', self.mode)
    _check_non_negative('skew', 'numeric_threshold', self.numeric_threshold)
    _check_non_negative('skew', 'categorical_threshold', self.categorical_threshold)
    object.__setattr__(self, 'exclude_features', _check_names('skew', 'exclude_features', self.exclude_features))
    _check_non_negative('skew', 'min_effect_size', self.min_effect_size)
    _check_fraction('skew', 'missing_rate_threshold', self.missing_rate_threshold)
    _check_fraction('skew', 'new_category_threshold', self.new_category_threshold)


@dataclasses.dataclass(frozen=True)
class LeakageConfig:
  """Train/eval leakage: exact and near duplicates across and within splits, and shared groups."""
  mode: str = 'block'
  # Features left out of the content hash (IDs, timestamps). The label is always left out.
  exclude_features: Tuple[str, ...] = ()
  # Fraction of an eval split found in train above which the check warns (0: any duplicate warns) / blocks.
  warn_fraction: float = 0.0
  block_fraction: float = 0.01
  # Also find near-duplicates (LSH candidates, each verified by its real distance), reported apart from exact ones and
  # warn-only. A pair is near when ints and short strings are equal and every feature group is within its threshold:
  near_duplicates: bool = False
  # single-value float features: |a - b| <= near_column_tolerance * max(|a|, |b|) for every column;
  near_column_tolerance: float = 0.02
  # float lists (images, embeddings): 1 - cosine of the mean-centred lists at most this (0.005: ~5.7 degrees);
  near_vector_max_distance: float = 0.005
  # strings of at least near_text_min_tokens words: 1 - Jaccard of their word bigrams at most this.
  near_text_max_distance: float = 0.5
  near_text_min_tokens: int = 4
  # A band bucket with more train x eval pairs than this is skipped (and reported) to bound work and memory.
  near_max_bucket_pairs: int = 100_000
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
    if not isinstance(self.near_duplicates, bool):
      raise ConfigError(f'leakage.near_duplicates must be true or false. Got {self.near_duplicates!r} instead.')
    _check_fraction('leakage', 'near_column_tolerance', self.near_column_tolerance)
    _check_fraction('leakage', 'near_vector_max_distance', self.near_vector_max_distance)
    _check_fraction('leakage', 'near_text_max_distance', self.near_text_max_distance)
    _check_positive_int('leakage', 'near_text_min_tokens', self.near_text_min_tokens)
    _check_positive_int('leakage', 'near_max_bucket_pairs', self.near_max_bucket_pairs)
    _check_optional_name('leakage', 'group_key', self.group_key)
    _check_non_negative('leakage', 'max_samples', self.max_samples)
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
  # Optimizer steps on one batch for the cannot_fit_batch probe.
  fit_steps: int = 30

  def validate(self) -> None:
    _check_mode('loss', self.mode)
    for name in ('model_fn', 'input_fn', 'loss_fn'):
      _check_optional_name('loss', name, getattr(self, name))
    _check_non_negative('loss', 'timeout_seconds', self.timeout_seconds)
    if self.timeout_seconds == 0:
      raise ConfigError('loss.timeout_seconds must be greater than 0. Got 0 instead.')
    _check_non_negative('loss', 'memory_limit_mb', self.memory_limit_mb)
    _check_positive_int('loss', 'batch_size', self.batch_size)
    _check_positive_int('loss', 'fit_steps', self.fit_steps)


_SECTIONS = {'skew': SkewConfig, 'leakage': LeakageConfig, 'loss': LossConfig}
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
  skew: SkewConfig = dataclasses.field(default_factory=SkewConfig)
  leakage: LeakageConfig = dataclasses.field(default_factory=LeakageConfig)
  loss: LossConfig = dataclasses.field(default_factory=LossConfig)

  def __post_init__(self):
    for section, cls in _SECTIONS.items():
      object.__setattr__(self, section, _section_from(section, cls, getattr(self, section)))
    if isinstance(self.eval_splits, list):
      object.__setattr__(self, 'eval_splits', tuple(self.eval_splits))
    self.validate()

  def validate(self) -> None:
    _check_optional_name('config', 'label_key', self.label_key)
    if not isinstance(self.train_split, str) or not self.train_split:
      raise ConfigError(f'train_split must be a split name. Got {self.train_split!r} instead.')
    if self.eval_splits is not None:
      _check_names('config', 'eval_splits', self.eval_splits)
      if not self.eval_splits:
        raise ConfigError('eval_splits must name at least one split, or be None for every split but train.')
      if self.train_split in self.eval_splits:
        raise ConfigError(f'eval_splits {list(self.eval_splits)} must not contain train_split {self.train_split!r}.')
    if not isinstance(self.fail_on_block, bool):
      raise ConfigError(f'fail_on_block must be true or false. Got {self.fail_on_block!r} instead.')
    for section in _SECTIONS:
      getattr(self, section).validate()

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
