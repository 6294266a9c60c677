"""Say what is wrong (issue 30.5): tiny splits, a type clash between files, Beam option errors and names that differ
only in Unicode normalization each get a sentence naming the cause, not a confident finding or a library's error.

CLI runs in-process on tiny inputs.
"""

import json
import os
import unicodedata

import pytest

from tests.helpers import assert_usage_error, run_cli, tabular_rows, write_splits, write_tfrecords


@pytest.fixture(scope='module')
def base(tmp_path_factory):
  rows = tabular_rows(120, seed=6)
  return write_splits(str(tmp_path_factory.mktemp('base')), {'train': rows[:80], 'eval': rows[80:]})


def test_one_example_per_split_is_too_few_to_compare_not_four_distribution_shifts(tmp_path, capsys):
  rows = tabular_rows(2, seed=1)
  splits = write_splits(str(tmp_path / 'tiny'), {'train': rows[:1], 'eval': rows[1:]})
  code, text, err = run_cli(capsys, 'check', '--train', splits['train'], '--eval', splits['eval'], '--label-key',
                            'label', '--checks', 'skew', '--out', tmp_path / 'out')
  skew = json.loads((tmp_path / 'out' / 'report.json').read_text())['checks']['skew']
  assert code == 2 and skew['status'] == 'not_checked', text + err
  assert skew['findings'] == [] and skew['too_few_examples']['splits'] == {'eval': {'train': 1, 'eval': 1}}
  assert 'too few examples to compare (train 1 example vs eval 1 example)' in skew['reason']
  assert 'too few examples to compare' in err


def test_a_feature_typed_differently_in_two_files_of_a_split_is_named_with_both_files(tmp_path, capsys, base):
  rows = tabular_rows(40, seed=2)
  first = write_tfrecords(str(tmp_path / 'eval' / 'part-0.gz'), [{**r, 'code': 'a7'} for r in rows[:20]])
  second = write_tfrecords(str(tmp_path / 'eval' / 'part-1.gz'), [{**r, 'code': 7} for r in rows[20:]])
  code, _, err = run_cli(capsys, 'check', '--train', base['train'], '--eval', str(tmp_path / 'eval' / '*'),
                         '--label-key', 'label', '--checks', 'skew', '--out', tmp_path / 'out')
  assert_usage_error(code, err, "split 'eval'", "feature 'code'", 'bytes_list', first, 'int64_list', second)
  assert 'FAILED_PRECONDITION' not in err


@pytest.mark.parametrize('beam_args, named', [
    (['--runner=NopeRunner'], 'Unexpected pipeline runner: NopeRunner'),
    (['--direct_running_mode=bad'], "argument --direct_running_mode: invalid choice: 'bad'"),
    (['--direct_num_workers=2', '--no_such_option=1'], 'Beam knows no option --no_such_option'),
])
def test_beam_option_errors_are_reported_as_such(tmp_path, capsys, base, beam_args, named):
  code, _, err = run_cli(capsys, 'check', '--train', base['train'], '--eval', base['eval'], '--label-key', 'label',
                         '--out', tmp_path / 'out', '--', *beam_args)
  assert_usage_error(code, err, 'Beam pipeline options (after "--"', named)
  assert 'cannot check the input' not in err and 'usage:' not in err


def test_names_differing_only_in_unicode_normalization_are_flagged_as_such(tmp_path, capsys):
  composed, decomposed = unicodedata.normalize('NFC', 'café'), unicodedata.normalize('NFD', 'café')
  rows = tabular_rows(60, seed=3)
  splits = write_splits(str(tmp_path / 'names'), {'train': [{**r, composed: 1.0} for r in rows[:40]],
                                                   'eval': [{**r, decomposed: 1.0} for r in rows[40:]]})
  code, _, err = run_cli(capsys, 'check', '--train', splits['train'], '--eval', splits['eval'], '--label-key',
                         'label', '--out', tmp_path / 'out')
  assert_usage_error(code, err, 'differ only in Unicode normalization', "split 'train' (NFC: 'caf\\xe9')",
                     "split 'eval' (NFD: 'cafe\\u0301')")
  assert not os.path.exists(tmp_path / 'out' / 'report.json')
