"""`make demo` as a user runs it: the five scenarios, two at a time, each a real LocalDagRunner pipeline, and the
table that says what the validation numbers claim without the gate and what the gate decides."""

import os
import subprocess
import sys

import pytest

from pipelines import demo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPECTED = {  # scenario -> (gate verdict, Trainer ran, finding)
    'clean': ('pass (blessed=1)', 'yes', 'none'),
    'normalize_train_only': ('block (blessed=0)', 'no', 'skew/scale_mismatch (pixels)'),
    'leaky_split': ('block (blessed=0)', 'no', 'leakage/near_duplicates'),
    'zero_loss': ('block (blessed=0)', 'no', 'loss/constant_loss'),
    'label_proxy': ('block (blessed=0)', 'no', 'label_proxy/label_proxy (review_queue)'),
}


def table_rows(output: str) -> dict:
  """scenario -> cells of the printed table."""
  rows = {}
  for line in output.splitlines():
    cells = [c.strip() for c in line.split('|')]
    if cells and cells[0] in EXPECTED:
      rows[cells[0]] = cells
  return rows


@pytest.mark.slow
def test_make_demo_runs_every_scenario_and_prints_the_table(tmp_path):
  root = tmp_path / 'runs'
  stale = root / 'pipelines' / 'stale.txt'
  stale.parent.mkdir(parents=True)
  stale.write_text('left by an earlier run')
  (root / demo.MARKER).write_text('')
  command = [sys.executable, '-m', 'pipelines.demo', '--root', str(root), '--train-steps', '20', '--eval-steps', '4',
             '--jobs', '2']
  run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1200)
  assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

  rows = table_rows(run.stdout)
  assert sorted(rows) == sorted(EXPECTED), run.stdout
  for scenario, (verdict, trained, finding) in EXPECTED.items():
    cells = rows[scenario]
    assert cells[5:7] == [verdict, trained], cells
    assert cells[7].startswith(finding), cells
  # The broken loss claims a perfect validation loss; the same model is at chance when scored honestly.
  assert float(rows['zero_loss'][1]) == 0.0 and float(rows['zero_loss'][4]) < 0.3
  # Normalizing one split makes validation loss wrong, and large rather than zero.
  assert float(rows['normalize_train_only'][1]) > 3 * float(rows['normalize_train_only'][3])
  # A label proxy makes validation look better than the same model on images nobody has reviewed yet.
  assert float(rows['label_proxy'][2]) > float(rows['label_proxy'][4])

  # Everything under the one root, a rerun starts clean, and each scenario's full output is kept.
  assert not stale.exists()
  assert sorted(os.listdir(root / 'logs')) == sorted(f'{s}.log' for s in EXPECTED)
  for scenario in EXPECTED:
    assert (root / 'pipelines' / scenario).is_dir() and (root / 'metadata' / f'{scenario}.sqlite').is_file()
  assert f'Everything is under {root}' in run.stdout


def test_demo_refuses_to_wipe_a_directory_it_did_not_create(tmp_path):
  (tmp_path / 'precious.txt').write_text('not the demo\'s')
  with pytest.raises(SystemExit, match='Refusing to wipe'):
    demo.prepare_root(str(tmp_path))
  assert (tmp_path / 'precious.txt').exists()


def test_demo_rejects_zero_jobs(capsys):
  with pytest.raises(SystemExit):
    demo.main(['--jobs', '0'])
  assert '--jobs must be at least 1' in capsys.readouterr().err
