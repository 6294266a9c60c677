"""Short forms of a report for the places people look first: one log line, a Markdown summary for CI pages
(`$GITHUB_STEP_SUMMARY`, merge-request comments) and JUnit XML (one test case per check) for CI test views.

All three are built from the report dict alone, so they say exactly what report.json says. User data (feature names,
values, messages) is escaped for each format: Markdown punctuation backslash-escaped in Markdown (never HTML entities,
which Markdown viewers print as typed), XML by `xml.etree` after dropping the characters XML 1.0 cannot hold. Light module: no TensorFlow, TFX or Beam import.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Mapping, Optional

from tfx_preflight.constants import Severity, Status

# Findings listed per check in the Markdown summary and in a JUnit failure (the report has all of them).
MAX_FINDINGS = 20
_SEVERITY_RANK = {Severity.BLOCK: 0, Severity.WARN: 1}
_VERDICT_MARK = {Status.PASS: ':white_check_mark:', Status.WARN: ':warning:', Status.BLOCK: ':x:'}
# Characters XML 1.0 cannot hold at all (escaping does not help): most C0 controls, surrogates, U+FFFE/U+FFFF.
_NOT_XML = re.compile('[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]')
# Inline Markdown that could change how text renders mid-line (links, emphasis, code, table cells, strikethrough) and
# raw HTML or entities (<tag>, &amp;): CommonMark prints any of them literally after a backslash.
_MARKDOWN_PUNCTUATION = re.compile(r'([\\`*_\[\]|~<>&])')


def shown_severity(check: Mapping[str, Any], finding: Mapping[str, Any]) -> str:
  """The severity a reader is shown: a blocking finding of a check in warn mode (status warn) is a warning, since it
  blocked nothing; report.json keeps the finding's own severity."""
  severity = str(finding.get('severity'))
  return Severity.WARN.value if severity == Severity.BLOCK and check.get('status') == Status.WARN else severity


def shown_tag(check: Mapping[str, Any], finding: Mapping[str, Any]) -> str:
  """A finding's kind, and 'would block in block mode' when a check in warn mode demoted it."""
  tag = str(finding.get('kind') or finding.get('code') or '')
  if shown_severity(check, finding) != finding.get('severity'):
    tag += ' (warn mode: would block in block mode)'
  return tag


def _checks(report: Mapping[str, Any]) -> Dict[str, Mapping[str, Any]]:
  return dict(report.get('checks') or {})


def ordered_findings(check: Mapping[str, Any]) -> List[Mapping[str, Any]]:
  """A check's findings, most severe first (block, warn, then anything else), each severity in the check's order."""
  return sorted(check.get('findings') or [], key=lambda f: _SEVERITY_RANK.get(f.get('severity'), 2))


def _closest_comparison(check: Mapping[str, Any]) -> Optional[str]:
  """The skew comparison nearest its threshold, e.g. 'f1 0.09 of 0.1 (eval)': how close a pass was."""
  best = None
  for split, features in sorted((check.get('comparisons') or {}).items()):
    for name, c in sorted(features.items()):
      try:
        ratio = float(c['distance']) / float(c['threshold'])
      except (KeyError, TypeError, ValueError, ZeroDivisionError):
        continue
      if best is None or ratio > best[0]:
        best = (ratio, f'{name} {float(c["distance"]):.3g} of {float(c["threshold"]):.3g} ({split})', name, split)
  if best is None:
    return None
  noise = [row for row in check.get('compared') or [] if (row.get('feature'), row.get('split')) == best[2:]
           and row.get('status') == 'within_noise']
  # Over its threshold in a passing check: the effect-size and sampling-noise confirmations did not hold.
  return best[1] + (', over it but within sampling noise' if noise else '')


def headline(name: str, check: Mapping[str, Any]) -> str:
  """One check's status with its numbers: findings, the closest skew comparison, leaked eval examples."""
  status = check.get('status', '?')
  if status == Status.SKIPPED:
    return f'{name} skipped ({check.get("reason", "")})' if check.get('reason') else f'{name} skipped'
  parts = [f'{len(check.get("findings") or [])} finding(s)']
  closest = _closest_comparison(check)
  if closest:
    parts.append(f'closest to threshold: {closest}')
  cross = check.get('cross_split') or []
  if cross:
    leaked = sum(int(c.get('duplicate_examples', 0)) for c in cross)
    worst = max(float(c.get('fraction_of_b', 0.0)) for c in cross)
    parts.append(f'{leaked} eval example(s) in train (max {worst:.2%} of a split)')
  return f'{name} {status}: ' + ', '.join(parts)


def verdict_line(report: Mapping[str, Any]) -> str:
  """The one log line: verdict and headline numbers of every check."""
  return f'Preflight verdict: {report.get("verdict")} | ' + ' | '.join(
      headline(name, check) for name, check in _checks(report).items())


# ---------------------------------------------------------------------------------------------------------------
# Markdown.


def md_text(value: Any) -> str:
  """Plain text for Markdown (tables included), on one line: the punctuation Markdown would read as markup or HTML
  backslash-escaped, so a viewer shows the text as written (no `&#x27;` for a quote)."""
  text = ' '.join(str(value).split())
  return _MARKDOWN_PUNCTUATION.sub(r'\\\1', text)


def to_markdown(report: Mapping[str, Any], report_path: Optional[str] = None) -> str:
  """A summary for `$GITHUB_STEP_SUMMARY` or a merge-request comment: verdict, a table of checks, top findings."""
  verdict = str(report.get('verdict'))
  lines = [f'## tfx-preflight: {_VERDICT_MARK.get(verdict, "")} {md_text(verdict)}'.replace('  ', ' '), '']
  splits = report.get('splits') or {}
  if splits:
    lines += [f'train split {md_text(splits.get("train"))} compared with '
              + ', '.join(md_text(s) for s in splits.get('eval') or []), '']
  lines += ['| check | status | headline |', '|---|---|---|']
  for name, check in _checks(report).items():
    lines.append(f'| {md_text(name)} | {md_text(check.get("status"))} | {md_text(headline(name, check))} |')
  for name, check in _checks(report).items():
    findings = ordered_findings(check)
    if not findings:
      continue
    lines += ['', f'### {md_text(name)}: {len(findings)} finding(s)', '']
    for f in findings[:MAX_FINDINGS]:
      lines.append(f'- **{md_text(shown_severity(check, f))}** {md_text(shown_tag(check, f))}: '
                   f'{md_text(f.get("message"))}')
    if len(findings) > MAX_FINDINGS:
      lines.append(f'- ... and {len(findings) - MAX_FINDINGS} more in the report')
  if report_path:
    lines += ['', f'Full report: {md_text(report_path)}']
  return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------------------------------------------
# JUnit XML.


def xml_text(value: Any) -> str:
  """Text XML 1.0 can carry: characters it forbids become U+FFFD (ElementTree escapes the rest)."""
  return _NOT_XML.sub('\ufffd', str(value))


def _finding_lines(check: Mapping[str, Any], findings: List[Mapping[str, Any]]) -> str:
  lines = []
  for f in findings[:MAX_FINDINGS]:
    feature = f' [{f["feature"]}]' if f.get('feature') else ''
    lines.append(f'[{shown_severity(check, f)}] {shown_tag(check, f)}{feature}: {f.get("message")}')
  if len(findings) > MAX_FINDINGS:
    lines.append(f'... and {len(findings) - MAX_FINDINGS} more in the report')
  return xml_text('\n'.join(lines))


def to_junit_xml(report: Mapping[str, Any], report_path: Optional[str] = None) -> str:
  """One <testcase> per check: block -> <failure> with the findings, skipped -> <skipped>, warn -> passes with its
  findings in <system-out>. Any other status (a check that did not decide) is an <error>: never a silent pass."""
  checks = _checks(report)
  suite = ET.Element('testsuite', name='tfx-preflight')
  counts = {'failures': 0, 'skipped': 0, 'errors': 0}
  for name, check in checks.items():
    case = ET.SubElement(suite, 'testcase', classname='tfx_preflight', name=xml_text(name))
    status = check.get('status')
    findings = ordered_findings(check)
    if status == Status.BLOCK:
      counts['failures'] += 1
      blocking = sum(1 for f in findings if f.get('severity') == Severity.BLOCK)
      failure = ET.SubElement(case, 'failure', type=Severity.BLOCK.value, message=xml_text(
          f'{blocking} blocking finding(s): {findings[0].get("message") if findings else ""}'))
      failure.text = _finding_lines(check, findings)
    elif status == Status.SKIPPED:
      counts['skipped'] += 1
      ET.SubElement(case, 'skipped', message=xml_text(check.get('reason') or 'skipped'))
    elif status not in (Status.PASS, Status.WARN):
      counts['errors'] += 1
      ET.SubElement(case, 'error', type=xml_text(status), message=xml_text(check.get('reason') or status))
    if findings and status != Status.BLOCK:
      ET.SubElement(case, 'system-out').text = _finding_lines(check, findings)
  suite.set('tests', str(len(checks)))
  for key, value in counts.items():
    suite.set(key, str(value))
  props = ET.Element('properties')
  props.append(ET.Element('property', name='verdict', value=xml_text(report.get('verdict'))))
  if report_path:
    props.append(ET.Element('property', name='report', value=xml_text(report_path)))
  suite.insert(0, props)
  root = ET.Element('testsuites', name='tfx-preflight', tests=str(len(checks)),
                    **{k: str(v) for k, v in counts.items()})
  root.append(suite)
  ET.indent(root)
  return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding='unicode') + '\n'
