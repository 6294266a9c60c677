"""Real-data corpus: data that ships inside the installed packages (TFX testdata, the taxi CSV, scikit-learn tables).

Clean splits must pass; injected faults must be found. Nothing is downloaded.
"""

import glob
import os

import pytest
import tfx

from tfx_preflight.checks.leakage import check as leakage
from tfx_preflight.config import LeakageConfig

TESTDATA = os.path.join(os.path.dirname(tfx.__file__), 'components', 'testdata')
PENGUIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'penguin')  # Not in TFX 1.15.1's wheel.
TAXI_EXAMPLES = {split: os.path.join(TESTDATA, 'csv_example_gen', f'Split-{split}', '*') for split in ('train', 'eval')}


def test_leakage_runs_on_tfx_taxi_examples_with_an_all_empty_column(tmp_path, beam_factory):
  """pickup_census_tract is empty in every row, so tfx-bsl decodes it as an Arrow null column."""
  result = leakage.check_leakage(TAXI_EXAMPLES, 'train', ['eval'], LeakageConfig(), beam_factory, str(tmp_path),
                                 label_key='tips').to_dict()
  assert result['status'] != 'block', result['findings']
  assert result['examples']['train'] > 5000 and result['examples']['eval'] > 2000
  assert 'pickup_census_tract' in result['hashed_features']['eval']


TAXI_CSV = os.path.join(os.path.dirname(tfx.__file__), 'examples', 'chicago_taxi_pipeline', 'data', 'simple', 'data.csv')


def _canonical(serialized):
  from tensorflow.core.example import example_pb2
  return sorted(example_pb2.Example.FromString(r).SerializeToString(deterministic=True) for r in serialized)


def test_csv_conversion_gives_exactly_csv_example_gens_examples_and_knows_every_line(tmp_path):
  """Oracle: CsvExampleGen's own PTransform on the same files (taxi rows plus a multi-line quoted cell, a blank line,
  an int column with one float, a column empty in every row)."""
  import apache_beam as beam
  from apache_beam.testing.util import assert_that, equal_to
  from tfx.components.example_gen.csv_example_gen import executor as csv_executor

  from tfx_preflight.inputs import csv_staging, records
  with open(TAXI_CSV, encoding='utf-8') as f:
    taxi = f.read().splitlines()[:1500]
  (tmp_path / 'in').mkdir()
  (tmp_path / 'in' / 'a.csv').write_text('\n'.join(taxi) + '\n')
  (tmp_path / 'in' / 'b.csv').write_text('a,b,c,d\n1,"two\nlines",,x\n\n2,3.5,,y\n3,plain,,\n')
  converted = {}
  for name in ('a', 'b'):
    patterns = csv_staging.csv_to_tfrecords({name: [str(tmp_path / 'in' / f'{name}.csv')]}, beam.Pipeline,
                                            str(tmp_path / f'staged-{name}'))
    converted[name] = [r for f in sorted(glob.glob(patterns[name])) for r in records.read_records(f)]
    with beam.Pipeline() as pipeline:
      theirs = (pipeline
                | csv_executor._CsvToExample(exec_properties={'input_base': str(tmp_path / 'in')},
                                             split_pattern=f'{name}.csv')
                | beam.Map(lambda e: e.SerializeToString(deterministic=True)))
      assert_that(theirs, equal_to(_canonical(converted[name])))
  assert len(converted['a']) == 1499
  b_file = sorted(glob.glob(patterns['b']))[0]
  locations = csv_staging.csv_locations({'b': patterns['b']})
  assert [locations.locate(b_file, i)[1] for i in range(3)] == [2, 5, 6]  # Line 3 continues line 2; line 4 is blank.


@pytest.mark.slow
def test_taxi_csv_through_the_cli_names_csv_files_and_lines_and_leaves_no_staging(tmp_path, monkeypatch, capsys):
  """The taxi CSV split 80/20 by rows, plus 100 train rows copied into eval: leakage names eval.csv lines."""
  import json
  import tempfile

  import numpy as np
  import pandas as pd

  from tfx_preflight import cli
  raw = pd.read_csv(TAXI_CSV, dtype=str, keep_default_na=False)
  in_train = np.random.default_rng(13).random(len(raw)) < 0.8
  train, evaluation = raw[in_train], raw[~in_train]
  train.to_csv(tmp_path / 'train.csv', index=False)
  pd.concat([evaluation, train.iloc[:100]]).to_csv(tmp_path / 'eval.csv', index=False)
  staging_root = tmp_path / 'tmp'
  staging_root.mkdir()
  monkeypatch.setattr(tempfile, 'tempdir', str(staging_root))
  code = cli.main(['check', '--train', str(tmp_path / 'train.csv'), '--eval', str(tmp_path / 'eval.csv'),
                   '--label-key', 'tips', '--checks', 'skew,leakage', '--out', str(tmp_path / 'r')])
  out = capsys.readouterr()
  assert code == cli.EXIT_BLOCK, out
  report = json.loads((tmp_path / 'r' / 'report.json').read_text())
  assert report['checks']['skew']['status'] == 'pass', report['checks']['skew']['findings']
  pair = report['checks']['leakage']['cross_split'][0]
  assert pair['duplicate_examples'] >= 100
  sample = pair['samples'][0]
  assert sample['file'].endswith('eval.csv') and sample['train_file'].endswith('train.csv')
  assert sample['line'] >= len(evaluation) + 2 and sample['train_line'] <= 101
  rows = (tmp_path / 'r' / 'leakage' / 'duplicates.tsv').read_text().splitlines()
  assert rows[0].split('\t')[:5] == ['kind', 'hash', 'split', 'file', 'line']
  eval_lines = sorted(int(r.split('\t')[4]) for r in rows[1:] if r.split('\t')[2] == 'eval')
  assert set(range(len(evaluation) + 2, len(evaluation) + 102)) <= set(eval_lines)
  assert all(r.split('\t')[3].endswith('.csv') for r in rows[1:])
  assert list(staging_root.iterdir()) == []  # The per-run staging directory is gone.


def _load_statistics(root):
  import tensorflow_data_validation as tfdv
  return {split: tfdv.load_stats_binary(os.path.join(root, f'Split-{split}', 'FeatureStats.pb'))
          for split in ('train', 'eval')}


def _read_schema(path):
  from tfx.utils import io_utils
  return io_utils.SchemaReader().read(path)


def test_tfx_taxi_examples_with_their_shipped_statistics_and_schema_pass_the_gate(tmp_path, beam_factory):
  from tfx_preflight import run
  from tfx_preflight.config import PreflightConfig
  inputs = run.PreflightInputs(examples=TAXI_EXAMPLES, statistics=_load_statistics(os.path.join(TESTDATA,
                               'statistics_gen')), schema=_read_schema(os.path.join(TESTDATA, 'schema_gen',
                                                                                     'schema.pbtxt')))
  result = run.run_checks(inputs, PreflightConfig(label_key='tips'), beam_factory, str(tmp_path)).to_dict()
  assert result['verdict'] == 'pass', {c: r.get('findings') for c, r in result['checks'].items()}
  assert result['checks']['skew']['status'] == 'pass' and result['checks']['leakage']['status'] == 'pass'
  assert len(result['checks']['skew']['comparisons']['eval']) >= 15


def test_tfx_penguin_examples_and_schema_pass_and_a_rescaled_copy_blocks(tmp_path, beam_factory):
  from tests.helpers import write_splits
  from tfx_preflight import run
  from tfx_preflight.config import PreflightConfig
  from tfx_preflight.inputs import records
  root = os.path.join(PENGUIN, 'data')
  examples = {split: os.path.join(root, f'Split-{split}', '*') for split in ('train', 'eval')}
  schema = _read_schema(os.path.join(PENGUIN, 'schema', 'schema.pbtxt'))
  config = PreflightConfig(label_key='species')
  clean = run.run_checks(run.PreflightInputs(examples=examples, schema=schema), config, beam_factory,
                         str(tmp_path / 'clean')).to_dict()
  assert clean['verdict'] == 'pass', {c: r.get('findings') for c, r in clean['checks'].items()}

  rows = {}
  for split, pattern in examples.items():
    batches = [b for f in sorted(glob.glob(pattern)) for _, b in records.iter_record_batches(f)]
    rows[split] = [{k: v for k, v in row.items() if v} for b in batches for row in b.to_pylist()]
  rows['eval'] = [dict(r, body_mass_g=[v / 1000.0 for v in r['body_mass_g']]) for r in rows['eval']]  # g -> kg
  broken = write_splits(str(tmp_path / 'broken'), rows)
  result = run.run_checks(run.PreflightInputs(examples=broken, schema=schema), config, beam_factory,
                          str(tmp_path / 'out')).to_dict()
  assert result['verdict'] == 'block'
  assert ('body_mass_g', 'scale_mismatch') in {(f['feature'], f['kind']) for f in result['checks']['skew']['findings']}


def test_the_schema_of_other_data_is_refused_not_silently_ignored(tmp_path, beam_factory):
  """The taxi schema handed with penguin examples: none of its features exist, so none of its comparators could set a
  threshold. It passed with the defaults, as if the schema had been used."""
  from tfx_preflight import run
  from tfx_preflight.config import PreflightConfig
  from tfx_preflight.inputs import data
  root = os.path.join(PENGUIN, 'data')
  examples = {split: os.path.join(root, f'Split-{split}', '*') for split in ('train', 'eval')}
  taxi_schema = _read_schema(os.path.join(TESTDATA, 'schema_gen', 'schema.pbtxt'))
  with pytest.raises(data.InputError, match=r'the schema describes none of the features of the data \(company, '
                                            r'dropoff_census_tract.*; features: body_mass_g, culmen_depth_mm'):
    run.run_checks(run.PreflightInputs(examples=examples, schema=taxi_schema), PreflightConfig(label_key='species'),
                   beam_factory, str(tmp_path))


def _sklearn_rows(name):
  import numpy as np
  from sklearn import datasets
  bunch = getattr(datasets, f'load_{name}')()
  x = bunch.data.astype(np.float32)
  columns = [f'x{j:02d}' for j in range(x.shape[1])]
  rows = [{**{c: float(v) for c, v in zip(columns, row)}, 'target': int(t)} for row, t in zip(x, bunch.target)]
  return rows, columns


@pytest.mark.slow
@pytest.mark.parametrize('name', ['breast_cancer', 'digits'])
def test_sklearn_tables_clean_splits_pass_and_injected_faults_are_found(name, tmp_path, beam_factory):
  """Clean random 75/25 split: pass. Eval with one column x1000, another 30% NaN and 5% of rows copied from train:
  each fault is found by the check meant for it."""
  import numpy as np

  from tests.helpers import write_splits
  from tfx_preflight import run
  from tfx_preflight.config import PreflightConfig
  rows, columns = _sklearn_rows(name)
  order = np.random.default_rng(5).permutation(len(rows))
  cut = int(len(rows) * 0.75)
  train, evaluation = [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]
  config = PreflightConfig(label_key='target', loss={'mode': 'off'})
  clean = run.run_checks(run.PreflightInputs(examples=write_splits(str(tmp_path / 'clean'),
                                                                   {'train': train, 'eval': evaluation})),
                         config, beam_factory, str(tmp_path / 'clean-out')).to_dict()
  assert clean['verdict'] == 'pass', {c: r.get('findings') for c, r in clean['checks'].items()}

  varied = [c for c in columns if np.std([r[c] for r in train]) > 0.5]
  scaled, nans = varied[0], varied[1]
  faulty = [dict(r, **{scaled: r[scaled] * 1000.0, nans: float('nan') if i % 10 < 3 else r[nans]})
            for i, r in enumerate(evaluation)]
  faulty += train[:len(evaluation) // 20]
  result = run.run_checks(run.PreflightInputs(examples=write_splits(str(tmp_path / 'faulty'),
                                                                    {'train': train, 'eval': faulty})),
                          config, beam_factory, str(tmp_path / 'faulty-out')).to_dict()
  found = {(f['feature'], f['kind']) for f in result['checks']['skew']['findings'] if f['severity'] == 'block'}
  # Mostly-zero pixel columns (digits) have no deciles to call it a pure rescale; it still blocks as a shift.
  assert {(scaled, 'scale_mismatch'), (scaled, 'distribution_shift')} & found, found
  assert (nans, 'non_finite_rate_mismatch') in found, found
  assert result['checks']['leakage']['status'] == 'block'
  assert result['checks']['leakage']['cross_split'][0]['duplicate_examples'] >= len(evaluation) // 20


@pytest.mark.slow
def test_gate_blesses_tfx_taxi_testdata_in_a_local_dag_runner_pipeline(tmp_path):
  """ImportExampleGen over the shipped CsvExampleGen output, then the gate (statistics computed by it), on
  LocalDagRunner with sqlite ML Metadata."""
  from ml_metadata.metadata_store import metadata_store
  from tfx import v1 as tfx_v1

  from tfx_preflight import Preflight
  example_gen = tfx_v1.components.ImportExampleGen(
      input_base=os.path.join(TESTDATA, 'csv_example_gen'),
      input_config=tfx_v1.proto.Input(splits=[
          tfx_v1.proto.Input.Split(name='train', pattern='Split-train/*'),
          tfx_v1.proto.Input.Split(name='eval', pattern='Split-eval/*')]))
  gate = Preflight(examples=example_gen.outputs['examples'], label_key='tips', loss={'mode': 'off'})
  metadata_path = str(tmp_path / 'metadata.sqlite')
  pipeline = tfx_v1.dsl.Pipeline(
      pipeline_name='taxi-testdata', pipeline_root=str(tmp_path / 'root'), components=[example_gen, gate],
      metadata_connection_config=tfx_v1.orchestration.metadata.sqlite_metadata_connection_config(metadata_path),
      beam_pipeline_args=['--direct_num_workers=1'])
  tfx_v1.orchestration.LocalDagRunner().run(pipeline)
  store = metadata_store.MetadataStore(
      tfx_v1.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))
  blessings = store.get_artifacts_by_type(Preflight.SPEC_CLASS.OUTPUTS['blessing'].type.TYPE_NAME)
  assert [b.custom_properties['blessed'].int_value for b in blessings] == [1]
