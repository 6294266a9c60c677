"""results.py: typed findings and check results give exactly the dicts and report.json bytes the checks give today."""

import json

import pytest

from tfx_preflight.checks.skew.details import SkewDetails
from tfx_preflight.constants import Severity, Status
from tfx_preflight.report import build as report
from tfx_preflight.report import results
from tfx_preflight.report.results import CheckResult, Finding


def test_a_finding_is_report_json_s_dict_in_its_key_order():
  skew = Finding('skew', 'scale_mismatch', 'block', 'pixels were divided by 255 in train only', feature='pixels',
                 details={'splits': ['train', 'eval'], 'distance': 0.5})
  assert list(skew.to_dict().items()) == [
      ('severity', 'block'), ('message', 'pixels were divided by 255 in train only'), ('kind', 'scale_mismatch'),
      ('feature', 'pixels'), ('splits', ['train', 'eval']), ('distance', 0.5)]
  assert skew.severity is Severity.BLOCK and json.dumps(skew.to_dict()['severity']) == '"block"'
  loss = Finding('loss', 'zero_loss', 'warn', 'the loss is 0.0 on every batch')
  assert loss.to_dict() == {'severity': 'warn', 'message': 'the loss is 0.0 on every batch', 'code': 'zero_loss'}


def test_a_skipped_result_is_report_json_s_dict_in_its_key_order():
  skipped = CheckResult.skipped('loss.mode is off', module_file='m.py')
  assert list(skipped.to_dict().items()) == [
      ('status', 'skipped'), ('reason', 'loss.mode is off'), ('findings', []), ('module_file', 'm.py')]
  assert skipped.status is Status.SKIPPED and skipped.unchecked_reason('loss') == 'loss.mode is off'


def _skew(status, findings=()):
  details = SkewDetails({'eval': {'a': {'distance': 0.2}, 'b': {'distance': 0.01}}}, {}, {'train': 60, 'eval': 40},
                        [], {}, [])
  return CheckResult(status, tuple(findings), details=details)


@pytest.mark.parametrize('status,findings,verdict', [
    ('pass', (), 'pass'),
    ('block', (Finding('skew', 'scale_mismatch', 'block', 'a differs', feature='a', details={'distance': 0.2}),),
     'block'),
])
def test_the_verdict_is_decided_on_typed_results_then_serialised(status, findings, verdict):
  typed = _skew(status, findings)
  leakage = CheckResult.skipped('leakage.mode is off')
  built = report.build_report({'skew': typed, 'leakage': leakage}, 'train', ['eval'])
  assert results.verdict_of(results.settled_checks({'skew': typed, 'leakage': leakage})) == verdict
  assert built['verdict'] == verdict and built['checks']['skew'] == typed.to_dict()
  assert json.loads(report.to_json(built))['checks']['leakage'] == leakage.to_dict()


def test_a_typed_result_that_compared_nothing_is_not_checked():
  empty = CheckResult('pass', details=SkewDetails({'eval': {}}, {}, {'train': 5, 'eval': 5}, [], {}, []))
  built = report.build_report({'skew': empty}, 'train', ['eval'])
  assert built['verdict'] == Status.NOT_CHECKED and not report.is_blessed(built)


@pytest.mark.parametrize('make,match', [
    (lambda: Finding('skew', 'x', 'fatal', 'm'), 'severity must be one of'),
    (lambda: Finding('speling', 'x', 'warn', 'm'), 'check must be one of'),
    (lambda: Finding('skew', 'x', 'warn', 'm', details={'kind': 'y'}), 'details must not set kind'),
    (lambda: CheckResult('skipped'), 'must say why'),
    (lambda: CheckResult('passed'), 'status must be one of'),
    (lambda: CheckResult('pass', details=results.SkippedDetails({'findings': []})), 'details must not set findings'),
])
def test_malformed_results_are_refused(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_coverage_decides_a_pass_from_not_checked():
  assert results.Coverage(3, {'train': 1, 'eval': 1}).unchecked_reason() is None
  assert results.Coverage(0).unchecked_reason() == 'it compared no feature'
  assert results.Coverage(None).unchecked_reason() == 'its result does not say what it compared'
  assert results.Coverage(2, {'eval': 0, 'train': 4}).unchecked_reason() == 'split(s) eval had no examples'


def test_skew_and_label_proxy_findings_always_carry_feature_others_only_when_set():
  """report.json's contract: skew (and label_proxy) findings have `feature`, null for a dataset-level finding such
  as skew's example_count; leakage and loss findings have it only when they name one."""
  assert Finding('skew', 'example_count', 'block', 'eval lost data').to_dict()['feature'] is None
  assert Finding('label_proxy', 'label_proxy', 'block', 'm', feature='copy').to_dict()['feature'] == 'copy'
  assert 'feature' not in Finding('leakage', 'cross_split_duplicates', 'block', 'm').to_dict()
  assert Finding('leakage', 'group_leakage', 'warn', 'm', feature='user').to_dict()['feature'] == 'user'
  assert 'feature' not in Finding('loss', 'constant_loss', 'block', 'm').to_dict()


def test_status_for_reads_typed_findings():
  typed = [Finding('leakage', 'x', 'warn', 'm'), Finding('leakage', 'y', 'block', 'm')]
  assert results.status_for(typed, 'block') is Status.BLOCK
  assert results.status_for(typed, 'warn') == 'warn' and results.status_for(typed, 'off') == 'skipped'
  assert results.status_for([], 'block') == 'pass'


def test_report_keeps_statistics_out_of_report_json():
  """run_checks' Report carries the statistics the pages are drawn from; report.json (to_dict) never holds them."""
  from tfx_preflight.report.results import Report
  checks = {'skew': CheckResult('pass', details=results.SkippedDetails({'compared': 3}))}
  outcome = Report(checks, 'train', ('eval',), config={'label_key': 'y'}, inputs={'examples': 'x'},
                   statistics={'train': object()})
  result = outcome.to_dict()
  assert result['config'] == {'label_key': 'y'} and result['splits'] == {'train': 'train', 'eval': ['eval']}
  assert result['checks']['skew']['compared'] == 3 and result['checks']['loss']['status'] == 'skipped'
  assert 'statistics' not in result and '_statistics' not in result
  assert json.loads(report.to_json(result)) == json.loads(report.to_json(outcome.to_dict()))
