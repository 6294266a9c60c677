"""Real-data corpus: data that ships inside the installed packages (TFX testdata, the taxi CSV, scikit-learn tables).

Clean splits must pass; injected faults must be found. Nothing is downloaded.
"""

import glob
import os

import tfx

from tfx_preflight import leakage
from tfx_preflight.config import LeakageConfig

TESTDATA = os.path.join(os.path.dirname(tfx.__file__), 'components', 'testdata')
TAXI_EXAMPLES = {split: os.path.join(TESTDATA, 'csv_example_gen', f'Split-{split}', '*') for split in ('train', 'eval')}


def test_leakage_runs_on_tfx_taxi_examples_with_an_all_empty_column(tmp_path, beam_factory):
  """pickup_census_tract is empty in every row, so tfx-bsl decodes it as an Arrow null column."""
  result = leakage.check_leakage(TAXI_EXAMPLES, 'train', ['eval'], LeakageConfig(), beam_factory, str(tmp_path),
                                 label_key='tips')
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

  from tfx_preflight import data, records
  with open(TAXI_CSV, encoding='utf-8') as f:
    taxi = f.read().splitlines()[:1500]
  (tmp_path / 'in').mkdir()
  (tmp_path / 'in' / 'a.csv').write_text('\n'.join(taxi) + '\n')
  (tmp_path / 'in' / 'b.csv').write_text('a,b,c,d\n1,"two\nlines",,x\n\n2,3.5,,y\n3,plain,,\n')
  converted = {}
  for name in ('a', 'b'):
    patterns = data.csv_to_tfrecords({name: [str(tmp_path / 'in' / f'{name}.csv')]}, beam.Pipeline,
                                     str(tmp_path / f'staged-{name}'))
    converted[name] = [r for f in sorted(glob.glob(patterns[name])) for r in records.read_records(f)]
    with beam.Pipeline() as pipeline:
      theirs = (pipeline
                | csv_executor._CsvToExample(exec_properties={'input_base': str(tmp_path / 'in')},
                                             split_pattern=f'{name}.csv')
                | beam.Map(lambda e: e.SerializeToString(deterministic=True)))
      assert_that(theirs, equal_to(_canonical(converted[name])))
  assert len(converted['a']) == 1499
  b_file = sorted(glob.glob(str(tmp_path / 'staged-b' / 'Split-b' / '*.tfrecord')))[0]
  locations = data.csv_locations({'b': str(tmp_path / 'staged-b' / 'Split-b' / '*.tfrecord')})
  assert [locations.locate(b_file, i)[1] for i in range(3)] == [2, 5, 6]  # Line 3 continues line 2; line 4 is blank.


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
  assert rows[0] == 'kind\thash\tsplit\tfile\tline'
  eval_lines = sorted(int(r.split('\t')[4]) for r in rows[1:] if r.split('\t')[2] == 'eval')
  assert set(range(len(evaluation) + 2, len(evaluation) + 102)) <= set(eval_lines)
  assert all(r.split('\t')[3].endswith('.csv') for r in rows[1:])
  assert list(staging_root.iterdir()) == []  # The per-run staging directory is gone.
