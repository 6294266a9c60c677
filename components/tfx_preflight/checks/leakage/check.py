"""Train/eval leakage: exact and near duplicates across and within splits, and entities (groups) shared by splits.

The Beam part lives in leakage_beam.py (`LeakageHashes`: located RecordBatches -> typed `LeakageCounts` and the
duplicate list), fed by the read pass (read_pass.py), which reads and decodes each split once for every check and
locates every batch by file and record index, so the report can point at every duplicate. This module plans the job
(files, shards, settings) and interprets the merged counts: fail-closed checks on what was seen, per-split-pair
results, findings, and a few sample records re-read for the report. All of it pure functions of the counts, but for
that re-read: the driver never holds the hashes.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np

from tfx_preflight import constants, file_io
from tfx_preflight.checks.leakage import duplicate_chance, leakage_beam, near_duplicates, near_features
from tfx_preflight.checks.leakage.details import ExactPair, GroupPair, LeakageDetails, Near, NearPair
from tfx_preflight.checks.leakage.duplicate_chance import ChanceTest
from tfx_preflight.checks.leakage.leakage_beam import LeakageCounts
from tfx_preflight.config import LeakageConfig
from tfx_preflight.constants import Severity
from tfx_preflight.inputs import data, records
from tfx_preflight.inputs.data import InputError
from tfx_preflight.report.results import CheckResult, Finding, status_for

# Names the Beam part defines, kept here for callers of this module.
EXACT, NEAR, GROUP = leakage_beam.EXACT, leakage_beam.NEAR, leakage_beam.GROUP
DUPLICATES_FILE, DUPLICATES_HEADER = leakage_beam.DUPLICATES_FILE, leakage_beam.DUPLICATES_HEADER
STATS_FILE = leakage_beam.STATS_FILE
_Plan = leakage_beam.Plan

BATCH_SIZE = 8192
# Auto sharding: one shard per this many bytes of input files, within [MIN_SHARDS, MAX_SHARDS].
_BYTES_PER_SHARD = 32 << 20
MIN_SHARDS = 4
MAX_SHARDS = 4096
_MAX_SHOWN_VALUES = 8
_MAX_SHOWN_CHARS = 60
_REFERENCE_BYTES = 4 << 20
_MIN_IMAGE_SIDE = 4  # A float list of 16+ values that is a square (or 3 squares) is drawn as a picture.


# --- Driver side ----------------------------------------------------------------------------------------------------


def _size(path: str, unknown: int) -> int:
  """The file's length, or `unknown` where the filesystem does not tell it."""
  try:
    return file_io.size(path)
  except Exception:  # pylint: disable=broad-except
    return unknown


def _auto_shards(files: Sequence[Tuple[int, str]]) -> int:
  total = sum(_size(path, _BYTES_PER_SHARD) for _, path in files)  # Unknown: one shard's worth.
  return int(min(MAX_SHARDS, max(MIN_SHARDS, total // _BYTES_PER_SHARD)))


def _file_bytes(files: Sequence[Tuple[int, str]], split_id: int) -> int:
  """Bytes of the split's files; a file of unknown size counts as nothing (so train is held out whole)."""
  return sum(_size(path, 0) for split, path in files if split == split_id)


def reference_fraction(files: Sequence[Tuple[int, str]], num_splits: int) -> float:
  """Share of train held out as the near join's reference sample: all of it up to _REFERENCE_BYTES of train files
  (small data: the chance rate is measured on every train example, for the test's power), else about half as many
  examples as the eval splits hold (at least _REFERENCE_BYTES' worth): tens of thousands of examples measure a chance
  rate well below any block_fraction, and the eval side of the near join grows by half, not by train's size."""
  train = _file_bytes(files, 0)
  if train <= _REFERENCE_BYTES:
    return 1.0
  evals = sum(_file_bytes(files, s) for s in range(1, num_splits))
  return round(min(1.0, max(evals / 2, _REFERENCE_BYTES) / train), 6)


def make_plan(examples: Mapping[str, str], train_split: str, eval_splits: Sequence[str], config: LeakageConfig,
              label_key: Optional[str], files: Optional[Tuple[Tuple[int, str], ...]] = None) -> _Plan:
  """What the Beam job does; `files` (data.split_files of the splits, listed here when not given) are what its file
  ids index: the read pass's own list."""
  splits = (train_split, *eval_splits)
  files = data.split_files(examples, splits) if files is None else files
  exclude = tuple(sorted(set(config.exclude_features) | ({label_key} if label_key else set())))
  near = near_features.NearSettings(
      column_tolerance=config.near_column_tolerance, vector_max_distance=config.near_vector_max_distance,
      text_max_distance=config.near_text_max_distance, text_min_tokens=config.near_text_min_tokens,
      text=config.near_text,
      max_bucket_pairs=config.near_max_bucket_pairs,
      reference_fraction=reference_fraction(files, len(splits))) if config.near_duplicates else None
  return _Plan(splits=splits, files=files, exclude=exclude, label_key=label_key, group_key=config.group_key,
               near=near, num_shards=config.num_shards or _auto_shards(files), max_samples=int(config.max_samples))


def _shown_value(value: Any) -> Any:
  if isinstance(value, bytes):
    text = value.decode('utf-8', errors='replace')
    return text if len(text) <= _MAX_SHOWN_CHARS else text[:_MAX_SHOWN_CHARS] + '…'
  if isinstance(value, float):
    return float(f'{value:.6g}') if np.isfinite(value) else str(value)
  return value


def readable_example(features: Mapping[str, Any]) -> Dict[str, Any]:
  """Feature values for the report: at most a few values per feature, long strings cut."""
  shown = {}
  for name in sorted(features):
    values = features[name]
    if values is None:
      continue
    head = [_shown_value(v) for v in values[:_MAX_SHOWN_VALUES]]
    shown[name] = head + ([f'… ({len(values)} values)'] if len(values) > _MAX_SHOWN_VALUES else [])
  return shown


def read_examples_at(locations: Iterable[Tuple[str, int]]) -> Dict[Tuple[str, int], Dict[str, Any]]:
  """Decodes the records at (file, index); each file is read once, up to its largest wanted index."""
  from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder
  wanted: Dict[str, set] = {}
  for path, index in locations:
    wanted.setdefault(path, set()).add(index)
  decoder = ExamplesToRecordBatchDecoder()
  found = {}
  for path, indices in sorted(wanted.items()):
    last = max(indices)
    for start, serialized in records.iter_records(path, BATCH_SIZE, verify_crc=False):
      for i in sorted(j for j in indices if start <= j < start + len(serialized)):
        batch = decoder.DecodeBatch([serialized[i - start]])
        found[(path, i)] = {name: column[0] for name, column in batch.to_pydict().items()}
      if start + len(serialized) > last:
        break
  return found


def _fraction(count: int, total: int) -> float:
  return round(count / total, 6) if total else 0.0


def _severity(fraction: float, config: LeakageConfig) -> Optional[Severity]:
  """Block at or above block_fraction (a 1% leak blocks at the default 0.01), warn above warn_fraction."""
  if fraction > 0 and fraction >= config.block_fraction:
    return Severity.BLOCK
  if fraction > config.warn_fraction:
    return Severity.WARN
  return None


def _chance_settings(config: LeakageConfig) -> duplicate_chance.ChanceSettings:
  return duplicate_chance.ChanceSettings(config.duplicate_p_value, config.min_duplicates, config.duplicate_warn_p_value)


def _exact_chance(counts: LeakageCounts, plan: _Plan, eval_split: str, config: LeakageConfig) -> ChanceTest:
  """Eval examples with an exact twin of the same label in train, against train's own exact repeats (every train
  example is the reference: its repeats within train are counted exactly)."""
  pair = counts.pair(EXACT, eval_split)
  within = counts.within.get(plan.splits[0]) or leakage_beam.WithinCounts()
  repeats = within.duplicate_examples + within.duplicate_groups - within.label_conflict_examples
  return duplicate_chance.chance_test(pair.duplicate_examples - pair.label_conflicts, counts.examples[eval_split],
                                      repeats, counts.examples[plan.splits[0]], _chance_settings(config))


def _near_chance(counts: LeakageCounts, plan: _Plan, eval_split: str, config: LeakageConfig) -> ChanceTest:
  """Eval examples whose best train twin is near but not exact, same label, against the same count on the held-out
  sample of train probed against the rest of train (leakage_beam.NEAR_REFERENCE)."""
  pair = counts.pair(NEAR, eval_split)
  reference = counts.pair(leakage_beam.NEAR_REFERENCE, plan.splits[0])
  return duplicate_chance.chance_test(
      pair.near_only_examples - pair.near_only_label_conflicts, counts.examples[eval_split],
      reference.near_only_examples - reference.near_only_label_conflicts, reference.train_examples,
      _chance_settings(config))


def _hashed_features(counts: LeakageCounts, plan: _Plan) -> Dict[str, List[str]]:
  return {split: [f for f in counts.features.get(split, ()) if f not in plan.exclude] for split in plan.splits}


def _check_inputs_seen(counts: LeakageCounts, plan: _Plan, config: LeakageConfig) -> None:
  """Fail closed: an empty split, nothing to hash, a misspelled excluded feature or an absent group key."""
  seen = set()
  for split_id, split in enumerate(plan.splits):
    if not counts.examples.get(split):
      files = ', '.join(path for s, path in plan.files if s == split_id)
      raise ValueError(f'Leakage check: split {split!r} has no examples ({files}).')
    seen |= set(counts.features.get(split, ()))
    if not _hashed_features(counts, plan)[split]:
      raise InputError(f'Leakage check: split {split!r} has no feature left to hash after excluding '
                       f'{", ".join(plan.exclude)}.')
  unknown = [name for name in config.exclude_features if name not in seen]
  if unknown:
    raise InputError(f'exclude_features (top-level or leakage) names {", ".join(map(repr, unknown))}, which no '
                     'example has (misspelled?): the content hash would silently include what was meant to be '
                     f'excluded. Features: {", ".join(sorted(seen))}.')
  if plan.group_key:
    absent = [s for s in plan.splits if not counts.group_present.get(s)]
    if absent:
      raise ValueError(f'Leakage check: group_key {plan.group_key!r} is absent from every example of split(s) '
                       f'{", ".join(absent)}. Features: {", ".join(sorted(seen))}.')


def _samples(kind: str, raw: Sequence[Sequence[Any]], plan: _Plan, values: Mapping[Tuple[str, int], Any]) -> List[Dict]:
  samples = []
  for eval_file, eval_index, train_file, train_index, digest, eval_count, train_count, conflict in raw:
    eval_path, train_path = plan.files[eval_file][1], plan.files[train_file][1]
    eval_values = values.get((eval_path, eval_index), {})
    sample = {'hash': digest, 'file': eval_path, 'index': eval_index, 'train_file': train_path,
              'train_index': train_index, 'copies_in_b': eval_count, 'copies_in_a': train_count}
    if kind == GROUP:
      sample['group'] = readable_example({plan.group_key: eval_values.get(plan.group_key)}).get(plan.group_key)
    else:
      sample['label_conflict'] = conflict
      sample['features'] = readable_example({k: v for k, v in eval_values.items() if k not in plan.exclude})
      if plan.label_key:
        sample['label'] = readable_example({plan.label_key: eval_values.get(plan.label_key)}).get(plan.label_key)
    samples.append(sample)
  return samples


def image_shape(length: int, configured: Sequence[int]) -> Optional[Tuple[int, ...]]:
  """The picture shape of a float list of `length` values: the configured shape when its size fits, else a square
  (grey) or a square with 3 channels (RGB) when the length is one, else None (not image-like)."""
  if configured:
    return tuple(configured) if int(np.prod(configured)) == length else None
  for channels in (1, 3):
    side = math.isqrt(length // channels) if length % channels == 0 else 0
    if side >= _MIN_IMAGE_SIDE and side * side * channels == length:
      return (side, side) if channels == 1 else (side, side, 3)
  return None


def pictures(eval_values: Mapping[str, Any], train_values: Mapping[str, Any],
             configured: Sequence[int]) -> Dict[str, Dict[str, Any]]:
  """Image-like float features of a near pair as 8-bit pixels (base64) on one scale, for report.html's pictures."""
  shown = {}
  for name in sorted(set(eval_values) & set(train_values)):
    a, b = eval_values[name], train_values[name]
    if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b) or len(a) < 4:
      continue
    if not all(isinstance(v, float) for v in a[:8] + b[:8]):
      continue
    shape = image_shape(len(a), configured)
    if shape is None:
      continue
    both = np.nan_to_num(np.array([a, b], dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(both.min()), float(both.max())
    scaled = np.round((both - low) / (high - low) * 255.0) if high > low else np.zeros_like(both)
    pixels = scaled.astype(np.uint8)
    shown[name] = {'shape': list(shape), 'eval': base64.b64encode(pixels[0].tobytes()).decode('ascii'),
                   'train': base64.b64encode(pixels[1].tobytes()).decode('ascii')}
  return shown


def _near_samples(raw: Sequence[Sequence[Any]], plan: _Plan, values: Mapping[Tuple[str, int], Any],
                  image_shape_setting: Sequence[int] = ()) -> List[Dict]:
  """Both examples of each sampled pair, their distances per feature group and the thresholds they passed."""
  samples = []
  limits = near_duplicates.thresholds(plan.near)
  for eval_file, eval_index, train_file, train_index, columns, vectors, text, not_exact, conflict, mask in raw:
    eval_path, train_path = plan.files[eval_file][1], plan.files[train_file][1]
    distances = dict(zip(near_duplicates.GROUPS, (columns, vectors, text)))
    groups = near_duplicates.present_groups(mask)
    sample = {'file': eval_path, 'index': eval_index, 'train_file': train_path, 'train_index': train_index,
              'exact': not not_exact, 'label_conflict': conflict,
              'distances': {near_duplicates.DISTANCE_NAMES[g]: distances[g] for g in groups},
              'thresholds': {near_duplicates.DISTANCE_NAMES[g]: limits[g] for g in groups}}
    for prefix, path, index in (('', eval_path, eval_index), ('train_', train_path, train_index)):
      found = values.get((path, index), {})
      sample[prefix + 'features'] = readable_example({k: v for k, v in found.items() if k not in plan.exclude})
      if plan.label_key:
        sample[prefix + 'label'] = readable_example({plan.label_key: found.get(plan.label_key)}).get(plan.label_key)
    drawn = pictures({k: v for k, v in values.get((eval_path, eval_index), {}).items() if k not in plan.exclude},
                     values.get((train_path, train_index), {}), image_shape_setting)
    if drawn:
      sample['pictures'] = drawn
    samples.append(sample)
  return samples


def _near_result(counts: LeakageCounts, plan: _Plan, eval_split: str, values: Mapping[Tuple[str, int], Any],
                 config: LeakageConfig) -> NearPair:
  pair = counts.pair(NEAR, eval_split)
  chance = _near_chance(counts, plan, eval_split, config)
  return NearPair((plan.splits[0], eval_split), pair.duplicate_examples, pair.near_only_examples,
                  _fraction(pair.duplicate_examples, counts.examples[eval_split]), pair.label_conflicts,
                  pair.near_only_label_conflicts, chance.to_dict(),
                  _near_samples(pair.samples, plan, values, config.image_shape))


def _sample_locations(counts: LeakageCounts, plan: _Plan) -> List[Tuple[str, int]]:
  locations = []
  for kind in plan.kinds:
    for pair in (counts.pair(kind, split) for split in plan.splits[1:]):
      for eval_file, eval_index, train_file, train_index, *_ in pair.samples:
        locations.append((plan.files[eval_file][1], eval_index))
        if kind == NEAR:
          locations.append((plan.files[train_file][1], train_index))
  return locations


def _exact_pair(counts: LeakageCounts, plan: _Plan, eval_split: str, values: Mapping[Tuple[str, int], Any],
                config: LeakageConfig) -> ExactPair:
  pair = counts.pair(EXACT, eval_split)
  chance = _exact_chance(counts, plan, eval_split, config)
  leaked = chance.excess_fraction + (_near_chance(counts, plan, eval_split, config).excess_fraction
                                     if plan.near else 0.0)
  return ExactPair((plan.splits[0], eval_split), pair.duplicate_examples, pair.unique_duplicates,
                   _fraction(pair.duplicate_examples, counts.examples[eval_split]), pair.train_examples,
                   _samples(EXACT, pair.samples, plan, values), pair.label_conflicts,
                   chance.to_dict(), round(leaked, 6))


def _group_pair(counts: LeakageCounts, plan: _Plan, eval_split: str, values: Mapping[Tuple[str, int], Any]
                ) -> GroupPair:
  pair = counts.pair(GROUP, eval_split)
  return GroupPair((plan.splits[0], eval_split), pair.duplicate_examples,
                   _fraction(pair.duplicate_examples, counts.examples[eval_split]), pair.train_examples,
                   _samples(GROUP, pair.samples, plan, values), pair.unique_duplicates)


def _finding(severity: Severity, kind: str, message: str, feature: Optional[str] = None, **details: Any) -> Finding:
  return Finding(constants.LEAKAGE, kind, severity, message, feature=feature, details=details)


def _findings(result: LeakageDetails, config: LeakageConfig, plan: _Plan) -> List[Finding]:
  """The findings of the per-split results: cross-split, near and group duplicates over the warn / block fractions,
  label conflicts, an incomplete near-duplicate search and duplicates within a split."""
  findings = _cross_split_findings(result, config, plan)
  findings += _near_search_findings(result, config, plan)
  for pair in result.group_leakage or ():
    a, b = pair.splits
    severity = _severity(pair.fraction_of_b, config) if pair.shared_groups else None
    if severity:
      findings.append(_finding(
          severity, 'group_leakage',
          f'{pair.shared_groups} {plan.group_key!r} group(s) occur in both {a} and {b}: they hold '
          f'{pair.duplicate_examples} example(s) of {b} ({pair.fraction_of_b:.2%}) and '
          f'{pair.examples_in_a_involved} of {a}.', feature=plan.group_key, splits=[a, b],
          shared_groups=pair.shared_groups, fraction_of_b=pair.fraction_of_b))
  return findings + _within_split_findings(result, plan)


def _cross_split_findings(result: LeakageDetails, config: LeakageConfig, plan: _Plan) -> List[Finding]:
  """Exact and near copies of train in each eval split beyond chance and the warn / block fractions; label
  conflicts."""
  findings = []
  near_pairs = {p.splits: p for p in (result.near.pairs if result.near else ())}
  for pair in result.cross_split:
    a, b = pair.splits
    chance, leaked = pair.chance, pair.leaked_fraction
    severity = _severity(leaked, config)
    near = near_pairs.get((a, b))
    near_excess = near.chance['excess_examples'] if near and near.chance['significant'] else 0
    if severity and chance['significant']:
      with_near = (f' With {near_excess:.3g} near copies beyond chance, {leaked:.2%} of {b} leaked from {a}.'
                   if near_excess else '')
      findings.append(_finding(
          severity, 'cross_split_duplicates', f'{chance["observed"]} example(s) of {b} '
          f'({_fraction(chance["observed"], chance["eval_examples"]):.2%}) have the same content and label as an '
          f'example of {a}; {chance["expected"]:.3g} expected by chance from {a}\'s own repeats '
          f'(p = {chance["p_value"]:.3g}).{with_near}', splits=[a, b], duplicate_examples=chance['observed'],
          fraction_of_b=pair.fraction_of_b, expected_by_chance=chance['expected'], p_value=chance['p_value'],
          leaked_fraction=leaked))
    if severity and near_excess:
      findings.append(_finding(
          severity, 'near_duplicates', f'{near.chance["observed"]} example(s) of {b} are near copies (not exact, '
          f'same label) of examples of {a}: augmented, re-encoded or noised copies; {near.chance["expected"]:.3g} '
          f'expected by chance from near repeats within {a} (p = {near.chance["p_value"]:.3g}); '
          f'{leaked:.2%} of {b} leaked counting exact copies.', splits=[a, b],
          near_only_examples=near.chance['observed'], expected_by_chance=near.chance['expected'],
          p_value=near.chance['p_value'], leaked_fraction=leaked))
    findings += _suspect_findings(pair.chance, near.chance if near else None, a, b, config)
    conflicts = pair.label_conflicts + (near.near_only_label_conflicts if near else 0)
    if conflicts:
      findings.append(_finding(
          Severity.WARN, 'label_conflict',
          f'{conflicts} example(s) of {b} occur in {a} ({pair.label_conflicts} exactly'
          + (f', {near.near_only_label_conflicts} as near copies' if near else '') + f') with a different '
          f'{plan.label_key!r}: the same input labelled differently (different entities with equal features, or '
          'label noise); not counted as leakage.', splits=[a, b], label_conflicts=conflicts))
  return findings


def _suspect_findings(exact: Mapping[str, Any], near: Optional[Mapping[str, Any]], a: str, b: str,
                      config: LeakageConfig) -> List[Finding]:
  """Copies beyond chance that too few examples cannot prove (duplicate_chance.ChanceTest.suspect): warnings, so a
  handful of copies in a small eval set does not pass in silence."""
  findings = []
  for kind, what, chance in (('possible_cross_split_duplicates', 'have the same content and label as', exact),
                             ('possible_near_duplicates', 'are near copies (same label) of', near)):
    if chance and chance.get('suspect'):
      findings.append(_finding(
          Severity.WARN, kind, f'{chance["observed"]} example(s) of {b} '
          f'({_fraction(chance["observed"], chance["eval_examples"]):.2%}) {what} examples of {a}, more than the '
          f'{chance["expected"]:.3g} expected by chance from {a}\'s own repeats, but too few to rule chance out '
          f'(p = {chance["p_value"]:.3g} >= {config.duplicate_p_value:g}): unless {b} was drawn at random from the '
          f'same data as {a}, they are leaked; they are listed in duplicates.tsv.', splits=[a, b],
          duplicate_examples=chance['observed'], expected_by_chance=chance['expected'], p_value=chance['p_value']))
  return findings


def _near_search_findings(result: LeakageDetails, config: LeakageConfig, plan: _Plan) -> List[Finding]:
  """Near copies within train (the chance reference) and a near search that skipped buckets."""
  if result.near is None:
    return []
  findings = []
  reference = result.near.pairs[0].chance if result.near.pairs else None
  if reference and reference['reference_repeats'] >= config.min_duplicates:
    train = plan.splits[0]
    findings.append(_finding(
        Severity.WARN, 'within_split_near_duplicates',
        f'{reference["reference_repeats"]} of {reference["reference_examples"]} held-out {train} examples have a near '
        f'copy (not exact, same label) elsewhere in {train}: natural for rounded or low-precision values, but on '
        'images, embeddings or measurements it means augmented or re-encoded copies were made before the split. Near '
        'copies across splits count as leakage only beyond this rate, so split by the original example (group_key) '
        'when augmenting.', splits=[train], near_only_examples=reference['reference_repeats'],
        reference_examples=reference['reference_examples']))
  skipped = result.near.buckets.get('buckets_skipped', 0)
  if skipped:
    findings.append(_finding(
        Severity.WARN, 'near_duplicates_incomplete',
        f'Near-duplicate search skipped {skipped} bucket(s) holding more than '
        f'{result.near.settings["max_bucket_pairs"]} train x eval pairs ({result.near.buckets["pairs_skipped"]} '
        f'pairs unchecked); raise leakage.near_max_bucket_pairs to check them.', buckets_skipped=skipped))
  return findings


def _within_split_findings(result: LeakageDetails, plan: _Plan) -> List[Finding]:
  """Repeats within a split, and copies within a split with conflicting labels."""
  findings = []
  for split, count in sorted(result.within_split.items()):
    if count:
      findings.append(_finding(
          Severity.WARN, 'within_split_duplicates',
          f'{count} example(s) of {split} repeat another example of {split} (same content).', splits=[split],
          duplicate_examples=count))
  for split, conflict in sorted((result.within_split_label_conflicts or {}).items()):
    if conflict['examples']:
      findings.append(_finding(
          Severity.WARN, 'within_split_label_conflict',
          f'{conflict["examples"]} example(s) of {split} ({conflict["contents"]} distinct content(s)) have a copy in '
          f'{split} with another {plan.label_key!r}: the same input carries conflicting labels, so no model is right '
          'on all of them (label noise, or a feature that told them apart was dropped or excluded).', splits=[split],
          label_conflict_examples=conflict['examples'], label_conflict_contents=conflict['contents']))
  return findings


def summarize(counts: LeakageCounts, plan: _Plan, config: LeakageConfig, output_dir: str) -> CheckResult:
  """The check's result from the merged counts, with the sample records re-read from the files."""
  _check_inputs_seen(counts, plan, config)
  return interpret(counts, plan, config, output_dir, read_examples_at(_sample_locations(counts, plan)))


def interpret(counts: LeakageCounts, plan: _Plan, config: LeakageConfig, output_dir: str,
              values: Mapping[Tuple[str, int], Mapping[str, Any]]) -> CheckResult:
  """The check's result as a pure function of the counts and the sampled records' values ((file, index) -> feature
  values, as `read_examples_at` gives them); `summarize` checks the counts and reads the samples first."""
  evals = plan.splits[1:]
  conflicts = None
  if plan.label_key:
    conflicts = {s: {'examples': counts.within[s].label_conflict_examples if s in counts.within else 0,
                     'contents': counts.within[s].label_conflict_groups if s in counts.within else 0}
                 for s in plan.splits}
  near = None
  if plan.near:
    buckets = counts.near_buckets or leakage_beam.NearBucketCounts()
    near = Near(tuple(_near_result(counts, plan, b, values, config) for b in evals), plan.near.describe(),
                dict(sorted(dataclasses.asdict(buckets).items())))
  details = LeakageDetails(
      cross_split=tuple(_exact_pair(counts, plan, b, values, config) for b in evals),
      within_split={s: counts.within[s].duplicate_examples if s in counts.within else 0 for s in plan.splits},
      examples={s: counts.examples[s] for s in plan.splits}, hashed_features=_hashed_features(counts, plan),
      excluded_features=list(plan.exclude), features_seen={s: sorted(counts.features[s]) for s in plan.splits},
      duplicates_file=os.path.join(output_dir, DUPLICATES_FILE),
      hash='128-bit canonical content hash (two 64-bit lanes) of the hashed features',
      chance_settings=_chance_settings(config).to_dict(),
      within_split_label_conflicts=conflicts, near=near,
      group_leakage=tuple(_group_pair(counts, plan, b, values) for b in evals) if plan.group_key else None,
      group_key=plan.group_key or None)
  findings = _findings(details, config, plan)
  return CheckResult(status_for(findings, config.mode), tuple(findings), details=details)


def check_leakage(examples: Mapping[str, str], train_split: str, eval_splits: Sequence[str], config: LeakageConfig,
                  make_pipeline: Callable[[], beam.Pipeline], output_dir: str,
                  label_key: Optional[str] = None) -> CheckResult:
  """Finds eval examples whose content (all features but the label and config.exclude_features) also occurs in train.

  Args:
    examples: split name -> file pattern of tf.Example TFRecord files (gzip when the name ends in .gz).
    train_split, eval_splits: every eval split is compared with train_split.
    config: thresholds, excluded features, near-duplicate and group settings.
    make_pipeline: builds the Beam pipeline (so `beam_pipeline_args` apply); one pipeline runs every split.
    output_dir: receives duplicates.tsv (every example whose hash occurs more than once) and the merged counters.
    label_key: left out of the hash; same content with a different label is a label conflict.

  Returns:
    A CheckResult: status, findings, details {cross_split: [...], within_split: {split: n}, near_duplicates?,
    group_leakage?, ...}.

  Raises:
    ValueError naming the split, file or feature when the check cannot really run.
  """
  from tfx_preflight.inputs import read_pass  # The read pass feeds leakage_beam's transform: imported when used.
  plan = make_plan(examples, train_split, eval_splits, config, label_key)
  request = read_pass.PassRequest(examples=examples, splits=plan.splits, files=plan.files,
                                  parts={constants.LEAKAGE: leakage_beam.LeakageReadPart(plan, output_dir)})
  return summarize(read_pass.run_pass(request, make_pipeline).parts[constants.LEAKAGE], plan, config, output_dir)

