"""results.py: typed findings and check results give exactly the dicts and report.json bytes the checks give today."""

import json

import pytest

from tfx_preflight.report import build as report
from tfx_preflight.report import results
from tfx_preflight.report.results import CheckResult, Finding


def test_a_finding_is_the_dict_report_finding_makes():
  skew = Finding('skew', 'scale_mismatch', 'block', 'pixels were divided by 255 in train only', feature='pixels',
                 details={'splits': ['train', 'eval'], 'distance': 0.5})
  assert list(skew.to_dict().items()) == list(report.finding(
      'block', 'pixels were divided by 255 in train only', kind='scale_mismatch', feature='pixels',
      splits=['train', 'eval'], distance=0.5).items())
  loss = Finding('loss', 'zero_loss', 'warn', 'the loss is 0.0 on every batch')
  assert loss.to_dict() == {'severity': 'warn', 'message': 'the loss is 0.0 on every batch', 'code': 'zero_loss'}


def test_a_skipped_result_is_the_dict_report_skipped_makes():
  assert list(CheckResult.skipped('loss.mode is off', module_file='m.py').to_dict().items()) == list(
      report.skipped('loss.mode is off', module_file='m.py').items())


def _skew(status, findings=()):
  details = {'comparisons': {'eval': {'a': {'distance': 0.2}, 'b': {'distance': 0.01}}},
             'num_examples': {'train': 60, 'eval': 40}}
  return CheckResult(status, tuple(findings), details=details)


@pytest.mark.parametrize('status,findings,verdict', [
    ('pass', (), 'pass'),
    ('block', (Finding('skew', 'scale_mismatch', 'block', 'a differs', feature='a', details={'distance': 0.2}),),
     'block'),
])
def test_build_report_gives_the_same_bytes_from_a_check_result_and_from_its_dict(status, findings, verdict):
  typed = _skew(status, findings)
  leakage = report.skipped('leakage.mode is off')
  from_typed = report.build_report({'skew': typed, 'leakage': leakage}, 'train', ['eval'])
  from_dicts = report.build_report({'skew': typed.to_dict(), 'leakage': leakage}, 'train', ['eval'])
  assert report.to_json(from_typed) == report.to_json(from_dicts)
  assert from_typed['verdict'] == verdict


def test_a_typed_result_that_compared_nothing_is_not_checked():
  empty = CheckResult('pass', details={'comparisons': {'eval': {}}, 'num_examples': {'train': 5, 'eval': 5}})
  built = report.build_report({'skew': empty}, 'train', ['eval'])
  assert built['verdict'] == report.NOT_CHECKED and not report.is_blessed(built)


@pytest.mark.parametrize('make,match', [
    (lambda: Finding('skew', 'x', 'fatal', 'm'), 'severity must be one of'),
    (lambda: Finding('speling', 'x', 'warn', 'm'), 'check must be one of'),
    (lambda: Finding('skew', 'x', 'warn', 'm', details={'kind': 'y'}), 'details must not set kind'),
    (lambda: CheckResult('skipped'), 'must say why'),
    (lambda: CheckResult('passed'), 'status must be one of'),
    (lambda: CheckResult('pass', details={'findings': []}), 'details must not set findings'),
])
def test_malformed_results_are_refused(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_as_dict_copies_a_plain_dict():
  original = {'status': 'pass', 'findings': []}
  copied = results.as_dict(original)
  copied['status'] = 'block'
  assert original['status'] == 'pass'


def test_skew_and_label_proxy_findings_always_carry_feature_others_only_when_set():
  """report.json's contract: skew (and label_proxy) findings have `feature`, null for a dataset-level finding such
  as skew's example_count; leakage and loss findings have it only when they name one."""
  assert Finding('skew', 'example_count', 'block', 'eval lost data').to_dict()['feature'] is None
  assert Finding('label_proxy', 'label_proxy', 'block', 'm', feature='copy').to_dict()['feature'] == 'copy'
  assert 'feature' not in Finding('leakage', 'cross_split_duplicates', 'block', 'm').to_dict()
  assert Finding('leakage', 'group_leakage', 'warn', 'm', feature='user').to_dict()['feature'] == 'user'
  assert 'feature' not in Finding('loss', 'constant_loss', 'block', 'm').to_dict()


def test_status_for_reads_typed_findings_and_their_dicts_alike():
  typed = [Finding('leakage', 'x', 'warn', 'm'), Finding('leakage', 'y', 'block', 'm')]
  assert report.status_for(typed, 'block') == report.status_for([f.to_dict() for f in typed], 'block') == 'block'
  assert report.status_for(typed, 'warn') == 'warn' and report.status_for(typed, 'off') == 'skipped'
  assert report.status_for([], 'block') == 'pass'


def test_report_keeps_statistics_out_of_report_json():
  """run_checks' Report carries the statistics the pages are drawn from; report.json (to_dict) never holds them."""
  from tfx_preflight.report.results import Report
  checks = {'skew': CheckResult('pass', details={'compared': 3})}
  outcome = Report(checks, 'train', ('eval',), config={'label_key': 'y'}, inputs={'examples': 'x'},
                   statistics={'train': object()})
  result = outcome.to_dict()
  assert result['config'] == {'label_key': 'y'} and result['splits'] == {'train': 'train', 'eval': ['eval']}
  assert result['checks']['skew']['compared'] == 3 and result['checks']['loss']['status'] == 'skipped'
  assert 'statistics' not in result and '_statistics' not in result
  assert json.loads(report.to_json(result)) == json.loads(report.to_json(outcome.to_dict()))
