"""What a check is to the gate: one `Check` object per check, found through checks/registry.py.

A check lives in its folder (`checks/<name>/`) and tells the gate, through its `unit.py`, everything run.py and the
report need: whether it runs (`skip_reason`), what it needs before reading (`needs_statistics`, `check_inputs`), its
consumer of the one read pass (`read_part`, any inputs/read_pass.ReadPart), how it turns that output into a
CheckResult with typed details (`interpret`), and how report.html draws it (`render_html`, `pages`). A check that runs
beside the others in its own process (the loss probe) is `background`: `launch`ed before anything else, given the
statistics when they are known (`begin`), and awaited last (`wait`). run.py and report/pages.py call these in order
and know no check by name. docs/architecture.md walks through adding one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ContextManager, Dict, Iterable, Mapping, Optional, Tuple

from tfx_preflight.config import PreflightConfig
from tfx_preflight.inputs.gate_inputs import PreflightInputs
from tfx_preflight.inputs.read_pass import Files, ReadPart
from tfx_preflight.inputs.statistics import StatisticsBySplit
from tfx_preflight.report.results import CheckResult


@dataclasses.dataclass(frozen=True)
class Gate:
  """What a check may read once the splits are known: the configuration, the inputs, the splits compared, the files
  every read-pass part indexes, where its outputs go (`output_dir/<check name>`), and the statistics once known."""
  config: PreflightConfig
  inputs: PreflightInputs
  train: str
  evals: Tuple[str, ...]
  examples: Mapping[str, Any]  # The used splits' patterns (inputs.examples, train and evals only).
  files: Files
  output_dir: str
  statistics: Optional[StatisticsBySplit] = None

  @property
  def splits(self) -> Tuple[str, ...]:
    return (self.train, *self.evals)


@dataclasses.dataclass(frozen=True)
class PageInputs:
  """What a check's render reads beside its report.json dict: the statistics and the splits compared."""
  statistics: StatisticsBySplit
  train: str
  evals: Tuple[str, ...]


class Check:
  """One check. Subclasses set `name` (its constants name: report.json key, config section, output folder) and
  `stage` (its progress line), and implement `skip_reason`, `interpret` (or `launch`/`begin`/`wait` when
  `background`) and `render_html`; every other hook has a default that does nothing."""
  name: str = ''
  stage: str = ''
  background = False  # Runs in its own process beside the others (launch/begin/wait instead of interpret).

  def skip_reason(self, config: PreflightConfig, inputs: PreflightInputs) -> Optional[str]:
    """Why the check does not run with this configuration and these inputs (None: it runs)."""
    raise NotImplementedError

  def check_inputs(self, gate: Gate, runs: bool) -> None:
    """Before anything is read: raises (data.InputError, ConfigError) on inputs it cannot check, or on inputs given
    for it while it does not run."""

  def needs_statistics(self, gate: Gate) -> bool:
    """Whether it reads statistics (computed by the read pass when not supplied)."""
    return False

  def read_part(self, gate: Gate) -> Optional[ReadPart]:
    """Its consumer of the one read pass, if any."""
    return None

  def interpret(self, gate: Gate, part: Optional[ReadPart], output: Any) -> CheckResult:
    """Its result, from its read part and that part's output (both None without a part) and the statistics."""
    raise NotImplementedError

  def launch(self, config: PreflightConfig, inputs: PreflightInputs, output_dir: str) -> ContextManager:
    """Background checks: starts its process before the splits are even resolved; leaving the context stops it."""
    raise NotImplementedError

  def begin(self, gate: Gate, launched: Any) -> None:
    """Background checks: hands the launched process its request once the statistics are known."""
    raise NotImplementedError

  def wait(self, launched: Any) -> CheckResult:
    """Background checks: its result, awaited after every other check."""
    raise NotImplementedError

  def features_seen(self, result: CheckResult) -> Optional[Mapping[str, Iterable[str]]]:
    """Feature names per split its result saw, checked against the settings when no statistics were read."""
    return None

  def after_report(self, config: PreflightConfig, inputs: PreflightInputs, report: Mapping[str, Any]) -> None:
    """After report.json is written (e.g. the leakage check publishes the train hashes of a blessed run)."""

  def render_html(self, check: Mapping[str, Any], page: PageInputs) -> str:
    """Its section of report.html below its findings table, escaped."""
    raise NotImplementedError

  def pages(self, check: Mapping[str, Any], page: PageInputs) -> Dict[str, str]:
    """Pages of its own in the report directory: file name -> HTML."""
    return {}
