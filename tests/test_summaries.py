"""CI summaries: --summary-md (Markdown for $GITHUB_STEP_SUMMARY) and --junit-xml (one test case per check), built from
the report, written on pass and on block, with user text escaped for each format."""

import html
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from tests.helpers import tabular_rows, write_splits
from tfx_preflight import cli
from tfx_preflight.report import summaries

HOSTILE = 'x</failure><script>alert(1)</script>]]>|*a*[l](javascript:alert(1))\x00\x1b\ud800'


def _report(skew_status='block'):
  finding = {'severity': 'block', 'kind': 'distribution_shift', 'feature': HOSTILE, 'message': f'`{HOSTILE}` moved'}
  return {
      'verdict': 'block' if skew_status == 'block' else 'warn',
      'splits': {'train': 'train', 'eval': ['eval']},
      'checks': {
          'skew': {'status': skew_status, 'findings': [finding, dict(finding, severity='warn', message='minor')],
                   'comparisons': {'eval': {'a': {'distance': 0.09, 'threshold': 0.1},
                                            'b': {'distance': 0.01, 'threshold': 0.1}}}},
          'leakage': {'status': 'warn', 'findings': [{'severity': 'warn', 'kind': 'within_split_duplicates',
                                                      'message': '3 example(s) of eval repeat'}],
                      'cross_split': [{'duplicate_examples': 0, 'fraction_of_b': 0.0}]},
          'loss': {'status': 'skipped', 'reason': 'no module_file given', 'findings': []},
      },
  }


def _cases(xml_text):
  root = ET.fromstring(xml_text.encode('utf-8'))
  assert root.tag == 'testsuites'
  return root, {case.get('name'): case for case in root.iter('testcase')}


def test_junit_has_one_case_per_check_with_failures_and_skips():
  root, cases = _cases(summaries.to_junit_xml(_report(), 'out/report.html'))
  assert list(cases) == ['skew', 'leakage', 'loss']
  assert (root.get('tests'), root.get('failures'), root.get('skipped'), root.get('errors')) == ('3', '1', '1', '0')
  failure = cases['skew'].find('failure')
  assert failure is not None and failure.get('type') == 'block'
  assert failure.get('message').startswith('1 blocking finding(s): `x</failure><script>')
  # The hostile text comes back as text; the characters XML cannot hold are replaced, not dropped silently.
  assert 'x</failure><script>alert(1)</script>]]>|*a*' in failure.text and '\x00' not in failure.text
  assert '\ufffd\ufffd\ufffd' in failure.text and failure.text.count('\n') == 1
  assert cases['leakage'].find('failure') is None and 'repeat' in cases['leakage'].find('system-out').text
  assert cases['loss'].find('skipped').get('message') == 'no module_file given'
  props = {p.get('name'): p.get('value') for p in root.iter('property')}
  assert props == {'verdict': 'block', 'report': 'out/report.html'}


def test_junit_never_passes_a_check_that_did_not_decide():
  report = _report()
  report['checks']['loss'] = {'status': 'not_checked', 'reason': 'nothing read', 'findings': []}
  root, cases = _cases(summaries.to_junit_xml(report))
  assert cases['loss'].find('error').get('message') == 'nothing read' and root.get('errors') == '1'


def test_markdown_summary_escapes_and_shows_how_close_a_pass_was():
  md = summaries.to_markdown(_report(), 'out/report.html')
  lines = md.splitlines()
  assert lines[0] == '## tfx-preflight: :x: block'
  table = [line for line in lines if line.startswith('| ')]
  assert table[0] == '| check | status | headline |'
  assert table[1].startswith('| skew | block | skew block: 2 finding(s), closest to threshold: a 0.09 of 0.1 (eval)')
  assert table[3] == '| loss | skipped | loss skipped (no module\\_file given) |'
  assert '<script>' not in md and '\\<script\\>' in md and '&' not in md.replace('\\&', '')  # No HTML entity.
  assert '\\|\\*a\\*\\[l\\]' in md  # No table cell break, emphasis or link from user text.
  assert all(line.count(' | ') == 2 for line in table[2:])
  assert '### skew: 2 finding(s)' in md and lines[-1] == 'Full report: out/report.html'
  first = md.index('**block**')
  assert first < md.index('**warn** distribution\\_shift: minor')


@pytest.mark.parametrize('text', [HOSTILE.replace('\x00', '').replace('\ud800', ''), "it's 5 < 6 & 7 > 3 &amp; #1",
                                  '**bold** `code` <b>x</b> ~~s~~ a|b [x](y) &#x27; \\ _e_'])
def test_markdown_text_renders_as_the_text_itself(text):
  """A CommonMark renderer (markdown-it, independent of our escaping) shows exactly the text: no markup, no HTML, and
  no entities written into the Markdown (a quote was written as &#x27;, which Markdown files show as typed)."""
  from markdown_it import MarkdownIt
  escaped = summaries.md_text(text)
  assert escaped.count('&') == text.count('&') and escaped.count("'") == text.count("'")
  rendered = MarkdownIt('commonmark').enable('table').enable('strikethrough').renderInline(escaped)
  assert html.unescape(rendered) == ' '.join(text.split()) and '<' not in rendered.replace('&lt;', '')


def test_a_pass_over_its_threshold_says_it_was_within_sampling_noise(tmp_path, capsys):
  """scikit-learn's wine, a seeded random 80/20 split: color_intensity is over its threshold (0.176 of 0.1) but
  within sampling noise, and the check passes. The summary said only '0.176 of 0.1', which read like a bug."""
  from sklearn.datasets import load_wine
  wine = load_wine(as_frame=True).frame.rename(columns={'target': 'label', 'od280/od315_of_diluted_wines': 'od'})
  order = np.random.RandomState(0).permutation(len(wine))
  wine.iloc[order[:142]].to_csv(tmp_path / 'train.csv', index=False)
  wine.iloc[order[142:]].to_csv(tmp_path / 'eval.csv', index=False)
  code = cli.main(['check', '--train', str(tmp_path / 'train.csv'), '--eval', str(tmp_path / 'eval.csv'), '--label-key',
                   'label', '--checks', 'skew', '--out', str(tmp_path / 'r'), '--summary-md', str(tmp_path / 's.md')])
  out = capsys.readouterr().out
  assert code == cli.EXIT_OK
  # The checks --checks left out say so (they said 'skipped (leakage.mode is off)' though no mode was set).
  assert '  leakage: skipped (left out: only skew selected (--checks / checks))' in out.splitlines()
  assert 'mode is off' not in out
  assert ('| skew | pass | skew pass: 0 finding(s), closest to threshold: color\\_intensity 0.176 of 0.1 (eval), '
          'over it but within sampling noise |') in (tmp_path / 's.md').read_text()


@pytest.mark.slow
def test_cli_writes_both_summaries_on_block(tmp_path, capsys):
  rows = tabular_rows(300, seed=8)
  patterns = write_splits(str(tmp_path / 'examples'),
                          {'train': rows[:200], 'eval': rows[200:] + [dict(r, id=9000 + i) for i, r in
                                                                      enumerate(rows[:30])]})
  md, junit = tmp_path / 'ci' / 'summary.md', tmp_path / 'ci' / 'junit.xml'
  code = cli.main(['check', '--train', patterns['train'], '--eval', patterns['eval'], '--label-key', 'label',
                   '--exclude-features', 'id', '--checks', 'leakage', '--out', str(tmp_path / 'r'),
                   '--summary-md', str(md), '--junit-xml', str(junit)])
  capsys.readouterr()
  assert code == cli.EXIT_BLOCK
  root, cases = _cases(junit.read_text(encoding='utf-8'))
  assert sorted(cases) == ['label_proxy', 'leakage', 'loss', 'skew']
  failure = cases['leakage'].find('failure')
  assert failure is not None and '30 example(s) of eval' in failure.text
  assert cases['skew'].find('skipped') is not None and root.get('failures') == '1'
  text = md.read_text(encoding='utf-8')
  assert text.startswith('## tfx-preflight: :x: block\n')
  assert '| leakage | block | leakage block: 1 finding(s), 30 eval example(s) in train (max 23.08% of a split) |' in text
