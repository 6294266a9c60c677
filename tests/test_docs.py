"""The documentation a user reads is true to the code: links resolve, and the references list exactly what is accepted.

README.md is the landing page and docs/ holds the depth; a moved section or a renamed flag must not leave a dead link or
a reference that lists a setting the code no longer takes (or misses one it does).
"""

import argparse
import dataclasses
import inspect
import os
import re
from typing import Dict, Iterator, List, Set

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from tfx_preflight import cli, config, constants
from tfx_preflight.component import Preflight

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, 'README.md')


def _doc_files() -> List[str]:
  docs = os.path.join(ROOT, 'docs')
  pages = [os.path.join(docs, name) for name in sorted(os.listdir(docs)) if name.endswith('.md')]
  return [README, os.path.join(ROOT, 'schemas', 'README.md'), *pages]


def _read(path: str) -> str:
  with open(path, encoding='utf-8') as f:
    return f.read()


def _without_code(text: str) -> str:
  """Markdown outside fenced code blocks (links and headings in code are not links and headings)."""
  return re.sub(r'^```.*?^```', '', text, flags=re.S | re.M)


def _slug(heading: str) -> str:
  """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
  text = re.sub(r'[`*_]', '', heading.strip().lower())
  text = re.sub(r'[^\w\- ]', '', text)
  return text.replace(' ', '-')


def _anchors(path: str) -> Set[str]:
  slugs: Dict[str, int] = {}
  anchors = set()
  for match in re.finditer(r'^#{1,6}\s+(.*)$', _without_code(_read(path)), flags=re.M):
    slug = _slug(match.group(1))
    count = slugs.get(slug, 0)
    anchors.add(slug if count == 0 else f'{slug}-{count}')
    slugs[slug] = count + 1
  return anchors


def _links(path: str) -> Iterator[str]:
  for match in re.finditer(r'\]\(([^)\s]+)\)', _without_code(_read(path))):
    target = match.group(1)
    if not re.match(r'^[a-z]+:', target):
      yield target


@pytest.mark.parametrize('path', _doc_files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_every_relative_link_and_anchor_resolves(path):
  broken = []
  for target in _links(path):
    file_part, _, anchor = target.partition('#')
    resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
    if not os.path.exists(resolved):
      broken.append(f'{target}: no such file')
    elif anchor and (not resolved.endswith('.md') or anchor not in _anchors(resolved)):
      broken.append(f'{target}: no heading with anchor #{anchor}')
  assert not broken, f'{os.path.relpath(path, ROOT)}: ' + '; '.join(broken)


def test_readme_is_a_landing_page():
  lines = _read(README).count('\n')
  assert lines <= 260, f'README.md has {lines} lines: move depth to docs/'


def test_every_docs_page_says_what_a_reader_gets_from_it():
  for path in _doc_files()[2:]:
    if os.path.basename(path) == 'architecture.md':
      continue
    first_paragraph = _read(path).split('\n\n')[1]
    assert first_paragraph.startswith('What you get from this page'), path


def _cli_flags() -> Set[str]:
  parser = cli.build_parser()
  subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
  flags = set()
  for sub in subparsers.choices.values():
    flags.update(s for s in sub._option_string_actions if s.startswith('--') and s != '--help')
  return flags


def _beam_flags() -> Set[str]:
  """Every option Beam's PipelineOptions knows: the README also shows Beam arguments after `--`."""
  parser = argparse.ArgumentParser()

  def subclasses(cls):
    for sub in cls.__subclasses__():
      yield sub
      yield from subclasses(sub)

  for options_class in subclasses(PipelineOptions):
    try:
      options_class._add_argparse_args(parser)  # pylint: disable=protected-access
    except argparse.ArgumentError:
      pass  # an option two classes both declare
  return {s for s in parser._option_string_actions if s.startswith('--')}


def _readme_flags() -> Set[str]:
  return set(re.findall(r'(?<![\w-])(--[a-z][a-z0-9_-]*[a-z0-9])', _read(README)))


def test_every_cli_flag_is_in_the_readme_and_the_readme_names_no_other():
  ours = _cli_flags()
  mentioned = _readme_flags()
  assert not ours - mentioned, f'CLI flags missing from README.md: {sorted(ours - mentioned)}'
  demo_flags = {'--jobs', '--scenario', '--root', '--train-steps', '--eval-steps'}  # `python -m pipelines.demo`
  unknown = mentioned - ours - _beam_flags() - demo_flags
  assert not unknown, f'README.md names flags neither the CLI nor Beam accepts: {sorted(unknown)}'


def _reference_rows() -> Dict[str, str]:
  """First cell (the argument, unquoted) -> the whole row, from the README's configuration reference table."""
  text = _read(README)
  section = text[text.index('## Configuration reference'):]
  section = section[:section.index('\n## ', 5)]
  rows = {}
  for line in section.splitlines():
    if line.startswith('| `'):
      for name in re.findall(r'`(\w+)`', line.split('|')[1]):
        rows[name] = line
  return rows


def test_every_component_argument_is_in_the_reference_and_nothing_else():
  arguments = set(inspect.signature(Preflight.__init__).parameters) - {'self'}
  rows = set(_reference_rows())
  assert arguments == rows, (f'missing from the reference: {sorted(arguments - rows)}; '
                             f'in the reference but not accepted: {sorted(rows - arguments)}')


@pytest.mark.parametrize('section,config_class', [('skew', config.SkewConfig), ('leakage', config.LeakageConfig),
                                                  ('loss', config.LossConfig),
                                                  ('label_proxy', config.LabelProxyConfig)])
def test_every_config_key_is_in_the_reference_and_nothing_else(section, config_class):
  row = _reference_rows()[section]
  keys = {f.name for f in dataclasses.fields(config_class)}
  cells = row.split('|')[3]
  not_keys = {'true', 'false', *constants.STATUS_RANK, *inspect.signature(Preflight.__init__).parameters}
  named = {n for n in re.findall(r'`(\w+)`', cells) if n.islower() and n not in not_keys - keys}
  assert not keys - named, f'{section} keys missing from the README reference: {sorted(keys - named)}'
  assert not named - keys, f'the README reference names {section} keys the code does not take: {sorted(named - keys)}'


def _readme_commands() -> List[str]:
  """Every `tfx-preflight` command in the README's bash and YAML blocks, continuation lines joined."""
  commands = []
  for block in re.findall(r'^```(?:bash|yaml)\n(.*?)^```', _read(README), flags=re.S | re.M):
    lines = re.sub(r'\\\n\s*', ' ', block).splitlines()
    commands += [line.strip() for line in lines if line.strip().startswith('tfx-preflight ')]
  return commands


@pytest.mark.slow
def test_every_readme_command_runs_as_written_and_passes_clean_data(tmp_path):
  """The README's CLI example and its CI step, run verbatim (bash, the installed entry point) on clean data laid out as
  they name it: `data/{train,eval}/*.gz`, features `id` and `timestamp` to exclude, `trainer.py` a real module."""
  import json
  import shutil
  import subprocess
  import sys

  import numpy as np

  from tests.helpers import tabular_rows, write_tfrecords
  commands = _readme_commands()
  assert len(commands) >= 2, commands  # The example and the CI step: a lost block must not pass silently.
  rows = [dict(row, timestamp=1_700_000_000 + 60 * i) for i, row in enumerate(tabular_rows(800, seed=5))]
  rows = [rows[i] for i in np.random.default_rng(5).permutation(len(rows))]  # A random split: ids do not cut it.
  write_tfrecords(str(tmp_path / 'data' / 'train' / 'part-0.gz'), rows[:600])
  write_tfrecords(str(tmp_path / 'data' / 'eval' / 'part-0.gz'), rows[600:])
  shutil.copy(os.path.join(ROOT, 'tests', 'modules', 'tabular_module.py'), tmp_path / 'trainer.py')
  env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''),
             GITHUB_STEP_SUMMARY=str(tmp_path / 'step_summary.md'))
  for command in commands:
    shutil.rmtree(tmp_path / 'preflight_report', ignore_errors=True)
    done = subprocess.run(['bash', '-c', command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f'{command}\n{done.stdout}\n{done.stderr}'
    with open(tmp_path / 'preflight_report' / 'report.json', encoding='utf-8') as f:
      result = json.load(f)
    assert result['verdict'] == 'pass', command
    if '--module-file' in command:  # The Trainer module was really probed, not skipped.
      assert result['checks']['loss']['status'] == 'pass', result['checks']['loss']
  assert '--module-file trainer.py' in ' '.join(commands)
  assert 'pass' in (tmp_path / 'step_summary.md').read_text()
  assert '<testsuite' in (tmp_path / 'preflight-junit.xml').read_text()
