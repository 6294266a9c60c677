"""The two primitives every piece of report.html and statistics.html goes through: escaping and number formatting.

Feature names, values and messages come from user data: every value is escaped with `esc` (text and attribute
context), so a feature named `<script>` is text, never code; numbers are shown to 4 significant digits.
"""

from __future__ import annotations

import html
from typing import Any

# Significant digits of every float shown in the report's HTML pages (report.json keeps full precision).
NUMBER_FORMAT = '.4g'


def esc(value: Any) -> str:
  """Escapes any value for HTML text or attribute context."""
  return html.escape(str(value), quote=True)


def number(value: Any) -> str:
  """Floats to 4 significant digits; everything else as text (escaped)."""
  if isinstance(value, float):
    return esc(short(value))
  return esc(value)


def short(value: float) -> str:
  """A float to 4 significant digits, not escaped (digits only): axis labels, tooltips and table cells."""
  return format(value, NUMBER_FORMAT)
