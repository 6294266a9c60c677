"""The leakage check's own numbers (report.json `checks.leakage` beside status, reason and findings), typed: the
per-split pair results the findings are made from, the one place their keys are spelled (`to_dict`), what the check
really compared (its Coverage) and its headline numbers (leaked eval examples, the largest leaked fraction)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from tfx_preflight.report.results import Coverage

Samples = List[Dict[str, Any]]  # Sampled examples of a pair, as report.json shows them (file, index, values...).


@dataclasses.dataclass(frozen=True)
class ExactPair:
  """Eval examples of b (splits[1]) with the same content as an example of a (train). `chance` is the chance test's
  report dict (duplicate_chance.ChanceTest.to_dict: rounded as report.json and the findings show it)."""
  splits: Tuple[str, str]
  duplicate_examples: int
  unique_duplicates: int
  fraction_of_b: float
  examples_in_a_involved: int
  samples: Samples
  label_conflicts: int
  chance: Mapping[str, Any]
  leaked_fraction: float  # Exact and near copies beyond chance, of b.

  def to_dict(self) -> Dict[str, Any]:
    return {'splits': list(self.splits), 'duplicate_examples': self.duplicate_examples,
            'unique_duplicates': self.unique_duplicates, 'fraction_of_b': self.fraction_of_b,
            'examples_in_a_involved': self.examples_in_a_involved, 'samples': self.samples,
            'label_conflicts': self.label_conflicts, 'chance': self.chance, 'leaked_fraction': self.leaked_fraction}


@dataclasses.dataclass(frozen=True)
class NearPair:
  """Eval examples of b that are near copies of examples of a (and how many of them are not exact copies)."""
  splits: Tuple[str, str]
  duplicate_examples: int
  near_only_examples: int
  fraction_of_b: float
  label_conflicts: int
  near_only_label_conflicts: int
  chance: Mapping[str, Any]
  samples: Samples

  def to_dict(self) -> Dict[str, Any]:
    return {'splits': list(self.splits), 'duplicate_examples': self.duplicate_examples,
            'near_only_examples': self.near_only_examples, 'fraction_of_b': self.fraction_of_b,
            'label_conflicts': self.label_conflicts, 'near_only_label_conflicts': self.near_only_label_conflicts,
            'chance': self.chance, 'samples': self.samples}


@dataclasses.dataclass(frozen=True)
class GroupPair:
  """Eval examples of b whose group_key value also occurs in a."""
  splits: Tuple[str, str]
  duplicate_examples: int
  fraction_of_b: float
  examples_in_a_involved: int
  samples: Samples
  shared_groups: int

  def to_dict(self) -> Dict[str, Any]:
    return {'splits': list(self.splits), 'duplicate_examples': self.duplicate_examples,
            'fraction_of_b': self.fraction_of_b, 'examples_in_a_involved': self.examples_in_a_involved,
            'samples': self.samples, 'shared_groups': self.shared_groups}


@dataclasses.dataclass(frozen=True)
class Near:
  """The near-duplicate search: its pairs, settings and bucket counts."""
  pairs: Tuple[NearPair, ...]
  settings: Mapping[str, Any]
  buckets: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class HistoryPair:
  """Eval examples of b found in earlier runs' training data (`history_only_examples`: not in today's train)."""
  splits: Tuple[str, str]
  duplicate_examples: int
  unique_duplicates: int
  history_only_examples: int
  fraction_of_b: float
  samples: Samples

  def to_dict(self) -> Dict[str, Any]:
    return {'splits': list(self.splits), 'duplicate_examples': self.duplicate_examples,
            'unique_duplicates': self.unique_duplicates, 'history_only_examples': self.history_only_examples,
            'fraction_of_b': self.fraction_of_b, 'samples': self.samples}


@dataclasses.dataclass(frozen=True)
class History:
  """The comparison with earlier runs' training data: its pairs, the stored directories described, and those hashed
  over other features (so none of their hashes could match)."""
  pairs: Tuple[HistoryPair, ...]
  artifacts: Sequence[Mapping[str, Any]]
  features_differ: Sequence[str]

  def to_dict(self) -> Dict[str, Any]:
    return {'history': [p.to_dict() for p in self.pairs], 'history_artifacts': list(self.artifacts),
            'history_features_differ': list(self.features_differ)}


@dataclasses.dataclass(frozen=True)
class LeakageDetails:
  """What the leakage check counted: per eval split its pairs with train, repeats within each split, the examples
  and features hashed, and (when configured) label conflicts, the near search and group leakage."""
  cross_split: Tuple[ExactPair, ...]
  within_split: Mapping[str, int]
  examples: Mapping[str, int]
  hashed_features: Mapping[str, Sequence[str]]
  excluded_features: Sequence[str]
  features_seen: Mapping[str, Sequence[str]]
  duplicates_file: str
  hash: str
  chance_settings: Mapping[str, Any]
  within_split_label_conflicts: Optional[Mapping[str, Mapping[str, int]]] = None
  near: Optional[Near] = None
  group_leakage: Optional[Tuple[GroupPair, ...]] = None
  group_key: Optional[str] = None
  history: Optional[History] = None

  def with_samples(self, change: Callable[[Samples], Samples]) -> LeakageDetails:
    """These details with `change` applied to the samples of every train pair (exact, near, group; not history),
    e.g. to point them at CSV files and lines."""
    def pairs(items):
      return tuple(dataclasses.replace(p, samples=change(p.samples)) for p in items)
    near = self.near and dataclasses.replace(self.near, pairs=pairs(self.near.pairs))
    group = None if self.group_leakage is None else pairs(self.group_leakage)
    return dataclasses.replace(self, cross_split=pairs(self.cross_split), near=near, group_leakage=group)

  def to_dict(self) -> Dict[str, Any]:
    result: Dict[str, Any] = {
        'cross_split': [p.to_dict() for p in self.cross_split], 'within_split': self.within_split,
        'examples': self.examples, 'hashed_features': self.hashed_features,
        'excluded_features': self.excluded_features, 'features_seen': self.features_seen,
        'duplicates_file': self.duplicates_file, 'hash': self.hash, 'chance_settings': self.chance_settings}
    if self.within_split_label_conflicts is not None:
      result['within_split_label_conflicts'] = self.within_split_label_conflicts
    if self.near is not None:
      result['near_duplicates'] = [p.to_dict() for p in self.near.pairs]
      result['near_settings'] = self.near.settings
      result['near_buckets'] = self.near.buckets
    if self.group_leakage is not None:
      result['group_leakage'] = [p.to_dict() for p in self.group_leakage]
      result['group_key'] = self.group_key
    if self.history is not None:
      result.update(self.history.to_dict())
    return result

  def coverage(self) -> Coverage:
    """Features hashed in every split (the fewest), examples hashed per split."""
    return Coverage(min((len(f) for f in self.hashed_features.values()), default=0), dict(self.examples))

  def headline(self) -> Dict[str, Any]:
    return {'examples_hashed': dict(self.examples),
            'leaked_eval_examples': sum(int(p.duplicate_examples) for p in self.cross_split),
            'max_leaked_fraction': max((float(p.fraction_of_b) for p in self.cross_split), default=0.0)}
