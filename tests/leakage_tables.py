"""Public tables that ship with installed packages (scikit-learn, TFX), for the leakage survey: natural repeats, low
cardinality, text. Each loader returns (rows, label key, features to exclude)."""

import csv
import glob
import os
from typing import Callable, Dict, List, Tuple

import numpy as np
import tfx

Rows = List[Dict[str, object]]
_TFX = os.path.dirname(tfx.__file__)


def _sklearn(loader: str, label: str = 'target') -> Tuple[Rows, str, Tuple[str, ...]]:
  import sklearn.datasets
  data = getattr(sklearn.datasets, loader)()
  names = [str(n).replace(' ', '_').replace('(', '').replace(')', '') for n in data.feature_names]
  rows = [{**{n: float(v) for n, v in zip(names, x)}, label: float(y) if loader == 'load_diabetes' else int(y)}
          for x, y in zip(data.data, data.target)]
  return rows, label, ()


def digits() -> Tuple[Rows, str, Tuple[str, ...]]:
  from sklearn.datasets import load_digits
  data = load_digits()
  return [{'pixels': (x / 16.0).tolist(), 'label': int(y)} for x, y in zip(data.data, data.target)], 'label', ()


def survey(n: int = 6366, seed: int = 11) -> Tuple[Rows, str, Tuple[str, ...]]:
  """A survey like statsmodels' `fair` (6,366 respondents, 8 answers on small scales, a continuous answer as label):
  ages and years married in the same coarse steps, correlated, so different people often give the same answers."""
  rng = np.random.default_rng(seed)
  age = rng.choice([17.5, 22.0, 27.0, 32.0, 37.0, 42.0], n, p=[0.02, 0.25, 0.3, 0.2, 0.12, 0.11])
  married = np.clip(np.round((age - 17) / 4 + rng.normal(0, 1.2, n)), 0, 6)
  years = np.array([0.5, 2.5, 6.0, 9.0, 13.0, 16.5, 23.0])[married.astype(int)]
  occupation = rng.choice([1, 2, 3, 4, 5, 6], n, p=[0.01, 0.14, 0.44, 0.29, 0.1, 0.02])
  rows = []
  for i in range(n):
    affairs = 0.0 if rng.random() < 0.68 else float(np.round(rng.exponential(1.0), 2))
    rows.append({'rate_marriage': float(rng.choice([1, 2, 3, 4, 5], p=[0.02, 0.05, 0.15, 0.35, 0.43])),
                 'age': float(age[i]), 'yrs_married': float(years[i]),
                 'children': float(min(5.5, rng.poisson(years[i] / 8))),
                 'religious': float(rng.choice([1, 2, 3, 4], p=[0.15, 0.35, 0.35, 0.15])),
                 'educ': float({1: 12, 2: 12, 3: 14, 4: 16, 5: 17, 6: 20}[int(occupation[i])]),
                 'occupation': float(occupation[i]),
                 'occupation_husb': float(rng.choice([2, 4, 5], p=[0.2, 0.5, 0.3])), 'affairs': affairs})
  return rows, 'affairs', ()


def taxi() -> Tuple[Rows, str, Tuple[str, ...]]:
  """TFX's Chicago taxi CSV (15,002 trips): the timestamp makes rows unique, as in the data."""
  path = os.path.join(_TFX, 'examples', 'chicago_taxi_pipeline', 'data', 'simple', 'data.csv')
  with open(path, newline='') as f:
    records = list(csv.DictReader(f))
  kinds = {key: _column_kind([r[key] for r in records if r[key] != '']) for key in records[0]}
  return [{k: kinds[k](v) for k, v in r.items() if v != ''} for r in records], 'tips', ()


def _column_kind(values: List[str]) -> Callable[[str], object]:
  """int, float or str for a whole CSV column (as CsvExampleGen infers it)."""
  for kind in (int, float):
    try:
      [kind(v) for v in values]
      return kind
    except ValueError:
      continue
  return str


def penguin() -> Tuple[Rows, str, Tuple[str, ...]]:
  """TFX's penguin testdata (both of its splits, as rows)."""
  from tfx_preflight.inputs import records
  rows = []
  for path in sorted(glob.glob(os.path.join(_TFX, 'components', 'testdata', 'penguin', 'data', 'Split-*', '*'))):
    for _, batch in records.iter_record_batches(path):
      rows += [{k: v for k, v in row.items() if v} for row in batch.to_pylist()]
  return rows, 'species', ()


def imdb() -> Tuple[Rows, str, Tuple[str, ...]]:
  path = os.path.join(_TFX, 'examples', 'imdb', 'data', 'imdb_small_with_labels.txt')
  with open(path, newline='', encoding='utf-8') as f:
    return [{'text': r['text'], 'label': int(r['label'])} for r in csv.DictReader(f)], 'label', ()


TABLES: Dict[str, Callable[[], Tuple[Rows, str, Tuple[str, ...]]]] = {
    'iris': lambda: _sklearn('load_iris'), 'wine': lambda: _sklearn('load_wine'),
    'breast_cancer': lambda: _sklearn('load_breast_cancer'), 'diabetes': lambda: _sklearn('load_diabetes'),
    'digits': digits, 'survey': survey, 'taxi': taxi, 'penguin': penguin, 'imdb': imdb,
}


def split(rows: Rows, how: str, seed: int = 0, eval_fraction: float = 0.2) -> Tuple[Rows, Rows]:
  """random (shuffled), order (first rows train, last rows eval, as a file is cut) or hash (of the whole row, as
  ExampleGen splits: identical rows land together)."""
  if how == 'random':
    order = np.random.default_rng(seed).permutation(len(rows))
  elif how == 'order':
    order = np.arange(len(rows))
  elif how == 'hash':
    import hashlib
    keys = [int(hashlib.md5(repr(sorted(r.items())).encode()).hexdigest()[:8], 16) % 100 for r in rows]
    is_eval = np.array(keys) < eval_fraction * 100
    return [r for r, e in zip(rows, is_eval) if not e], [r for r, e in zip(rows, is_eval) if e]
  else:
    raise ValueError(how)
  cut = len(rows) - int(round(len(rows) * eval_fraction))
  return [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]
