"""The gate in a real TFX pipeline: LocalDagRunner + Beam DirectRunner + sqlite ML Metadata, on the demo's data.

Which check each test depends on:
  - test_clean_pipeline_blesses_and_trains: none (any check that wrongly blocks clean data fails it).
  - test_blocked_gate_skips_trainer[normalize_train_only]: skew.   [leaky_split]: leakage.   [zero_loss]: loss.
  - test_fail_on_block_fails_the_run: skew (normalize_train_only data).
  - test_statistics_from_the_gate_feed_schema_gen_and_trainer_trains_after_the_blessing: none (clean data), and the
    example_statistics output SchemaGen reads.
  - The fast tests (factory, data scenarios) depend on no check.
"""

import os

import numpy as np
import pytest
from ml_metadata.metadata_store import metadata_store
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx.dsl.io import fileio

from pipelines import data as data_lib
from pipelines import local_runner
from pipelines import pipeline as pipeline_lib

# Small enough for a test (240 train / 60 eval images); the gate's verdicts do not depend on the size.
_LIMIT = 300
_TRAIN_STEPS = 8
_EVAL_STEPS = 2
_EXPECTED_FINDING = {'normalize_train_only': ('skew', 'kind', 'scale_mismatch'),
                     'leaky_split': ('leakage', 'kind', 'near_duplicates'),
                     'zero_loss': ('loss', 'code', 'constant_loss')}


def _run(tmp_path, scenario, **kwargs):
  paths = local_runner.RunPaths(str(tmp_path), scenario)
  data_lib.generate(scenario, paths.data_root, limit=_LIMIT)
  local_runner.run_pipeline(paths, local_runner.module_for(scenario), train_steps=_TRAIN_STEPS,
                            eval_steps=_EVAL_STEPS, **kwargs)
  return paths


def _store(paths):
  return metadata_store.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(
      paths.metadata_path))


def _blessed_values(store):
  return [a.custom_properties['blessed'].int_value for a in store.get_artifacts_by_type(local_runner.BLESSING_TYPE)]


def _model_artifacts(store):
  return store.get_artifacts_by_type(local_runner.MODEL_TYPE)  # [] when no Trainer ever registered the type.


def _completed_trainer_executions(store):
  types = {t.id: t.name for t in store.get_execution_types()}
  return [e for e in store.get_executions()
          if 'Trainer' in types[e.type_id] and e.last_known_state == e.COMPLETE]


def _saved_models_under(pipeline_root):
  trainer_dir = os.path.join(pipeline_root, 'Trainer')
  if not fileio.exists(trainer_dir):
    return []
  return [os.path.join(d, 'saved_model.pb') for d, _, files in fileio.walk(trainer_dir) if 'saved_model.pb' in files]


def test_create_pipeline_is_a_pure_factory_that_gates_trainer(tmp_path):
  root = tmp_path / 'root'
  gated = pipeline_lib.create_pipeline('p', str(root), str(tmp_path / 'data'), local_runner.CNN_MODULE)
  assert [c.id for c in gated.components] == ['ImportExampleGen', 'StatisticsGen', 'SchemaGen', 'Preflight',
                                              'Trainer']
  assert not root.exists()  # Building touches nothing; runners own paths.
  trainer = gated.components[-1]
  assert [type(c).__name__ for c in gated.dsl_context_registry.get_contexts(trainer)] == ['CondContext']
  preflight = gated.components[3]
  assert preflight.exec_properties['module_file'] == local_runner.CNN_MODULE

  ungated = pipeline_lib.create_pipeline('p', str(root), str(tmp_path / 'data'), local_runner.CNN_MODULE,
                                         enable_gate=False, preflight_kwargs={'leakage': {'mode': 'warn'}})
  trainer = ungated.components[-1]
  assert ungated.dsl_context_registry.get_contexts(trainer) == []
  assert 'Preflight' in [n.id for n in trainer.upstream_nodes]
  config = ungated.components[3].exec_properties['config']
  assert '"mode": "warn"' in config and '"timeout_seconds": 300.0' in config  # Overrides merge with the defaults.


def test_statistics_from_the_gate_leave_statistics_gen_out(tmp_path):
  pipeline = pipeline_lib.create_pipeline('p', str(tmp_path / 'root'), str(tmp_path / 'data'), local_runner.CNN_MODULE,
                                          statistics_from_gate=True)
  assert [c.id for c in pipeline.components] == ['ImportExampleGen', 'Preflight', 'SchemaGen', 'Trainer']
  preflight, schema_gen, trainer = pipeline.components[1:]
  assert schema_gen.inputs['statistics'] is preflight.outputs['example_statistics']
  assert 'schema' not in preflight.inputs  # Upstream of SchemaGen: no schema, or a user's (ImportSchemaGen).
  assert [type(c).__name__ for c in pipeline.dsl_context_registry.get_contexts(trainer)] == ['CondContext']


def test_scenario_data_is_deterministic_and_broken_as_described():
  clean = data_lib.make_splits('clean', limit=_LIMIT)
  again = data_lib.make_splits('clean', limit=_LIMIT)
  np.testing.assert_array_equal(clean.train_pixels, again.train_pixels)
  assert clean.train_pixels.shape == (240, data_lib.NUM_PIXELS) and clean.eval_pixels.shape == (60, 3072)
  assert clean.train_pixels.max() <= 1.0 and clean.eval_pixels.max() <= 1.0
  assert set(np.unique(clean.train_labels)) == set(range(data_lib.NUM_CLASSES))
  train_rows = {r.tobytes() for r in clean.train_pixels}
  assert not any(r.tobytes() in train_rows for r in clean.eval_pixels)  # A clean split shares no row.

  skewed = data_lib.make_splits('normalize_train_only', limit=_LIMIT)
  np.testing.assert_array_equal(skewed.train_pixels, clean.train_pixels)
  np.testing.assert_allclose(skewed.eval_pixels, clean.eval_pixels * 255.0, rtol=1e-5)
  assert skewed.eval_pixels.max() > 200

  leaky = data_lib.make_splits('leaky_split', limit=_LIMIT)
  copied = leaky.eval_copied_from >= 0
  assert copied.sum() == 30
  exact = [r.tobytes() in train_rows for r in leaky.eval_pixels]
  assert sum(exact) == 0  # Augmented copies only: none is byte-identical,
  change = np.abs(leaky.eval_pixels[copied] - leaky.train_pixels[leaky.eval_copied_from[copied]])
  assert (change.max(axis=1) > 0).all() and change.max() < 0.05  # each changed by noise and a brightness shift.
  np.testing.assert_array_equal(leaky.eval_labels[copied], leaky.train_labels[leaky.eval_copied_from[copied]])


@pytest.mark.slow
def test_clean_pipeline_blesses_and_trains(tmp_path):
  paths = _run(tmp_path, 'clean')
  store = _store(paths)
  assert _blessed_values(store) == [1]
  outcome = local_runner.read_outcome(paths.metadata_path)
  assert outcome.verdict in ('pass', 'warn')
  assert outcome.report['verdict'] == outcome.verdict
  assert len(_completed_trainer_executions(store)) == 1
  models = _model_artifacts(store)
  assert len(models) == 1
  assert fileio.exists(os.path.join(models[0].uri, 'Format-Serving', 'saved_model.pb'))
  assert outcome.trainer_metrics['train_steps'] == _TRAIN_STEPS
  # The headline numbers are searchable in MLMD on the report artifact.
  report = store.get_artifacts_by_type(local_runner.REPORT_TYPE)[0]
  assert report.custom_properties['verdict'].string_value == outcome.verdict


@pytest.mark.slow
@pytest.mark.parametrize('scenario', ['normalize_train_only', 'leaky_split', 'zero_loss'])
def test_blocked_gate_skips_trainer(tmp_path, scenario):
  paths = _run(tmp_path, scenario)
  store = _store(paths)
  assert _blessed_values(store) == [0]
  outcome = local_runner.read_outcome(paths.metadata_path)
  assert outcome.verdict == 'block'
  check, key, value = _EXPECTED_FINDING[scenario]
  assert outcome.report['checks'][check]['status'] == 'block'
  if key is not None:
    assert value in [f.get(key) for f in outcome.report['checks'][check]['findings']]
  # Trainer was skipped by the Cond: no execution, no Model artifact, no SavedModel anywhere in the pipeline root.
  assert _completed_trainer_executions(store) == []
  assert _model_artifacts(store) == []
  assert outcome.model_uris == []
  assert _saved_models_under(paths.pipeline_root) == []
  assert fileio.exists(os.path.join(outcome.report_uri, 'report.html'))
  if scenario == 'leaky_split':  # The augmented copies drawn beside their train images.
    with fileio.open(os.path.join(outcome.report_uri, 'report.html'), 'r') as page:
      assert page.read().count('data:image/png;base64,') >= 2


@pytest.mark.slow
def test_statistics_from_the_gate_feed_schema_gen_and_trainer_trains_after_the_blessing(tmp_path):
  """ExampleGen -> Preflight(output_statistics=True) -> SchemaGen -> Trainer (gated): no StatisticsGen."""
  paths = _run(tmp_path, 'clean', statistics_from_gate=True)
  store = _store(paths)
  assert _blessed_values(store) == [1]
  statistics, = store.get_artifacts_by_type('ExampleStatistics')
  assert statistics.properties['split_names'].string_value == '["train", "eval"]'
  assert fileio.exists(os.path.join(statistics.uri, 'Split-train', 'FeatureStats.pb'))
  schema, = store.get_artifacts_by_type('Schema')  # SchemaGen's, inferred from the gate's statistics.
  inferred = tfx.utils.parse_pbtxt_file(os.path.join(schema.uri, 'schema.pbtxt'), schema_pb2.Schema())
  assert {f.name for f in inferred.feature} >= {'pixels', 'label'}
  assert len(_completed_trainer_executions(store)) == 1
  models = _model_artifacts(store)
  assert len(models) == 1 and fileio.exists(os.path.join(models[0].uri, 'Format-Serving', 'saved_model.pb'))
  report = local_runner.read_outcome(paths.metadata_path).report
  assert report['verdict'] in ('pass', 'warn') and 'statistics' not in report['inputs']  # Computed, not given.


@pytest.mark.slow
def test_fail_on_block_fails_the_run(tmp_path):
  with pytest.raises(Exception) as raised:
    _run(tmp_path, 'normalize_train_only', preflight_kwargs={'fail_on_block': True})
  chain, error = [], raised.value
  while error is not None:
    chain.append(f'{type(error).__name__}: {error}')
    error = error.__cause__ or error.__context__
  text = '\n'.join(chain)
  assert 'Preflight blocked training' in text
  assert 'pixels' in text  # The summary names the feature.
  store = _store(local_runner.RunPaths(str(tmp_path), 'normalize_train_only'))
  assert _completed_trainer_executions(store) == []
  assert _model_artifacts(store) == []
