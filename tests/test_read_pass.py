"""The read pass: with statistics not supplied, one Beam pipeline reads and decodes every file once, and its batches
give the statistics, the leakage counts and the label-proxy counts together."""

import collections

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from tests.helpers import tabular_rows, write_splits
from tfx_preflight import run
from tfx_preflight.config import PreflightConfig
from tfx_preflight.inputs import records


def test_every_check_from_one_pipeline_reading_each_file_once(tmp_path, monkeypatch):
  train = tabular_rows(300, 1)
  patterns = write_splits(str(tmp_path / 'examples'), {'train': train, 'eval': tabular_rows(80, 2) + train[:20]})
  reads = collections.Counter()
  real_reader = records.iter_record_batches

  def counting_reader(path, *args, **kwargs):
    reads[path] += 1
    return real_reader(path, *args, **kwargs)

  monkeypatch.setattr(records, 'iter_record_batches', counting_reader)  # DirectRunner runs in this process.
  pipelines = []

  def make_pipeline():
    pipelines.append(beam.Pipeline(options=PipelineOptions([])))
    return pipelines[-1]

  config = PreflightConfig.from_dict({'label_key': 'label', 'exclude_features': ['id']})
  result = run.run_checks(run.PreflightInputs(examples=patterns), config, make_pipeline, str(tmp_path / 'out'))

  assert len(pipelines) == 1
  assert sorted(reads.values()) == [1, 1] and len(reads) == 2  # One file per split, each read once.
  assert set(result.statistics) == {'train', 'eval'}  # Computed by the pass, kept for the pages, not in report.json.
  checks = result.to_dict()['checks']
  assert checks['skew']['status'] == 'pass'
  assert checks['leakage']['cross_split'][0]['duplicate_examples'] == 20
  assert checks['leakage']['examples'] == {'train': 300, 'eval': 100}
  assert checks['label_proxy']['compared']['examples'] == {'train': 300, 'eval': 100}
  # Our consumers read no side input (each one cost ~40 ms in a process with TensorFlow loaded, beam_util.py) but the
  # near join's payload filters: one blob of the paired ids each, which spares the joins every unpaired payload (at 1M
  # with TensorFlow loaded, the steps after the band join took 0.53 s instead of 0.99 s).
  ours = [name for name in _steps_reading_side_inputs(pipelines[0])
          if name.split('/')[0].startswith(('Leakage', 'WriteLeakage', 'LabelProxy', 'WriteLabelProxy'))]
  assert ours == ['Leakage/PairedEvalPayloads', 'Leakage/PairedTrainPayloads']
  assert _steps_reading_side_inputs(pipelines[0]), 'TFDV statistics read side inputs: the check above can see them'


def _steps_reading_side_inputs(pipeline: beam.Pipeline) -> list:
  from apache_beam.portability.api import beam_runner_api_pb2
  proto = pipeline.to_runner_api()
  return sorted(t.unique_name for t in proto.components.transforms.values()
                if t.spec.urn == 'beam:transform:pardo:v1'
                and beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload).side_inputs)
