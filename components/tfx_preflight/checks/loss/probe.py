"""The loss check's subprocess: loads the user's Trainer code and runs the battery on what Trainer would train.

Runs as `python -m tfx_preflight.checks.loss.probe` (request on stdin, see protocol.py), started by `check.LossCheck`,
never in the pipeline's own process: user code may fail to import, raise, hang, crash or eat memory, and the parent
must survive all of it. The probe sends a progress message before every stage, with the findings so far, so a timeout
or a crash still says where it happened.

With a `run_fn` (what Trainer calls), the probe calls it with FnArgs built as Trainer builds them and stops it at
`model.fit` (trainer.py): the battery (battery.py, real_batch.py) then runs on the compiled model and the very datasets
run_fn passes to fit. Modules without run_fn fall back to conventional names (_build_keras_model, _input_fn).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import shutil
import signal
import sys
import threading
import time
import traceback
import types
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tfx_preflight import process_tree
from tfx_preflight.checks.loss import keras_api as loss_keras
from tfx_preflight.checks.loss import labels as loss_labels
from tfx_preflight.checks.loss import trainer as loss_trainer
from tfx_preflight.checks.loss import transformed as loss_transformed
from tfx_preflight.checks.loss import validation as loss_validation
from tfx_preflight.checks.loss import weights as loss_weights
from tfx_preflight.checks.loss.battery import Space, battery_inputs, run_battery, scalar_loss
from tfx_preflight.checks.loss.compat import (
  autograph_skips_tf_keras,
  fit_batches,
  input_fn_argument,
  split_batches,
  transformed_pattern,
)
from tfx_preflight.checks.loss.model import compiled_loss, loss_name
from tfx_preflight.checks.loss.protocol import ChildWriter, ProbeRequest, Warmup
from tfx_preflight.checks.loss.real_batch import check_compiled_model
from tfx_preflight.checks.loss.recorder import SEVERITY_BLOCK, SEVERITY_WARN, Probe, error_text, probe_deadline

# Names TFX's examples and tutorials use, in the order they are tried.
MODEL_FN_NAMES = ('build_keras_model', '_build_keras_model', '_make_keras_model', 'make_keras_model', '_build_model',
                  'build_model')
INPUT_FN_NAMES = ('input_fn', '_input_fn')
HPARAMS_FN_NAMES = ('_get_hyperparameters', 'get_hyperparameters')

# How many batches of each split to read for the label values.
_LABEL_BATCHES = 8


def _user_frame(error: BaseException, module_path: str) -> str:
  """'file:line in function' of the deepest traceback frame inside the user's module, if any."""
  frames = [f for f in traceback.extract_tb(error.__traceback__) if os.path.abspath(f.filename) == module_path]
  if not frames:
    return ''
  frame = frames[-1]
  return f' (at line {frame.lineno}, in {frame.name})'


# ---------------------------------------------------------------------------------------------------------------------
# Finding the user's code.


def load_module(module_file: str, module_dir_importable: bool = True) -> types.ModuleType:
  """Imports module_file the way TFX's import_utils does: a source file under a fresh name, or a dotted module path.
  Its folder goes on sys.path only when Trainer makes siblings importable (it packages the folder as a wheel unless
  UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES is set, as the Kubeflow runner does)."""
  if module_file.endswith('.py') or os.path.sep in module_file:
    path = os.path.abspath(module_file)
    if module_dir_importable:
      sys.path.insert(0, os.path.dirname(path))
    loader = importlib.machinery.SourceFileLoader('user_module_0', path)
    spec = importlib.util.spec_from_loader(loader.name, loader, origin=path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module
    loader.exec_module(module)
    return module
  return importlib.import_module(module_file)


def _helper_modules(module: types.ModuleType) -> List[types.ModuleType]:
  """Modules the Trainer module imported from its own directory (penguin_utils_keras keeps input_fn in `base`)."""
  home = os.path.dirname(os.path.abspath(getattr(module, '__file__', '') or ''))
  helpers = []
  for name in sorted(vars(module)):
    value = getattr(module, name)
    path = getattr(value, '__file__', None) if isinstance(value, types.ModuleType) else None
    if path and os.path.dirname(os.path.abspath(path)) == home:
      helpers.append(value)
  return helpers


def find_function(module: types.ModuleType, configured: Optional[str], conventions: Sequence[str],
                  search_helpers: bool = False) -> Tuple[Optional[Callable], Optional[str]]:
  """The configured function, else the first conventional name found (in the module, then its helper modules)."""
  if configured:
    fn: Any = module
    for part in configured.split('.'):  # 'base.input_fn': a function of a module the Trainer module imported.
      fn = getattr(fn, part, None)
    return (fn, configured) if callable(fn) else (None, configured)
  for name in conventions:
    fn = getattr(module, name, None)
    if callable(fn):
      return fn, name
  if search_helpers:
    for helper in _helper_modules(module):
      for name in conventions:
        fn = getattr(helper, name, None)
        if callable(fn):
          return fn, f'{helper.__name__.rsplit(".", 1)[-1]}.{name}'
  return None, None


def _required_positional(fn: Callable) -> int:
  try:
    params = inspect.signature(fn).parameters.values()
  except (TypeError, ValueError):
    return 0
  return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)


def hyperparameters_for(module: types.ModuleType, given: Optional[Dict[str, Any]]) -> Any:
  """keras_tuner HyperParameters from the artifact's JSON, else the module's own defaults, else an empty set."""
  import keras_tuner
  if given:
    config = given.get('config', given) if 'values' not in given and 'space' not in given else given
    return keras_tuner.HyperParameters.from_config(config)
  fn, _ = find_function(module, None, HPARAMS_FN_NAMES)
  if fn is not None:
    return fn()
  return keras_tuner.HyperParameters()


def run_model_checks(probe: Probe, module: types.ModuleType, model_fn: Callable, model_fn_name: str,
                     request: ProbeRequest) -> None:
  """Fallback for modules without run_fn: the conventional builder and input function, called as TFX's examples
  call them. Errors here are about the guess, so they do not claim Trainer would fail the same way."""
  import tensorflow as tf
  module_file = request.module_file
  probe.enter('build_model', model_fn_name)
  try:
    if _required_positional(model_fn) >= 1:
      model = model_fn(hyperparameters_for(module, request.hyperparameters))
    else:
      model = model_fn()
  except Exception as e:
    probe.add('model_build_error', SEVERITY_BLOCK,
              f'{model_fn_name}() in {module_file} raised {error_text(e)}{_user_frame(e, probe.info["module_path"])}'
              f' when the loss check called it as TFX examples do ({model_fn_name}(hparams) or {model_fn_name}()). '
              'Add a run_fn (what Trainer calls) to the module, or set loss.model_fn to a builder that takes no '
              'argument or the hyperparameters.', function=model_fn_name)
    return
  if not isinstance(model, tf.keras.Model):
    probe.add('model_build_error', SEVERITY_BLOCK,
              f'{model_fn_name}() in {module_file} returned {type(model).__name__}, not a Keras model. Set '
              'loss.model_fn to the function that builds the compiled Keras model.', function=model_fn_name)
    return
  batches = read_batches(probe, module, request)
  if batches is None:
    return
  check_compiled_model(probe, model, model_fn_name, batches, f'{probe.info["input_fn"]}()', _label_stats(request))


def _label_stats(request: ProbeRequest) -> Dict[str, Dict[str, Any]]:
  """Label ranges from the raw statistics apply only when the labels the model sees are the raw ones."""
  return request.label_stats or {} if not request.transform_graph_uri else {}


def read_batches(probe: Probe, module: types.ModuleType, request: ProbeRequest) -> Optional[Dict[str, list]]:
  """Batches of every split through the module's input_fn; None (with a finding) when that fails."""
  input_fn, name = find_function(module, request.input_fn, INPUT_FN_NAMES, search_helpers=True)
  module_file = request.module_file
  if input_fn is None:
    looked = repr(name) if name else ', '.join(INPUT_FN_NAMES)
    probe.add('input_fn_error', SEVERITY_BLOCK,
              f'No input function {looked} in {module_file}: set loss.input_fn to the function Trainer\'s run_fn uses '
              'with the signature (file_pattern, data_accessor, tf_transform_output_or_schema, batch_size).')
    return None
  probe.info['input_fn'] = name
  probe.enter('input_fn', name)
  try:
    accessor = loss_trainer.make_data_accessor()
    third = input_fn_argument(request.schema_path, request.transform_graph_uri)
  except Exception as e:
    probe.add('input_fn_error', SEVERITY_BLOCK,
              f'Could not prepare the arguments of {name}(): {error_text(e)} (transform graph '
              f'{request.transform_graph_uri}, schema {request.schema_path}).', function=name)
    return None
  batches = {}
  for split in [request.train_split, *request.eval_splits]:
    try:
      pattern = request.examples[split]
      if request.transform_graph_uri:
        probe.enter('transform', name)
        pattern = transformed_pattern(third, pattern, os.path.join(request.workdir, 'transformed', split),
                                      _LABEL_BATCHES * request.batch_size)
        probe.enter('input_fn', name)
      dataset = input_fn([pattern], accessor, third, request.batch_size)
      batches[split] = split_batches(dataset, _LABEL_BATCHES)
    except Exception as e:
      probe.add('input_fn_error', SEVERITY_BLOCK,
                f'{name}() in {module_file} failed on split {split!r}: {error_text(e)}'
                f'{_user_frame(e, probe.info["module_path"])}.',
                function=name, split=split)
      return None
  return batches


def run_bare_loss_checks(probe: Probe, loss_fn: Callable, name: str, request: ProbeRequest) -> None:
  """A loss without a model: labels from the statistics, predictions shaped by the label kind."""
  import numpy as np
  stats = (request.label_stats or {}).get(request.train_split) or {}
  described = f'loss_fn {name}()'
  probe.info['loss'] = name
  rng = np.random.default_rng(request.seed)
  n = request.batch_size
  low, high = stats.get('min'), stats.get('max')
  if low is None or high is None:
    probe.add('input_fn_error', SEVERITY_BLOCK,
              f'Cannot check {described} alone: label_key statistics (min/max) of split {request.train_split!r} '
              'are needed to build labels. Set label_key, or point loss.model_fn at a model builder.')
    return
  candidates = []
  if stats.get('integral') and low >= 0 and high <= 1:
    y = rng.integers(0, 2, size=(n, 1)).astype(np.float32)
    candidates = [('binary', y, [n, 1]), ('sparse', y.astype(np.int64), [n, 2])]
  elif stats.get('integral') and low >= 0:
    units = int(high) + 1
    y = rng.integers(0, units, size=(n, 1)).astype(np.int64)
    candidates = [('sparse', y, [n, units]), ('onehot', np.eye(units, dtype=np.float32)[y[:, 0]], [n, units])]
  else:
    y = rng.uniform(low, high, size=(n, 1)).astype(np.float32)
    candidates = [('regression', y, [n, 1])]
  probe.enter('battery', name)
  errors = []
  trials = []
  for layout, labels, shape in candidates:
    for logits in (False, True):  # A bare loss does not say whether it wants probabilities or logits: try both.
      inputs = battery_inputs(labels, layout, shape, Space(logits), request.seed)
      try:
        scalar_loss(loss_fn, inputs['y'], inputs['random'])
      except Exception as e:
        errors.append(f'{layout}: {error_text(e)}')
        continue
      trial = Probe(request)
      run_battery(trial, loss_fn, described, inputs, 'labels drawn from the statistics')
      trial.info.update({'layout': layout, 'loss_from_logits': logits})
      trials.append(trial)
  if not trials:
    probe.add('loss_error', SEVERITY_BLOCK,
              f'{described} raised for every label layout tried: {"; ".join(errors[:3])}.', function=name)
    return
  # The first layout and space the loss works with; if none, what it does with probabilities of the first layout.
  chosen = next((t for t in trials if not t.findings), trials[0])
  probe.findings.extend(chosen.findings)
  probe.measurements.update(chosen.measurements)
  probe.info.update(chosen.info)


_STAGE_CODES = {'build_model': 'model_build_error', 'input_fn': 'input_fn_error', 'forward': 'input_fn_error',
                'run_fn': 'run_fn_error', 'fit_data': 'input_fn_error', 'validation': 'input_fn_error'}


def _guarded(probe: Probe, checks: Callable, *args: Any) -> None:
  """Runs `checks`; an exception from user code ends them with a blocking finding naming the stage and function."""
  try:
    checks(*args)
  except Exception as e:
    function = probe.function or 'the module'
    probe.add(_STAGE_CODES.get(probe.stage, 'crashed'), SEVERITY_BLOCK,
              f'{function}() in {probe.request.module_file} raised {error_text(e)}'
              f'{_user_frame(e, probe.info["module_path"])} during the {probe.stage.replace("_", " ")} step of the '
              'loss check.', function=function, stage=probe.stage)


# ---------------------------------------------------------------------------------------------------------------------
# run_fn, as Trainer calls it.


def _trainer_files(probe: Probe, request: ProbeRequest, name: str) -> Tuple[List[str], List[str]]:
  """train_files / eval_files as Trainer gets them: the transformed examples when given (the parent passes those as
  `examples`); with a transform graph and raw examples only, a sample of raw records through the graph."""
  patterns = {split: request.examples[split] for split in (request.train_split, *request.eval_splits)}
  if request.transform_graph_uri:
    probe.enter('transform', name)
    tft_output = input_fn_argument(None, request.transform_graph_uri)
    limit = _LABEL_BATCHES * max(request.batch_size, 32)
    patterns = {split: transformed_pattern(tft_output, pattern, os.path.join(request.workdir, 'transformed', split),
                                           limit) for split, pattern in patterns.items()}
  return [patterns[request.train_split]], [patterns[s] for s in request.eval_splits]


def _unless_trainer_gets_a_transform_graph(request: ProbeRequest) -> str:
  """The usual wiring slip: Trainer is given Transform's graph and the gate is not, so run_fn saw
  FnArgs.transform_output None here and fails where Trainer would not."""
  if request.transform_graph_uri:
    return ''
  return (' unless it is given a transform_graph: this run_fn got none (FnArgs.transform_output was None); give '
          'Preflight the transform_graph Trainer gets')


def run_fn_checks(probe: Probe, run_fn: Callable, name: str, request: ProbeRequest) -> None:
  """Calls run_fn with Trainer's FnArgs and follows it through every model.fit (each judged by the battery on what
  that fit was given, then cut short: fit returns after the battery's steps) until run_fn saves the model."""
  module_file = request.module_file or request.run_fn
  try:
    train_files, eval_files = _trainer_files(probe, request, name)
  except Exception as e:
    probe.add('input_fn_error', SEVERITY_BLOCK,
              f'Could not apply the transform graph {request.transform_graph_uri} to the raw examples: '
              f'{error_text(e)}. Pass the transformed examples Trainer reads (transformed_examples).')
    return
  if request.raw_examples and request.transform_graph_uri:
    probe.enter('transformed_examples', name)
    loss_transformed.check_transformed_examples(probe, input_fn_argument(None, request.transform_graph_uri),
                                                request.raw_examples, request.examples)
  fn_args = loss_trainer.build_fn_args(request, train_files, eval_files, _LABEL_BATCHES)
  probe.enter('run_fn', name)
  judged: List[Probe] = []
  try:
    run = loss_trainer.run_through_fits(run_fn, fn_args, lambda call: _judge_fit(probe, call, name, judged, fn_args))
  except Exception as e:
    probe.add('run_fn_error', SEVERITY_BLOCK,
              f'{name}() in {module_file} raised {error_text(e)}{_user_frame(e, probe.info["module_path"])} before '
              f'it reached model.fit, under {probe.info.get("keras")} as Trainer runs it. Trainer calls the same '
              'run_fn with the same kind of FnArgs: Trainer would fail the same way'
              f'{_unless_trainer_gets_a_transform_graph(request)}.', function=name)
    return
  if not run.calls:
    probe.skipped_reason = (f'{name}() in {module_file} returned without a training call the loss check intercepts '
                            '(Keras Model.fit or train_on_batch): a custom training loop, an Estimator, another '
                            'framework, or a reference to fit taken before the check could intercept it. The loss '
                            'check observed no training and covers models trained with Keras fit only.')
    return
  _merge_fits(probe, judged, run, name)


def _judge_fit(probe: Probe, call: loss_trainer.FitCall, name: str, judged: List[Probe], fn_args: Any) -> Any:
  """The battery on one fit call, in a Probe of its own; what fit returns to run_fn: a History of the battery's short
  fit. A train_on_batch loop is judged on its first batch and stopped there (FitReached)."""
  fit = Probe(probe.request, probe.writer)
  fit.info.update({k: probe.info[k] for k in ('keras', 'keras_source', 'module_path') if k in probe.info})
  fit.timing = probe.timing
  fit.deadline = probe.deadline
  _guarded(fit, _check_fit_call, fit, call, name, fn_args)
  judged.append(fit)
  probe.enter('run_fn', name)
  if call.method == 'train_on_batch':
    raise loss_trainer.FitReached()
  return _history(call, fit)


def _check_fit_call(probe: Probe, call: loss_trainer.FitCall, name: str, fn_args: Any) -> None:
  """What one fit call gets (model, loss, weights, train and validation batches), judged by the battery."""
  request = probe.request
  if call.keras != probe.info.get('keras'):
    probe.info['model_keras'] = call.keras  # The module trains a model of another Keras than tf.keras's.
  probe.info['fit_method'] = call.method
  probe.enter('fit_data', name)
  data_source = f'the data {name}() passes to model.{call.method}'
  weights_read: List[Any] = []
  try:
    batches = {request.train_split: fit_batches(call.x, call.y, call.batch_size, _LABEL_BATCHES, weights_read)}
    probe.enter('validation', name)
    if loss_validation.check_validation(probe, call, fn_args, name):
      eval_name = request.eval_splits[0] if len(request.eval_splits) == 1 else '+'.join(request.eval_splits)
      batches[eval_name] = fit_batches(call.validation_data, None, call.batch_size, _LABEL_BATCHES)
  except Exception as e:
    same = ('Iterating that dataset is what Trainer\'s fit does first: it would fail the same way.'
            if _is_dataset(call.x) else 'The loss check batches arrays itself, so Trainer\'s fit may read them '
            'differently; the check could not judge this fit.')
    probe.add('input_fn_error', SEVERITY_BLOCK,
              f'Reading {data_source} failed: {error_text(e)}{_user_frame(e, probe.info["module_path"])}. {same}',
              function=name)
    return
  loss = compiled_loss(call.model)
  described = f'the loss {loss_name(loss)!r} of the model {name}() passes to model.{call.method}'
  weights, zeroed = loss_weights.fit_weights(probe, call, [y for _, y in batches[request.train_split]], weights_read,
                                             described) if loss is not None else (None, False)
  if zeroed:
    probe.info['loss'] = loss_name(loss)
    return  # Every number of the battery would be the same 0.
  loss_labels.check_fit_labels(probe, batches, _stats_by_fit_split(request, batches), request.label_key,
                               f'{name}() passes to model.{call.method}')
  # No label ranges from the raw statistics for the battery: run_fn's datasets may map the labels legitimately.
  check_compiled_model(probe, call.model, name, batches, data_source, {}, trains=True, weights=weights)


def _stats_by_fit_split(request: ProbeRequest, batches: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
  """The raw label statistics of the split each of fit's datasets reads (train_files, or validation from the one
  eval split); none when Transform makes the labels fit sees something else than the raw column."""
  stats = _label_stats(request)
  return {split: stats[split] for split in batches if split in stats}


def _is_dataset(value: Any) -> bool:
  import tensorflow as tf
  return isinstance(value, tf.data.Dataset)


def _history(call: loss_trainer.FitCall, fit: Probe) -> Any:
  """A History of the Keras whose fit was called, holding the loss after the battery's steps, for run_fn to read."""
  keras = importlib.import_module('tf_keras' if call.keras == loss_keras.TF_KERAS else 'keras')
  history = keras.callbacks.History()
  fit_batch = fit.measurements.get('fit_batch') or {}
  after = fit_batch.get('after')
  history.history = {'loss': [after]} if after is not None else {}
  history.epoch = [0]
  history.params = {'epochs': 1, 'steps': fit_batch.get('steps', fit.request.fit_steps), 'verbose': 0}
  try:
    history.set_model(call.model)
    call.model.history = history
  except Exception:  # Some models refuse new attributes; run_fn rarely reads them.
    pass
  return history


def _merge_fits(probe: Probe, judged: List[Probe], run: loss_trainer.RunThrough, name: str) -> None:
  """The last fit is what the saved model is trained with: its findings as they are; an earlier fit's blocking
  findings warn, naming the call (the next fit starts from what it left)."""
  total = len(judged)
  last = judged[-1]
  for index, fit in enumerate(judged, start=1):
    for finding in fit.findings:
      finding = dict(finding)
      if total > 1:
        finding['fit_call'] = index
        if index < total and finding['severity'] == SEVERITY_BLOCK:
          finding['severity'] = SEVERITY_WARN
          finding['message'] = (f'In model.fit call {index} of {total} (run_fn fits again afterwards; the saved model '
                                f'is trained by call {total}): {finding["message"]}')
      probe.findings.append(finding)
  probe.measurements.update(last.measurements)
  probe.info.update({k: v for k, v in last.info.items() if k not in probe.info})
  if total > 1:
    probe.info['fit_calls'] = total
    probe.measurements['fit_calls'] = [
        {'call': i, 'loss': f.info.get('loss'), 'findings': sorted({x['code'] for x in f.findings}),
         'fit_batch': f.measurements.get('fit_batch')} for i, f in enumerate(judged, start=1)]
  if last.info.get('fit_method') == 'train_on_batch':
    probe.info['training'] = (f'{name}() trains with train_on_batch in a loop of its own: the loss check judged the '
                              'first call on its batch and stopped run_fn there.')
  if run.ended == 'error':
    error = run.error_after_fit
    probe.add('run_fn_error', SEVERITY_WARN,
              f'{name}() raised {error_text(error)}{_user_frame(error, probe.info["module_path"])} after model.fit '
              f'call {total} returned; the loss check could not follow it further. Its fit trains a few steps on '
              'one batch and returns a History with the loss only, so Trainer, whose fit trains fully, may or may '
              'not fail there.', function=name)


def _import_dotted(path: str) -> Tuple[types.ModuleType, str]:
  """'pkg.module.run_fn' -> (pkg.module, 'run_fn'), imported as Trainer's import_func_from_module does."""
  module_name, _, fn_name = path.rpartition('.')
  if not module_name:
    raise ImportError(f'run_fn {path!r} is not a dotted path (package.module.function).')
  return importlib.import_module(module_name), fn_name


def _load_user_code(probe: Probe, request: ProbeRequest) -> Tuple[Optional[types.ModuleType], Optional[Callable],
                                                                  Optional[str]]:
  """(module, run_fn or None, run_fn name) as Trainer resolves them (udf_utils.get_fn); raises on import errors."""
  for path in request.sys_path:  # The pipeline process's import path: a dotted run_fn resolves against it.
    if path and path not in sys.path:
      sys.path.append(path)
  if request.module_path:
    module = load_module(request.module_path, request.module_dir_importable)
    name = request.run_fn or 'run_fn'
    fn = getattr(module, name, None)
    return module, (fn if callable(fn) else None), name
  module, name = _import_dotted(request.run_fn)
  probe.info['module_path'] = os.path.abspath(getattr(module, '__file__', '') or '')
  fn = getattr(module, name, None)
  if not callable(fn):
    raise AttributeError(f'{module.__name__} has no function {name!r}')
  return module, fn, name


def _fallback_checks(probe: Probe, module: types.ModuleType, request: ProbeRequest) -> None:
  """Modules without run_fn: conventional names, or the ones set in LossConfig."""
  module_file = request.module_file
  model_fn, model_fn_name = find_function(module, request.model_fn, MODEL_FN_NAMES)
  loss_fn, loss_fn_name = find_function(module, request.loss_fn, ()) if request.loss_fn else (None, None)
  if request.loss_fn and loss_fn is None:
    probe.add('model_build_error', SEVERITY_BLOCK,
              f'loss.loss_fn {request.loss_fn!r} is not a function of {module_file}.', function=request.loss_fn)
  if request.model_fn and model_fn is None:
    probe.add('model_build_error', SEVERITY_BLOCK,
              f'loss.model_fn {request.model_fn!r} is not a function of {module_file}.', function=request.model_fn)
  elif model_fn is None and not request.loss_fn:
    probe.add('model_build_error', SEVERITY_BLOCK,
              f'No run_fn and no model builder in {module_file}: looked for run_fn, {", ".join(MODEL_FN_NAMES)}. '
              'Trainer calls run_fn(fn_args); add it, or set loss.model_fn to the function that returns the compiled '
              'Keras model (or loss.loss_fn to a (y_true, y_pred) loss).')
  probe.info['model_fn'] = model_fn_name
  if model_fn is not None:
    _guarded(probe, run_model_checks, probe, module, model_fn, model_fn_name, request)
  if loss_fn is not None:
    _guarded(probe, run_bare_loss_checks, probe, loss_fn, loss_fn_name, request)


def _own_code() -> Dict[str, Any]:
  """Every function and method of the probe's own modules, by name: taken before the module is imported and compared
  after, so a module that patches the probe (say `Probe.add`) gets a blocking finding instead of a pass."""
  from tfx_preflight.checks.loss import battery as loss_battery
  from tfx_preflight.checks.loss import compat as loss_compat
  from tfx_preflight.checks.loss import model as loss_model
  from tfx_preflight.checks.loss import protocol as loss_protocol
  from tfx_preflight.checks.loss import real_batch as loss_real_batch
  from tfx_preflight.checks.loss import recorder as loss_recorder
  code = {}
  for module in (loss_battery, loss_compat, loss_keras, loss_labels, loss_model, loss_protocol, loss_real_batch,
                 loss_recorder, loss_trainer, loss_transformed, loss_validation, loss_weights,
                 sys.modules[__name__]):
    for name, value in vars(module).items():
      if inspect.isfunction(value):
        code[f'{module.__name__}.{name}'] = value
      elif inspect.isclass(value) and value.__module__ == module.__name__:
        for attribute, member in vars(value).items():
          code[f'{module.__name__}.{name}.{attribute}'] = member
  return code


def _tampered(before: Dict[str, Any]) -> List[str]:
  after = _own_code()
  return sorted(name for name, value in before.items() if after.get(name) is not value)


@dataclasses.dataclass
class ImportedCode:
  """The user's code as `import_user_code` left it: `ready` unless a blocking finding (another Keras bound, an import
  error) already ends the probe. `own_code` and `add` were taken before the import, to catch a module that patches
  the probe."""
  probe: Probe
  own_code: Dict[str, Any]
  add: Callable
  module: Optional[types.ModuleType] = None
  run_fn: Optional[Callable] = None
  run_fn_name: Optional[str] = None
  ready: bool = False


def import_user_code(request: ProbeRequest, writer: Any = None) -> ImportedCode:
  """The stages that need only which code to run (the request's head, sent when the probe is launched): TensorFlow
  under the Keras Trainer gets, the seeds, the module's import. In the gate they overlap the parent's read of the
  data, which the rest of the request waits for."""
  imported = ImportedCode(Probe(request, writer), _own_code(), Probe.add)
  probe = imported.probe
  probe.timing.extend(_MARKS)
  module_file = request.module_file or request.run_fn
  probe.info['module_path'] = os.path.abspath(request.module_path) if request.module_path else ''
  probe.enter('import_tensorflow')
  import numpy as np
  import tensorflow as tf
  autograph_skips_tf_keras()
  if not same_keras_as_trainer(probe, tf, request):
    return imported
  tf.keras.utils.set_random_seed(request.seed)
  np.random.seed(request.seed)

  probe.enter('import', module_file)
  try:
    imported.module, imported.run_fn, imported.run_fn_name = _load_user_code(probe, request)
  except BaseException as e:  # SystemExit from a module-level sys.exit() too.
    probe.add('import_error', SEVERITY_BLOCK,
              f'Importing {module_file} raised {error_text(e)}{_user_frame(e, probe.info["module_path"])}: '
              'Trainer would fail the same way. Fix the import or install the missing package.')
    return imported
  imported.ready = True
  return imported


def run_imported(imported: ImportedCode, request: ProbeRequest) -> Probe:
  """The rest of the probe on the whole request (the head's code, the data, the schema, the statistics); then the
  check that the module left the probe's own code alone."""
  probe = imported.probe
  probe.request, probe.deadline = request, probe_deadline(request)
  if imported.ready:
    run_stages(probe, imported, request)
  changed = _tampered(imported.own_code)
  if changed:
    imported.add(probe, 'probe_tampered', SEVERITY_BLOCK,
                 f'{request.module_file or request.run_fn} replaced code of the loss check itself '
                 f'({", ".join(changed[:5])}): its result cannot be trusted. A Trainer module must not patch '
                 'tfx_preflight.', replaced=changed[:20])
  return probe


def run(request: ProbeRequest, writer: Any = None) -> Probe:
  """The whole probe on one request, in this process; the findings, measurements and info are on the returned
  Probe."""
  return run_imported(import_user_code(request, writer), request)


def same_keras_as_trainer(probe: Probe, tf: types.ModuleType, request: ProbeRequest) -> bool:
  """Whether this process bound tf.keras to the flavour the parent decided Trainer gets (loss_keras); records both.
  Under another Keras, nothing the probe observes says what Trainer will do: a blocking finding, and no more."""
  bound = loss_keras.flavour_of(tf.keras)
  probe.info.update({'keras': bound, 'keras_source': request.keras_source})
  if not request.keras or bound == request.keras:
    return True
  probe.add('keras_mismatch', SEVERITY_BLOCK,
            f'The loss check had to run {request.module_file or request.run_fn} under {request.keras}, the Keras '
            f'Trainer gets ({request.keras_source}), but its process bound tf.keras to {bound}: what it would observe '
            f'says nothing about Trainer. Set {loss_keras.LEGACY_ENV} consistently where the pipeline and the gate '
            'are launched.', expected=request.keras, bound=bound or 'unknown')
  return False


def run_stages(probe: Probe, imported: ImportedCode, request: ProbeRequest) -> None:
  """After the import: run_fn as Trainer calls it, or the fallback stages."""
  import tensorflow as tf
  tf.keras.utils.set_random_seed(request.seed)
  explicit_names = request.model_fn or request.loss_fn or request.input_fn
  run_fn, run_fn_name = imported.run_fn, imported.run_fn_name
  if run_fn is not None and not explicit_names:
    probe.info['run_fn'] = run_fn_name
    _guarded(probe, run_fn_checks, probe, run_fn, run_fn_name, request)
  elif request.run_fn and request.module_path and not explicit_names:
    probe.add('run_fn_error', SEVERITY_BLOCK,
              f'{request.module_file or request.run_fn} has no function {request.run_fn!r} (the run_fn given): '
              'Trainer would fail the same way.', function=request.run_fn)
  else:
    _fallback_checks(probe, imported.module, request)
  probe.enter('done')


# ---------------------------------------------------------------------------------------------------------------------
# Process entry point.


def _watch_parent(workdir: str) -> None:
  """If the parent dies (even by SIGKILL) or sends SIGTERM, remove the working directory and kill this process group
  (the probe and whatever the module started). A thread polls the parent pid: it runs even while the module hangs."""
  parent = os.getppid()

  def end_everything(*_: Any) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    process_tree.kill_descendants(os.getpid())  # Those in other sessions too (this process is their subreaper).
    os.killpg(0, signal.SIGKILL)

  def watch() -> None:
    while os.getppid() == parent:
      time.sleep(0.2)
    end_everything()

  signal.signal(signal.SIGTERM, end_everything)
  threading.Thread(target=watch, name='preflight-parent-watch', daemon=True).start()


# (phase, wall-clock time it began) before the Probe exists: sent with its timing (loss.timing.json).
_MARKS: List[Tuple[str, float]] = []


def warm_up(warmup: Warmup) -> None:
  """Imports what Trainer's process has imported before it calls run_fn, while the parent is still busy: TensorFlow
  (with the probe's thread caps, which must precede any TF work), FnArgs' module, and TFT for a transform graph."""
  _MARKS.append(('import_tensorflow', time.time()))
  import numpy  # noqa: F401
  import tensorflow as tf
  # Two threads at most: the probe shares the machine with the pipeline, and fewer threads mean steadier numbers.
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  if warmup.trainer:
    _MARKS.append(('import_tfx_trainer', time.time()))
    from tfx.components.trainer import fn_args_utils  # noqa: F401
    from tfx.components.util import tfxio_utils  # noqa: F401
  if warmup.transform:
    _MARKS.append(('import_tensorflow_transform', time.time()))
    import tensorflow_transform  # noqa: F401


def main() -> int:
  try:
    return _main()
  finally:  # Nothing the module started outlives the probe, however it ends (loss_process: a subreaper).
    process_tree.kill_descendants(os.getpid())


def _main() -> int:
  _MARKS.append(('main', time.time()))
  # The working directory is the parent's temporary directory for this run (removed with the group if it dies).
  _watch_parent(os.getcwd())
  warm_up(Warmup.from_json(sys.stdin.readline()))
  head = ProbeRequest.from_json(sys.stdin.readline())
  # Nothing the module can read says where results go: the result pipe moves to a new descriptor, the nonce into the
  # writer, before the module is imported.
  writer = ChildWriter.take(head)
  imported = import_user_code(head, writer)
  imported.probe.enter('wait_for_request')
  request = _read_request(imported.probe, head)
  if request is not None:
    run_imported(imported, request)
  imported.probe.finish()
  # The result is sent; TensorFlow's interpreter teardown (thread pools, atexit hooks) would add ~5 s for nothing.
  sys.stdout.flush()
  sys.stderr.flush()
  process_tree.kill_descendants(os.getpid())
  os._exit(0)


def _read_request(probe: Probe, head: ProbeRequest) -> Optional[ProbeRequest]:
  """The whole request, which the parent sends once it has read the data, then closes stdin; None, with a blocking
  finding, when it never came whole: the module read the probe's stdin while it was imported."""
  text = sys.stdin.read()
  devnull = os.open(os.devnull, os.O_RDONLY)
  os.dup2(devnull, 0)
  os.close(devnull)
  try:
    request = ProbeRequest.from_json(text)
  except (ValueError, TypeError, AttributeError) as e:
    probe.add('request_lost', SEVERITY_BLOCK,
              f'The loss check never received its request: {head.module_file or head.run_fn} read the standard '
              f'input of the process that imported it ({error_text(e)}). Trainer gives a module no input to read; '
              'do not read stdin at import.')
    return None
  return request


if __name__ == '__main__':
  sys.exit(main())
