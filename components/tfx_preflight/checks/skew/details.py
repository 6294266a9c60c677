"""The skew check's own numbers (report.json `checks.skew` beside status, reason and findings), typed: the one place
their keys are spelled, what the check really compared (its Coverage) and its headline numbers."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence

from tfx_preflight.report.results import Coverage


@dataclasses.dataclass(frozen=True)
class SkewDetails:
  """comparisons: eval split -> feature -> TFDV's {metric, distance, threshold}; not_compared: eval split -> features
  TFDV could not compare; num_examples: split -> examples; compared: one row per comparison, nearest its threshold
  first; too_few_examples: splits too small to compare; spans: one row per span and split (a window of spans)."""
  comparisons: Mapping[str, Mapping[str, Any]]
  not_compared: Mapping[str, Sequence[str]]
  num_examples: Mapping[str, int]
  excluded_features: Sequence[str]
  multiple_testing: Mapping[str, Mapping[str, Any]]
  compared: Sequence[Mapping[str, Any]]
  too_few_examples: Optional[Mapping[str, Any]] = None
  spans: Optional[List[Mapping[str, Any]]] = None

  def to_dict(self) -> Dict[str, Any]:
    result: Dict[str, Any] = {
        'comparisons': self.comparisons, 'not_compared': self.not_compared, 'num_examples': self.num_examples,
        'excluded_features': self.excluded_features, 'multiple_testing': self.multiple_testing,
        'compared': self.compared}
    if self.too_few_examples is not None:
      result['too_few_examples'] = self.too_few_examples
    if self.spans is not None:
      result['spans'] = self.spans
    return result

  def coverage(self) -> Coverage:
    """Features compared in every eval split (the fewest), examples of every split."""
    per_split = [len(features) for features in self.comparisons.values()]
    return Coverage(min(per_split) if per_split else 0, dict(self.num_examples))

  def headline(self) -> Dict[str, Any]:
    return {'feature_comparisons': sum(len(c) for c in self.comparisons.values())}
