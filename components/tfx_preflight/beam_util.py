"""Small Beam pieces the read pass's consumers share: one combined output without a side input, and handing freed
heap pages back between steps that shuffle a lot.

Why not CombineGlobally's default: each side input a step reads is costly in a process that has imported TensorFlow
(Beam's state cache sizes every cached value with objsize, which first walks the globals of every loaded module). For
the same reason a step writes its whole files with `files.write_atomically`, not WriteToText (four steps and three
side inputs per file).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any, Callable, Iterable, Optional, Tuple

import apache_beam as beam


class _NoInput:
  """Stands for 'no combined output' beside `CombineToOne`'s combined value."""


def _one_output(grouped: Tuple[Any, Iterable[Any]], combine_fn: beam.CombineFn) -> Any:
  """The combined value, or the empty accumulator's output when the input was empty."""
  values = [value for value in grouped[1] if not isinstance(value, _NoInput)]
  if len(values) > 1:
    raise ValueError(f'CombineToOne: {len(values)} combined values, expected at most one.')
  if values:
    return values[0]
  combine_fn.setup()
  try:
    return combine_fn.extract_output(combine_fn.create_accumulator())
  finally:
    combine_fn.teardown()


class CombineToOne(beam.PTransform):
  """Like `beam.CombineGlobally(combine_fn)`: exactly one output, the empty accumulator's when the input is empty, but
  without the side input Beam uses to inject that default. The combine consumes the input directly, so it stays
  lifted into the producing stage (partial accumulators per bundle): putting anything between them (a Flatten with a
  marker element) makes the DirectRunner keep every input element, RecordBatches included, until the combine runs.
  What follows the combine handles at most two small elements."""

  def __init__(self, combine_fn: beam.CombineFn):
    super().__init__()
    self._combine_fn = combine_fn

  def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
    combined = pcoll | 'Combine' >> beam.CombineGlobally(self._combine_fn).without_defaults()
    nothing = pcoll.pipeline | 'NoInput' >> beam.Create([_NoInput()])
    return ((combined, nothing)
            | 'WithNoInput' >> beam.Flatten()
            | 'OneKey' >> beam.Map(lambda value: (None, value))
            | 'Gather' >> beam.GroupByKey()
            | 'OneOutput' >> beam.Map(_one_output, self._combine_fn))


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Optional[Callable[[int], int]]:
  try:
    return ctypes.CDLL(ctypes.util.find_library('c')).malloc_trim
  except (AttributeError, OSError, TypeError):  # Not glibc (macOS, musl): nothing to trim.
    return None


def release_free_memory() -> None:
  """Returns the C heap's free pages to the OS (glibc's malloc_trim; a no-op elsewhere). A runner that holds whole
  shuffles in the worker process (the in-process DirectRunner) decodes, re-encodes and frees hundreds of MB between
  steps, and glibc keeps most freed pages, which would add to the job's peak RSS. It is cheap; a step calls it when
  it starts and ends."""
  trim = _malloc_trim()
  if trim is not None:
    trim(0)
