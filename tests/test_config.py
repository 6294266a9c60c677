"""PreflightConfig: every bad value is refused with a message naming the setting; JSON round-trips exactly."""

import pytest

from tfx_preflight.config import ConfigError, LeakageConfig, PreflightConfig, resolve_splits


def test_defaults_round_trip_through_json():
  config = PreflightConfig(label_key='label', leakage={'exclude_features': ['id'], 'block_fraction': 0.05})
  again = PreflightConfig.from_json(config.to_json())
  assert again == config
  assert again.leakage.exclude_features == ('id',)
  assert again.to_json() == config.to_json()


@pytest.mark.parametrize('kwargs, named', [
    ({'skew': {'mode': 'strict'}}, 'skew.mode'),
    ({'leakage': {'mode': 'blok'}}, 'leakage.mode'),
    ({'skew': {'numeric_threshold': -0.1}}, 'skew.numeric_threshold'),
    ({'skew': {'categorical_threshold': float('nan')}}, 'skew.categorical_threshold'),
    ({'skew': {'numeric_threshold': 1.5}}, 'skew.numeric_threshold is a Jensen-Shannon divergence'),
    ({'skew': {'categorical_threshold': 1.0}}, 'skew.categorical_threshold is an L-infinity distance'),
    ({'leakage': {'block_fraction': 1.5}}, 'leakage.block_fraction'),
    ({'leakage': {'warn_fraction': 0.5, 'block_fraction': 0.1}}, 'leakage.warn_fraction'),
    ({'leakage': {'exclude_features': 'id'}}, 'leakage.exclude_features'),
    ({'exclude_features': 5}, 'exclude_features'),
    ({'exclude_features': 'id'}, 'exclude_features'),
    ({'leakage': {'group_key': ''}}, 'leakage.group_key'),
    ({'loss': {'timeout_seconds': 0}}, 'loss.timeout_seconds'),
    ({'loss': {'batch_size': -1}}, 'loss.batch_size'),
    ({'loss': {'bogus': 1}}, 'bogus'),
    ({'eval_splits': ['train']}, 'eval_splits'),
    ({'eval_splits': []}, 'eval_splits'),
    ({'train_split': ''}, 'train_split'),
    ({'fail_on_block': 'yes'}, 'fail_on_block'),
])
def test_invalid_values_are_refused_naming_the_setting(kwargs, named):
  with pytest.raises(ConfigError, match=named):
    PreflightConfig(**kwargs)


def test_unknown_top_level_key_in_json_is_refused():
  with pytest.raises(ConfigError, match='lable_key'):
    PreflightConfig.from_json('{"lable_key": "y"}')


def test_not_json_is_refused():
  with pytest.raises(ConfigError, match='not valid JSON'):
    PreflightConfig.from_json('{label_key: y')


def test_section_objects_are_accepted_as_is():
  leakage = LeakageConfig(mode='warn')
  assert PreflightConfig(leakage=leakage).leakage is leakage


def test_eval_splits_default_to_every_other_split():
  assert resolve_splits(PreflightConfig(), ('train', 'eval', 'test')) == ('train', ('eval', 'test'))


def test_unknown_split_names_are_named():
  with pytest.raises(ConfigError, match="eval split\\(s\\) valid not found.*available splits: train, eval"):
    resolve_splits(PreflightConfig(eval_splits=('valid',)), ('train', 'eval'))
  with pytest.raises(ConfigError, match="train_split 'training'"):
    resolve_splits(PreflightConfig(train_split='training'), ('train', 'eval'))
  with pytest.raises(ConfigError, match='no split besides'):
    resolve_splits(PreflightConfig(), ('train',))


def test_top_level_exclude_features_join_each_checks_own():
  config = PreflightConfig(exclude_features=['id'], leakage={'exclude_features': ['ts']})
  assert config.excluded('skew') == ('id',) and config.excluded('leakage') == ('id', 'ts')
  assert config.with_exclusions('leakage').exclude_features == ('id', 'ts')
  assert config.excluded('label_proxy') == ('id',)  # A check without its own list still gets the top-level one.
  assert PreflightConfig.from_json(config.to_json()) == config
