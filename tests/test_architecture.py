"""The package's import graph, read from the source (imports inside functions included): no cycles, and the report
side is not imported by Beam or numpy code, so a maintainer can change one layer without dragging in the others."""

from __future__ import annotations

import ast
import dataclasses
import os
from typing import Dict, List, Optional, Set, Tuple

import tfx_preflight
from tfx_preflight.checks import registry
from tfx_preflight.config import CHECK_NAMES

PACKAGE = 'tfx_preflight'
ROOT = os.path.dirname(os.path.abspath(tfx_preflight.__file__))

KNOWN_CYCLE_EDGES: Set[Tuple[str, str]] = set()  # None: a cycle found is a failure.


def _module_names() -> Dict[str, str]:
  """Dotted module name -> file path, for every module of the package."""
  modules = {}
  for folder, _, files in os.walk(ROOT):
    for name in files:
      if not name.endswith('.py'):
        continue
      rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].split(os.sep)
      if rel[-1] == '__init__':
        rel = rel[:-1]
      modules['.'.join([PACKAGE] + rel)] = os.path.join(folder, name)
  return modules


def _resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
  """The absolute name a `from X import ...` refers to, relative imports included."""
  if not node.level:
    return node.module or ''
  parts = module.split('.')
  base = parts if is_package else parts[:-1]
  base = base[:len(base) - (node.level - 1)]
  return '.'.join(base + ([node.module] if node.module else []))


def _imported(module: str, path: str, known: Set[str]) -> Tuple[Set[str], Set[str]]:
  """(package modules `module` imports anywhere in its file, top-level names of everything it imports)."""
  tree = ast.parse(open(path, encoding='utf-8').read(), path)
  is_package = path.endswith('__init__.py')
  targets: Set[str] = set()
  roots: Set[str] = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        roots.add(alias.name.split('.')[0])
        targets.add(_owning_module(alias.name, known))
    elif isinstance(node, ast.ImportFrom):
      source = _resolve_from(module, is_package, node)
      roots.add(source.split('.')[0])
      for alias in node.names:
        submodule = f'{source}.{alias.name}'
        targets.add(submodule if submodule in known else _owning_module(source, known))
  return {t for t in targets if t and t != module}, roots


def _owning_module(name: str, known: Set[str]) -> str:
  """The longest package module `name` lies in ('' when outside the package)."""
  parts = name.split('.')
  while parts:
    candidate = '.'.join(parts)
    if candidate in known:
      return candidate
    parts.pop()
  return ''


def _graph() -> Tuple[Dict[str, Set[str]], Dict[str, Set[str]]]:
  modules = _module_names()
  known = set(modules)
  edges, roots = {}, {}
  for module, path in modules.items():
    edges[module], roots[module] = _imported(module, path, known)
  return edges, roots


def _find_cycle(edges: Dict[str, Set[str]]) -> Optional[List[str]]:
  """One cycle of the graph as a list of modules (first == last), or None."""
  state: Dict[str, int] = {}
  stack: List[str] = []

  def visit(node: str) -> Optional[List[str]]:
    state[node] = 1
    stack.append(node)
    for nxt in sorted(edges.get(node, ())):
      if (node, nxt) in KNOWN_CYCLE_EDGES:
        continue
      if state.get(nxt) == 1:
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        found = visit(nxt)
        if found:
          return found
    stack.pop()
    state[node] = 2
    return None

  for start in sorted(edges):
    if start not in state:
      found = visit(start)
      if found:
        return found
  return None


def test_the_graph_is_read():
  """Guards the test itself: a known chain of imports (one inside a function) is seen."""
  edges, _ = _graph()
  assert 'tfx_preflight.checks.registry' in edges['tfx_preflight.run']
  assert 'tfx_preflight.checks.leakage.unit' in edges['tfx_preflight.checks.registry']
  assert 'tfx_preflight.checks.leakage.leakage_beam' in edges['tfx_preflight.checks.leakage.unit']
  assert 'tfx_preflight.inputs.read_pass' in edges['tfx_preflight.checks.leakage.check']  # Inside a function.


def test_the_cycle_finder_finds_a_cycle():
  edges = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
  assert _find_cycle(edges) == ['a', 'b', 'c', 'a']
  assert _find_cycle({'a': {'b'}, 'b': set()}) is None


def test_no_import_cycles():
  edges, _ = _graph()
  cycle = _find_cycle(edges)
  assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)


# What Beam or numpy code may take from report/: the typed results every check returns (no report.json, no HTML).
_LIGHT_REPORT_MODULES = {PACKAGE + '.report.results'}
# The driver assembles the report (and starts the Beam pass); a check's HTML section is report side itself.
_DRIVERS = {PACKAGE + '.run', PACKAGE + '.cli'}
_CHECK_RENDER_MODULES = ('render', 'picture', 'charts')


def _is_report_side(module: str) -> bool:
  return (module.startswith(PACKAGE + '.report.') or module in _DRIVERS
          or (module.startswith(PACKAGE + '.checks.') and module.rsplit('.', 1)[-1] in _CHECK_RENDER_MODULES))


def test_the_report_side_is_not_imported_by_beam_or_numpy_code():
  edges, roots = _graph()
  bad = sorted(f'{module} imports {target}'
               for module, targets in edges.items()
               if roots[module] & {'apache_beam', 'numpy'} and not _is_report_side(module)
               for target in targets
               if target.startswith(PACKAGE + '.report') and target not in _LIGHT_REPORT_MODULES)
  assert not bad, '\n'.join(bad)


def _check_folder(module: str) -> Optional[str]:
  parts = module.split('.')
  return parts[2] if len(parts) > 3 and parts[1] == 'checks' else None


def test_no_check_imports_another_check():
  """Each check can be used and tested without the others: what they share lives in inputs/ or report/."""
  edges, _ = _graph()
  bad = sorted(f'{module} imports {target}' for module, targets in edges.items() for target in targets
               if _check_folder(module) and _check_folder(target) not in (None, _check_folder(module)))
  assert not bad, '\n'.join(bad)


def test_the_input_side_and_the_driver_know_no_check_by_name():
  """inputs/ (the read pass among them) and the report side serve every check; run.py and report/pages.py reach the
  checks only through checks/registry.py. A check added in its folder needs none of them changed."""
  edges, _ = _graph()
  generic = [m for m in edges if m.startswith((PACKAGE + '.inputs', PACKAGE + '.report'))
             or m in (PACKAGE + '.run', PACKAGE + '.checks.unit')]
  bad = sorted(f'{module} imports {target}' for module in generic for target in edges[module]
               if _check_folder(target))
  assert not bad, '\n'.join(bad)


def test_every_check_is_registered_once():
  """Each check has its settings (a section of PreflightConfig: config.CHECK_NAMES) and its unit in the registry, in
  the same order; a unit gives the hooks every check must give."""
  from tfx_preflight.checks.unit import Check
  from tfx_preflight.config import PreflightConfig
  units = registry.units()
  assert [unit.name for unit in units] == list(CHECK_NAMES) == ['skew', 'leakage', 'loss', 'label_proxy']
  assert all(unit.stage for unit in units)
  defaults = PreflightConfig()
  for unit in units:
    assert type(unit).skip_reason is not Check.skip_reason, unit.name
    assert type(unit).render_html is not Check.render_html, unit.name
    made = (type(unit).launch, type(unit).begin, type(unit).wait) if unit.background else (type(unit).interpret,)
    assert all(hook.__qualname__.split('.')[0] != 'Check' for hook in made), unit.name
    assert dataclasses.is_dataclass(getattr(defaults, unit.name)), unit.name
