"""Untrusted data stays data: report.html escapes every name, value and message (checked in a real headless Chromium),
the package never evals, execs or unpickles, and paths and keys from the configuration are never run as code.

Chromium is the Debian package `chromium` (`apt-get install -y chromium`); the browser tests skip, saying why, only when
no chromium binary exists.
"""

import ast
import html.parser
import os
import re

import pytest

from tests.helpers import assert_nothing_injected, dump_dom, parse, tabular_rows, write_splits
from tfx_preflight import cli

PACKAGE = os.path.join(os.path.dirname(__file__), '..', 'components', 'tfx_preflight')
SCRIPT_NAME = '<script>document.title="pwned-by-name"</script>'
ALERT_NAME = '<script>alert(1)</script>'
IMG_VALUE = '<img src=x onerror=document.title="pwned-by-value">'
ATTR_NAME = '"><svg onload=document.title="pwned-by-attr">'


def without_csp(page):
  """The page with its Content-Security-Policy removed: escaping alone must keep scripts out."""
  stripped = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', '', page)
  assert stripped != page, 'report.html has no CSP meta tag'
  return stripped


def test_the_browser_check_detects_a_script_that_runs(tmp_path):
  """Control: an unescaped payload in a page without CSP does change the title, so the checks below can fail."""
  page = tmp_path / 'control.html'
  page.write_text(f'<!DOCTYPE html><html><head><title>control</title></head><body>{SCRIPT_NAME}</body></html>')
  assert parse(dump_dom(str(page))).title == 'pwned-by-name'


@pytest.fixture(scope='module')
def hostile_report(tmp_path_factory):
  """A real CLI run over data whose feature names and values are HTML/JS payloads, all of them in findings."""
  tmp = tmp_path_factory.mktemp('hostile')
  rows = tabular_rows(300, seed=21)
  train, evaluation = rows[:200], rows[200:]
  for i, r in enumerate(train):
    r[SCRIPT_NAME] = float(i % 7)  # Only in train: a missing_in_split finding, with pictures.
    r[ALERT_NAME] = ['a', 'b'][i % 2]
  for i, r in enumerate(evaluation):
    r['color'] = IMG_VALUE if i % 2 else r['color']  # A new category in eval: its value goes into the message.
    r[ATTR_NAME] = 1.0
    r[ALERT_NAME] = 'c'
  leaked = [dict(r, id=70_000 + i) for i, r in enumerate(train[:20])]  # Duplicates: samples show names and values.
  patterns = write_splits(str(tmp / 'examples'), {'train': train, 'eval': evaluation + leaked})
  out = tmp / 'report'
  code = cli.main(['check', '--train', patterns['train'], '--eval', patterns['eval'], '--label-key', 'label',
                   '--exclude-features', 'id', '--out', str(out)])
  assert code == cli.EXIT_BLOCK
  return out


def test_hostile_names_and_values_are_in_the_report_as_text(hostile_report):
  page = (hostile_report / 'report.html').read_text(encoding='utf-8')
  for payload in (SCRIPT_NAME, ALERT_NAME, IMG_VALUE, ATTR_NAME):
    assert payload not in page
  assert '&lt;script&gt;document.title=&quot;pwned-by-name&quot;&lt;/script&gt;' in page
  assert 'onerror=document.title=&quot;pwned-by-value&quot;' in page


@pytest.mark.parametrize('strip_csp', [False, True], ids=['as-written', 'csp-removed'])
def test_no_script_runs_in_a_real_browser(hostile_report, tmp_path, strip_csp):
  page = (hostile_report / 'report.html').read_text(encoding='utf-8')
  path = tmp_path / 'report.html'
  path.write_text(without_csp(page) if strip_csp else page, encoding='utf-8')
  dom = dump_dom(str(path))
  assert_nothing_injected(dom, 'tfx-preflight: block')
  # The payloads are there, as text a reader can see.
  text = html.unescape(re.sub(r'<[^>]+>', '', dom))
  assert SCRIPT_NAME in text and IMG_VALUE in text


# ---------------------------------------------------------------------------------------------------------------
# No code execution on user data anywhere in the package.

# Calls that run code or deserialize objects. `loss_probe.py` is the one place that imports the user's Trainer
# module (code by definition, run in a separate process under a time and memory budget): importlib is allowed there.
_FORBIDDEN_CALLS = {'eval', 'exec', 'compile', '__import__', 'execfile', 'input'}
_FORBIDDEN_ATTRIBUTE_CALLS = {
    ('pickle', 'load'), ('pickle', 'loads'), ('pickle', 'Unpickler'), ('cPickle', 'load'), ('cPickle', 'loads'),
    ('dill', 'load'), ('dill', 'loads'), ('cloudpickle', 'load'), ('cloudpickle', 'loads'), ('marshal', 'load'),
    ('marshal', 'loads'), ('shelve', 'open'), ('yaml', 'load'), ('yaml', 'unsafe_load'), ('yaml', 'full_load'),
    ('yaml', 'load_all'), ('os', 'system'), ('os', 'popen'), ('os', 'execv'), ('os', 'execvp'), ('os', 'execl'),
    ('pd', 'read_pickle'), ('pandas', 'read_pickle'), ('runpy', 'run_path'), ('runpy', 'run_module'),
    ('code', 'interact'), ('pty', 'spawn'),
}
_FORBIDDEN_IMPORTS = {'pickle', 'cPickle', 'dill', 'cloudpickle', 'marshal', 'shelve', 'yaml', 'runpy', 'pty', 'code'}
_USER_CODE_MODULES = {os.path.join('checks', 'loss', 'probe.py')}
_USER_CODE_CALLS = {'import_module', 'spec_from_file_location', 'spec_from_loader', 'module_from_spec', 'exec_module',
                    'SourceFileLoader', 'load_module'}


def _dotted(node):
  parts = []
  while isinstance(node, ast.Attribute):
    parts.append(node.attr)
    node = node.value
  if isinstance(node, ast.Name):
    parts.append(node.id)
  return tuple(reversed(parts))


def unsafe_uses(source, filename='<string>'):
  """(line, what) for every construct that could run or unpickle data; allows user-code imports in the loss probe."""
  problems = []
  user_code_allowed = filename in _USER_CODE_MODULES
  for node in ast.walk(ast.parse(source, filename)):
    if isinstance(node, ast.Import):
      problems += [(node.lineno, f'import {a.name}') for a in node.names if a.name.split('.')[0] in _FORBIDDEN_IMPORTS]
    elif isinstance(node, ast.ImportFrom) and (node.module or '').split('.')[0] in _FORBIDDEN_IMPORTS:
      problems.append((node.lineno, f'from {node.module} import ...'))
    elif isinstance(node, ast.Call):
      name = _dotted(node.func)
      if len(name) == 1 and name[0] in _FORBIDDEN_CALLS:
        problems.append((node.lineno, f'{name[0]}()'))
      if name[-2:] in _FORBIDDEN_ATTRIBUTE_CALLS:
        problems.append((node.lineno, '.'.join(name) + '()'))
      if name and name[-1] in _USER_CODE_CALLS and not user_code_allowed:
        problems.append((node.lineno, '.'.join(name) + '() outside the loss probe'))
      for keyword in node.keywords:
        if keyword.arg == 'shell' and not (isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
          problems.append((node.lineno, 'shell=True'))
        if keyword.arg == 'allow_pickle' and not (isinstance(keyword.value, ast.Constant) and
                                                  keyword.value.value is False):
          problems.append((node.lineno, 'allow_pickle=True'))
  return problems


@pytest.mark.parametrize('snippet', [
    'eval(name)', 'exec(code)', 'pickle.loads(blob)', 'import pickle', 'from yaml import load', 'yaml.load(f)',
    'subprocess.run(cmd, shell=True)', 'os.system(cmd)', 'np.load(path, allow_pickle=True)',
    'importlib.import_module(config.model_fn)', 'loader.exec_module(module)', '__import__(name)',
])
def test_the_scanner_flags_unsafe_code(snippet):
  assert unsafe_uses(snippet), snippet


def test_package_never_evals_execs_or_unpickles():
  files = sorted(os.path.relpath(os.path.join(folder, f), PACKAGE)
                 for folder, _, names in os.walk(PACKAGE) for f in names if f.endswith('.py'))
  assert {'run.py', os.path.join('checks', 'loss', 'probe.py'), os.path.join('inputs', 'read_pass.py')} <= set(files)
  problems = []
  for name in files:
    with open(os.path.join(PACKAGE, name), encoding='utf-8') as f:
      problems += [f'{name}:{line}: {what}' for line, what in unsafe_uses(f.read(), name)]
  assert not problems, '\n'.join(problems)


def test_paths_and_keys_from_the_configuration_are_not_run(tmp_path, capsys, monkeypatch):
  """Shell and Python syntax in --out, --label-key, --exclude-features and --config are plain strings."""
  monkeypatch.chdir(tmp_path)  # Where an injected `touch pwnedN` would land.
  rows = tabular_rows(120, seed=22)
  patterns = write_splits(str(tmp_path / 'examples'), {'train': rows[:80], 'eval': rows[80:]})
  markers = [tmp_path / f'pwned{i}' for i in range(4)]
  out = tmp_path / 'out $(touch pwned0) `touch pwned1`; touch pwned2'
  code = cli.main(['check', '--train', patterns['train'], '--eval', patterns['eval'], '--checks', 'skew',
                   '--exclude-features', 'id', '--out', str(out)])
  assert code in (cli.EXIT_OK, cli.EXIT_BLOCK)
  assert (out / 'report.json').exists()  # The directory has exactly the name given.
  capsys.readouterr()
  code = cli.main(['check', '--train', patterns['train'], '--eval', patterns['eval'], '--checks', 'skew',
                   '--exclude-features', 'id,$(touch pwned3)', '--out', str(tmp_path / 'out3')])
  _, err = capsys.readouterr()
  assert code == cli.EXIT_USAGE and "'$(touch pwned3)'" in err  # Not a feature: named, as a plain string.

  injected = "__import__('os').system('touch pwned0')"
  config = tmp_path / '$(touch pwned1);touch pwned2.json'
  config.write_text('{"skew": {"mode": "warn"}}')
  code = cli.main(['check', '--train', patterns['train'], '--eval', patterns['eval'], '--checks', 'skew',
                   '--label-key', injected, '--config', str(config), '--out', str(tmp_path / 'out2')])
  _, err = capsys.readouterr()
  assert code == cli.EXIT_USAGE and 'label_key' in err and "__import__('os')" in err
  assert not [m for m in markers if m.exists()]
