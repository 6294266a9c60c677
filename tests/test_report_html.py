"""report.html explains a pass as well as a block: verdict, each check's status and top finding at the top (checked in
a real headless Chromium viewport), every compared feature with distance, threshold, effect size and status sorted by
distance / threshold, details as key/value rows, every value escaped."""

import json
import os
import re
import struct
import subprocess
import tempfile

import numpy as np
import pytest

from tests.helpers import assert_nothing_injected, chromium_binary, dump_dom, parse, tabular_rows, write_splits
from tfx_preflight import cli
from tfx_preflight.checks.skew import charts as skew_charts
from tfx_preflight.checks.skew.diagnosis import FeatureSummary
from tfx_preflight.config import CHECK_NAMES
from tfx_preflight.report import build as report
from tfx_preflight.report import pages
from tfx_preflight.report.results import CheckResult, Finding, SkippedDetails

EVIL = '<img src=x onerror=document.title="pwned">'


def _compared(*rows):
  return [dict(zip(('split', 'feature', 'metric', 'distance', 'threshold', 'ratio', 'effect_size', 'status'), r))
          for r in rows]


def test_compared_features_table_and_key_value_details():
  finding = Finding('skew', 'distribution_shift', 'block', f'`{EVIL}` moved', feature=EVIL, details=dict(
      splits=['train', 'eval'], train={'mean': 0.5, 'std': 1.0}, eval={'mean': 3.25, 'std': 1.0}, distance=0.4,
      threshold=0.1, effect_size=2.75, deciles=[1.0, 2.0]))
  skew = CheckResult('block', (finding,), details=SkippedDetails({'compared': _compared(
      ('eval', EVIL, 'jensen_shannon_divergence', 0.4, 0.1, 4.0, 2.75, 'block'),
      ('eval', 'near', 'l_infinity', 0.09, 0.1, 0.9, None, 'pass'))}))
  page = pages.report_html(report.build_report({'skew': skew}, 'train', ['eval']), {})
  assert EVIL not in page and '&lt;img src=x onerror=document.title=&quot;pwned&quot;&gt;' in page
  assert "{'mean'" not in page and '{"mean"' not in page  # No dict dumps.
  table = page[page.index('<h3>Compared features</h3>'):]
  assert table.index('4</td>') < table.index('0.9 ')  # Nearest its threshold (or beyond) first.
  # Details: one row per key, and the numbers of both splits side by side.
  assert '<tr><td>effect_size</td><td>2.75</td></tr>' in page and '<tr><td>deciles</td><td>1, 2</td></tr>' in page
  assert '<tr><td>mean</td><td class="num">0.5</td><td class="num">3.25</td></tr>' in page
  # The overview at the top: each check's status and its top finding, before the first check's section.
  assert page.index('class="overview"') < page.index('id="check-skew"')
  overview = page[page.index('class="overview"'):page.index('id="check-skew"')]
  assert '[block] `&lt;img' in overview and 'not run' in overview


def _summary(name, **kwargs):
  base = dict(name=name, type='FLOAT', num_examples=100, present=100, tot_values=100, min_values=1, max_values=1,
              avg_values=1.0)
  return FeatureSummary(**{**base, **kwargs})


def test_overlays_put_both_splits_on_one_axis_and_escape_names():
  # Train 0..10, eval 5..25: one axis from 0 to 25; a point mass (low == high) still gets a bar.
  train = _summary(EVIL, mean=5.0, std=1.0, histogram=((0.0, 5.0, 50), (5.0, 10.0, 50)))
  other = _summary(EVIL, mean=15.0, std=1.0, histogram=((5.0, 25.0, 90), (25.0, 25.0, 10)))
  words = _summary('w', type='STRING', unique=2, counts=((EVIL, 60), ('b', 40)))
  words_eval = _summary('w', type='STRING', unique=2, counts=(('b', 100),))
  compared = _compared(('eval', 'flagged', 'l_infinity', 0.9, 0.1, 9.0, None, 'block'),
                       ('eval', EVIL, 'jensen_shannon_divergence', 0.3, 0.1, 3.0, 2.0, 'within_noise'),
                       ('eval', 'w', 'l_infinity', 0.06, 0.1, 0.6, None, 'pass'),
                       ('eval', 'gone', 'l_infinity', 0.01, 0.1, 0.1, None, 'pass'))
  flagged = _summary('flagged', type='STRING', unique=1, counts=(('a', 100),))
  html = skew_charts.top_overlays(compared, {'train': {EVIL: train, 'w': words, 'flagged': flagged},
                                             'eval': {EVIL: other, 'w': words_eval, 'flagged': flagged}}, 'train')
  # A flagged feature has its own charts; 'gone' has no statistics: no chart, no error.
  assert html.count('<svg') == 2 and 'flagged' not in html
  assert EVIL not in html and '&lt;img src=x' in html
  numeric = html[:html.index('</svg>')]
  assert '>0</text>' in numeric and '>25</text>' in numeric
  assert numeric.count('<rect x="') == 2 + 2 * 3  # Two legend keys, both splits on the same three bins.
  shares = re.findall(r'<title>(\w+): \[(\S+), (\S+)\] ([\d.]+)%</title>', numeric.replace(
      '&lt;img src=x onerror=document.title=&quot;pwned&quot;&gt;', 'x'))
  assert shares == [('train', '0', '5', '50.0'), ('eval', '0', '5', '0.0'), ('train', '5', '10', '50.0'),
                    ('eval', '5', '10', '22.5'), ('train', '10', '25', '0.0'), ('eval', '10', '25', '77.5')]
  assert skew_charts.top_overlays(compared, {'train': {}, 'eval': {}}, 'train') == ''


def _bin_shares(svg):
  """{split: [(bin, share)]} from a chart's tooltips."""
  out = {}
  for split, low, high, share in re.findall(r'<title>(\w+): \[(\S+), (\S+)\] ([\d.]+)%</title>', svg):
    out.setdefault(split, []).append(((low, high), float(share) / 100))
  return out


@pytest.mark.parametrize('factor', [1.0, 1.609])
def test_heavy_tailed_taxi_columns_are_drawn_on_shared_bins(factor):
  """trip_miles (outliers up to 1,710 miles): on each split's own equal-width buckets eval was one spike at 0 and
  train a wide bar, clean or shifted alike. On shared quantile bins a clean split agrees bin by bin and a unit change
  (x1.609) shows as a shift."""
  import pandas as pd
  import tensorflow_data_validation as tfdv

  from tfx_preflight.checks.skew import diagnosis as skew_diagnosis
  from tfx_preflight.inputs import statistics
  taxi = pd.read_csv(os.path.join(os.path.dirname(tfdv.__file__), '..', 'tfx', 'examples', 'chicago_taxi_pipeline',
                                  'data', 'simple', 'data.csv'), usecols=['trip_miles'])
  in_train = np.random.default_rng(0).random(len(taxi)) < 0.8
  evaluation = taxi[~in_train].reset_index(drop=True)
  summaries = [skew_diagnosis.summarize(statistics.default_slice(
      {'s': tfdv.generate_statistics_from_dataframe(frame)}, 's'))['trip_miles']
      for frame in (taxi[in_train].reset_index(drop=True), evaluation.assign(trip_miles=evaluation.trip_miles * factor))]
  chart = skew_charts.overlay('trip_miles', 'train', summaries[0], 'eval', summaries[1], 'test')
  shares = _bin_shares(chart)
  assert [b for b, _ in shares['train']] == [b for b, _ in shares['eval']] and len(shares['train']) >= 8
  gaps = [abs(t - e) for (_, t), (_, e) in zip(shares['train'], shares['eval'])]
  assert max(s for _, s in shares['eval']) < 0.35  # Not one spike.
  if factor == 1.0:
    assert max(gaps) < 0.03
  else:
    assert max(gaps) > 0.05


def _run(tmp, name, train, evaluation):
  patterns = write_splits(str(tmp / name / 'examples'), {'train': train, 'eval': evaluation})
  out = tmp / name / 'report'
  code = cli.main(['check', '--train', patterns['train'], '--eval', patterns['eval'], '--label-key', 'label',
                   '--exclude-features', 'id', '--out', str(out)])
  return code, out


@pytest.fixture(scope='module')
def reports(tmp_path_factory):
  """Real CLI runs: a pass, and a block on scale skew plus leakage."""
  tmp = tmp_path_factory.mktemp('html')
  rows = tabular_rows(1000, seed=3)
  passing = _run(tmp, 'pass', rows[:800], rows[800:])
  leaked = [dict(r, id=50_000 + i) for i, r in enumerate(rows[:60])]
  blocking = _run(tmp, 'block', rows[:800], [dict(r, f0=r['f0'] * 10) for r in rows[800:]] + leaked)
  return {'pass': passing, 'block': blocking}


@pytest.mark.slow
@pytest.mark.parametrize('verdict', ['pass', 'block'])
def test_report_json_lists_every_comparison_sorted(reports, verdict):
  code, out = reports[verdict]
  assert code == (cli.EXIT_OK if verdict == 'pass' else cli.EXIT_BLOCK)
  skew = json.loads((out / 'report.json').read_text())['checks']['skew']
  compared = skew['compared']
  assert {(r['split'], r['feature']) for r in compared} == {('eval', f) for f in skew['comparisons']['eval']}
  ratios = [r['ratio'] for r in compared]
  assert ratios == sorted(ratios, reverse=True)
  for r in compared:
    assert r['ratio'] == pytest.approx(r['distance'] / r['threshold'], rel=1e-3)
  if verdict == 'pass':
    assert all(r['status'] == 'pass' and r['ratio'] < 1 for r in compared)
    assert all(r['effect_size'] is not None for r in compared if r['metric'] == 'jensen_shannon_divergence')
  else:
    assert (compared[0]['feature'], compared[0]['status']) == ('f0', 'block') and compared[0]['effect_size'] > 1


def _png_size(path):
  with open(path, 'rb') as f:
    head = f.read(24)
  assert head[:8] == b'\x89PNG\r\n\x1a\n'
  return struct.unpack('>II', head[16:24])


def _overview_bottom(page_path, tmp_path):
  """Where the overview table ends, in CSS pixels, as Chromium lays the page out (a test-only copy of the page with
  its CSP removed and a script that writes the measurement into the title)."""
  page = page_path.read_text(encoding='utf-8')
  page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', '', page)
  probe = ('<script>window.onload=function(){var r=document.querySelector("table.overview").getBoundingClientRect();'
           'document.title="bottom="+Math.round(r.bottom)+";rows="+document.querySelectorAll('
           '"table.overview tr").length;};</script>')
  copy = tmp_path / 'measure.html'
  copy.write_text(page.replace('</body>', probe + '</body>'), encoding='utf-8')
  title = parse(dump_dom(str(copy))).title
  match = re.fullmatch(r'bottom=(\d+);rows=(\d+)', title)
  assert match, title
  return int(match.group(1)), int(match.group(2))


@pytest.mark.slow
@pytest.mark.parametrize('verdict', ['pass', 'block'])
def test_report_in_a_real_browser_shows_the_overview_without_scrolling(reports, verdict, tmp_path):
  _, out = reports[verdict]
  page = out / 'report.html'
  dom = dump_dom(str(page))
  assert_nothing_injected(dom, f'tfx-preflight: {verdict}')
  text = re.sub(r'<[^>]+>', ' ', dom)
  assert 'Compared features' in text and 'distance / threshold' in text
  assert 'Passing features nearest their threshold: train vs eval overlaid' in text
  bottom, rows = _overview_bottom(page, tmp_path)
  assert rows == 1 + len(CHECK_NAMES)
  assert bottom < 800, f'the overview ends at {bottom}px: below a 1280x800 window'
  shot = tmp_path / f'{verdict}.png'
  with tempfile.TemporaryDirectory() as profile:
    subprocess.run([chromium_binary(), '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                    '--no-first-run', f'--user-data-dir={profile}', '--hide-scrollbars', '--window-size=1280,800',
                    f'--screenshot={shot}', f'file://{page}'], capture_output=True, timeout=120, check=True)
  assert _png_size(shot) == (1280, 800) and shot.stat().st_size > 20_000
