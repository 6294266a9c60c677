"""The loss check on real Trainer modules, real tf.Example TFRecords (scikit-learn digits) and a TFDV-inferred schema.

Fast tests run the probe in-process (`loss_probe.run`: the same battery, without the subprocess); the tests of the
isolation itself (subprocess, timeout, crash, memory cap) and the penguin pipeline with a real Transform graph are
slow: each subprocess imports TensorFlow and TFX again.
"""

import json
import math
import os
import time

import numpy as np
import pytest
import tensorflow as tf
from tfx.utils import io_utils

from tests.conftest import write_splits
from tfx_preflight import loss, loss_probe, report
from tfx_preflight.config import LossConfig, PreflightConfig

MODULES = os.path.join(os.path.dirname(__file__), 'modules')


def module(name: str) -> str:
  return os.path.join(MODULES, f'{name}.py')


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
  """Digits as ExampleGen lays them out (train 300 / eval 100), statistics and schema from TFDV."""
  import tensorflow_data_validation as tfdv
  from sklearn.datasets import load_digits
  root = tmp_path_factory.mktemp('digits')
  data = load_digits()
  rows = [{'pixels': data.data[i].astype(float), 'label': int(data.target[i])} for i in range(400)]
  examples = write_splits(str(root / 'examples'), {'train': rows[:300], 'eval': rows[300:]})
  statistics = {split: tfdv.generate_statistics_from_tfrecord(os.path.join(os.path.dirname(pattern), '*.gz'))
                for split, pattern in examples.items()}
  schema_path = str(root / 'schema.pbtxt')
  io_utils.write_pbtxt_file(schema_path, tfdv.infer_schema(statistics['train']))
  return {'examples': examples, 'statistics': statistics, 'schema_path': schema_path}


def probe_in_process(digits, tmp_path, name: str, **config) -> loss_probe.Probe:
  request = loss.build_request(module(name), module(name), digits['examples'], 'train', ['eval'],
                               LossConfig(**config), 'label', digits['schema_path'], None, None,
                               digits['statistics'], str(tmp_path))
  return loss_probe.run(request)


def codes(findings, severity=None):
  return sorted({f['code'] for f in findings if severity is None or f['severity'] == severity})


# ---------------------------------------------------------------------------------------------------------------------
# Trainer modules, in-process.


def test_correct_module_has_no_blocking_finding(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'good_module')
  assert codes(probe.findings, 'block') == []
  assert probe.info['model_fn'] == '_build_keras_model' and probe.info['input_fn'] == '_input_fn'
  m = probe.measurements
  assert m['loss_on_synthetic_predictions']['perfect'] < m['loss_on_synthetic_predictions']['random']
  assert m['fit_batch']['after'] < 0.5 * m['fit_batch']['before']
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


def test_module_without_a_model_builder_says_what_to_set(digits, tmp_path):
  probe = probe_in_process(digits, tmp_path, 'no_builder_module')
  assert codes(probe.findings) == ['model_build_error']
  assert 'loss.model_fn' in probe.findings[0]['message']


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
  inputs = loss_probe.battery_inputs(labels, 'sparse', [32, 10], loss_probe.Space(logits=False), seed=1)
  probe = loss_probe.Probe({'progress_path': str(tmp_path / 'p'), 'result_path': str(tmp_path / 'r')})
  loss_probe.run_battery(probe, fn, 'the loss', inputs, 'a batch')
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
  inputs = loss_probe.battery_inputs(labels, layout, [32, units], loss_probe.Space(logits=logits), seed=1)
  probe = loss_probe.Probe({'progress_path': str(tmp_path / 'p'), 'result_path': str(tmp_path / 'r')})
  loss_probe.run_battery(probe, fns[layout], 'the loss', inputs, 'a batch')
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
  probe = loss_probe.Probe({'progress_path': str(tmp_path / 'p'), 'result_path': str(tmp_path / 'r')})
  loss_probe.check_from_logits(probe, model.loss, 'the loss', loss_probe.output_activation(model), preds)
  assert [f['severity'] for f in probe.findings if f['code'] == 'from_logits_mismatch'] == expected


# ---------------------------------------------------------------------------------------------------------------------
# The parent side without a subprocess.


def test_findings_from_the_child_are_validated():
  raw = [{'code': 'constant_loss', 'severity': 'block', 'message': 'm', 'loss_value': 0.0, 'obj': {'x': 1}},
         {'code': 'x', 'severity': 'fatal', 'message': 'unknown severity'},
         {'code': 3, 'severity': 'warn', 'message': 'code not a string'}, 'not a dict']
  assert loss._clean_findings(raw) == [{'severity': 'block', 'message': 'm', 'code': 'constant_loss',
                                        'loss_value': 0.0}]


def test_render_html_escapes_everything():
  result = {'status': 'block', 'module_file': '<script>alert(1)</script>.py',
            'info': {'loss': '<b>x</b>', 'model_fn': '_build_keras_model'},
            'measurements': {'eval_path': {'<i>': {'evaluate': 1.0, 'direct': 2.0}}}, 'findings': []}
  html = loss.render_html(result)
  assert '<script>' not in html and '<b>' not in html and '<i>' not in html
  assert '&lt;script&gt;alert(1)&lt;/script&gt;.py' in html
  assert loss.render_html(report.skipped('off')) == ''


def test_mode_off_and_missing_module_are_skipped(digits, tmp_path):
  args = (digits['examples'], 'train', ['eval'])
  rest = ('label', None, None, None, None, str(tmp_path))
  assert loss.check_loss(module('good_module'), *args, LossConfig(mode='off'), *rest)['status'] == 'skipped'
  assert loss.check_loss(None, *args, LossConfig(), *rest)['status'] == 'skipped'
  with pytest.raises(ValueError, match='validation'):
    loss.check_loss(module('good_module'), digits['examples'], 'train', ['validation'], LossConfig(), *rest)


def test_loss_config_round_trips():
  config = PreflightConfig(loss={'model_fn': 'make_model', 'timeout_seconds': 30, 'memory_limit_mb': 8192})
  assert PreflightConfig.from_json(config.to_json()).loss == config.loss
