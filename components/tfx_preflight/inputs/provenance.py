"""Inputs that must belong to the examples being gated: the transform graph, the transformed examples, the statistics.

Each is checked against what the examples really hold (their statistics, and the read pass's counts), because each
can come from another data set without any error: a transform graph whose raw features the examples lack fills in
defaults and hands the probe a constant label; transformed examples of another data set (or raw examples wired in
their place) are what the probe then trains on; statistics of another ExampleGen run make the skew check judge data
nobody trains on. A mismatch raises `data.InputError` naming the input and what differs; count differences inside
the tolerance are returned as notes for report.json's `inputs` (and report.html).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from tfx_preflight import file_io
from tfx_preflight.inputs import data, records
from tfx_preflight.inputs import statistics as statistics_lib
from tfx_preflight.inputs.statistics import StatisticsBySplit

# Where Transform's output keeps the schemas of its input and of its output (tft.TFTransformOutput's layout).
RAW_SCHEMA = os.path.join('metadata', 'schema.pbtxt')
TRANSFORMED_SCHEMA = os.path.join('transformed_metadata', 'schema.pbtxt')
# Statistics of another ExampleGen run over the same rows (TFX's own testdata: 4,966 vs 5,091 eval examples) differ
# by a few percent and still describe the data; more than this is another data set or a sampled one. The one
# tolerance for every supplied input that must count the examples gated (statistics, transformed examples).
COUNT_TOLERANCE = 0.1


def beyond_tolerance(listed: int, counted: int) -> bool:
  """Whether an input counting `listed` examples cannot have been made from the `counted` examples read."""
  return abs(listed - counted) > COUNT_TOLERANCE * max(counted, 1)
# Lifecycle stages TFT leaves out of the feature spec: the examples need not have these features.
_NOT_IN_SPEC = (schema_pb2.DEPRECATED, schema_pb2.PLANNED, schema_pb2.ALPHA, schema_pb2.DEBUG_ONLY,
                schema_pb2.DISABLED)
# Statistics types each schema type is read from (BYTES features have STRING or BYTES statistics).
_STATS_TYPES = {
    schema_pb2.INT: {statistics_pb2.FeatureNameStatistics.INT},
    schema_pb2.FLOAT: {statistics_pb2.FeatureNameStatistics.FLOAT},
    schema_pb2.BYTES: {statistics_pb2.FeatureNameStatistics.STRING, statistics_pb2.FeatureNameStatistics.BYTES},
}


def _names(names: Sequence[str], limit: int = 12) -> str:
  names = sorted(names)
  return (', '.join(names[:limit]) + (', ...' if len(names) > limit else '')) or '(none)'


def graph_schema(graph_uri: str, which: str) -> Optional[schema_pb2.Schema]:
  """The raw (RAW_SCHEMA) or transformed (TRANSFORMED_SCHEMA) schema of a transform graph; None if it has none."""
  path = os.path.join(graph_uri, which)
  if not file_io.exists(path):
    return None
  with file_io.open(path, 'r') as f:
    return text_format.Parse(f.read(), schema_pb2.Schema())


def _spec_features(schema: schema_pb2.Schema) -> List[schema_pb2.Feature]:
  return [f for f in schema.feature if f.lifecycle_stage not in _NOT_IN_SPEC]


def _statistics_types(statistics: StatisticsBySplit, splits: Sequence[str]) -> Dict[str, Set[int]]:
  """Feature name -> the statistics types it has in any of `splits`."""
  types: Dict[str, Set[int]] = {}
  for split in splits:
    for dataset in statistics[split].datasets:
      for feature in dataset.features:
        kinds = types.setdefault('.'.join(feature.path.step) or feature.name, set())
        if _has_values(feature):  # A feature with no value has no type of its own (TFDV writes STRING for it).
          kinds.add(feature.type)
  return types


def _has_values(feature: Any) -> bool:
  kind = feature.WhichOneof('stats')
  stats = getattr(feature, kind, None) if kind else None
  common = getattr(stats, 'common_stats', None)
  return common is None or common.num_non_missing > 0


def check_transform_graph_reads_the_examples(graph_uri: Optional[str], statistics: StatisticsBySplit,
                                             splits: Sequence[str]) -> None:
  """The transform graph's raw features must be features of the examples, with the same types: Transform parses the
  examples with this spec, so a graph made for other data reads defaults (or fails) instead of these features."""
  schema = graph_schema(graph_uri, RAW_SCHEMA) if graph_uri else None
  if schema is None:
    return
  seen = _statistics_types(statistics, splits)
  features = _spec_features(schema)
  missing = [f.name for f in features if f.name not in seen and
             (f.presence.min_fraction >= 1.0 or not any(g.name in seen for g in features))]
  if missing:
    raise data.InputError(
        f'The transform graph ({graph_uri}) reads raw features the examples do not have: {_names(missing)}; the '
        f'examples have: {_names(seen)}. It was made for other data: give Preflight (and Trainer) the transform '
        'graph Transform made from these examples.')
  wrong = [f'{f.name} ({schema_pb2.FeatureType.Name(f.type)} in the graph, '
           f'{"/".join(sorted(statistics_pb2.FeatureNameStatistics.Type.Name(t) for t in seen[f.name]))} in the '
           'examples)' for f in features
           if seen.get(f.name) and f.type in _STATS_TYPES and not _STATS_TYPES[f.type] & seen[f.name]]
  if wrong:
    raise data.InputError(
        f'The transform graph ({graph_uri}) reads features with other types than the examples have: '
        f'{"; ".join(wrong[:8])}. Parsing these examples with its spec fails or reads other values: give '
        'Preflight (and Trainer) the transform graph Transform made from these examples.')


def count_records(pattern: str, what: str) -> int:
  """Records of every file `pattern` matches (framing only, nothing decoded)."""
  return sum(len(chunk) for path in data.matching_files(pattern, what)
             for _, chunk in records.iter_records(path, 65536, verify_crc=False))


def _first_record_features(pattern: str, what: str) -> Set[str]:
  import tensorflow as tf  # Loaded already by TFDV whenever transformed examples are given.
  for path in data.matching_files(pattern, what):
    for _, chunk in records.iter_records(path, 1, verify_crc=False):
      return set(tf.train.Example.FromString(chunk[0]).features.feature)
  return set()


def count_difference(what: str, split: str, listed: int, counted: int, provenance: Mapping[str, Any]
                     ) -> Optional[Dict[str, Any]]:
  """A note when `what` counts other examples than the read pass counted in `split`; raises beyond the tolerance."""
  if listed == counted:
    return None
  if beyond_tolerance(listed, counted):
    raise data.InputError(
        f'The {what} ({provenance.get(what.replace(" ", "_"), "given")}) have {listed} examples in split {split!r} but '
        f'the examples ({provenance.get("examples", "given")}) have {counted}: they were not made from these '
        'examples. Give Preflight the outputs made from the examples it gates.')
  return {'input': what.replace(' ', '_'), 'split': split, 'listed': int(listed), 'counted': int(counted)}


def check_transformed_examples(transformed: Optional[Mapping[str, str]], graph_uri: Optional[str],
                               counted: Mapping[str, int], provenance: Mapping[str, Any]) -> List[Dict[str, Any]]:
  """Transformed examples must be this graph's output (its transformed features) made from these examples (as many
  per split, within the tolerance): raw examples wired in their place, or another data set's, fail naming the split.
  Returns the count differences inside the tolerance."""
  if not transformed:
    return []
  schema = graph_schema(graph_uri, TRANSFORMED_SCHEMA) if graph_uri else None
  outputs = {f.name for f in _spec_features(schema)} if schema is not None else set()
  notes = []
  for split, raw_count in sorted(counted.items()):
    if split not in transformed:
      continue
    what = f'transformed examples of split {split!r}'
    has = _first_record_features(transformed[split], what)
    if outputs and not outputs <= has:
      raise data.InputError(
          f'The transformed examples of split {split!r} ({transformed[split]}) are not the output of the transform '
          f'graph ({graph_uri}): they lack its features {_names(outputs - has)} and hold {_names(has)}. Raw '
          "examples, or another graph's output? Give Preflight the transformed examples Trainer reads.")
    note = count_difference('transformed examples', split, count_records(transformed[split], what), raw_count,
                            provenance)
    if note:
      notes.append(note)
  return notes


# Per-feature agreement between supplied statistics and the read pass's sketch (feature_sketch.py): the mean may move
# by this many standard deviations, the standard deviation by this factor, before the statistics describe other data.
# Another ExampleGen run over the same rows moves both by a few hundredths; a rescaled feature by orders of magnitude;
# the margins are wide because the sketch has no quantiles and heavy tails move a standard deviation.
MEAN_SHIFT_STDS = 1.0
STD_RATIO = 5.0
# Fewer numeric values than this on either side say too little about a feature's numbers.
MIN_VALUES = 100


def _common_stats(feature: statistics_pb2.FeatureNameStatistics) -> Optional[statistics_pb2.CommonStatistics]:
  kind = feature.WhichOneof('stats')
  return getattr(feature, kind).common_stats if kind else None


def _moments(n: float, total: float, squares: float):
  mean = total / n
  return mean, max(squares / n - mean * mean, 0.0) ** 0.5


def _numbers_differ(feature: statistics_pb2.FeatureNameStatistics, sketched: Sequence[float]) -> Optional[str]:
  """'mean 0.51 in the statistics, 130 in the examples' when the numbers tell other data; None when they agree."""
  _, values, total, squares = sketched
  if feature.WhichOneof('stats') != 'num_stats' or min(values, feature.num_stats.common_stats.tot_num_values) < MIN_VALUES:
    return None
  mean, std = _moments(values, total, squares)
  listed_mean, listed_std = feature.num_stats.mean, feature.num_stats.std_dev
  spread = max(std, listed_std)
  if abs(mean - listed_mean) > MEAN_SHIFT_STDS * spread and spread > 0:
    return f'mean {listed_mean:.4g} in the statistics, {mean:.4g} in the examples'
  low, high = sorted((std, listed_std))
  if high > STD_RATIO * low and high > 0:
    return f'standard deviation {listed_std:.4g} in the statistics, {std:.4g} in the examples'
  return None


# A feature present in at most this fraction of a split's examples may be known to one ExampleGen run and not another.
RARE_FRACTION = 0.01


def check_statistics_describe_the_examples(statistics: StatisticsBySplit, sketches: Mapping[str, Any],
                                           provenance: Mapping[str, Any]) -> None:
  """Supplied statistics must describe these examples feature by feature: the same features (a rare one aside) and,
  for numeric ones, the same mean and spread of their values. Statistics of another ExampleGen run with the same
  example count (the skew check would judge data nobody trains on) fail, naming the split, the features and what
  differs. Presence counts are not compared: TFX versions differ on whether an empty CSV cell makes a feature
  present (TFX's own testdata statistics count `company` in every eval example, its examples in two thirds)."""
  what = f'The statistics ({provenance.get("statistics", "given")})'
  for split in sorted(sketches):
    seen = sketches[split]['features']
    rare = RARE_FRACTION * int(sketches[split]['examples'])
    whole = statistics_lib.whole_split(statistics[split])
    listed = {'.'.join(f.path.step) or f.name: f for f in (whole.features if whole is not None else [])}
    differences = [f'{name}: only in the statistics' for name in sorted(set(listed) - set(seen))
                   if _common_stats(listed[name]) is None or _common_stats(listed[name]).num_non_missing > rare]
    differences += [f'{name}: only in the examples' for name in sorted(set(seen) - set(listed)) if seen[name][0] > rare]
    for name in sorted(set(listed) & set(seen)):
      numbers = _numbers_differ(listed[name], seen[name])
      if numbers:
        differences.append(f'{name}: {numbers}')
    if differences:
      raise data.InputError(
          f'{what} of split {split!r} do not describe these examples ({provenance.get("examples", "given")}): '
          f'{"; ".join(differences[:6])}. They were computed from other data (another ExampleGen run or a '
          'transformed copy): give StatisticsGen the same examples, or leave statistics out for Preflight to '
          'compute them.')
