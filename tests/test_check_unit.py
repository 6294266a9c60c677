"""A check is one unit: a new `checks.unit.Check`, put in the registry, runs through the real gate (one read pass,
its interpretation, report.json, report.html, the progress line) with no change to run.py, the read pass or the
report side. Here a row-counting check takes label_proxy's place in a real DirectRunner run."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Dict, Mapping, Sequence, Tuple

import apache_beam as beam
import pytest
from tfx.dsl.io import fileio

from tests.helpers import write_splits
from tfx_preflight import run
from tfx_preflight.checks import registry
from tfx_preflight.checks.unit import Check, Gate, PageInputs
from tfx_preflight.config import PreflightConfig
from tfx_preflight.inputs.located_batches import SplitBatches
from tfx_preflight.report.results import CheckResult, Coverage

MARK = '<p class="rows">rows counted by the toy check</p>'


@dataclasses.dataclass(frozen=True)
class RowsDetails:
  rows: Mapping[str, int]

  def to_dict(self) -> Dict[str, Any]:
    return {'rows': dict(self.rows)}

  def coverage(self) -> Coverage:
    return Coverage(1, dict(self.rows))

  def headline(self) -> Dict[str, Any]:
    return {'rows': sum(self.rows.values())}


def _rows(located) -> int:
  return located[2].num_rows


def _write(total: int, path: str) -> None:
  with fileio.open(path, 'w') as f:
    f.write(json.dumps(total))


@dataclasses.dataclass(frozen=True)
class RowsPart:
  output_dir: str
  label: str = 'row counts'

  def prepare(self) -> None:
    fileio.makedirs(self.output_dir)

  def expand(self, batches: SplitBatches, splits: Tuple[str, ...], files: Tuple) -> None:
    for split in splits:
      _ = (batches[split]
           | f'Rows[{split}]' >> beam.Map(_rows)
           | f'Sum[{split}]' >> beam.CombineGlobally(sum)
           | f'WriteRows[{split}]' >> beam.Map(_write, os.path.join(self.output_dir, f'{split}.json')))

  def collect(self, splits: Tuple[str, ...]) -> Dict[str, int]:
    out = {}
    for split in splits:
      with fileio.open(os.path.join(self.output_dir, f'{split}.json'), 'r') as f:
        out[split] = json.loads(f.read())
    return out

  def examples_read(self, output: Mapping[str, int], splits: Sequence[str]) -> Dict[str, int]:
    return {split: output[split] for split in splits}


class RowsCheck(Check):
  name = 'label_proxy'  # Takes a registered name: the settings section (config.py) of a new check is its own.
  stage = 'rows'

  def skip_reason(self, config, inputs):
    return None

  def read_part(self, gate: Gate) -> RowsPart:
    return RowsPart(os.path.join(gate.output_dir, 'rows'))

  def interpret(self, gate: Gate, part: RowsPart, output: Mapping[str, int]) -> CheckResult:
    assert part.output_dir.startswith(gate.output_dir)
    return CheckResult('pass', (), details=RowsDetails(output))

  def render_html(self, check: Mapping[str, Any], page: PageInputs) -> str:
    return MARK


@pytest.fixture
def toy_registry(monkeypatch):
  units = tuple(RowsCheck() if unit.name == 'label_proxy' else unit for unit in registry.units())
  monkeypatch.setattr(registry, '_UNITS', units)


def test_a_registered_unit_runs_through_the_whole_gate(toy_registry, tmp_path, beam_factory, caplog):
  rows = [{'x': float(i % 7), 'label': i % 2} for i in range(130)]
  examples = write_splits(str(tmp_path / 'examples'), {'train': rows[:100], 'eval': rows[100:]})
  config = PreflightConfig(label_key='label', skew={'mode': 'off'}, leakage={'mode': 'off'})
  caplog.set_level(logging.INFO)
  outcome, result = run.run_preflight(run.PreflightInputs(examples=examples), config, beam_factory,
                                      str(tmp_path / 'report'))
  check = result['checks']['label_proxy']
  assert check == {'status': 'pass', 'findings': [], 'rows': {'train': 100, 'eval': 30}}
  assert outcome.checks['label_proxy'].headline() == {'rows': 130}
  assert result['verdict'] == 'pass'
  assert MARK in (tmp_path / 'report' / 'report.html').read_text()
  assert 'row counts' in caplog.text  # The read pass's progress line names what it read for.
