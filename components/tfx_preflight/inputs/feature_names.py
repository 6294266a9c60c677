"""Every feature name the user gave, checked against the names the data really has, before any check trusts them:
a misspelled label_key or exclude_features would otherwise silently check something else, and a schema of other
data would set thresholds for nothing. Errors name the setting, the split and the features there are.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Dict, Iterable, Mapping, Sequence, Tuple

from tensorflow_metadata.proto.v0 import statistics_pb2

from tfx_preflight.config import PreflightConfig
from tfx_preflight.inputs import data
from tfx_preflight.inputs.statistics import StatisticsBySplit


def _feature_names(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> set:
  return {'.'.join(f.path.step) or f.name for dataset in statistics.datasets for f in dataset.features}


def check_keys_present(config: PreflightConfig, statistics: StatisticsBySplit, splits: Sequence[str]) -> None:
  """label_key and group_key must name a feature of every split: checking without them would prove nothing."""
  check_names(config, {split: _feature_names(statistics[split]) for split in splits})


def _shown(names: Iterable[str]) -> str:
  """Names listed for a message; one holding an invisible character (a byte-order mark, a zero-width space) is quoted
  with it escaped, so 'label' and '\\ufefflabel' do not look the same."""
  names = [name if name.isprintable() else repr(name) for name in sorted(names)]
  return (', '.join(names[:20]) + (', ...' if len(names) > 20 else '')) or '(none)'


def _bom_hint(key: str, names: Iterable[str]) -> str:
  return (" (a CSV saved with a UTF-8 byte-order mark: CsvExampleGen keeps it in the first column's name; save the "
          'files as UTF-8 without BOM)') if '\ufeff' + key in names else ''


def _normal_form(name: str) -> str:
  return next((form for form in ('NFC', 'NFD') if unicodedata.normalize(form, name) == name), 'mixed')


def _check_normalization(names_by_split: Mapping[str, Iterable[str]]) -> None:
  """Feature names that differ only in Unicode normalization ('café' composed in one split, 'e' + combining accent in
  another) print alike, and TFX takes them for two features: each split would seem to miss the other's."""
  seen: Dict[str, Tuple[str, str]] = {}
  for split, names in sorted(names_by_split.items()):
    for name in sorted(names):
      first = seen.setdefault(unicodedata.normalize('NFC', name), (name, split))
      if first[0] != name:
        raise data.InputError(
            f'feature {first[0]!r} of split {first[1]!r} ({_normal_form(first[0])}: {ascii(first[0])}) and {name!r} '
            f'of split {split!r} ({_normal_form(name)}: {ascii(name)}) differ only in Unicode normalization; TFX and '
            'the model take them for two different features. Write the names in one form (NFC).')


def check_names(config: PreflightConfig, names_by_split: Mapping[str, Iterable[str]]) -> None:
  """Every feature name the user gave, checked against the features the data really has, whichever checks run:
  label_key and leakage.group_key in every split, each section's exclude_features in at least one split (an ID may
  exist in train only). A misspelled name would otherwise silently check something else."""
  names_by_split = {split: set(names) for split, names in names_by_split.items()}
  _check_normalization(names_by_split)
  for setting, key in (('label_key', config.label_key), ('leakage.group_key', config.leakage.group_key)):
    for split, names in names_by_split.items():
      if key and key not in names:
        raise data.InputError(f'{setting} {key!r} is not a feature of split {split!r}; its features: '
                              f'{_shown(names)}{_bom_hint(key, names)}.')
  seen = set().union(*names_by_split.values())
  excluded = [('skew.exclude_features', config.skew.exclude_features),
              ('leakage.exclude_features', config.leakage.exclude_features),
              ('label_proxy.exclude_features', config.label_proxy.exclude_features),
              ('exclude_features', config.exclude_features)]
  for setting, names in excluded:
    unknown = [name for name in names if name not in seen]
    if unknown:
      raise data.InputError(f'{setting} names {", ".join(map(repr, unknown))}, which no example has (misspelled? '
                            f'it would be compared after all); features: {_shown(seen)}.')


def check_schema_describes_the_data(schema: Any, train_statistics: Any) -> None:
  """A schema none of whose features the data has is a schema of other data (or of Transform's output): its
  comparators would set no threshold and its types describe nothing, while the report said they were used."""
  if schema is None or not schema.feature:
    return
  described = {f.name for f in schema.feature}
  names = _feature_names(train_statistics)
  if not described & names:
    raise data.InputError(f'the schema describes none of the features of the data ({_shown(described)}); features: '
                          f'{_shown(names)}. A schema of other data, or of transformed features? Its thresholds '
                          'would apply to nothing.')
