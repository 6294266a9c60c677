"""A span window (several Examples artifacts) through run_preflight: skew compares the union of the spans' train with
the union of their eval, and a span whose distribution departs from the other spans' is a `span_departs` warning,
found from per-span statistics of the same read pass."""

import json

from tests.helpers import tabular_rows, write_splits
from tfx_preflight import run
from tfx_preflight.checks.skew import spans as span_skew
from tfx_preflight.config import PreflightConfig

ROWS, TRAIN = 400, 320


def _window(tmp_path, scaled_span=None):
  """Three spans alike (fresh draws of one distribution); f0 an intensity in [0, 1], multiplied by 255 in both splits
  of `scaled_span` (its pixels left unnormalized)."""
  artifacts = []
  for span in (1, 2, 3):
    rows = tabular_rows(ROWS, seed=20 + span, offset=1000 * span)
    rows = [dict(r, f0=min(max(0.5 + 0.15 * r['f0'], 0.0), 1.0) * (255 if span == scaled_span else 1)) for r in rows]
    patterns = write_splits(str(tmp_path / f'span-{span}'), {'train': rows[:TRAIN], 'eval': rows[TRAIN:]})
    artifacts.append(run.ExamplesArtifact(uri=str(tmp_path / f'span-{span}'), span=span, version=1,
                                          patterns=patterns))
  examples = {split: [a.patterns[split] for a in artifacts] for split in ('train', 'eval')}
  return run.PreflightInputs(examples=examples, examples_artifacts=artifacts)


def _run(tmp_path, inputs, beam_factory):
  config = PreflightConfig(label_key='label', exclude_features=['id'], checks=['skew'])
  run.run_preflight(inputs, config, beam_factory, str(tmp_path / 'report'))
  return (json.loads((tmp_path / 'report' / 'report.json').read_text()),
          (tmp_path / 'report' / 'report.html').read_text())


def _departures(result):
  return [(f['split'], f['span'], f['version'], f['feature']) for f in result['checks']['skew']['findings']
          if f['kind'] == 'span_departs']


def test_a_span_scaled_255x_departs_while_the_union_passes(tmp_path, beam_factory):
  result, html = _run(tmp_path, _window(tmp_path, scaled_span=2), beam_factory)
  skew = result['checks']['skew']
  assert _departures(result) == [('eval', 2, 1, 'f0'), ('train', 2, 1, 'f0')]
  # The union of train and the union of eval hold the scaled span alike: the split comparison has nothing to say.
  assert [f['kind'] for f in skew['findings'] if f['kind'] != 'span_departs'] == []
  assert skew['status'] == 'warn' and result['verdict'] == 'warn'
  finding = next(f for f in skew['findings'] if f['split'] == 'train')
  assert finding['severity'] == 'warn' and finding['departs_from'] == ['span 1', 'span 3']
  assert finding['metric'] == 'jensen_shannon_divergence' and finding['distance'] > finding['threshold'] == 0.1
  assert 'span 2' in finding['message'] and '255x' in finding['message'], finding['message']
  assert 'pixel normalization (/255) applied to one span only' in finding['message']
  assert [(r['span'], r['examples'], r['departs']) for r in skew['spans']['eval']] == [
      (1, ROWS - TRAIN, []), (2, ROWS - TRAIN, ['f0']), (3, ROWS - TRAIN, [])]
  assert 'span_departs' in html and 'train of span 2' in html


def test_alike_spans_give_no_departure(tmp_path, beam_factory):
  result, _ = _run(tmp_path, _window(tmp_path), beam_factory)
  assert _departures(result) == []
  assert result['checks']['skew']['status'] == 'pass'
  assert [(r['span'], r['examples'], r['compared'], r['departs']) for r in result['checks']['skew']['spans']['train']
          ] == [(span, TRAIN, True, []) for span in (1, 2, 3)]


def test_one_artifact_has_no_span_comparison(tmp_path, beam_factory):
  inputs = _window(tmp_path, scaled_span=2)
  one = inputs.examples_artifacts[1]
  result, _ = _run(tmp_path, run.PreflightInputs(examples=dict(one.patterns), examples_artifacts=[one]), beam_factory)
  assert 'spans' not in result['checks']['skew'] and _departures(result) == []


def test_a_span_departs_only_from_others_that_agree():
  # Pairs of span indices -> feature -> how they differ. Span 2 differs from 0 and 1 in x, which agree: it departs.
  # y drifts steadily (0-1 and 1-2 differ as well as 0-2): no single span is the odd one. Of two spans, the later.
  pairs = {(0, 1): {'y': 'y01'}, (0, 2): {'x': 'x02', 'y': 'y02'}, (1, 2): {'x': 'x12', 'y': 'y12'}}
  assert span_skew._departing(pairs, [0, 1, 2]) == {(2, 'x'): ['x02', 'x12']}
  assert span_skew._departing({(0, 2): {'x': 'x02'}}, [0, 2]) == {(2, 'x'): ['x02']}
  assert span_skew.artifact_labels([{'span': 1, 'version': 1}, {'span': 2, 'version': 1}, {'span': 2, 'version': 2}]
                                   ) == ['span 1', 'span 2 version 1', 'span 2 version 2']
