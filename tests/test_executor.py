"""The executor on real artifacts (no orchestrator): split names from the artifact, report + blessing written,
headline numbers as MLMD custom properties, fail_on_block raising with a readable summary."""

import json
import logging
import os

import pytest
from tfx.types import artifact_utils, standard_artifacts

from tests.helpers import tabular_rows, write_splits
from tfx_preflight import executor, spec
from tfx_preflight.artifacts import PreflightBlessing, PreflightReport
from tfx_preflight.config import PreflightConfig


def _examples(root, splits):
  write_splits(root, splits)
  examples = standard_artifacts.Examples()
  examples.uri = root
  examples.split_names = artifact_utils.encode_split_names(list(splits))
  return examples


def _do(tmp_path, splits, **config):
  examples = _examples(str(tmp_path / 'examples'), splits)
  report, blessing = PreflightReport(), PreflightBlessing()
  report.uri, blessing.uri = str(tmp_path / 'report'), str(tmp_path / 'blessing')
  exec_properties = {spec.CONFIG_KEY: PreflightConfig(**config).to_json(), spec.MODULE_FILE_KEY: None}
  executor.Executor().Do({spec.EXAMPLES_KEY: [examples]},
                         {spec.REPORT_KEY: [report], spec.BLESSING_KEY: [blessing]}, exec_properties)
  return json.loads((tmp_path / 'report' / 'report.json').read_text()), report, blessing


def _leaky_splits():
  rows = tabular_rows(1000, seed=3)
  copies = [dict(r, id=50_000 + i) for i, r in enumerate(rows[:100])]
  return {'train': rows[:800], 'eval': rows[800:] + copies}


@pytest.mark.slow
def test_clean_splits_bless_and_record_headline_numbers(tmp_path):
  rows = tabular_rows(1000, seed=4)
  result, report, blessing = _do(tmp_path, {'train': rows[:800], 'eval': rows[800:]},
                                 label_key='label', skew={'exclude_features': ['id']},
                                 leakage={'exclude_features': ['id']})
  assert result['verdict'] in ('pass', 'warn')
  assert result['splits'] == {'train': 'train', 'eval': ['eval']}
  assert blessing.get_int_custom_property(spec.BLESSED_PROPERTY) == 1
  assert report.get_string_custom_property('verdict') == result['verdict']
  assert os.path.exists(tmp_path / 'blessing' / 'BLESSED')
  assert os.path.exists(tmp_path / 'report' / 'report.html')


@pytest.mark.slow
def test_leaky_eval_blocks_with_blessed_zero(tmp_path, caplog):
  caplog.set_level(logging.INFO)
  result, report, blessing = _do(tmp_path, _leaky_splits(), label_key='label', skew={'mode': 'off'},
                                 leakage={'exclude_features': ['id']})
  assert result['verdict'] == 'block'
  assert result['checks']['skew']['status'] == 'skipped'
  assert blessing.get_int_custom_property(spec.BLESSED_PROPERTY) == 0
  assert report.get_int_custom_property('leaked_eval_examples') == 100
  # The headline numbers (read from the typed report) are report.json's numbers.
  cross = result['checks']['leakage']['cross_split']
  assert report.get_float_custom_property('max_leaked_fraction') == max(p['fraction_of_b'] for p in cross) > 0.3
  assert report.get_string_custom_property('leakage_status') == 'block'
  assert report.get_string_custom_property('skew_status') == 'skipped'
  assert report.get_int_custom_property('skew_findings') == 0
  assert report.get_int_custom_property('blessed') == 0
  assert os.path.exists(tmp_path / 'blessing' / 'NOT_BLESSED')
  # One INFO line with the verdict and the numbers, before the findings summary.
  verdicts = [r.getMessage() for r in caplog.records if r.getMessage().startswith('Preflight verdict:')]
  assert verdicts == ['Preflight verdict: block | skew skipped (skew.mode is off) | leakage block: 1 finding(s), '
                      '100 eval example(s) in train (max 33.33% of a split) | loss skipped (no module_file or run_fn given) | '
                      'label_proxy pass: 0 finding(s)']
  assert any('[leakage] block, train 800, eval 300 examples hashed' in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_fail_on_block_raises_with_the_summary(tmp_path):
  with pytest.raises(executor.PreflightBlocked, match='(?s)report.html.*leakage: block'):
    _do(tmp_path, _leaky_splits(), label_key='label', skew={'mode': 'off'},
        leakage={'exclude_features': ['id']}, fail_on_block=True)


def test_unknown_eval_split_fails_naming_it(tmp_path):
  rows = tabular_rows(10, seed=5)
  with pytest.raises(ValueError, match="eval split\\(s\\) valid not found.*train, eval"):
    _do(tmp_path, {'train': rows, 'eval': rows}, eval_splits=['valid'])


def _span(root, span, splits):
  examples = _examples(root, splits)
  examples.span, examples.version = span, 0
  return examples


@pytest.mark.slow
def test_a_span_window_is_read_whole_and_leakage_joins_across_spans(tmp_path):
  """Three Examples artifacts in one channel (a SpanRangeStrategy window), handed over in no particular order: every
  span's train is train and every span's eval is eval; copies of span 1's train in span 3's eval block, counted."""
  rows = [tabular_rows(300, seed=10 + span, offset=1000 * span) for span in (1, 2, 3)]
  leaked = [dict(r, id=90_000 + i) for i, r in enumerate(rows[0][:12])]
  spans = [_span(str(tmp_path / f'span-{s}'), s, {'train': r[:240], 'eval': r[240:] + (leaked if s == 3 else [])})
           for s, r in zip((1, 2, 3), rows)]
  report, blessing = PreflightReport(), PreflightBlessing()
  report.uri, blessing.uri = str(tmp_path / 'report'), str(tmp_path / 'blessing')
  config = PreflightConfig(label_key='label', skew={'exclude_features': ['id']}, leakage={'exclude_features': ['id']})
  statistics = []  # One StatisticsGen output per span: never used as if it described the window.
  for span in (1, 2, 3):
    statistics.append(standard_artifacts.ExampleStatistics())
    statistics[-1].uri = str(tmp_path / f'statistics-{span}')
  executor.Executor().Do({spec.EXAMPLES_KEY: [spans[2], spans[0], spans[1]], spec.STATISTICS_KEY: statistics},
                         {spec.REPORT_KEY: [report], spec.BLESSING_KEY: [blessing]},
                         {spec.CONFIG_KEY: config.to_json()})
  result = json.loads((tmp_path / 'report' / 'report.json').read_text())
  assert result['inputs']['statistics']['used'].startswith('recomputed from the 3 Examples artifact(s)')
  assert result['checks']['skew']['num_examples'] == {'train': 720, 'eval': 192}  # The union.
  assert [(a['span'], a['examples']) for a in result['inputs']['examples_artifacts']] == [
      (1, {'train': 240, 'eval': 60}), (2, {'train': 240, 'eval': 60}), (3, {'train': 240, 'eval': 72})]
  leakage = result['checks']['leakage']
  assert leakage['examples'] == {'train': 720, 'eval': 192}
  assert leakage['cross_split'][0]['duplicate_examples'] == 12
  assert {s['train_file'].split('/')[-3] for s in leakage['cross_split'][0]['samples']} == {'span-1'}
  assert result['verdict'] == 'block' and blessing.get_int_custom_property(spec.BLESSED_PROPERTY) == 0
  assert 'span-3' in (tmp_path / 'report' / 'report.html').read_text()
