"""Label proxies over two features: labels computed from columns kept in the data block (a difference threshold,
a conjunction of thresholds, a category and a threshold, a regression sum, TFX's own big_tipper with `tips` kept, a
breast_cancer label derived from two of its columns), honest real tables pass, and the row sample behind the search
is the same whatever the batching."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from tests.helpers import PENGUIN_DATA, TFX_DIR, check, decode, frame_rows, random_split
from tfx_preflight.checks.label_proxy import check as label_proxy
from tfx_preflight.checks.label_proxy import counts as counts_lib
from tfx_preflight.checks.label_proxy import label_proxy_beam
from tfx_preflight.checks.label_proxy import pairs as pairs_lib
from tfx_preflight.checks.label_proxy import sample as sample_lib
from tfx_preflight.checks.label_proxy.render import render_html
from tfx_preflight.config import ConfigError, LabelProxyConfig, PreflightConfig

BIG_TIPPER_CSV = os.path.join(TFX_DIR, 'tfx', 'examples', 'chicago_taxi_pipeline', 'data', 'big_tipper_label',
                              'data.csv')
SKLEARN_DATA = os.path.join(os.path.dirname(__import__('sklearn.datasets').datasets.__file__), 'data')


def counts_of(frame: pd.DataFrame, options: counts_lib.CountOptions, batch_rows: int = 4096):
  """The label-proxy CombineFn over the frame's rows as tfx-bsl decodes them, batch by batch."""
  fn = label_proxy_beam.LabelProxyCombineFn(options)
  accumulator = fn.create_accumulator()
  rows = frame_rows(frame)
  for start in range(0, len(rows), batch_rows):
    accumulator = fn.add_input(accumulator, decode(rows[start:start + batch_rows]))
  return fn.extract_output(accumulator)


def judge(frame: pd.DataFrame, label: str, seed: int = 0, **config):
  """The check's result on a random 2:1 split of the frame, from the CombineFn's counts (no pipeline)."""
  config = LabelProxyConfig(**config)
  train, evaluation = random_split(frame, seed)
  options = label_proxy.count_options(config, label)
  return label_proxy.summarize(counts_of(train, options), {'eval': counts_of(evaluation, options)}, 'train',
                               config, label).to_dict()


def pair_blocks(result):
  return [f for f in result['findings'] if f['kind'] == label_proxy.PAIR and f['severity'] == 'block']


def noise_columns(rng, n, frame, count=6):
  for i in range(count):
    frame[f'noise_{i}'] = rng.normal(size=n)
  return frame


# --- Derived labels block ------------------------------------------------------------------------------------------


def test_difference_threshold_blocks_naming_both_features_and_the_rule():
  rng = np.random.default_rng(1)
  n = 6000
  promised = rng.integers(1, 30, n)
  frame = noise_columns(rng, n, pd.DataFrame({'promised_day': promised,
                                              'delivered_day': promised + rng.integers(-5, 9, n)}))
  frame['late'] = (frame['delivered_day'] - frame['promised_day'] > 2).astype(int)
  result = judge(frame, 'late')
  assert result['status'] == 'block'
  [finding] = pair_blocks(result)
  assert sorted(finding['features']) == ['delivered_day', 'promised_day']
  assert finding['form'] == 'difference' and finding['eval_score'] >= 0.999
  assert '`delivered_day - promised_day` > 2' in finding['message'] or \
      '`promised_day - delivered_day` <= -3' in finding['message'], finding['message']
  assert max(finding['alone']) < 0.9  # Neither column alone gives it away: only the pair does.
  assert not [f for f in result['findings'] if f['kind'] == label_proxy.KIND]


def test_conjunction_of_two_thresholds_blocks_as_a_tree():
  rng = np.random.default_rng(2)
  n = 6000
  frame = noise_columns(rng, n, pd.DataFrame({'bmi': rng.normal(28, 5, n).round(1),
                                              'age': rng.integers(20, 80, n)}))
  frame['high_risk'] = ((frame['bmi'] > 30) & (frame['age'] > 50)).astype(int)
  [finding] = pair_blocks(judge(frame, 'high_risk'))
  assert sorted(finding['features']) == ['age', 'bmi'] and finding['form'] == 'tree'
  assert '`bmi` > 30' in finding['message'] and '`age` > 50' in finding['message'], finding['message']


def test_category_and_threshold_blocks_naming_the_category():
  rng = np.random.default_rng(3)
  n = 6000
  frame = noise_columns(rng, n, pd.DataFrame({'plan': rng.choice(['free', 'pro', 'team'], n),
                                              'days_inactive': rng.integers(0, 90, n)}))
  frame['churned'] = ((frame['plan'] == 'free') & (frame['days_inactive'] > 30)).astype(int)
  [finding] = pair_blocks(judge(frame, 'churned'))
  assert sorted(finding['features']) == ['days_inactive', 'plan']
  assert "'free'" in finding['message'] and '`days_inactive` > 30' in finding['message'], finding['message']


def test_regression_label_that_is_a_difference_blocks_with_r2():
  rng = np.random.default_rng(4)
  n = 6000
  frame = noise_columns(rng, n, pd.DataFrame({'revenue': rng.gamma(2, 500, n), 'cost': rng.gamma(2, 400, n)}))
  frame['profit'] = frame['revenue'] - frame['cost']
  result = judge(frame, 'profit')
  assert result['task'] == 'regression'
  [finding] = pair_blocks(result)
  assert sorted(finding['features']) == ['cost', 'revenue'] and finding['metric'] == 'r2'
  assert finding['eval_score'] > 0.999 and max(finding['alone']) < 0.8


def test_tfx_big_tipper_with_tips_kept_blocks_on_the_ratio():
  """TFX's own taxi label: big_tipper = tips > 0.2 * fare. With `tips` still a feature, the pair gives it away."""
  result = judge(pd.read_csv(BIG_TIPPER_CSV, nrows=6000), 'big_tipper')
  [finding] = pair_blocks(result)
  assert sorted(finding['features']) == ['fare', 'tips']
  assert '`tips / fare` > 0.2' in finding['message'], finding['message']


def test_breast_cancer_label_derived_from_two_kept_columns_blocks_end_to_end(tmp_path, beam_factory):
  from sklearn.datasets import load_breast_cancer
  frame = load_breast_cancer(as_frame=True).frame
  frame.columns = [c.replace(' ', '_') for c in frame.columns]
  frame['target'] = ((frame['mean_radius'] > 14) & (frame['mean_texture'] > 19)).astype(int)
  train, evaluation = random_split(frame)
  result = check(tmp_path, {'train': train, 'eval': evaluation}, 'target', beam_factory)
  assert result['status'] == 'block'
  [finding] = pair_blocks(result)
  # mean area and perimeter are monotone in mean radius, so any of the three names the same rule.
  assert 'mean_texture' in finding['features'], finding['message']
  assert {'mean_radius', 'mean_area', 'mean_perimeter'} & set(finding['features'])
  search = result['pairs']['eval']
  assert search['pairs_scored'] == 66 and search['best'][0]['blocks'] is True
  html = render_html(result)
  assert 'Strongest pairs on eval' in html and 'mean_texture' in html


def test_penguin_body_mass_regression_passes(tmp_path, beam_factory):
  """TFX's penguin testdata as a regression of body mass on the other measurements and the species."""
  patterns = {split: os.path.join(PENGUIN_DATA, f'Split-{split}', '*') for split in ('train', 'eval')}
  result = label_proxy.check_label_proxy(patterns, 'train', ['eval'], LabelProxyConfig(), beam_factory,
                                         str(tmp_path), 'body_mass_g').to_dict()
  assert result['status'] == 'pass' and result['task'] == 'regression', result['findings']
  assert result['pairs']['eval']['pairs_scored'] == 6 and result['pairs']['eval']['best'][0]['eval_score'] < 0.95


def test_a_pair_whose_feature_already_blocks_alone_adds_no_second_finding():
  rng = np.random.default_rng(5)
  n = 3000
  frame = noise_columns(rng, n, pd.DataFrame({'x': rng.normal(size=n)}))
  frame['label'] = (frame['x'] > 0).astype(int)
  frame['copy'] = frame['label']
  result = judge(frame, 'label')
  assert {f['feature'] for f in result['findings'] if f['severity'] == 'block'} >= {'copy'}
  assert not pair_blocks(result)


def test_pairs_off_or_too_few_sampled_eval_examples_never_block():
  rng = np.random.default_rng(6)
  n = 3000
  frame = pd.DataFrame({'a': rng.integers(0, 50, n), 'b': rng.integers(0, 50, n)})
  frame['label'] = (frame['a'] > frame['b']).astype(int)
  assert pair_blocks(judge(frame, 'label'))
  off = judge(frame, 'label', max_pairs=0)
  assert not pair_blocks(off) and off['pairs'] == {}
  assert not pair_blocks(judge(frame, 'label', pair_min_examples=5000))


# --- Honest tables pass --------------------------------------------------------------------------------------------


def _sklearn(name):
  import sklearn.datasets
  return getattr(sklearn.datasets, name)(as_frame=True).frame


HONEST = {
    'wine': lambda: (_sklearn('load_wine'), 'target'),
    'iris': lambda: (_sklearn('load_iris'), 'target'),
    'diabetes': lambda: (_sklearn('load_diabetes'), 'target'),
    'boston_house_prices': lambda: (pd.read_csv(os.path.join(SKLEARN_DATA, 'boston_house_prices.csv'), skiprows=1),
                                    'MEDV'),
    'taxi_big_tipper_without_tips': lambda: (pd.read_csv(BIG_TIPPER_CSV, nrows=6000).drop(columns=['tips']), 'big_tipper'),
    'msft_volume': lambda: (pd.read_csv(os.path.join(os.path.dirname(__import__('matplotlib').__file__), 'mpl-data',
                                                     'sample_data', 'msft.csv')).drop(columns=['Date']), 'Volume'),
    'imdb_text': lambda: (pd.read_csv(os.path.join(TFX_DIR, 'tfx', 'examples', 'imdb', 'data',
                                                   'imdb_small_with_labels.txt')), 'label'),
}


@pytest.mark.parametrize('name', sorted(HONEST))
def test_honest_tables_pass_and_report_what_was_compared(name):
  frame, label = HONEST[name]()
  result = judge(frame, label)
  assert result['status'] == 'pass', result['findings']
  search = result['pairs']['eval']
  features = len(frame.columns) - 1
  assert search['pairs_scored'] == min(66, features * (features - 1) // 2) or name == 'imdb_text'
  if name == 'imdb_text':
    assert search['pairs_scored'] == 0  # One text feature: nothing to pair.
  else:
    best = search['best'][0]
    assert best['blocks'] is False and len(best['features']) == 2 and best['rule']


# --- The sample ------------------------------------------------------------------------------------------------------


def test_sample_is_the_same_whatever_the_batching_and_merge_order():
  rng = np.random.default_rng(7)
  n = 2500
  frame = pd.DataFrame({'a': rng.normal(size=n), 'c': rng.choice(['x', 'y'], n), 'label': rng.integers(0, 2, n)})
  options = counts_lib.CountOptions(label_key='label', sample_rows=300, sample_cells=500)
  whole = counts_of(frame, options, batch_rows=n)
  fn = label_proxy_beam.LabelProxyCombineFn(options)
  rows = frame_rows(frame)
  parts = [fn.add_input(fn.create_accumulator(), decode(rows[i:i + 333])) for i in range(0, n, 333)]
  merged = fn.merge_accumulators(parts[::-1])
  assert json.dumps(counts_lib.to_jsonable(merged)) == json.dumps(counts_lib.to_jsonable(whole))
  sample = whole.sample
  assert sample.rows == 250  # 500 values over 2 columns.
  assert sample.columns['c'].names == {int(k): v for k, v in zip(
      sample_lib.categorical_keys(__import__('pyarrow').array([b'x', b'y'])).tolist(), ['x', 'y'])}
  again = counts_lib.from_jsonable(json.loads(json.dumps(counts_lib.to_jsonable(whole))))
  assert np.array_equal(again.sample.hashes, sample.hashes)
  assert np.array_equal(again.sample.columns['a'].values, sample.columns['a'].values)


def test_candidates_are_bounded_by_max_pairs():
  assert [pairs_lib.features_for(m) for m in (0, 1, 2, 3, 66, 67, 190)] == [0, 2, 2, 3, 12, 12, 20]


def test_pair_settings_are_validated():
  assert PreflightConfig.from_dict({'label_proxy': {'max_pairs': 10}}).label_proxy.max_pairs == 10
  for bad in ({'max_pairs': -1}, {'pair_error_ratio': 2.0}, {'pair_sample_rows': 0}, {'max_pairs': 1.5}):
    with pytest.raises(ConfigError, match='label_proxy.'):
      LabelProxyConfig(**bad).validate()


def test_too_many_features_for_the_sample_keep_no_rows_whatever_the_merge_order():
  rng = np.random.default_rng(8)
  frame = pd.DataFrame({f'w{i:03d}': rng.normal(size=300) for i in range(30)})
  frame['label'] = rng.integers(0, 2, 300)
  options = counts_lib.CountOptions(label_key='label', sample_rows=2048, sample_cells=2500)  # 83 rows < 100.
  whole = counts_of(frame, options)
  assert whole.sample.too_wide and whole.sample.rows == 0
  narrow = counts_of(frame[['w000', 'w001', 'label']], options)
  assert not narrow.sample.too_wide and narrow.sample.rows == 300
  merged = sample_lib.merge(narrow.sample, whole.sample, 2048, 2500)
  assert merged.too_wide and sample_lib.merge(whole.sample, narrow.sample, 2048, 2500).too_wide
  config = LabelProxyConfig(pair_sample_rows=2048)
  train, evaluation = random_split(frame)
  result = label_proxy.summarize(counts_of(train, options), {'eval': counts_of(evaluation, options)}, 'train', config,
                                 'label').to_dict()
  assert result['pairs']['eval']['sample']['too_wide'] is True and result['pairs']['eval']['pairs_scored'] == 0
