"""Trainer emulation for the loss probe: FnArgs as TFX's Trainer builds them, and `run_fn` stopped at `model.fit`.

Trainer calls only `run_fn(fn_args)` (tfx/components/trainer/executor.py). The probe does the same, with FnArgs built
as `fn_args_utils.get_common_fn_args` and `Executor._GetFnArgs` build them, and with Keras' `Model.fit` replaced (for
Keras 3 and tf_keras, whichever the module uses) by a function that records the compiled model and the data it was
given and then raises a private BaseException, so nothing trains and nothing is saved. The battery then runs on exactly
the model, loss and datasets Trainer would train with.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
from typing import Any, Callable, Dict, Iterator, List, Optional

from tfx_preflight.checks.loss import keras_api as loss_keras
from tfx_preflight.checks.loss.protocol import ProbeRequest


class FitReached(BaseException):
  """Raised from the intercepted fit. A BaseException, so a module's `except Exception` does not swallow it."""


class SaveReached(BaseException):
  """Raised when run_fn starts saving the model, after its fit calls: what it saves is what the last fit trained."""


@dataclasses.dataclass
class FitCall:
  """What run_fn passed to model.fit (or train_on_batch)."""
  model: Any
  x: Any = None
  y: Any = None
  validation_data: Any = None
  batch_size: Optional[int] = None
  keras: str = ''  # Whose Model.fit it was: loss_keras.KERAS_3, TF_KERAS or KERAS_2.
  method: str = 'fit'  # 'fit' or 'train_on_batch'.
  sample_weight: Any = None
  class_weight: Any = None
  arguments: Dict[str, Any] = dataclasses.field(default_factory=dict)  # Every argument fit got, by name.


def make_data_accessor() -> Any:
  """DataAccessor over tf.Example TFRecords (gzip detected from the .gz suffix), as fn_args_utils builds it."""
  from tfx.components.trainer import fn_args_utils
  from tfx.components.util import tfxio_utils
  from tfx.types import standard_artifacts
  examples = standard_artifacts.Examples()
  examples.uri = ''
  descriptors = ['Preflight']
  return fn_args_utils.DataAccessor(
      tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], descriptors),
      record_batch_factory=tfxio_utils.get_record_batch_factory_from_artifact([examples], descriptors),
      data_view_decode_fn=tfxio_utils.get_data_view_decode_fn_from_artifact([examples], descriptors))


def build_fn_args(request: ProbeRequest, train_files: List[str], eval_files: List[str], eval_steps: int) -> Any:
  """FnArgs with every field Trainer sets; outputs go to the probe's temporary directory (removed afterwards)."""
  from tfx.components.trainer import fn_args_utils
  model_dir = os.path.join(request.workdir, 'model')
  return fn_args_utils.FnArgs(
      working_dir=None,  # Trainer passes none (only Tuner does).
      train_files=train_files,
      eval_files=eval_files,
      train_steps=request.fit_steps,
      eval_steps=eval_steps,
      schema_path=request.schema_path,
      schema_file=request.schema_path,
      transform_graph_path=request.transform_graph_uri,
      transform_output=request.transform_graph_uri,
      data_accessor=make_data_accessor(),
      serving_model_dir=os.path.join(model_dir, 'Format-Serving'),
      eval_model_dir=os.path.join(model_dir, 'Format-TFMA'),
      model_run_dir=os.path.join(request.workdir, 'model_run'),
      base_model=None,
      hyperparameters=request.hyperparameters,
      custom_config=request.custom_config)


def _model_classes() -> Dict[str, type]:
  """The Keras Model classes a module may train with: Keras 3 and tf_keras, whichever are installed."""
  classes = {}
  try:
    import keras
    classes[loss_keras.KERAS_3 if keras.__version__.startswith('3.') else loss_keras.KERAS_2] = keras.Model
  except ImportError:
    pass
  try:
    import tf_keras
    classes[loss_keras.TF_KERAS] = tf_keras.Model
  except ImportError:
    pass
  return classes


class _Session:
  """The fit calls of one run_fn, and what to do with each: `judge(call)` returns what fit returns (run_fn goes on),
  or None to stop run_fn at the first fit. While a call is judged, Keras runs unintercepted (the battery fits too)."""

  def __init__(self, judge: Optional[Callable[[FitCall], Any]]):
    self.calls: List[FitCall] = []
    self.judge = judge
    self.judging = False

  def record(self, call: FitCall) -> Any:
    self.calls.append(call)
    if self.judge is None:
      raise FitReached()
    self.judging = True
    try:
      return self.judge(call)
    finally:
      self.judging = False


def _recording(original: Callable, method: str, keras: str, session: _Session) -> Callable:
  signature = inspect.signature(original)

  def fit(self, *args, **kwargs):
    if session.judging:
      return original(self, *args, **kwargs)
    try:
      values = signature.bind(self, *args, **kwargs).arguments
    except TypeError:  # The real fit would raise the same: let it.
      return original(self, *args, **kwargs)
    return session.record(FitCall(
        model=self, x=values.get('x'), y=values.get('y'), validation_data=values.get('validation_data'),
        batch_size=values.get('batch_size'), keras=keras, method=method, sample_weight=values.get('sample_weight'),
        class_weight=values.get('class_weight'), arguments={k: v for k, v in values.items() if k != 'self'}))

  fit.__wrapped__ = original
  return fit


def _stop_at_save(original: Callable, session: _Session) -> Callable:
  def save(*args, **kwargs):
    if session.judging or session.judge is None or not session.calls:
      return original(*args, **kwargs)
    raise SaveReached()

  save.__wrapped__ = original
  return save


@contextlib.contextmanager
def _patched(owner: Any, name: str, replacement: Callable) -> Iterator[None]:
  own = owner.__dict__.get(name)  # Keras 3 defines fit on a base class (the backend's trainer).
  setattr(owner, name, replacement)
  try:
    yield
  finally:
    if own is None:
      delattr(owner, name)
    else:
      setattr(owner, name, own)


@contextlib.contextmanager
def intercepted_fit(judge: Optional[Callable[[FitCall], Any]] = None) -> Iterator[List[FitCall]]:
  """Within the block, `Model.fit` and `train_on_batch` of Keras 3 and tf_keras record their call and hand it to
  `judge` (its return value is what fit returns, so run_fn goes on; saving the model after a fit then stops run_fn);
  without `judge`, the first call raises FitReached."""
  import tensorflow as tf
  session = _Session(judge)
  with contextlib.ExitStack() as stack:
    for keras, cls in _model_classes().items():
      for method in ('fit', 'train_on_batch'):
        stack.enter_context(_patched(cls, method, _recording(getattr(cls, method), method, keras, session)))
      for method in ('save', 'export'):
        if hasattr(cls, method):
          stack.enter_context(_patched(cls, method, _stop_at_save(getattr(cls, method), session)))
    stack.enter_context(_patched(tf.saved_model, 'save', _stop_at_save(tf.saved_model.save, session)))
    yield session.calls


def call_run_fn(run_fn: Callable, fn_args: Any) -> Optional[FitCall]:
  """Runs run_fn until it calls model.fit; the first fit call, or None when run_fn returned without one. Exceptions
  raised by run_fn before fit propagate (Trainer would fail with them)."""
  with intercepted_fit() as calls:
    try:
      run_fn(fn_args)
    except FitReached:
      pass
    except Exception:
      if not calls:
        raise
      # run_fn caught FitReached itself and then failed on the untrained model: what fit got is still the answer.
  return calls[0] if calls else None


@dataclasses.dataclass
class RunThrough:
  """How run_fn went when followed through every fit: the calls, and where it ended."""
  calls: List[FitCall]
  ended: str  # 'returned', 'save' (stopped when it began saving the model), 'stopped' (the judge stopped it).
  error_after_fit: Optional[BaseException] = None  # Raised after a fit returned (or caught FitReached and failed).


def run_through_fits(run_fn: Callable, fn_args: Any, judge: Callable[[FitCall], Any]) -> RunThrough:
  """Runs run_fn through every fit call (each judged by `judge`, whose return value fit returns) until it returns or
  begins saving the model. Exceptions raised before the first fit propagate (Trainer would fail with them)."""
  with intercepted_fit(judge) as calls:
    try:
      run_fn(fn_args)
    except SaveReached:
      return RunThrough(calls, 'save')
    except FitReached:
      return RunThrough(calls, 'stopped')
    except Exception as e:
      if not calls:
        raise
      return RunThrough(calls, 'error', e)
  return RunThrough(calls, 'returned')
