"""Benchmark data: tabular and image-like train/eval splits with a known leak, in ExampleGen's layout and as Parquet.

Everything is vectorised: rows are drawn with numpy, turned into Arrow RecordBatches and serialised to tf.Examples in
chunks by tfx-bsl's C++ encoder (`RecordBatchToExamples`), framed as TFRecords (CRC32-C in C) and gzipped, without
importing TensorFlow. One Python object per example would make a 1M-example data set take minutes to write.

Layout under `root` (cached: a data set whose `manifest.json` exists is reused, keyed by kind, size, leak rate, seed):
  Split-train/data_tfrecord-00000-of-0000K.gz   (gzipped tf.Example TFRecords, as ExampleGen writes them)
  Split-eval/data_tfrecord-00000-of-0000K.gz
  parquet/train.parquet, parquet/eval.parquet   (tabular only: the same rows, for the in-memory pandas baseline)
  manifest.json                                  (sizes, seed, and the truth: how many eval rows were copied)

Leak: a fraction `leak_rate` of eval rows are byte-for-byte copies of random train rows' features (so every
leakage implementation must find exactly `manifest['leaked_eval_rows']` cross-split duplicates); a tenth of the copies
carry a different label (label conflicts).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import struct
import time
from typing import Dict, Iterable, Iterator, Optional, Tuple

import numpy as np
import pyarrow as pa

TABULAR = 'tabular'
IMAGE = 'image'
WIDE = 'wide'
NUM_FLOAT_FEATURES = 20
FLOAT_KEYS = tuple(f'f{i:02d}' for i in range(NUM_FLOAT_FEATURES))
STRING_KEY = 'city'
LABEL_KEY = 'label'
PIXELS_KEY = 'pixels'
IMAGE_SHAPE = (32, 32, 3)
NUM_PIXELS = int(np.prod(IMAGE_SHAPE))
NUM_CLASSES = 10
NUM_CATEGORIES = 50

TRAIN = 'train'
EVAL = 'eval'
EVAL_FRACTION = 0.2
DEFAULT_LEAK_RATE = 0.02
DEFAULT_SEED = 7
# Records per output file: big enough to amortise file overhead, small enough that Beam can split work by file.
RECORDS_PER_SHARD = 250_000
# Rows encoded at once: bounds the generator's memory (serialised tf.Examples of a chunk live in Python bytes).
CHUNK_ROWS = 50_000
MANIFEST = 'manifest.json'
_FORMAT_VERSION = 1
# Wide data (issue 13): thousands of random float features, few rows, train and eval from the same distribution.
DEFAULT_WIDE_FEATURES = 5_000
DEFAULT_WIDE_ROWS = 250


def dataset_dir(data_root: str, kind: str, size: int, leak_rate: float, seed: int) -> str:
  return os.path.join(data_root, f'{kind}-n{size}-leak{leak_rate:g}-seed{seed}-v{_FORMAT_VERSION}')


def split_pattern(root: str, split: str) -> str:
  return os.path.join(root, f'Split-{split}', '*')


def split_patterns(root: str) -> Dict[str, str]:
  return {split: split_pattern(root, split) for split in (TRAIN, EVAL)}


def parquet_path(root: str, split: str) -> str:
  return os.path.join(root, 'parquet', f'{split}.parquet')


def _split_sizes(size: int) -> Tuple[int, int]:
  n_eval = int(round(size * EVAL_FRACTION))
  return size - n_eval, n_eval


def _leak(rng: np.random.Generator, n_train: int, n_eval: int, leak_rate: float) -> Tuple[np.ndarray, np.ndarray]:
  """Which eval rows (slots) become copies of which train rows (sources); no train row is copied twice."""
  n_copies = min(int(round(n_eval * leak_rate)), n_train)
  slots = np.sort(rng.choice(n_eval, size=n_copies, replace=False))
  sources = rng.choice(n_train, size=n_copies, replace=False)
  return slots, sources


# ---------------------------------------------------------------------------------------------------------------
# Columns.


def _tabular_columns(rng: np.random.Generator, n: int) -> Dict[str, np.ndarray]:
  """20 floats with different scales (like real features), a categorical string, and a label depending on them."""
  scales = np.geomspace(0.01, 1000.0, NUM_FLOAT_FEATURES)
  floats = (rng.standard_normal((n, NUM_FLOAT_FEATURES)) * scales).astype(np.float32)
  columns = {key: floats[:, i] for i, key in enumerate(FLOAT_KEYS)}
  categories = np.array([f'city_{i:02d}' for i in range(NUM_CATEGORIES)], dtype=object)
  columns[STRING_KEY] = categories[rng.zipf(1.5, n) % NUM_CATEGORIES]
  columns[LABEL_KEY] = ((floats[:, 0] / scales[0] + floats[:, 1] / scales[1] > 0).astype(np.int64)
                        + 2 * (rng.random(n) < 0.1))
  return columns


def _image_columns(rng: np.random.Generator, n: int) -> Dict[str, np.ndarray]:
  """Smooth random colour blobs in [0, 1] (a low-resolution field upsampled), labels 0..9 tied to the mean colour."""
  low = rng.random((n, 4, 4, 3), dtype=np.float32)
  images = np.repeat(np.repeat(low, 8, axis=1), 8, axis=2)
  images = np.clip(images + rng.normal(0, 0.02, images.shape).astype(np.float32), 0.0, 1.0)
  pixels = images.reshape(n, NUM_PIXELS).astype(np.float32)
  labels = np.minimum((low.mean(axis=(1, 2, 3)) * NUM_CLASSES * 1.6 - 3).astype(np.int64), NUM_CLASSES - 1)
  return {PIXELS_KEY: pixels, LABEL_KEY: np.maximum(labels, 0)}


def _copy_rows(train: Dict[str, np.ndarray], evals: Dict[str, np.ndarray], slots: np.ndarray, sources: np.ndarray,
               num_labels: int) -> int:
  """Copies train rows into eval slots; every tenth copy gets another label. Returns the number of label conflicts."""
  for key, column in evals.items():
    column[slots] = train[key][sources]
  conflicts = np.arange(len(slots)) % 10 == 9
  labels = evals[LABEL_KEY]
  labels[slots[conflicts]] = (labels[slots[conflicts]] + 1) % num_labels
  return int(conflicts.sum())


# ---------------------------------------------------------------------------------------------------------------
# Writing.


def _list_array(column: np.ndarray) -> pa.Array:
  """One value per example (or a row of values for 2-D arrays) as the list array tfx-bsl's encoder expects."""
  width = 1 if column.ndim == 1 else column.shape[1]
  offsets = pa.array(np.arange(len(column) + 1, dtype=np.int32) * width)
  values = pa.array(column.reshape(-1), type=pa.binary() if column.dtype == object else None)
  return pa.ListArray.from_arrays(offsets, values)


def _record_batches(columns: Dict[str, np.ndarray], start: int, stop: int) -> Iterator[pa.RecordBatch]:
  for lo in range(start, stop, CHUNK_ROWS):
    hi = min(lo + CHUNK_ROWS, stop)
    names = sorted(columns)
    yield pa.RecordBatch.from_arrays([_list_array(columns[name][lo:hi]) for name in names], names)


def _masked_crc(data: bytes) -> int:
  """TFRecord's masked CRC32-C."""
  import google_crc32c  # C implementation; ships with the Beam/GCS stack.
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + 0xa282ead8) & 0xffffffff


def _framed(records: Iterable[bytes]) -> bytes:
  """TFRecord framing: length, masked CRC of the length, data, masked CRC of the data."""
  parts = []
  for record in records:
    header = struct.pack('<Q', len(record))
    parts += (header, struct.pack('<I', _masked_crc(header)), record, struct.pack('<I', _masked_crc(record)))
  return b''.join(parts)


def _write_split(root: str, split: str, columns: Dict[str, np.ndarray]) -> int:
  """Writes the split as gzipped TFRecord shards; returns the number of files. No TensorFlow needed."""
  from tfx_bsl.coders import example_coder
  n = len(columns[LABEL_KEY])
  num_shards = max(1, math.ceil(n / RECORDS_PER_SHARD))
  directory = os.path.join(root, f'Split-{split}')
  os.makedirs(directory, exist_ok=True)
  bounds = np.linspace(0, n, num_shards + 1).astype(int)
  for shard in range(num_shards):
    path = os.path.join(directory, f'data_tfrecord-{shard:05d}-of-{num_shards:05d}.gz')
    # Level 1: ~3x faster to write than zlib's default; readers see the same gzip stream format.
    with gzip.open(path, 'wb', compresslevel=1) as f:
      for batch in _record_batches(columns, bounds[shard], bounds[shard + 1]):
        f.write(_framed(example_coder.RecordBatchToExamples(batch)))
  return num_shards


def _write_parquet(root: str, split: str, columns: Dict[str, np.ndarray]) -> None:
  import pyarrow.parquet as pq
  os.makedirs(os.path.join(root, 'parquet'), exist_ok=True)
  table = pa.table({name: pa.array(values, type=pa.string() if values.dtype == object else None)
                    for name, values in sorted(columns.items())})
  pq.write_table(table, parquet_path(root, split))


def generate(data_root: str, kind: str = TABULAR, size: int = 100_000, leak_rate: float = DEFAULT_LEAK_RATE,
             seed: int = DEFAULT_SEED, force: bool = False) -> Dict[str, object]:
  """Writes (or reuses) one data set and returns its manifest (paths, sizes, injected leak)."""
  if kind not in (TABULAR, IMAGE):
    raise ValueError(f'kind must be {TABULAR!r} or {IMAGE!r}. Got {kind!r} instead.')
  if size < 10:
    raise ValueError(f'size must be at least 10 examples. Got {size!r} instead.')
  if not 0 <= leak_rate <= 1:
    raise ValueError(f'leak_rate is a fraction of eval rows and must be in [0, 1]. Got {leak_rate!r} instead.')
  # Absolute paths: checks may read the patterns from another working directory (the loss probe does).
  root = os.path.abspath(dataset_dir(data_root, kind, size, leak_rate, seed))
  cached = None if force else _cached_manifest(root)
  if cached is not None:
    return cached
  started = time.perf_counter()
  rng = np.random.default_rng(seed)
  n_train, n_eval = _split_sizes(size)
  make_columns = _tabular_columns if kind == TABULAR else _image_columns
  train, evals = make_columns(rng, n_train), make_columns(rng, n_eval)
  slots, sources = _leak(rng, n_train, n_eval, leak_rate)
  num_labels = 3 if kind == TABULAR else NUM_CLASSES
  conflicts = _copy_rows(train, evals, slots, sources, num_labels)
  shards = {TRAIN: _write_split(root, TRAIN, train), EVAL: _write_split(root, EVAL, evals)}
  if kind == TABULAR:
    _write_parquet(root, TRAIN, train)
    _write_parquet(root, EVAL, evals)
  manifest = {
      'kind': kind, 'root': root, 'size': size, 'seed': seed, 'leak_rate': leak_rate,
      'num_examples': {TRAIN: n_train, EVAL: n_eval}, 'num_files': shards,
      'examples': split_patterns(root),
      'parquet': {s: parquet_path(root, s) for s in (TRAIN, EVAL)} if kind == TABULAR else None,
      'label_key': LABEL_KEY,
      # The truth every leakage implementation must reproduce.
      'leaked_eval_rows': int(len(slots)), 'label_conflicts': conflicts,
      'bytes_on_disk': _du(root), 'generation_seconds': round(time.perf_counter() - started, 2),
  }
  _write_manifest(root, manifest)
  return manifest


def wide_dataset_dir(data_root: str, num_features: int, rows: int, seed: int) -> str:
  return os.path.join(data_root, f'{WIDE}-f{num_features}-r{rows}-seed{seed}-v{_FORMAT_VERSION}')


def wide_feature_names(num_features: int) -> Tuple[str, ...]:
  return tuple(f'w{i:05d}' for i in range(num_features))


def _wide_columns(rng: np.random.Generator, num_features: int, rows: int) -> Dict[str, np.ndarray]:
  """`num_features` float features of different scales (like real features) and a 0/1 label, drawn from the same
  distributions whatever the split: any skew finding on them is a false alarm."""
  scales = np.geomspace(0.01, 1000.0, num_features)
  floats = (rng.standard_normal((rows, num_features)) * scales).astype(np.float32)
  columns = {key: floats[:, i] for i, key in enumerate(wide_feature_names(num_features))}
  columns[LABEL_KEY] = (rng.random(rows) < 0.3).astype(np.int64)
  return columns


def generate_wide(data_root: str, num_features: int = DEFAULT_WIDE_FEATURES, rows: int = DEFAULT_WIDE_ROWS,
                  seed: int = DEFAULT_SEED, force: bool = False) -> Dict[str, object]:
  """Writes (or reuses) a wide clean split, `rows` examples per split, in ExampleGen's layout; returns its manifest."""
  if num_features < 1 or rows < 2:
    raise ValueError(f'wide data needs at least 1 feature and 2 rows per split. Got {num_features!r} features and '
                     f'{rows!r} rows instead.')
  root = os.path.abspath(wide_dataset_dir(data_root, num_features, rows, seed))
  cached = None if force else _cached_manifest(root)
  if cached is not None:
    return cached
  started = time.perf_counter()
  rng = np.random.default_rng(seed)
  shards = {split: _write_split(root, split, _wide_columns(rng, num_features, rows)) for split in (TRAIN, EVAL)}
  manifest = {
      'kind': WIDE, 'root': root, 'size': 2 * rows, 'seed': seed, 'num_features': num_features,
      'rows_per_split': rows, 'num_examples': {TRAIN: rows, EVAL: rows}, 'num_files': shards,
      'examples': split_patterns(root), 'parquet': None, 'label_key': LABEL_KEY,
      # A clean split: nothing leaked, no skew to find.
      'leaked_eval_rows': 0, 'label_conflicts': 0,
      'bytes_on_disk': _du(root), 'generation_seconds': round(time.perf_counter() - started, 2),
  }
  _write_manifest(root, manifest)
  return manifest


def _write_manifest(root: str, manifest: Dict[str, object]) -> None:
  """Written last and atomically: its presence means a complete data set (what `_cached_manifest` relies on)."""
  manifest_file = os.path.join(root, MANIFEST)
  tmp = manifest_file + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
  os.replace(tmp, manifest_file)


def _cached_manifest(root: str) -> Optional[Dict[str, object]]:
  """The manifest of data already generated under `root` (same parameters, same rows), or None."""
  manifest_file = os.path.join(root, MANIFEST)
  if not os.path.exists(manifest_file):
    return None
  with open(manifest_file) as f:
    return _located(json.load(f), root)


def _located(manifest: Dict[str, object], root: str) -> Dict[str, object]:
  """The cached manifest with its paths pointing where the data set is now (the cache may have moved)."""
  manifest = dict(manifest, root=root, examples=split_patterns(root))
  if manifest['parquet']:
    manifest['parquet'] = {s: parquet_path(root, s) for s in (TRAIN, EVAL)}
  return manifest


def _du(root: str) -> int:
  return sum(os.path.getsize(os.path.join(d, name)) for d, _, names in os.walk(root) for name in names)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data-root', default=os.path.join(os.path.dirname(__file__), 'out', 'data'))
  parser.add_argument('--kind', choices=(TABULAR, IMAGE, WIDE), default=TABULAR)
  parser.add_argument('--size', type=int, default=100_000)
  parser.add_argument('--features', type=int, default=DEFAULT_WIDE_FEATURES, help='wide data: number of features')
  parser.add_argument('--rows', type=int, default=DEFAULT_WIDE_ROWS, help='wide data: examples per split')
  parser.add_argument('--leak-rate', type=float, default=DEFAULT_LEAK_RATE)
  parser.add_argument('--seed', type=int, default=DEFAULT_SEED)
  parser.add_argument('--force', action='store_true')
  args = parser.parse_args(argv)
  if args.kind == WIDE:
    print(json.dumps(generate_wide(args.data_root, args.features, args.rows, args.seed, args.force), indent=1))
    return
  print(json.dumps(generate(args.data_root, args.kind, args.size, args.leak_rate, args.seed, args.force), indent=1))


if __name__ == '__main__':
  main()
