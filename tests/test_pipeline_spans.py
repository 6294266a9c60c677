"""Preflight where Trainer stands in a daily pipeline: behind a SpanRangeStrategy window of three spans (LocalDagRunner,
CsvExampleGen with `{SPAN}`/`{VERSION}` patterns over TFX's taxi CSV). The gate reads every span of the window, and
catches rows of the window's first span's train re-ingested into its last span's eval, which no per-span hash split prevents."""

import csv
import json
import os
import random
import re
import runpy

import pytest
import tfx as tfx_root
from tfx import v1 as tfx
from tfx.dsl.compiler import compiler
from tfx.proto import example_gen_pb2, range_config_pb2

from tfx_preflight import Preflight, earlier_train_hashes

TAXI_CSV = os.path.join(os.path.dirname(tfx_root.__file__), 'examples', 'chicago_taxi_pipeline', 'data', 'simple',
                        'data.csv')
TRAIN_ROWS, EVAL_ROWS, LEAKED, FORGOTTEN = 200, 60, 9, 5


def _taxi_rows():
  """The taxi CSV's header, then its rows in a fixed random order (spans are then alike, as daily data is)."""
  with open(TAXI_CSV, newline='') as source:
    rows = list(csv.reader(source))
  body = rows[1:]
  random.Random(0).shuffle(body)
  return [rows[0]] + body


def _write(path, header, rows):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w', newline='') as target:
    csv.writer(target).writerows([header] + rows)


def _write_span(base, span, version, rows, extra_eval=()):
  """Span `span` (version `version`): its own train and eval rows of the taxi CSV, plus `extra_eval` in eval."""
  header, body = rows[0], rows[1:]
  first = (span - 1) * (TRAIN_ROWS + EVAL_ROWS)
  train, evals = body[first:first + TRAIN_ROWS], body[first + TRAIN_ROWS:first + TRAIN_ROWS + EVAL_ROWS]
  _write(os.path.join(base, f'span-{span}', f'ver-{version}', 'train', 'data.csv'), header, train)
  _write(os.path.join(base, f'span-{span}', f'ver-{version}', 'eval', 'data.csv'), header, evals + list(extra_eval))
  return train


def _pipeline(tmp_path, with_gate, span=None):
  """CsvExampleGen over the span folders (the latest span, or `span`); with_gate: a window of the last 3 spans into
  Preflight, as Trainer would get it."""
  input_config = example_gen_pb2.Input(splits=[
      example_gen_pb2.Input.Split(name='train', pattern='span-{SPAN}/ver-{VERSION}/train/*'),
      example_gen_pb2.Input.Split(name='eval', pattern='span-{SPAN}/ver-{VERSION}/eval/*')])
  range_config = (range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
      start_span_number=span, end_span_number=span)) if span else None)
  example_gen = tfx.components.CsvExampleGen(input_base=str(tmp_path / 'data'), input_config=input_config,
                                             range_config=range_config)
  components = [example_gen]
  if with_gate:
    window = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.SpanRangeStrategy,
        config={'range_config': range_config_pb2.RangeConfig(
            rolling_range=range_config_pb2.RollingRange(num_spans=3))},
        # Every span ExampleGen made in this pipeline (its output channel alone holds this run's span only).
        examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples, producer_component_id=example_gen.id,
                                 output_key='examples')).with_id('span_window')
    window.add_upstream_node(example_gen)  # Today's span first.
    # What the gate blessed in its last 3 runs that did: eval is joined with that training data too.
    components += [window, Preflight(examples=window.outputs['examples'], label_key='tips',
                                     leakage={'exclude_features': ['trip_start_timestamp']},
                                     history=earlier_train_hashes(3), save_train_hashes=True)]
  return tfx.dsl.Pipeline(
      pipeline_name='spans', pipeline_root=str(tmp_path / 'root'), components=components,
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          str(tmp_path / 'metadata.db')))


def _latest_report(tmp_path):
  reports = sorted((tmp_path / 'root' / 'Preflight' / 'report').iterdir(), key=lambda p: int(p.name))
  return json.loads((reports[-1] / 'report.json').read_text())


@pytest.mark.slow
def test_a_window_of_three_spans_is_read_whole_and_a_row_copied_across_spans_blocks(tmp_path):
  rows = _taxi_rows()
  spans_train = {span: _write_span(str(tmp_path / 'data'), span, 1, rows) for span in (1, 2, 3)}
  for span in (1, 2):  # Earlier days' runs: ExampleGen alone.
    tfx.orchestration.LocalDagRunner().run(_pipeline(tmp_path, with_gate=False, span=span))

  tfx.orchestration.LocalDagRunner().run(_pipeline(tmp_path, with_gate=True))
  clean = _latest_report(tmp_path)
  assert clean['verdict'] in ('pass', 'warn'), clean['checks']['leakage']['findings']
  assert [(a['span'], a['version'], a['examples']) for a in clean['inputs']['examples_artifacts']] == [
      (span, 1, {'train': TRAIN_ROWS, 'eval': EVAL_ROWS}) for span in (1, 2, 3)]
  assert clean['checks']['leakage']['examples'] == {'train': 3 * TRAIN_ROWS, 'eval': 3 * EVAL_ROWS}
  # Every span compared with the others, split by split (real taxi rows, spans alike): none departs.
  assert {split: [(r['span'], r['examples'], r['compared'], r['departs']) for r in rows]
          for split, rows in clean['checks']['skew']['spans'].items()} == {
              split: [(span, n, True, []) for span in (1, 2, 3)]
              for split, n in (('train', TRAIN_ROWS), ('eval', EVAL_ROWS))}
  assert [f for f in clean['checks']['skew']['findings'] if f['kind'] == 'span_departs'] == []

  assert 'history' not in clean['checks']['leakage']  # No earlier run.

  # The next day: span 4, whose eval holds rows of span 2's train (re-ingested files; the window is spans 2-4) and
  # rows of span 1's train, out of the window: only the hashes yesterday's gate saved remember them.
  # (Not a new version of span 3: SpanRangeStrategy hands over every version of a span, so Trainer would read both.)
  _write_span(str(tmp_path / 'data'), 4, 1, rows, extra_eval=spans_train[2][:LEAKED] + spans_train[1][:FORGOTTEN])
  tfx.orchestration.LocalDagRunner().run(_pipeline(tmp_path, with_gate=True))
  leaky = _latest_report(tmp_path)
  assert leaky['verdict'] == 'block'
  artifacts = leaky['inputs']['examples_artifacts']
  assert [(a['span'], a['examples']['eval']) for a in artifacts] == [(2, EVAL_ROWS), (3, EVAL_ROWS),
                                                                     (4, EVAL_ROWS + LEAKED + FORGOTTEN)]
  cross = leaky['checks']['leakage']['cross_split'][0]
  assert cross['duplicate_examples'] == LEAKED
  assert {s['train_file'].split('/Split-')[0] for s in cross['samples']} == {artifacts[0]['uri']}
  assert {s['file'].split('/Split-')[0] for s in cross['samples']} == {artifacts[2]['uri']}
  leakage = leaky['checks']['leakage']
  assert [(p['duplicate_examples'], p['history_only_examples']) for p in leakage['history']] == [
      (LEAKED + FORGOTTEN, FORGOTTEN)]
  assert [(h['examples'], h['compared']) for h in leakage['history_artifacts']] == [(3 * TRAIN_ROWS, True)]


def test_docs_span_window_snippet_compiles_with_the_window_and_history_wired(tmp_path):
  text = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs', 'spans.md')).read()
  snippet = re.search(r'<!-- README-SPANS[^>]*-->\s*```python\n(.*?)```', text, re.S).group(1)
  script = tmp_path / 'snippet.py'
  script.write_text(snippet)
  namespace = runpy.run_path(str(script), init_globals={'data_root': str(tmp_path), 'module_file': 'trainer.py'})
  pipeline = tfx.dsl.Pipeline(pipeline_name='readme_spans', pipeline_root=str(tmp_path / 'root'),
                              components=namespace['components'])
  nodes = {n.pipeline_node.node_info.id: n.pipeline_node for n in compiler.Compiler().compile(pipeline).nodes}
  preflight = nodes['Preflight']
  assert set(preflight.inputs.inputs) >= {'examples', 'history'}
  assert 'train_hashes' in preflight.outputs.outputs
  assert preflight.inputs.inputs['history'].min_count == 0  # Optional: the first runs have no history.
