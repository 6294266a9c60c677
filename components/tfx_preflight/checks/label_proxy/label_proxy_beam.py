"""The label-proxy check's Beam part: decoded RecordBatches of one split in, its typed `SplitCounts` out, written
as one .npz file per split (a JSON header and the count tables; no pickles) and read back by the driver.

`LabelProxyCounts` takes the RecordBatches the read pass (read_pass.py) decodes once for every check and combines them
with `LabelProxyCombineFn` (beam_util.CombineToOne; numpy per batch, mergeable counts: counts.py). check.py turns the
merged counts into scores and findings (pure functions).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from typing import Dict, Mapping, Sequence, Tuple

import apache_beam as beam
import numpy as np
import pyarrow as pa

from tfx_preflight import beam_util, file_io, file_writes
from tfx_preflight.checks.label_proxy import counts as counts_lib
from tfx_preflight.inputs.located_batches import SplitBatches, batch_of

COUNTS_FILE = 'label_proxy_counts-{split}.npz'
_HEADER = 'header'
# The CombineFn counts the rows of batches waiting in its accumulator once this many wait (16 read-pass batches;
# with 8, merging each settled table into the growing one cost a fifth more CPU).
SETTLE_ROWS = 1 << 17


@beam.typehints.with_input_types(pa.RecordBatch)
@beam.typehints.with_output_types(counts_lib.SplitCounts)
class LabelProxyCombineFn(beam.CombineFn):
  """RecordBatches of one split -> their SplitCounts (per-feature (value, label) counts and label moments)."""

  def __init__(self, options: counts_lib.CountOptions):
    self._options = options

  def create_accumulator(self) -> counts_lib.SplitCounts:
    return counts_lib.SplitCounts()

  def add_input(self, accumulator: counts_lib.SplitCounts, batch: pa.RecordBatch) -> counts_lib.SplitCounts:
    """Adds the batch's counts; its rows and tables are counted into the accumulator's SETTLE_ROWS rows at a time (the
    first batch's at once), so each feature's growing table is not re-sorted for every batch."""
    counts_lib.add_counts(accumulator, counts_lib.count_batch(batch, self._options, defer=True), self._options)
    if len(accumulator.pending) == 1 and not accumulator.features or \
        sum(p.examples for p in accumulator.pending) >= SETTLE_ROWS:
      counts_lib.settle(accumulator, self._options)
    return accumulator

  def merge_accumulators(self, accumulators) -> counts_lib.SplitCounts:
    return counts_lib.merge_all(accumulators, self._options)

  def compact(self, accumulator: counts_lib.SplitCounts) -> counts_lib.SplitCounts:
    return counts_lib.settle(accumulator, self._options)

  def extract_output(self, accumulator: counts_lib.SplitCounts) -> counts_lib.SplitCounts:
    return counts_lib.settled(accumulator, self._options)


class LabelProxyCounts(beam.PTransform):
  """PCollection of RecordBatches (decoded tf.Examples of one split) -> a PCollection of one SplitCounts."""

  def __init__(self, options: counts_lib.CountOptions):
    super().__init__()
    if not options.label_key:
      raise ValueError('LabelProxyCounts needs a label_key.')
    self._options = options

  def expand(self, batches: beam.PCollection) -> beam.PCollection:
    return batches | 'CountValuesAndLabels' >> beam_util.CombineToOne(LabelProxyCombineFn(self._options))


def write_counts(counts: counts_lib.SplitCounts, path: str) -> None:
  """One split's merged counts as one .npz file: the tables as arrays, the rest as a JSON header (the read pass writes
  it from a step, whole, as the leakage counts are; `read_counts` reads it back). Listing ~1.7M numbers as JSON cost
  ~0.8 s of the gate's wall time at 1M (the driver waits for both); binary tables ~0.04 s."""
  arrays: Dict[str, np.ndarray] = {}
  header = json.dumps(counts_lib.to_jsonable(counts, arrays), sort_keys=True).encode()
  file_writes.write_atomically(path, file_writes.npz_bytes({_HEADER: np.frombuffer(header, np.uint8), **arrays}))


def read_counts(output_dir: str, split: str) -> counts_lib.SplitCounts:
  with file_io.open(os.path.join(output_dir, COUNTS_FILE.format(split=split)), 'rb') as f:
    with np.load(io.BytesIO(f.read()), allow_pickle=False) as tables:
      arrays = {name: tables[name] for name in tables.files}
  return counts_lib.from_jsonable(json.loads(arrays.pop(_HEADER).tobytes()), arrays)


@dataclasses.dataclass(frozen=True)
class LabelProxyReadPart:
  """The label-proxy check's consumer of the one read pass (inputs/read_pass.ReadPart): per split, its counts as one
  .npz file under `output_dir`."""
  options: counts_lib.CountOptions
  output_dir: str
  label: str = 'label-proxy counts'

  def prepare(self) -> None:
    file_io.makedirs(self.output_dir)

  def expand(self, batches: SplitBatches, splits: Tuple[str, ...], files: Tuple) -> None:
    for split in splits:
      _ = (batches[split]
           | f'LabelProxyBatches[{split}]' >> beam.Map(batch_of)
           | f'LabelProxy[{split}]' >> LabelProxyCounts(self.options)
           | f'WriteLabelProxy[{split}]' >> beam.Map(write_counts, os.path.join(
               self.output_dir, COUNTS_FILE.format(split=split))))

  def collect(self, splits: Tuple[str, ...]) -> Dict[str, counts_lib.SplitCounts]:
    return {split: read_counts(self.output_dir, split) for split in splits}

  def examples_read(self, output: Mapping[str, counts_lib.SplitCounts], splits: Sequence[str]) -> Dict[str, int]:
    return {split: int(output[split].examples) for split in splits}
