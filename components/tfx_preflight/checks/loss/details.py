"""What the loss check puts in report.json beside status, reason and findings: `LossDetails`, the one place its keys
are spelled.

Built by check.py from the probe's run (protocol.ProbeRun) once the child's messages have been validated; read back
by nothing else: the coverage and the headline numbers come from here, not from report.json's keys.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

from tfx_preflight.checks.loss import protocol as loss_protocol
from tfx_preflight.report.results import Coverage

# Info keys shown apart (what model.fit validates on, validation.py), or never shown (a temporary path).
VALIDATION_KEYS = ('validation_files', 'validation_examples', 'validation_batches')
_HIDDEN_INFO = ('module_path', *VALIDATION_KEYS)


@dataclasses.dataclass(frozen=True)
class Validation:
  """What model.fit validates on, as the probe counted it: files (temporary paths replaced by stable names), and the
  examples and batches of one validation pass (None: not counted)."""
  files: Tuple[str, ...] = ()
  examples: Optional[int] = None
  batches: Optional[int] = None

  @classmethod
  def from_info(cls, info: Mapping[str, Any], replacements: Mapping[str, str]) -> Optional[Validation]:
    """From the probe's info; None when the probe said nothing about validation. Values of the wrong type are
    dropped: the child ran untrusted code."""
    if not any(k in info for k in VALIDATION_KEYS):
      return None
    files = info.get('validation_files')
    shown = [_replaced(name, replacements) for name in (files if isinstance(files, list) else [])
             if isinstance(name, str)]
    return cls(tuple(sorted(shown)), _count(info.get('validation_examples')), _count(info.get('validation_batches')))

  def to_dict(self) -> Dict[str, Any]:
    return {'validation_files': list(self.files), 'validation_examples': self.examples,
            'validation_batches': self.batches}


def _count(value: Any) -> Optional[int]:
  return value if isinstance(value, int) and not isinstance(value, bool) else None


def _replaced(text: str, replacements: Mapping[str, str]) -> str:
  for old, new in replacements.items():
    text = text.replace(old, new)
  return text


@dataclasses.dataclass(frozen=True)
class LossDetails:
  """The loss check's details: which module, how the probe ended (`outcome`: complete, timeout, crashed), its
  measurements and info (module_path and the validation counts left out of info), why it could not check, and what
  model.fit validates on."""
  module_file: str
  outcome: str
  measurements: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  info: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  skipped_reason: Optional[str] = None
  validation: Optional[Validation] = None

  @classmethod
  def from_run(cls, run: loss_protocol.ProbeRun, module_file: str, replacements: Mapping[str, str]) -> LossDetails:
    """From a probe run whose messages protocol.py has validated; temporary paths replaced by stable names."""
    state = run.state()
    info = state.info.values
    return cls(module_file, run.outcome, dict(state.measurements.values),
               {k: v for k, v in sorted(info.items()) if k not in _HIDDEN_INFO},
               state.info.skipped_reason, Validation.from_info(info, replacements))

  def to_dict(self) -> Dict[str, Any]:
    """The keys under checks.loss in report.json (beside status, reason and findings)."""
    info = dict(self.info)
    if self.skipped_reason is not None:
      info[loss_protocol.SKIPPED_INFO_KEY] = self.skipped_reason
    return {'module_file': self.module_file, 'measurements': dict(self.measurements),
            'info': dict(sorted(info.items())), 'outcome': self.outcome,
            **(self.validation.to_dict() if self.validation else {})}

  def coverage(self) -> Coverage:
    """The probe ran the module on real batches only when it completed; it counts no examples."""
    return Coverage(1 if self.outcome == loss_protocol.COMPLETE else 0)

  def headline(self) -> Dict[str, Any]:
    """The numbers worth showing without opening the report: how the probe ended, the loss, and the fit of one batch
    (loss before and after, steps, why it stopped) when it ran."""
    fit = self.measurements.get('fit_batch')
    fit = fit if isinstance(fit, Mapping) else {}
    numbers = {'outcome': self.outcome, 'loss': self.info.get('loss'), 'fit_loss_before': fit.get('before'),
               'fit_loss_after': fit.get('after'), 'fit_steps': fit.get('steps'),
               'fit_stopped_because': fit.get('stopped_because')}
    return {k: v for k, v in numbers.items() if v is not None}
