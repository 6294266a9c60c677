"""A survey of public tables that ship with installed packages, split as users split them, through the whole gate.

Each row is one table and one way to split it (random 80/20, by hash of the row's content as ExampleGen does, or by
row order: the first 80% as train), with the verdict a careful data scientist would reach on the two splits, per check.
Clean random and hash splits must pass; a row-order split of a file sorted by the label, or of a time series, must
block skew with the right cause. statsmodels is not installed in this environment, so its datasets are not here.
"""

import hashlib
import math
import os

import apache_beam as beam
import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from tests.helpers import write_splits
from tfx_preflight import run
from tfx_preflight.config import PreflightConfig

SITE = os.path.dirname(os.path.dirname(tfdv.__file__))
TFX = os.path.join(SITE, 'tfx')
PENGUIN = os.path.join(TFX, 'components', 'testdata', 'penguin', 'data')


def _sklearn(name, **kwargs):
  from sklearn import datasets
  frame = getattr(datasets, f'load_{name}')(as_frame=True, **kwargs).frame
  frame.columns = [str(c).replace('/', '_').replace(' ', '_').replace('(', '').replace(')', '') for c in frame.columns]
  return frame


def _csv(*parts, **kwargs):
  return pd.read_csv(os.path.join(SITE, *parts), **kwargs)


TABLES = {
    'iris': (lambda: _sklearn('iris'), 'target'),
    'wine': (lambda: _sklearn('wine'), 'target'),
    'breast_cancer': (lambda: _sklearn('breast_cancer'), 'target'),
    'digits': (lambda: _sklearn('digits'), 'target'),
    'diabetes': (lambda: _sklearn('diabetes', scaled=False), 'target'),
    'boston': (lambda: _csv('sklearn', 'datasets', 'data', 'boston_house_prices.csv', skiprows=1), 'MEDV'),
    'taxi': (lambda: _csv('tfx', 'examples', 'chicago_taxi_pipeline', 'data', 'simple', 'data.csv'), 'tips'),
    'taxi_big_tipper': (lambda: _csv('tfx', 'examples', 'chicago_taxi_pipeline', 'data', 'big_tipper_label',
                                     'data.csv'), 'big_tipper'),
    'taxi_testdata': (lambda: _csv('tfx', 'components', 'testdata', 'external', 'csv', 'data.csv'), 'tips'),
    # Monthly prices 1990-2017 without their date; its 133 blank months (no price at all) dropped: empty examples are
    # all identical, which leakage rightly reports.
    'stocks': (lambda: _csv('matplotlib', 'mpl-data', 'sample_data', 'Stocks.csv', comment='#').drop(
        columns=['Date']).dropna(how='all'), None),
}

PASS, WARN, BLOCK, SKIPPED = 'pass', 'warn', 'block', 'skipped'
# table, split, expected status per check (skew, leakage, label_proxy), and a fragment the skew findings must hold.
# TODO(#28.1, the leakage helper's natural-duplicates fix): iris repeats a row (1 of 30 eval rows is 3.3% > 1%) and
# stocks has months with the same few prices (1 of 97 eval rows, 1.03% > 1%; within-split repeats warn), so leakage is
# left out of their rows here (None); once cross-split leakage is judged against chance, run it and expect 'pass'
# on their random splits.
SURVEY = [
    ('iris', 'random', PASS, None, PASS, None),
    ('iris', 'row_order', BLOCK, None, PASS, 'the file looks sorted by the label and was split without shuffling'),
    ('wine', 'random', PASS, PASS, PASS, None),
    ('wine', 'row_order', BLOCK, PASS, PASS, 'the file looks sorted by the label and was split without shuffling'),
    ('breast_cancer', 'random', PASS, PASS, PASS, None),
    ('breast_cancer', 'hash', PASS, PASS, PASS, None),
    # digits' many all-zero edge pixels put over 100,000 train x eval pairs in one near-duplicate bucket while a column
    # band keyed 4 of its 64 pixels, and the search warned that it skipped them; bands of 8 split that bucket, and every
    # candidate pair is compared (test_near_duplicates' oversized-bucket test keeps the warning's path).
    ('digits', 'random', PASS, PASS, PASS, None),
    ('diabetes', 'random', PASS, PASS, PASS, None),
    ('boston', 'random', PASS, PASS, PASS, None),
    ('taxi', 'random', PASS, PASS, PASS, None),
    # TFX's own big_tipper label is tips > 0.2 * fare with both columns kept: the pair search finds the rule (#29).
    ('taxi_big_tipper', 'random', PASS, PASS, BLOCK, None),
    ('taxi_testdata', 'random', PASS, PASS, PASS, None),
    ('stocks', 'random', PASS, None, SKIPPED, None),
    ('stocks', 'row_order', BLOCK, None, SKIPPED, 'time-based split'),  # Prices of later years: real drift.
    ('penguin', 'hash', PASS, PASS, PASS, None),
]


def _rows(frame):
  """tf.Example-ready dicts; an empty cell is an absent feature, as CsvExampleGen writes it."""
  records = frame.to_dict('records')
  return [{k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))} for r in records]


def _split(frame, how):
  if how == 'random':
    in_train = np.random.default_rng(0).random(len(frame)) < 0.8
  elif how == 'hash':  # By the row's content, as ExampleGen's hash buckets.
    in_train = np.array([int(hashlib.md5(line.encode()).hexdigest(), 16) % 10 < 8
                         for line in frame.astype(str).agg(','.join, axis=1)])
  else:
    in_train = np.arange(len(frame)) < int(len(frame) * 0.8)
  return frame[in_train], frame[~in_train]


def _examples(table, how, root):
  if table == 'penguin':  # TFX's own testdata, split by CsvExampleGen's hash buckets.
    return {split: os.path.join(PENGUIN, f'Split-{split}', '*') for split in ('train', 'eval')}, 'species'
  load, label = TABLES[table]
  train, evaluation = _split(load(), how)
  return write_splits(str(root), {'train': _rows(train), 'eval': _rows(evaluation)}), label


@pytest.mark.slow
@pytest.mark.parametrize('table, how, skew, leakage, label_proxy, cause', SURVEY,
                         ids=[f'{row[0]}-{row[1]}' for row in SURVEY])
def test_survey_of_public_tables(tmp_path, table, how, skew, leakage, label_proxy, cause):
  examples, label = _examples(table, how, tmp_path / 'examples')
  checks = tuple(c for c, expected in (('skew', skew), ('leakage', leakage), ('label_proxy', label_proxy))
                 if expected is not None and not (c == 'label_proxy' and label is None))
  _, result = run.run_preflight(run.PreflightInputs(examples=examples), PreflightConfig(label_key=label, checks=checks),
                                lambda: beam.Pipeline(runner='DirectRunner'), str(tmp_path / 'report'))
  statuses = {name: result['checks'][name]['status'] for name in ('skew', 'leakage', 'label_proxy')}
  expected = {'skew': skew, 'leakage': leakage or SKIPPED, 'label_proxy': label_proxy}
  messages = [f['message'] for name in statuses for f in result['checks'][name]['findings']]
  assert statuses == expected, messages
  if cause:
    assert any(cause in m for m in messages), messages
  if cause and 'sorted by the label' in cause:  # Features that move with the label are not 'a normalization'.
    assert not any('normaliz' in m for m in messages), messages
