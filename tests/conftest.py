"""Fixtures and the test environment; plain helpers live in tests/helpers.py."""

import os

import pytest

os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


@pytest.fixture
def beam_factory():
  """A make_pipeline() for DirectRunner in-process, as the CLI builds it."""
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  return lambda: beam.Pipeline(options=PipelineOptions([]))


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
  """Digits as ExampleGen lays them out (train 300 / eval 100), statistics and schema from TFDV.

  For the loss-probe tests; test_interrupts.py keeps its own, lighter `digits` (records only)."""
  import tensorflow_data_validation as tfdv
  from sklearn.datasets import load_digits
  from tfx.utils import io_utils

  from tests.helpers import write_splits
  root = tmp_path_factory.mktemp('digits')
  data = load_digits()
  rows = [{'pixels': data.data[i].astype(float), 'label': int(data.target[i])} for i in range(400)]
  examples = write_splits(str(root / 'examples'), {'train': rows[:300], 'eval': rows[300:]})
  statistics = {split: tfdv.generate_statistics_from_tfrecord(os.path.join(os.path.dirname(pattern), '*.gz'))
                for split, pattern in examples.items()}
  schema_path = str(root / 'schema.pbtxt')
  io_utils.write_pbtxt_file(schema_path, tfdv.infer_schema(statistics['train']))
  return {'examples': examples, 'statistics': statistics, 'schema_path': schema_path}
