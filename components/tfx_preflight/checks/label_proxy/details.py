"""The label-proxy check's own numbers (report.json `checks.label_proxy` beside status, reason and findings), typed:
the one place their keys are spelled, what the check really compared (its Coverage) and its headline numbers."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence

from tfx_preflight.report.results import Coverage


@dataclasses.dataclass(frozen=True)
class Scored:
  """What scoring produced: the top scores per eval split, how many features got a score, how many were judged (on
  at least min_examples eval examples) and the labelled examples per split, the pair searches."""
  scores: Mapping[str, List[Mapping[str, Any]]]
  scored_features: int
  judged_features: int
  labelled: Mapping[str, int]
  pairs: Any


@dataclasses.dataclass(frozen=True)
class LabelProxyDetails:
  """The label, the task chosen for it (and why), the features not counted, those excluded, and what was scored
  (None when nothing could be: the check was skipped)."""
  label_key: str
  task: Optional[str]
  task_reason: Optional[str]
  skipped_features: Mapping[str, str]
  exclude_features: Sequence[str]
  scored: Optional[Scored] = None

  def to_dict(self) -> Dict[str, Any]:
    result: Dict[str, Any] = {'label_key': self.label_key, 'task': self.task, 'task_reason': self.task_reason,
                              'skipped_features': self.skipped_features, 'exclude_features': self.exclude_features}
    if self.scored is not None:
      result.update({'scores': self.scored.scores, 'scored_features': self.scored.scored_features,
                     'compared': self.coverage_dict(), 'pairs': self.scored.pairs})
    return result

  def coverage_dict(self) -> Dict[str, Any]:
    coverage = self.coverage()
    return {'features': coverage.features, 'examples': dict(coverage.examples)}

  def coverage(self) -> Coverage:
    """Features judged (scored on enough eval examples), labelled examples per split; nothing when not scored."""
    if self.scored is None:
      return Coverage(0)
    return Coverage(self.scored.judged_features, dict(self.scored.labelled))

  def headline(self) -> Dict[str, Any]:
    return {'scored_features': self.scored.scored_features if self.scored else 0}
