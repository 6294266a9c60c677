"""beam_util: CombineToOne is CombineGlobally without the default's side input."""


import apache_beam as beam
import pytest
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tfx_preflight import beam_util


class _SortedValues(beam.CombineFn):
  """A combine whose empty output differs from any non-empty one, and which sees every input exactly once."""

  def create_accumulator(self):
    return []

  def add_input(self, accumulator, element):
    return accumulator + [element]

  def merge_accumulators(self, accumulators):
    return [value for accumulator in accumulators for value in accumulator]

  def extract_output(self, accumulator):
    return ('values', tuple(sorted(accumulator)))


@pytest.mark.parametrize('values', [[], [3], [5, 1, 4, 1]])
def test_combine_to_one_gives_what_combine_globally_gives(values):
  with TestPipeline() as p:
    items = p | beam.Create(values)
    ours = items | 'Ours' >> beam_util.CombineToOne(_SortedValues())
    beams = items | 'Beams' >> beam.CombineGlobally(_SortedValues())
    expected = [('values', tuple(sorted(values)))]
    assert_that(ours, equal_to(expected), label='CheckOurs')
    assert_that(beams, equal_to(expected), label='CheckBeams')


def test_combine_to_one_reads_no_side_input():
  p = beam.Pipeline()
  _ = p | beam.Create([1]) | 'Ours' >> beam_util.CombineToOne(_SortedValues())
  _ = p | 'More' >> beam.Create([1]) | 'Beams' >> beam.CombineGlobally(_SortedValues())
  transforms = p.to_runner_api().components.transforms.values()
  reading = {t.unique_name.split('/')[0] for t in transforms if t.spec.urn == 'beam:transform:pardo:v1'
             and beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload).side_inputs}
  assert reading == {'Beams'}


def test_combine_to_one_consumes_its_input_directly():
  """Nothing between the input and the combine, so the runner lifts the combine into the producing stage instead of
  keeping every input element (with a Flatten in between, 1M rows of RecordBatches cost 800 MB more)."""
  p = beam.Pipeline()
  items = p | beam.Create([1, 2])
  _ = items | 'Ours' >> beam_util.CombineToOne(_SortedValues())
  transforms = p.to_runner_api().components.transforms.values()
  (created,) = [pcoll for t in transforms if t.unique_name == 'Create' for pcoll in t.outputs.values()]
  consumers = [t.unique_name for t in transforms if created in t.inputs.values() and not t.subtransforms]
  assert consumers and all(name.startswith('Ours/Combine/') for name in consumers), consumers
