"""`make demo`: what validation numbers say without the gate, and what the gate says, for five scenarios.

For each scenario:
  (a) WITHOUT the gate: the scenario's own Trainer module is trained directly on the prepared splits (its `train`
      function: the same model, input_fn, loss and steps as its run_fn) and prints the validation loss and accuracy
      Keras reports. Next to them, the same model scored honestly: standard cross-entropy on eval data that is
      prepared correctly and not copied from train.
  (b) WITH the gate: the real TFX pipeline (ImportExampleGen -> StatisticsGen -> SchemaGen -> Preflight -> Trainer,
      Trainer under tfx.dsl.Cond on the blessing) on LocalDagRunner + Beam DirectRunner; the verdict and the findings
      are read back from ML Metadata and report.json.

  python -m pipelines.demo --scenario all|clean|normalize_train_only|leaky_split|zero_loss|label_proxy [--jobs 2]

With several scenarios, `--jobs` of them run at once, each in its own process (default: 2, or 1 on one core); their
full output goes to `<root>/logs/<scenario>.log` and the terminal shows progress, then the table.
Everything goes under one runs root (default `tfx_preflight_runs/` in the repo), wiped at the start of every run.
The clean scenario's Trainer runs inside the pipeline; its numbers come from that run (the gate lets it through).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import importlib.util
import logging
import multiprocessing
import os
import shutil
import sys
import time
import warnings
from typing import Any, List, Mapping, Optional, Sequence

# The demo's output is the table: keep TF's C++ logs and the Google client libraries' FutureWarnings out of it.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
warnings.filterwarnings('ignore', category=FutureWarning)

import numpy as np  # noqa: E402

from pipelines import data as data_lib  # noqa: E402

# local_runner and pipeline import TFX (~20 s): only where a scenario runs, so the launcher of parallel runs starts
# at once and each worker pays for its own imports.

MARKER = '.tfx-preflight-runs'
SCENARIO_STORIES = {
    'clean': 'prepared correctly: the gate should pass and Trainer train',
    'normalize_train_only': 'train pixels divided by 255, eval left at 0..255',
    'leaky_split': 'half of eval augmented copies of train images (noise and brightness; no exact copy)',
    'zero_loss': 'Trainer module whose masked loss multiplies every example by 0',
    'label_proxy': 'a review-queue field written after labelling (one queue per digit) joined into the examples',
}


@dataclasses.dataclass
class ScenarioResult:
  scenario: str
  val_loss: Optional[float] = None
  val_accuracy: Optional[float] = None
  honest_loss: Optional[float] = None
  honest_accuracy: Optional[float] = None
  verdict: Optional[str] = None
  blessed: Optional[int] = None
  trained_in_pipeline: bool = False
  findings: List[str] = dataclasses.field(default_factory=list)
  short_finding: str = ''
  report_html: Optional[str] = None
  seconds_direct: float = 0.0
  seconds_pipeline: float = 0.0


def prepare_root(root: str) -> None:
  """Wipes the runs root so a rerun starts clean; refuses a non-empty directory the demo did not create."""
  if os.path.isdir(root) and os.listdir(root) and not os.path.exists(os.path.join(root, MARKER)):
    raise SystemExit(f'Refusing to wipe {root}: it is not empty and has no {MARKER} marker. Pass another --root.')
  shutil.rmtree(root, ignore_errors=True)
  os.makedirs(root)
  with open(os.path.join(root, MARKER), 'w', encoding='utf-8') as f:
    f.write('Created by `python -m pipelines.demo`; wiped at the start of every demo run.\n')


def load_module(path: str):
  """Loads a Trainer module file by path, as Trainer does."""
  name = 'demo_module_' + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _data_accessor():
  from tfx.components.trainer import fn_args_utils
  from tfx.components.util import tfxio_utils
  from tfx.proto import example_gen_pb2

  def tf_dataset_factory(file_pattern, options, schema):
    return tfxio_utils.make_tfxio(file_pattern=file_pattern, telemetry_descriptors=['preflight-demo'],
                                  payload_format=example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE,
                                  schema=schema).TensorFlowDataset(options)
  return fn_args_utils.DataAccessor(tf_dataset_factory=tf_dataset_factory, record_batch_factory=None,
                                    data_view_decode_fn=None)


def train_directly(module_file: str, data_root: str, work_dir: str, train_steps: int, eval_steps: int):
  """Trains the module's model on the prepared splits without any pipeline; returns (model, Keras metrics)."""
  from tfx import v1 as tfx
  patterns = data_lib.split_patterns(data_root)
  fn_args = tfx.components.FnArgs(
      train_files=[patterns[data_lib.TRAIN_SPLIT]], eval_files=[patterns[data_lib.EVAL_SPLIT]],
      train_steps=train_steps, eval_steps=eval_steps, data_accessor=_data_accessor(),
      serving_model_dir=os.path.join(work_dir, 'serving_model'), model_run_dir=os.path.join(work_dir, 'model_run'))
  return load_module(module_file).train(fn_args)


def honest_eval_set(scenario: str, splits: data_lib.Splits) -> tuple:
  """Eval rows as they should have been: correctly normalized, none of them copied from train, and (label_proxy)
  with the review queue images have when the model is asked: none yet."""
  if scenario == 'normalize_train_only':
    clean = data_lib.make_splits('clean')
    return clean.eval_pixels, clean.eval_labels
  if scenario == 'label_proxy':
    unreviewed = np.full((len(splits.eval_labels), 1), data_lib.UNREVIEWED_QUEUE, dtype=np.int64)
    return {data_lib.PIXELS_KEY: splits.eval_pixels, data_lib.PROXY_KEY: unreviewed}, splits.eval_labels
  keep = splits.eval_copied_from < 0
  return splits.eval_pixels[keep], splits.eval_labels[keep]


def cross_entropy_and_accuracy(model: Any, pixels: Any, labels: np.ndarray) -> tuple:
  """Standard sparse categorical cross-entropy (Keras' clipping) and accuracy, whatever loss the model trained on.
  `pixels`: the pixel array, or a dict of every model input."""
  inputs = pixels if isinstance(pixels, dict) else {data_lib.PIXELS_KEY: pixels}
  probabilities = np.asarray(model.predict(inputs, batch_size=256, verbose=0))
  picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
  return float(-np.mean(np.log(picked))), float(np.mean(probabilities.argmax(axis=1) == labels))


def _short(check: str, item: Mapping[str, Any]) -> str:
  what = item.get('kind') or item.get('code') or 'finding'
  feature = f' ({item["feature"]})' if item.get('feature') else ''
  return f'{check}/{what}{feature}'


def summarize_report(report: Optional[Mapping[str, Any]]) -> tuple:
  """(one short label per blocking/warning finding, full messages) from report.json."""
  if not report:
    return '(no report)', []
  shorts, messages = [], []
  for severity in ('block', 'warn'):
    for check, result in sorted(report['checks'].items()):
      for item in result.get('findings', []):
        if item.get('severity') == severity:
          shorts.append(_short(check, item))
          messages.append(f'[{severity}] {check}: {item["message"]}')
  if not shorts:
    statuses = ', '.join(f'{c} {r["status"]}' for c, r in sorted(report['checks'].items()))
    return f'none ({statuses})', []
  unique = list(dict.fromkeys(shorts))
  return ', '.join(unique[:2]) + (f' +{len(unique) - 2}' if len(unique) > 2 else ''), messages


def describe_splits(splits: data_lib.Splits) -> str:
  """What the data measurably is: pixel ranges per split and how many eval rows come from train."""
  text = (f'pixels in train [{splits.train_pixels.min():g}, {splits.train_pixels.max():g}], '
          f'eval [{splits.eval_pixels.min():g}, {splits.eval_pixels.max():g}]')
  copied = splits.eval_copied_from >= 0
  if copied.any():
    sources = splits.train_pixels[splits.eval_copied_from[copied]]
    exact = int(np.sum(np.all(splits.eval_pixels[copied] == sources, axis=1)))
    text += (f'; {int(copied.sum())} eval rows copied from train ({exact} exact, {int(copied.sum()) - exact} with '
             f'noise up to {np.abs(splits.eval_pixels[copied] - sources).max():.4f})')
  return text


def run_scenario(scenario: str, root: str, train_steps: Optional[int] = None,
                 eval_steps: Optional[int] = None) -> ScenarioResult:
  from pipelines import local_runner
  from pipelines import pipeline as pipeline_lib
  train_steps = train_steps or pipeline_lib.DEFAULT_TRAIN_STEPS
  eval_steps = eval_steps or pipeline_lib.DEFAULT_EVAL_STEPS
  from tfx_preflight import constants
  from tfx_preflight.checks.loss.probe import autograph_skips_tf_keras
  autograph_skips_tf_keras()  # TF 2.16 + tf_keras: see there. Trainer runs in this process with LocalDagRunner.
  result = ScenarioResult(scenario)
  paths = local_runner.RunPaths(root, scenario)
  module_file = local_runner.module_for(scenario)
  print(f'\n=== {scenario}: {SCENARIO_STORIES[scenario]}', flush=True)
  splits = data_lib.generate(scenario, paths.data_root)
  print(f'data: {len(splits.train_labels)} train / {len(splits.eval_labels)} eval examples under {paths.data_root}; '
        f'{describe_splits(splits)}')

  if scenario != 'clean':
    print(f'--- (a) without the gate: {os.path.basename(module_file)} trained directly', flush=True)
    start = time.time()
    model, metrics = train_directly(module_file, paths.data_root, os.path.join(root, 'direct', scenario),
                                    train_steps, eval_steps)
    result.val_loss, result.val_accuracy = metrics['val_loss'], metrics['val_accuracy']
    result.honest_loss, result.honest_accuracy = cross_entropy_and_accuracy(model, *honest_eval_set(scenario, splits))
    result.seconds_direct = time.time() - start

  print('--- (b) with the gate: the TFX pipeline on LocalDagRunner', flush=True)
  start = time.time()
  local_runner.run_pipeline(paths, module_file, train_steps=train_steps, eval_steps=eval_steps)
  result.seconds_pipeline = time.time() - start
  outcome = local_runner.read_outcome(paths.metadata_path)
  result.verdict, result.blessed = outcome.verdict, outcome.blessed
  result.trained_in_pipeline = bool(outcome.model_uris)
  result.short_finding, result.findings = summarize_report(outcome.report)
  if outcome.report_uri:
    result.report_html = os.path.join(outcome.report_uri, constants.REPORT_HTML)
  if scenario == 'clean' and outcome.trainer_metrics:
    # The gate let Trainer run: its own validation numbers are the clean scenario's numbers.
    result.val_loss = outcome.trainer_metrics['val_loss']
    result.val_accuracy = outcome.trainer_metrics['val_accuracy']
    result.honest_loss, result.honest_accuracy = result.val_loss, result.val_accuracy
  return result


def _fmt(value: Optional[float], digits: int = 4) -> str:
  return '-' if value is None else f'{value:.{digits}f}'


def format_table(results: Sequence[ScenarioResult]) -> str:
  header = ('scenario', 'val loss without gate', 'val acc', 'honest val loss', 'honest acc', 'gate verdict',
            'Trainer ran', 'finding')
  rows = [header]
  for r in results:
    gate = f'{r.verdict} (blessed={r.blessed})' if r.verdict else 'no blessing'
    rows.append((r.scenario, _fmt(r.val_loss), _fmt(r.val_accuracy, 3), _fmt(r.honest_loss), _fmt(r.honest_accuracy, 3),
                 gate, 'yes' if r.trained_in_pipeline else 'no', r.short_finding))
  widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
  lines = [' | '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
  lines.insert(1, '-+-'.join('-' * w for w in widths))
  return '\n'.join(lines)


def format_details(results: Sequence[ScenarioResult]) -> str:
  lines = []
  for r in results:
    timing = f'direct training {r.seconds_direct:.0f} s, ' if r.seconds_direct else ''
    lines.append(f'{r.scenario}: gate verdict {r.verdict}; report {r.report_html} '
                 f'({timing}pipeline {r.seconds_pipeline:.0f} s)')
    lines.extend(f'    {m}' for m in r.findings)
  return '\n'.join(lines)


def _run_scenario_logged(scenario: str, root: str, train_steps: Optional[int],
                         eval_steps: Optional[int]) -> ScenarioResult:
  """run_scenario in a worker process, everything it prints (TF's C++ logs included) going to its log file."""
  log_path = scenario_log(root, scenario)
  with open(log_path, 'w', encoding='utf-8') as log:
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    logging.getLogger('absl').setLevel(logging.ERROR)
    result = run_scenario(scenario, root, train_steps, eval_steps)
    sys.stdout.flush()
    sys.stderr.flush()
  return result


def scenario_log(root: str, scenario: str) -> str:
  return os.path.join(root, 'logs', f'{scenario}.log')


def run_in_parallel(scenarios: Sequence[str], root: str, train_steps: Optional[int], eval_steps: Optional[int],
                    jobs: int) -> List[ScenarioResult]:
  """Runs scenarios `jobs` at a time in fresh processes (spawned: TensorFlow does not survive fork)."""
  os.makedirs(os.path.join(root, 'logs'), exist_ok=True)
  print(f'Running {len(scenarios)} scenarios, {jobs} at a time; full output in {os.path.join(root, "logs")}/',
        flush=True)
  started = time.time()
  results = {}
  context = multiprocessing.get_context('spawn')
  with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
    futures = {pool.submit(_run_scenario_logged, s, root, train_steps, eval_steps): s for s in scenarios}
    for future in concurrent.futures.as_completed(futures):
      scenario = futures[future]
      try:
        results[scenario] = future.result()
      except Exception as e:
        raise SystemExit(f'Scenario {scenario} failed: {e}; see {scenario_log(root, scenario)}') from e
      r = results[scenario]
      print(f'  {scenario}: gate {r.verdict} (blessed={r.blessed}) after {time.time() - started:.0f} s', flush=True)
  return [results[s] for s in scenarios]


def one_tensorflow_thread() -> None:
  """One TensorFlow thread per process (and per process it starts), set before any TensorFlow op runs:
  * scenarios side by side do not fight: every TensorFlow process otherwise sizes its thread pools to all cores and
    spins, and they slow each other down several-fold;
  * the numbers do not depend on --jobs or the number of cores (the order of float reductions does);
  * the demo's CNN is small: one thread trains it in seconds."""
  for name in ('TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS', 'OMP_NUM_THREADS'):
    os.environ.setdefault(name, '1')


def default_jobs() -> int:
  return 2 if (os.cpu_count() or 1) >= 2 else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--scenario', default='all', choices=('all', *data_lib.SCENARIOS))
  parser.add_argument('--root', default=data_lib.DEFAULT_RUNS_ROOT, help='runs root, wiped first')
  parser.add_argument('--train-steps', type=int, help='Trainer steps (default: pipelines.pipeline.DEFAULT_TRAIN_STEPS)')
  parser.add_argument('--eval-steps', type=int, help='evaluation steps (default: pipelines.pipeline.DEFAULT_EVAL_STEPS)')
  parser.add_argument('--jobs', type=int, default=default_jobs(), help='scenarios run at once (default: %(default)s)')
  args = parser.parse_args(argv)
  if args.jobs < 1:
    parser.error(f'--jobs must be at least 1. Got {args.jobs} instead.')
  one_tensorflow_thread()
  logging.getLogger('absl').setLevel(logging.ERROR)  # LocalDagRunner's per-component chatter.
  scenarios = data_lib.SCENARIOS if args.scenario == 'all' else (args.scenario,)
  root = os.path.abspath(args.root)
  prepare_root(root)
  started = time.time()
  if args.jobs > 1 and len(scenarios) > 1:
    results = run_in_parallel(scenarios, root, args.train_steps, args.eval_steps, min(args.jobs, len(scenarios)))
  else:
    results = [run_scenario(s, root, args.train_steps, args.eval_steps) for s in scenarios]
  print('\n' + format_table(results))
  print('\n"honest" = the same trained model scored with standard cross-entropy on eval rows that are prepared '
        'correctly and not copied from train.')
  print('\n' + format_details(results))
  print(f'\nEverything is under {root} ({time.time() - started:.0f} s).')
  return 0


if __name__ == '__main__':
  sys.exit(main())
