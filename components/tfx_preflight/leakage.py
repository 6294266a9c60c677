"""Train/eval leakage check (stub: replaced by the real check)."""

from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import apache_beam as beam

from tfx_preflight import report
from tfx_preflight.config import LeakageConfig


def check_leakage(examples: Mapping[str, str], train_split: str, eval_splits: Sequence[str], config: LeakageConfig,
                  make_pipeline: Callable[[], beam.Pipeline], output_dir: str,
                  label_key: Optional[str] = None) -> Dict[str, Any]:
  return report.skipped('leakage check not implemented yet')


def render_html(result: Mapping[str, Any]) -> str:
  return ''
