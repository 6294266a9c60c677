"""Memory of past training data: a blessed run saves its train hashes (--save-history), a later run joins its eval
with them (--history) without their examples; counted apart from today's train, for rows today's train lacks."""

import io
import json

import numpy as np
import pytest

from tests.helpers import tabular_rows, without_progress, write_tfrecords
from tfx_preflight import cli
from tfx_preflight.checks.leakage import history
from tfx_preflight.inputs.data import InputError


def test_in_stored_matches_whole_128_bit_hashes_only():
  rng = np.random.default_rng(0)
  stored = rng.integers(0, 2**63, size=(1000, 2), dtype=np.uint64)
  queries = np.concatenate([stored[:50], rng.integers(0, 2**63, size=(200, 2), dtype=np.uint64),
                            np.stack([stored[50:80, 0], stored[50:80, 1] + np.uint64(1)], axis=1)])  # First lane only.
  oracle = np.array([tuple(q) in set(map(tuple, stored.tolist())) for q in queries.tolist()])
  assert oracle.sum() == 50
  assert np.array_equal(history.in_stored(queries, stored), oracle)


def test_a_stored_file_that_is_not_a_hash_array_is_refused_naming_it(tmp_path):
  path = tmp_path / 'hashes-00000.npy'
  buffer = io.BytesIO()
  np.save(buffer, np.array([{'a': 1}], dtype=object), allow_pickle=True)
  path.write_bytes(buffer.getvalue())
  with pytest.raises(InputError, match='hashes-00000.npy is not a train hashes file'):
    history.read_hashes(str(path))
  path.write_bytes(history.to_npy(np.zeros((3, 2))).replace(b'<u8', b'<f8'))
  with pytest.raises(InputError, match=r'hashes-00000.npy holds a float64 array'):
    history.read_hashes(str(path))
  with pytest.raises(InputError, match='no train_hashes.json'):
    history.load(str(tmp_path))


def _run(capsys, *argv):
  code = cli.main(list(argv))
  out, err = capsys.readouterr()
  return code, out, without_progress(err)


@pytest.mark.slow
def test_eval_copies_of_an_earlier_runs_train_block_through_saved_hashes(capsys, tmp_path):
  yesterday, today = tabular_rows(1500, seed=5), tabular_rows(1500, seed=6, offset=10_000)
  common = ['--label-key', 'label', '--exclude-features', 'id', '--checks', 'leakage']
  code, out, _ = _run(capsys, 'check', '--train', write_tfrecords(str(tmp_path / 'd1' / 'train.gz'), yesterday[:1200]),
                      '--eval', write_tfrecords(str(tmp_path / 'd1' / 'eval.gz'), yesterday[1200:]),
                      '--out', str(tmp_path / 'r1'), '--save-history', str(tmp_path / 'h1'), *common)
  assert code == cli.EXIT_OK, out
  manifest = json.loads((tmp_path / 'h1' / 'train_hashes.json').read_text())
  assert manifest['blessed'] and manifest['examples'] == 1200 and manifest['distinct_hashes'] == 1200
  assert sum(history.read_hashes(str(tmp_path / 'h1' / name)).shape[0] for name in manifest['files']) == 1200

  # Today: yesterday's train is not in today's train, but 40 of its rows (new ids) sit in today's eval.
  copies = [dict(r, id=90_000 + i) for i, r in enumerate(yesterday[:40])]
  code, out, _ = _run(capsys, 'check', '--train', write_tfrecords(str(tmp_path / 'd2' / 'train.gz'), today[:1200]),
                      '--eval', write_tfrecords(str(tmp_path / 'd2' / 'eval.gz'), today[1200:] + copies),
                      '--out', str(tmp_path / 'r2'), '--history', str(tmp_path / 'h1'),
                      '--save-history', str(tmp_path / 'h2'), *common)
  leakage = json.loads((tmp_path / 'r2' / 'report.json').read_text())['checks']['leakage']
  assert code == cli.EXIT_BLOCK, out
  assert leakage['cross_split'][0]['duplicate_examples'] == 0
  assert [(p['duplicate_examples'], p['history_only_examples']) for p in leakage['history']] == [(40, 40)]
  assert [f['kind'] for f in leakage['findings']] == ['history_duplicates']
  assert {s['history'] for s in leakage['history'][0]['samples']} == {str(tmp_path / 'h1')}
  assert leakage['history_artifacts'] == [{'path': str(tmp_path / 'h1'), 'examples': 1200, 'distinct_hashes': 1200,
                                           'compared': True}]
  assert "Eval examples in earlier runs' training data" in (tmp_path / 'r2' / 'report.html').read_text()
  # Blocked: nothing will be trained on, so no hash is kept.
  assert json.loads((tmp_path / 'h2' / 'train_hashes.json').read_text())['files'] == []
  assert not list((tmp_path / 'h2').glob('hashes-*'))
