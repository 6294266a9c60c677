"""The leakage check's history part as findings: counts against earlier runs' training data (history.py stores and
joins them in Beam) turned into report.json's `history` details and findings. No Beam, no numpy: a pure function of
the merged counts."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence, Tuple

from tfx_preflight import constants
from tfx_preflight.checks.leakage import history
from tfx_preflight.checks.leakage.details import History, HistoryPair, LeakageDetails
from tfx_preflight.report.results import CheckResult, Finding, status_for

HISTORY = constants.LEAKAGE_HISTORY


def result(counts: Any, splits: Sequence[str], examples: Mapping[str, int], described: Sequence[Mapping[str, Any]],
           features: Sequence[str], used: Sequence[history.Stored], files: Sequence[Tuple[int, str]]) -> History:
  """The `history` part of the leakage check: per eval split, its examples found in earlier runs' training data (and
  those not in today's train either), with samples."""
  pairs = []
  for split in splits[1:]:
    pair = counts.pair(HISTORY, split)
    samples = [{'hash': digest, 'file': files[eval_file][1], 'index': eval_index,
                'history': used[stored_id].path if stored_id < len(used) else None, 'copies_in_b': copies}
               for eval_file, eval_index, stored_id, _, digest, copies, _, _ in pair.samples]
    pairs.append(HistoryPair(
        (HISTORY, split), pair.duplicate_examples, pair.unique_duplicates, pair.history_only_examples,
        round(pair.duplicate_examples / examples[split], 6) if examples.get(split) else 0.0, samples))
  different = [item.path for item in used if tuple(sorted(features)) != item.features]
  return History(tuple(pairs), list(described), different)


def with_history(check: CheckResult, counts: Any, plan: Any, stored: Sequence[history.Stored], config: Any
                 ) -> CheckResult:
  """The leakage check's result with the history part added: counts against earlier runs' training data in details
  (`history`, `history_artifacts`), a finding when they pass warn/block_fraction, one when a stored directory could
  not be compared (its hashes were made another way, so none could match: not a pass earned)."""
  details = check.details
  if not isinstance(details, LeakageDetails):
    raise TypeError(f'The leakage check\'s details must be LeakageDetails. Got {type(details).__name__} instead.')
  features = details.features_seen.get(plan.splits[0], [])
  used, described = history.select(stored, plan.exclude, plan.label_key)
  part = result(counts, plan.splits, details.examples, described, features, used, plan.files)
  findings = list(check.findings)
  for pair in part.pairs:
    fraction = pair.fraction_of_b
    severity = (constants.BLOCK if fraction > config.block_fraction else constants.WARN
                if fraction > config.warn_fraction else None) if pair.duplicate_examples else None
    if severity:
      split = pair.splits[1]
      findings.append(Finding(constants.LEAKAGE, 'history_duplicates', severity, (
          f'{pair.duplicate_examples} example(s) of {split} ({fraction:.2%}) have the same content as training data '
          f'of earlier runs ({pair.history_only_examples} of them not in today\'s train): a model trained then, '
          'or warm-started from one, was trained on them.'), details={
              'splits': list(pair.splits), 'duplicate_examples': pair.duplicate_examples,
              'history_only_examples': pair.history_only_examples, 'fraction_of_b': fraction}))
  unusable = [d for d in described if d['compared'] is False and d.get('reason') and 'did not bless' not in d['reason']]
  unusable += [{'path': p, 'reason': 'it was hashed over other features'} for p in part.features_differ]
  for item in unusable:
    findings.append(Finding(constants.LEAKAGE, 'history_not_compared', constants.WARN, (
        f'Earlier training data in {item["path"]} was not compared: {item["reason"]}, so no copy could match.'),
        details={'path': item['path']}))
  return CheckResult(status_for(findings, config.mode), tuple(findings),
                     details=dataclasses.replace(details, history=part))
