"""Transformed examples must be the transform graph's output of the examples being gated: a sample of raw examples
through the graph must be found, row for row, in the transformed split. Runs inside the probe (TensorFlow Transform is
loaded there), before run_fn, when the gate was given both the raw and the transformed examples.

Counts and feature names are checked in the parent (provenance.py); this catches what they cannot: transformed
examples of other rows with the same count (another span, another ExampleGen run through the same graph).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Set

from tfx_preflight.checks.loss.compat import transform_raw_records
from tfx_preflight.checks.loss.recorder import SEVERITY_BLOCK, Probe

CODE = 'transformed_examples_mismatch'
# Raw examples of each split sent through the graph, and the bounds of the scan of the transformed split: a scan that
# did not reach the end of the split proves nothing when the sample was not found.
SAMPLE = 64
SCAN_ROWS = 200_000
SCAN_SECONDS = 15.0
# Less than this fraction of the sample found in the transformed split: they were not made from these examples.
FOUND_FRACTION = 0.5


def _files(pattern: str) -> List[str]:
  import tensorflow as tf
  return sorted(tf.io.gfile.glob(pattern))


def _records(pattern: str) -> Any:
  import tensorflow as tf
  files = _files(pattern)
  return tf.data.TFRecordDataset(files, compression_type='GZIP' if files and files[0].endswith('.gz') else '')


def row_keys(columns: Dict[str, Any], rows: int) -> List[bytes]:
  """One key per row: every output's values of that row (float32, int64 or bytes), in name order."""
  import numpy as np
  parts: List[List[bytes]] = [[] for _ in range(rows)]
  for name in sorted(columns):
    column = columns[name]
    for i in range(rows):
      value = np.ravel(np.asarray(column[i]))
      if value.dtype.kind == 'f':
        value = value.astype(np.float32).tobytes()
      elif value.dtype.kind in 'iub':
        value = value.astype(np.int64).tobytes()
      else:
        value = b'\x1f'.join(v if isinstance(v, bytes) else str(v).encode() for v in value.tolist())
      parts[i].append(name.encode() + b'=' + value)
  return [b'\x1e'.join(p) for p in parts]


def _parsed_columns(tft_output: Any, serialized: Any) -> Dict[str, Any]:
  import numpy as np
  import tensorflow as tf
  parsed = tf.io.parse_example(serialized, tft_output.transformed_feature_spec())
  columns = {}
  for name, value in parsed.items():
    if isinstance(value, tf.SparseTensor):
      columns[name] = tf.RaggedTensor.from_sparse(value).to_list()
    else:
      columns[name] = np.asarray(value)
  return columns


def _transformed_keys(tft_output: Any, pattern: str, wanted: Set[bytes]) -> tuple:
  """(keys of `wanted` found, whether the scan read the whole split)."""
  found: Set[bytes] = set()
  read = 0
  deadline = time.monotonic() + SCAN_SECONDS
  for serialized in _records(pattern).batch(1024):
    rows = int(serialized.shape[0])
    found.update(k for k in row_keys(_parsed_columns(tft_output, serialized), rows) if k in wanted)
    read += rows
    if found >= wanted:
      return found, True
    if read >= SCAN_ROWS or time.monotonic() > deadline:
      return found, False
  return found, True


def check_transformed_examples(probe: Probe, tft_output: Any, raw: Dict[str, str], transformed: Dict[str, str]
                               ) -> None:
  """A blocking finding per split whose transformed examples do not hold the graph's output of its raw examples."""
  for split in sorted(raw):
    if split not in transformed:
      continue
    serialized = next(iter(_records(raw[split]).take(SAMPLE).batch(SAMPLE)), None)
    if serialized is None:
      continue
    sample = set(row_keys(transform_raw_records(tft_output, serialized), int(serialized.shape[0])))
    found, complete = _transformed_keys(tft_output, transformed[split], sample)
    fraction = len(found) / len(sample)
    probe.info.setdefault('transformed_sample_found', {})[split] = round(fraction, 4)
    if complete and fraction < FOUND_FRACTION:
      probe.add(CODE, SEVERITY_BLOCK,
                f'The transformed examples of split {split!r} are not the transform graph\'s output of these '
                f'examples: of {len(sample)} raw examples sent through the graph, {len(found)} ({fraction:.0%}) are in '
                'the transformed split. They were made from other examples (another span or ExampleGen run): give '
                'Preflight and Trainer the transformed examples Transform made from the examples gated.',
                split=split, found=len(found), sampled=len(sample))
