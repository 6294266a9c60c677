"""Small Beam pieces the read pass's consumers share: one combined output without a side input, and whole-file
writes from a step.

Why not CombineGlobally's default and WriteToText: each side input a step reads costs ~40 ms in a process that has
imported TensorFlow (Beam's state cache sizes every cached value with objsize, which first walks the globals of every
loaded module), and WriteToText adds four steps and three side inputs per file. At 1M rows that was about 0.5 s of
the leakage job's 7.4 s.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems


class _NoInput:
  """What `CombineToOne` adds to its input so the combine always has one element; skipped by the combine."""


class _SkippingNoInput(beam.CombineFn):
  """`combine_fn` with `_NoInput` elements ignored."""

  def __init__(self, combine_fn: beam.CombineFn):
    self._fn = combine_fn

  def setup(self, *args, **kwargs) -> None:
    self._fn.setup(*args, **kwargs)

  def create_accumulator(self) -> Any:
    return self._fn.create_accumulator()

  def add_input(self, accumulator: Any, element: Any) -> Any:
    return accumulator if isinstance(element, _NoInput) else self._fn.add_input(accumulator, element)

  def merge_accumulators(self, accumulators) -> Any:
    return self._fn.merge_accumulators(accumulators)

  def compact(self, accumulator: Any) -> Any:
    return self._fn.compact(accumulator)

  def extract_output(self, accumulator: Any) -> Any:
    return self._fn.extract_output(accumulator)

  def teardown(self, *args, **kwargs) -> None:
    self._fn.teardown(*args, **kwargs)


class CombineToOne(beam.PTransform):
  """Like `beam.CombineGlobally(combine_fn)`: exactly one output, the empty accumulator's when the input is empty, but
  without the side input Beam uses to inject that default."""

  def __init__(self, combine_fn: beam.CombineFn):
    super().__init__()
    self._combine_fn = combine_fn

  def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
    nothing = pcoll.pipeline | 'NoInput' >> beam.Create([_NoInput()])
    return ((pcoll, nothing)
            | 'WithNoInput' >> beam.Flatten()
            | 'Combine' >> beam.CombineGlobally(_SkippingNoInput(self._combine_fn)).without_defaults())


def write_whole(path: str, text: str) -> None:
  """Writes `text` to `path` through a temp file renamed into place (Beam's filesystems: local or remote), so a reader
  never sees part of it and a retried step simply writes the same file again."""
  directory = os.path.dirname(path)
  temp = os.path.join(directory, f'.{os.path.basename(path)}.tmp-{uuid.uuid4().hex}')
  with FileSystems.create(temp) as f:
    f.write(text.encode('utf-8'))
  if FileSystems.exists(path):  # Remote renames do not overwrite.
    FileSystems.delete([path])
  FileSystems.rename([temp], [path])
