"""Fail closed: bad input never blesses, errors name the split, file or feature, and no half-written report survives.

Every bad input goes through the CLI (exit 2 with a one-line reason, or 1 with a blocking finding) and through the
TFX executor on real artifacts (the same message raised, or blessed=0). Cases rejected before any Beam pipeline runs
are cheap; the ones that need a real pipeline share data within a test to keep the suite fast.
"""

import gzip
import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from tests.helpers import (
    assert_usage_error,
    examples_artifact,
    run_cli,
    run_executor,
    tabular_rows,
    write_splits,
    write_tfrecords,
)
from tfx_preflight import cli, spec
from tfx_preflight.config import ConfigError, PreflightConfig
from tfx_preflight.inputs import data

EVAL_FILE = os.path.join('Split-eval', 'data_tfrecord-00000-of-00001.gz')


# ---------------------------------------------------------------------------------------------------------------
# Helpers: one run through the CLI, one through the executor.


def executor_on_splits(tmp_path, splits, **config):
  write_splits(str(tmp_path / 'examples'), splits)
  examples = examples_artifact(tmp_path / 'examples', list(splits))
  return run_executor(tmp_path, examples, PreflightConfig(**config).to_json())


def assert_nothing_written(tmp_path):
  """No report.json that could pass for a result, no blessing file at all."""
  assert not (tmp_path / 'report' / 'report.json').exists()
  assert not (tmp_path / 'blessing' / 'BLESSED').exists()


def strict_json(path):
  """report.json parsed refusing NaN/Infinity, which most JSON parsers (and jq) reject."""
  def refuse(name):
    raise AssertionError(f'{path} holds the non-JSON constant {name}')
  with open(path, encoding='utf-8') as f:
    return json.loads(f.read(), parse_constant=refuse)


def truncate(path, keep=0.5):
  content = open(path, 'rb').read()
  with open(path, 'wb') as f:
    f.write(content[:int(len(content) * keep)])


# ---------------------------------------------------------------------------------------------------------------
# Missing or empty splits: refused before any pipeline runs, naming the split.


def test_executor_without_an_eval_split_fails_naming_the_splits(tmp_path):
  rows = tabular_rows(20, seed=0)
  with pytest.raises(ConfigError, match="no split besides 'train'.*available splits: train"):
    executor_on_splits(tmp_path, {'train': rows})
  with pytest.raises(ConfigError, match="train_split 'training' is not a split.*train, eval"):
    executor_on_splits(tmp_path, {'train': rows, 'eval': rows}, train_split='training')
  assert_nothing_written(tmp_path)


@pytest.mark.parametrize('empty', ['train', 'eval'])
def test_empty_split_fails_in_executor_and_cli_naming_it(tmp_path, capsys, empty):
  rows = {'train': tabular_rows(30, seed=1), 'eval': tabular_rows(30, seed=2)}
  rows[empty] = []
  # Skew off: the emptiness must be caught by the gate itself, not by whichever check happens to run first.
  with pytest.raises(data.InputError, match=f"split '{empty}' has no examples"):
    executor_on_splits(tmp_path, rows, skew={'mode': 'off'})
  assert_nothing_written(tmp_path)

  root = tmp_path / 'examples'
  code, _, err = run_cli(capsys, 'check', '--train', root / 'Split-train' / '*', '--eval', root / 'Split-eval' / '*',
                         '--out', tmp_path / 'cli')
  assert_usage_error(code, err, f"split '{empty}' has no examples")
  assert not (tmp_path / 'cli' / 'report.json').exists()


def test_missing_eval_files_fail_naming_the_flag(tmp_path, capsys):
  train = write_tfrecords(str(tmp_path / 'train.gz'), tabular_rows(20, seed=0))
  code, _, err = run_cli(capsys, 'check', '--train', train, '--eval', tmp_path / 'nothing-*.gz')
  assert_usage_error(code, err, '--eval (eval): no file matches', 'nothing-*.gz')


# ---------------------------------------------------------------------------------------------------------------
# Damaged files: the error names the file, whether the damage is at the start (caught up front, no pipeline) or deep
# inside (caught when the pipeline fails, then located).


def test_file_that_is_not_a_tfrecord_is_named_before_any_pipeline(tmp_path, capsys):
  patterns = write_splits(str(tmp_path / 'examples'), {'train': tabular_rows(30, seed=0),
                                                       'eval': tabular_rows(30, seed=1)})
  bad = tmp_path / 'examples' / 'Split-eval' / 'data_tfrecord-00001-of-00002.gz'
  bad.write_bytes(gzip.compress(b'a,b,label\n1,2,0\n'))  # A gzipped CSV among the TFRecord shards.
  with pytest.raises(data.InputError, match=f"split 'eval': {bad} is not a readable tf.Example TFRecord"):
    run_executor(tmp_path, examples_artifact(tmp_path / 'examples', ['train', 'eval']), PreflightConfig().to_json())
  assert_nothing_written(tmp_path)

  code, _, err = run_cli(capsys, 'check', '--train', patterns['train'], '--eval', patterns['eval'],
                         '--format', 'tfrecord', '--out', tmp_path / 'cli')
  assert_usage_error(code, err, str(bad), "split 'eval'")


def test_truncated_gzip_names_the_file_and_leaves_no_report_even_over_an_old_one(tmp_path, capsys):
  rows = tabular_rows(400, seed=3)
  patterns = write_splits(str(tmp_path / 'examples'), {'train': rows[:300], 'eval': rows[300:]})
  argv = ['check', '--train', patterns['train'], '--eval', patterns['eval'], '--checks', 'skew',
          '--exclude-features', 'id', '--out', tmp_path / 'cli']
  code, out, _ = run_cli(capsys, *argv)
  assert code == cli.EXIT_OK, out
  assert (tmp_path / 'cli' / 'report.json').exists()

  bad = tmp_path / 'examples' / EVAL_FILE
  truncate(bad)  # The first records still read: only the pipeline finds the damage.
  code, _, err = run_cli(capsys, *argv)
  assert_usage_error(code, err, str(bad), "split 'eval'", 'not a readable tf.Example TFRecord')
  # The good report of the first run is gone: nobody can mistake it for this run's result.
  assert not (tmp_path / 'cli' / 'report.json').exists()

  with pytest.raises(data.InputError, match=f"split 'eval': {bad} is not a readable"):
    run_executor(tmp_path, examples_artifact(tmp_path / 'examples', ['train', 'eval']),
                 PreflightConfig(leakage={'mode': 'off'}).to_json())
  assert_nothing_written(tmp_path)


def test_corrupted_record_is_found_by_the_full_scan():
  """A flipped byte inside the gzip stream: the failure-path scan names the file, a clean file gives None."""
  import tempfile
  with tempfile.TemporaryDirectory() as tmp:
    good = write_tfrecords(os.path.join(tmp, 'good.gz'), tabular_rows(200, seed=4))
    bad = write_tfrecords(os.path.join(tmp, 'bad.gz'), tabular_rows(200, seed=5))
    content = bytearray(open(bad, 'rb').read())
    content[len(content) // 2] ^= 0xFF
    open(bad, 'wb').write(bytes(content))
    assert data.find_unreadable_file({'train': good}) is None
    error = data.find_unreadable_file({'train': good, 'eval': bad})
    assert error is not None and f"split 'eval': {bad}" in str(error)


# ---------------------------------------------------------------------------------------------------------------
# CSV (CLI only).


@pytest.mark.parametrize('header, named', [
    ('a,a,label', 'column names must be unique'),
    ('a,,label', 'column names must be unique and non-empty'),
    ('', 'empty file or empty header line'),
])
def test_bad_csv_header_exits_2_naming_the_file(tmp_path, capsys, header, named):
  (tmp_path / 'train.csv').write_text(f'{header}\n1,2,0\n')
  (tmp_path / 'eval.csv').write_text('a,b,label\n1,2,0\n')
  code, _, err = run_cli(capsys, 'check', '--train', tmp_path / 'train.csv', '--eval', tmp_path / 'eval.csv',
                         '--checks', 'skew', '--out', tmp_path / 'r')
  assert_usage_error(code, err, named, 'train.csv')


def test_ragged_csv_exits_2_naming_the_file(tmp_path, capsys):
  (tmp_path / 'train.csv').write_text('a,b,label\n1,2,0\n3,4,1\n5,6,0\n')
  (tmp_path / 'eval.csv').write_text('a,b,label\n1,2,0\n3,4\n')
  code, _, err = run_cli(capsys, 'check', '--train', tmp_path / 'train.csv', '--eval', tmp_path / 'eval.csv',
                         '--checks', 'skew', '--out', tmp_path / 'r')
  assert_usage_error(code, err, 'eval.csv')
  assert not (tmp_path / 'r' / 'report.json').exists()


@pytest.mark.parametrize('train, eval_, named', [
    # Latin-1 export: CsvExampleGen decodes UTF-8 and fails too; the file and line, not a codec traceback.
    (b'a,city,label\n1,Berlin,0\n', b'a,city,label\n1,Berlin,0\n2,M\xfcnchen,1\n',
     ['eval.csv line 3', 'not UTF-8 (byte 0xfc', 'iconv']),
    # One cell over Python csv's 131,072-character limit (CsvExampleGen's parser fails on it too).
    (b'a,text,label\n1,x,0\n', b'a,text,label\n1,' + b'x' * 200_000 + b',0\n',
     ['eval.csv line 2', 'field larger than field limit']),
    # A header and no rows: an empty split, named as such (not a temporary directory "no file matches").
    (b'a,b,label\n1,2,0\n', b'a,b,label\n', ["split 'eval' has no examples", 'eval.csv: a header but no data rows']),
    # Excel's "CSV UTF-8" in one split only: the first column would be named differently, invisibly.
    (b'\xef\xbb\xbfa,b,label\n1,2,0\n', b'a,b,label\n1,2,0\n',
     ['train.csv starts with a UTF-8 byte-order mark', 'eval.csv does not']),
    # A ';'-separated export reads as one column.
    (b'a;b;label\n1;2;0\n', b'a;b;label\n1;2;0\n', ['eval.csv', "looks ';'-separated"]),
    # A TFRecord read as CSV: not "re-encode it with iconv".
    (b'a,b,label\n1,2,0\n', b'\x1c\x00\x00\x00\x00\x00\x00\x00\xc3\x8e\n\x1a', ['eval.csv: binary data, not CSV text']),
], ids=['latin1', 'huge_cell', 'header_only', 'bom_in_one_split', 'semicolons', 'tfrecord'])
def test_csv_csv_example_gen_cannot_read_as_meant_exits_2_naming_file_and_line(tmp_path, capsys, train, eval_, named):
  (tmp_path / 'train.csv').write_bytes(train)
  (tmp_path / 'eval.csv').write_bytes(eval_)
  code, _, err = run_cli(capsys, 'check', '--train', tmp_path / 'train.csv', '--eval', tmp_path / 'eval.csv',
                         '--checks', 'skew', '--out', tmp_path / 'r')
  assert_usage_error(code, err, *named)
  assert 'while running' not in err and 'tfx-preflight-csv-' not in err  # No Beam step, no staging directory.
  assert not (tmp_path / 'r' / 'report.json').exists()


def test_whole_numbers_written_as_floats_in_one_csv_split_block_with_the_likely_cause(tmp_path, capsys):
  """pandas writes an int column with a missing value as floats ("7.0"): CsvExampleGen types it FLOAT in that split
  only, and a feature spec from train (INT) cannot parse it. A real block, but not 'different code'."""
  rows = tabular_rows(80, seed=4)
  frame = pd.DataFrame({'count': [i % 9 for i in range(80)], 'f0': [r['f0'] for r in rows],
                        'label': [r['label'] for r in rows]})
  frame[:60].to_csv(tmp_path / 'train.csv', index=False)
  evaluation = frame[60:].reset_index(drop=True)
  evaluation.loc[0, 'count'] = np.nan
  evaluation.to_csv(tmp_path / 'eval.csv', index=False)
  assert '\n7.0,' in (tmp_path / 'eval.csv').read_text()
  code, out, err = run_cli(capsys, 'check', '--train', tmp_path / 'train.csv', '--eval', tmp_path / 'eval.csv',
                           '--label-key', 'label', '--checks', 'skew', '--out', tmp_path / 'r')
  assert code == cli.EXIT_BLOCK, err
  finding = json.loads((tmp_path / 'r' / 'report.json').read_text())['checks']['skew']['findings'][0]
  assert (finding['feature'], finding['kind']) == ('count', 'type_mismatch')
  assert 'is INT in train but FLOAT in eval' in finding['message'] and '"3.0" in one split' in finding['message']


def test_near_duplicates_of_csv_input_are_reported_at_their_csv_lines(tmp_path, capsys):
  """near_duplicates on CSV: the samples carry CSV lines (relocated), and report.html rendering crashed on them
  (KeyError 'index'), so the run ended 'cannot check the input' with exit 2."""
  rows = tabular_rows(80, seed=12)
  lines = ['f0,f1,f2,color,label'] + [f'{r["f0"]:.6f},{r["f1"]:.6f},{r["f2"]:.6f},{r["color"]},{r["label"]}'
                                       for r in rows]
  noisy = [f'{r["f0"] * 1.004:.6f},{r["f1"] * 0.997:.6f},{r["f2"]:.6f},{r["color"]},{r["label"]}' for r in rows[:3]]
  (tmp_path / 'train.csv').write_text('\n'.join(lines[:61]) + '\n')
  (tmp_path / 'eval.csv').write_text('\n'.join([lines[0]] + lines[61:] + noisy) + '\n')  # Lines 22-24 copy 2-4.
  (tmp_path / 'config.json').write_text(json.dumps({'leakage': {'near_duplicates': True}}))
  code, out, err = run_cli(capsys, 'check', '--train', tmp_path / 'train.csv', '--eval', tmp_path / 'eval.csv',
                           '--label-key', 'label', '--checks', 'leakage', '--config', tmp_path / 'config.json',
                           '--out', tmp_path / 'r')
  assert code == cli.EXIT_OK and 'near_duplicates' in out, (out, err)
  near = json.loads((tmp_path / 'r' / 'report.json').read_text())['checks']['leakage']['near_duplicates'][0]
  assert sorted((s['line'], s['train_line']) for s in near['samples']) == [(22, 2), (23, 3), (24, 4)]
  assert 'eval.csv:22<br><small>train: ' in (tmp_path / 'r' / 'report.html').read_text()


def test_a_label_hidden_behind_a_byte_order_mark_is_shown_escaped_with_the_cause(tmp_path, capsys):
  """Every file saved with a BOM and the label first: the features listed 'label' (with an invisible U+FEFF) right
  after saying label 'label' was not among them."""
  for name in ('train', 'eval'):
    (tmp_path / f'{name}.csv').write_bytes(b'\xef\xbb\xbflabel,a\n0,1.5\n1,2.5\n0,3.5\n')
  code, _, err = run_cli(capsys, 'check', '--train', tmp_path / 'train.csv', '--eval', tmp_path / 'eval.csv',
                         '--label-key', 'label', '--checks', 'skew', '--out', tmp_path / 'r')
  assert_usage_error(code, err, "label_key 'label' is not a feature of split", "a, '\\ufefflabel' (a CSV saved with a "
                     'UTF-8 byte-order mark')


def test_a_csv_holding_only_the_label_is_a_usage_error_not_a_crash(tmp_path, capsys):
  (tmp_path / 'train.csv').write_text('label\n0\n1\n0\n1\n')
  (tmp_path / 'eval.csv').write_text('label\n1\n0\n')
  code, _, err = run_cli(capsys, 'check', '--train', tmp_path / 'train.csv', '--eval', tmp_path / 'eval.csv',
                         '--label-key', 'label', '--checks', 'leakage', '--out', tmp_path / 'r')
  assert_usage_error(code, err, "Leakage check: split 'train' has no feature left to hash after excluding label.")
  assert 'cannot check the input' not in err


def test_gzipped_csv_is_read_like_plain_csv_and_names_its_lines(tmp_path, capsys):
  rows = tabular_rows(60, seed=9)
  lines = ['f0,f1,color,label'] + [f'{r["f0"]:.6f},{r["f1"]:.6f},{r["color"]},{r["label"]}' for r in rows]
  train, eval_ = lines[:41], [lines[0]] + lines[41:] + [lines[5]]  # Eval's last row (line 22) is train's line 6.
  for name, part in (('train', train), ('eval', eval_)):
    with gzip.open(tmp_path / f'{name}.csv.gz', 'wt') as f:
      f.write('\n'.join(part) + '\n')
  code, _, err = run_cli(capsys, 'check', '--train', tmp_path / 'train.csv.gz', '--eval', tmp_path / 'eval.csv.gz',
                         '--label-key', 'label', '--checks', 'skew,leakage', '--out', tmp_path / 'r')
  # One copy among 20 eval rows is found and located, but is no proof of leakage beyond chance (duplicate_chance).
  assert code == cli.EXIT_OK, err
  leakage = json.loads((tmp_path / 'r' / 'report.json').read_text())['checks']['leakage']
  assert leakage['status'] == 'pass' and leakage['cross_split'][0]['duplicate_examples'] == 1
  assert 'chance' in leakage['cross_split'][0]['chance']['reason'], leakage['cross_split'][0]['chance']
  sample = leakage['cross_split'][0]['samples'][0]
  assert (os.path.basename(sample['file']), sample['line'], sample['train_line']) == ('eval.csv.gz', 22, 6), sample


# ---------------------------------------------------------------------------------------------------------------
# Keys and configuration.


@pytest.mark.parametrize('config, named', [
    ({'label_key': 'lable'}, "label_key 'lable' is not a feature of split 'train'"),
    ({'label_key': 'label', 'leakage': {'group_key': 'user'}}, "leakage.group_key 'user' is not a feature of split"),
])
def test_unknown_label_or_group_key_fails_naming_it(tmp_path, capsys, config, named):
  rows = tabular_rows(60, seed=6)
  with pytest.raises(ValueError, match=named):
    executor_on_splits(tmp_path, {'train': rows[:40], 'eval': rows[40:]}, **config)
  assert_nothing_written(tmp_path)

  root = tmp_path / 'examples'
  flags = ['--label-key', config['label_key']]
  if 'leakage' in config:
    flags += ['--group-key', config['leakage']['group_key']]
  code, _, err = run_cli(capsys, 'check', '--train', root / 'Split-train' / '*', '--eval', root / 'Split-eval' / '*',
                         *flags, '--out', tmp_path / 'cli')
  assert_usage_error(code, err, named)


def test_label_missing_from_one_eval_split_fails_naming_that_split(tmp_path):
  rows = tabular_rows(60, seed=7)
  evaluation = [{k: v for k, v in r.items() if k != 'label'} for r in rows[40:]]
  with pytest.raises(ValueError, match="label_key 'label' is not a feature of split 'eval'"):
    executor_on_splits(tmp_path, {'train': rows[:40], 'eval': evaluation}, label_key='label')
  assert_nothing_written(tmp_path)


@pytest.mark.parametrize('config, named', [
    ({'skew': {'numeric_threshold': -1}}, 'skew.numeric_threshold'),
    ({'leakage': {'block_fraction': -0.5}}, 'leakage.block_fraction'),
    ({'skew': {'mode': 'strict'}}, 'skew.mode'),
    ({'loss': {'mode': 'blocking'}}, 'loss.mode'),
    ({'leakage': {'nearduplicates': True}}, 'nearduplicates'),
    ({'lable_key': 'label'}, 'lable_key; known:'),
])
def test_invalid_configuration_fails_in_executor_and_cli_naming_the_setting(tmp_path, capsys, config, named):
  rows = tabular_rows(20, seed=8)
  patterns = write_splits(str(tmp_path / 'examples'), {'train': rows, 'eval': rows})
  with pytest.raises(ConfigError, match=named):
    run_executor(tmp_path, examples_artifact(tmp_path / 'examples', ['train', 'eval']), json.dumps(config))
  assert_nothing_written(tmp_path)

  (tmp_path / 'config.json').write_text(json.dumps(config))
  code, _, err = run_cli(capsys, 'check', '--train', patterns['train'], '--eval', patterns['eval'],
                         '--config', tmp_path / 'config.json', '--out', tmp_path / 'cli')
  assert_usage_error(code, err, named)


def test_unknown_eval_split_fails_in_executor(tmp_path):
  rows = tabular_rows(20, seed=9)
  with pytest.raises(ConfigError, match="eval split\\(s\\) valid not found.*available splits: train, eval"):
    executor_on_splits(tmp_path, {'train': rows, 'eval': rows}, eval_splits=['valid'])
  assert_nothing_written(tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# Messy but readable data: findings, never a crash and never a blessing.


def messy_splits(n_train=300, n_eval=120):
  """Features in one split only, a type change, NaN values, empty lists; alike in both splits where not said.

  (+-Inf in both splits is covered in test_fuzz.py: TFDV's divergence mis-measures it.)
  """
  rows = tabular_rows(n_train + n_eval, seed=10)
  train, evaluation = rows[:n_train], rows[n_train:]
  for i, r in enumerate(train + evaluation):
    r['f2'] = [math.nan if i % 4 == 0 else r['f2']]
    r['f3'] = [] if i % 3 == 0 else [r['f3']] * (1 + i % 2)  # Empty and longer lists.
  for i, r in enumerate(train):
    r['only_train'] = float(i)
  for i, r in enumerate(evaluation):
    r['only_eval'] = 'x'
    r['color'] = i % 3  # bytes in train, int64 in eval: written by different code.
  return {'train': train, 'eval': evaluation}


def findings_by_feature(result):
  return {(f['feature'], f['kind']): f for f in result['checks']['skew']['findings']}


def assert_messy_findings(result):
  found = findings_by_feature(result)
  assert found[('only_train', 'missing_in_split')]['severity'] == 'block'
  assert ('only_eval', 'missing_in_split') in found
  assert found[('color', 'type_mismatch')]['severity'] == 'block'
  assert 'color' in found[('color', 'type_mismatch')]['message']
  assert result['verdict'] == 'block'
  features = {f for f, _ in found}
  assert not features & {'f2', 'f3'}, found.keys()  # NaN and empty lists alike in both splits: no finding.


@pytest.mark.slow
def test_messy_data_blocks_with_findings_through_executor_and_cli(tmp_path, capsys):
  splits = messy_splits()
  report_artifact, blessing = executor_on_splits(tmp_path, splits, label_key='label',
                                                 leakage={'exclude_features': ['id']})
  result = strict_json(tmp_path / 'report' / 'report.json')
  assert_messy_findings(result)
  assert blessing.get_int_custom_property(spec.BLESSED_PROPERTY) == 0
  assert (tmp_path / 'blessing' / 'NOT_BLESSED').exists() and not (tmp_path / 'blessing' / 'BLESSED').exists()

  root = tmp_path / 'examples'
  code, out, _ = run_cli(capsys, 'check', '--train', root / 'Split-train' / '*', '--eval', root / 'Split-eval' / '*',
                         '--label-key', 'label', '--exclude-features', 'id', '--out', tmp_path / 'cli')
  assert code == cli.EXIT_BLOCK, out
  assert 'type_mismatch' in out and 'only_train' in out
  assert_messy_findings(strict_json(tmp_path / 'cli' / 'report.json'))


def test_feature_with_two_types_inside_one_split_fails_naming_it(tmp_path, capsys):
  """An empty list written as float_list beside bytes_list values (a generic converter): TFDV cannot decode the split."""
  rows = tabular_rows(80, seed=13)
  for i, r in enumerate(rows):
    r['tags'] = [] if i % 3 == 0 and i < 60 else ['a']  # Mixed in train only.
  patterns = write_splits(str(tmp_path / 'examples'), {'train': rows[:60], 'eval': rows[60:]})
  with pytest.raises(Exception, match='(?s)tags.*train|train.*tags'):
    run_executor(tmp_path, examples_artifact(tmp_path / 'examples', ['train', 'eval']),
                 PreflightConfig(leakage={'mode': 'off'}).to_json())
  assert_nothing_written(tmp_path)
  code, _, err = run_cli(capsys, 'check', '--train', patterns['train'], '--eval', patterns['eval'],
                         '--checks', 'skew', '--out', tmp_path / 'cli')
  assert_usage_error(code, err, 'tags', 'wrong type', 'train')


@pytest.mark.slow
def test_huge_values_and_wide_float_lists_run_and_keep_the_report_small(tmp_path, capsys):
  rng = np.random.default_rng(11)
  pixels = 224 * 224 * 3
  splits = {
      split: [{'image': rng.random(pixels, dtype=np.float32), 'label': i % 2,
               'blob': (b'<b>%d</b>' % i) * 600_000 if i < 2 else b'small'} for i in range(n)]
      for split, n in (('train', 6), ('eval', 3))}
  patterns = write_splits(str(tmp_path / 'examples'), splits)
  code, out, err = run_cli(capsys, 'check', '--train', patterns['train'], '--eval', patterns['eval'],
                           '--label-key', 'label', '--out', tmp_path / 'cli')
  assert code in (cli.EXIT_OK, cli.EXIT_BLOCK), err
  result = strict_json(tmp_path / 'cli' / 'report.json')
  # 6 and 3 examples: too few to compare distributions (skew.MIN_EXAMPLES_TO_COMPARE), said as not_checked.
  assert result['checks']['skew']['status'] in ('pass', 'warn', 'block', 'not_checked')
  # ~5 MB values must not be copied into the report (samples, top values, messages).
  assert os.path.getsize(tmp_path / 'cli' / 'report.json') < 1_000_000
  assert os.path.getsize(tmp_path / 'cli' / 'report.html') < 2_000_000


# ---------------------------------------------------------------------------------------------------------------
# Nothing half-written; same input, same bytes.


@pytest.mark.slow
def test_rerun_gives_the_same_report_bytes(tmp_path, capsys):
  rows = tabular_rows(600, seed=12)
  leaked = [dict(r, id=90_000 + i) for i, r in enumerate(rows[:30])]
  patterns = write_splits(str(tmp_path / 'examples'), {'train': rows[:450], 'eval': rows[450:] + leaked})
  outputs = []
  for name in ('first', 'second'):
    code, out, _ = run_cli(capsys, 'check', '--train', patterns['train'], '--eval', patterns['eval'],
                           '--label-key', 'label', '--exclude-features', 'id', '--out', tmp_path / name)
    assert code in (cli.EXIT_OK, cli.EXIT_BLOCK), out
    outputs.append((tmp_path / name / 'report.json').read_bytes())
  assert outputs[0] == outputs[1]
  text = outputs[0].decode()
  # Nothing run-specific leaks in: no output directory, no temp name.
  assert str(tmp_path / 'first') not in text and '.tmp-' not in text
  assert sorted(os.listdir(tmp_path / 'first')) == sorted(os.listdir(tmp_path / 'second'))
