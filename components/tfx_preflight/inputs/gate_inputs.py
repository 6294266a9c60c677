"""What the gate looks at: `PreflightInputs`, plain values (split -> file pattern, protos, paths), not artifacts, so
the whole gate runs and is tested without ML Metadata. The executor and the CLI build it; run.py runs the checks on it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Sequence

from tensorflow_metadata.proto.v0 import schema_pb2

from tfx_preflight.inputs import data
from tfx_preflight.inputs.statistics import StatisticsBySplit


@dataclasses.dataclass(frozen=True)
class ExamplesArtifact:
  """One Examples artifact of the inputs (one span of a window): where it is and its split -> file pattern."""
  uri: str
  span: int
  version: int
  patterns: Mapping[str, str]


@dataclasses.dataclass
class PreflightInputs:
  """What the gate looks at. Only `examples` is required."""
  # split name -> file pattern(s) of tf.Example TFRecord files (gzip or not): one per Examples artifact, as Trainer
  # reads every span of a window (every span's train split is train, every span's eval split is eval).
  examples: Dict[str, data.Patterns]
  # split name -> statistics, e.g. StatisticsGen's output; computed with TFDV when None.
  statistics: Optional[StatisticsBySplit] = None
  schema: Optional[schema_pb2.Schema] = None
  module_file: Optional[str] = None
  transform_graph_uri: Optional[str] = None
  hyperparameters: Optional[Dict[str, Any]] = None
  # As Trainer takes them (see loss.check_loss): run_fn name or dotted path, custom_config, transformed examples.
  run_fn: Optional[str] = None
  custom_config: Optional[Dict[str, Any]] = None
  transformed_examples: Optional[Dict[str, str]] = None
  # Free-form description of where inputs came from, copied into the report.
  provenance: Dict[str, Any] = dataclasses.field(default_factory=dict)
  # For CSV input staged as TFRecords: maps staged records back to CSV file and line (csv_lines.CsvLocations).
  csv_locations: Optional[Any] = None
  # The Examples artifacts `examples` was made of (the executor sets it): each counted in the report.
  examples_artifacts: Sequence[ExamplesArtifact] = ()
  # Earlier runs' train hashes (train_hashes directories) joined with eval; where this run's are saved if it blesses.
  history: Sequence[str] = ()
  save_history: Optional[str] = None
  # Where the statistics the read pass computes are also written, laid out as StatisticsGen's output (the
  # component's `example_statistics`): they are computed even when no check needs them. Not with `statistics`.
  statistics_output: Optional[str] = None
