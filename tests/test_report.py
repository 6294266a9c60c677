"""The report contract: statuses, verdict, skipped never passes, canonical and atomic JSON, escaped HTML."""

import dataclasses
import json

import pytest

from tfx_preflight.report import build as report
from tfx_preflight.report import results, summaries
from tfx_preflight.report.render import page as html_report
from tfx_preflight.report.results import CheckResult, Finding


@dataclasses.dataclass(frozen=True)
class _Compared:
  """Typed details (results.CheckDetails) of a check that compared 3 features of 10 train and 5 eval examples."""
  fields = {'compared': {'features': 3, 'examples': {'train': 10, 'eval': 5}}}

  def to_dict(self):
    return dict(self.fields)

  def coverage(self):
    return results.Coverage(3, {'train': 10, 'eval': 5})

  def headline(self):
    return {}


def _check(*severities, mode='block', check='skew'):
  findings = tuple(Finding(check, 'distribution_shift', s, f'{s} finding') for s in severities)
  return CheckResult(results.status_for(findings, mode), findings, details=_Compared())


def test_status_is_the_worst_finding_and_warn_mode_never_blocks():
  assert _check().status == 'pass'
  assert _check('warn').status == 'warn'
  assert _check('warn', 'block').status == 'block'
  assert _check('block', mode='warn').status == 'warn'
  assert results.status_for([Finding('skew', 'x', 'block', 'm')], 'off') == 'skipped'


def test_verdict_ignores_skipped_checks_and_missing_checks_are_skipped():
  result = report.build_report({'skew': _check('warn')}, 'train', ['eval'])
  assert result['verdict'] == 'warn'
  assert result['checks']['leakage']['status'] == 'skipped'
  assert result['checks']['loss']['status'] == 'skipped'
  assert report.is_blessed(result)
  blocked = report.build_report({'skew': _check('warn'), 'leakage': _check('block')}, 'train', ['eval'])
  assert blocked['verdict'] == 'block' and not report.is_blessed(blocked)


def test_unknown_severity_is_refused():
  with pytest.raises(ValueError, match='severity'):
    Finding('skew', 'x', 'error', 'x')


def test_json_is_canonical_and_nan_safe():
  result = report.build_report({'skew': CheckResult('pass', details=results.SkippedDetails({'b': float('nan'), 'a': 1}))}, 'train', ['eval'])
  text = report.to_json(result)
  assert text == report.to_json(json.loads(text))
  assert json.loads(text)['checks']['skew']['b'] == 'nan'
  assert list(json.loads(text)) == sorted(json.loads(text))


def test_html_escapes_feature_names_and_messages():
  evil = '<script>alert(1)</script>'
  findings = (Finding('skew', 'scale_mismatch', 'block', f'values of {evil} moved', feature=evil),)
  result = report.build_report({'skew': CheckResult('block', findings)}, evil, ['eval'])
  page = html_report.render(result, {})
  assert '<script>' not in page
  assert '&lt;script&gt;alert(1)&lt;/script&gt;' in page
  assert "default-src 'none'" in page


def test_findings_of_a_check_in_warn_mode_are_shown_as_warnings_everywhere():
  """A run in warn mode exits 0: its blocking findings must not read '[block]' in the log, the Markdown or JUnit."""
  result = report.build_report({'skew': _check('block', mode='warn')}, 'train', ['eval'])
  assert result['verdict'] == 'warn' and result['checks']['skew']['findings'][0]['severity'] == 'block'
  shown = [line for line in report.findings_summary(result) if 'finding' in line]
  assert shown == ['    [warn] distribution_shift (warn mode: would block in block mode): block finding']
  markdown = summaries.to_markdown(result)
  assert '**block**' not in markdown and '- **warn** distribution\\_shift (warn mode' in markdown
  junit = summaries.to_junit_xml(result)
  assert '[block]' not in junit and '[warn] distribution_shift (warn mode' in junit
  page = html_report.render(report.build_report({'label_proxy': _check('block', mode='warn', check='label_proxy')}, 'train', ['eval']), {})
  assert '[block]' not in page and '[warn] block finding' in page and '<td class="block">' not in page


def test_summary_lists_findings_most_severe_first():
  result = report.build_report({'skew': _check('warn', 'block')}, 'train', ['eval'])
  lines = report.findings_summary(result)
  assert lines[0] == 'verdict: block'
  assert lines[2].startswith('    [block]') and lines[3].startswith('    [warn]')
