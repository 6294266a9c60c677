"""Real-data corpus: data that ships inside the installed packages (TFX testdata, the taxi CSV, scikit-learn tables).

Clean splits must pass; injected faults must be found. Nothing is downloaded.
"""

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
