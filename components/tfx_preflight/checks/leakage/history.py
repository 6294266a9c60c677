"""Memory of past training data: the content hashes of the train examples a blessed run trained on, stored compactly,
and joined against today's eval without reading those examples again.

A train_hashes directory (the `TrainHashes` artifact, or the CLI's `--save-history DIR`) holds `hashes-<shard>.npy`
files, each a (n, 2) uint64 array of distinct 128-bit content hashes (16 bytes per distinct train example; numpy's
format, loaded with `allow_pickle=False`), and `train_hashes.json`, written last, saying how they were hashed.

The hashes are written by the leakage job's exact join (leakage_beam.py), which already holds each shard's train
hashes; a later run reads the stored files in its Beam pipeline, reshards them and joins them with its eval hashes in
the same shards (cost: the new data plus one scan of the stored hashes). Hashes only match when they were made the
same way: an artifact hashed with other excluded features, label or features is reported as not compared.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np

from tfx_preflight import constants, file_io, file_writes
from tfx_preflight.inputs import hashing
from tfx_preflight.inputs.data import InputError

FORMAT = 'tfx_preflight.train_hashes/1'
MANIFEST = constants.TRAIN_HASHES_MANIFEST
HISTORY = constants.LEAKAGE_HISTORY
_SHARD = re.compile(r'hashes-\d{5,}\.npy')


def shard_name(shard: int) -> str:
  return f'hashes-{shard:05d}.npy'


def to_npy(hashes: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  np.save(buffer, np.ascontiguousarray(hashes, dtype=np.uint64), allow_pickle=False)
  return buffer.getvalue()


def read_hashes(path: str) -> np.ndarray:
  """One stored shard: a (n, 2) uint64 array; anything else is refused, naming the file (never unpickled)."""
  try:
    with file_io.open(path, 'rb') as f:
      hashes = np.load(io.BytesIO(f.read()), allow_pickle=False)
  except Exception as e:  # Truncated, not numpy, an object array: all mean the file is not ours.
    raise InputError(f'history: {path} is not a train hashes file: {type(e).__name__}: {e}') from e
  if hashes.dtype != np.uint64 or hashes.ndim != 2 or hashes.shape[1] != 2:
    raise InputError(f'history: {path} holds a {hashes.dtype} array of shape {hashes.shape}, not (n, 2) uint64.')
  return hashes


def distinct_rows(hashes: np.ndarray) -> np.ndarray:
  """The distinct rows of a (n, 2) uint64 array, sorted."""
  if not len(hashes):
    return hashes.reshape(0, 2)
  return np.unique(hashes, axis=0)


def in_stored(hashes: np.ndarray, stored: np.ndarray) -> np.ndarray:
  """Per row of `hashes`, whether `stored` holds the same 128-bit hash: numpy on the first lane, then the second
  lane checked for the few candidates (the copies, and rare first-lane collisions)."""
  found = np.isin(hashes[:, 0], stored[:, 0])
  rows = np.flatnonzero(found)
  if len(rows):
    known = set(map(tuple, stored[np.isin(stored[:, 0], hashes[rows, 0])].tolist()))
    found[rows] = [tuple(h) in known for h in hashes[rows].tolist()]
  return found


# --- Beam: stored hashes into the exact join's shards -------------------------------------------------------------


def _stored_pieces(item: Tuple[int, str], num_shards: int, split_id: int, kind: str) -> Iterable[Tuple]:
  """One stored file -> join pieces keyed as leakage_beam's exact join keys them, (kind, hash lane 1 % num_shards)."""
  history_id, path = item
  hashes = read_hashes(path)
  shard = (hashes[:, 1] % np.uint64(num_shards)).astype(np.int64)
  order = np.argsort(shard, kind='stable')
  bounds = np.searchsorted(shard[order], np.arange(num_shards + 1))
  for s in range(num_shards):
    rows = order[bounds[s]:bounds[s + 1]]
    if len(rows):  # (split id, hashes, stored directory id): 16 bytes per stored hash through the shuffle.
      yield (kind, s), (split_id, hashes[rows], history_id)


class ReadStoredHashes(beam.PTransform):
  """The stored files (history id, path) -> pieces of the exact join, with `split_id` marking them as history."""

  def __init__(self, files: Sequence[Tuple[int, str]], num_shards: int, split_id: int, kind: str):
    super().__init__()
    self._files, self._num_shards, self._split_id, self._kind = tuple(files), num_shards, split_id, kind

  def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
    return (pbegin
            | 'StoredFiles' >> beam.Create(self._files)
            | 'SpreadStoredFiles' >> beam.Reshuffle()
            | 'ReadStored' >> beam.FlatMap(_stored_pieces, self._num_shards, self._split_id, self._kind))


def write_shard(item: Tuple[int, np.ndarray], directory: str) -> None:
  shard, hashes = item
  file_writes.write_atomically(os.path.join(directory, shard_name(shard)), to_npy(hashes))


# --- Driver: manifests, staging and publishing --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Stored:
  """One train_hashes directory, as its manifest describes it."""
  path: str
  blessed: bool
  examples: int
  distinct_hashes: int
  excluded_features: Tuple[str, ...]
  label_key: Optional[str]
  features: Tuple[str, ...]
  files: Tuple[str, ...]  # full paths

  def differs_from(self, excluded: Sequence[str], label_key: Optional[str]) -> Optional[str]:
    """Why this directory's hashes cannot match today's (None when they can)."""
    if tuple(sorted(excluded)) != self.excluded_features:
      return (f'hashed without features {", ".join(self.excluded_features) or "(none)"}, today without '
              f'{", ".join(sorted(excluded)) or "(none)"}')
    if label_key != self.label_key:
      return f'label_key was {self.label_key!r}, today {label_key!r}'
    return None


def load(directory: str) -> Stored:
  """The manifest of a train_hashes directory; refuses (naming it) a directory that is incomplete or not one."""
  path = os.path.join(directory, MANIFEST)
  if not file_io.exists(path):
    raise InputError(f'history: {directory} has no {MANIFEST}: not a train_hashes directory (--save-history, the '
                     "Preflight component's train_hashes output) or an incomplete one.")
  with file_io.open(path, 'r') as f:
    manifest = json.loads(f.read())
  if manifest.get('format') != FORMAT:
    raise InputError(f'history: {path} has format {manifest.get("format")!r}; this version reads {FORMAT!r}.')
  return Stored(path=directory, blessed=bool(manifest['blessed']), examples=int(manifest['examples']),
                distinct_hashes=int(manifest['distinct_hashes']),
                excluded_features=tuple(manifest['excluded_features']), label_key=manifest['label_key'],
                features=tuple(manifest['features']),
                files=tuple(os.path.join(directory, name) for name in manifest['files']))


def staging_dir(destination: str) -> str:
  """Where the Beam job writes the shards before the verdict is known (inside the destination, so moving them in is
  a rename)."""
  return os.path.join(destination, '.staging')


def _clear(directory: str) -> None:
  """Removes what an earlier save left (manifest first: the directory stops being valid before it changes)."""
  manifest = os.path.join(directory, MANIFEST)
  if file_io.exists(manifest):
    file_io.remove(manifest)
  for name in file_io.listdir(directory):
    if _SHARD.fullmatch(name.rstrip('/')):
      file_io.remove(os.path.join(directory, name.rstrip('/')))


def publish(staging: str, destination: str, blessed: bool, examples: int, excluded: Sequence[str],
            label_key: Optional[str], features: Sequence[str]) -> Dict[str, Any]:
  """Makes `destination` hold the staged hashes when the run blessed (nothing was trained on otherwise: the manifest
  then says so and no hash is kept); the manifest is written last. Returns the manifest."""
  file_io.makedirs(destination)
  _clear(destination)
  names, distinct = [], 0
  if blessed and file_io.exists(staging):
    for name in sorted(n.rstrip('/') for n in file_io.listdir(staging)):
      if _SHARD.fullmatch(name):
        file_io.rename(os.path.join(staging, name), os.path.join(destination, name))
        names.append(name)
        distinct += _rows_of(os.path.join(destination, name))
  if file_io.exists(staging):
    file_io.rmtree(staging)
  manifest = {'format': FORMAT, 'blessed': bool(blessed), 'examples': int(examples) if blessed else 0,
              'distinct_hashes': distinct, 'excluded_features': sorted(excluded), 'label_key': label_key,
              'features': sorted(features), 'files': names,
              'hash': '128-bit canonical content hash (two 64-bit lanes) of the hashed features; 16 bytes each'}
  file_writes.write_atomically(os.path.join(destination, MANIFEST), json.dumps(manifest, sort_keys=True, indent=1))
  return manifest


def _rows_of(path: str) -> int:
  """Rows of a stored shard, from its numpy header only."""
  with file_io.open(path, 'rb') as f:
    version = np.lib.format.read_magic(f)
    shape, _, _ = np.lib.format._read_array_header(f, version)  # pylint: disable=protected-access
  return int(shape[0])


# --- Interpretation -----------------------------------------------------------------------------------------------


def select(stored: Sequence[Stored], excluded: Sequence[str], label_key: Optional[str]
           ) -> Tuple[List[Stored], List[Dict[str, Any]]]:
  """The directories whose hashes today's can match, and a line per directory for the report (used or why not)."""
  used, described = [], []
  for item in stored:
    reason = 'the run did not bless: nothing was trained on' if not item.blessed else item.differs_from(
        excluded, label_key)
    described.append({'path': item.path, 'examples': item.examples, 'distinct_hashes': item.distinct_hashes,
                      'compared': reason is None, **({'reason': reason} if reason else {})})
    if reason is None:
      used.append(item)
  return used, described


def history_lines(rows: np.ndarray, hashes: np.ndarray, split_names: Sequence[str], split: np.ndarray,
                  files: Sequence[Tuple[int, str]], file_id: np.ndarray, index: np.ndarray) -> List[str]:
  """duplicates.tsv lines of eval rows found in history (pair_split 'history'; the stored directory is in the
  report)."""
  return [f'{HISTORY}\t{hashing.hex_digest(hashes[r])}\t{file_writes.tsv_field(split_names[split[r]])}\t'
          f'{file_writes.tsv_field(files[file_id[r]][1])}\t{int(index[r])}\t{HISTORY}\t\t\t\t' for r in rows]
