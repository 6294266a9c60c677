"""The loss check on real Trainer modules, real tf.Example TFRecords (scikit-learn digits) and a TFDV-inferred schema.

Fast tests run the probe in-process (`loss_probe.run`: the same battery, without the subprocess); the tests of the
isolation itself (subprocess, timeout, crash, memory cap) and the penguin pipeline with a real Transform graph are
slow: each subprocess imports TensorFlow and TFX again.
"""

import dataclasses
import importlib
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from tfx.utils import io_utils

from tests.helpers import MODULES, codes, gone, module, write_splits
from tfx_preflight.checks.loss import battery as loss_battery
from tfx_preflight.checks.loss import check as loss
from tfx_preflight.checks.loss import model as loss_model
from tfx_preflight.checks.loss import probe as loss_probe
from tfx_preflight.checks.loss import protocol as loss_protocol
from tfx_preflight.checks.loss import real_batch as loss_real_batch
from tfx_preflight.checks.loss import render as render_loss
from tfx_preflight.checks.loss.details import LossDetails
from tfx_preflight.checks.loss.protocol import ProbeRequest
from tfx_preflight.checks.loss.recorder import Probe
from tfx_preflight.config import LossConfig, PreflightConfig
from tfx_preflight.report import build as report
from tfx_preflight.report.results import CheckResult, Coverage, Finding


def probe_in_process(digits, tmp_path, name: str, run_fn=None, custom_config=None, **config) -> Probe:
  inputs = loss.LossInputs(module(name), digits['examples'], 'train', ('eval',), 'label', digits['schema_path'],
                           statistics=digits['statistics'], run_fn=run_fn, custom_config=custom_config)
  request = loss.build_request(inputs, LossConfig(**config), module(name), str(tmp_path))
  return loss_probe.run(request)


# ---------------------------------------------------------------------------------------------------------------------
# Trainer modules, in-process.


def test_correct_module_has_no_blocking_finding(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'good_module')
  assert codes(probe.findings, 'block') == []
  assert probe.info['model_fn'] == '_build_keras_model' and probe.info['input_fn'] == '_input_fn'
  m = probe.measurements
  assert m['loss_on_synthetic_predictions']['perfect'] < m['loss_on_synthetic_predictions']['random']
  # The fit stops once the loss fell as the check requires (by 1% at least): Adam at 1e-2 needs a step or two of 30.
  assert m['fit_batch']['after'] <= 0.99 * m['fit_batch']['before']
  assert m['fit_batch']['stopped_because'] == 'loss_fell' and 1 <= m['fit_batch']['steps'] < 30
  assert 'seconds' not in m['fit_batch']  # Run-to-run times stay out of the report unless the budget decided.
  assert abs(m['initial_loss'] - math.log(10)) < 1.0
  assert m['eval_path']['eval']['evaluate'] == pytest.approx(m['eval_path']['eval']['direct'], rel=1e-3)


def test_seed_incorrect_loss_returning_zero_is_constant_loss(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'zero_loss_module')
  assert codes(probe.findings, 'block') == ['constant_loss']
  assert 'incorrect_loss' in probe.findings[0]['message']


def test_sigmoid_output_with_from_logits_true_is_a_mismatch(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'logits_mismatch_module')
  mismatch = [f for f in probe.findings if f['code'] == 'from_logits_mismatch']
  assert len(mismatch) == 1 and mismatch[0]['severity'] == 'block'
  assert 'sigmoid' in mismatch[0]['message']


def test_labels_beyond_output_units_are_out_of_range(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'label_range_module')
  out = [f for f in probe.findings if f['code'] == 'label_out_of_range']
  assert sorted(f['split'] for f in out) == ['eval', 'train']
  assert all(f['severity'] == 'block' and f['units'] == 5 and f['label_max'] == 9 for f in out)


def test_model_that_cannot_learn_cannot_fit_batch(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'frozen_module')
  assert codes(probe.findings, 'block') == ['cannot_fit_batch']


def test_overridden_evaluation_loss_is_eval_path_mismatch(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'eval_mismatch_module')
  assert codes(probe.findings, 'block') == ['eval_path_mismatch']
  values = probe.measurements['eval_path']['eval']
  assert values['evaluate'] != pytest.approx(values['direct'], rel=1e-2)


def test_input_fn_that_fails_names_the_function_and_split(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'bad_input_fn_module')
  assert codes(probe.findings) == ['input_fn_error']
  assert '_input_fn()' in probe.findings[0]['message'] and probe.findings[0]['split'] == 'train'


def test_run_fn_that_never_calls_fit_is_skipped_not_blocked(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'no_builder_module')  # run_fn only, no model builder, no fit.
  assert probe.findings == [] and 'skipped' not in probe.info
  assert 'returned without a training call the loss check intercepts' in probe.skipped_reason


def test_configured_names_may_reach_into_modules_the_trainer_module_imported():
  import types as types_module
  helper = types_module.ModuleType('base')
  helper.input_fn = lambda *args: None
  module = types_module.ModuleType('trainer')
  module.base = helper
  assert loss_probe.find_function(module, 'base.input_fn', ()) == (helper.input_fn, 'base.input_fn')
  assert loss_probe.find_function(module, 'base.missing', ()) == (None, 'base.missing')


def test_configured_names_are_used(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'good_module', model_fn='missing_builder')
  assert codes(probe.findings) == ['model_build_error']
  assert "'missing_builder'" in probe.findings[0]['message']


@pytest.mark.parametrize('loss_fn, expected', [
    ('good_loss', []),
    ('incorrect_loss', ['constant_loss']),
    ('negated_loss', ['wrong_ordering']),
])
def test_bare_loss_fn_with_labels_from_statistics(digits, tmp_path, loss_fn, expected):
  probe = probe_in_process(digits, tmp_path, 'bare_loss_module', loss_fn=loss_fn)
  assert codes(probe.findings, 'block') == expected
  assert probe.info['layout'] == 'sparse'


# ---------------------------------------------------------------------------------------------------------------------
# run_fn, called as Trainer calls it and stopped at model.fit.


def test_run_fn_is_called_with_trainer_fn_args_and_stopped_at_fit(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'run_fn_module', custom_config={'hidden_units': [16]})
  assert codes(probe.findings, 'block') == [], probe.findings
  assert probe.info['run_fn'] == 'run_fn' and probe.info['output_units'] == 10
  m = probe.measurements
  assert m['fit_batch']['after'] <= 0.99 * m['fit_batch']['before'] and m['fit_batch']['steps'] < 30
  assert set(m['eval_path']) == {'eval'}  # validation_data, read from FnArgs.eval_files.
  assert not os.path.exists(os.path.join(str(tmp_path), 'model'))  # Stopped before training and saving.


def test_a_fit_slow_to_learn_stops_on_its_time_budget_and_does_not_conclude(digits, tmp_path):
  """Every step sleeps 0.5 s and the learning rate barely moves the loss: the fit of one batch stops on half of what
  is left of timeout_seconds, and too few steps to tell warn (fit_not_concluded) instead of blaming the loss."""
  probe = probe_in_process(digits, tmp_path, 'run_fn_module', run_fn='slow_run_fn', timeout_seconds=16,
                           custom_config={'step_seconds': 0.5, 'learning_rate': 1e-6})
  fit = probe.measurements['fit_batch']
  assert fit['stopped_because'] == 'time_budget' and 1 <= fit['steps'] < 30, fit
  assert fit['budget_seconds'] <= 8.0 and 0 < fit['seconds'] < 30 * 0.5  # Less than the 30 steps would have slept.
  assert codes(probe.findings) == ['fit_not_concluded'], probe.findings
  [finding] = probe.findings
  assert finding['severity'] == 'warn' and finding['steps'] == fit['steps'] and finding['fit_steps'] == 30
  assert f'after {fit["steps"]} of 30 optimizer steps' in finding['message']


def test_a_frozen_model_stopped_by_the_time_budget_still_cannot_fit_batch(digits, tmp_path):
  """Learning rate 0: the loss does not move at all in the steps that ran, so the budget does not hide the bug."""
  probe = probe_in_process(digits, tmp_path, 'run_fn_module', run_fn='slow_run_fn', timeout_seconds=16,
                           custom_config={'step_seconds': 0.5, 'learning_rate': 0.0})
  fit = probe.measurements['fit_batch']
  assert fit['stopped_because'] == 'time_budget' and fit['steps'] < 30 and fit['after'] == fit['before']
  assert codes(probe.findings, 'block') == ['cannot_fit_batch']
  assert f'{fit["steps"]} optimizer steps (of 30: the time budget stopped the fit)' in probe.findings[0]['message']


def test_a_slow_model_that_learns_stops_once_the_loss_fell(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'run_fn_module', run_fn='slow_run_fn', timeout_seconds=60,
                           custom_config={'step_seconds': 0.3})
  fit = probe.measurements['fit_batch']
  assert fit['stopped_because'] == 'loss_fell' and fit['steps'] <= 3 and fit['after'] <= 0.99 * fit['before']
  assert codes(probe.findings, 'block') == [], probe.findings


def test_fit_check_points_grow_geometrically_below_the_configured_steps():
  assert loss_real_batch._check_points(30) == [1, 2, 3, 4, 6, 8, 12, 18, 26]
  assert loss_real_batch._check_points(1) == [] and loss_real_batch._check_points(2) == [1]


@pytest.mark.parametrize('keras_name, flavour', [('keras', 'keras3'), ('tf_keras', 'tf_keras')])
def test_fit_is_intercepted_for_keras_3_and_tf_keras_and_restored(keras_name, flavour):
  from tfx_preflight.checks.loss import trainer as loss_trainer
  keras_module = importlib.import_module(keras_name)
  fit_before = keras_module.Model.fit
  inputs = keras_module.Input(shape=(2,))
  model = keras_module.Model(inputs, keras_module.layers.Dense(1)(inputs))
  model.compile('sgd', loss='mse')
  x, y = np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
  trained = []

  def run_fn(fn_args):
    try:
      model.fit(x, y, batch_size=2, validation_data=(x, y))
    except Exception:  # A module's own error handling must not swallow the stop.
      trained.append('swallowed')
    trained.append('after fit')

  call = loss_trainer.call_run_fn(run_fn, None)
  assert call.model is model and call.x is x and call.y is y and call.batch_size == 2 and call.keras == flavour
  assert trained == [] and keras_module.Model.fit is fit_before


def test_fallback_guess_does_not_claim_trainer_would_fail(digits, tmp_path):
  # The taxi template's case: _build_keras_model(hidden_units, learning_rate) only run_fn knows how to call.
  guessed = probe_in_process(digits, tmp_path, 'run_fn_module', model_fn='_build_keras_model')
  assert codes(guessed.findings) == ['model_build_error']
  assert 'Trainer would fail' not in guessed.findings[0]['message']
  assert 'run_fn' in guessed.findings[0]['message']


def test_run_fn_that_fails_before_fit_is_what_trainer_would_hit(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'run_fn_module', run_fn='failing_run_fn', custom_config={'x': 1})
  assert codes(probe.findings) == ['run_fn_error']
  message = probe.findings[0]['message']
  assert 'Trainer would fail the same way' in message and 'required_setting' in message
  assert 'failing_run_fn' in message


def test_run_fn_with_a_custom_training_loop_is_skipped(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'run_fn_module', run_fn='custom_loop_run_fn')
  assert probe.findings == [] and 'returned without a training call the loss check intercepts' in probe.skipped_reason


def test_softmax_trained_with_mse_on_class_indices_is_a_label_shape_mismatch(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'run_fn_module', run_fn='mse_softmax_run_fn')
  assert codes(probe.findings, 'block') == ['label_shape_mismatch'], probe.findings
  assert 'cannot_fit_batch' not in codes(probe.findings)
  assert '(batch, 10)' in probe.findings[0]['message']


NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']


@pytest.mark.parametrize('label_of, code, said', [
    # Every 10th example unlabelled: TFDV's schema leaves the label optional, tfxio yields a SparseTensor.
    (lambda i, target: None if i % 10 == 0 else int(target), 'label_shape_mismatch',
     "gets the label as a SparseTensor in split 'train'"),
    (lambda i, target: NAMES[target], 'label_out_of_range', "split 'train' has string labels (e.g. '"),
], ids=['label_missing_in_some_examples', 'string_labels'])
def test_labels_no_keras_loss_takes_are_named_not_reported_as_a_crash(tmp_path, label_of, code, said):
  """Trainer's fit fails on both (checked with Keras 3 and tf_keras); the probe crashed in its labels step and blamed
  run_fn ('zero-dimensional arrays cannot be concatenated', 'could not convert string to float')."""
  import tensorflow_data_validation as tfdv
  from sklearn.datasets import load_digits
  data = load_digits()
  rows = []
  for i in range(200):
    label = label_of(i, int(data.target[i]))
    rows.append({'pixels': data.data[i].astype(float), **({} if label is None else {'label': label})})
  examples = write_splits(str(tmp_path / 'examples'), {'train': rows[:150], 'eval': rows[150:]})
  statistics = {split: tfdv.generate_statistics_from_tfrecord(pattern) for split, pattern in examples.items()}
  schema_path = str(tmp_path / 'schema.pbtxt')
  io_utils.write_pbtxt_file(schema_path, tfdv.infer_schema(statistics['train']))
  inputs = loss.LossInputs(module('run_fn_module'), examples, 'train', ('eval',), 'label', schema_path,
                           statistics=statistics)
  request = loss.build_request(inputs, LossConfig(), module('run_fn_module'), str(tmp_path / 'probe'))
  probe = loss_probe.run(request)
  assert [(f['code'], f['severity']) for f in probe.findings] == [(code, 'block')], probe.findings
  assert said in probe.findings[0]['message'] and "Trainer's fit fails" in probe.findings[0]['message']


def test_csv_is_staged_gzipped_as_csv_example_gen_writes_it_so_a_gzip_reader_passes(tmp_path):
  """The CLI converts CSV for the loss check; staged uncompressed, a module reading ExampleGen's gzipped output was
  blocked with input_fn_error ('incorrect header check') and 'Trainer would fail the same way', which it would not."""
  import apache_beam as beam
  import tensorflow_data_validation as tfdv

  from tfx_preflight.inputs import csv_staging
  rng = np.random.default_rng(3)
  for split, n in (('train', 120), ('eval', 40)):
    x = rng.normal(size=(n, 2))
    lines = ['a,b,label'] + [f'{a:.5f},{b:.5f},{int(a + b > 0)}' for a, b in x]
    (tmp_path / f'{split}.csv').write_text('\n'.join(lines) + '\n')
  examples = csv_staging.csv_to_tfrecords({s: [str(tmp_path / f'{s}.csv')] for s in ('train', 'eval')}, beam.Pipeline,
                                          str(tmp_path / 'staged'))
  statistics = {split: tfdv.generate_statistics_from_tfrecord(pattern) for split, pattern in examples.items()}
  schema_path = str(tmp_path / 'schema.pbtxt')
  io_utils.write_pbtxt_file(schema_path, tfdv.infer_schema(statistics['train']))
  name = module('gzip_reader_module')
  inputs = loss.LossInputs(name, examples, 'train', ('eval',), 'label', schema_path, statistics=statistics)
  request = loss.build_request(inputs, LossConfig(), name, str(tmp_path / 'probe'))
  probe = loss_probe.run(request)
  assert codes(probe.findings, 'block') == [], probe.findings


def test_batch_norm_after_raw_inputs_has_a_normal_initial_loss(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'run_fn_module', run_fn='batch_norm_run_fn')
  assert codes(probe.findings) == [], probe.findings
  assert probe.measurements['initial_loss'] < 3 * math.log(2) + 0.5


def test_linear_output_with_probability_loss_is_one_finding(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'run_fn_module', run_fn='linear_probability_run_fn')
  assert codes(probe.findings) == ['from_logits_mismatch'], probe.findings
  assert 'constant_loss' in probe.findings[0].get('implies', [])


@pytest.mark.parametrize('layout, units, labels, expected', [
    ('regression', 10, np.arange(32).reshape(32, 1) % 10, ['label_shape_mismatch']),  # softmax + mse, class indices.
    ('regression', 1, np.linspace(0, 1, 32).reshape(32, 1), []),
    ('regression', 3, np.ones((32, 3)), []),  # Three regression targets: shapes match.
    ('binary', 4, np.ones((32, 1)), ['label_shape_mismatch']),
])
def test_element_wise_losses_need_labels_shaped_like_the_output(layout, units, labels, expected):
  probe = Probe(ProbeRequest())
  loss_battery.check_labels(probe, layout, {'train': labels}, units, 'the loss', {})
  assert codes(probe.findings, 'block') == expected


def test_a_module_that_patches_the_probe_is_blocked(digits, tmp_path):
  original = Probe.add
  try:
    probe = probe_in_process(digits, tmp_path, 'patch_probe_module')
  finally:
    Probe.add = original
  assert codes(probe.findings) == ['probe_tampered']
  assert 'tfx_preflight.checks.loss.recorder.Probe.add' in probe.findings[0]['replaced']


# ---------------------------------------------------------------------------------------------------------------------
# The battery on loss functions alone.


def _sparse_ce(y, p):
  return tf.keras.losses.sparse_categorical_crossentropy(y, p)


def _masked_zero(y, p):
  """The demo pipeline's bug: a padding mask inverted, so every example is multiplied by 0."""
  per_example = tf.keras.losses.sparse_categorical_crossentropy(y, p)
  mask = tf.cast(tf.equal(tf.reshape(tf.cast(y, tf.int64), tf.shape(per_example)), -1), per_example.dtype)
  return per_example * mask


def _argmax_error(y, p):
  wrong = tf.not_equal(tf.argmax(p, axis=-1), tf.reshape(tf.cast(y, tf.int64), [-1]))
  return tf.cast(wrong, tf.float32)


def _stop_gradient(y, p):
  return tf.stop_gradient(tf.keras.losses.sparse_categorical_crossentropy(y, p))


def _prediction_entropy(y, p):
  del y
  return -tf.reduce_sum(p * tf.math.log(p), axis=-1)


def _log_of_negative(y, p):
  return tf.keras.losses.sparse_categorical_crossentropy(y, p) + tf.math.log(-tf.reduce_mean(p))


@pytest.mark.parametrize('fn, expected', [
    (_sparse_ce, []),
    (lambda y, p: 0.0, ['constant_loss']),
    (_masked_zero, ['constant_loss']),
    (_argmax_error, ['no_gradient']),
    (_stop_gradient, ['no_gradient']),
    (_prediction_entropy, ['ignores_labels', 'wrong_ordering']),
    (lambda y, p: -_sparse_ce(y, p), ['wrong_ordering']),
    (_log_of_negative, ['non_finite']),
])
def test_battery(fn, expected, tmp_path):
  labels = np.arange(32).reshape(32, 1) % 10
  inputs = loss_battery.battery_inputs(labels, 'sparse', [32, 10], loss_battery.Space(logits=False), seed=1)
  probe = Probe(ProbeRequest())
  loss_battery.run_battery(probe, fn, 'the loss', inputs, 'a batch')
  assert codes(probe.findings) == expected


@pytest.mark.parametrize('layout, units, labels', [
    ('binary', 1, np.array([[0], [1]] * 16, dtype=np.float32)),
    ('onehot', 4, np.eye(4, dtype=np.float32)[np.arange(32) % 4]),
    ('regression', 1, np.linspace(-3, 50, 32).reshape(32, 1).astype(np.float32)),
])
@pytest.mark.parametrize('logits', [False, True])
def test_battery_orders_keras_losses_for_every_layout(layout, units, labels, logits, tmp_path):
  fns = {'binary': tf.keras.losses.BinaryCrossentropy(from_logits=logits),
         'onehot': tf.keras.losses.CategoricalCrossentropy(from_logits=logits),
         'regression': tf.keras.losses.MeanSquaredError()}
  inputs = loss_battery.battery_inputs(labels, layout, [32, units], loss_battery.Space(logits=logits), seed=1)
  probe = Probe(ProbeRequest())
  loss_battery.run_battery(probe, fns[layout], 'the loss', inputs, 'a batch')
  assert probe.findings == []


def _dense_model(activation, loss):
  inputs = tf.keras.Input(shape=(4,))
  model = tf.keras.Model(inputs, tf.keras.layers.Dense(3, activation=activation)(inputs))
  model.compile('adam', loss=loss)
  return model


@pytest.mark.parametrize('activation, loss_obj, expected', [
    ('softmax', tf.keras.losses.SparseCategoricalCrossentropy(), []),
    (None, tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), []),
    ('softmax', tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), ['block']),
    ('sigmoid', tf.keras.losses.BinaryCrossentropy(from_logits=True), ['block']),
    (None, tf.keras.losses.SparseCategoricalCrossentropy(), ['block']),
    (None, 'sparse_categorical_crossentropy', ['block']),
])
def test_from_logits_against_the_output_layer(activation, loss_obj, expected, tmp_path):
  model = _dense_model(activation, loss_obj)
  preds = np.asarray(model(np.random.default_rng(0).normal(size=(8, 4)) * 5))
  probe = Probe(ProbeRequest())
  loss_battery.check_from_logits(probe, model.loss, 'the loss', loss_model.output_activation(model), preds)
  assert [f['severity'] for f in probe.findings if f['code'] == 'from_logits_mismatch'] == expected


@pytest.mark.parametrize('value, layout, expected', [
    (2.4, 'sparse', []), (25.0, 'sparse', ['suspicious_initial_loss']), (0.01, 'sparse', ['suspicious_initial_loss']),
    (0.7, 'binary', []), (1e6, 'regression', ['suspicious_initial_loss']), (0.0, 'regression', []),
])
def test_initial_loss_against_what_a_fresh_model_scores(value, layout, expected, tmp_path):
  labels = np.arange(32).reshape(32, 1) % 10
  probe = Probe(ProbeRequest())
  units = {'sparse': 10, 'binary': 1, 'regression': 1}[layout]
  name = 'mean_squared_error' if layout == 'regression' else 'crossentropy'
  loss_battery.check_initial_loss(probe, value, loss_battery.expected_initial_loss(layout, units, labels, name), layout,
                                'the loss')
  assert codes(probe.findings) == expected
  assert all(f['severity'] == 'warn' for f in probe.findings)


# ---------------------------------------------------------------------------------------------------------------------
# The parent side without a subprocess.


def test_findings_from_the_child_are_validated():
  raw = [{'code': 'constant_loss', 'severity': 'block', 'message': 'm', 'loss_value': 0.0, 'obj': {'x': 1}},
         {'code': 'x', 'severity': 'fatal', 'message': 'unknown severity'},
         {'code': 3, 'severity': 'warn', 'message': 'code not a string'}, 'not a dict']
  state = loss_protocol.ProbeState.from_json({'findings': raw, 'measurements': [1], 'info': 'no', 'timing': [['a']]})
  assert state == loss_protocol.ProbeState(
      (loss_protocol.ProbeFinding('constant_loss', 'block', 'm', {'loss_value': 0.0}),))
  findings = loss._report_findings(state.findings)
  assert findings == [Finding('loss', 'constant_loss', 'block', 'm', details={'loss_value': 0.0})]
  assert findings[0].to_dict() == {'severity': 'block', 'message': 'm', 'code': 'constant_loss', 'loss_value': 0.0}


def test_messages_round_trip_as_plain_json_and_the_skip_reason_is_no_info_key():
  state = loss_protocol.ProbeState(
      (loss_protocol.ProbeFinding('timeout', 'block', 'm', {'split': 'eval'}),),
      loss_protocol.ProbeMeasurements({'fit_batch': {'before': np.float32(2.5), 'steps': 3}}),
      loss_protocol.ProbeInfo({'loss': 'mse', 'skipped': 'forged'}, skipped_reason='no fit'), (('import', 1.5),))
  run = loss_protocol.ProbeRun('timeout', None, None, loss_protocol.ProbeProgress('run_fn', 'run_fn', state), 'e', 2.0)
  back = loss_protocol.ProbeRun.from_json(json.loads(json.dumps(run.to_json(), default=float)))
  assert back.progress.state.measurements.values == {'fit_batch': {'before': 2.5, 'steps': 3}}
  assert back.progress.state.info == loss_protocol.ProbeInfo({'loss': 'mse'}, 'no fit')  # 'skipped' is reserved.
  assert back.state().timing == (('import', 1.5),) and back.outcome == 'timeout' and back.elapsed == 2.0
  with pytest.raises(ValueError, match='complete, timeout or crashed'):
    loss_protocol.ProbeRun.from_json({'outcome': 'fine'})


def _completed_run(info: loss_protocol.ProbeInfo) -> loss_protocol.ProbeRun:
  return loss_protocol.ProbeRun('complete', 0, loss_protocol.ProbeResult(loss_protocol.ProbeState(info=info)),
                                stderr_path='/nonexistent')


def test_a_probe_that_could_not_check_is_skipped_never_passed():
  config = LossConfig()
  completed = _completed_run(loss_protocol.ProbeInfo({}, 'run_fn() returned without fit'))
  result = loss.check_result(*loss._interpret(completed, 'm.py', config, {}), config.mode)
  assert isinstance(result, CheckResult) and result.to_dict()['module_file'] == 'm.py'
  assert result.status == 'skipped' and result.reason == 'run_fn() returned without fit' and not result.findings
  assert result.to_dict()['info'] == {'skipped': 'run_fn() returned without fit'}  # As report.json always said it.
  timed_out = dataclasses.replace(completed, outcome='timeout', result=None,
                                  progress=loss_protocol.ProbeProgress('battery', None, completed.result.state))
  findings, details = loss._interpret(timed_out, 'm.py', config, {})
  result = loss.check_result(findings, details, config.mode)
  assert result.status == 'block' and [(f.check, f.code) for f in result.findings] == [('loss', 'timeout')]
  assert result.to_dict()['outcome'] == 'timeout' and details.coverage() == Coverage(0)
  assert result.to_dict()['findings'][0]['code'] == 'timeout'  # report.json: loss findings keep `code`.


def test_loss_details_spell_the_report_keys_coverage_and_headline():
  measurements = {'fit_batch': {'before': 2.3, 'after': 0.4, 'steps': 4, 'stopped_because': 'loss_fell'}}
  details = LossDetails('m.py', 'complete', measurements, {'loss': 'mse'})
  assert details.to_dict() == {'module_file': 'm.py', 'measurements': measurements, 'info': {'loss': 'mse'},
                               'outcome': 'complete'}
  assert details.coverage() == Coverage(1) and not details.coverage().unchecked_reason()
  assert details.headline() == {'outcome': 'complete', 'loss': 'mse', 'fit_loss_before': 2.3, 'fit_loss_after': 0.4,
                                'fit_steps': 4, 'fit_stopped_because': 'loss_fell'}


def test_render_html_escapes_everything():
  result = {'status': 'block', 'module_file': '<script>alert(1)</script>.py',
            'info': {'loss': '<b>x</b>', 'model_fn': '_build_keras_model'},
            'measurements': {'eval_path': {'<i>': {'evaluate': 1.0, 'direct': 2.0}}}, 'findings': []}
  html = render_loss.render_html(result)
  assert '<script>' not in html and '<b>' not in html and '<i>' not in html
  assert '&lt;script&gt;alert(1)&lt;/script&gt;.py' in html
  assert render_loss.render_html(CheckResult.skipped('off').to_dict()) == ''


def test_mode_off_and_missing_module_are_skipped(digits, tmp_path):
  inputs = loss.LossInputs(module('good_module'), digits['examples'], 'train', ('eval',), 'label')
  assert loss.check_loss(inputs, LossConfig(mode='off'), str(tmp_path)).status == 'skipped'
  no_module = dataclasses.replace(inputs, module_file=None)
  assert loss.check_loss(no_module, LossConfig(), str(tmp_path)).status == 'skipped'
  with pytest.raises(ValueError, match='validation'):
    loss.check_loss(dataclasses.replace(inputs, eval_splits=('validation',)), LossConfig(), str(tmp_path))


def test_loss_config_round_trips():
  config = PreflightConfig(loss={'model_fn': 'make_model', 'timeout_seconds': 30, 'memory_limit_mb': 8192})
  assert PreflightConfig.from_json(config.to_json()).loss == config.loss


def test_hyperparameters_from_the_artifact_json_or_the_module_defaults():
  import keras_tuner
  hp = keras_tuner.HyperParameters()
  hp.Choice('learning_rate', [1e-2, 1e-3], default=1e-3)
  hp.Int('num_layers', 1, 3, default=3)
  given = json.loads(json.dumps(hp.get_config()))  # As the HyperParameters artifact stores it.
  assert loss_probe.hyperparameters_for(None, given).get('num_layers') == 3

  class Module:
    @staticmethod
    def _get_hyperparameters():
      defaults = keras_tuner.HyperParameters()
      defaults.Int('num_layers', 1, 3, default=2)
      return defaults

  assert loss_probe.hyperparameters_for(Module, None).get('num_layers') == 2


# ---------------------------------------------------------------------------------------------------------------------
# Isolation: the real subprocess. Each run imports TensorFlow (and TFX) again, hence slow.


def check(digits, tmp_path, name: str, path: str | None = None, **config):
  inputs = loss.LossInputs(path or module(name), digits['examples'], 'train', ('eval',), 'label', digits['schema_path'],
                           statistics=digits['statistics'])
  return loss.check_loss(inputs, LossConfig(**config), str(tmp_path / 'loss')).to_dict()


@pytest.mark.slow
def test_subprocess_blocks_the_seed_zero_loss_and_passes_a_correct_module(digits, tmp_path, monkeypatch):
  broken = check(digits, tmp_path, 'zero_loss_module')
  assert broken['status'] == 'block' and codes(broken['findings']) == ['constant_loss']
  assert set(broken['findings'][0]) >= {'code', 'severity', 'message'}
  assert (tmp_path / 'loss' / loss.PROBE_LOG).exists()
  monkeypatch.chdir(MODULES)  # A relative module path, as users type it: the probe runs in another directory.
  good = check(digits, tmp_path, 'good_module', path='good_module.py')
  assert good['status'] in ('pass', 'warn') and codes(good['findings'], 'block') == []
  assert good['measurements']['fit_batch']['after'] < good['measurements']['fit_batch']['before']
  # Same inputs, same bytes.
  assert report.to_json(good) == report.to_json(check(digits, tmp_path, 'good_module', path='good_module.py'))
  # Where the probe's time went is kept beside probe.log, never in the report (it differs from run to run).
  phases = json.loads((tmp_path / 'loss' / loss.TIMING_JSON).read_text())
  assert {'start_python', 'import_tensorflow', 'import_tfx_trainer', 'import', 'fit_batch', 'total'} <= set(phases)
  assert phases['total'] >= phases['import_tensorflow'] + phases['import'] + phases['fit_batch'] > 0
  assert 'timing' not in report.to_json(good) and 'import_tfx_trainer' not in report.to_json(good)


@pytest.mark.slow
def test_probe_starts_before_statistics_and_dies_when_a_later_step_fails(digits, tmp_path, monkeypatch):
  """The probe's process is launched first, so its Python start and TensorFlow import overlap the statistics; an
  input error found after that (here a misspelled label_key, known only from the statistics) kills it."""
  from tfx_preflight import run
  from tfx_preflight.inputs import data, read_pass
  events, launched = [], []
  start, run_pass = loss.LossCheck.start, read_pass.run_pass

  def start_spy(*args, **kwargs):
    launched.append(start(*args, **kwargs))
    events.append('probe')
    return launched[-1]

  def run_pass_spy(request, *args, **kwargs):
    events.append('statistics' if request.statistics_dir else 'read')
    return run_pass(request, *args, **kwargs)

  monkeypatch.setattr(loss.LossCheck, 'start', start_spy)
  monkeypatch.setattr(read_pass, 'run_pass', run_pass_spy)
  inputs = run.PreflightInputs(examples=digits['examples'], module_file=module('good_module'))
  config = PreflightConfig(label_key='labl')
  import apache_beam as beam
  with pytest.raises(data.InputError, match='labl'):
    run.run_checks(inputs, config, beam.Pipeline, str(tmp_path / 'out'))
  assert events == ['probe', 'statistics']
  probe = launched[0]._probe
  assert probe._process.poll() is not None and probe.sent_at is None  # Killed before it got a request.
  assert not os.path.exists(launched[0]._workdir)


@pytest.mark.slow
def test_the_module_is_imported_before_the_data_arrives_and_reading_stdin_loses_the_request(digits, tmp_path):
  """The probe imports the module named by the request's head while the parent still reads the data; the rest of the
  request then finds it imported. A module that reads the probe's stdin at import takes that request: a block."""
  inputs = loss.LossInputs(module('good_module'), digits['examples'], 'train', ('eval',), 'label',
                           digits['schema_path'], statistics=digits['statistics'])
  with loss.LossCheck.start(LossConfig(), str(tmp_path / 'loss'), inputs.module_file) as running:
    reader = running._probe._reader
    assert _wait_for(lambda: reader.progress is not None and reader.progress.stage == 'wait_for_request', 120)
    assert running._probe.sent_at is None  # Imported with nothing but the head.
    with pytest.raises(ValueError, match='started on'):
      running.send(dataclasses.replace(inputs, module_file=module('zero_loss_module')))
    result = running.send(inputs).result().to_dict()
  assert result['status'] in ('pass', 'warn') and codes(result['findings'], 'block') == []
  phases = json.loads((tmp_path / 'loss' / loss.TIMING_JSON).read_text())
  assert phases['import'] > 0 and phases['after_request'] < phases['total'] - phases['import']
  lost = check(digits, tmp_path, 'stdin_module')
  assert lost['status'] == 'block' and codes(lost['findings']) == ['request_lost'], lost['findings']
  assert 'stdin_module.py' in lost['findings'][0]['message']


@pytest.mark.slow
def test_import_error_is_a_finding_naming_the_module(digits, tmp_path):
  result = check(digits, tmp_path, 'import_error_module')
  assert result['status'] == 'block' and codes(result['findings']) == ['import_error']
  message = result['findings'][0]['message']
  assert 'import_error_module.py' in message and 'preflight_package_that_does_not_exist' in message


@pytest.mark.slow
def test_hanging_module_times_out_within_the_budget(digits, tmp_path):
  started = time.monotonic()
  result = check(digits, tmp_path, 'hang_module', timeout_seconds=45)
  assert time.monotonic() - started < 45 + 15
  assert result['status'] == 'block' and codes(result['findings']) == ['timeout']
  assert '45 s' in result['findings'][0]['message']


@pytest.mark.slow
def test_a_module_hanging_at_import_times_out_even_with_a_request_larger_than_a_pipe(digits, tmp_path):
  """The probe imports the module before it reads the rest of its request: a request larger than a pipe holds
  (64 KiB) must not block the parent before the budget starts."""
  inputs = loss.LossInputs(module('hang_at_import_module'), digits['examples'], 'train', ('eval',), 'label',
                           digits['schema_path'], statistics=digits['statistics'],
                           custom_config={'padding': 'x' * 300_000})
  started = time.monotonic()
  result = loss.check_loss(inputs, LossConfig(timeout_seconds=20), str(tmp_path / 'loss')).to_dict()
  assert time.monotonic() - started < 20 + 25
  assert result['status'] == 'block' and codes(result['findings']) == ['timeout'], result['findings']
  assert 'importing the module' in result['findings'][0]['message']


@pytest.mark.slow
def test_crashing_module_is_a_finding_and_the_parent_survives(digits, tmp_path):
  result = check(digits, tmp_path, 'crash_module')
  assert result['status'] == 'block' and codes(result['findings']) == ['crashed']
  message = result['findings'][0]['message']
  assert 'SIGSEGV' in message and '_build_keras_model' in message and 'crash_module.py' in message


@pytest.mark.slow
def test_memory_cap_stops_a_module_that_exhausts_memory(digits, tmp_path):
  result = check(digits, tmp_path, 'memory_hog_module', memory_limit_mb=4096, timeout_seconds=240)
  assert result['status'] == 'block'
  assert codes(result['findings']) in (['model_build_error'], ['crashed'])
  assert 'MemoryError' in result['findings'][0]['message'] or 'memory' in result['findings'][0]['message']


# ---------------------------------------------------------------------------------------------------------------------
# The probe's result channel and lifetime (issue 12, R1 and R7).


def _wait_for(condition, timeout: float) -> bool:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if condition():
      return True
    time.sleep(0.2)
  return condition()


@pytest.mark.slow
def test_a_forged_result_is_no_result_and_module_children_are_reaped(digits, tmp_path, monkeypatch):
  marker = tmp_path / 'marker.json'
  monkeypatch.setenv('PREFLIGHT_TEST_MARKER', str(marker))
  result = check(digits, tmp_path, 'forge_module')
  assert result['status'] == 'block' and codes(result['findings']) == ['crashed'], result['findings']
  info = json.loads(marker.read_text())
  assert len(info['argv']) == 1  # Nothing in argv says where the request or the result is.
  assert _wait_for(lambda: gone(info['sleep_pid']), 5)  # The module's child did not outlive the run.


_GATE = """
import json, sys
from tfx_preflight.checks.loss import check as loss
from tfx_preflight.config import LossConfig
loss.check_loss(loss.LossInputs(sys.argv[1], json.loads(sys.argv[2]), 'train', ('eval',), 'label'),
                LossConfig(timeout_seconds=300), sys.argv[3])
"""


@pytest.mark.slow
@pytest.mark.parametrize('signum', [signal.SIGKILL, signal.SIGTERM])
def test_the_probe_and_its_children_die_with_the_gate(digits, tmp_path, signum):
  marker = tmp_path / 'marker.json'
  gate = subprocess.Popen([sys.executable, '-c', _GATE, module('orphan_module'), json.dumps(digits['examples']),
                           str(tmp_path / 'loss')], env={**os.environ, 'PREFLIGHT_TEST_MARKER': str(marker)})
  try:
    assert _wait_for(marker.exists, 120), 'the probe never imported the module'
    info = json.loads(marker.read_text())
    assert not gone(info['probe_pid']) and os.path.isdir(info['workdir'])
    os.kill(gate.pid, signum)
    gate.wait(timeout=30)
    assert _wait_for(lambda: gone(info['probe_pid']) and gone(info['sleep_pid']), 10)
    assert _wait_for(lambda: not os.path.exists(info['workdir']), 5)
  finally:
    if gate.poll() is None:
      gate.kill()


# ---------------------------------------------------------------------------------------------------------------------
# What fit really gets: its weights, every fit call (tests/modules/fit_calls_module.py).


@pytest.mark.parametrize('run_fn, named', [
    ('dataset_zero_weights_run_fn', 'third element'),
    ('sample_weight_zero_run_fn', 'sample_weight passed to model.fit is 0'),
    ('class_weight_all_zero_run_fn', 'is 0 for every class'),
    ('loss_weights_zero_run_fn', 'loss_weights from compile is 0'),
])
def test_weights_that_zero_the_loss_are_a_constant_loss_naming_them(digits, tmp_path, run_fn, named):
  probe = probe_in_process(digits, tmp_path, 'fit_calls_module', run_fn=run_fn)
  assert codes(probe.findings, 'block') == ['constant_loss'], probe.findings
  assert named in probe.findings[0]['message']


def test_a_class_weight_of_zero_names_the_class(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'fit_calls_module', run_fn='class_weight_typo_run_fn')
  [finding] = [f for f in probe.findings if f['code'] == 'zero_class_weight']
  assert finding['severity'] == 'block' and finding['classes'] == [1] and 'class 1' in finding['message']


def test_weights_that_vary_enter_the_battery_and_pass(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'fit_calls_module', run_fn='weighted_run_fn')
  assert codes(probe.findings, 'block') == [], probe.findings
  assert len(probe.info['fit_weights']) == 2 and probe.measurements['fit_batch']['after'] < \
      probe.measurements['fit_batch']['before']


def test_every_fit_is_judged_and_the_last_one_decides(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'fit_calls_module', run_fn='fine_tune_zeroed_run_fn')
  assert probe.info['fit_calls'] == 2
  assert [(f['code'], f['severity'], f['fit_call']) for f in probe.findings] == [('constant_loss', 'block', 2)]
  warm = probe_in_process(digits, tmp_path, 'fit_calls_module', run_fn='zeroed_warm_up_run_fn')
  assert warm.info['fit_calls'] == 2 and codes(warm.findings, 'block') == []
  assert [(f['code'], f['fit_call']) for f in warm.findings] == [('constant_loss', 1)]
  assert warm.findings[0]['message'].startswith('In model.fit call 1 of 2')


def test_a_train_on_batch_loop_is_judged_on_its_first_batch_and_said_so(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'fit_calls_module', run_fn='train_on_batch_run_fn')
  assert codes(probe.findings, 'block') == ['constant_loss']
  assert 'train_on_batch' in probe.info['training'] and probe.info['fit_method'] == 'train_on_batch'


# ---------------------------------------------------------------------------------------------------------------------
# The labels fit receives against the label column's statistics (tests/modules/fit_labels_module.py).


@pytest.mark.parametrize('run_fn, splits, said', [
    ('zeros_run_fn', ['eval', 'train'], 'are all 0 where the data varies'),
    ('zeros_eval_only_run_fn', ['eval'], 'are all 0 where the data varies'),
    ('label_as_feature_run_fn', ['eval', 'train'], "equal the input feature 'digit'"),
    ('binary_train_only_run_fn', ['eval'], 'differ between splits whose label columns agree'),
])
def test_labels_changed_by_the_input_pipeline_block_naming_split_and_distributions(digits, tmp_path, run_fn, splits,
                                                                                   said):
  probe = probe_in_process(digits, tmp_path, 'fit_labels_module', run_fn=run_fn)
  changed = [f for f in probe.findings if f['code'] == 'labels_changed_by_input_fn']
  assert sorted(f['split'] for f in changed) == splits, probe.findings
  assert all(f['severity'] == 'block' and said in f['message'] for f in changed)
  assert all('min 0, max 9' in f['statistics'] and 'distinct value' in f['fit_labels'] for f in changed)


def test_labels_mapped_on_purpose_in_every_split_pass(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'fit_labels_module', run_fn='binary_run_fn')
  assert codes(probe.findings, 'block') == [], probe.findings


def test_the_probe_reads_the_files_trainer_reads_hidden_ones_included(tmp_path):
  """Several patterns (a window of spans) are linked into one directory for the probe: every file TF's glob matches,
  as Trainer's reader would read them, a hidden one included, each under a name whose suffix tells its compression."""
  spans = []
  for span in (1, 2):
    directory = tmp_path / f'span-{span}'
    directory.mkdir()
    (directory / 'data_tfrecord-00000.gz').write_bytes(b'\x1f\x8b' + bytes(span))
    (directory / '.data_tfrecord-00001.gz').write_bytes(b'\x1f\x8b' + bytes(span + 2))
    spans.append(str(directory / '*'))
  linked = loss._readable_pattern('train', tuple(spans), str(tmp_path / 'work'))
  read = sorted(os.path.realpath(f) for f in tf.io.gfile.glob(linked))
  assert read == sorted(os.path.realpath(f) for pattern in spans for f in tf.io.gfile.glob(pattern))
  assert len(read) == 4 and all(f.endswith('.gz') for f in tf.io.gfile.glob(linked))
