"""One top-level exclude_features that every check honours (the issue-13 scenario: IDs assigned split by split)."""

import os

import pytest

from tests.helpers import tabular_rows, write_splits
from tfx_preflight import run
from tfx_preflight.config import PreflightConfig
from tfx_preflight.inputs import data


@pytest.fixture(scope='module')
def splitwise_ids(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('ids'))
  return write_splits(root, {'train': tabular_rows(400, 1), 'eval': tabular_rows(200, 2, offset=100000)})


def test_top_level_exclude_features_applies_to_skew_and_leakage(splitwise_ids, tmp_path, beam_factory):
  config = PreflightConfig(label_key='label', exclude_features=['id'], loss={'mode': 'off'})
  result = run.run_checks(run.PreflightInputs(examples=splitwise_ids), config, beam_factory, str(tmp_path)).to_dict()
  skew, leakage = result['checks']['skew'], result['checks']['leakage']
  assert 'id' in skew['excluded_features'] and not [f for f in skew['findings'] if f.get('feature') == 'id']
  assert 'id' not in skew['comparisons']['eval']
  assert 'id' in leakage['excluded_features'] and 'id' not in leakage['hashed_features']['eval']
  assert result['verdict'] == 'pass', result['checks']


def test_without_the_exclusion_the_id_ranges_block_skew(splitwise_ids, tmp_path, beam_factory):
  config = PreflightConfig(label_key='label', loss={'mode': 'off'}, leakage={'mode': 'off'})
  result = run.run_checks(run.PreflightInputs(examples=splitwise_ids), config, beam_factory, str(tmp_path)).to_dict()
  assert any(f.get('feature') == 'id' for f in result['checks']['skew']['findings'])


def test_a_misspelled_excluded_feature_is_an_error_naming_it(splitwise_ids, tmp_path, beam_factory):
  config = PreflightConfig(label_key='label', exclude_features=['idd'], loss={'mode': 'off'}, leakage={'mode': 'off'})
  with pytest.raises(data.InputError, match="'idd'.*misspelled"):
    run.run_checks(run.PreflightInputs(examples=splitwise_ids), config, beam_factory, os.path.join(tmp_path, 'o')).to_dict()


def test_component_argument_and_cli_flag_map_to_the_top_level_list():
  import json

  from tfx import types
  from tfx.types import standard_artifacts

  from tfx_preflight import Preflight, cli
  component = Preflight(examples=types.Channel(type=standard_artifacts.Examples), exclude_features=['id'],
                        leakage={'exclude_features': ['ts']})
  config = json.loads(component.exec_properties['config'])
  assert config['exclude_features'] == ['id'] and config['leakage']['exclude_features'] == ['ts']
  args = cli.build_parser().parse_args(['check', '--train', 'a', '--eval', 'b', '--exclude-features', 'id, ts'])
  assert cli.config_from_args(args).exclude_features == ('id', 'ts')
