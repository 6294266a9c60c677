"""Label proxies: a feature that gives the label away, the other road to a validation loss too good to be true.

A copy of the label under another name, a one-to-one recoding ("yes"/"no" for 1/0), a field written after the outcome,
or a numeric feature that is a monotone function of a numeric label: train and eval agree perfectly, so no
split-comparison check sees it. This check fits, per feature, the simplest one-feature predictor on train and scores
it on eval against the baseline (scoring.py); it blocks when one feature alone reaches near-perfect eval
accuracy / R^2 and warns when one feature is far stronger than all others. Scoring on eval, never on train, is what
keeps identifiers quiet: an ID unique per row memorizes train and predicts nothing on eval.

Beam: per split, the RecordBatches the read pass decodes once for every check (read_pass.py) -> `LabelProxyCounts`
(label_proxy_beam.py) -> one .npz file of mergeable counts (counts.py) per split, read back by the driver.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import apache_beam as beam
import numpy as np

from tfx_preflight import constants
from tfx_preflight.checks.label_proxy import counts as counts_lib
from tfx_preflight.checks.label_proxy import label_proxy_beam, scoring
from tfx_preflight.checks.label_proxy import pairs as pairs_lib
from tfx_preflight.checks.label_proxy.details import LabelProxyDetails, Scored
from tfx_preflight.config import LabelProxyConfig
from tfx_preflight.constants import Severity, Status
from tfx_preflight.inputs import data, read_pass
from tfx_preflight.report.results import CheckResult, Finding, status_for

KIND = constants.LABEL_PROXY  # A finding's code: the same name as the check.
DOMINANT = 'dominant_feature'
PAIR = 'derived_label'  # A finding's code: the label is a simple function of two features.
_SHOWN_SCORES = 10
_SHOWN_PAIRS = 5
_PAIR_Z = 3.0  # How many standard errors a pair's gain in eval accuracy must reach to count as clear.


def count_options(config: LabelProxyConfig, label_key: str) -> counts_lib.CountOptions:
  return counts_lib.CountOptions(label_key=label_key, exclude=tuple(sorted(config.exclude_features)),
                                 max_classes=config.max_classes, max_values=config.max_values,
                                 max_list_length=config.max_list_length,
                                 sample_rows=config.pair_sample_rows if config.max_pairs else 0)


# --- Findings -------------------------------------------------------------------------------------------------------


def _metric_text(score: scoring.FeatureScore) -> str:
  if score.metric == 'accuracy':
    return f'accuracy {score.eval_score:.4f} (majority-label baseline {score.baseline:.4f})'
  return f'R^2 {score.eval_score:.4f} (train-mean baseline {score.baseline:.4f})'


def _blocks(score: scoring.FeatureScore, config: LabelProxyConfig) -> bool:
  if score.metric == 'accuracy':
    return score.eval_score >= config.block_accuracy and score.baseline <= config.max_baseline_accuracy
  return score.eval_score >= config.block_r2


def _finding(severity: str, kind: str, message: str, score: scoring.FeatureScore, **extra: Any) -> Finding:
  details = score.to_dict()
  feature = details.pop('feature')
  return Finding(constants.LABEL_PROXY, kind, severity, message, feature=feature, details={**details, **extra})


def findings_for(scores: Sequence[scoring.FeatureScore], config: LabelProxyConfig, label_key: str) -> List[Finding]:
  """Blocks for near-perfect one-feature predictors, a warning for a feature far ahead of all others (per split)."""
  findings = []
  for split in sorted({s.eval_split for s in scores}):
    ranked = [s for s in scores if s.eval_split == split and s.eval_examples >= config.min_examples]
    blocked = [s for s in ranked if _blocks(s, config)]
    for s in blocked:
      findings.append(_finding(
          Severity.BLOCK, KIND,
          f'Feature {s.feature!r} alone predicts label {label_key!r} on eval split {split!r}: {_metric_text(s)}, '
          f'fitted on {s.train_examples} train examples, scored on {s.eval_examples} eval examples. A copy or '
          f'recoding of the label, or a value known only after the outcome: validation numbers of a model that sees '
          f'it say nothing. Drop it, or list it in label_proxy.exclude_features if it is really available at '
          f'prediction time.', s))
    rest = [s for s in ranked if s not in blocked]
    if rest and rest[0].skill >= config.dominant_skill:
      runner_up = rest[1] if len(rest) > 1 else None
      second = runner_up.skill if runner_up else 0.0
      if rest[0].skill - second >= config.dominant_margin:
        top = rest[0]
        other = f'the next best, {runner_up.feature!r}, reaches skill {second:.3f}' if runner_up else \
            'no other feature is scored'
        findings.append(_finding(
            Severity.WARN, DOMINANT,
            f'Feature {top.feature!r} predicts label {label_key!r} on eval split {split!r} far better than any other '
            f'feature: {_metric_text(top)}, skill {top.skill:.3f}; {other}. Check that it is known at prediction '
            f'time.', top, runner_up=runner_up.feature if runner_up else None, runner_up_skill=round(second, 6)))
  return findings


def _clearly_beats(score: float, other: float, n: int, metric: str, config: LabelProxyConfig) -> bool:
  """Whether `score` leaves at most pair_error_ratio of the error (or unexplained variance) of `other`, and, for
  accuracy, by more eval rows than chance makes likely (a McNemar bound: the rows gained over the square root of all
  rows either gets wrong)."""
  error, other_error = 1 - score, 1 - other
  if error > config.pair_error_ratio * other_error:
    return False
  if metric != 'accuracy':
    return True
  return (other_error - error) * n >= _PAIR_Z * max(1.0, ((other_error + error) * n)) ** 0.5


def pair_blocks(pair: pairs_lib.PairScore, config: LabelProxyConfig) -> bool:
  """A pair blocks when its rule reaches the block score on enough eval rows and clearly beats each of its features
  alone and the best pair sharing neither feature."""
  if pair.eval_examples < config.pair_min_examples:
    return False
  if pair.metric == 'accuracy':
    good = pair.eval_score >= config.block_accuracy and pair.baseline <= config.max_baseline_accuracy
  else:
    good = pair.eval_score >= config.block_r2
  return good and all(_clearly_beats(pair.eval_score, other, pair.eval_examples, pair.metric, config)
                      for other in (*pair.alone, pair.honest_pair))


def _pair_score_text(pair: pairs_lib.PairScore) -> str:
  if pair.metric == 'accuracy':
    return f'{pair.rule} on {pair.eval_score:.1%} of eval examples (majority-label baseline {pair.baseline:.1%})'
  return f'{pair.rule} with R^2 {pair.eval_score:.4f} on eval (train-mean baseline {pair.baseline:.4f})'


def pair_findings(searches: Sequence[pairs_lib.PairSearch], config: LabelProxyConfig, label_key: str,
                  blocked: Sequence[str]) -> List[Finding]:
  """A block per eval split for the best pair that blocks, unless one of its features already blocks alone."""
  findings = []
  for search in searches:
    for pair in search.pairs:
      if not pair_blocks(pair, config) or set(pair.features) & set(blocked):
        continue
      a, b = pair.features
      honest = f'the best pair without either, {" and ".join(map(repr, pair.honest_pair_features))}, reaches ' \
          f'{pair.honest_pair:.4f}' if pair.honest_pair_features else 'no pair without either was scored'
      details = pair.to_dict()
      details.pop('eval_split')
      findings.append(Finding(
          constants.LABEL_PROXY, PAIR, Severity.BLOCK,
          f'Features {a!r} and {b!r} together give label {label_key!r} away on eval split {search.eval_split!r}: '
          f'{_pair_score_text(pair)}, fitted on {pair.train_examples} sampled train examples, scored on '
          f'{pair.eval_examples} sampled eval examples; alone they reach {pair.alone[0]:.4f} and {pair.alone[1]:.4f}, '
          f'{honest}. The label looks computed from these columns: a model that sees both learns the formula, and '
          f'its validation numbers say nothing. Drop them, or list them in label_proxy.exclude_features if they are '
          f'really known at prediction time.', feature=f'{a}, {b}', details={'eval_split': search.eval_split,
                                                                              **details}))
      break
  return findings


def _class_names(train: counts_lib.SplitCounts, evals: Mapping[str, counts_lib.SplitCounts],
                 classes: np.ndarray) -> List[str]:
  if train.label_kind == counts_lib.CATEGORICAL:
    names = {**{k: v for e in evals.values() for k, v in e.label_names.items()}, **train.label_names}
    return [repr(names.get(int(w), f'#{int(w)}')) for w in classes.tolist()]
  return [f'{v:.6g}' for v in counts_lib.word_to_float(classes).tolist()]


def search_pairs(train: counts_lib.SplitCounts, evals: Mapping[str, counts_lib.SplitCounts], task: str,
                 scores: Sequence[scoring.FeatureScore], config: LabelProxyConfig,
                 label_key: str) -> List[pairs_lib.PairSearch]:
  """The pair search on every eval split with a sample (none when label_proxy.max_pairs is 0)."""
  if not config.max_pairs or train.sample is None:
    return []
  classes = None
  class_names: List[str] = []
  if task == scoring.CLASSIFICATION:
    classes = np.array(sorted(set(train.label_counts).union(*[e.label_counts for e in evals.values()])),
                       dtype=np.uint64)
    class_names = _class_names(train, evals, classes)
  searches = []
  for split, evaluation in sorted(evals.items()):
    if evaluation.sample is None:
      continue
    mine = [s for s in scores if s.eval_split == split]
    searches.append(pairs_lib.search(
        train.sample, evaluation.sample, split, task, classes, class_names, [s.feature for s in mine],
        {s.feature: s.eval_score for s in mine}, {s.feature: s.skill for s in mine}, config.max_pairs, label_key))
  return searches


def _pairs_details(searches: Sequence[pairs_lib.PairSearch], config: LabelProxyConfig) -> Dict[str, Any]:
  return {s.eval_split: {'candidates': list(s.candidates), 'pairs_scored': len(s.pairs), 'forms': list(s.forms),
                         'sample': {'train': s.train_rows, 'eval': s.eval_rows, 'too_wide': s.too_wide},
                         'best': [{**p.to_dict(), 'blocks': pair_blocks(p, config)} for p in s.pairs[:_SHOWN_PAIRS]]}
          for s in searches}


def _label_is_constant(counts: counts_lib.SplitCounts) -> bool:
  if counts.label_counts is not None and len(counts.label_counts) == 1:
    return True
  n = counts.labelled
  return n > 0 and counts.label_sumsq - counts.label_sum ** 2 / n <= 1e-12 * max(1.0, counts.label_sumsq)


def _why_nothing_scored(train: counts_lib.SplitCounts, evals: Mapping[str, counts_lib.SplitCounts], task: str,
                        label_key: str) -> str:
  """The real reason no feature got a score: an eval label that never varies (R^2 undefined), features counted in
  no eval split, or no feature besides the label."""
  constant = [split for split, counts in sorted(evals.items()) if _label_is_constant(counts)]
  if task == scoring.REGRESSION and constant:
    return (f'label {label_key!r} is constant in eval split(s) {", ".join(constant)}: R^2 is undefined there, so no '
            'feature can be scored (a file sorted by the label and split without shuffling?)')
  if train.features and not any(set(train.features) & set(e.features) for e in evals.values()):
    return 'no feature of train is in any eval split: nothing to score'
  return 'no feature to score besides the label (long lists are not scored)'


def summarize(train: counts_lib.SplitCounts, evals: Mapping[str, counts_lib.SplitCounts], train_split: str,
              config: LabelProxyConfig, label_key: str) -> CheckResult:
  """The check's result from merged counts: a pure function of the counts."""
  for split, counts in [(train_split, train), *sorted(evals.items())]:
    if not counts.labelled:
      raise data.InputError(f'Label-proxy check: label {label_key!r} has no usable (non-missing, finite) value in any '
                       f'example of split {split!r} ({counts.examples} examples).')
  skipped_features = {}
  for counts in [train, *evals.values()]:
    for name, reason in counts.skipped.items():
      skipped_features.setdefault(name, reason)
  options = count_options(config, label_key)
  task, why = scoring.choose_task(train, list(evals.values()), config.max_classes)
  details = LabelProxyDetails(label_key, task, why, skipped_features, sorted(config.exclude_features))
  if task is None:
    return CheckResult(Status.SKIPPED, reason=f'label {label_key!r} cannot be scored: {why}', details=details)
  scores = scoring.score_features(train, evals, task, config.num_bins, options)
  if not scores:
    return CheckResult(Status.SKIPPED, reason=_why_nothing_scored(train, evals, task, label_key), details=details)
  findings = findings_for(scores, config, label_key)
  searches = search_pairs(train, evals, task, scores, config, label_key)
  blocked = [f.feature for f in findings if f.severity == Severity.BLOCK]
  findings += pair_findings(searches, config, label_key, blocked)
  shown = {split: [s.to_dict() for s in scores if s.eval_split == split][:_SHOWN_SCORES] for split in sorted(evals)}
  labelled = {train_split: train.labelled, **{split: counts.labelled for split, counts in evals.items()}}
  # Only scores on at least min_examples eval examples can block or warn: with none, a label copy would pass.
  judged = {s.feature for s in scores if s.eval_examples >= config.min_examples}
  details = dataclasses.replace(details, scored=Scored(shown, len({s.feature for s in scores}), len(judged), labelled,
                                                       _pairs_details(searches, config)))
  if not judged:
    counts = ', '.join(f'{split} {n}' for split, n in sorted(labelled.items()) if split != train_split)
    return CheckResult(Status.NOT_CHECKED, reason=f'too few labelled eval examples ({counts}) for any score to '
                       f'block or warn (label_proxy.min_examples={config.min_examples})', details=details)
  return CheckResult(status_for(findings, config.mode), tuple(findings), details=details)


def check_label_proxy(examples: Mapping[str, str], train_split: str, eval_splits: Sequence[str],
                      config: LabelProxyConfig, make_pipeline: Callable[[], beam.Pipeline], output_dir: str,
                      label_key: Optional[str]) -> CheckResult:
  """Scores every feature as a one-feature predictor of `label_key` (fitted on train, scored on each eval split).

  Args:
    examples: split name -> file pattern of tf.Example TFRecord files (gzip detected from the bytes).
    train_split, eval_splits: the fit split and the splits scored.
    config: thresholds and excluded features.
    make_pipeline: builds the Beam pipeline (so `beam_pipeline_args` apply); one pipeline counts every split.
    output_dir: receives one .npz file of counts per split.
    label_key: the label; without it the check is skipped (nothing to predict).

  Returns:
    A CheckResult: status, findings, details {scores: {eval split: top features}, task, skipped_features, ...}.
  """
  if config.mode == 'off':
    return CheckResult.skipped('label_proxy.mode is off')
  if not label_key:
    return CheckResult.skipped('no label_key: nothing to predict')
  splits = (train_split, *eval_splits)
  files = data.split_files(examples, splits)  # Raises naming the split and pattern that match no file.
  part = label_proxy_beam.LabelProxyReadPart(count_options(config, label_key), output_dir)
  request = read_pass.PassRequest(examples=examples, splits=splits, files=files, parts={constants.LABEL_PROXY: part})
  counts = read_pass.run_pass(request, make_pipeline).parts[constants.LABEL_PROXY]
  return summarize(counts[train_split], {split: counts[split] for split in eval_splits}, train_split, config,
                   label_key)

