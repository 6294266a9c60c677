"""Loss / evaluation-path check: proves the user's loss can move, and that evaluation measures it, before Trainer runs.

The user's Trainer module runs in a subprocess (`python -m tfx_preflight.loss_probe`, see that module for the battery):
it may fail to import, raise, hang, segfault or exhaust memory, and each of those becomes a blocking finding naming
the module and the function, never a dead or hung pipeline. Parent and child exchange JSON files only (never pickle).
The child gets a CPU-only environment, a seed, a wall-clock budget and optionally an address-space cap.
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.dsl.io import fileio

from tfx_preflight import records, report
from tfx_preflight.config import LossConfig
from tfx_preflight.html_report import esc

PROBE_MODULE = 'tfx_preflight.loss_probe'
SEED = 7
PROBE_LOG = 'probe.log'
_KNOWN_SEVERITIES = set(report.SEVERITIES)
# Lines of the child's stderr quoted in a crash finding.
_STDERR_TAIL_LINES = 6
# Stages of the probe, as it reports them, and what a hang there means.
_STAGE_WHAT = {
    'start': 'starting the probe', 'import_tensorflow': 'importing TensorFlow', 'import': 'importing the module',
    'build_model': 'building the model', 'transform': 'applying the transform graph to raw examples',
    'input_fn': 'reading batches through the input function',
    'forward': 'calling the model on a batch', 'labels': 'checking labels', 'battery': 'evaluating the loss',
    'initial_loss': 'evaluating the loss', 'eval_path': 'running model.evaluate',
    'fit_batch': 'fitting one batch', 'done': 'finishing',
}


# ---------------------------------------------------------------------------------------------------------------------
# Inputs of the probe.


def _local_module(module_file: str, workdir: str) -> str:
  """The module as a local file: a gs:// (or other remote) module is copied first, since Python imports local files;
  a relative local path is made absolute, since the probe runs in another working directory."""
  if '://' not in module_file:
    return os.path.abspath(module_file) if os.path.exists(module_file) else module_file
  local = os.path.join(workdir, 'module', os.path.basename(module_file))
  os.makedirs(os.path.dirname(local), exist_ok=True)
  fileio.copy(module_file, local, overwrite=True)
  return local


def _absolute(path: Optional[str]) -> Optional[str]:
  """Local paths made absolute: the probe runs in another working directory."""
  return path if not path or '://' in path else os.path.abspath(path)


def _readable_pattern(split: str, pattern: str, workdir: str) -> str:
  """A pattern TFX's tf.Example reader reads: it picks GZIP from the `.gz` suffix, so local files whose suffix does
  not tell the truth are linked under names that do."""
  if '://' in pattern:
    return pattern
  pattern = os.path.abspath(pattern)  # The probe runs in another working directory.
  files = sorted(glob.glob(pattern))
  if all(f.endswith('.gz') == records.is_gzip_file(f) for f in files if os.path.isfile(f)):
    return pattern
  directory = os.path.join(workdir, 'examples', f'Split-{split}')
  os.makedirs(directory, exist_ok=True)
  for i, path in enumerate(f for f in files if os.path.isfile(f)):
    suffix = '.gz' if records.is_gzip_file(path) else ''
    os.symlink(os.path.abspath(path), os.path.join(directory, f'data_tfrecord-{i:05d}{suffix}'))
  return os.path.join(directory, '*')


def _label_stats(statistics: Optional[Mapping[str, statistics_pb2.DatasetFeatureStatisticsList]],
                 label_key: Optional[str]) -> Dict[str, Dict[str, Any]]:
  """Per split: the label's min, max and whether it is integral, from the statistics of the whole split."""
  stats: Dict[str, Dict[str, Any]] = {}
  if not statistics or not label_key:
    return stats
  for split, stats_list in statistics.items():
    for dataset in stats_list.datasets:
      for feature in dataset.features:
        name = '.'.join(feature.path.step) or feature.name
        if name != label_key or not feature.HasField('num_stats'):
          continue
        num = feature.num_stats
        if num.common_stats.num_non_missing == 0:
          continue
        integral = feature.type == statistics_pb2.FeatureNameStatistics.INT
        stats[split] = {'min': float(num.min), 'max': float(num.max), 'integral': integral}
  return stats


def _hyperparameters(value: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
  if value is None:
    return None
  if not isinstance(value, Mapping):
    raise ValueError(f'hyperparameters must be the JSON object of a HyperParameters artifact. Got {value!r} instead.')
  return json.loads(json.dumps(value))  # Plain JSON only crosses the process boundary.


# ---------------------------------------------------------------------------------------------------------------------
# Running the probe.


def _limit_memory(limit_mb: int):
  """preexec_fn of the child: cap its address space. TF reserves several GiB of virtual memory at import."""
  def apply() -> None:
    limit = int(limit_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
  return apply


def _child_env() -> Dict[str, str]:
  """The probe's environment: CPU only, seeded, one thread; and the Keras that Trainer gets. Every TFX 1.16 process
  has TF_USE_LEGACY_KERAS=1 (tensorflow_transform sets it on import), so Trainer runs the module with Keras 2
  (tf_keras); without it the probe would resolve tf.keras to Keras 3 before the module imports TFX, and check
  something else than what Trainer will run. A value the user set explicitly is kept."""
  env = dict(os.environ)
  env.setdefault('TF_USE_LEGACY_KERAS', '1')
  env.update({'CUDA_VISIBLE_DEVICES': '', 'TF_CPP_MIN_LOG_LEVEL': '2', 'PYTHONHASHSEED': str(SEED),
              'TF_DETERMINISTIC_OPS': '1', 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'})
  package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env['PYTHONPATH'] = os.pathsep.join(p for p in (package_root, env.get('PYTHONPATH')) if p)
  return env


def _kill_group(process: subprocess.Popen) -> None:
  """Ends the child and anything it started (it leads its own session)."""
  try:
    os.killpg(process.pid, signal.SIGKILL)
  except ProcessLookupError:
    pass
  process.wait()


def _read_json(path: str) -> Optional[Dict[str, Any]]:
  try:
    with open(path) as f:
      value = json.load(f)
  except (OSError, ValueError):
    return None
  return value if isinstance(value, dict) else None


def _stderr_tail(path: str, replacements: Mapping[str, str]) -> str:
  try:
    with open(path, errors='replace') as f:
      lines = [line.rstrip() for line in f if line.strip()]
  except OSError:
    return ''
  noise = ('WARNING', 'I0000', 'W0000', 'oneDNN', 'cpu_feature_guard', 'rebuild TensorFlow', 'cuda', 'TensorRT',
           'FutureWarning', 'warnings.warn')
  lines = [line for line in lines if not any(n in line for n in noise)]
  text = ' | '.join(lines[-_STDERR_TAIL_LINES:])
  for old, new in replacements.items():
    text = text.replace(old, new)
  return text[-800:]


class _ProbeProcess:
  """The child running the battery. Started at once so it can work while the parent runs the other checks; `wait`
  enforces the wall-clock budget counted from the start."""

  def __init__(self, request: Dict[str, Any], config: LossConfig, workdir: str):
    self._request = request
    self._timeout = config.timeout_seconds
    request_path = os.path.join(workdir, 'request.json')
    with open(request_path, 'w') as f:
      json.dump(request, f, sort_keys=True)
    self.stderr_path = os.path.join(workdir, 'stderr.txt')
    self._started = time.monotonic()
    with open(os.path.join(workdir, 'stdout.txt'), 'wb') as out, open(self.stderr_path, 'wb') as err:
      self._process = subprocess.Popen(
          [sys.executable, '-m', PROBE_MODULE, request_path], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
          cwd=workdir, env=_child_env(), start_new_session=True,
          preexec_fn=_limit_memory(config.memory_limit_mb) if config.memory_limit_mb else None)

  def wait(self) -> Dict[str, Any]:
    """Waits for the child (what is left of the budget) and returns {'outcome': 'complete'|'timeout'|'crashed',
    'result', 'progress', ...}."""
    remaining = max(0.0, self._timeout - (time.monotonic() - self._started))
    try:
      returncode = self._process.wait(timeout=remaining)
      outcome = 'complete'
    except subprocess.TimeoutExpired:
      returncode, outcome = None, 'timeout'
    finally:
      self.kill()  # After a timeout, or an exception here (e.g. KeyboardInterrupt): never leave the child running.
    elapsed = time.monotonic() - self._started
    logging.info('Preflight loss probe: %s after %.1f s (exit code %s)', outcome, elapsed, returncode)
    result = _read_json(self._request['result_path'])
    if outcome == 'complete' and (returncode != 0 or result is None or not result.get('complete')):
      outcome = 'crashed'
    return {'outcome': outcome, 'returncode': returncode, 'result': result,
            'progress': _read_json(self._request['progress_path']), 'stderr_path': self.stderr_path,
            'elapsed': elapsed}

  def kill(self) -> None:
    if self._process.poll() is None:
      _kill_group(self._process)


def _signal_name(returncode: Optional[int]) -> str:
  if returncode is None or returncode >= 0:
    return f'exit code {returncode}'
  try:
    return signal.Signals(-returncode).name
  except ValueError:
    return f'signal {-returncode}'


def _stage_text(progress: Optional[Mapping[str, Any]], module_file: str) -> str:
  if not progress:
    return 'before it reported any progress'
  stage = str(progress.get('stage'))
  function = progress.get('function')
  what = _STAGE_WHAT.get(stage, stage)
  if function and function != module_file:
    return f'while {what} ({function}() in {module_file})'
  return f'while {what} ({module_file})'


def _clean_findings(raw: Any, replacements: Optional[Mapping[str, str]] = None) -> List[Dict[str, Any]]:
  """Findings from the child, reduced to JSON scalars with a known severity: the child ran untrusted code. Temp
  paths in messages are replaced by stable names, so the report does not change from run to run."""
  findings = []
  for item in raw if isinstance(raw, list) else []:
    if not isinstance(item, dict) or item.get('severity') not in _KNOWN_SEVERITIES:
      continue
    code, message = item.get('code'), item.get('message')
    if not isinstance(code, str) or not isinstance(message, str):
      continue
    details = {k: v for k, v in item.items() if isinstance(k, str) and k not in ('severity', 'message', 'code')
               and (v is None or isinstance(v, (str, int, float, bool)) or
                    (isinstance(v, list) and all(isinstance(e, (str, int, float)) for e in v)))}
    for old, new in (replacements or {}).items():
      message = message.replace(old, new)
    findings.append(report.finding(item['severity'], message, code=code, **details))
  return findings


def _sorted_findings(findings: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
  """Blocking first, then by code and message: the same run gives the same report bytes."""
  order = {'block': 0, 'warn': 1}
  return sorted(findings, key=lambda f: (order[f['severity']], f['code'], f.get('split', ''), f['message']))


def _interpret(run: Mapping[str, Any], module_file: str, config: LossConfig,
               replacements: Mapping[str, str]) -> Dict[str, Any]:
  outcome = run['outcome']
  payload = run['result'] if outcome == 'complete' else (run['progress'] or {})
  findings = _clean_findings(payload.get('findings'), replacements)
  where = _stage_text(run['progress'], module_file)
  if outcome == 'timeout':
    findings.append(report.finding(
        'block', f'The loss check did not finish within {config.timeout_seconds:g} s: it was stopped {where}. '
        'A Trainer module that hangs here will hang Trainer too; if it is only slow, raise loss.timeout_seconds.',
        code='timeout', timeout_seconds=config.timeout_seconds))
  elif outcome == 'crashed':
    reason = _signal_name(run['returncode'])
    memory = ' (killed: out of memory?)' if run['returncode'] == -signal.SIGKILL else ''
    tail = _stderr_tail(run['stderr_path'], replacements)
    hint = (f' Address space was capped at {config.memory_limit_mb} MiB (loss.memory_limit_mb).'
            if config.memory_limit_mb else '')
    findings.append(report.finding(
        'block', f'The loss check process died ({reason}{memory}) {where}.{hint}'
        + (f' Last error output: {tail}' if tail else ''), code='crashed', exit=reason))
  info = payload.get('info') if isinstance(payload.get('info'), dict) else {}
  return {
      'findings': _sorted_findings(findings),
      'measurements': json.loads(json.dumps(payload.get('measurements') or {}, sort_keys=True)),
      'info': {k: v for k, v in sorted(info.items()) if k != 'module_path'},
      'outcome': outcome,
  }


def build_request(module_file: str, local_module: str, examples: Mapping[str, str], train_split: str,
                  eval_splits: Sequence[str], config: LossConfig, label_key: Optional[str], schema_path: Optional[str],
                  transform_graph_uri: Optional[str], hyperparameters: Optional[Mapping[str, Any]],
                  statistics: Optional[Mapping[str, statistics_pb2.DatasetFeatureStatisticsList]],
                  workdir: str) -> Dict[str, Any]:
  """The probe's JSON request; the result and progress files go to `workdir`."""
  return {
      'module_file': module_file,
      'module_path': local_module,
      'model_fn': config.model_fn,
      'input_fn': config.input_fn,
      'loss_fn': config.loss_fn,
      'examples': {s: _readable_pattern(s, examples[s], workdir) for s in (train_split, *eval_splits)},
      'train_split': train_split,
      'eval_splits': list(eval_splits),
      'label_key': label_key,
      'label_stats': _label_stats(statistics, label_key),
      'schema_path': _absolute(schema_path),
      'transform_graph_uri': _absolute(transform_graph_uri),
      'hyperparameters': _hyperparameters(hyperparameters),
      'batch_size': config.batch_size,
      'fit_steps': config.fit_steps,
      'seed': SEED,
      'result_path': os.path.join(workdir, 'result.json'),
      'progress_path': os.path.join(workdir, 'progress.json'),
      'workdir': workdir,
  }


class LossCheck:
  """A started loss check: the probe runs in the background (it spends most of its time importing TensorFlow and
  the module) while the caller runs the other checks; `result()` collects it. Use as a context manager so an error
  elsewhere stops the child and removes its working directory."""

  def __init__(self, module_file: str, examples: Mapping[str, str], train_split: str, eval_splits: Sequence[str],
               config: LossConfig, label_key: Optional[str], schema_path: Optional[str],
               transform_graph_uri: Optional[str], hyperparameters: Optional[Mapping[str, Any]],
               statistics: Optional[Mapping[str, statistics_pb2.DatasetFeatureStatisticsList]], output_dir: str):
    missing = [s for s in (train_split, *eval_splits) if s not in examples]
    if missing:
      raise ValueError(f'The loss check needs split(s) {", ".join(missing)}; the examples have: '
                       f'{", ".join(sorted(examples))}.')
    self._module_file, self._config, self._output_dir = module_file, config, output_dir
    self._workdir = tempfile.mkdtemp(prefix='preflight-loss-')
    self._probe: Optional[_ProbeProcess] = None
    try:
      self._local_module = _local_module(module_file, self._workdir)
      request = build_request(module_file, self._local_module, examples, train_split, eval_splits, config,
                              label_key, schema_path, transform_graph_uri, hyperparameters, statistics, self._workdir)
      self._probe = _ProbeProcess(request, config, self._workdir)
    except BaseException:
      self.close()
      raise

  def result(self) -> Dict[str, Any]:
    """Waits for the probe and returns the check's result (see `check_loss`)."""
    try:
      run = self._probe.wait()
      replacements = {self._local_module: self._module_file, self._workdir: '<tmp>'}
      result = _interpret(run, self._module_file, self._config, replacements)
      _keep_log(run['stderr_path'], self._output_dir)
    finally:
      self.close()
    findings = result.pop('findings')
    return {'status': report.status_for(findings, self._config.mode), 'findings': findings,
            'module_file': self._module_file, **result}

  def close(self) -> None:
    if self._probe is not None:
      self._probe.kill()
    shutil.rmtree(self._workdir, ignore_errors=True)

  def __enter__(self) -> LossCheck:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


def skip_reason(config: LossConfig, module_file: Optional[str]) -> Optional[str]:
  """Why the loss check does not run, or None when it does."""
  if config.mode == 'off':
    return 'loss.mode is off'
  if not module_file:
    return 'no module_file given'
  return None


def check_loss(module_file: Optional[str], examples: Mapping[str, str], train_split: str, eval_splits: Sequence[str],
               config: LossConfig, label_key: Optional[str], schema_path: Optional[str],
               transform_graph_uri: Optional[str], hyperparameters: Optional[Mapping[str, Any]],
               statistics: Optional[Mapping[str, statistics_pb2.DatasetFeatureStatisticsList]],
               output_dir: str) -> Dict[str, Any]:
  """Runs the user's Trainer module in a subprocess against real batches and returns the loss check's result.

  Args:
    module_file: the Trainer module (local path, gs:// path or dotted module name).
    examples: split -> file pattern of tf.Example TFRecords.
    train_split, eval_splits: which splits are trained on / evaluated on.
    config: LossConfig (function names, time budget, memory cap, batch size, fit steps).
    label_key: the label feature; its statistics give label ranges over the whole split.
    schema_path: schema file passed to input_fn when there is no transform graph.
    transform_graph_uri: Transform's output, passed to input_fn as tft.TFTransformOutput.
    hyperparameters: the parsed HyperParameters artifact (keras_tuner config), for `_make_keras_model(hparams)`.
    statistics: split -> statistics (for label ranges and a bare loss_fn's labels).
    output_dir: where probe.log (the child's stderr) is kept for debugging.

  Returns:
    {'status', 'findings': [{code, severity, message, ...}], 'measurements', 'info', 'module_file'}.
  """
  reason = skip_reason(config, module_file)
  if reason:
    return report.skipped(reason)
  with LossCheck(module_file, examples, train_split, eval_splits, config, label_key, schema_path,
                 transform_graph_uri, hyperparameters, statistics, output_dir) as running:
    return running.result()


def _keep_log(stderr_path: str, output_dir: str) -> None:
  """The child's stderr beside the report, for whoever debugs a finding (not part of report.json)."""
  try:
    fileio.makedirs(output_dir)
    with open(stderr_path, 'rb') as src, fileio.open(os.path.join(output_dir, PROBE_LOG), 'wb') as dst:
      shutil.copyfileobj(src, dst)
  except OSError as e:  # A log that cannot be kept must not hide the findings.
    logging.warning('Preflight: could not keep the loss probe log: %s', e)


# ---------------------------------------------------------------------------------------------------------------------
# HTML.


def _number(value: Any) -> str:
  if isinstance(value, float) and math.isfinite(value):
    return f'{value:.4g}'
  return esc(value)


def render_html(result: Mapping[str, Any]) -> str:
  """What the probe found about the module and the numbers behind the findings; every cell escaped."""
  if result.get('status') == 'skipped':
    return ''
  info = result.get('info') or {}
  m = result.get('measurements') or {}
  raw = [('module', result.get('module_file')), ('model builder', info.get('model_fn')),
         ('input function', info.get('input_fn')), ('loss', info.get('loss')),
         ('output activation', info.get('output_activation')), ('loss from_logits', info.get('loss_from_logits')),
         ('label layout', info.get('layout')), ('output units', info.get('output_units'))]
  synthetic = m.get('loss_on_synthetic_predictions') or {}
  raw += [(f'loss on {kind} predictions', synthetic.get(kind)) for kind in ('perfect', 'random', 'inverted')]
  raw += [('loss of perfect predictions against other labels', m.get('loss_with_other_labels')),
          ('initial loss (fresh model, train batch)', m.get('initial_loss')),
          ('expected initial loss', m.get('expected_initial_loss'))]
  cells = [(esc(k), _number(v)) for k, v in raw if v is not None]
  fit = m.get('fit_batch') or {}
  if fit:
    cells.append((esc(f'one train batch, before -> after {fit.get("steps")} steps'),
                  f'{_number(fit.get("before"))} &rarr; {_number(fit.get("after"))}'))
  for split, values in sorted((m.get('eval_path') or {}).items()):
    cells.append((esc(f'{split}: model.evaluate vs loss from model(x)'),
                  f'{_number(values.get("evaluate"))} vs {_number(values.get("direct"))}'))
  body = ''.join(f'<tr><th>{k}</th><td>{v}</td></tr>' for k, v in cells)
  return f'<h3>Loss probe</h3><table>{body}</table>'
