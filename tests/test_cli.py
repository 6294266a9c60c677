"""tfx-preflight check: exit 0 pass/warn, 1 block, 2 bad usage or unreadable input, with a one-line reason."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.helpers import tabular_rows, without_progress, write_tfrecords
from tfx_preflight import cli


def _run(capsys, *argv):
  code = cli.main(list(argv))
  out, err = capsys.readouterr()
  return code, out, without_progress(err)


@pytest.mark.parametrize('argv, reason', [
    ([], 'required'),
    (['check', '--train', 'x'], '--eval'),
    (['check', '--train', '/nonexistent/*.gz', '--eval', '/nonexistent/e*.gz'], "--train: no file matches '/nonexistent/"),
    (['check', '--train', __file__, '--eval', __file__, '--checks', 'skew,bogus'], '--checks'),
    (['check', '--train', __file__, '--eval', __file__, '--checks', 'loss'], '--module-file'),
    (['check', '--train', __file__, '--eval', __file__, '--module-file', '/nope.py'], "no file '/nope.py'"),
    (['check', '--train', __file__, '--eval', __file__, '--config', '/nope.json'], '--config /nope.json'),
    (['check', '--train', __file__, '--eval', __file__, '--format', 'parquet'], 'invalid choice'),
])
def test_bad_usage_exits_2_with_one_line_reason(capsys, argv, reason):
  code, _, err = _run(capsys, *argv)
  assert code == cli.EXIT_USAGE
  assert reason in err
  assert len(err.strip().splitlines()) == 1


def test_bad_config_values_exit_2_naming_the_setting(capsys, tmp_path):
  config = tmp_path / 'config.json'
  config.write_text(json.dumps({'leakage': {'block_fraction': 3}}))
  code, _, err = _run(capsys, 'check', '--train', __file__, '--eval', __file__, '--config', str(config))
  assert code == cli.EXIT_USAGE and 'leakage.block_fraction' in err


@pytest.mark.parametrize('text, named', [
    (b'{"skwe": {"mode": "warn"}}', 'Unknown setting(s) skwe; known: checks, eval_splits'),  # Was a Python TypeError.
    (b'{"skew": 0.2}', 'skew must be an object of skew settings'),
    (b'{"skew": "warn"}', 'skew must be an object of skew settings'),
    (b'{"skew": {"numeric_threshold": 0.2}, "skew": {"mode": "warn"}}', "'skew' is given twice"),  # JSON keeps one.
    (b'{"exclude_features": "id"}', 'exclude_features must be a list'),  # Was merged as 'i', 'd'.
    (b'{"label_key": "\xe9t\xe9"}', 'codec'),  # Not UTF-8.
])
def test_config_file_mistakes_exit_2_naming_the_file_and_setting(capsys, tmp_path, text, named):
  config = tmp_path / 'config.json'
  config.write_bytes(text)
  code, _, err = _run(capsys, 'check', '--train', __file__, '--eval', __file__, '--exclude-features', 'x',
                      '--config', str(config), '--out', str(tmp_path / 'r'))
  assert code == cli.EXIT_USAGE and named in err and 'TypeError' not in err, err
  assert len(err.strip().splitlines()) == 1
  if 'exclude_features' not in named:
    assert str(config) in err


def test_eval_files_missing_exit_2_naming_the_flag(capsys, tmp_path):
  train = write_tfrecords(str(tmp_path / 'train.gz'), tabular_rows(20, seed=0))
  code, _, err = _run(capsys, 'check', '--train', train, '--eval', str(tmp_path / 'missing-*.gz'))
  assert code == cli.EXIT_USAGE and '--eval (eval): no file matches' in err


def test_a_wildcard_is_missing_only_when_no_file_trainer_reads_matches(tmp_path):
  """The fail-fast check matches a wildcard as TF's glob does: a hidden file counts (Trainer would read it); a
  directory that matches, or a missing directory, does not."""
  pattern = str(tmp_path / 'data' / '*.gz')
  assert cli._surely_missing(pattern)  # No directory.
  (tmp_path / 'data' / 'part.gz').mkdir(parents=True)
  assert cli._surely_missing(pattern)  # Only a directory matches.
  (tmp_path / 'data' / '.part-0.gz').write_bytes(b'')
  assert not cli._surely_missing(pattern)


def test_console_script_is_installed():
  exe = os.path.join(os.path.dirname(sys.executable), 'tfx-preflight')
  result = subprocess.run([exe, 'check', '--help'], capture_output=True, text=True, timeout=120)
  assert result.returncode == 0 and '--exclude-features' in result.stdout


@pytest.mark.slow
def test_clean_split_passes_and_copied_eval_blocks(capsys, tmp_path):
  rows = tabular_rows(2000, seed=1)
  train = write_tfrecords(str(tmp_path / 'train' / 'data.gz'), rows[:1600])
  clean_eval = write_tfrecords(str(tmp_path / 'eval' / 'data.gz'), rows[1600:])
  # 200 eval rows are train rows under new IDs: leakage that ExampleGen's hash split cannot prevent.
  leaky = [dict(r, id=10_000 + i) for i, r in enumerate(rows[:200])] + rows[1800:]
  leaky_eval = write_tfrecords(str(tmp_path / 'leaky' / 'data.gz'), leaky)
  common = ['--label-key', 'label', '--exclude-features', 'id', '--checks', 'skew,leakage']

  code, out, _ = _run(capsys, 'check', '--train', train, '--eval', clean_eval, '--out', str(tmp_path / 'r1'), *common)
  report = json.loads((tmp_path / 'r1' / 'report.json').read_text())
  assert code == cli.EXIT_OK, out
  assert report['checks']['leakage']['cross_split'][0]['duplicate_examples'] == 0
  assert report['checks']['loss']['status'] == 'skipped'

  code, out, _ = _run(capsys, 'check', '--train', train, '--eval', leaky_eval, '--out', str(tmp_path / 'r2'), *common)
  report = json.loads((tmp_path / 'r2' / 'report.json').read_text())
  assert code == cli.EXIT_BLOCK, out
  assert report['verdict'] == 'block'
  pair = report['checks']['leakage']['cross_split'][0]
  assert pair['splits'] == ['train', 'eval']
  assert pair['duplicate_examples'] == 200
  assert 'verdict: block' in out and 'report.html' in out


@pytest.mark.slow
def test_csv_input_is_converted_like_csv_example_gen(capsys, tmp_path):
  rows = pd.DataFrame(tabular_rows(600, seed=2))
  rows.iloc[:500].to_csv(tmp_path / 'train.csv', index=False)
  pd.concat([rows.iloc[500:], rows.iloc[:50].assign(id=rows.id.iloc[:50] + 9999)]).to_csv(
      tmp_path / 'eval.csv', index=False)
  code, out, _ = _run(capsys, 'check', '--train', str(tmp_path / 'train.csv'), '--eval', str(tmp_path / 'eval.csv'),
                      '--label-key', 'label', '--exclude-features', 'id', '--checks', 'leakage',
                      '--out', str(tmp_path / 'r'))
  report = json.loads((tmp_path / 'r' / 'report.json').read_text())
  assert report['checks']['leakage']['cross_split'][0]['duplicate_examples'] == 50
  assert report['checks']['skew']['status'] == 'skipped'
  assert code == cli.EXIT_BLOCK, out


def test_ragged_csv_exits_2_naming_the_file(capsys, tmp_path):
  (tmp_path / 'train.csv').write_text('a,b,label\n1,2,0\n3,4,1\n')
  (tmp_path / 'eval.csv').write_text('a,b,label\n1,2,0\n3,4\n')
  code, _, err = _run(capsys, 'check', '--train', str(tmp_path / 'train.csv'), '--eval', str(tmp_path / 'eval.csv'),
                      '--checks', 'leakage', '--out', str(tmp_path / 'r'))
  assert code == cli.EXIT_USAGE
  assert len(err.strip().splitlines()) == 1
