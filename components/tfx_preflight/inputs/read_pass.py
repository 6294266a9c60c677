"""One read per split: every file is read and decoded once, and the same RecordBatches feed every Beam consumer.

One Beam pipeline (the caller's `make_pipeline`, so `beam_pipeline_args` apply):

  files of each split -> Read[split]: records.py's strict reader + tfx-bsl's decoder, LocatedBatch elements
     +-> Statistics[split]: tfdv.GenerateStatistics (only when statistics are needed and not supplied), written as
     |   StatisticsGen lays them out (statistics.py)
     +-> Leakage: leakage_beam.LeakageHashes over every split -> duplicates.tsv and the merged counts
     +-> LabelProxy[split]: label_proxy_beam.LabelProxyCounts -> one JSON file of counts per split
     +-> SpanStatistics: TFDV statistics of each (split, span) as slices of one transform (span windows; checks/skew/spans.py)

Reading and decoding are a large share of TFDV's own statistics pass, so skew + leakage from one read cost little
more than the statistics alone (`make bench`, jobs one_pass vs statistics_alone: bench/results.md). The driver reads
the small outputs back; interpreting them into findings stays with each check (leakage.summarize,
label_proxy.summarize). The element every consumer receives, `LocatedBatch`, is defined in located_batches.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx.dsl.io import fileio

from tfx_preflight import beam_util, file_writes
from tfx_preflight.checks.label_proxy import counts as counts_lib
from tfx_preflight.checks.label_proxy import label_proxy_beam
from tfx_preflight.checks.leakage import leakage_beam
from tfx_preflight.inputs import data, feature_sketch
from tfx_preflight.inputs import statistics as statistics_lib
from tfx_preflight.inputs.located_batches import LocatedBatch, ReadLocatedBatches


def _batch_of(located: LocatedBatch):
  return located[2]


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


@dataclasses.dataclass(frozen=True)
class LeakagePart:
  plan: leakage_beam.Plan
  output_dir: str
  history: Tuple = ()  # history.Stored of every --history directory / history artifact given, compared or not.


@dataclasses.dataclass(frozen=True)
class LabelProxyPart:
  options: counts_lib.CountOptions
  output_dir: str


@dataclasses.dataclass(frozen=True)
class SpanStatisticsPart:
  """Statistics of each Examples artifact of a span window, split by split, for checks/skew/spans.py: `spans` maps a split
  to one tuple of file paths per artifact (the paths data.split_files lists)."""
  output_dir: str
  spans: Mapping[str, Tuple[Tuple[str, ...], ...]]

  @property
  def path(self) -> str:
    return os.path.join(self.output_dir, 'span_statistics.pb')


@dataclasses.dataclass(frozen=True)
class PassRequest:
  """What one read pass computes. `splits` lists train first; every part is optional."""
  examples: Mapping[str, str]
  splits: Tuple[str, ...]
  statistics_dir: Optional[str] = None  # Statistics computed (TFDV) and written here when set.
  schema: Optional[schema_pb2.Schema] = None
  leakage: Optional[LeakagePart] = None
  label_proxy: Optional[LabelProxyPart] = None
  rows_per_file_dir: Optional[str] = None  # Examples per file counted and written here when set (span windows).
  sketch_dir: Optional[str] = None  # Per-feature sketches (feature_sketch.py) written here when set.
  span_statistics: Optional[SpanStatisticsPart] = None

  @property
  def empty(self) -> bool:
    return (self.statistics_dir is None and self.leakage is None and self.label_proxy is None
            and self.sketch_dir is None and self.span_statistics is None)

  def consumers(self) -> Tuple[str, ...]:
    """What the pass feeds, for the progress line."""
    return tuple(name for name, part in (('statistics', self.statistics_dir), ('leakage hashes', self.leakage),
                                         ('label-proxy counts', self.label_proxy),
                                         ('feature sketches', self.sketch_dir),
                                         ('span statistics', self.span_statistics)) if part is not None)


@dataclasses.dataclass
class PassOutputs:
  statistics: Optional[Dict[str, statistics_pb2.DatasetFeatureStatisticsList]] = None
  leakage: Optional[leakage_beam.LeakageCounts] = None
  label_proxy: Optional[Dict[str, counts_lib.SplitCounts]] = None
  rows_per_file: Optional[Dict[str, int]] = None  # path -> examples read, when the request asked for them.
  sketches: Optional[Dict[str, feature_sketch.Sketch]] = None
  # split -> one statistics list per Examples artifact (SpanStatisticsPart's order), for the splits it covers.
  span_statistics: Optional[Dict[str, List[statistics_pb2.DatasetFeatureStatisticsList]]] = None


def build_pipeline(pipeline: beam.Pipeline, request: PassRequest, files: Tuple[Tuple[int, str], ...]) -> None:
  """Adds the read of every split and each requested consumer of its batches to `pipeline`."""
  batches = {}
  for split_id, split in enumerate(request.splits):
    file_ids = [i for i, (s, _) in enumerate(files) if s == split_id]
    batches[split] = pipeline | f'Read[{split}]' >> ReadLocatedBatches(files, file_ids)
  if request.statistics_dir is not None:
    for split in request.splits:
      _ = (batches[split]
           | f'Unlocate[{split}]' >> beam.Map(_batch_of)
           | f'Statistics[{split}]' >> statistics_lib.WriteSplitStatistics(request.statistics_dir, split,
                                                                            request.schema))
  if request.rows_per_file_dir is not None:
    for split in request.splits:
      _ = (batches[split]
           | f'RowsOfFile[{split}]' >> beam.Map(_rows_of_file)
           | f'RowsPerFile[{split}]' >> beam_util.CombineToOne(_RowsPerFileFn())
           | f'WriteRowsPerFile[{split}]' >> beam.Map(_write_rows_per_file, os.path.join(
               request.rows_per_file_dir, ROWS_PER_FILE.format(split=split))))
  if request.leakage is not None:
    _ = (batches
         | 'Leakage' >> leakage_beam.LeakageHashes(request.leakage.plan)
         | 'WriteLeakage' >> leakage_beam.WriteLeakageOutputs(request.leakage.output_dir))
  if request.sketch_dir is not None:
    for split in request.splits:
      _ = (batches[split]
           | f'SketchBatches[{split}]' >> beam.Map(_batch_of)
           | f'Sketch[{split}]' >> feature_sketch.FeatureSketch()
           | f'WriteSketch[{split}]' >> beam.Map(feature_sketch.write_sketch, os.path.join(
               request.sketch_dir, feature_sketch.SKETCH_FILE.format(split=split))))
  if request.span_statistics is not None:
    _add_span_statistics(batches, request, files)
  if request.label_proxy is not None:
    for split in request.splits:
      _ = (batches[split]
           | f'LabelProxyBatches[{split}]' >> beam.Map(_batch_of)
           | f'LabelProxy[{split}]' >> label_proxy_beam.LabelProxyCounts(request.label_proxy.options)
           | f'WriteLabelProxy[{split}]' >> beam.Map(label_proxy_beam.write_counts, os.path.join(
               request.label_proxy.output_dir, label_proxy_beam.COUNTS_FILE.format(split=split))))


def _span_splits(request: PassRequest) -> List[str]:
  """The splits whose batches are also summarized per span: those with files of two or more spans."""
  part = request.span_statistics
  return [split for split in request.splits if len(part.spans.get(split, ())) >= 2]


def _span_key(split_id: int, span: int) -> str:
  return f'{split_id}/{span}'


def _keyed_by_span(located: LocatedBatch, split_id: int, span_of: Mapping[int, int]):
  return _span_key(split_id, span_of[located[0]]), located[2]


def _add_span_statistics(batches: Mapping[str, beam.PCollection], request: PassRequest,
                         files: Tuple[Tuple[int, str], ...]) -> None:
  """Each split's batches keyed by the artifact their file belongs to, and TFDV statistics of every (split, span) in
  one sliced statistics transform: the same decoded batches as the union's statistics, no second read."""
  part = request.span_statistics
  keyed = []
  for split in _span_splits(request):
    split_id = request.splits.index(split)
    span_of = {file_id: k for file_id, (s, path) in enumerate(files) if s == split_id
               for k, paths in enumerate(part.spans[split]) if path in paths}
    keyed.append(batches[split] | f'BySpan[{split}]' >> beam.Map(_keyed_by_span, split_id, span_of))
  _ = (keyed
       | 'FlattenSpans' >> beam.Flatten()
       | 'SpanStatistics' >> statistics_lib.WriteSlicedStatistics(part.path, request.schema))


def run_pass(request: PassRequest, make_pipeline: Callable[[], beam.Pipeline]) -> PassOutputs:
  """Runs the one pipeline and reads back what each consumer wrote; nothing runs for an empty request."""
  outputs = PassOutputs()
  if request.empty:
    return outputs
  files = request.leakage.plan.files if request.leakage else data.split_files(request.examples, request.splits)
  for part in (request.leakage, request.label_proxy):
    if part is not None:
      fileio.makedirs(part.output_dir)
  if request.rows_per_file_dir is not None:
    fileio.makedirs(request.rows_per_file_dir)
  if request.sketch_dir is not None:
    fileio.makedirs(request.sketch_dir)
  if request.span_statistics is not None:
    fileio.makedirs(request.span_statistics.output_dir)
  if request.leakage is not None:
    leakage_beam.clear_outputs(request.leakage.output_dir)
  with make_pipeline() as pipeline:
    build_pipeline(pipeline, request, files)
  if request.statistics_dir is not None:
    outputs.statistics = statistics_lib.load_statistics(request.statistics_dir, request.splits)
  if request.leakage is not None:
    outputs.leakage = leakage_beam.collect_outputs(request.leakage.output_dir)
  if request.span_statistics is not None:
    slices = statistics_lib.load_slices(request.span_statistics.path)
    outputs.span_statistics = {split: [slices[_span_key(request.splits.index(split), k)]
                                       for k in range(len(request.span_statistics.spans[split]))]
                               for split in _span_splits(request)}
  if request.sketch_dir is not None:
    outputs.sketches = {split: feature_sketch.read_sketch(request.sketch_dir, split) for split in request.splits}
  if request.label_proxy is not None:
    outputs.label_proxy = {split: label_proxy_beam.read_counts(request.label_proxy.output_dir, split)
                           for split in request.splits}
  if request.rows_per_file_dir is not None:
    outputs.rows_per_file = {}
    for split in request.splits:
      with fileio.open(os.path.join(request.rows_per_file_dir, ROWS_PER_FILE.format(split=split)), 'r') as f:
        outputs.rows_per_file.update({files[int(k)][1]: int(v) for k, v in json.loads(f.read()).items()})
  return outputs


def examples_read(outputs: PassOutputs, splits: Sequence[str]) -> Dict[str, int]:
  """Examples per split, from whichever output has them (for the progress line)."""
  if outputs.leakage is not None:
    return {split: int(outputs.leakage.examples.get(split, 0)) for split in splits}
  if outputs.label_proxy is not None:
    return {split: int(outputs.label_proxy[split].examples) for split in splits}
  if outputs.sketches is not None:
    return {split: int(outputs.sketches[split]['examples']) for split in splits}
  if outputs.statistics is not None:
    return {split: sum(int(d.num_examples) for d in outputs.statistics[split].datasets) for split in splits}
  return {}
