"""Per split, a cheap sketch of every feature as the read pass sees it: in how many examples it is present and, for
numeric features, the count, sum and sum of squares of its values. Computed only when statistics are supplied, so
that provenance.check_statistics_describe_the_examples can tell statistics of these examples from statistics of
other data with the same example count (another ExampleGen run, a rescaled copy).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import apache_beam as beam
import numpy as np
import pyarrow as pa

from tfx_preflight import beam_util, file_io, file_writes

SKETCH_FILE = 'sketch-{split}.json'
# {'examples': n, 'features': {name: [examples where present, numeric values, their sum, their sum of squares]}}.
Sketch = Dict[str, Any]


def batch_sketch(batch: pa.RecordBatch) -> Sketch:
  """The sketch of one RecordBatch (one list column per feature, null where an example lacks it)."""
  sketch: Dict[str, List[float]] = {}
  for name, column in zip(batch.schema.names, batch.columns):
    present = len(column) - column.null_count
    values = column.flatten() if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) else None
    numeric = values is not None and (pa.types.is_integer(values.type) or pa.types.is_floating(values.type))
    if numeric:
      array = values.to_numpy(zero_copy_only=False).astype(np.float64)
      array = array[np.isfinite(array)]
      sketch[name] = [present, int(array.size), float(array.sum()), float(np.square(array).sum())]
    else:
      sketch[name] = [present, 0, 0.0, 0.0]
  return {'examples': batch.num_rows, 'features': sketch}


class SketchCombineFn(beam.CombineFn):
  """RecordBatches -> one Sketch (per-feature sums, merged by addition)."""

  def create_accumulator(self) -> Sketch:
    return {'examples': 0, 'features': {}}

  def add_input(self, accumulator: Sketch, batch: pa.RecordBatch) -> Sketch:
    return self.merge_accumulators([accumulator, batch_sketch(batch)])

  def merge_accumulators(self, accumulators) -> Sketch:
    merged: Sketch = self.create_accumulator()
    for accumulator in accumulators:
      merged['examples'] += accumulator['examples']
      for name, values in accumulator['features'].items():
        merged['features'][name] = [a + b for a, b in zip(merged['features'].get(name, [0, 0, 0.0, 0.0]), values)]
    return merged

  def extract_output(self, accumulator: Sketch) -> Sketch:
    features = accumulator['features']
    return {'examples': accumulator['examples'], 'features': {name: features[name] for name in sorted(features)}}


class FeatureSketch(beam.PTransform):
  """PCollection of one split's RecordBatches -> a PCollection of one Sketch."""

  def expand(self, batches: beam.PCollection) -> beam.PCollection:
    return batches | 'Sketch' >> beam_util.CombineToOne(SketchCombineFn())


def write_sketch(sketch: Sketch, path: str) -> None:
  file_writes.write_atomically(path, json.dumps(sketch, sort_keys=True))


def read_sketch(output_dir: str, split: str) -> Sketch:
  with file_io.open(os.path.join(output_dir, SKETCH_FILE.format(split=split)), 'r') as f:
    return json.loads(f.read())
