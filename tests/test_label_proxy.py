"""The label-proxy check: the CombineFn's four methods, the PTransform on Beam, scores against a pandas oracle, blocks
for copies / recodings / monotone transforms of the label, and no alarm on real datasets (taxi, penguin, scikit-learn).
"""

import json
import os

import apache_beam as beam
import numpy as np
import pandas as pd
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import PENGUIN_DATA, TFX_DIR, check, decode, frame_rows, random_split, write_splits
from tfx_preflight.checks.label_proxy import check as label_proxy
from tfx_preflight.checks.label_proxy import counts as counts_lib
from tfx_preflight.checks.label_proxy import label_proxy_beam, scoring
from tfx_preflight.config import ConfigError, LabelProxyConfig, PreflightConfig
from tfx_preflight.report.results import CheckResult

TAXI_CSV = os.path.join(TFX_DIR, 'tfx', 'examples', 'chicago_taxi_pipeline', 'data', 'simple', 'data.csv')


def flagged(result, severity='block'):
  return sorted((f['eval_split'], f['feature']) for f in result['findings'] if f['severity'] == severity)


def small_rows(n, seed):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=n)
  label = (x + rng.normal(size=n) > 0).astype(int)
  return [{'x': float(x[i]), 'color': str(rng.choice(['red', 'green', 'blue'])), 'label': int(label[i])}
          for i in range(n)]


OPTIONS = counts_lib.CountOptions(label_key='label')


# --- CombineFn, directly ----------------------------------------------------------------------------------------


def test_combine_fn_methods_merge_to_the_counts_of_the_whole():
  fn = label_proxy_beam.LabelProxyCombineFn(OPTIONS)
  rows = small_rows(300, 1)
  whole = fn.extract_output(fn.add_input(fn.create_accumulator(), decode(rows)))
  parts = [fn.add_input(fn.add_input(fn.create_accumulator(), decode(rows[:100])), decode(rows[100:180])),
           fn.add_input(fn.create_accumulator(), decode(rows[180:]))]
  merged = fn.extract_output(fn.merge_accumulators(parts))
  assert json.dumps(counts_lib.to_jsonable(merged)) == json.dumps(counts_lib.to_jsonable(whole))
  assert whole.examples == whole.labelled == 300
  assert whole.label_counts == {np.float64(0).view(np.uint64).item(): sum(r['label'] == 0 for r in rows),
                                np.float64(1).view(np.uint64).item(): sum(r['label'] == 1 for r in rows)}
  color = whole.features['color']
  assert color.kind == counts_lib.CATEGORICAL and int(color.pair_counts.sum()) == 300 and len(set(color.pair_keys)) == 3
  assert whole.features['x'].kind == counts_lib.NUMERIC


def test_settling_every_few_batches_gives_the_counts_of_settling_once(monkeypatch):
  """The CombineFn counts waiting rows every SETTLE_ROWS rows: any period gives the same counts and row sample."""
  rows = small_rows(1200, 5)
  options = counts_lib.CountOptions(label_key='label', sample_rows=100)
  batches = [decode(rows[i:i + 100]) for i in range(0, len(rows), 100)]

  def counted():
    fn = label_proxy_beam.LabelProxyCombineFn(options)
    accumulator = fn.create_accumulator()
    for batch in batches:
      accumulator = fn.add_input(accumulator, batch)
    return json.dumps(counts_lib.to_jsonable(fn.extract_output(accumulator)))

  monkeypatch.setattr(label_proxy_beam, 'SETTLE_ROWS', 1 << 30)
  once = counted()
  monkeypatch.setattr(label_proxy_beam, 'SETTLE_ROWS', 250)
  assert counted() == once


def test_counts_file_reads_back_the_same_counts_and_is_the_same_bytes_each_time(tmp_path):
  """The counts file holds the tables as arrays of an .npz: read back, the same counts (floats bit for bit, NaN label
  sums, the row sample); written twice, the same bytes; a table of another dtype is refused, not cast or unpickled."""
  rows = small_rows(400, 3)
  options = counts_lib.CountOptions(label_key='label', sample_rows=50)
  fn = label_proxy_beam.LabelProxyCombineFn(options)
  counts = fn.extract_output(fn.add_input(fn.create_accumulator(), decode(rows)))
  first, second = tmp_path / 'a' / 'counts.npz', tmp_path / 'b' / 'counts.npz'
  for path in (first, second):
    label_proxy_beam.write_counts(counts, str(path))
  assert first.read_bytes() == second.read_bytes()
  os.rename(first, tmp_path / 'a' / label_proxy_beam.COUNTS_FILE.format(split='train'))
  again = label_proxy_beam.read_counts(str(tmp_path / 'a'), 'train')
  assert json.dumps(counts_lib.to_jsonable(again)) == json.dumps(counts_lib.to_jsonable(counts))
  assert again.features['x'].moment_sum.dtype == np.float64 and again.sample.rows == counts.sample.rows
  with np.load(str(second)) as tables:
    arrays = {name: tables[name] for name in tables.files}
  header = json.loads(arrays.pop('header').tobytes())
  arrays[header['features']['x']['pair_counts']] = arrays[header['features']['x']['pair_counts']].astype(np.float32)
  with pytest.raises(ValueError, match=r'x\.pair_counts as float32'):
    counts_lib.from_jsonable(header, arrays)



def test_empty_accumulator_and_rows_without_label():
  fn = label_proxy_beam.LabelProxyCombineFn(OPTIONS)
  accumulator = fn.add_input(fn.create_accumulator(), decode([{'x': 1.0}, {'x': 2.0, 'label': 1}]))
  assert (accumulator.examples, accumulator.labelled) == (2, 1)
  assert fn.extract_output(fn.merge_accumulators([fn.create_accumulator()])).labelled == 0


def test_numeric_keys_keep_order_and_coarsening_keeps_it():
  values = np.array([-np.inf, -1e9, -3.5, -1.0, -1e-300, -0.0, 0.0, 1e-300, 0.5, 1.0, 1.001, 7.0, 1e9, np.inf, np.nan])
  keys = counts_lib.numeric_keys(values, 8)
  assert np.all(np.diff(keys.astype(object)) >= 0) and keys[5] == keys[6] and np.all(keys != counts_lib.MISSING_KEY)
  assert keys[9] == keys[10]  # 1.0 and 1.001 differ by less than 2^-8.
  coarse = counts_lib.coarsen_numeric(keys, 3, 8)
  assert np.all(np.diff(coarse.astype(object)) >= 0)
  assert np.array_equal(counts_lib.coarsen_numeric(counts_lib.coarsen_numeric(keys, 2, 8), 3, 8), coarse)


def test_many_distinct_values_are_bounded_and_merge_at_the_coarser_level():
  options = counts_lib.CountOptions(label_key='label', max_values=50)
  rng = np.random.default_rng(2)
  rows = [{'x': float(v), 'name': f'id-{i}', 'label': int(v > 0)} for i, v in enumerate(rng.normal(size=400) * 1e3)]
  fn = label_proxy_beam.LabelProxyCombineFn(options)
  a = fn.add_input(fn.create_accumulator(), decode(rows[:200]))
  b = fn.add_input(fn.create_accumulator(), decode(rows[200:]))
  merged = fn.merge_accumulators([a, b])
  for name in ('x', 'name'):
    assert len(np.unique(merged.features[name].pair_keys)) <= 50
    assert int(merged.features[name].pair_counts.sum()) == 400
  assert merged.features['name'].coarsening == 1 and merged.features['x'].coarsening > 0


def test_long_lists_are_not_scored_and_say_why():
  fn = label_proxy_beam.LabelProxyCombineFn(OPTIONS)
  accumulator = fn.add_input(fn.create_accumulator(), decode([{'pixels': [0.5] * 64, 'x': 1.0, 'label': 1}]))
  assert 'pixels' not in accumulator.features and 'image' in accumulator.skipped['pixels']


# --- The PTransform on Beam -------------------------------------------------------------------------------------


def test_ptransform_counts_every_labelled_row():
  rows = small_rows(120, 3)
  with test_pipeline.TestPipeline() as p:
    counted = (p
               | beam.Create([decode(rows[:50]), decode(rows[50:])])
               | label_proxy_beam.LabelProxyCounts(OPTIONS)
               | beam.Map(lambda c: (c.labelled, sorted(c.features), int(c.features['color'].pair_counts.sum()))))
    assert_that(counted, equal_to([(120, ['color', 'x'], 120)]))


# --- Scores against an independent oracle ------------------------------------------------------------------------


def test_categorical_accuracy_equals_a_pandas_lookup(tmp_path, beam_factory):
  rng = np.random.default_rng(4)
  n = 900
  city = rng.choice([f'c{i}' for i in range(30)], n)
  label = np.where(rng.random(n) < 0.7, (np.char.str_len(city.astype(str)) + rng.integers(0, 3, n)) % 3,
                   rng.integers(0, 3, n))
  frame = pd.DataFrame({'city': city, 'label': label})
  train, evaluation = random_split(frame, 5)
  result = check(tmp_path, {'train': train, 'eval': evaluation}, 'label', beam_factory)
  # Oracle: train majority label per city (ties: smallest label), unseen city -> train majority label.
  counts = train.groupby(['city', 'label']).size().reset_index(name='n')
  majority = counts.sort_values(['city', 'n', 'label'], ascending=[True, False, True]).drop_duplicates('city')
  lookup = dict(zip(majority['city'], majority['label']))
  fallback = train['label'].value_counts().sort_index().idxmax()
  predicted = evaluation['city'].map(lambda c: lookup.get(c, fallback))
  score = result['scores']['eval'][0]
  assert score['feature'] == 'city' and score['metric'] == 'accuracy'
  assert score['eval_score'] == pytest.approx(float((predicted == evaluation['label']).mean()), abs=1e-6)
  assert score['baseline'] == pytest.approx(float((evaluation['label'] == fallback).mean()), abs=1e-6)
  assert result['status'] == 'pass'


def test_regression_r2_equals_a_pandas_group_mean_fit(tmp_path, beam_factory):
  rng = np.random.default_rng(8)
  n = 1200
  shop = rng.choice([f's{i}' for i in range(40)], n)
  effect = {f's{i}': float(rng.normal()) for i in range(40)}
  amount = np.array([effect[s] for s in shop]) + rng.normal(size=n)
  frame = pd.DataFrame({'shop': shop, 'amount': amount})
  train, evaluation = random_split(frame, 9)
  result = check(tmp_path, {'train': train, 'eval': evaluation}, 'amount', beam_factory)
  # Oracle: eval R^2 of the train mean per shop (unseen shop -> train mean), and of the train mean alone.
  means = train.groupby('shop')['amount'].mean()
  predicted = evaluation['shop'].map(means).fillna(train['amount'].mean())
  y = evaluation['amount']
  total = float(((y - y.mean()) ** 2).sum())
  score = result['scores']['eval'][0]
  assert result['task'] == 'regression' and score['feature'] == 'shop'
  assert score['eval_score'] == pytest.approx(1 - float(((y - predicted) ** 2).sum()) / total, abs=1e-6)
  assert score['baseline'] == pytest.approx(1 - float(((y - train['amount'].mean()) ** 2).sum()) / total, abs=1e-6)


def test_numeric_fit_reproduces_a_sharp_boundary_and_smooths_noise():
  options = counts_lib.CountOptions(label_key='label')
  rng = np.random.default_rng(10)
  x = rng.uniform(0, 100, 4000)
  rows = [{'sharp': float(v), 'noisy': float(v + rng.normal() * 30), 'label': int(v > 37)} for v in x]
  train = counts_lib.count_batch(decode(rows[:3000]), options)
  evals = {'eval': counts_lib.count_batch(decode(rows[3000:]), options)}
  scores = {s.feature: s for s in scoring.score_features(train, evals, scoring.CLASSIFICATION, 256, options)}
  assert scores['sharp'].eval_score >= 0.995
  # Bayes accuracy from x + N(0, 30) is about 0.8; the smoothed fit gets 0.765 here, a per-value fit alone 0.71.
  assert 0.74 < scores['noisy'].eval_score < 0.85


# --- Blocks ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def cancer():
  from sklearn.datasets import load_breast_cancer
  frame = load_breast_cancer(as_frame=True).frame
  frame.columns = [c.replace(' ', '_') for c in frame.columns]
  return frame


def test_label_copy_and_yes_no_recoding_block_while_ids_do_not(tmp_path, beam_factory, cancer):
  frame = cancer.copy()
  frame['outcome'] = frame['target']  # The label under another name.
  frame['diagnosis'] = np.where(frame['target'] == 1, 'yes', 'no')  # A recoding.
  frame['patient_id'] = np.arange(len(frame))  # Unique per row: memorizes train, predicts nothing on eval.
  frame['patient_name'] = [f'patient-{i}' for i in range(len(frame))]
  train, evaluation = random_split(frame)
  result = check(tmp_path, {'train': train, 'eval': evaluation}, 'target', beam_factory)
  assert result['status'] == 'block', result['findings']
  assert flagged(result) == [('eval', 'diagnosis'), ('eval', 'outcome')]
  finding = next(f for f in result['findings'] if f['feature'] == 'diagnosis')
  assert finding['kind'] == 'label_proxy' and finding['eval_score'] == 1.0 and finding['baseline'] < 0.7
  assert 'accuracy 1.0000' in finding['message'] and 'baseline' in finding['message']
  scores = {s['feature']: s for s in result['scores']['eval']}
  assert result['task'] == 'classification'
  assert 'patient_id' not in scores or scores['patient_id']['eval_score'] < 0.9
  assert not any(f['feature'] in ('patient_id', 'patient_name') for f in result['findings'])


def test_excluded_feature_is_not_scored_and_warn_mode_does_not_block(tmp_path, beam_factory, cancer):
  frame = cancer[['mean_radius', 'target']].copy()
  frame['outcome'] = frame['target']
  train, evaluation = random_split(frame)
  excluded = check(tmp_path / 'a', {'train': train, 'eval': evaluation}, 'target', beam_factory,
                   exclude_features=('outcome',))
  assert excluded['status'] == 'pass' and all(s['feature'] != 'outcome' for s in excluded['scores']['eval'])
  warned = check(tmp_path / 'b', {'train': train, 'eval': evaluation}, 'target', beam_factory, mode='warn')
  assert warned['status'] == 'warn' and flagged(warned) == [('eval', 'outcome')]


def test_monotone_transform_of_a_numeric_label_blocks_as_regression(tmp_path, beam_factory):
  from sklearn.datasets import load_diabetes
  frame = load_diabetes(as_frame=True).frame
  frame['progression_score'] = np.log(frame['target']) * 10 - 3  # Monotone in the label.
  train, evaluation = random_split(frame)
  result = check(tmp_path, {'train': train, 'eval': evaluation}, 'target', beam_factory)
  assert result['task'] == 'regression'
  assert flagged(result) == [('eval', 'progression_score')]
  finding = result['findings'][0]
  assert finding['metric'] == 'r2' and finding['eval_score'] > 0.99 and finding['baseline'] <= 0.0
  second = result['scores']['eval'][1]
  assert second['eval_score'] < 0.5  # The honest features stay honest.


def test_proxy_in_one_of_two_eval_splits_blocks_that_split_only(tmp_path, beam_factory, cancer):
  frame = cancer[['mean_radius', 'mean_texture', 'target']].copy()
  frame['refund_code'] = np.where(frame['target'] == 1, 'R1', 'R0')  # Written after the outcome.
  train, evaluation = random_split(frame)
  first, second = evaluation.iloc[:len(evaluation) // 2].copy(), evaluation.iloc[len(evaluation) // 2:].copy()
  first['refund_code'] = np.nan  # Exported before the outcome was known: the field is empty there.
  result = check(tmp_path, {'train': train, 'eval': first, 'eval_2': second}, 'target', beam_factory)
  assert flagged(result) == [('eval_2', 'refund_code')]
  assert 'refund_code' not in {s['feature'] for s in result['scores']['eval']}  # Absent from every eval example.
  assert {s['feature'] for s in result['scores']['eval']} == {'mean_radius', 'mean_texture'}


def test_one_feature_far_ahead_of_the_others_warns(tmp_path, beam_factory):
  rng = np.random.default_rng(6)
  n = 3000
  label = rng.integers(0, 2, n)
  noisy_copy = np.where(rng.random(n) < 0.04, 1 - label, label)  # 96% agreement: strong, not a copy.
  frame = pd.DataFrame({'flag': noisy_copy, 'x': rng.normal(size=n) + 0.3 * label, 'label': label})
  train, evaluation = random_split(frame)
  result = check(tmp_path, {'train': train, 'eval': evaluation}, 'label', beam_factory)
  assert result['status'] == 'warn' and flagged(result, 'warn') == [('eval', 'flag')]
  finding = result['findings'][0]
  assert finding['kind'] == 'dominant_feature' and finding['runner_up'] == 'x' and 'skill' in finding['message']


def test_no_label_key_is_skipped_not_passed(tmp_path, beam_factory):
  result = label_proxy.check_label_proxy({'train': 'x', 'eval': 'y'}, 'train', ['eval'], LabelProxyConfig(),
                                         beam_factory, str(tmp_path), None)
  assert result.status == 'skipped' and 'label_key' in result.reason


def test_too_few_eval_examples_to_judge_is_not_checked_never_pass(tmp_path, beam_factory, cancer):
  """A label copy in an eval split of 8 rows (below min_examples=20): no score may block, and the check said 'pass'."""
  frame = cancer.copy()
  frame['outcome'] = frame['target']
  result = check(tmp_path, {'train': frame[:60], 'eval': frame[60:68]}, 'target', beam_factory)
  assert result['status'] == 'not_checked' and result['findings'] == [], result
  assert result['reason'] == ('too few labelled eval examples (eval 8) for any score to block or warn '
                              '(label_proxy.min_examples=20)')
  assert result['compared']['features'] == 0 and 'outcome' in {s['feature'] for s in result['scores']['eval']}
  judged = check(tmp_path / 'enough', {'train': frame[:60], 'eval': frame[60:90]}, 'target', beam_factory)
  assert judged['status'] == 'block' and flagged(judged) == [('eval', 'outcome')]


def test_config_is_validated_and_has_its_own_section():
  config = PreflightConfig.from_dict({'label_proxy': {'mode': 'warn', 'block_accuracy': 0.95}})
  assert config.label_proxy.mode == 'warn' and config.to_dict()['label_proxy']['block_accuracy'] == 0.95
  with pytest.raises(ConfigError, match='label_proxy.block_accuracy'):
    LabelProxyConfig(block_accuracy=1.5).validate()
  with pytest.raises(ConfigError, match='label_proxy.mode'):
    PreflightConfig(label_proxy={'mode': 'loud'})


# --- No false alarms on real data ---------------------------------------------------------------------------------


def test_taxi_tips_pass(tmp_path, beam_factory):
  frame = pd.read_csv(TAXI_CSV)
  train, evaluation = random_split(frame)
  result = check(tmp_path, {'train': train, 'eval': evaluation}, 'tips', beam_factory)
  assert result['status'] == 'pass', result['findings']
  in_both = [c for c in frame.columns if c != 'tips' and train[c].notna().any() and evaluation[c].notna().any()]
  assert result['task'] == 'regression' and result['scored_features'] == len(in_both)  # pickup_census_tract: 1 value
  best = result['scores']['eval'][0]
  assert best['feature'] == 'payment_type' and 0.3 < best['eval_score'] < 0.8  # Cash trips record no tip.


def test_penguin_species_pass(tmp_path, beam_factory):
  patterns = {split: os.path.join(PENGUIN_DATA, f'Split-{split}', '*') for split in ('train', 'eval')}
  result = label_proxy.check_label_proxy(patterns, 'train', ['eval'], LabelProxyConfig(), beam_factory,
                                         str(tmp_path), 'species').to_dict()
  assert result['status'] == 'pass', result['findings']
  assert result['task'] == 'classification' and result['scored_features'] == 4
  assert 0.5 < result['scores']['eval'][0]['eval_score'] < 0.99


@pytest.mark.parametrize('loader', ['load_breast_cancer', 'load_digits'])
def test_scikit_learn_datasets_pass(tmp_path, beam_factory, loader):
  import sklearn.datasets
  frame = getattr(sklearn.datasets, loader)(as_frame=True).frame
  train, evaluation = random_split(frame)
  result = check(tmp_path, {'train': train, 'eval': evaluation}, 'target', beam_factory)
  assert result['status'] == 'pass', result['findings']
  assert result['scored_features'] == len(frame.columns) - 1


def test_scores_are_reproducible_across_batchings():
  from sklearn.datasets import load_breast_cancer
  frame = load_breast_cancer(as_frame=True).frame
  train, evaluation = random_split(frame)
  rows_t, rows_e = frame_rows(train), frame_rows(evaluation)
  options = counts_lib.CountOptions(label_key='target')
  one = counts_lib.count_batch(decode(rows_t), options)
  many = counts_lib.merge_all([counts_lib.count_batch(decode(rows_t[i:i + 37]), options)
                               for i in range(0, len(rows_t), 37)], options)
  evals = {'eval': counts_lib.count_batch(decode(rows_e), options)}
  a = scoring.score_features(one, evals, scoring.CLASSIFICATION, 256, options)
  b = scoring.score_features(many, evals, scoring.CLASSIFICATION, 256, options)
  assert [s.to_dict() for s in a] == [s.to_dict() for s in b]


def test_summarize_turns_counts_into_a_typed_result():
  """The interpretation alone (no Beam): counts -> CheckResult with one typed finding per proxy."""
  config = LabelProxyConfig()
  options = label_proxy.count_options(config, 'label')
  with_copy = lambda rows: [dict(r, copy=r['label']) for r in rows]  # noqa: E731
  train = counts_lib.count_batch(decode(with_copy(small_rows(120, 0))), options)
  evals = {'eval': counts_lib.count_batch(decode(with_copy(small_rows(60, 1))), options)}
  result = label_proxy.summarize(train, evals, 'train', config, 'label')
  assert isinstance(result, CheckResult) and result.status == 'block'
  [finding] = result.findings
  assert (finding.check, finding.code, finding.severity, finding.feature) == ('label_proxy', 'label_proxy', 'block',
                                                                              'copy')
  assert finding.details['eval_split'] == 'eval' and finding.details['eval_score'] == 1.0
  assert result.details.task == 'classification' and result.details.scored.scores['eval'][0]['feature'] == 'copy'
  assert result.details.coverage().features >= 1 and result.to_dict()['compared'] == {
      'features': result.details.coverage().features, 'examples': dict(result.details.coverage().examples)}
  shown = result.to_dict()['findings'][0]  # report.json keeps `kind` and `feature` at the top of the finding.
  assert shown['kind'] == 'label_proxy' and shown['feature'] == 'copy' and 'code' not in shown
  only_label = counts_lib.count_batch(decode([{'label': i % 2} for i in range(40)]), options)
  nothing = label_proxy.summarize(only_label, {'eval': only_label}, 'train', config, 'label')
  assert nothing.status == 'skipped' and 'no feature to score' in nothing.reason and not nothing.findings


def test_a_constant_eval_label_is_named_as_the_reason_nothing_was_scored():
  """A regression label constant in eval (a file sorted by the label, split without shuffling): R^2 is undefined
  for every feature. The check said 'no feature to score besides the label' on a table with 8 features."""
  config = LabelProxyConfig()
  options = label_proxy.count_options(config, 'y')
  rng = np.random.default_rng(0)
  rows = [{'y': float(v), **{f'x{j}': float(rng.normal()) for j in range(8)}} for v in rng.normal(size=200)]
  train = counts_lib.count_batch(decode(rows), options)
  constant = counts_lib.count_batch(decode([dict(r, y=7.0) for r in rows[:50]]), options)
  result = label_proxy.summarize(train, {'eval': constant}, 'train', config, 'y')
  assert result.status == 'skipped' and result.details.task == 'regression'
  assert result.reason.startswith("label 'y' is constant in eval split(s) eval: R^2 is undefined there")


# --- Through the gate: report contract and report.html ------------------------------------------------------------


def test_cli_blocks_on_a_label_copy_and_renders_the_table(tmp_path, capsys, cancer):
  from tfx_preflight import cli
  frame = cancer[['mean_radius', 'target']].copy()
  frame['<b>outcome</b>'] = frame['target']
  train, evaluation = random_split(frame)
  patterns = write_splits(str(tmp_path / 'data'), {'train': frame_rows(train), 'eval': frame_rows(evaluation)})
  out = tmp_path / 'report'
  code = cli.main(['check', '--train', patterns['train'], '--eval', patterns['eval'], '--label-key', 'target',
                   '--checks', 'label_proxy', '--out', str(out)])
  assert code == cli.EXIT_BLOCK, capsys.readouterr()
  result = json.loads((out / 'report.json').read_text())
  assert result['verdict'] == 'block' and result['checks']['label_proxy']['status'] == 'block'
  assert [f['feature'] for f in result['checks']['label_proxy']['findings']] == ['<b>outcome</b>']
  assert result['checks']['leakage']['status'] == 'skipped'
  page = (out / 'report.html').read_text()
  assert 'Strongest single features on eval' in page and '&lt;b&gt;outcome&lt;/b&gt;' in page and '<b>outcome' not in page
  assert '[block] label_proxy' in capsys.readouterr().out


def test_checks_label_proxy_without_label_key_is_a_usage_error(capsys, tmp_path):
  from tfx_preflight import cli
  code = cli.main(['check', '--train', 'a', '--eval', 'b', '--checks', 'label_proxy', '--out', str(tmp_path)])
  assert code == cli.EXIT_USAGE and '--label-key' in capsys.readouterr().err


def test_label_absent_from_an_eval_split_fails_naming_it(tmp_path, beam_factory):
  rows = small_rows(60, 7)
  patterns = write_splits(str(tmp_path / 'data'), {'train': rows, 'eval': [{'x': r['x']} for r in rows]})
  with pytest.raises(ValueError, match="label 'label' has no usable .* split 'eval'"):
    label_proxy.check_label_proxy(patterns, 'train', ['eval'], LabelProxyConfig(), beam_factory, str(tmp_path / 'o'),
                                  'label')


def test_cli_exclude_features_also_leave_features_out_of_the_label_proxy_check():
  from tfx_preflight import cli
  args = cli.build_parser().parse_args(['check', '--train', 'a', '--eval', 'b', '--label-key', 'y',
                                        '--exclude-features', 'id,ts'])
  assert cli.config_from_args(args).excluded('label_proxy') == ('id', 'ts')


def test_non_finite_labels_are_left_out_and_a_feature_changing_type_is_not_scored():
  fn = label_proxy_beam.LabelProxyCombineFn(OPTIONS)
  a = fn.add_input(fn.create_accumulator(), decode([{'f': 1.0, 'label': float('nan')}, {'f': 2.0, 'label': 1.0},
                                                    {'f': 3.0, 'label': float('inf')}]))
  b = fn.add_input(fn.create_accumulator(), decode([{'f': 'x', 'label': 0.0}]))
  merged = fn.merge_accumulators([a, b])
  assert (merged.examples, merged.labelled) == (4, 2)
  assert 'f' not in merged.features and 'bytes' in merged.skipped['f']
  assert 'f' in a.features and a.labelled == 1  # Merging left the inputs as they were.
