"""Loss / evaluation-path check (stub: replaced by the real check)."""

from typing import Any, Dict, Mapping, Optional, Sequence

from tensorflow_metadata.proto.v0 import statistics_pb2

from tfx_preflight import report
from tfx_preflight.config import LossConfig


def check_loss(module_file: Optional[str], examples: Mapping[str, str], train_split: str, eval_splits: Sequence[str],
               config: LossConfig, label_key: Optional[str], schema_path: Optional[str],
               transform_graph_uri: Optional[str], hyperparameters: Optional[Mapping[str, Any]],
               statistics: Optional[Mapping[str, statistics_pb2.DatasetFeatureStatisticsList]],
               output_dir: str) -> Dict[str, Any]:
  return report.skipped('loss check not implemented yet')


def render_html(result: Mapping[str, Any]) -> str:
  return ''
