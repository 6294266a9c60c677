"""Train/eval skew check (stub: replaced by the real check)."""

from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from tfx_preflight import report
from tfx_preflight.config import SkewConfig


def generate_statistics(examples: Mapping[str, str], make_pipeline: Callable[[], beam.Pipeline], output_dir: str,
                        schema: Optional[schema_pb2.Schema] = None
                        ) -> Dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
  raise NotImplementedError


def check_skew(statistics: Mapping[str, statistics_pb2.DatasetFeatureStatisticsList], train_split: str,
               eval_splits: Sequence[str], config: SkewConfig, schema: Optional[schema_pb2.Schema] = None,
               label_key: Optional[str] = None) -> Dict[str, Any]:
  return report.skipped('skew check not implemented yet')


def render_html(result: Mapping[str, Any], statistics: Mapping[str, statistics_pb2.DatasetFeatureStatisticsList],
                train_split: str, eval_splits: Sequence[str], output_dir: str) -> str:
  return ''
