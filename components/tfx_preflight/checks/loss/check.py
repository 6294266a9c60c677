"""Loss / evaluation-path check: proves the user's loss can move, and that evaluation measures it, before Trainer runs.

The user's Trainer code runs in a subprocess (probe.py: run_fn called as Trainer calls it and stopped at
model.fit, then the battery of battery.py): it may fail to import, raise, hang, segfault or exhaust memory, and each
of those becomes a blocking finding naming the module and the function, never a dead or hung pipeline. Parent and child
exchange JSON only, over stdin and an inherited pipe (protocol.py; never pickle). The child gets a CPU-only
environment, a seed, a wall-clock budget, optionally an address-space cap, and dies with the gate (process.py).
This module prepares the request, and turns what the probe reported (or how it died) into the check's result.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from tensorflow_metadata.proto.v0 import statistics_pb2

from tfx_preflight import constants, file_io
from tfx_preflight.checks.loss import keras_api as loss_keras
from tfx_preflight.checks.loss import process as loss_process
from tfx_preflight.checks.loss import protocol as loss_protocol
from tfx_preflight.checks.loss.details import LossDetails
from tfx_preflight.config import LossConfig
from tfx_preflight.constants import Status
from tfx_preflight.inputs import data, records
from tfx_preflight.report.results import CheckResult, Finding, status_for

SEED = loss_process.SEED
PROBE_LOG = 'probe.log'
TIMING_JSON = 'timing.json'  # Phase times of the probe, beside probe.log (not in report.json).
# Set by TFX's Kubeflow runner: Trainer then imports module_file alone, without packaging its folder (udf_utils).
_NO_PACKAGING_ENV = 'UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES'
# Lines of the child's stderr quoted in a crash finding.
_STDERR_TAIL_LINES = 6
# Stages of the probe, as it reports them, and what a hang there means.
_STAGE_WHAT = {
    'start': 'starting the probe', 'import_tensorflow': 'importing TensorFlow', 'import': 'importing the module',
    'build_model': 'building the model', 'transform': 'applying the transform graph to raw examples',
    'run_fn': 'running run_fn up to model.fit', 'fit_data': 'reading the data run_fn passes to model.fit',
    'input_fn': 'reading batches through the input function',
    'forward': 'calling the model on a batch', 'labels': 'checking labels', 'battery': 'evaluating the loss',
    'initial_loss': 'evaluating the loss', 'eval_path': 'running model.evaluate',
    'transformed_examples': 'applying the transform graph to raw examples to find them in the transformed ones',
    'fit_batch': 'fitting one batch', 'validation': 'counting the validation data run_fn passes to model.fit',
    'wait_for_request': 'waiting for the rest of its request', 'done': 'finishing',
}


# ---------------------------------------------------------------------------------------------------------------------
# Inputs of the probe.


@dataclasses.dataclass(frozen=True)
class LossInputs:
  """What the loss check runs on, as Trainer takes it.

  Attributes:
    module_file: the Trainer module (local path or gs:// path), or None with a dotted run_fn.
    examples: split -> file pattern(s) of tf.Example TFRecords (raw, as ExampleGen writes them).
    train_split, eval_splits: which splits are trained on / evaluated on.
    label_key: the label feature; its statistics give label ranges over the whole split.
    schema_path: FnArgs.schema_path (and the fallback input_fn's schema when there is no transform graph).
    transform_graph_uri: Transform's output: FnArgs.transform_graph_path / transform_output.
    hyperparameters: the parsed HyperParameters artifact (keras_tuner config): FnArgs.hyperparameters.
    statistics: split -> statistics (for label ranges and a bare loss_fn's labels).
    run_fn: as Trainer takes it: a function name in module_file (default run_fn), or 'package.module.run_fn'.
    custom_config: Trainer's custom_config dict: FnArgs.custom_config.
    transformed_examples: split -> pattern of what Trainer reads after Transform; FnArgs.train_files/eval_files.
  """
  module_file: Optional[str]
  examples: Mapping[str, data.Patterns]
  train_split: str
  eval_splits: Tuple[str, ...]
  label_key: Optional[str] = None
  schema_path: Optional[str] = None
  transform_graph_uri: Optional[str] = None
  hyperparameters: Optional[Mapping[str, Any]] = None
  statistics: Optional[Mapping[str, statistics_pb2.DatasetFeatureStatisticsList]] = None
  run_fn: Optional[str] = None
  custom_config: Optional[Mapping[str, Any]] = None
  transformed_examples: Optional[Mapping[str, data.Patterns]] = None

  def __post_init__(self):
    object.__setattr__(self, 'eval_splits', tuple(self.eval_splits))  # A list given is kept as the tuple it means.

  @property
  def splits(self) -> Tuple[str, ...]:
    return (self.train_split, *self.eval_splits)

  @property
  def trainer_examples(self) -> Mapping[str, data.Patterns]:
    """What Trainer reads: the transformed examples when given, else the raw ones."""
    return self.transformed_examples or self.examples

  @property
  def module_name(self) -> str:
    """The module as messages and report.json name it: module_file, else the dotted run_fn."""
    return self.module_file or self.run_fn or ''

  def validate(self) -> None:
    """Raises ValueError on inputs Trainer would reject: a split the examples lack, no module to run."""
    missing = [s for s in self.splits if s not in self.trainer_examples]
    if missing:
      what = 'transformed examples' if self.transformed_examples else 'examples'
      raise ValueError(f'The loss check needs split(s) {", ".join(missing)}; the {what} have: '
                       f'{", ".join(sorted(self.trainer_examples))}.')
    if not self.module_file and not (self.run_fn and '.' in self.run_fn):
      raise ValueError('The loss check needs module_file, or run_fn as a dotted path (package.module.run_fn).')


def _local_module(module_file: str, workdir: str) -> str:
  """The module as a local file: a gs:// (or other remote) module is copied first, since Python imports local files;
  a relative local path is made absolute, since the probe runs in another working directory."""
  if '://' not in module_file:
    return os.path.abspath(module_file) if os.path.exists(module_file) else module_file
  local = os.path.join(workdir, 'module', os.path.basename(module_file))
  os.makedirs(os.path.dirname(local), exist_ok=True)
  file_io.copy(module_file, local, overwrite=True)
  return local


def _absolute(path: Optional[str]) -> Optional[str]:
  """Local paths made absolute: the probe runs in another working directory."""
  return path if not path or '://' in path else os.path.abspath(path)


def _readable_pattern(split: str, pattern: data.Patterns, workdir: str) -> str:
  """A pattern TFX's tf.Example reader reads: it picks GZIP from the `.gz` suffix, so local files whose suffix does
  not tell the truth are linked under names that do; so are the files of several local patterns (a window of spans,
  all of which Trainer reads). Of several remote patterns the probe, which reads a few batches, gets the first."""
  patterns = data.patterns_of(pattern)
  if any('://' in p for p in patterns):
    return patterns[0]
  patterns = tuple(os.path.abspath(p) for p in patterns)  # The probe runs in another working directory.
  files = sorted({f for p in patterns for f in file_io.glob(p)})  # As Trainer's reader globs: hidden files too.
  if len(patterns) == 1 and all(f.endswith('.gz') == records.is_gzip_file(f) for f in files if os.path.isfile(f)):
    return patterns[0]
  directory = os.path.join(workdir, 'examples', f'Split-{split}')
  os.makedirs(directory, exist_ok=True)
  for i, path in enumerate(f for f in files if os.path.isfile(f)):
    suffix = '.gz' if records.is_gzip_file(path) else ''
    os.symlink(os.path.abspath(path), os.path.join(directory, f'data_tfrecord-{i:05d}{suffix}'))
  return os.path.join(directory, '*')


def _label_stats(statistics: Optional[Mapping[str, statistics_pb2.DatasetFeatureStatisticsList]],
                 label_key: Optional[str]) -> Dict[str, Dict[str, Any]]:
  """Per split: the label's min, max, mean, standard deviation and whether it is integral, from the statistics of
  the whole split."""
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
        stats[split] = {'min': float(num.min), 'max': float(num.max), 'integral': integral, 'mean': float(num.mean),
                        'std': float(num.std_dev)}
  return stats


def _split_examples(statistics: Optional[Mapping[str, statistics_pb2.DatasetFeatureStatisticsList]]
                    ) -> Dict[str, int]:
  """Per split, the examples its statistics count (what a validation pass is measured against)."""
  counts = {}
  for split, stats_list in (statistics or {}).items():
    whole = next((d for d in stats_list.datasets if len(stats_list.datasets) == 1 or d.name == 'All Examples'), None)
    if whole is not None:
      counts[split] = int(whole.num_examples)
  return counts


def _hyperparameters(value: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
  if value is None:
    return None
  if not isinstance(value, Mapping):
    raise ValueError(f'hyperparameters must be the JSON object of a HyperParameters artifact. Got {value!r} instead.')
  return json.loads(json.dumps(value))  # Plain JSON only crosses the process boundary.


# ---------------------------------------------------------------------------------------------------------------------
# What the probe reported, or how it ended.


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


def _signal_name(returncode: Optional[int]) -> str:
  if returncode is None or returncode >= 0:
    return f'exit code {returncode}'
  try:
    return signal.Signals(-returncode).name
  except ValueError:
    return f'signal {-returncode}'


def _stage_text(progress: Optional[loss_protocol.ProbeProgress], module_file: str) -> str:
  if progress is None:
    return 'before it reported any progress'
  stage, function = progress.stage, progress.function
  what = _STAGE_WHAT.get(stage, stage)
  if function and function != module_file:
    return f'while {what} ({function}() in {module_file})'
  return f'while {what} ({module_file})'


# Stages where the probe runs the module's own code as Trainer runs it (a hang there is the module's).
_MODULE_STAGES = ('import', 'run_fn', 'build_model', 'input_fn', 'fit_data', 'transform')


def _timeout_meaning(progress: Optional[loss_protocol.ProbeProgress]) -> str:
  """What a timeout says: only a hang in the module's own code says anything about Trainer."""
  if progress is not None and progress.stage in _MODULE_STAGES:
    return ('That stage runs the module\'s own code as Trainer runs it: if it hangs, Trainer hangs too; if it is only '
            'slow, raise loss.timeout_seconds.')
  return ('That stage is the check\'s own work on the model (a few batches and steps): the model is slow to run, or '
          'the machine is busy; raise loss.timeout_seconds.')


def _finding(severity: str, code: str, message: str, **details: Any) -> Finding:
  return Finding(constants.LOSS, code, severity, message, details=details)


def _report_findings(raw: Sequence[loss_protocol.ProbeFinding],
                     replacements: Optional[Mapping[str, str]] = None) -> List[Finding]:
  """The child's findings (validated by protocol.ProbeFinding.from_json) as the report's: `feature` taken out of the
  details when it is a string, and temp paths in messages replaced by stable names, so the report does not change
  from run to run."""
  findings = []
  for item in raw:
    details = dict(item.details)
    feature = details.pop('feature', None)
    message = item.message
    for old, new in (replacements or {}).items():
      message = message.replace(old, new)
    findings.append(Finding(constants.LOSS, item.code, item.severity, message,
                            feature=feature if isinstance(feature, str) else None, details=details))
  return findings


def _sorted_findings(findings: List[Finding]) -> List[Finding]:
  """Blocking first, then by code and message: the same run gives the same report bytes."""
  return sorted(findings, key=lambda f: (-constants.STATUS_RANK[f.severity], f.code, f.details.get('split', ''),
                                         f.message))


def _ending_finding(run: loss_protocol.ProbeRun, module_file: str, config: LossConfig,
                    replacements: Mapping[str, str]) -> Optional[Finding]:
  """The blocking finding a probe that timed out or crashed gets, naming the stage it was in; None when complete."""
  where = _stage_text(run.progress, module_file)
  if run.outcome == loss_protocol.TIMEOUT:
    return _finding(
        constants.BLOCK, 'timeout',
        f'The loss check did not finish within {config.timeout_seconds:g} s: it was stopped {where}. '
        + _timeout_meaning(run.progress),
        timeout_seconds=config.timeout_seconds)
  if run.outcome != loss_protocol.CRASHED:
    return None
  reason = _signal_name(run.returncode)
  memory = ' (killed: out of memory?)' if run.returncode == -signal.SIGKILL else ''
  tail = _stderr_tail(run.stderr_path, replacements)
  hint = (f' Address space was capped at {config.memory_limit_mb} MiB (loss.memory_limit_mb).'
          if config.memory_limit_mb else '')
  return _finding(
      constants.BLOCK, 'crashed', f'The loss check process died ({reason}{memory}) {where}.{hint}'
      + (f' Last error output: {tail}' if tail else ''), exit=reason)


def _interpret(run: loss_protocol.ProbeRun, module_file: str, config: LossConfig,
               replacements: Mapping[str, str]) -> Tuple[List[Finding], LossDetails]:
  """The check's findings (the probe's, and one for a timeout or crash) and details from how the probe ended."""
  findings = _report_findings(run.state().findings, replacements)
  ending = _ending_finding(run, module_file, config, replacements)
  if ending is not None:
    findings.append(ending)
  return _sorted_findings(findings), LossDetails.from_run(run, module_file, replacements)


def build_head(config: LossConfig, module_file: Optional[str], run_fn: Optional[str], local_module: Optional[str],
               workdir: str, keras: Optional[loss_keras.TrainerKeras] = None) -> loss_protocol.ProbeRequest:
  """The request's head: which code to import and how, known before the data is read, so the probe imports the
  module while the parent still reads (probe.import_user_code). `keras` is the Keras Trainer gets (decided when the
  probe was started; in-process callers default to this process's)."""
  keras = keras or loss_keras.trainer_keras()
  return loss_protocol.ProbeRequest(
      module_file=module_file,
      module_path=local_module,
      run_fn=run_fn,
      model_fn=config.model_fn,
      input_fn=config.input_fn,
      loss_fn=config.loss_fn,
      batch_size=config.batch_size,
      fit_steps=config.fit_steps,
      timeout_seconds=config.timeout_seconds,
      seed=SEED,
      workdir=workdir,
      module_dir_importable=not os.environ.get(_NO_PACKAGING_ENV),
      sys_path=[os.path.abspath(p or os.curdir) for p in sys.path],
      keras=keras.flavour,
      keras_source=keras.source,
  )


def build_request(inputs: LossInputs, config: LossConfig, local_module: Optional[str], workdir: str,
                  keras: Optional[loss_keras.TrainerKeras] = None) -> loss_protocol.ProbeRequest:
  """The probe's whole request, head and data at once (in-process callers)."""
  return with_data(build_head(config, inputs.module_file, inputs.run_fn, local_module, workdir, keras), inputs, workdir)


def with_data(head: loss_protocol.ProbeRequest, inputs: LossInputs, workdir: str) -> loss_protocol.ProbeRequest:
  """The whole request: the head the probe imported the module by, and what Trainer reads
  (`inputs.trainer_examples`; with transformed examples, the raw examples they must come from too)."""
  raw_examples = inputs.examples if inputs.transformed_examples else {}
  return dataclasses.replace(
      head,
      examples={s: _readable_pattern(s, inputs.trainer_examples[s], workdir) for s in inputs.splits},
      raw_examples={s: _readable_pattern(f'raw-{s}', raw_examples[s], workdir)
                    for s in inputs.splits if s in raw_examples},
      train_split=inputs.train_split,
      eval_splits=list(inputs.eval_splits),
      label_key=inputs.label_key,
      label_stats={} if inputs.transformed_examples else _label_stats(inputs.statistics, inputs.label_key),
      split_examples=_split_examples(inputs.statistics),
      schema_path=_absolute(inputs.schema_path),
      transform_graph_uri=_absolute(inputs.transform_graph_uri),
      hyperparameters=_hyperparameters(inputs.hyperparameters),
      custom_config=_custom_config(inputs.custom_config),
  )


def _custom_config(value: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
  """Trainer's custom_config: a dict (Trainer raises on anything else), as plain JSON."""
  if value is None:
    return None
  if not isinstance(value, Mapping):
    raise ValueError(f'custom_config needs to be a dict, as Trainer requires. Got {type(value).__name__} instead.')
  try:
    return json.loads(json.dumps(value))
  except (TypeError, ValueError) as e:
    raise ValueError(f'custom_config must be JSON-serializable, as Trainer stores it: {e}') from e


def check_result(findings: Sequence[Finding], details: LossDetails, mode: str) -> CheckResult:
  """The check's result from the interpreted probe run: `skipped` (with the probe's reason) only when the probe
  completed, found nothing and said why it could not check (a run_fn that never calls model.fit)."""
  if details.skipped_reason and not findings and details.outcome == loss_protocol.COMPLETE:
    return CheckResult(Status.SKIPPED, reason=details.skipped_reason, details=details)
  return CheckResult(status_for(findings, mode), tuple(findings), details=details)


class LossCheck:
  """A started loss check. `start` launches the probe process at once with the request's head (which module to run):
  it starts Python, imports TensorFlow and then the user's module while the caller reads the data and computes
  statistics; `send` gives it the rest of the request (examples, schema, statistics) when the caller has them;
  `result()` collects it. Use as a context manager so an error elsewhere stops the child and removes its working
  directory."""

  def __init__(self, config: LossConfig, output_dir: str, module_file: Optional[str], run_fn: Optional[str] = None,
               warmup: Optional[loss_protocol.Warmup] = None):
    self._config, self._output_dir = config, output_dir
    self._local_module: Optional[str] = None
    self._workdir = loss_process.make_workdir()
    self._probe: Optional[loss_process.ProbeProcess] = None
    self._guard = loss_process.TerminateGuard(self.close)
    self._keras = loss_keras.trainer_keras()
    try:
      self._local_module = _local_module(module_file, self._workdir) if module_file else None
      self._head = build_head(config, module_file, run_fn, self._local_module, self._workdir, self._keras)
      self._probe = loss_process.ProbeProcess(warmup or loss_protocol.Warmup(), self._head, config.memory_limit_mb,
                                                 self._workdir, self._keras)
    except BaseException:
      self.close()
      raise

  @classmethod
  def start(cls, config: LossConfig, output_dir: str, module_file: Optional[str], run_fn: Optional[str] = None,
            transform_graph_uri: Optional[str] = None) -> LossCheck:
    """Launches the probe before the data is read; TFT is imported early only when a transform graph is given."""
    bare_loss = bool(config.loss_fn) and not config.model_fn  # No FnArgs or DataAccessor then.
    return cls(config, output_dir, module_file, run_fn,
               loss_protocol.Warmup(trainer=not bare_loss, transform=bool(transform_graph_uri)))

  def send(self, inputs: LossInputs) -> LossCheck:
    """Validates the inputs, builds the rest of the request and sends it; the time budget starts now. See
    `check_loss`."""
    inputs.validate()
    head = self._head
    if (inputs.module_file, inputs.run_fn) != (head.module_file, head.run_fn):
      raise ValueError(f'The loss check was started on {head.module_file or head.run_fn} and given the inputs of '
                       f'{inputs.module_name}.')
    self._probe.send(with_data(self._head, inputs, self._workdir), self._config.timeout_seconds)
    return self

  def result(self) -> CheckResult:
    """Waits for the probe and returns the check's result (see `check_loss`)."""
    try:
      run = self._probe.wait()
      replacements = {self._workdir: '<tmp>'}
      if self._local_module:
        replacements[self._local_module] = self._head.module_file
      findings, details = _interpret(run, self._head.module_file or self._head.run_fn or '', self._config,
                                     replacements)
      _keep_log(run.stderr_path, self._output_dir)
      _keep_timing(phase_seconds(self._probe, run), self._output_dir)
    finally:
      self.close()
    return check_result(findings, details, self._config.mode)

  def close(self) -> None:
    if self._probe is not None:
      self._probe.kill()
    shutil.rmtree(self._workdir, ignore_errors=True)
    self._guard.restore()

  def __enter__(self) -> LossCheck:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


def phase_seconds(probe: loss_process.ProbeProcess, run: loss_protocol.ProbeRun) -> Dict[str, float]:
  """Where the probe's wall time went, by phase: `start_python` (process start to the probe's main), its warm-up
  imports and the user's module's (`import`), `wait_for_request` (idle until the parent sent the whole request: time
  the imports had to spare), then every stage of the probe (`run_fn`, `battery`, `fit_batch`...). Plus `total`
  (process start to result) and `after_request` (request to result: what the caller waits beyond its own work, at
  most)."""
  sent = run.result or run.progress
  marks = list(sent.state.timing) if sent is not None else []
  phases: Dict[str, float] = {}
  if marks:
    phases['start_python'] = marks[0][1] - probe.spawned_at
  for (stage, began), (_, ended) in zip(marks, marks[1:]):
    name = 'start_probe' if stage == 'main' else stage
    phases[name] = phases.get(name, 0.0) + (ended - began)
  end = marks[-1][1] if marks else probe.spawned_at + run.elapsed
  phases['total'] = end - probe.spawned_at
  if probe.sent_at is not None:
    phases['after_request'] = end - probe.sent_at
  return {k: round(v, 3) for k, v in phases.items()}


def _keep_timing(phases: Mapping[str, float], output_dir: str) -> None:
  """Phase times beside probe.log (timing.json) and in the log; never in report.json, which must not change between
  runs of the same inputs."""
  logging.info('Preflight loss probe phases (s): %s', ', '.join(f'{k} {v:.2f}' for k, v in phases.items()))
  try:
    file_io.makedirs(output_dir)
    with file_io.open(os.path.join(output_dir, TIMING_JSON), 'w') as f:
      f.write(json.dumps(phases, indent=1))
  except OSError as e:
    logging.warning('Preflight: could not keep the loss probe timing: %s', e)


def skip_reason(config: LossConfig, module_file: Optional[str], run_fn: Optional[str] = None) -> Optional[str]:
  """Why the loss check does not run, or None when it does."""
  if config.mode == 'off':
    return 'loss.mode is off'
  if not module_file and not run_fn:
    return 'no module_file or run_fn given'
  return None


def check_loss(inputs: LossInputs, config: LossConfig, output_dir: str) -> CheckResult:
  """Runs the user's Trainer code in a subprocess as Trainer would, against real batches, and returns the result.

  Args:
    inputs: the module, examples, splits and Trainer's other inputs (LossInputs).
    config: LossConfig (function names, time budget, memory cap, batch size, fit steps).
    output_dir: where probe.log (the child's stderr) and timing.json are kept for debugging.

  Returns:
    A CheckResult: status, findings (code, severity, message, details) and details (LossDetails.to_dict:
    'measurements', 'info', 'module_file', 'outcome', and what model.fit validates on).
  """
  reason = skip_reason(config, inputs.module_file, inputs.run_fn)
  if reason:
    return CheckResult.skipped(reason)
  with LossCheck.start(config, output_dir, inputs.module_file, inputs.run_fn, inputs.transform_graph_uri) as running:
    return running.send(inputs).result()


def _keep_log(stderr_path: str, output_dir: str) -> None:
  """The child's stderr beside the report, for whoever debugs a finding (not part of report.json)."""
  try:
    file_io.makedirs(output_dir)
    with open(stderr_path, 'rb') as src, file_io.open(os.path.join(output_dir, PROBE_LOG), 'wb') as dst:
      shutil.copyfileobj(src, dst)
  except OSError as e:  # A log that cannot be kept must not hide the findings.
    logging.warning('Preflight: could not keep the loss probe log: %s', e)
