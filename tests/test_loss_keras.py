"""Which Keras the loss probe runs the module with: the one Trainer gets, observed in the gate's process or predicted
from the environment a process is launched with, and checked again inside the probe."""

import json
import os
import subprocess
import sys
import types

import pytest
import tensorflow as tf
import tfx

from tfx_preflight.checks.loss import check as loss
from tfx_preflight.checks.loss import keras_api as loss_keras
from tfx_preflight.checks.loss import probe as loss_probe
from tfx_preflight.checks.loss import process as loss_process
from tfx_preflight.config import LossConfig

TFX_DIR = os.path.dirname(tfx.__file__)
TESTDATA = os.path.join(TFX_DIR, 'components', 'testdata')
RAW = {s: os.path.join(TESTDATA, 'csv_example_gen', f'Split-{s}', '*.gz') for s in ('train', 'eval')}
TRANSFORM_GRAPH = os.path.join(TESTDATA, 'transform', 'transform_graph')
TAXI_NATIVE_KERAS = os.path.join(TFX_DIR, 'examples', 'chicago_taxi_pipeline', 'taxi_utils_native_keras.py')


@pytest.mark.parametrize('name, flavour', [('keras._tf_keras.keras', 'keras3'), ('tf_keras.api._v2.keras', 'tf_keras'),
                                           ('tf_keras', 'tf_keras'), ('something_else', None)])
def test_flavour_from_the_module_tf_keras_is_bound_to(name, flavour):
  assert loss_keras.flavour_of(types.ModuleType(name)) == flavour


def test_tf_rule_for_the_environment_variable():
  # TF 2.16 with tf_keras and Keras 3 installed (this stack): only 'true', 'True' and '1' select tf_keras.
  assert [loss_keras.flavour_for_env(v) for v in ('1', 'true', 'True', '0', 'yes', None)] == [
      'tf_keras', 'tf_keras', 'tf_keras', 'keras3', 'keras3', 'keras3']


def test_probe_environment_gives_the_probe_the_flavour_and_never_forces_keras_2(monkeypatch):
  monkeypatch.setenv('TF_USE_LEGACY_KERAS', '1')  # As tensorflow_transform leaves it after TF bound Keras 3.
  env = loss_process.child_env(loss_keras.TrainerKeras('keras3', 'test', loss_keras.env_for('keras3')))
  assert env['TF_USE_LEGACY_KERAS'] == '0'
  assert loss_process.child_env(loss_keras.TrainerKeras('tf_keras', 'test', '1'))['TF_USE_LEGACY_KERAS'] == '1'
  # TF 2.15 has no tf_keras: the variable must not be set there (TF's import then recurses forever).
  assert 'TF_USE_LEGACY_KERAS' not in loss_process.child_env(loss_keras.TrainerKeras('keras2', 'test', None))


def test_this_process_binding_is_what_is_observed():
  bound = loss_keras.flavour_of(tf.keras)
  decided = loss_keras.trainer_keras()
  assert decided.flavour == bound and decided.source.startswith('observed')


@pytest.mark.parametrize('launched, flavour', [('1', 'tf_keras'), (None, 'keras3'), ('0', 'keras3')])
def test_unbound_process_predicts_from_the_environment_it_was_launched_with(monkeypatch, launched, flavour):
  # The CLI: TensorFlow has not bound tf.keras yet, and os.environ may since have been changed by an import.
  monkeypatch.setattr(loss_keras, 'bound_flavour', lambda: None)
  monkeypatch.setattr(loss_keras, 'launch_env_value', lambda: launched)
  monkeypatch.setenv('TF_USE_LEGACY_KERAS', '1')  # As tensorflow_transform leaves it: must not count.
  decided = loss_keras.trainer_keras()
  assert decided.flavour == flavour and decided.source.startswith('predicted')
  assert decided.legacy_env == {'tf_keras': '1', 'keras3': '0'}[flavour]


@pytest.mark.parametrize('launched', ['1', '0', None])
def test_launch_environment_is_read_from_the_process_not_os_environ(launched):
  # A fresh process launched with a known environment, which then changes os.environ as an import would: this
  # process's own os.environ may already have been changed by earlier imports (tensorflow_transform sets it to 1).
  env = {k: v for k, v in os.environ.items() if k != 'TF_USE_LEGACY_KERAS'}
  if launched is not None:
    env['TF_USE_LEGACY_KERAS'] = launched
  code = ("import os; os.environ['TF_USE_LEGACY_KERAS'] = 'changed-after-launch'; "
          "from tfx_preflight.checks.loss import keras_api; print(repr(keras_api.launch_env_value()))")
  out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, check=True).stdout
  assert out.strip() == repr(launched)


def test_probe_under_another_keras_than_trainer_blocks_and_claims_nothing(tmp_path):
  other = 'tf_keras' if loss_keras.flavour_of(tf.keras) != 'tf_keras' else 'keras3'
  keras = loss_keras.TrainerKeras(other, 'decided by the test', loss_keras.env_for(other))
  inputs = loss.LossInputs(TAXI_NATIVE_KERAS, RAW, 'train', ('eval',), 'tips', transform_graph_uri=TRANSFORM_GRAPH)
  request = loss.build_request(inputs, LossConfig(), TAXI_NATIVE_KERAS, str(tmp_path), keras=keras)
  probe = loss_probe.run(request)
  assert [f['code'] for f in probe.findings] == ['keras_mismatch']
  assert 'Trainer would fail' not in probe.findings[0]['message'] and other in probe.findings[0]['message']
  assert 'run_fn' not in probe.info  # The module was not even imported.


def _cli(tmp_path, legacy):
  env = {k: v for k, v in os.environ.items() if k != 'TF_USE_LEGACY_KERAS'}
  if legacy is not None:
    env['TF_USE_LEGACY_KERAS'] = legacy
  out = tmp_path / f'cli-{legacy}'
  run = subprocess.run(
      [sys.executable, '-m', 'tfx_preflight.cli', 'check', '--train', RAW['train'], '--eval', RAW['eval'],
       '--module-file', TAXI_NATIVE_KERAS, '--transform-graph', TRANSFORM_GRAPH, '--checks', 'loss',
       '--label-key', 'tips', '--out', str(out)], env=env, capture_output=True, text=True, timeout=600)
  return run.returncode, json.loads((out / 'report.json').read_text())['checks']['loss'], env


def _real_trainer(tmp_path, env):
  """TFX's Trainer itself on the same module and data, in a process launched with the same environment."""
  run = subprocess.run(
      [sys.executable, '-m', 'tests.real_trainer', TAXI_NATIVE_KERAS,
       os.path.join(TESTDATA, 'transform', 'transformed_examples'), TRANSFORM_GRAPH, str(tmp_path / 'trainer'), '2'],
      env=env, capture_output=True, text=True, timeout=600)
  return run.returncode == 0, run.stdout


@pytest.mark.slow
def test_cli_judges_taxi_native_keras_under_the_keras_its_environment_selects(tmp_path):
  """TFX's taxi_utils_native_keras.py builds its model with a Keras 2 idiom that Keras 3 rejects ('inputs not
  connected to outputs'). Launched without TF_USE_LEGACY_KERAS, Trainer gets Keras 3 and fails: so must the gate, and
  only then may it say Trainer fails the same way. Launched with it, tf_keras builds and fits it (Trainer trains: 3
  minutes with TFX's saving, measured, too slow to repeat here) and the gate passes."""
  code, result, env = _cli(tmp_path, None)
  trained, said = _real_trainer(tmp_path, env)
  assert result['info']['keras'] == 'keras3' and 'TF_USE_LEGACY_KERAS unset' in result['info']['keras_source']
  assert not trained and 'not connected' in said
  assert code == 1 and [f['code'] for f in result['findings']] == ['run_fn_error'], result['findings']
  assert 'not connected' in result['findings'][0]['message'] and 'Trainer would fail the same way' in \
      result['findings'][0]['message']

  code, result, _ = _cli(tmp_path, '1')
  assert result['info']['keras'] == 'tf_keras', result['info']
  assert code == 0 and result['status'] in ('pass', 'warn'), result['findings']


@pytest.mark.slow
def test_local_dag_runner_never_blesses_what_its_trainer_cannot_train(tmp_path):
  """The invariant, end to end: TFX's taxi_utils_native_keras.py, unmodified, with Transform, in a LocalDagRunner
  pipeline started as a user starts it (a plain process, no TF_USE_LEGACY_KERAS): either the gate blocks and Trainer
  never runs, or it blesses and Trainer trains. The gate observes the Keras the pipeline's process bound."""
  from ml_metadata import metadata_store
  from tfx import v1 as tfx_v1
  env = {k: v for k, v in os.environ.items() if k != 'TF_USE_LEGACY_KERAS'}
  run = subprocess.run([sys.executable, '-m', 'tests.taxi_keras_pipeline', str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=900)
  assert run.returncode == 0, run.stderr[-3000:]
  store = metadata_store.MetadataStore(tfx_v1.orchestration.metadata.sqlite_metadata_connection_config(
      str(tmp_path / 'metadata.db')))
  [blessing] = store.get_artifacts_by_type('tfx_preflight.PreflightBlessing')
  [report_artifact] = store.get_artifacts_by_type('tfx_preflight.PreflightReport')
  result = json.loads(open(os.path.join(report_artifact.uri, 'report.json')).read())['checks']['loss']
  assert result['info']['keras'] == 'keras3' and result['info']['keras_source'].startswith('observed'), result['info']
  models = store.get_artifacts_by_type('Model')
  if blessing.custom_properties['blessed'].int_value == 1:
    assert models and os.path.isdir(os.path.join(models[0].uri, 'Format-Serving'))
  else:
    assert models == [] and [f['code'] for f in result['findings']] == ['run_fn_error'], result['findings']


@pytest.mark.parametrize('path, flavour', [
    ('/venv/lib/python3.10/site-packages/keras/api/_v2/keras/__init__.py', 'keras2'),
    ('/venv/lib/python3.10/site-packages/tf_keras/__init__.py', 'tf_keras'),
    ('/somewhere/else/__init__.py', None)])
def test_tf_2_15_keras_imported_as_tensorflow_keras_is_told_by_its_file(monkeypatch, path, flavour):
  """TF 2.15 after `import tensorflow.keras` (TFX 1.15 runs it) binds tf.keras to a module named 'tensorflow.keras':
  found by the TFX 1.15 lane, where the probe read it as unknown and blocked every module (keras_mismatch)."""
  monkeypatch.setattr(loss_keras, '_keras_major', lambda: 2)
  module = types.ModuleType('tensorflow.keras')
  module.__file__ = path
  assert loss_keras.flavour_of(module) == flavour
