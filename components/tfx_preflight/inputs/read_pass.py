"""One read: every file is read and decoded once, and the same RecordBatches feed every Beam consumer.

One Beam pipeline (the caller's `make_pipeline`, so `beam_pipeline_args` apply):

  files of every split -> Read: records.py's strict reader + tfx-bsl's decoder, LocatedBatch elements, one PCollection
     (SplitBatches.every) partitioned by split in the same step (batches[split])
     +-> Statistics[split]: tfdv.GenerateStatistics (only when statistics are needed and not supplied), written as
     |   StatisticsGen lays them out (statistics.py)
     +-> each check's `ReadPart` (checks/<check>/unit.py gives it): the leakage hashes, the label-proxy counts, the
     |   span statistics of a window (skew); each adds its steps, then reads its small output back
     +-> Sketch[split], RowsPerFile[split]: what the input side checks supplied statistics and span windows with

Reading and decoding are a large share of TFDV's own statistics pass, so skew + leakage from one read cost little
more than the statistics alone (`make bench`, jobs one_pass vs statistics_alone: bench/results.md). Interpreting a
part's output into findings stays with its check. This module knows no check: a check's part is any `ReadPart`. The
element every consumer receives, `LocatedBatch`, is defined in located_batches.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Dict, Mapping, Optional, Protocol, Sequence, Tuple

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from tfx_preflight import beam_util, file_io, file_writes
from tfx_preflight.inputs import data, feature_sketch
from tfx_preflight.inputs import statistics as statistics_lib
from tfx_preflight.inputs.located_batches import Files, LocatedBatch, SplitBatches, batch_of, read_split_batches


def _rows_of_file(located: LocatedBatch) -> Dict[int, int]:
  return {located[0]: located[2].num_rows}


class _RowsPerFileFn(beam.CombineFn):
  """Examples per file id (a few numbers per file), so each Examples artifact of a span window gets its count."""

  def create_accumulator(self) -> Dict[int, int]:
    return {}

  def add_input(self, accumulator: Dict[int, int], element: Mapping[int, int]) -> Dict[int, int]:
    for file_id, rows in element.items():
      accumulator[file_id] = accumulator.get(file_id, 0) + rows
    return accumulator

  def merge_accumulators(self, accumulators) -> Dict[int, int]:
    merged: Dict[int, int] = {}
    for accumulator in accumulators:
      self.add_input(merged, accumulator)
    return merged

  def extract_output(self, accumulator: Dict[int, int]) -> Dict[int, int]:
    return accumulator


def _write_rows_per_file(rows: Mapping[int, int], path: str) -> None:
  file_writes.write_atomically(path, json.dumps({str(k): v for k, v in sorted(rows.items())}))


ROWS_PER_FILE = 'rows_per_file-{split}.json'


class ReadPart(Protocol):
  """A check's consumer of the one read: Beam steps on every split's batches, and its output read back after the
  pipeline ran (small: counts, sketches). The check turns that output into findings."""

  @property
  def label(self) -> str:
    """What the pass feeds, for the progress line ('leakage hashes')."""

  def prepare(self) -> None:
    """Before the pipeline runs: its directories made, what an earlier run left removed."""

  def expand(self, batches: SplitBatches, splits: Tuple[str, ...], files: Files) -> None:
    """Adds its steps; `batches[split]` holds the LocatedBatches of a split, `batches.every` those of every split
    (one step for all: no Flatten), file ids index `files`."""

  def collect(self, splits: Tuple[str, ...]) -> Any:
    """After the pipeline ran: its output, as the check interprets it."""

  def examples_read(self, output: Any, splits: Sequence[str]) -> Optional[Dict[str, int]]:
    """Examples per split, when its output counts them (None otherwise)."""


@dataclasses.dataclass(frozen=True)
class PassRequest:
  """What one read pass computes. `splits` lists train first; every part is optional. `files` (data.split_files of
  `examples`, listed once when not given) is what every part's file ids index."""
  examples: Mapping[str, str]
  splits: Tuple[str, ...]
  statistics_dir: Optional[str] = None  # Statistics computed (TFDV) and written here when set.
  schema: Optional[schema_pb2.Schema] = None
  parts: Mapping[str, ReadPart] = dataclasses.field(default_factory=dict)  # check name -> its part, report order.
  rows_per_file_dir: Optional[str] = None  # Examples per file counted and written here when set (span windows).
  sketch_dir: Optional[str] = None  # Per-feature sketches (feature_sketch.py) written here when set.
  files: Optional[Files] = None

  @property
  def empty(self) -> bool:
    return self.statistics_dir is None and not self.parts and self.sketch_dir is None

  def consumers(self) -> Tuple[str, ...]:
    """What the pass feeds, for the progress line."""
    return (*(('statistics',) if self.statistics_dir is not None else ()),
            *(part.label for part in self.parts.values()),
            *(('feature sketches',) if self.sketch_dir is not None else ()))


@dataclasses.dataclass
class PassOutputs:
  statistics: Optional[Dict[str, statistics_pb2.DatasetFeatureStatisticsList]] = None
  parts: Dict[str, Any] = dataclasses.field(default_factory=dict)  # check name -> its part's collected output.
  rows_per_file: Optional[Dict[str, int]] = None  # path -> examples read, when the request asked for them.
  sketches: Optional[Dict[str, feature_sketch.Sketch]] = None


def build_pipeline(pipeline: beam.Pipeline, request: PassRequest, files: Files) -> None:
  """Adds the read of every split and each requested consumer of its batches to `pipeline`."""
  batches = read_split_batches(pipeline, files, request.splits)
  if request.statistics_dir is not None:
    for split in request.splits:
      _ = (batches[split]
           | f'Unlocate[{split}]' >> beam.Map(batch_of)
           | f'Statistics[{split}]' >> statistics_lib.WriteSplitStatistics(request.statistics_dir, split,
                                                                            request.schema))
  if request.rows_per_file_dir is not None:
    for split in request.splits:
      _ = (batches[split]
           | f'RowsOfFile[{split}]' >> beam.Map(_rows_of_file)
           | f'RowsPerFile[{split}]' >> beam_util.CombineToOne(_RowsPerFileFn())
           | f'WriteRowsPerFile[{split}]' >> beam.Map(_write_rows_per_file, os.path.join(
               request.rows_per_file_dir, ROWS_PER_FILE.format(split=split))))
  if request.sketch_dir is not None:
    for split in request.splits:
      _ = (batches[split]
           | f'SketchBatches[{split}]' >> beam.Map(batch_of)
           | f'Sketch[{split}]' >> feature_sketch.FeatureSketch()
           | f'WriteSketch[{split}]' >> beam.Map(feature_sketch.write_sketch, os.path.join(
               request.sketch_dir, feature_sketch.SKETCH_FILE.format(split=split))))
  for part in request.parts.values():
    part.expand(batches, request.splits, files)


def run_pass(request: PassRequest, make_pipeline: Callable[[], beam.Pipeline]) -> PassOutputs:
  """Runs the one pipeline and reads back what each consumer wrote; nothing runs for an empty request."""
  outputs = PassOutputs()
  if request.empty:
    return outputs
  files = request.files if request.files is not None else data.split_files(request.examples, request.splits)
  for directory in (request.rows_per_file_dir, request.sketch_dir):
    if directory is not None:
      file_io.makedirs(directory)
  for part in request.parts.values():
    part.prepare()
  with make_pipeline() as pipeline:
    build_pipeline(pipeline, request, files)
  if request.statistics_dir is not None:
    outputs.statistics = statistics_lib.load_statistics(request.statistics_dir, request.splits)
  outputs.parts = {name: part.collect(request.splits) for name, part in request.parts.items()}
  if request.sketch_dir is not None:
    outputs.sketches = {split: feature_sketch.read_sketch(request.sketch_dir, split) for split in request.splits}
  if request.rows_per_file_dir is not None:
    outputs.rows_per_file = {}
    for split in request.splits:
      with file_io.open(os.path.join(request.rows_per_file_dir, ROWS_PER_FILE.format(split=split)), 'r') as f:
        outputs.rows_per_file.update({files[int(k)][1]: int(v) for k, v in json.loads(f.read()).items()})
  return outputs


def examples_read(request: PassRequest, outputs: PassOutputs, splits: Sequence[str]) -> Dict[str, int]:
  """Examples per split, from whichever output has them (for the progress line and provenance checks)."""
  for name, part in request.parts.items():
    counted = part.examples_read(outputs.parts[name], splits) if name in outputs.parts else None
    if counted is not None:
      return counted
  if outputs.sketches is not None:
    return {split: int(outputs.sketches[split]['examples']) for split in splits}
  if outputs.statistics is not None:
    return {split: sum(int(d.num_examples) for d in outputs.statistics[split].datasets) for split in splits}
  return {}
