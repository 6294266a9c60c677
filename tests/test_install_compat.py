"""The installed `tfx-preflight` command on TFX-format data this test writes (ExampleGen's Split-<name>/ layout of
gzipped tf.Examples), whatever TFX it runs on.

CI runs it on the main stack (TFX 1.16) and in the TFX 1.15 lane (.ci/lane-tfx115), where the package is the built
wheel installed next to TFX 1.15, and nothing is read from a tfx wheel's testdata.
"""

import json
import os
import subprocess
import sys

from tests.helpers import tabular_rows, without_progress, write_splits

CLI = os.path.join(os.path.dirname(sys.executable), 'tfx-preflight')  # The console script pip installed.


def _check(tmp_path, splits):
  """Runs `tfx-preflight check` on `splits` written as ExampleGen writes them: (exit code, report, stderr)."""
  patterns = write_splits(str(tmp_path / 'examples'), splits)
  out = tmp_path / 'report'
  completed = subprocess.run([CLI, 'check', '--train', patterns['train'], '--eval', patterns['eval'],
                              '--label-key', 'label', '--exclude-features', 'id', '--out', str(out)],
                             capture_output=True, text=True, timeout=300)
  report = json.loads((out / 'report.json').read_text()) if (out / 'report.json').exists() else None
  return completed.returncode, report, without_progress(completed.stderr)


def _findings(report, check):
  return sorted({f['kind'] for f in report['checks'][check]['findings'] if f['severity'] == 'block'})


def test_cli_passes_clean_splits(tmp_path):
  code, report, err = _check(tmp_path, {'train': tabular_rows(400, seed=1), 'eval': tabular_rows(200, seed=2)})
  assert code == 0, err[-3000:]
  assert report['verdict'] == 'pass', {c: r.get('findings') for c, r in report['checks'].items()}
  assert {c: report['checks'][c]['status'] for c in ('skew', 'leakage', 'label_proxy')} == {
      'skew': 'pass', 'leakage': 'pass', 'label_proxy': 'pass'}
  assert (tmp_path / 'report' / 'report.html').exists()


def test_cli_blocks_skewed_leaky_splits_with_a_label_proxy(tmp_path):
  """Eval rescaled 10x, 40 train rows copied into eval, and a feature that spells the label out."""
  def with_proxy(rows):
    return [dict(row, reviewed='yes' if row['label'] else 'no') for row in rows]
  train = with_proxy(tabular_rows(400, seed=1))
  evaluation = with_proxy(tabular_rows(200, seed=2, scale=10.0, offset=1000)) + train[:40]
  code, report, err = _check(tmp_path, {'train': train, 'eval': evaluation})
  assert code == 1, err[-3000:]
  assert report['verdict'] == 'block'
  assert 'scale_mismatch' in _findings(report, 'skew')
  assert report['checks']['leakage']['cross_split'][0]['duplicate_examples'] == 40
  assert [f['feature'] for f in report['checks']['label_proxy']['findings'] if f['severity'] == 'block'] == [
      'reviewed']
