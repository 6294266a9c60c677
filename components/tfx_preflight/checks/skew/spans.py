"""A span of a window whose distribution departs from the other spans' (warn `span_departs`, under checks.skew).

Skew compares the union of a window's train with the union of its eval; a span unlike the others (a changed
ExampleGen or preprocessing step, a backfill) is diluted in that union and can pass. Each span's statistics come from
the read pass (the same decoded batches, span_statistics_beam.py), and every pair of spans is compared, split
by split, with skew's own comparison (skew.tfdv_comparison, skew.feature_findings, its false-discovery control): the
same distances (Jensen-Shannon, L-infinity), thresholds (schema comparators, else the config) and diagnoses. A span
departs in a feature when it differs in it from every other span while those agree with one another; of two spans
the later one is named, as which one is odd cannot be told. A warning: a drifting span is what retraining on a
window meets, not by itself a broken validation.
"""

from __future__ import annotations

import itertools
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from tfx_preflight import constants
from tfx_preflight.checks.skew import check as skew
from tfx_preflight.checks.skew import diagnosis as diag
from tfx_preflight.config import SkewConfig
from tfx_preflight.constants import Severity
from tfx_preflight.inputs import statistics as statistics_lib
from tfx_preflight.report.results import Finding

SPAN_DEPARTS = 'span_departs'
# Skew findings that say how one dataset differs from the other; the rest (a label missing in both, non-finite labels,
# undecodable text) describe each dataset on its own.
_NOT_A_DIFFERENCE = ('label_missing', 'non_finite_label', 'undecodable_values')
# Skew's diagnoses speak of splits; between spans they speak of spans.
_SPAN_WORDS = (('one split only', 'one span only'), ('in each split', 'in each span'), ('the splits', 'the spans'),
               ('one split and', 'one span and'))


def artifact_labels(artifacts: Sequence[Mapping[str, Any]]) -> List[str]:
  """'span 3' per artifact, 'span 3 version 2' when the window holds several versions of a span."""
  spans = [a['span'] for a in artifacts]
  return [f'span {a["span"]}' + (f' version {a["version"]}' if spans.count(a['span']) > 1 else '') for a in artifacts]


def _differences(datasets: Tuple[statistics_pb2.DatasetFeatureStatistics, ...], labels: Tuple[str, str],
                 config: SkewConfig, schema: Optional[schema_pb2.Schema],
                 label_key: Optional[str]) -> Dict[str, Finding]:
  """feature -> skew's most severe finding of how the second span differs from the first (false discoveries
  withheld as between splits)."""
  distances, _ = skew.tfdv_comparison(*(statistics_lib.as_list(d) for d in datasets), schema, config)
  summaries = tuple(diag.summarize(d) for d in datasets)
  names = sorted((set(summaries[0]) | set(summaries[1])) - set(config.exclude_features))
  findings = skew.feature_findings(names, summaries, labels, tuple(int(d.num_examples) for d in datasets),
                                   distances, config, label_key)
  kept, _ = skew.control_false_discoveries(findings, len(names), config.false_discovery_rate)
  by_feature: Dict[str, Finding] = {}
  for finding in skew.sorted_findings(kept):
    if finding.feature and finding.code not in _NOT_A_DIFFERENCE:
      by_feature.setdefault(finding.feature, finding)
  return by_feature


def _departing(pairs: Mapping[Tuple[int, int], Mapping[str, Finding]], compared: Sequence[int]
               ) -> Dict[Tuple[int, str], List[Finding]]:
  """(span index, feature) -> its findings against every other span, for the spans that differ from all the others
  in a feature in which the others agree; of two spans, the later."""
  if len(compared) == 2:
    return {(compared[1], name): [f] for name, f in pairs[tuple(compared)].items()}
  out = {}
  for i in compared:
    others = [j for j in compared if j != i]
    mine = [pairs[tuple(sorted((i, j)))] for j in others]
    agree = [pairs[pair] for pair in itertools.combinations(others, 2)]
    for name in sorted(set.intersection(*(set(m) for m in mine))):
      if not any(name in a for a in agree):
        out[(i, name)] = [m[name] for m in mine]
  return out


def _nearest(findings: Sequence[Finding]) -> Finding:
  """The finding against the span nearest the departing one (smallest distance): the most telling departure."""
  return min(findings, key=lambda f: f.details.get('distance') if f.details.get('distance') is not None else 1e300)


def _in_span_words(message: str) -> str:
  for split_words, span_words in _SPAN_WORDS:
    message = message.replace(split_words, span_words)
  return message


def _finding(split: str, artifact: Mapping[str, Any], label: str, name: str, findings: Sequence[Finding],
             others: Sequence[str]) -> Finding:
  nearest = _nearest(findings)
  caveat = ' (of two spans, which one is odd cannot be told)' if len(others) == 1 else ''
  message = (f'`{name}` in split {split} of {label} departs from {", ".join(others)} of the window{caveat}: '
             f'{_in_span_words(nearest.message)}. Trainer reads this span with the others: rebuild it the way the '
             'others were built, or leave it out of the window (if the data really changed, this is the drift the '
             'model will meet)')
  return Finding(constants.SKEW, SPAN_DEPARTS, Severity.WARN, message, feature=name,
                 details={**nearest.details, 'split': split, 'span': artifact['span'], 'version': artifact['version'],
                          'departure': nearest.code, 'departs_from': list(others)})


def check_span_departures(span_statistics: Mapping[str, Sequence[statistics_pb2.DatasetFeatureStatisticsList]],
                          artifacts: Sequence[Mapping[str, Any]], config: SkewConfig,
                          schema: Optional[schema_pb2.Schema], label_key: Optional[str]
                          ) -> Tuple[List[Finding], Dict[str, List[Dict[str, Any]]]]:
  """Findings of spans that depart, and per split one row per artifact {span, version, examples, compared,
  departs: [features]} (checks.skew.spans). `span_statistics` holds, per split, one statistics list per artifact of
  `artifacts` ({span, version}, in the window's order); spans with fewer examples than skew compares are not."""
  labels = artifact_labels(artifacts)
  findings: List[Finding] = []
  rows: Dict[str, List[Dict[str, Any]]] = {}
  for split, statistics in sorted(span_statistics.items()):
    datasets = [statistics_lib.whole_split(s) for s in statistics]
    counts = [int(d.num_examples) if d is not None else 0 for d in datasets]
    compared = [k for k, n in enumerate(counts) if n >= skew.MIN_EXAMPLES_TO_COMPARE]
    pairs = {(i, j): _differences((datasets[i], datasets[j]), (f'{split} of {labels[i]}', f'{split} of {labels[j]}'),
                                  config, schema, label_key)
             for i, j in itertools.combinations(compared, 2)}
    departing = _departing(pairs, compared) if len(compared) >= 2 else {}
    for (k, name), against in sorted(departing.items()):
      others = [labels[j] for j in compared if j != k]
      findings.append(_finding(split, artifacts[k], labels[k], name, against, others))
    rows[split] = [{'span': a['span'], 'version': a['version'], 'examples': counts[k], 'compared': k in compared,
                    'departs': sorted(name for i, name in departing if i == k)} for k, a in enumerate(artifacts)]
  return findings, rows
