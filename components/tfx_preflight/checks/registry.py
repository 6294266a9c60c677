"""The checks the gate runs, in report order: each check's unit (checks/<name>/unit.py, a checks/unit.Check), listed
once here. run.py and report/pages.py reach the checks only through `units()`; config.CHECK_NAMES (the sections of
PreflightConfig) must name the same checks in the same order. docs/architecture.md walks through adding one."""

from __future__ import annotations

from typing import Tuple

from tfx_preflight.checks.label_proxy import unit as label_proxy
from tfx_preflight.checks.leakage import unit as leakage
from tfx_preflight.checks.loss import unit as loss
from tfx_preflight.checks.skew import unit as skew
from tfx_preflight.checks.unit import Check
from tfx_preflight.config import CHECK_NAMES

_UNITS: Tuple[Check, ...] = (skew.UNIT, leakage.UNIT, loss.UNIT, label_proxy.UNIT)


def units() -> Tuple[Check, ...]:
  """Every check, in report order (config.CHECK_NAMES)."""
  return _UNITS


def _check_registered() -> None:
  names = tuple(unit.name for unit in _UNITS)
  if names != CHECK_NAMES:
    raise TypeError(f'checks/registry.py lists the checks {names}; PreflightConfig has settings for {CHECK_NAMES}: '
                    'each check needs both, in the same order.')


_check_registered()
