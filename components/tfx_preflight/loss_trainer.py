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

from tfx_preflight.loss_protocol import ProbeRequest


class FitReached(BaseException):
  """Raised from the intercepted fit. A BaseException, so a module's `except Exception` does not swallow it."""


@dataclasses.dataclass
class FitCall:
  """What run_fn passed to model.fit."""
  model: Any
  x: Any = None
  y: Any = None
  validation_data: Any = None
  batch_size: Optional[int] = None
  keras: str = ''  # 'keras' (Keras 3) or 'tf_keras'.
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
    classes['keras'] = keras.Model
  except ImportError:
    pass
  try:
    import tf_keras
    classes['tf_keras'] = tf_keras.Model
  except ImportError:
    pass
  return classes


def _recording_fit(original: Callable, keras: str, calls: List[FitCall]) -> Callable:
  signature = inspect.signature(original)

  def fit(self, *args, **kwargs):
    try:
      bound = signature.bind(self, *args, **kwargs)
      values = bound.arguments
    except TypeError:  # The real fit would raise the same: let it.
      return original(self, *args, **kwargs)
    calls.append(FitCall(model=self, x=values.get('x'), y=values.get('y'),
                         validation_data=values.get('validation_data'), batch_size=values.get('batch_size'),
                         keras=keras, arguments={k: v for k, v in values.items() if k != 'self'}))
    raise FitReached()

  fit.__wrapped__ = original
  return fit


@contextlib.contextmanager
def intercepted_fit() -> Iterator[List[FitCall]]:
  """Within the block, `Model.fit` of Keras 3 and tf_keras records its call and raises FitReached."""
  calls: List[FitCall] = []
  patched = []
  for keras, cls in _model_classes().items():
    own = cls.__dict__.get('fit')  # Keras 3 defines fit on a base class (the backend's trainer).
    cls.fit = _recording_fit(cls.fit, keras, calls)
    patched.append((cls, own))
  try:
    yield calls
  finally:
    for cls, own in patched:
      if own is None:
        del cls.fit
      else:
        cls.fit = own


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
