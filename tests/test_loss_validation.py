"""What model.fit validates on (loss_validation.py): the files, the count of one pass, validation taken from train.

Each case is a run_fn of tests/modules/validation_module.py, called in-process as Trainer calls it on digits
(train 300 / eval 100); the correct run_fns must get no finding at all.
"""

import pytest

from tests.helpers import codes, module
from tfx_preflight.checks.loss import check as loss
from tfx_preflight.checks.loss import probe as loss_probe
from tfx_preflight.checks.loss import protocol as loss_protocol
from tfx_preflight.config import LossConfig


def probe(digits, tmp_path, run_fn):
  inputs = loss.LossInputs(module('validation_module'), digits['examples'], 'train', ('eval',), 'label',
                           digits['schema_path'], statistics=digits['statistics'], run_fn=run_fn)
  request = loss.build_request(inputs, LossConfig(), module('validation_module'), str(tmp_path))
  return loss_probe.run(request)


def _finding(result, code):
  return next(f for f in result.findings if f['code'] == code)


def test_validation_on_the_eval_files_is_counted_and_passes(digits, tmp_path):
  result = probe(digits, tmp_path, 'run_fn')
  assert result.findings == []
  assert [f.split('/')[-2] for f in result.info['validation_files']] == ['Split-eval']
  assert (result.info['validation_batches'], result.info['validation_examples']) == (4, 100)  # 100 rows, batch 32.
  assert set(result.measurements['eval_path']) == {'eval'}


def test_validation_on_the_train_files_blocks_naming_them(digits, tmp_path):
  result = probe(digits, tmp_path, 'train_files_run_fn')
  assert codes(result.findings, 'block') == ['validation_reads_train']
  finding = _finding(result, 'validation_reads_train')
  assert finding['fraction'] == 1.0 and 'Split-train' in finding['files'][0] and 'Split-train' in finding['message']
  assert "validation_steps" in result.info and result.info['validation_examples'] is None  # Repeats: Trainer's steps.


@pytest.mark.parametrize('run_fn, keras, says', [
    ('empty_run_fn', 'keras3', 'reports no val_loss at all'),
    ('empty_tf_keras_run_fn', 'tf_keras', 'Expected input data to be non-empty'),
])
def test_validation_without_a_batch_blocks_with_what_that_keras_does(digits, tmp_path, run_fn, keras, says):
  result = probe(digits, tmp_path, run_fn)
  assert codes(result.findings) == ['empty_validation']
  finding = _finding(result, 'empty_validation')
  assert finding['keras'] == keras and says in finding['message'] and '100 eval examples' in finding['message']
  assert 'would fail the same way' not in finding['message']
  assert (result.info['validation_batches'], result.info['validation_examples']) == (0, 0)


def test_validation_steps_covering_a_small_part_of_eval_warns_with_the_numbers(digits, tmp_path):
  result = probe(digits, tmp_path, 'few_steps_run_fn')
  assert codes(result.findings) == ['small_validation']
  assert 'Validation uses 8 of 100 eval examples (validation_steps=1)' in _finding(result, 'small_validation')['message']


def test_validation_split_of_in_memory_train_warns(digits, tmp_path):
  result = probe(digits, tmp_path, 'validation_split_run_fn')
  assert codes(result.findings) == ['validation_split_of_train']
  assert result.info['validation_examples'] == 60  # The last 20% of 300 training rows.


def test_in_memory_validation_is_hashed_against_train(digits, tmp_path):
  same = probe(digits, tmp_path / 'same', 'in_memory_train_run_fn')
  assert codes(same.findings, 'block') == ['validation_reads_train']
  assert _finding(same, 'validation_reads_train')['fraction'] == 1.0
  other = probe(digits, tmp_path / 'other', 'in_memory_eval_run_fn')
  assert other.findings == [] and other.info['validation_examples'] == 100


def test_no_validation_data_is_reported_not_a_finding(digits, tmp_path):
  result = probe(digits, tmp_path, 'no_validation_run_fn')
  assert result.findings == []
  assert 'no validation_data' in result.info['eval_path'] and result.info['validation_examples'] == 0


def test_the_parent_puts_what_validation_read_under_details():
  info = {'validation_files': ['/tmp/w/x/Split-eval/f.gz', 3], 'validation_examples': 100, 'validation_batches': True}
  run = loss_protocol.ProbeRun('complete', 0, loss_protocol.ProbeResult(loss_protocol.ProbeState.from_json(
      {'info': {'values': info}})))
  _, details = loss._interpret(run, 'm.py', LossConfig(), {'/tmp/w': '<tmp>'})
  shown = details.to_dict()
  assert shown['validation_files'] == ['<tmp>/x/Split-eval/f.gz']
  assert (shown['validation_examples'], shown['validation_batches']) == (100, None)
  assert 'validation_files' not in shown['info']


def test_report_html_shows_what_validation_read_escaped():
  from tfx_preflight.checks.loss import render as render_loss
  html = render_loss.render_html({'status': 'pass', 'info': {'validation_steps': 1}, 'measurements': {},
                                  'validation_files': ['<tmp>/Split-eval/<b>.gz'], 'validation_examples': 8,
                                  'validation_batches': None})
  assert '&lt;tmp&gt;/Split-eval/&lt;b&gt;.gz' in html and '<b>' not in html
  assert 'validation examples (one pass)</th><td>8' in html and 'not counted' in html


def test_an_endless_validation_without_steps_blocks_as_the_hang_it_is(digits, tmp_path):
  result = probe(digits, tmp_path, 'endless_run_fn')
  assert codes(result.findings) == ['endless_validation']
  assert 'hangs' in _finding(result, 'endless_validation')['message']
  assert set(result.measurements['eval_path']) == {'eval'}  # The battery still evaluates its batches.
