"""The near join's shuffle elements as one bytes blob of numpy arrays: integers packed small, read back as views.

Why not let Beam pickle the arrays: the near join shuffles every example's payload and several band keys per example
three times, and a runner that holds a shuffle in the worker (the in-process DirectRunner) decodes and re-encodes
each element at every stage boundary. A tuple of a dozen arrays costs a pickle per array each time; a blob costs one
copy. Decoding parses a JSON header and takes `np.frombuffer` views: no code runs, whatever the bytes hold.
"""

from __future__ import annotations

import json
import struct
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

_HEADER_SIZE = struct.Struct('<I')
_ALIGN = 8
_NUMERIC_KINDS = 'biuf'


def pack_ints(values: np.ndarray) -> Tuple:
  """A 1-d integer array in a compact form: one value when all are equal (split ids, layouts), the minimum and
  offsets in the smallest unsigned type when the range is small (example ids of one batch), up to 256 distinct values
  and indices (hashes of labels and categories), else the array itself. `unpack_ints` restores it exactly."""
  if not len(values):
    return ('array', values)
  low, high = values.min(), values.max()
  if low == high:
    return ('constant', values.dtype.str, len(values), low.item())
  span = int(high) - int(low)
  if span < 1 << 32:
    return ('range', values.dtype.str, low.item(), (values - low).astype(np.min_scalar_type(span)))
  if len(values) >= 256:
    sample = values[::len(values) // 64]  # A sample first: hashes of content are all distinct, no need to sort.
    seed = np.unique(sample)
    factorized = _few_distinct(values, seed) if len(seed) <= len(sample) // 2 else None
    if factorized is not None:
      return ('distinct', factorized[0], factorized[1].astype(np.uint8))
  return ('array', values)


def _few_distinct(values: np.ndarray, seed: np.ndarray, most: int = 256) -> Optional[Tuple[np.ndarray, np.ndarray]]:
  """np.unique(values, return_inverse=True) when it has at most `most` values, else None. Searches the values among
  the sorted `seed` (a sample's distinct values) and adds those it misses: O(n log k) where np.unique sorts all n
  values (0.87 -> 0.22 ms per 8,192-row payload piece with 50 categories, every batch of the near join)."""
  index = np.searchsorted(seed, values)
  missed = seed[np.minimum(index, len(seed) - 1)] != values
  if not missed.any():
    return seed, index
  distinct = np.union1d(seed, values[missed])
  if len(distinct) > most:
    return None
  return distinct, np.searchsorted(distinct, values)


def unpack_ints(packed: Tuple) -> np.ndarray:
  kind = packed[0]
  if kind == 'constant':
    return np.full(packed[2], packed[3], dtype=packed[1])
  if kind == 'range':
    dtype = np.dtype(packed[1])
    return packed[3].astype(dtype) + dtype.type(packed[2])
  if kind == 'distinct':
    return packed[1][packed[2]]
  return packed[1]


def encode(arrays: Sequence[np.ndarray], packed: Sequence[bool]) -> bytes:
  """One blob of 1-d numeric arrays; those marked `packed` (integers) go through pack_ints."""
  fields: List[list] = []
  blocks: List[np.ndarray] = []

  def block(array: np.ndarray) -> int:
    blocks.append(np.ascontiguousarray(array))
    return len(blocks) - 1

  for array, pack in zip(arrays, packed):
    form = pack_ints(array) if pack else ('array', array)
    if form[0] == 'constant':
      fields.append(list(form))
    elif form[0] == 'range':
      fields.append(['range', form[1], form[2], block(form[3])])
    elif form[0] == 'distinct':
      fields.append(['distinct', block(form[1]), block(form[2])])
    else:
      fields.append(['array', block(form[1])])
  header = json.dumps({'fields': fields, 'blocks': [[b.dtype.str, len(b)] for b in blocks]}).encode()
  parts = [_HEADER_SIZE.pack(len(header)), header]
  size = _HEADER_SIZE.size + len(header)
  for b in blocks:
    pad = -size % _ALIGN
    parts += [b'\0' * pad, b.tobytes()]
    size += pad + b.nbytes
  return b''.join(parts)


def decode(blob: bytes) -> List[np.ndarray]:
  """The arrays `encode` was given, in order (read-only views where nothing was packed)."""
  (length,) = _HEADER_SIZE.unpack_from(blob)
  header = json.loads(blob[_HEADER_SIZE.size:_HEADER_SIZE.size + length])
  offset = _HEADER_SIZE.size + length
  blocks = []
  for dtype, count in header['blocks']:
    dtype = _numeric(dtype)
    offset += -offset % _ALIGN
    blocks.append(np.frombuffer(blob, dtype=dtype, count=count, offset=offset))
    offset += dtype.itemsize * count
  return [_field(field, blocks) for field in header['fields']]


def _numeric(dtype: Any) -> np.dtype:
  dtype = np.dtype(dtype)
  if dtype.kind not in _NUMERIC_KINDS:
    raise ValueError(f'wire.decode: {dtype} is not a numeric dtype.')
  return dtype


def _field(field: list, blocks: List[np.ndarray]) -> np.ndarray:
  kind = field[0]
  if kind == 'constant':
    return unpack_ints(('constant', _numeric(field[1]), field[2], field[3]))
  if kind == 'range':
    return unpack_ints(('range', _numeric(field[1]).str, field[2], blocks[field[3]]))
  if kind == 'distinct':
    return unpack_ints(('distinct', blocks[field[1]], blocks[field[2]]))
  return blocks[field[1]]
