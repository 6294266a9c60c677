"""TF / TFX helpers of the loss probe: the data Trainer's input_fn gets, and a TF 2.16 autograph workaround."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple


def input_fn_argument(schema_path: Optional[str], transform_graph_uri: Optional[str]) -> Any:
  """What TFX passes as the third argument: a TFTransformOutput with Transform, else the schema."""
  if transform_graph_uri:
    import tensorflow_transform as tft
    return tft.TFTransformOutput(transform_graph_uri)
  if schema_path:
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils
    return io_utils.parse_pbtxt_file(schema_path, schema_pb2.Schema())
  return None


def _first_record_keys(pattern: str) -> set:
  import tensorflow as tf
  files = sorted(tf.io.gfile.glob(pattern))
  if not files:
    raise ValueError(f'No files match {pattern}.')
  compression = 'GZIP' if files[0].endswith('.gz') else ''
  for record in tf.data.TFRecordDataset(files[:1], compression_type=compression).take(1):
    return set(tf.train.Example.FromString(record.numpy()).features.feature)
  return set()


def _feature(values: Any) -> Any:
  import numpy as np
  import tensorflow as tf
  v = np.asarray(values).reshape(-1)
  if v.dtype.kind == 'f':
    return tf.train.Feature(float_list=tf.train.FloatList(value=v.tolist()))
  if v.dtype.kind in 'iub':
    return tf.train.Feature(int64_list=tf.train.Int64List(value=v.astype(np.int64).tolist()))
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[bytes(x) for x in v.tolist()]))


def _transform_eagerly(tft_output: Any, serialized: Any) -> Dict[str, Any]:
  import numpy as np
  import tensorflow as tf
  transformed = tft_output.transform_raw_features(tf.io.parse_example(serialized, tft_output.raw_feature_spec()))
  columns = {}
  for name in sorted(transformed):
    value = transformed[name]
    if isinstance(value, tf.SparseTensor):
      value = tf.RaggedTensor.from_sparse(value)
    columns[name] = value.to_list() if isinstance(value, tf.RaggedTensor) else np.asarray(value)
  return columns


def _transform_in_a_graph(tft_output: Any, serialized: Any) -> Dict[str, Any]:
  """The TF1 way, as Transform's own executor applies a TF1 graph: a Session over a graph with the raw parse."""
  import numpy as np
  import tensorflow as tf
  with tf.Graph().as_default() as graph:
    records = tf.compat.v1.placeholder(tf.string, [None])
    transformed = tft_output.transform_raw_features(tf.io.parse_example(records, tft_output.raw_feature_spec()))
    with tf.compat.v1.Session(graph=graph) as session:
      session.run(tf.compat.v1.tables_initializer())
      values = session.run(transformed, {records: serialized})
  columns = {}
  n = len(serialized)
  for name in sorted(values):
    value = values[name]
    if isinstance(value, tf.compat.v1.SparseTensorValue):
      rows: List[list] = [[] for _ in range(n)]
      for index, v in zip(value.indices, value.values):
        rows[int(index[0])].append(v)
      columns[name] = [np.asarray(r) for r in rows]
    else:
      columns[name] = np.asarray(value)
  return columns


def transform_raw_records(tft_output: Any, serialized: Any) -> Dict[str, Any]:
  """A batch of serialized raw tf.Examples through the transform graph: output name -> values by row."""
  try:
    return _transform_eagerly(tft_output, serialized)
  except RuntimeError:  # A TF1 transform graph (e.g. TFX's testdata) loads in graph mode only.
    return _transform_in_a_graph(tft_output, serialized.numpy())


def transformed_pattern(tft_output: Any, pattern: str, out_dir: str, limit: int) -> str:
  """The split as Trainer sees it with Transform: the first `limit` raw examples through the transform graph, written
  as transformed tf.Examples. Examples that already carry every transformed feature are used as they are."""
  import tensorflow as tf
  transformed_spec = tft_output.transformed_feature_spec()
  if set(transformed_spec) <= _first_record_keys(pattern):
    return pattern
  files = sorted(tf.io.gfile.glob(pattern))
  compression = 'GZIP' if files[0].endswith('.gz') else ''
  serialized = next(iter(tf.data.TFRecordDataset(files, compression_type=compression).take(limit).batch(limit)))
  columns = transform_raw_records(tft_output, serialized)
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, 'transformed.gz')
  with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type='GZIP')) as writer:
    for i in range(int(serialized.shape[0])):
      feature = {name: _feature(column[i]) for name, column in columns.items()}
      writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
  return path


def split_batches(dataset: Any, count: int, weights: Optional[List[Any]] = None) -> List[Tuple[Any, Any]]:
  """Up to `count` (features, labels) batches; a third element (sample weights, as fit applies them) goes to
  `weights` when given (None for a batch without one)."""
  batches = []
  for element in (dataset.take(count) if hasattr(dataset, 'take') else dataset[:count]):
    if not isinstance(element, (tuple, list)) or len(element) < 2:
      raise ValueError('input_fn must yield (features, label) pairs, as Trainer needs for model.fit; '
                       f'it yielded {type(element).__name__}.')
    batches.append((element[0], element[1]))
    if weights is not None:
      weights.append(element[2] if len(element) > 2 else None)
  if not batches:
    raise ValueError('input_fn yielded no batch: the split is empty or every example was filtered out.')
  return batches


def autograph_skips_tf_keras() -> None:
  """TF 2.16's autograph converts tf_keras' own code (later releases list it beside `keras` as DoNotConvert). With
  TF_USE_LEGACY_KERAS=1, which tensorflow_transform sets on import and so every TFX pipeline process has, the first
  model.evaluate then runs all of tf_keras through autograph: 24 s instead of 0.6 s (measured, demo CNN)."""
  from tensorflow.python.autograph.core import config
  if not any(getattr(rule, '_prefix', None) == 'tf_keras' for rule in config.CONVERSION_RULES):
    config.CONVERSION_RULES = (config.DoNotConvert('tf_keras'), *config.CONVERSION_RULES)



def fit_batches(x: Any, y: Any, batch_size: Optional[int], count: int,
                weights: Optional[List[Any]] = None) -> List[Tuple[Any, Any]]:
  """Up to `count` (features, labels) batches of what model.fit was given: a tf.data.Dataset (or any iterable) of
  (features, labels[, weights]) elements, or arrays/dicts `x` with labels `y` (batched by `batch_size`, Keras'
  default 32), or a (x, y[, weights]) tuple as validation_data. Weights of the elements go to `weights`."""
  import tensorflow as tf
  if y is None and isinstance(x, (tuple, list)) and len(x) in (2, 3) and not isinstance(x[0], (int, float)):
    if len(x) == 3 and weights is not None:
      weights.extend(_array_batches(x[2], batch_size or 32, count))
    x, y = x[0], x[1]
  if y is not None:
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size or 32)
    return split_batches(dataset, count)
  if isinstance(x, tf.data.Dataset):
    return split_batches(x, count, weights)
  if hasattr(x, '__iter__') or hasattr(x, '__getitem__'):
    batches = []
    for i, element in enumerate(x):
      if i >= count:
        break
      batches.append(element)
    return split_batches(batches, count, weights)
  raise ValueError(f'model.fit got x of type {type(x).__name__} without labels; the loss check reads datasets of '
                   '(features, labels), or arrays with y.')


def _array_batches(values: Any, batch_size: int, count: int) -> List[Any]:
  import numpy as np
  array = np.asarray(values)
  return [array[i:i + batch_size] for i in range(0, min(len(array), batch_size * count), batch_size)]
