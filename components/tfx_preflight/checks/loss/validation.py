"""What model.fit validates on, as Trainer will run it: the files its validation data reads, how many batches and
examples one validation pass yields, and validation taken from the training data.

Runs inside the probe on the arguments of the intercepted fit call (loss_trainer.FitCall.arguments), before the
battery reads any batch of it. The files come from the validation dataset's own graph: once data_accessor,
TFRecordDataset or list_files has globbed them, tf.data holds the file names as constants, so this names what
Trainer's fit would read whatever helper the module calls. Validation data without files (in-memory arrays, a
generator) is compared with the training data by content hashes of a bounded sample instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set

from tfx_preflight.checks.loss import keras_api as loss_keras
from tfx_preflight.checks.loss.recorder import SEVERITY_BLOCK, SEVERITY_WARN, Probe

VALIDATION_READS_TRAIN = 'validation_reads_train'
EMPTY_VALIDATION = 'empty_validation'
VALIDATION_SPLIT_OF_TRAIN = 'validation_split_of_train'
SMALL_VALIDATION = 'small_validation'
ENDLESS_VALIDATION = 'endless_validation'

# Bounds of the one validation pass the probe counts: a larger or endless (repeated) pass is reported as not counted.
PASS_ROWS = 100_000
PASS_SECONDS = 10.0
# A validation pass covering less of the eval split than this warns.
SMALL_FRACTION = 0.1
# Rows hashed on each side when validation data has no files; a validation sample this much made of training rows is
# training data.
HASH_ROWS = 20_000
TRAIN_FRACTION = 0.5
# String constants of a dataset graph looked at as possible file names (a vocabulary may hold thousands).
_MAX_CONSTANTS = 2_000

_CONSEQUENCE = {
    loss_keras.KERAS_3: ('With Keras 3 (the Keras this run_fn trains with) Trainer trains normally and reports no val_loss at '
              'all: history holds no val_* entry and callbacks monitoring val_loss (EarlyStopping, ModelCheckpoint) '
              'have nothing to monitor.'),
    loss_keras.TF_KERAS: ('With tf_keras (the Keras this run_fn trains with) model.fit raises "Expected input data to '
                          'be non-empty." when it validates at the end of the first epoch: Trainer fails after a whole '
                          'epoch.'),
}
# Keras 2 (TF 2.15's tf.keras) is the code tf_keras was forked from: the same error (not observed here: no TF 2.15).
_CONSEQUENCE[loss_keras.KERAS_2] = _CONSEQUENCE[loss_keras.TF_KERAS].replace('With tf_keras', 'With Keras 2')


@dataclasses.dataclass
class ValidationPass:
  """One validation pass as Keras runs it: batches and examples, or None when it did not end within the bounds."""
  batches: Optional[int]
  examples: Optional[int]
  row_hashes: Set[bytes] = dataclasses.field(default_factory=set)


def check_validation(probe: Probe, call: Any, fn_args: Any, name: str) -> bool:
  """Findings and probe.info (validation_files / _batches / _examples) about what fit validates on. True when the
  validation data yields batches the battery can evaluate."""
  args = call.arguments
  validation = args.get('validation_data')
  if validation is None:
    _without_validation_data(probe, args, name)
    return False
  import tensorflow as tf
  request = probe.request
  files = source_files(validation) if isinstance(validation, tf.data.Dataset) else []
  train_files, eval_files = _expand(fn_args.train_files), _expand(fn_args.eval_files)
  known = train_files | eval_files
  probe.info['validation_files'] = sorted(f for f in files if f in known or not _under(f, request.transform_graph_uri))
  steps = args.get('validation_steps')
  from_fn_args = steps is not None and steps == fn_args.eval_steps
  if from_fn_args:
    probe.info['validation_steps'] = "fn_args.eval_steps (Trainer's eval_args.num_steps)"
  elif steps is not None:
    probe.info['validation_steps'] = int(steps)
  if steps is None and _endless(validation):
    _block_endless(probe, name, files)
    probe.info['validation_batches'] = probe.info['validation_examples'] = None
    return True
  counted = count_pass(validation, None if from_fn_args else steps, _batch_size(args), hash_rows=not files)
  probe.info['validation_batches'], probe.info['validation_examples'] = counted.batches, counted.examples
  _check_reads_train(probe, name, files, train_files - eval_files, counted, args)
  if counted.batches == 0:
    return not _empty(probe, call, name, files, fn_args)
  _check_small(probe, name, counted, steps, from_fn_args, fn_args)
  return True


# ---------------------------------------------------------------------------------------------------------------------
# Where validation data comes from.


def source_files(dataset: Any) -> List[str]:
  """Files a tf.data pipeline reads: the string constants of its serialized graph (functions included) that name an
  existing file or a glob matching some."""
  import tensorflow as tf
  policy = tf.data.experimental.ExternalStatePolicy.IGNORE  # A py_function map must not stop the walk.
  try:
    graph = tf.compat.v1.GraphDef.FromString(dataset._as_serialized_graph(external_state_policy=policy).numpy())
  except Exception:  # A dataset TF cannot serialize: its files are unknown (the row hashes still run).
    return []
  nodes = list(graph.node) + [node for function in graph.library.function for node in function.node_def]
  files: Set[str] = set()
  for value in _string_constants(nodes)[:_MAX_CONSTANTS]:
    files.update(_matching_files(value))
  return sorted(files)


def _string_constants(nodes: Iterable[Any]) -> List[str]:
  import tensorflow as tf
  values = []
  for node in nodes:
    tensor = node.attr['value'].tensor if node.op == 'Const' and 'value' in node.attr else None
    if tensor is None or tensor.dtype != tf.string.as_datatype_enum:
      continue
    for raw in tensor.string_val:
      text = raw.decode('utf-8', 'replace')
      if '/' in text and len(text) < 4096 and text not in values:
        values.append(text)
  return values


def _matching_files(value: str) -> List[str]:
  import tensorflow as tf
  try:
    if any(c in value for c in '*?['):
      return [f for f in tf.io.gfile.glob(value) if not tf.io.gfile.isdir(f)]
    return [value] if tf.io.gfile.exists(value) and not tf.io.gfile.isdir(value) else []
  except (tf.errors.OpError, ValueError):
    return []


def _expand(patterns: Sequence[str]) -> Set[str]:
  """Every file FnArgs' train_files / eval_files patterns match, as the strings the reader's glob returns."""
  import tensorflow as tf
  files: Set[str] = set()
  for pattern in patterns or []:
    files.update(tf.io.gfile.glob(pattern))
  return files


def _under(path: str, directory: Optional[str]) -> bool:
  """Assets of a transform graph (vocabularies) are constants of a dataset mapping through it, not data it reads."""
  return bool(directory) and os.path.abspath(path).startswith(os.path.abspath(directory).rstrip('/') + '/')


def _shown(files: Sequence[str], limit: int = 3) -> str:
  names = ', '.join(files[:limit])
  return names + (f' and {len(files) - limit} more' if len(files) > limit else '')


def _check_reads_train(probe: Probe, name: str, files: List[str], train_only: Set[str], counted: ValidationPass,
                       args: Dict[str, Any]) -> None:
  """Validation on training files (a copy-paste of fn_args.train_files) or, without files, on training rows."""
  read_train = sorted(f for f in files if f in train_only)
  if read_train:
    probe.add(VALIDATION_READS_TRAIN, SEVERITY_BLOCK,
              f'The validation_data {name}() passes to model.fit reads training files: {_shown(read_train)} '
              f'({len(read_train)} of the {len(files)} files it reads, {len(read_train) / len(files):.0%}). '
              "Trainer's val_loss would track its training loss and hide overfitting: build the validation dataset "
              'from fn_args.eval_files.', files=read_train[:20], fraction=round(len(read_train) / len(files), 4))
    return
  if files or not counted.row_hashes:
    return
  training = _training_row_hashes(args)
  shared = len(counted.row_hashes & training)
  fraction = shared / len(counted.row_hashes)
  if training and fraction >= TRAIN_FRACTION:
    probe.add(VALIDATION_READS_TRAIN, SEVERITY_BLOCK,
              f'The validation_data {name}() passes to model.fit holds training examples: {shared} of '
              f'{len(counted.row_hashes)} distinct validation examples sampled ({fraction:.0%}) are also in the data '
              "fit trains on. Trainer's val_loss would track its training loss and hide overfitting: validate on "
              'fn_args.eval_files.', fraction=round(fraction, 4))


def _training_row_hashes(args: Dict[str, Any]) -> Set[bytes]:
  """Content hashes of up to HASH_ROWS training rows (fit's x, with y when x holds no labels)."""
  x, y = args.get('x'), args.get('y')
  data = (x, y) if y is not None else x
  return count_pass(data, None, _batch_size(args), hash_rows=True, row_limit=HASH_ROWS).row_hashes


# ---------------------------------------------------------------------------------------------------------------------
# How much it validates on.


def _batch_size(args: Dict[str, Any]) -> int:
  """Keras' batch size for in-memory validation data: validation_batch_size, else batch_size, else 32."""
  return int(args.get('validation_batch_size') or args.get('batch_size') or 32)


def _as_dataset(data: Any, batch_size: int) -> Any:
  """A tf.data.Dataset of what Keras iterates: the dataset itself, or (x, y[, w]) arrays batched as Keras does."""
  import tensorflow as tf
  if isinstance(data, tf.data.Dataset):
    return data
  if isinstance(data, (tuple, list)) and len(data) in (2, 3):
    return tf.data.Dataset.from_tensor_slices(tuple(data)).batch(batch_size)
  return None


def count_pass(data: Any, steps: Optional[int], batch_size: int, hash_rows: bool = False,
               row_limit: int = PASS_ROWS, seconds: float = PASS_SECONDS) -> ValidationPass:
  """Batches and examples of one pass over `data` (at most `steps` batches), bounded by rows and time: None for both
  when the bound ended it first (an endless, repeated dataset). With hash_rows, the content hashes of the rows seen
  (up to HASH_ROWS)."""
  dataset = _as_dataset(data, batch_size)
  if dataset is None:  # A generator or a Keras PyDataset: counting would consume it.
    return ValidationPass(None, None)
  if steps is not None:
    dataset = dataset.take(int(steps))
  counted = ValidationPass(0, 0)
  deadline = time.monotonic() + seconds
  for element in dataset:
    rows = _rows(element)
    counted.batches += 1
    counted.examples += rows
    if hash_rows and len(counted.row_hashes) < HASH_ROWS:
      counted.row_hashes.update(_row_hashes(element, rows))
    if counted.examples >= row_limit or time.monotonic() > deadline:
      return ValidationPass(None, None, counted.row_hashes)
  return counted


def _rows(element: Any) -> int:
  import tensorflow as tf
  first = tf.nest.flatten(element, expand_composites=False)[0]
  if isinstance(first, tf.SparseTensor):
    return int(first.dense_shape[0])
  shape = getattr(first, 'shape', None)
  return int(shape[0]) if shape is not None and len(shape) and shape[0] is not None else 1


def _row_hashes(element: Any, rows: int) -> Set[bytes]:
  """One 16-byte hash per example of a batch: every feature's (and the label's) values of that row, in name order.
  Empty when a value cannot be laid out by rows."""
  import numpy as np
  import tensorflow as tf
  columns = []
  for value in tf.nest.flatten(element, expand_composites=False):
    if isinstance(value, tf.SparseTensor):
      value = tf.sparse.to_dense(value, default_value='' if value.dtype == tf.string else 0)
    elif isinstance(value, tf.RaggedTensor):
      value = value.to_tensor()
    array = np.asarray(value)
    if array.ndim == 0 or array.shape[0] != rows:
      return set()
    if array.dtype.kind in 'OSU':
      columns.append([b'\x1f'.join(v if isinstance(v, bytes) else str(v).encode() for v in np.ravel(array[i]))
                      for i in range(rows)])
    else:
      flat = np.ascontiguousarray(array.reshape(rows, -1).astype(np.float64))
      columns.append([flat[i].tobytes() for i in range(rows)])
  return {hashlib.blake2b(b'\x1e'.join(parts), digest_size=16).digest() for parts in zip(*columns)}


def _endless(validation: Any) -> bool:
  import tensorflow as tf
  return isinstance(validation, tf.data.Dataset) and int(validation.cardinality()) == int(tf.data.INFINITE_CARDINALITY)


def _block_endless(probe: Probe, name: str, files: List[str]) -> None:
  """A validation dataset that repeats forever, without validation_steps: Keras validates until the data ends."""
  where = f' (reading {_shown(files)})' if files else ''
  probe.add(ENDLESS_VALIDATION, SEVERITY_BLOCK,
            f'The validation_data {name}() passes to model.fit repeats forever{where} and fit gets no '
            'validation_steps: Keras (Keras 3 and tf_keras alike) validates until the data ends, so Trainer hangs at '
            'the end of the first epoch. Pass validation_steps=fn_args.eval_steps, or build the eval dataset with '
            'num_epochs=1.')


def _eval_examples(probe: Probe) -> Optional[int]:
  counts = probe.request.split_examples or {}
  values = [counts.get(split) for split in probe.request.eval_splits]
  return sum(values) if values and all(isinstance(v, int) for v in values) else None


def _sampled(fn_args: Any, probe: Probe) -> bool:
  """FnArgs.eval_files are the probe's sample of the raw eval split through the transform graph, not the split."""
  return list(fn_args.eval_files) != [probe.request.examples[s] for s in probe.request.eval_splits]


def _record_count(patterns: Sequence[str]) -> int:
  """Records in the probe's small sample files (at most a few hundred)."""
  import tensorflow as tf
  files = sorted(_expand(patterns))
  compression = 'GZIP' if files and files[0].endswith('.gz') else ''
  return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type=compression)) if files else 0


def _empty(probe: Probe, call: Any, name: str, files: List[str], fn_args: Any) -> bool:
  """Zero validation batches: blocks with what Trainer will really do, unless only the probe's sample was short."""
  total = _eval_examples(probe)
  if _sampled(fn_args, probe) and (total is None or total > _record_count(fn_args.eval_files)):
    probe.info['validation_note'] = ("validation yields no batch from the probe's sample of the eval split through "
                                     'the transform graph; give Preflight the transformed examples to count it')
    return False
  where = f' (reading {_shown(files)})' if files else ''
  of_split = f' of the {total:,} eval examples' if total is not None else ''
  probe.add(EMPTY_VALIDATION, SEVERITY_BLOCK,
            f'The validation_data {name}() passes to model.fit yields no batch{where}{of_split}: a batch larger than '
            'the split with drop_remainder / drop_final_batch, a filter that drops every example, or files that hold '
            f'none. {_CONSEQUENCE.get(call.keras, _CONSEQUENCE[loss_keras.KERAS_3])}', keras=call.keras)
  return True


def _check_small(probe: Probe, name: str, counted: ValidationPass, steps: Optional[int], from_fn_args: bool,
                 fn_args: Any) -> None:
  """A validation pass over a small part of the eval split (validation_steps set too low, a take())."""
  total = _eval_examples(probe)
  if counted.examples is None or total is None or from_fn_args or _sampled(fn_args, probe):
    return
  if counted.examples >= SMALL_FRACTION * total:
    return
  by = f' (validation_steps={int(steps)})' if steps is not None else ''
  probe.add(SMALL_VALIDATION, SEVERITY_WARN,
            f'Validation uses {counted.examples:,} of {total:,} eval examples{by}: the validation_data '
            f'{name}() passes to model.fit covers {counted.examples / total:.1%} of the eval split, so val_loss is '
            'measured on a small, fixed part of it.', validation_examples=counted.examples, eval_examples=total)


def _without_validation_data(probe: Probe, args: Dict[str, Any], name: str) -> None:
  """No validation_data: validation_split on in-memory arrays validates on the last rows of train; otherwise fit
  validates on nothing (Evaluator may still evaluate)."""
  import tensorflow as tf
  split = float(args.get('validation_split') or 0.0)
  x = args.get('x')
  if split > 0 and x is not None and not isinstance(x, tf.data.Dataset):
    rows = _rows(x)
    held_out = rows - int(rows * (1.0 - split))
    probe.info.update(validation_files=[], validation_examples=held_out,
                      validation_batches=math.ceil(held_out / _batch_size(args)))
    probe.add(VALIDATION_SPLIT_OF_TRAIN, SEVERITY_WARN,
              f'{name}() passes validation_split={split:g} to model.fit and no validation_data: Keras validates on '
              f'the last {held_out:,} of the {rows:,} training rows, in their order, not on the eval split '
              '(fn_args.eval_files). Pass the eval split as validation_data.', validation_split=split)
    return
  probe.info.update(validation_files=[], validation_batches=0, validation_examples=0)
  probe.info['eval_path'] = (f'{name}() passes no validation_data to model.fit: Trainer reports no val_loss '
                             '(Evaluator may still evaluate the model on the eval split)')
