"""The leakage check on real TFRecords and real Beam: counts equal an independent pandas computation."""

import json
import os

import apache_beam as beam
import numpy as np
import pandas as pd
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from tests.helpers import write_splits, write_tfrecords
from tfx_preflight import file_writes
from tfx_preflight.checks.leakage import check as leakage
from tfx_preflight.checks.leakage import render as render_leakage
from tfx_preflight.config import LeakageConfig
from tfx_preflight.report.results import CheckResult

FEATURES = ('a', 'b', 'color')


def _rows(seed: int, n: int, pool: int):
  """Rows drawn from a small pool of contents (so duplicates happen), random labels and unique ids."""
  rng = np.random.default_rng(seed)
  contents = [(float(np.float32(rng.normal())), float(np.float32(rng.normal() * 100)), str(rng.choice(['x', 'y', 'z'])))
              for _ in range(pool)]
  picks = rng.integers(0, pool, n)
  return [{'a': contents[p][0], 'b': contents[p][1], 'color': contents[p][2], 'id': int(seed * 100000 + i),
           'label': int(rng.integers(0, 2))} for i, p in enumerate(picks)]


def _noised(rows, seed):
  rng = np.random.default_rng(seed)
  return [dict(r, a=float(np.float32(r['a'] * (1 + rng.uniform(-1e-5, 1e-5))))) for r in rows]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('leak'))
  train = _rows(1, 600, 300)
  shared = _rows(1, 600, 300)[:40]  # same contents as train rows, new ids and labels
  evals = _rows(2, 300, 250) + [dict(r, id=r['id'] + 1, label=1 - r['label']) for r in shared] + _noised(train[:30], 3)
  test = _rows(3, 200, 200)
  patterns = write_splits(root, {'train': train, 'eval': evals, 'test': test})
  return root, patterns, {'train': train, 'eval': evals, 'test': test}


def _key(row, digits=None):
  def value(v):
    if isinstance(v, float):
      v = float(np.float32(v)) + 0.0
      return float(f'{v:.{digits - 1}e}') if digits else v
    return v
  return tuple(value(row[f]) for f in FEATURES)


def pandas_counts(splits, digits=None):
  """duplicate_examples, unique_duplicates, label_conflicts per eval split and within-split duplicates, in pandas."""
  frames = []
  for split, rows in splits.items():
    frame = pd.DataFrame({'key': [_key(r, digits) for r in rows], 'label': [r['label'] for r in rows]})
    frame['split'] = split
    frames.append(frame)
  df = pd.concat(frames)
  train = df[df.split == 'train']
  train_labels = train.groupby('key')['label'].agg(lambda s: set(s))
  cross = {}
  for split in splits:
    if split == 'train':
      continue
    ev = df[df.split == split]
    joined = ev[ev.key.isin(train_labels.index)]
    conflicts = sum(1 for k, lab in zip(joined.key, joined.label) if train_labels[k] - {lab})
    cross[split] = (len(joined), joined.key.nunique(), conflicts)
  within = {s: int(len(g) - g.key.nunique()) for s, g in df.groupby('split')}
  return cross, within


def _run(patterns, config, tmp_path, args=(), evals=('eval', 'test')):
  return leakage.check_leakage(patterns, 'train', list(evals), config,
                               lambda: beam.Pipeline(options=PipelineOptions(list(args))),
                               os.path.join(tmp_path, 'out'), label_key='label').to_dict()


def test_exact_counts_equal_pandas(data, tmp_path):
  _, patterns, rows = data
  result = _run(patterns, LeakageConfig(exclude_features=('id',)), tmp_path)
  cross, within = pandas_counts(rows)
  got = {c['splits'][1]: (c['duplicate_examples'], c['unique_duplicates'], c['label_conflicts'])
         for c in result['cross_split']}
  assert got == cross
  assert cross['eval'][0] >= 40 and cross['eval'][2] > 0  # the data really has duplicates and conflicts
  assert result['within_split'] == within
  assert result['cross_split'][0]['fraction_of_b'] == pytest.approx(cross['eval'][0] / len(rows['eval']), abs=1e-6)
  # Every exact copy across splits has another label (a label conflict, not leakage), and train repeats itself: the
  # chance test compares the same-label copies with train's own same-label repeats, counted here in pandas.
  train = pd.DataFrame({'key': [_key(r) for r in rows['train']], 'label': [r['label'] for r in rows['train']]})
  groups = train.groupby('key')['label'].agg(['size', 'nunique'])
  repeats = int(groups[(groups['size'] > 1) & (groups['nunique'] == 1)]['size'].sum())
  chance = result['cross_split'][0]['chance']
  assert (chance['observed'], chance['reference_repeats'], chance['reference_examples']) == (
      cross['eval'][0] - cross['eval'][2], repeats, len(rows['train']))
  assert chance['expected'] == pytest.approx(len(rows['eval']) * repeats / len(rows['train']), abs=1e-5)
  assert not chance['significant'] and 'no eval example has a twin with the same label' in chance['reason']
  assert result['status'] == 'block'  # The 30 noised copies of train rows: near copies beyond chance.
  kinds = {f['kind'] for f in result['findings']}
  assert {'near_duplicates', 'label_conflict', 'within_split_duplicates'} <= kinds
  assert 'cross_split_duplicates' not in kinds
  sample = result['cross_split'][0]['samples'][0]
  assert set(sample['features']) == set(FEATURES) and sample['file'].endswith('.gz')
  listed = open(result['duplicates_file']).read().splitlines()
  assert listed[0] == leakage.DUPLICATES_HEADER
  total_dup_rows = sum(1 for line in listed[1:] if line.startswith('exact\t'))
  df = pd.DataFrame({'key': [_key(r) for s in rows.values() for r in s]})
  assert total_dup_rows == int((df.key.map(df.key.value_counts()) > 1).sum())


def test_ids_make_examples_unique_unless_excluded(data, tmp_path):
  _, patterns, _ = data
  result = _run(patterns, LeakageConfig(), tmp_path)
  assert result['cross_split'][0]['duplicate_examples'] == 0  # every row has its own id
  with pytest.raises(ValueError, match="'idd'"):
    _run(patterns, LeakageConfig(exclude_features=('idd',)), tmp_path)


def near_oracle(splits, tolerance):
  """Eval rows with a train row of the same color whose floats are all within tolerance (brute force, numpy)."""
  def arrays(rows):
    values = np.array([[np.float32(r[f]) for f in ('a', 'b')] for r in rows], dtype=np.float64)
    return values, np.array([r['color'] for r in rows])
  train, train_color = arrays(splits['train'])
  counts = {}
  for split in ('eval', 'test'):
    values, color = arrays(splits[split])
    diff = np.abs(values[:, None] - train[None]) / np.maximum(np.abs(values[:, None]), np.abs(train[None]))
    near = (np.where(np.isnan(diff), 0, diff) <= tolerance).all(axis=2) & (color[:, None] == train_color[None])
    counts[split] = int(near.any(axis=1).sum())
  return counts


def test_near_counts_equal_brute_force(data, tmp_path):
  _, patterns, rows = data
  result = _run(patterns, LeakageConfig(exclude_features=('id',), near_duplicates=True, near_column_tolerance=0.001),
                tmp_path)
  expected = near_oracle(rows, 0.001)
  exact, _ = pandas_counts(rows)
  got = {c['splits'][1]: c['duplicate_examples'] for c in result['near_duplicates']}
  assert got == expected
  near_eval = result['near_duplicates'][0]
  assert near_eval['near_only_examples'] == expected['eval'] - exact['eval'][0] > 0
  assert 'near_duplicates' in {f['kind'] for f in result['findings']}


def test_group_leakage_and_missing_group_key(tmp_path):
  train = [{'x': float(i), 'user': f'u{i % 10}', 'label': 0} for i in range(50)]
  evals = [{'x': 1000.0 + i, 'user': f'u{8 + i % 5}', 'label': 0} for i in range(20)]
  patterns = write_splits(str(tmp_path / 'd'), {'train': train, 'eval': evals})
  result = _run(patterns, LeakageConfig(group_key='user'), tmp_path, evals=('eval',))
  group = result['group_leakage'][0]
  assert group['shared_groups'] == 2  # u8, u9
  assert group['duplicate_examples'] == 8 and group['examples_in_a_involved'] == 10
  assert result['status'] == 'block' and 'group_leakage' in {f['kind'] for f in result['findings']}
  assert {s['group'][0] for s in group['samples']} <= {'u8', 'u9'}
  with pytest.raises(ValueError, match="'customer'"):
    _run(patterns, LeakageConfig(group_key='customer'), tmp_path, evals=('eval',))


def test_clean_splits_pass_and_missing_files_fail(tmp_path):
  patterns = write_splits(str(tmp_path / 'd'), {'train': [{'x': float(i), 'label': 0} for i in range(30)],
                                                'eval': [{'x': float(-i - 1), 'label': 0} for i in range(10)]})
  result = _run(patterns, LeakageConfig(), tmp_path, evals=('eval',))
  assert result['status'] == 'pass' and result['findings'] == []
  assert result['cross_split'][0]['duplicate_examples'] == 0
  with pytest.raises(ValueError, match='nothing'):
    _run(dict(patterns, eval=str(tmp_path / 'nothing' / '*')), LeakageConfig(), tmp_path, evals=('eval',))


def test_uncompressed_and_multiple_files(tmp_path):
  rows = [{'x': float(i % 7), 'label': 0} for i in range(40)]
  write_tfrecords(str(tmp_path / 'train' / 'part-0.tfrecord'), rows[:20], gzip=False)
  write_tfrecords(str(tmp_path / 'train' / 'part-1.tfrecord.gz'), rows[20:], gzip=True)
  write_tfrecords(str(tmp_path / 'eval' / 'e.tfrecord'), [{'x': 3.0, 'label': 1}, {'x': 99.0, 'label': 0}], gzip=False)
  result = _run({'train': str(tmp_path / 'train' / '*'), 'eval': str(tmp_path / 'eval' / '*')}, LeakageConfig(),
                tmp_path, evals=('eval',))
  pair = result['cross_split'][0]
  assert (pair['duplicate_examples'], pair['examples_in_a_involved'], pair['label_conflicts']) == (1, 6, 1)
  assert result['within_split']['train'] == 40 - 7
  listed = [line.split('\t') for line in open(result['duplicates_file']).read().splitlines()[1:]]
  assert ['eval', str(tmp_path / 'eval' / 'e.tfrecord'), '0'] in [line[2:5] for line in listed]
  assert ['train', str(tmp_path / 'train' / 'part-1.tfrecord.gz'), '3'] in [line[2:5] for line in listed]  # x=3 (i=24)


@pytest.mark.slow
def test_same_result_in_process_and_multi_processing(data, tmp_path):
  _, patterns, _ = data
  config = LeakageConfig(exclude_features=('id',), near_duplicates=True, num_shards=3)
  one = _run(patterns, config, tmp_path / 'one')
  two = _run(patterns, config, tmp_path / 'two', args=['--direct_running_mode=multi_processing',
                                                       '--direct_num_workers=2'])
  strip = lambda r: json.dumps({k: v for k, v in r.items() if k != 'duplicates_file'}, sort_keys=True)  # noqa: E731
  assert strip(one) == strip(two)
  # One part per join shard, joined in name order: the same bytes whatever ran the shards and in which order.
  assert open(one['duplicates_file']).read() == open(two['duplicates_file']).read()


def test_duplicate_list_never_holds_parts_an_earlier_run_left(data, tmp_path, monkeypatch):
  _, patterns, _ = data
  config = LeakageConfig(exclude_features=('id',), num_shards=3)
  first = open(_run(patterns, config, tmp_path / 'a')['duplicates_file']).read()
  stale = tmp_path / 'b' / 'out' / 'duplicates.parts'
  stale.mkdir(parents=True)
  (stale / 'exact-00007').write_text('exact\tstale\n')  # A shard no run of 3 shards writes: a crashed run's part.
  result = _run(patterns, config, tmp_path / 'b')
  assert open(result['duplicates_file']).read() == first
  original_write = file_writes.write_atomically

  def write_and_leave_a_temp(path, text):
    original_write(path, text)
    with open(os.path.join(os.path.dirname(path), f'.{os.path.basename(path)}.tmp-dead'), 'w') as f:
      f.write('exact\thalf')

  # A failed attempt's temp file beside every whole part (DirectRunner runs the steps in this process).
  monkeypatch.setattr(file_writes, 'write_atomically', write_and_leave_a_temp)
  result = _run(patterns, config, tmp_path / 'b')
  assert open(result['duplicates_file']).read() == first
  assert 'stale' not in first and 'half' not in first and not stale.exists()


def test_check_leakage_returns_a_typed_result_whose_dict_is_the_report_shape(tmp_path):
  rows = [{'x': float(i), 'label': i % 2} for i in range(4)]
  evaluation = [dict(rows[0], label=1), {'x': 9.0, 'label': 0}]  # A copy of train's first row with another label.
  patterns = write_splits(str(tmp_path / 'd'), {'train': rows, 'eval': evaluation})
  typed = leakage.check_leakage(patterns, 'train', ['eval'], LeakageConfig(),
                                lambda: beam.Pipeline(options=PipelineOptions([])), str(tmp_path / 'out'),
                                label_key='label')
  # The copy has another label: a label conflict, reported as a warning, never counted as leakage.
  assert isinstance(typed, CheckResult) and typed.status == 'warn'
  (conflict,) = typed.findings
  assert (conflict.check, conflict.code, conflict.severity, conflict.feature) == ('leakage', 'label_conflict', 'warn',
                                                                                  None)
  assert conflict.details == {'splits': ['train', 'eval'], 'label_conflicts': 1}
  assert typed.details.cross_split[0].label_conflicts == 1 and typed.details.within_split == {
      'train': 0, 'eval': 0}
  assert typed.details.cross_split[0].chance['observed'] == 0
  finding = typed.to_dict()['findings'][0]  # report.json: `kind`, and no `feature` key on a finding without one.
  assert finding['kind'] == 'label_conflict' and 'feature' not in finding and 'code' not in finding


def test_render_html_escapes_user_values(tmp_path):
  patterns = write_splits(str(tmp_path / 'd'), {'train': [{'<script>x': '<b>v</b>', 'label': 0}] * 2,
                                                'eval': [{'<script>x': '<b>v</b>', 'label': 1}]})
  result = _run(patterns, LeakageConfig(), tmp_path, evals=('eval',))
  page = render_leakage.render_html(result)
  assert '<script>' not in page and '&lt;script&gt;x' in page and '&lt;b&gt;v&lt;/b&gt;' in page
  assert 'label conflict' in page
  assert render_leakage.render_html({'status': 'skipped', 'findings': []}) == ''


def test_copies_with_other_labels_within_a_split_equal_pandas(data, tmp_path):
  _, patterns, rows = data
  result = _run(patterns, LeakageConfig(exclude_features=('id',)), tmp_path)
  expected = {}
  for split, split_rows in rows.items():
    frame = pd.DataFrame({'key': [_key(r) for r in split_rows], 'label': [r['label'] for r in split_rows]})
    labels = frame.groupby('key')['label'].agg(['size', 'nunique'])
    conflicting = labels[(labels['size'] > 1) & (labels['nunique'] > 1)]
    expected[split] = {'examples': int(conflicting['size'].sum()), 'contents': len(conflicting)}
  assert result['within_split_label_conflicts'] == expected
  assert expected['train']['examples'] > 0  # The data really has them.
  found = [f for f in result['findings'] if f['kind'] == 'within_split_label_conflict']
  assert sorted(f['splits'][0] for f in found) == sorted(s for s, e in expected.items() if e['examples'])
  assert all(f['severity'] == 'warn' for f in found)
