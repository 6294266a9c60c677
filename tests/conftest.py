"""Shared test helpers: real tf.Example TFRecord files laid out the way ExampleGen writes them."""

import os
from typing import Dict, Iterable, List, Mapping, Sequence

import numpy as np
import pytest
import tensorflow as tf

os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def to_example(row: Mapping[str, object]) -> tf.train.Example:
  """A tf.Example from a dict of scalars or lists (float, int or str/bytes)."""
  features = {}
  for name, value in row.items():
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if values and isinstance(values[0], (str, bytes)):
      features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[v.encode() if isinstance(v, str) else v for v in values]))
    elif values and isinstance(values[0], (int, np.integer)) and not isinstance(values[0], bool):
      features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
    else:
      features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))
  return tf.train.Example(features=tf.train.Features(feature=features))


def write_tfrecords(path: str, rows: Iterable[Mapping[str, object]], gzip: bool = True) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  options = tf.io.TFRecordOptions(compression_type='GZIP' if gzip else '')
  with tf.io.TFRecordWriter(path, options) as writer:
    for row in rows:
      writer.write(to_example(row).SerializeToString())
  return path


def write_splits(root: str, splits: Mapping[str, Sequence[Mapping[str, object]]]) -> Dict[str, str]:
  """Writes root/Split-<name>/data_tfrecord-00000-of-00001.gz per split; returns split -> file pattern."""
  patterns = {}
  for split, rows in splits.items():
    write_tfrecords(os.path.join(root, f'Split-{split}', 'data_tfrecord-00000-of-00001.gz'), rows)
    patterns[split] = os.path.join(root, f'Split-{split}', '*')
  return patterns


def tabular_rows(n: int, seed: int, scale: float = 1.0, offset: int = 0) -> List[Dict[str, object]]:
  """n rows of 4 float features, a categorical string and an int label; `scale` rescales the floats."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 4))
  colors = np.array(['red', 'green', 'blue'])[rng.integers(0, 3, n)]
  # Noisy: a label computed exactly from f0 + f1, both kept, is the derived label the label-proxy check blocks.
  labels = (x[:, 0] + x[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype(int)
  return [{'f0': x[i, 0] * scale, 'f1': x[i, 1] * scale, 'f2': x[i, 2] * scale, 'f3': x[i, 3] * scale,
           'color': str(colors[i]), 'id': i + offset, 'label': int(labels[i])} for i in range(n)]


@pytest.fixture
def beam_factory():
  """A make_pipeline() for DirectRunner in-process, as the CLI builds it."""
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  return lambda: beam.Pipeline(options=PipelineOptions([]))


def without_progress(err: str) -> str:
  """stderr of a CLI run without its progress lines: what remains is the error reason, if any."""
  from tfx_preflight.report import progress
  return '\n'.join(line for line in err.splitlines() if not progress.is_progress_line(line))
