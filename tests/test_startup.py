"""Start-up: `tfx-preflight --help` and usage errors answer without importing TensorFlow, TFX or Beam (about 5 s of
imports), and checks that need no TensorFlow (leakage, label proxy on local files) run without it (~2-3 s), checked by
which modules a fresh interpreter has loaded, not by a wall-clock limit."""

import json
import os
import subprocess
import sys

import pytest

HEAVY = ('tensorflow', 'apache_beam', 'tfx', 'tfx_bsl', 'tensorflow_data_validation')
ROOT = os.path.join(os.path.dirname(__file__), '..')

# Runs the CLI in-process in a fresh interpreter, then prints the exit code and the heavy modules it loaded.
_PROBE = """
import json, sys
{preload}
from tfx_preflight import cli
code = cli.main(sys.argv[1:])
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps({{'code': code, 'heavy': heavy}}))
"""


def run_cli_counting_imports(argv, preload=''):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, 'components'), ROOT]))
  result = subprocess.run([sys.executable, '-c', _PROBE.format(preload=preload, heavy=HEAVY), *argv],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
  return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_the_probe_sees_a_heavy_import():
  """Control: the probe reports TensorFlow when something did import it."""
  outcome, _ = run_cli_counting_imports(['--help'], preload='import tfx.dsl.io.fileio, apache_beam')
  assert 'tensorflow' in outcome['heavy'] and 'apache_beam' in outcome['heavy']


@pytest.mark.parametrize('argv, code, reason', [
    (['--help'], 0, ''),
    (['check', '--help'], 0, ''),
    (['check', '--train', 'setup.py', '--eval', 'setup.py', '--bogus-flag'], 2, 'unrecognized arguments'),
    (['check', '--train', 'setup.py'], 2, '--eval'),
    (['check', '--train', 'setup.py', '--eval', 'setup.py', '--checks', 'skew,bogus'], 2, '--checks'),
    (['check', '--train', '/nonexistent/*.gz', '--eval', 'setup.py'], 2, "--train: no file matches '/nonexistent/"),
    (['check', '--train', 'setup.py', '--eval', 'nope-*.gz'], 2, '--eval (eval): no file matches'),
    (['check', '--train', 'setup.py', '--eval', 'setup.py', '--module-file', '/nope.py'], 2, "no file '/nope.py'"),
    (['check', '--train', 'setup.py', '--eval', 'setup.py', '--schema', '/nope.pbtxt'], 2, "--schema: no file"),
    (['check', '--train', 'setup.py', '--eval', 'setup.py', '--config', '/nope.json'], 2, '--config /nope.json'),
    (['check', '--train', 'setup.py', '--eval', 'setup.py', '--config', '{bad_config}'], 2, 'leakage.block_fraction'),
], ids=['help', 'check-help', 'bad-flag', 'missing-eval', 'bad-checks', 'no-train-files', 'no-eval-files',
        'no-module-file', 'no-schema', 'no-config', 'bad-config-value'])
def test_help_and_usage_errors_import_no_tensorflow_tfx_or_beam(tmp_path, argv, code, reason):
  bad_config = tmp_path / 'config.json'
  bad_config.write_text(json.dumps({'leakage': {'block_fraction': 3}}))
  outcome, stderr = run_cli_counting_imports([a.format(bad_config=bad_config) for a in argv])
  assert outcome == {'code': code, 'heavy': []}, stderr
  assert reason in stderr


def test_a_usage_error_into_a_report_directory_holding_only_its_lock_imports_nothing_heavy(tmp_path):
  """Every run leaves `.lock` in its --out; with nothing else there, there is nothing to invalidate."""
  out = tmp_path / 'report'
  out.mkdir()
  (out / '.lock').write_text('')
  outcome, stderr = run_cli_counting_imports(['check', '--train', 'setup.py', '--out', str(out)])
  assert outcome == {'code': 2, 'heavy': []}, stderr
  assert '--eval' in stderr
  (out / 'report.json').write_text('{"verdict": "pass", "checks": {}}')  # Control: an earlier report is invalidated, which takes report_dir (Beam).
  outcome, _ = run_cli_counting_imports(['check', '--train', 'setup.py', '--out', str(out)])
  assert outcome['code'] == 2 and 'apache_beam' in outcome['heavy'] and not (out / 'report.json').exists()


def test_leakage_and_label_proxy_checks_of_local_files_run_without_tensorflow(tmp_path):
  """TFX's fileio imports TensorFlow; local files are read and the report written without it. The checks ran (Beam
  and tfx-bsl loaded, a report with both verdicts), on TFX's own ExampleGen output."""
  import tfx
  data = os.path.join(os.path.dirname(tfx.__file__), 'components', 'testdata', 'csv_example_gen')
  out = tmp_path / 'report'
  outcome, stderr = run_cli_counting_imports(
      ['check', '--train', os.path.join(data, 'Split-train'), '--eval', os.path.join(data, 'Split-eval'),
       '--label-key', 'tips', '--checks', 'leakage,label_proxy', '--out', str(out)])
  assert outcome['code'] in (0, 1), stderr
  assert 'tensorflow' not in outcome['heavy'] and {'apache_beam', 'tfx_bsl'} <= set(outcome['heavy']), outcome
  checks = json.loads((out / 'report.json').read_text())['checks']
  assert checks['leakage']['status'] == 'pass' and checks['label_proxy']['status'] in ('pass', 'block'), checks
