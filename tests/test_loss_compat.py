"""Compatibility of the loss check with TFX's own Trainer code and data, unmodified, from the installed tfx wheel.

Each module is checked the way Trainer runs it (run_fn called with FnArgs, stopped at model.fit) and must pass:
a gate that blocks TFX's own examples blocks good models. One LocalDagRunner pipeline (penguin, with a real Transform)
shows the whole path: Preflight blesses and Trainer then trains under `tfx.dsl.Cond`.
"""

import json
import os
import sys

import pytest
import tfx

from tfx_preflight import cli
from tfx_preflight.checks.loss import check as loss
from tfx_preflight.config import LossConfig

TFX_DIR = os.path.dirname(tfx.__file__)
TESTDATA = os.path.join(TFX_DIR, 'components', 'testdata')
TAXI_TEMPLATE = os.path.join(TFX_DIR, 'experimental', 'templates', 'taxi')
RAW = {s: os.path.join(TESTDATA, 'csv_example_gen', f'Split-{s}', '*.gz') for s in ('train', 'eval')}
TRANSFORMED = {s: os.path.join(TESTDATA, 'transform', 'transformed_examples', f'Split-{s}', '*.gz')
               for s in ('train', 'eval')}
TRANSFORM_GRAPH = os.path.join(TESTDATA, 'transform', 'transform_graph')
TRAINER_MODULE = os.path.join(TESTDATA, 'module_file', 'trainer_module.py')


@pytest.fixture
def tf_keras_trainer(monkeypatch):
  """Trainer in a process launched with TF_USE_LEGACY_KERAS=1 (tf_keras): the testdata trainer_module builds its
  model with a Keras 2 idiom that Keras 3, what this test process bound, rejects, and so does Trainer under it."""
  from tfx_preflight.checks.loss import keras_api as loss_keras
  monkeypatch.setattr(loss_keras, 'trainer_keras', lambda: loss_keras.TrainerKeras(
      loss_keras.TF_KERAS, 'the test: a pipeline launched with TF_USE_LEGACY_KERAS=1', '1'))


def codes(result, severity='block'):
  return sorted({f['code'] for f in result['findings'] if f['severity'] == severity})


@pytest.mark.slow
def test_testdata_trainer_module_with_transformed_examples_passes(tmp_path, tf_keras_trainer):
  inputs = loss.LossInputs(TRAINER_MODULE, RAW, 'train', ('eval',), 'tips', transform_graph_uri=TRANSFORM_GRAPH,
                           transformed_examples=TRANSFORMED)
  result = loss.check_loss(inputs, LossConfig(timeout_seconds=240), str(tmp_path / 'loss')).to_dict()
  assert result['status'] in ('pass', 'warn') and codes(result) == [], result['findings']
  assert result['info']['run_fn'] == 'run_fn' and result['info']['loss'] == 'binary_crossentropy'
  assert result['info']['keras'] == 'tf_keras'
  fit = result['measurements']['fit_batch']
  assert fit['after'] < fit['before']
  assert set(result['measurements']['eval_path']) == {'eval'}
  assert [os.path.basename(os.path.dirname(f)) for f in result['validation_files']] == ['Split-eval']


@pytest.mark.slow
def test_taxi_template_through_a_dotted_run_fn_passes(tmp_path, monkeypatch):
  # As the template's local_runner.py runs: from the template folder, so `models` is importable.
  monkeypatch.syspath_prepend(TAXI_TEMPLATE)
  inputs = loss.LossInputs(None, RAW, 'train', ('eval',), 'tips', transform_graph_uri=TRANSFORM_GRAPH,
                           run_fn='models.keras_model.model.run_fn', transformed_examples=TRANSFORMED)
  result = loss.check_loss(inputs, LossConfig(timeout_seconds=240), str(tmp_path / 'loss')).to_dict()
  assert result['status'] in ('pass', 'warn') and codes(result) == [], result['findings']
  assert result['info']['run_fn'] == 'run_fn' and result['info']['output_units'] == 1
  assert result['module_file'] == 'models.keras_model.model.run_fn'
  assert [os.path.basename(os.path.dirname(f)) for f in result['validation_files']] == ['Split-eval']


@pytest.mark.slow
def test_cli_transforms_raw_examples_with_the_graph_for_run_fn(tmp_path, capsys, tf_keras_trainer):
  out = tmp_path / 'out'
  code = cli.main(['check', '--train', RAW['train'], '--eval', RAW['eval'], '--module-file', TRAINER_MODULE,
                   '--transform-graph', TRANSFORM_GRAPH, '--custom-config', '{"unused": 1}', '--checks', 'loss',
                   '--label-key', 'tips', '--out', str(out)])
  assert code == 0, capsys.readouterr()
  report = json.loads((out / 'report.json').read_text())
  result = report['checks']['loss']
  assert result['status'] in ('pass', 'warn') and codes(result) == [], result['findings']
  assert result['info']['run_fn'] == 'run_fn'


def test_cli_rejects_trainer_inputs_that_trainer_would_reject(tmp_path, capsys):
  base = ['check', '--train', RAW['train'], '--eval', RAW['eval'], '--checks', 'loss', '--out', str(tmp_path)]
  assert cli.main(base + ['--run-fn', 'run_fn']) == 2  # Not dotted, and no module file to find it in.
  assert 'dotted path' in capsys.readouterr().err
  assert cli.main(base + ['--module-file', TRAINER_MODULE, '--custom-config', '[1]']) == 2
  assert 'JSON object' in capsys.readouterr().err
  assert cli.main(base + ['--module-file', TRAINER_MODULE, '--transform-graph', str(tmp_path)]) == 2
  assert 'transform_fn' in capsys.readouterr().err
  assert cli.main(base + ['--module-file', TRAINER_MODULE, '--transformed-train', TRANSFORMED['train']]) == 2
  assert 'go together' in capsys.readouterr().err


@pytest.mark.slow
def test_penguin_keras_module_is_blessed_and_trainer_then_trains(tmp_path):
  """TFX's penguin Keras module copied unmodified into the user's folder, with TFX's penguin testdata and a real
  Transform: Preflight (reading the transformed examples Trainer reads) blesses, and the guarded Trainer trains."""
  import shutil

  from ml_metadata import metadata_store
  from tfx import v1 as tfx_v1
  from tfx.examples.penguin import penguin_utils_keras

  from pipelines import penguin

  module_file = str(tmp_path / 'penguin_utils_keras.py')
  shutil.copy(penguin_utils_keras.__file__, module_file)
  metadata_path = str(tmp_path / 'metadata.db')
  tfx_v1.orchestration.LocalDagRunner().run(penguin.create_pipeline(
      'penguin-preflight', str(tmp_path / 'root'), os.path.join(penguin.TESTDATA_DIR, 'data'), module_file,
      metadata_path))

  store = metadata_store.MetadataStore(tfx_v1.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))
  [blessing] = store.get_artifacts_by_type('tfx_preflight.PreflightBlessing')
  [report_artifact] = store.get_artifacts_by_type('tfx_preflight.PreflightReport')
  report = json.loads(open(os.path.join(report_artifact.uri, 'report.json')).read())
  assert report['checks']['loss']['status'] in ('pass', 'warn'), report['checks']['loss']['findings']
  assert report['checks']['loss']['info']['run_fn'] == 'run_fn'
  assert report['checks']['loss']['validation_files'] and 'count_differences' not in report['inputs']
  assert blessing.custom_properties['blessed'].int_value == 1
  [model] = store.get_artifacts_by_type('Model')  # Trainer ran and wrote its model.
  assert os.path.isdir(os.path.join(model.uri, 'Format-Serving'))
  seconds = penguin.component_seconds(metadata_path)
  print('component wall time (s):', json.dumps(seconds, sort_keys=True))


def test_preflight_takes_run_fn_custom_config_and_transformed_examples_as_trainer_does():
  from tfx.types import Channel, standard_artifacts

  from tfx_preflight import Preflight
  examples = Channel(type=standard_artifacts.Examples)
  transformed = Channel(type=standard_artifacts.Examples)
  preflight = Preflight(examples=examples, run_fn='models.keras_model.model.run_fn', custom_config={'epochs': 2},
                        transformed_examples=transformed)
  assert preflight.exec_properties['run_fn'] == 'models.keras_model.model.run_fn'
  assert json.loads(preflight.exec_properties['custom_config']) == {'epochs': 2}
  assert preflight.inputs['transformed_examples'] is transformed
  with pytest.raises(ValueError, match='custom_config needs to be a dict'):
    Preflight(examples=examples, module_file='trainer.py', custom_config=[1])


_SIBLING_IMPORT = '''
import {sibling}


def run_fn(fn_args):
  del fn_args
'''


@pytest.mark.parametrize('packaged', [True, False])
def test_module_folder_is_importable_only_when_trainer_packages_it(tmp_path, monkeypatch, packaged):
  """Trainer packages the module's folder (siblings importable) unless UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES is set,
  as TFX's Kubeflow runner sets it: then a sibling import fails in Trainer, and must fail in the probe too."""
  from tfx_preflight.checks.loss import probe as loss_probe
  sibling = f'preflight_sibling_{int(packaged)}_{os.getpid()}'
  (tmp_path / f'{sibling}.py').write_text('VALUE = 1\n')
  trainer = tmp_path / 'trainer.py'
  trainer.write_text(_SIBLING_IMPORT.format(sibling=sibling))
  if packaged:
    monkeypatch.delenv('UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES', raising=False)
  else:
    monkeypatch.setenv('UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES', '1')
  monkeypatch.setattr(sys, 'path', list(sys.path))  # The probe runs in-process here: keep sys.path as it was.
  request = loss.build_request(loss.LossInputs(str(trainer), TRANSFORMED, 'train', ('eval',)), LossConfig(),
                               str(trainer), str(tmp_path / 'work'))
  probe = loss_probe.run(request)
  if packaged:
    assert probe.findings == [] and probe.skipped_reason  # Imported; run_fn returns without fit.
  else:
    assert [f['code'] for f in probe.findings] == ['import_error']
    assert sibling in probe.findings[0]['message']
