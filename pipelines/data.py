"""The demo's image task: scikit-learn's bundled digits, as 32x32x3 colour images, written per scenario.

Nothing is downloaded: `load_digits` ships inside scikit-learn. Each 8x8 grey digit (0..16) is upscaled 4x to 32x32,
drawn in a seeded random colour on a seeded random background with a little sensor noise, and stored as 8-bit pixel
values (0..255). The data-preparation step then scales pixels to [0, 1] — in every split when done right, in train
only in the `normalize_train_only` scenario, which is how that bug happens in practice (a preprocessing script or
notebook cell rescales the training set and the evaluation set is exported from the raw source).

Splits are pre-split input folders (`<data_root>/train/`, `<data_root>/eval/`) read by ImportExampleGen with an
`input_config` of train/eval patterns: that is how teams feed prepared splits to TFX, and it is the only way to give
the splits different preprocessing or to leak rows across them (ExampleGen's own hash split sends byte-identical
records to the same split).

The `label_proxy` scenario adds a scalar feature, `review_queue`: the queue of the labelling tool each image was routed
to *after* it was labelled, one queue per digit. It is joined into the export because it sits in the same table, and
a model that gets it as an input learns the queue, not the digit: at prediction time no image has been reviewed yet.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Iterable, Optional

import numpy as np

# The one directory every demo run writes under (git-ignored); defined here, TFX-free, so the demo's launcher starts fast.
DEFAULT_RUNS_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tfx_preflight_runs')

PIXELS_KEY = 'pixels'
LABEL_KEY = 'label'
IMAGE_SHAPE = (32, 32, 3)
NUM_PIXELS = int(np.prod(IMAGE_SHAPE))
NUM_CLASSES = 10
TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'eval'
DATA_FILE = 'data.tfrecord.gz'

SCENARIOS = ('clean', 'normalize_train_only', 'leaky_split', 'zero_loss', 'label_proxy')
# label_proxy: the labelling tool's review queue, assigned after a digit was labelled (one queue per digit, ids 1..10);
# 0 means "not reviewed yet", which is what every image has when the model is asked to classify it.
PROXY_KEY = 'review_queue'
NUM_QUEUES = NUM_CLASSES + 1
UNREVIEWED_QUEUE = 0
DEFAULT_SEED = 7
DEFAULT_EVAL_FRACTION = 0.2
# leaky_split: share of eval replaced by augmented copies of train rows (none of them an exact copy): augmentation
# run before the split, as the README warns.
DEFAULT_LEAK_FRACTION = 0.5
# Std-dev of the noise on the copies, in [0, 1] pixel units: about half an 8-bit grey level, the size of a re-encode
# or resize round trip, invisible to the eye; each copy is also made brighter or darker by up to COPY_BRIGHTNESS.
DEFAULT_COPY_NOISE = 0.002
COPY_BRIGHTNESS = 0.03


@dataclasses.dataclass
class Splits:
  """Train and eval arrays: pixels (n, 3072) float32, labels (n,) int64."""
  train_pixels: np.ndarray
  train_labels: np.ndarray
  eval_pixels: np.ndarray
  eval_labels: np.ndarray
  # Per eval row: -1 for a genuinely held-out row, else the index of the train row it was copied from.
  eval_copied_from: np.ndarray
  # label_proxy only: the review queue of each row (a recoding of its label), written as feature PROXY_KEY.
  train_queue: Optional[np.ndarray] = None
  eval_queue: Optional[np.ndarray] = None


def raw_images(seed: int = DEFAULT_SEED, limit: Optional[int] = None) -> tuple:
  """All digits as (n, 3072) float32 pixel values in 0..255 (integers) and (n,) int64 labels, in a seeded order."""
  from sklearn.datasets import load_digits  # Imported here: only data generation needs scikit-learn.
  digits = load_digits()
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(digits.target))
  if limit is not None:
    order = order[:limit]
  grey = digits.images[order] / 16.0                                   # (n, 8, 8) in [0, 1]
  big = np.kron(grey, np.ones((4, 4)))                                 # (n, 32, 32) nearest-neighbour upscale
  n = len(order)
  foreground = rng.uniform(0.55, 1.0, size=(n, 1, 1, 3))
  background = rng.uniform(0.0, 0.3, size=(n, 1, 1, 3))
  ink = big[..., None]
  images = ink * foreground + (1.0 - ink) * background
  images = images + rng.normal(0.0, 0.03, size=images.shape)
  pixels = np.clip(np.round(images * 255.0), 0, 255).astype(np.float32).reshape(n, NUM_PIXELS)
  return pixels, digits.target[order].astype(np.int64)


def normalize(pixels: np.ndarray) -> np.ndarray:
  """The data-preparation step: 8-bit pixel values to [0, 1]."""
  return (pixels / 255.0).astype(np.float32)


def make_splits(scenario: str, seed: int = DEFAULT_SEED, eval_fraction: float = DEFAULT_EVAL_FRACTION,
                leak_fraction: float = DEFAULT_LEAK_FRACTION, copy_noise: float = DEFAULT_COPY_NOISE,
                limit: Optional[int] = None) -> Splits:
  """The prepared train/eval splits of `scenario` (deterministic for a given seed)."""
  if scenario not in SCENARIOS:
    raise ValueError(f'scenario must be one of {", ".join(SCENARIOS)}. Got {scenario!r} instead.')
  pixels, labels = raw_images(seed, limit)
  n_eval = int(round(len(labels) * eval_fraction))
  train_raw, train_labels = pixels[n_eval:], labels[n_eval:]
  eval_raw, eval_labels = pixels[:n_eval], labels[:n_eval]
  copied_from = np.full(n_eval, -1, dtype=np.int64)

  train_pixels = normalize(train_raw)
  if scenario == 'normalize_train_only':
    eval_pixels = eval_raw.astype(np.float32)  # The bug: eval exported from the raw source, still 0..255.
  else:
    eval_pixels = normalize(eval_raw)

  if scenario == 'leaky_split':
    # Rows duplicated in the source (re-exports, re-encoded copies) land in both folders after a re-split.
    rng = np.random.default_rng(seed + 1)
    n_copies = int(round(n_eval * leak_fraction))
    slots = rng.choice(n_eval, size=n_copies, replace=False)
    sources = rng.choice(len(train_labels), size=n_copies, replace=False)
    copies = train_pixels[sources].copy()
    noise = rng.normal(0.0, copy_noise, size=copies.shape) + rng.uniform(-COPY_BRIGHTNESS, COPY_BRIGHTNESS,
                                                                         size=(n_copies, 1))
    copies = np.clip(copies + noise, 0.0, 1.0).astype(np.float32)
    eval_pixels = eval_pixels.copy()
    eval_labels = eval_labels.copy()
    eval_pixels[slots] = copies
    eval_labels[slots] = train_labels[sources]
    copied_from[slots] = sources
  splits = Splits(train_pixels, train_labels, eval_pixels.astype(np.float32), eval_labels, copied_from)
  if scenario == 'label_proxy':
    # The export joins the labelling tool's table: each image carries the queue it was routed to after labelling.
    splits.train_queue, splits.eval_queue = review_queue(train_labels), review_queue(eval_labels)
  return splits


def review_queue(labels: np.ndarray) -> np.ndarray:
  """The queue a labelled digit is routed to: a fixed one-to-one recoding of the label into 1..10."""
  return (3 * labels + 1) % NUM_CLASSES + 1


def _examples(pixels: np.ndarray, labels: np.ndarray, queues: Optional[np.ndarray] = None) -> Iterable[bytes]:
  import tensorflow as tf  # Heavy import, only when writing.
  for i, (row, label) in enumerate(zip(pixels, labels)):
    feature = {
        PIXELS_KEY: tf.train.Feature(float_list=tf.train.FloatList(value=row.tolist())),
        LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
    }
    if queues is not None:
      feature[PROXY_KEY] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(queues[i])]))
    yield tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_tfrecords(path: str, pixels: np.ndarray, labels: np.ndarray, queues: Optional[np.ndarray] = None) -> str:
  """Gzipped tf.Example TFRecords (ImportExampleGen and tfx-bsl detect gzip from the .gz suffix)."""
  import tensorflow as tf
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type='GZIP')) as writer:
    for record in _examples(pixels, labels, queues):
      writer.write(record)
  return path


def write_scenario(data_root: str, splits: Splits) -> Dict[str, str]:
  """Writes `<data_root>/train/` and `<data_root>/eval/`; returns split -> file pattern."""
  write_tfrecords(os.path.join(data_root, TRAIN_SPLIT, DATA_FILE), splits.train_pixels, splits.train_labels,
                  splits.train_queue)
  write_tfrecords(os.path.join(data_root, EVAL_SPLIT, DATA_FILE), splits.eval_pixels, splits.eval_labels,
                  splits.eval_queue)
  return split_patterns(data_root)


def split_patterns(data_root: str) -> Dict[str, str]:
  return {split: os.path.join(data_root, split, '*') for split in (TRAIN_SPLIT, EVAL_SPLIT)}


def generate(scenario: str, data_root: str, **kwargs) -> Splits:
  """Makes the scenario's splits and writes them under `data_root`; returns the arrays too."""
  splits = make_splits(scenario, **kwargs)
  write_scenario(data_root, splits)
  return splits
