"""Skew check on real TFDV statistics: the seed cases it must catch, and clean random splits it must leave alone."""

import json
import os
import re

import apache_beam as beam
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import schema_pb2

from bench import tfdv_statistics
from tfx_preflight.checks.skew import check as skew
from tfx_preflight.checks.skew import render as render_skew_lib
from tfx_preflight.checks.skew.details import SkewDetails
from tfx_preflight.config import SkewConfig
from tfx_preflight.report import build as report
from tfx_preflight.report.results import CheckResult, Finding

TAXI_CSV = os.path.join(os.path.dirname(tfdv.__file__), '..', 'tfx', 'examples', 'chicago_taxi_pipeline', 'data',
                        'simple', 'data.csv')
SCHEMAS = os.path.join(os.path.dirname(__file__), '..', 'schemas')
IMAGE_VALUES = 32 * 32 * 3


def statistics_of(columns):
  """Real TFDV statistics of {feature: one list of values per example}, in memory (no Beam: fast tests)."""
  batch = pa.RecordBatch.from_arrays([pa.array(v) for v in columns.values()], list(columns))
  return stats_impl.generate_statistics_in_memory(batch)


def scalar(values):
  return [[v] for v in values]


def check_skew(*args, **kwargs):
  """The skew check's result as report.json holds it (skew.check_skew returns a results.CheckResult)."""
  return skew.check_skew(*args, **kwargs).to_dict()


def render_skew(result, stats, train, evals, out_dir):
  """The skew section of report.html, its statistics pages written into `out_dir` as run.write_report does."""
  for name, page in render_skew_lib.statistics_pages(result, stats, train, evals).items():
    with open(os.path.join(out_dir, name), 'w') as f:
      f.write(page)
  return render_skew_lib.render_html(result, stats, train, evals)


def kinds(result):
  return sorted((f['feature'], f['kind'], f['severity']) for f in result['findings'])


def images(rng, n, values=IMAGE_VALUES):
  return rng.integers(0, 256, size=(n, values)).astype(np.float32)


@pytest.fixture(scope='module')
def image_statistics():
  """The seed case: 32x32x3 images as one float-list feature; train divided by 255, eval raw."""
  rng = np.random.default_rng(0)
  train, evaluation = images(rng, 300), images(rng, 100)
  return {
      'train': statistics_of({'pixels': [list(r / 255.0) for r in train], 'label': scalar(rng.integers(0, 10, 300))}),
      'eval': statistics_of({'pixels': [list(r) for r in evaluation], 'label': scalar(rng.integers(0, 10, 100))}),
  }


def test_check_skew_returns_a_typed_result_whose_dict_is_the_report_shape(image_statistics):
  typed = skew.check_skew(image_statistics, 'train', ['eval'], SkewConfig(), label_key='label')
  assert isinstance(typed, CheckResult) and typed.status == 'block'
  assert [type(f) for f in typed.findings] == [Finding]
  finding = typed.findings[0]
  assert (finding.check, finding.code, finding.feature, finding.severity) == ('skew', 'scale_mismatch', 'pixels',
                                                                              'block')
  assert finding.details['splits'] == ['train', 'eval'] and 'p_value' in finding.details
  assert isinstance(typed.details, SkewDetails) and typed.details.coverage().features == len(
      typed.details.comparisons['eval']) and typed.details.headline()['feature_comparisons'] > 0
  assert set(typed.details.to_dict()) == {'comparisons', 'not_compared', 'num_examples', 'excluded_features',
                                'multiple_testing', 'compared'}
  as_dict = typed.to_dict()  # report.json keeps `kind` (and `feature`) on skew findings.
  assert as_dict['findings'][0]['kind'] == 'scale_mismatch' and as_dict['findings'][0]['feature'] == 'pixels'
  assert 'code' not in as_dict['findings'][0]


def test_images_divided_by_255_in_train_only_block_as_scale_mismatch(image_statistics):
  result = check_skew(image_statistics, 'train', ['eval'], SkewConfig(), label_key='label')

  assert result['status'] == 'block'
  assert kinds(result) == [('pixels', 'scale_mismatch', 'block')]
  pixels = result['findings'][0]
  assert pixels['splits'] == ['train', 'eval']
  assert 'about 255x train' in pixels['message'] and 'normalization' in pixels['message']
  assert pixels['train']['max'] == pytest.approx(1.0) and pixels['eval']['max'] == pytest.approx(255.0)
  assert pixels['train']['avg_num_values'] == IMAGE_VALUES
  assert pixels['distance'] > pixels['threshold'] == 0.1
  assert pixels['metric'] == skew.JSD


def test_same_normalization_in_both_splits_passes():
  rng = np.random.default_rng(1)
  stats = {split: statistics_of({'pixels': [list(r / 255.0) for r in images(rng, n)]})
           for split, n in (('train', 300), ('eval', 100))}
  result = check_skew(stats, 'train', ['eval'], SkewConfig())
  assert result['findings'] == [] and result['status'] == 'pass'


def test_warn_mode_reports_but_does_not_block(image_statistics):
  result = check_skew(image_statistics, 'train', ['eval'], SkewConfig(mode='warn'))
  assert result['status'] == 'warn' and result['findings'][0]['severity'] == 'block'


def test_images_of_another_shape_block_as_value_count_mismatch():
  rng = np.random.default_rng(2)
  stats = {'train': statistics_of({'pixels': [list(r / 255) for r in images(rng, 200)]}),
           'eval': statistics_of({'pixels': [list(r / 255) for r in images(rng, 50, 28 * 28 * 3)]})}
  result = check_skew(stats, 'train', ['eval'], SkewConfig())
  assert kinds(result) == [('pixels', 'value_count_mismatch', 'block')]
  assert '3072 values per example in train but 2352 in eval' in result['findings'][0]['message']


@pytest.fixture(scope='module')
def tabular():
  rng = np.random.default_rng(3)
  n = 5000
  frame = pd.DataFrame({'age': rng.normal(40, 12, n), 'income': rng.lognormal(10, 1, n),
                        'city': rng.choice(['paris', 'rome', 'oslo'], n), 'clicks': rng.poisson(3, n).astype(float)})
  in_train = rng.random(n) < 0.8
  return frame[in_train].reset_index(drop=True), frame[~in_train].reset_index(drop=True)


def frame_statistics(frame):
  return tfdv.generate_statistics_from_dataframe(frame)


def test_standardized_train_and_raw_eval_is_a_scale_mismatch(tabular):
  train, evaluation = tabular
  train = train.assign(age=(train.age - train.age.mean()) / train.age.std())
  stats = {'train': frame_statistics(train), 'eval': frame_statistics(evaluation)}
  result = check_skew(stats, 'train', ['eval'], SkewConfig())

  assert kinds(result) == [('age', 'scale_mismatch', 'block')]
  message = result['findings'][0]['message']
  assert 'train values of `age` look standardized' in message and 'eval values are raw' in message
  assert result['findings'][0]['eval']['mean'] == pytest.approx(evaluation.age.mean(), rel=1e-4)


def test_clean_tabular_split_passes(tabular):
  train, evaluation = tabular
  result = check_skew({'train': frame_statistics(train), 'eval': frame_statistics(evaluation)}, 'train',
                           ['eval'], SkewConfig())
  assert result['findings'] == []
  assert set(result['comparisons']['eval']) == {'age', 'income', 'city', 'clicks'}


def test_feature_missing_in_eval_blocks(tabular):
  train, evaluation = tabular
  stats = {'train': frame_statistics(train), 'eval': frame_statistics(evaluation.drop(columns=['income']))}
  result = check_skew(stats, 'train', ['eval'], SkewConfig())
  assert kinds(result) == [('income', 'missing_in_split', 'block')]
  assert result['findings'][0]['eval'] is None


def test_zeroed_feature_and_excluded_features(tabular):
  train, evaluation = tabular
  stats = {'train': frame_statistics(train), 'eval': frame_statistics(evaluation.assign(clicks=0.0, age=1.0))}
  result = check_skew(stats, 'train', ['eval'], SkewConfig())
  assert kinds(result) == [('age', 'constant_in_split', 'block'), ('clicks', 'constant_in_split', 'block')]
  assert '`clicks` is all zeros in eval but varies in train' in result['findings'][1]['message']

  excluded = check_skew(stats, 'train', ['eval'], SkewConfig(exclude_features=('clicks', 'age')))
  assert excluded['findings'] == [] and 'clicks' not in excluded['comparisons']['eval']


def test_missing_rate_new_categories_and_label_shift(tabular):
  train, evaluation = tabular
  rng = np.random.default_rng(4)
  evaluation = evaluation.copy()
  evaluation.loc[rng.random(len(evaluation)) < 0.3, 'income'] = np.nan
  evaluation.loc[rng.random(len(evaluation)) < 0.05, 'city'] = 'lima'  # Under the L-inf threshold.
  evaluation['clicks'] = evaluation.clicks + 4  # The label: another class balance in eval.
  stats = {'train': frame_statistics(train), 'eval': frame_statistics(evaluation)}
  result = check_skew(stats, 'train', ['eval'], SkewConfig(), label_key='clicks')

  assert kinds(result) == [('city', 'new_categories', 'warn'), ('clicks', 'label_shift', 'block'),
                           ('income', 'missing_rate_mismatch', 'warn')]
  by_kind = {f['kind']: f for f in result['findings']}
  assert by_kind['new_categories']['new_categories'] == ['lima']
  assert by_kind['missing_rate_mismatch']['eval']['missing_rate'] == pytest.approx(0.3, abs=0.05)


@pytest.fixture(scope='module')
def taxi():
  frame = pd.read_csv(TAXI_CSV)
  assert len(frame) == 15002
  return frame


@pytest.mark.parametrize('seed', [0, 1, 2, 3, 4])
def test_no_finding_on_random_80_20_splits_of_chicago_taxi(taxi, seed):
  in_train = np.random.default_rng(seed).random(len(taxi)) < 0.8
  stats = {'train': frame_statistics(taxi[in_train].reset_index(drop=True)),
           'eval': frame_statistics(taxi[~in_train].reset_index(drop=True))}
  result = check_skew(stats, 'train', ['eval'], SkewConfig(), label_key='tips')

  assert [f['message'] for f in result['findings']] == []
  assert result['status'] == 'pass'
  with open(os.path.join(SCHEMAS, 'example_schema.pbtxt')) as f:
    schema = text_format.Parse(f.read(), schema_pb2.Schema())
  with_schema = check_skew(stats, 'train', ['eval'], SkewConfig(), schema=schema, label_key='tips')
  assert [f['message'] for f in with_schema['findings']] == []
  assert with_schema['comparisons']['eval']['payment_type']['threshold'] == 0.05
  # Every column was compared, but the one that is empty in nearly every row (no values in eval for some seeds).
  assert set(result['comparisons']['eval']) | set(result['not_compared']['eval']) == set(taxi.columns)
  assert set(result['not_compared']['eval']) <= {'pickup_census_tract'}


def test_taxi_with_one_rescaled_column_is_caught(taxi):
  in_train = np.random.default_rng(0).random(len(taxi)) < 0.8
  evaluation = taxi[~in_train].reset_index(drop=True)
  stats = {'train': frame_statistics(taxi[in_train].reset_index(drop=True)),
           'eval': frame_statistics(evaluation.assign(trip_seconds=evaluation.trip_seconds / 60))}
  result = check_skew(stats, 'train', ['eval'], SkewConfig())
  assert kinds(result) == [('trip_seconds', 'scale_mismatch', 'block')]
  assert 'about 1/60 of train' in result['findings'][0]['message']


def _taxi_split(taxi, seed=0):
  in_train = np.random.default_rng(seed).random(len(taxi)) < 0.8
  return taxi[in_train].reset_index(drop=True), taxi[~in_train].reset_index(drop=True)


def test_a_unit_change_on_a_heavy_tailed_column_blocks_and_is_named(taxi):
  """trip_miles in km in eval (x1.609): train's outliers (up to 1,710 miles) inflate the std, so moments and the
  Jensen-Shannon divergence (0.12) barely move and the check passed as within noise; every decile moved by 1.609x."""
  train, evaluation = _taxi_split(taxi)
  stats = {'train': frame_statistics(train), 'eval': frame_statistics(evaluation.assign(
      trip_miles=evaluation.trip_miles * 1.609, fare=evaluation.fare * 100))}
  result = check_skew(stats, 'train', ['eval'], SkewConfig(), label_key='tips')
  assert kinds(result) == [('fare', 'scale_mismatch', 'block'), ('trip_miles', 'scale_mismatch', 'block')]
  fare, miles = result['findings']
  assert 'about 1.609x train: miles in one split and kilometres in the other' in miles['message']
  assert 'about 100x train: an amount in dollars in one split and cents in the other' in fare['message']
  assert 'percent' not in fare['message']


def test_every_numeric_column_of_taxi_times_1_5_blocks(taxi):
  train, evaluation = _taxi_split(taxi, seed=1)
  numeric = [c for c in taxi.select_dtypes('number').columns if taxi[c].nunique() > 2]
  rescaled = evaluation.assign(**{c: evaluation[c] * 1.5 for c in numeric})
  result = check_skew({'train': frame_statistics(train), 'eval': frame_statistics(rescaled)}, 'train', ['eval'],
                      SkewConfig(), label_key='tips')
  blocked = {f['feature'] for f in result['findings'] if f['severity'] == 'block'}
  # pickup_census_tract has a value in 1 of 15,002 rows: maybe nothing to compare.
  assert set(numeric) - blocked <= {'pickup_census_tract'} and len(numeric) == 15


@pytest.mark.parametrize('wrap', [True, False])
def test_a_time_zone_slip_of_six_hours_blocks(taxi, wrap):
  """trip_start_hour of eval + 6 h (local time written as UTC in one split): Jensen-Shannon 0.06 passed; the
  order-aware comparison of the deciles sees a fifth of the values cross a decile."""
  train, evaluation = _taxi_split(taxi)
  hour = evaluation.trip_start_hour + 6
  stats = {'train': frame_statistics(train),
           'eval': frame_statistics(evaluation.assign(trip_start_hour=hour % 24 if wrap else hour))}
  result = check_skew(stats, 'train', ['eval'], SkewConfig(), label_key='tips')
  assert kinds(result) == [('trip_start_hour', 'distribution_shift', 'block')]
  finding = result['findings'][0]
  assert finding['ks_distance'] >= 0.2 and finding['p_value'] < 1e-10
  if wrap:
    assert finding['distance'] < finding['threshold'] and 'under its threshold' in finding['message']
  else:
    assert 'every decile moved by about +6' in finding['message']


def test_taxi_split_by_time_blocks_and_every_reported_distance_reads_over_its_threshold(taxi):
  """A time-based split of taxi is real drift (later months, more card payments, larger tips): it blocks, and each
  message's 'distance > threshold' must read as over (three digits printed 0.100195 as '0.1 > 0.1')."""
  ordered = taxi.sort_values('trip_start_timestamp', kind='stable').reset_index(drop=True)
  cut = int(len(ordered) * 0.8)
  stats = {'train': frame_statistics(ordered[:cut]), 'eval': frame_statistics(ordered[cut:].reset_index(drop=True))}
  result = check_skew(stats, 'train', ['eval'], SkewConfig(), label_key='tips')
  assert result['status'] == 'block'
  assert ('tips', 'label_shift', 'block') in kinds(result)
  over = [re.search(r'(?:divergence|frequencies) (\S+) > (\S+?)[;)]', f['message']) for f in result['findings']
          if f['kind'] in ('distribution_shift', 'label_shift')]
  assert over and all(float(m.group(1)) > float(m.group(2)) for m in over), [m.group(0) for m in over]
  # The timestamp the split was cut by: its ranges do not overlap, and the message says what that means.
  by_feature = {f['feature']: f['message'] for f in result['findings']}
  assert ('the value ranges do not overlap (train 1357000200 to 1436192100, eval 1436203800 to 1483116300): an ID, '
          'row number or timestamp the splits were cut by?') in by_feature['trip_start_timestamp']
  assert 'do not overlap' not in by_feature['trip_start_month']


def _row_order_split(frame, cut):
  n = int(len(frame) * cut)
  return {'train': frame_statistics(frame[:n].reset_index(drop=True)),
          'eval': frame_statistics(frame[n:].reset_index(drop=True))}


@pytest.mark.parametrize('dataset, cut', [('iris', 0.8), ('wine', 0.7)])
def test_a_file_sorted_by_the_label_split_without_shuffling_is_named_so(dataset, cut):
  """scikit-learn's files are sorted by class: the last 20% of iris is all class 2, the last 30% of wine lacks class 0.
  The label said 'zeroed or broken by preprocessing' and features 'a different normalization in each split'."""
  from sklearn import datasets
  frame = getattr(datasets, f'load_{dataset}')(as_frame=True).frame
  result = check_skew(_row_order_split(frame, cut), 'train', ['eval'], SkewConfig(), label_key='target')
  by_feature = {}
  for f in result['findings']:
    by_feature.setdefault(f['feature'], []).append(f)
  label = by_feature.pop('target')
  assert len(label) == 1 and 'the file looks sorted by the label and was split without shuffling' in label[0]['message']
  if dataset == 'iris':
    assert label[0]['kind'] == 'constant_in_split'
    assert label[0]['message'].startswith('label `target` is always 2.0 in eval but varies in train: it is the label')
  else:
    assert label[0]['kind'] == 'label_shift'
    assert '% of train labels are outside the range of eval labels (1 to 2)' in label[0]['message']
  assert len(by_feature) >= 3
  for findings in by_feature.values():
    assert [f['kind'] for f in findings] == ['distribution_shift']
    assert 'the splits hold different labels' in findings[0]['message'] and 'normaliz' not in findings[0]['message']


def test_ranges_that_do_not_overlap_get_the_id_or_row_order_hint_whatever_the_ratio():
  """An ID the split was cut by (1-168 vs 169-210) and a file sorted by income were called 'scale_mismatch: a
  different normalization in each split'."""
  rng = np.random.default_rng(0)
  frame = pd.DataFrame({'individual': np.arange(1, 211), 'income': np.sort(rng.lognormal(10, 1, 210)),
                        'x': rng.normal(size=210)})
  result = check_skew(_row_order_split(frame, 0.8), 'train', ['eval'], SkewConfig())
  assert kinds(result) == [('income', 'distribution_shift', 'block'), ('individual', 'distribution_shift', 'block')]
  for f in result['findings']:
    assert 'the value ranges do not overlap' in f['message'] and 'an ID, row number or timestamp' in f['message']
  assert 'train 1 to 168, eval 169 to 210' in result['findings'][1]['message']


def test_latin1_text_is_not_passed_as_compared_but_binary_blobs_are_left_alone():
  """TFDV labels every value that is not valid UTF-8 '__BYTES_VALUE__': Koeln in train and Muenchen in eval (Latin-1)
  then compare as the same category and the check passed. In UTF-8 the same change blocks (the control)."""
  rng = np.random.default_rng(2)

  def cities(names, n):
    return scalar(list(rng.choice(np.array(names, dtype=object), n)))
  latin1 = {'train': statistics_of({'city': cities([b'Berlin', 'Köln'.encode('latin-1')], 400)}),
            'eval': statistics_of({'city': cities([b'Berlin', 'München'.encode('latin-1')], 100)})}
  result = check_skew(latin1, 'train', ['eval'], SkewConfig())
  assert kinds(result) == [('city', 'undecodable_values', 'warn')] and result['status'] == 'warn'
  assert 'not valid UTF-8' in result['findings'][0]['message']
  utf8 = {'train': statistics_of({'city': cities([b'Berlin', 'Köln'.encode()], 400)}),
          'eval': statistics_of({'city': cities([b'Berlin', 'München'.encode()], 100)})}
  assert check_skew(utf8, 'train', ['eval'], SkewConfig())['status'] == 'block'
  blobs = {split: statistics_of({'png': scalar([b'\x89PNG\r\n\x1a\n\xff' + rng.bytes(60) for _ in range(n)])})
           for split, n in (('train', 200), ('eval', 50))}
  assert check_skew(blobs, 'train', ['eval'], SkewConfig())['findings'] == []


def shifted_statistics(shift):
  rng = np.random.default_rng(5)
  return {'train': statistics_of({'x': scalar(rng.normal(0, 1, 4000)),
                                  'c': scalar(rng.choice(['a', 'b'], 4000, p=[0.5, 0.5]))}),
          'eval': statistics_of({'x': scalar(rng.normal(shift, 1, 1000)),
                                 'c': scalar(rng.choice(['a', 'b'], 1000, p=[0.57, 0.43]))})}


def schema_with(text):
  return text_format.Parse(text, schema_pb2.Schema())


def test_thresholds_from_schema_comparators_are_honoured():
  stats = shifted_statistics(0.7)
  default = check_skew(stats, 'train', ['eval'], SkewConfig())
  # Both TFDV distances are under the defaults (0.1), but 0.7 std moves a quarter of x past a decile: the order-aware
  # comparison (Kolmogorov-Smirnov at the deciles, for features the schema sets no comparator for) sees it.
  assert kinds(default) == [('x', 'distribution_shift', 'block')]
  x = default['findings'][0]
  assert x['distance'] < x['threshold'] and x['ks_distance'] > x['ks_threshold'] == 0.15
  assert 'under its threshold 0.1; Kolmogorov-Smirnov distance 0.2' in x['message']

  strict = schema_with("""
      feature { name: "x" type: FLOAT skew_comparator { jensen_shannon_divergence { threshold: 0.01 } } }
      feature { name: "c" type: BYTES drift_comparator { infinity_norm { threshold: 0.05 } } }""")
  result = check_skew(stats, 'train', ['eval'], SkewConfig(), schema=strict)
  assert kinds(result) == [('c', 'distribution_shift', 'block'), ('x', 'distribution_shift', 'block')]
  c, x = result['findings']
  assert (x['threshold'], x['threshold_source'], x['metric']) == (0.01, 'schema.skew_comparator', skew.JSD)
  assert (c['threshold'], c['threshold_source'], c['metric']) == (0.05, 'schema.drift_comparator', skew.L_INFINITY)
  assert 0.01 < x['distance'] < 0.1 and 0.05 < c['distance'] < 0.1


def test_lenient_schema_threshold_silences_a_default_finding():
  stats = shifted_statistics(3.0)
  assert kinds(check_skew(stats, 'train', ['eval'], SkewConfig())) == [('x', 'distribution_shift', 'block')]
  lenient = schema_with('feature { name: "x" type: FLOAT drift_comparator { jensen_shannon_divergence { '
                        'threshold: 0.99 } } }')
  assert check_skew(stats, 'train', ['eval'], SkewConfig(), schema=lenient)['findings'] == []


def test_shipped_example_schema_parses_and_sets_the_example_count_comparator():
  with open(os.path.join(SCHEMAS, 'example_schema.pbtxt')) as f:
    schema = text_format.Parse(f.read(), schema_pb2.Schema())
  assert any(feature.HasField('skew_comparator') for feature in schema.feature)
  stats = shifted_statistics(0.0)  # Eval is 1000 / 4000 = 0.25 of train.
  ratio = schema.dataset_constraints.num_examples_drift_comparator
  assert ratio.min_fraction_threshold <= 0.25 <= ratio.max_fraction_threshold
  assert check_skew(stats, 'train', ['eval'], SkewConfig(), schema=schema)['findings'] == []

  tight = schema_with('dataset_constraints { num_examples_drift_comparator { min_fraction_threshold: 0.5 '
                      'max_fraction_threshold: 2.0 } }')
  result = check_skew(stats, 'train', ['eval'], SkewConfig(), schema=tight)
  assert kinds(result) == [(None, 'example_count', 'block')]
  assert result['findings'][0]['ratio'] == 0.25


def test_findings_are_deterministic(image_statistics):
  first = report.to_json(check_skew(image_statistics, 'train', ['eval'], SkewConfig()))
  assert first == report.to_json(check_skew(image_statistics, 'train', ['eval'], SkewConfig()))


def test_missing_or_empty_statistics_fail_closed(image_statistics):
  with pytest.raises(ValueError, match="'test'"):
    check_skew(image_statistics, 'train', ['test'], SkewConfig())
  empty = statistics_of({'x': pa.array([], pa.list_(pa.float32()))})
  with pytest.raises(ValueError, match="'eval' has no examples"):
    check_skew({'train': image_statistics['train'], 'eval': empty}, 'train', ['eval'], SkewConfig())


def test_render_html_draws_both_histograms_escapes_names_and_links_tfdv_view(tmp_path):
  rng = np.random.default_rng(6)
  name = '<script>alert(1)</script>'
  stats = {'train': statistics_of({name: scalar(rng.normal(0, 1, 500))}),
           'eval': statistics_of({name: scalar(rng.normal(0, 1, 100) * 1000)})}
  result = check_skew(stats, 'train', ['eval'], SkewConfig())
  assert kinds(result) == [(name, 'scale_mismatch', 'block')]

  fragment = render_skew(result, stats, 'train', ['eval'], str(tmp_path))
  assert '<script' not in fragment and '&lt;script&gt;' in fragment
  assert fragment.count('<svg') == 2
  # Train and eval on the same bins (cut at both splits' quantile points), whatever each split's own range.
  left, right = fragment.split('</svg>')[:2]
  bins = [re.findall(r'<title>(\[\S+, \S+\]): [\d.]+%</title>', svg) for svg in (left, right)]
  assert bins[0] == bins[1] and len(bins[0]) >= 10 and fragment.count('<rect') == 2 * len(bins[0])
  assert 'shared quantile bins' in left and 'shared quantile bins' in right
  assert '<a href="statistics.html">' in fragment
  tfdv_view = (tmp_path / 'statistics.html').read_text()
  assert '&lt;script&gt;alert(1)&lt;/script&gt;' in tfdv_view  # Static, self-contained, escaped (statistics_page).
  assert '<script' not in tfdv_view and 'http' not in tfdv_view.replace('http-equiv', '')
  assert fragment == render_skew(result, stats, 'train', ['eval'], str(tmp_path))
  assert (tmp_path / 'statistics.html').read_text() == tfdv_view


def write_tfrecords(path, rows, gzip):
  options = tf.io.TFRecordOptions(compression_type='GZIP' if gzip else '')
  with tf.io.TFRecordWriter(path, options) as writer:
    for row in rows:
      features = {k: tf.train.Feature(float_list=tf.train.FloatList(value=v)) for k, v in row.items()}
      writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())


def test_generate_statistics_reads_gzipped_tfrecords_in_one_pipeline(tmp_path):
  rng = np.random.default_rng(7)
  for split in ('train', 'eval'):
    os.makedirs(tmp_path / 'examples' / f'Split-{split}')
  # ExampleGen's layout (*.gz) for train; a gzipped file without the suffix and a plain file for eval.
  write_tfrecords(str(tmp_path / 'examples' / 'Split-train' / 'data_tfrecord-00000-of-00001.gz'),
                  [{'pixels': r / 255.0, 'label': [i % 10]} for i, r in enumerate(images(rng, 120, 48))], gzip=True)
  write_tfrecords(str(tmp_path / 'examples' / 'Split-eval' / 'part-0'),
                  [{'pixels': r, 'label': [i % 10]} for i, r in enumerate(images(rng, 40, 48))], gzip=True)
  plain = str(tmp_path / 'plain.tfrecord')
  write_tfrecords(plain, [{'pixels': r} for r in images(rng, 10, 48)], gzip=False)
  pipelines = []

  def make_pipeline():
    pipelines.append(beam.Pipeline())
    return pipelines[-1]

  examples = {s: str(tmp_path / 'examples' / f'Split-{s}' / '*') for s in ('train', 'eval')}
  examples['plain'] = plain
  out = str(tmp_path / 'statistics')
  stats = tfdv_statistics.generate_statistics(examples, make_pipeline, out)

  assert len(pipelines) == 1
  assert {s: stats[s].datasets[0].num_examples for s in stats} == {'train': 120, 'eval': 40, 'plain': 10}
  assert os.path.exists(os.path.join(out, 'Split-train', 'FeatureStats.pb'))
  assert tfdv.load_stats_binary(os.path.join(out, 'Split-eval', 'FeatureStats.pb')) == stats['eval']
  result = check_skew(stats, 'train', ['eval'], SkewConfig(), label_key='label')
  assert kinds(result) == [('pixels', 'scale_mismatch', 'block')]
  assert json.loads(report.to_json(result))['findings'][0]['train']['avg_num_values'] == 48


def test_generate_statistics_names_a_pattern_without_files(tmp_path):
  with pytest.raises(ValueError, match=r"split 'eval': no file matches"):
    tfdv_statistics.generate_statistics({'eval': str(tmp_path / 'nothing*')}, beam.Pipeline, str(tmp_path / 'out'))


@pytest.mark.slow
def test_taxi_through_csv_example_gen_tfrecords_and_the_whole_gate_passes(taxi, tmp_path):
  """The real path: CsvExampleGen's tf.Examples (empty cells become empty lists), statistics computed by the gate."""
  from tfx_preflight import run
  from tfx_preflight.config import PreflightConfig
  from tfx_preflight.inputs import csv_staging

  raw = pd.read_csv(TAXI_CSV, dtype=str, keep_default_na=False)
  in_train = np.random.default_rng(11).random(len(raw)) < 0.8
  raw[in_train].to_csv(tmp_path / 'train.csv', index=False)
  raw[~in_train].to_csv(tmp_path / 'eval.csv', index=False)
  patterns = csv_staging.csv_to_tfrecords({'train': [str(tmp_path / 'train.csv')], 'eval': [str(tmp_path / 'eval.csv')]},
                                          beam.Pipeline, str(tmp_path / 'examples'))
  config = PreflightConfig(label_key='tips', leakage={'mode': 'off'}, loss={'mode': 'off'})
  out = tmp_path / 'report'
  _, result = run.run_preflight(run.PreflightInputs(examples=patterns), config, beam.Pipeline, str(out))

  skew_result = result['checks']['skew']
  assert [f['message'] for f in skew_result['findings']] == [] and skew_result['status'] == 'pass'
  assert len(skew_result['comparisons']['eval']) == 17
  assert (out / 'statistics' / 'Split-train' / 'FeatureStats.pb').exists()
  assert (out / 'statistics.html').exists()
  assert 'href="statistics.html"' in (out / 'report.html').read_text()


def test_empty_lists_count_as_missing_values_not_as_another_list_length():
  """CsvExampleGen writes an empty list for an empty cell; TFDV counts it present with 0 values."""
  rng = np.random.default_rng(8)
  train = [[float(v)] if keep else [] for v, keep in zip(rng.normal(size=2000), rng.random(2000) < 0.4)]
  evaluation = [[float(v)] for v in rng.normal(size=500)]
  stats = {'train': statistics_of({'x': train}), 'eval': statistics_of({'x': evaluation})}
  result = check_skew(stats, 'train', ['eval'], SkewConfig())
  assert kinds(result) == [('x', 'missing_rate_mismatch', 'warn')]
  assert result['findings'][0]['train']['missing_rate'] == pytest.approx(0.6, abs=0.03)


def test_type_mismatch_blocks_and_int_vs_float_still_compares_values():
  rng = np.random.default_rng(9)
  stats = {'train': statistics_of({'n': scalar(rng.integers(0, 100, 1000)), 's': scalar(rng.integers(0, 3, 1000))}),
           'eval': statistics_of({'n': scalar(rng.integers(0, 100, 300) * 1000.0),
                                  's': scalar(rng.choice(['0', '1', '2'], 300))})}
  result = check_skew(stats, 'train', ['eval'], SkewConfig())
  assert kinds(result) == [('n', 'scale_mismatch', 'block'), ('n', 'type_mismatch', 'block'),
                           ('s', 'type_mismatch', 'block')]
  assert 'is INT in train but FLOAT in eval' in result['findings'][1]['message']


@pytest.mark.parametrize('dataset', ['iris', 'wine', 'digits'])
def test_no_finding_on_random_splits_of_small_or_sparse_sklearn_data(dataset):
  """150-1,800 rows (eval splits of 30-360) and sparse pixel columns: noise must not read as skew or rescaling."""
  from sklearn import datasets
  frame = getattr(datasets, f'load_{dataset}')(as_frame=True).frame
  frame.columns = [str(c) for c in frame.columns]
  noisy = 0
  for seed in range(2 if dataset == 'digits' else 4):  # digits: 65 columns, slower statistics.
    in_train = np.random.default_rng(seed).random(len(frame)) < 0.8
    stats = {'train': frame_statistics(frame[in_train].reset_index(drop=True)),
             'eval': frame_statistics(frame[~in_train].reset_index(drop=True))}
    result = check_skew(stats, 'train', ['eval'], SkewConfig(), label_key='target')
    assert [f['message'] for f in result['findings']] == []
    noisy += len(check_skew(stats, 'train', ['eval'], SkewConfig(min_effect_size=0))['findings'])
  if dataset != 'digits':
    assert noisy > 0  # TFDV's distances alone do flag these clean splits: the noise guard is what keeps them quiet.


def test_every_eval_split_is_compared_and_gets_its_own_tfdv_view(tmp_path, image_statistics):
  stats = dict(image_statistics, test=image_statistics['train'])
  result = check_skew(stats, 'train', ['eval', 'test'], SkewConfig(), label_key='label')
  assert [f['splits'] for f in result['findings']] == [['train', 'eval']]
  assert set(result['comparisons']) == {'eval', 'test'}
  fragment = render_skew(result, stats, 'train', ['eval', 'test'], str(tmp_path))
  assert '<a href="statistics.html">train vs eval</a>' in fragment
  assert '<a href="statistics-2.html">train vs test</a>' in fragment
  assert (tmp_path / 'statistics-2.html').exists()


def _with_non_finite(values, every, value):
  return [value if i % every == 0 else v for i, v in enumerate(values)]


def test_nan_and_inf_in_eval_only_block_with_their_rates():
  rng = np.random.default_rng(7)
  train = {name: scalar(rng.normal(size=600)) for name in ('f0', 'f1', 'f2')}
  train['label'] = scalar(rng.normal(size=600))
  f0, f1, f2, label = (rng.normal(size=300) for _ in range(4))
  evaluation = {'f0': scalar(_with_non_finite(f0, 2, np.nan)), 'f1': scalar(_with_non_finite(f1, 3, np.inf)),
                'f2': scalar(f2), 'label': scalar(label)}
  stats = {'train': statistics_of(train), 'eval': statistics_of(evaluation)}
  result = check_skew(stats, 'train', ['eval'], SkewConfig(), label_key='label')
  assert result['status'] == 'block'
  found = {f['feature']: f for f in result['findings'] if f['kind'] == 'non_finite_rate_mismatch'}
  assert sorted(found) == ['f0', 'f1']
  assert found['f0']['non_finite_rates']['eval']['nan'] == 0.5 and 'nan 0.0% vs 50.0%' in found['f0']['message']
  assert found['f1']['non_finite_rates']['eval']['+inf'] == pytest.approx(1 / 3, abs=1e-3)
  assert '+inf 0.0% vs 33.3%' in found['f1']['message']

  labels = [np.nan if i % 3 == 0 else np.inf if i % 3 == 1 else v for i, v in enumerate(label)]
  stats['eval'] = statistics_of({'f0': scalar(f0), 'f1': scalar(f1), 'f2': scalar(f2), 'label': scalar(labels)})
  result = check_skew(stats, 'train', ['eval'], SkewConfig(), label_key='label')
  assert result['status'] == 'block'
  label_findings = [f for f in result['findings'] if f['kind'] == 'non_finite_label']
  assert len(label_findings) == 1 and 'nan 0.0% vs 33.3%' in label_findings[0]['message']


def test_nan_at_the_same_rate_in_both_splits_passes():
  rng = np.random.default_rng(8)
  stats = {split: statistics_of({'x': scalar(_with_non_finite(rng.normal(size=n), 10, np.nan)),
                                 'y': scalar(_with_non_finite(rng.normal(size=n), 20, -np.inf))})
           for split, n in (('train', 800), ('eval', 400))}
  result = check_skew(stats, 'train', ['eval'], SkewConfig())
  assert result['status'] == 'pass', result['findings']


def _wide_clean_split(rng, width, rows):
  """`width` features of mixed real-world shapes, all drawn from the same distributions whatever the split."""
  columns = {}
  for j in range(width):
    kind = j % 5
    if kind == 0:
      values = scalar(rng.normal(size=rows).astype(np.float32))
    elif kind == 1:
      values = scalar(rng.lognormal(sigma=2.0, size=rows).astype(np.float32))
    elif kind == 2:
      values = scalar(rng.poisson(0.7, size=rows))
    elif kind == 3:
      values = scalar(np.array([f'c{int(v)}' for v in rng.zipf(1.6, size=rows) % 30], dtype=object))
    else:
      values = [[float(v)] if rng.random() > 0.1 else None for v in rng.normal(size=rows)]
    columns[f'f{j:05d}'] = values
  return statistics_of(columns)


def test_clean_random_splits_of_thousands_of_features_do_not_block():
  """With 1,200 features x 6 tests x 2 eval splits, per-feature thresholds alone fire by chance (v0.1 blocked on
  heavy-tailed scale and rare categories here); the false-discovery control keeps clean splits passing."""
  rng = np.random.default_rng(2026)
  width = 1200
  stats = {split: _wide_clean_split(rng, width, 250) for split in ('train', 'eval', 'eval_2')}
  result = check_skew(stats, 'train', ['eval', 'eval_2'], SkewConfig())
  assert [f for f in result['findings'] if f['severity'] == 'block'] == []
  assert result['multiple_testing']['eval']['tests'] == width * skew.TESTS_PER_FEATURE
  shifted = dict(stats)
  columns = {'f00000': scalar(rng.normal(loc=1.5, size=250).astype(np.float32))}
  shifted['eval'] = _merged(stats['eval'], statistics_of(columns))
  result = check_skew(shifted, 'train', ['eval'], SkewConfig())
  assert [(f['feature'], f['kind']) for f in result['findings'] if f['severity'] == 'block'] == [
      ('f00000', 'distribution_shift')]


def _merged(base, replacement):
  """`base` statistics with the features of `replacement` swapped in."""
  merged = type(base)()
  merged.CopyFrom(base)
  dataset = merged.datasets[0]
  new = {f.path.step[0]: f for f in replacement.datasets[0].features}
  kept = [f for f in dataset.features if f.path.step[0] not in new]
  del dataset.features[:]
  dataset.features.extend(kept + list(new.values()))
  return merged


def test_skew_on_5000_features_takes_seconds():
  import time
  rng = np.random.default_rng(3)
  columns = {f'f{j}': scalar(rng.normal(size=250).astype(np.float32)) for j in range(100)}
  base = statistics_of(columns)
  stats = {split: _widened(base, 50) for split in ('train', 'eval')}
  started = time.monotonic()
  result = check_skew(stats, 'train', ['eval'], SkewConfig())
  assert time.monotonic() - started < 60
  assert len(result['comparisons']['eval']) == 5000 and result['status'] == 'pass'


def _widened(statistics, copies):
  """The statistics with every feature repeated `copies` times under new names (wide data without generating it)."""
  wide = type(statistics)()
  wide.CopyFrom(statistics)
  dataset = wide.datasets[0]
  originals = list(dataset.features)
  del dataset.features[:]
  for c in range(copies):
    for f in originals:
      copy = dataset.features.add()
      copy.CopyFrom(f)
      copy.path.step[0] = f'{f.path.step[0]}_{c}'
  return dataset and wide


def test_false_discovery_control_keeps_deterministic_findings_and_scales_with_the_number_of_tests():
  def finding(feature, p=None):
    extra = {} if p is None else {'p_value': p}
    return Finding('skew', 'distribution_shift', 'block', feature, feature=feature, details=extra)

  few = [finding('a', 1e-5), finding('b', 0.2), finding('t')]
  kept, withheld = skew.control_false_discoveries(few, 3, 0.01)
  assert [f.feature for f in kept] == ['a', 't'] and [w['feature'] for w in withheld] == ['b']
  kept, withheld = skew.control_false_discoveries([finding('a', 1e-5), finding('t')], 5000, 0.01)
  assert [f.feature for f in kept] == ['t'] and withheld[0]['p_value'] == 1e-5
  many = [finding(f'f{i}', 1e-6) for i in range(200)]  # Many real shifts at once: BH keeps them all.
  kept, _ = skew.control_false_discoveries(many, 5000, 0.01)
  assert len(kept) == 200


def test_a_label_absent_from_some_examples_warns_whatever_the_rates(tabular):
  """Same missing rate in both splits (no missing_rate_mismatch), yet each unlabelled example either breaks Trainer's
  input_fn or trains and scores on its default value."""
  train, evaluation = (frame.assign(label=(frame.age > 40).astype(float)) for frame in tabular)
  for frame in (train, evaluation):
    frame.loc[frame.index % 10 == 0, 'label'] = np.nan  # pandas' missing value: TFDV counts the label absent.
  stats = {'train': frame_statistics(train), 'eval': frame_statistics(evaluation)}
  result = check_skew(stats, 'train', ['eval'], SkewConfig(), label_key='label')
  assert kinds(result) == [('label', 'label_missing', 'warn')]
  assert result['status'] == 'warn'
  assert result['findings'][0]['missing_rate'] == {'train': pytest.approx(0.1, abs=0.01),
                                                   'eval': pytest.approx(0.1, abs=0.01)}
  complete = {split: frame_statistics(frame.dropna().reset_index(drop=True)) for split, frame in (('train', train), ('eval', evaluation))}
  assert check_skew(complete, 'train', ['eval'], SkewConfig(), label_key='label')['findings'] == []
