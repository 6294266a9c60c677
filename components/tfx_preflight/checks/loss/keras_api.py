"""Which Keras Trainer runs the module with, observed in the gate's own process, and passed to the probe explicitly.

TensorFlow binds `tf.keras` once per process: to Keras 3 (`keras._tf_keras.keras`), to tf_keras
(`tf_keras.api._v2.keras`, when TF_USE_LEGACY_KERAS was true at the binding and tf_keras is installed) or, on TF 2.15
and older, to Keras 2 (`keras.api._v2.keras`). TFX binds it when it imports TensorFlow (`from tfx import v1`), before
tensorflow_transform sets TF_USE_LEGACY_KERAS=1, so the variable a process reads later says nothing. What counts is the
binding: LocalDagRunner runs Trainer in the pipeline's process (the gate's executor sees that binding), a container
runner starts Trainer the way it started the gate (same image and environment), and the CLI is a process launched with
the user's environment, as their pipeline would be. The probe is started with the variable that gives it the same
binding (unset where tf_keras does not exist: forcing it there breaks TF's import) and checks what it got.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from typing import Any, Dict, Optional

LEGACY_ENV = 'TF_USE_LEGACY_KERAS'
_TRUE = ('true', 'True', '1')

KERAS_3 = 'keras3'
TF_KERAS = 'tf_keras'
KERAS_2 = 'keras2'

# The module tf.keras is bound to, by flavour (TF 2.16's lazy loader); tf.keras on TF 2.15 is the keras package.
_MODULE_PREFIX = {'keras._tf_keras': KERAS_3, 'tf_keras': TF_KERAS, 'keras.api': KERAS_2, 'keras': KERAS_2}


@dataclasses.dataclass(frozen=True)
class TrainerKeras:
  """The Keras flavour Trainer gets, why we think so, and the variable that gives the probe the same one."""
  flavour: str
  source: str
  legacy_env: Optional[str]  # TF_USE_LEGACY_KERAS for the probe; None: unset.


def flavour_of(keras_module: Any) -> Optional[str]:
  """keras3 / tf_keras / keras2 from the module tf.keras is bound to, None when it cannot be told."""
  name = getattr(keras_module, '__name__', '') or ''
  if name == 'tensorflow.keras':  # TF 2.15 once `import tensorflow.keras` ran (TFX does): named by TF, not by Keras.
    name = _package_of_file(getattr(keras_module, '__file__', '') or '')
  for prefix, flavour in _MODULE_PREFIX.items():
    if name == prefix or name.startswith(prefix + '.'):
      if flavour == KERAS_2 and _keras_major() == 3:
        return KERAS_3
      return flavour
  return None


def _package_of_file(path: str) -> str:
  """The dotted module a package file is, from the folder it is installed in (…/site-packages/keras/api/_v2/keras/
  __init__.py -> keras.api._v2.keras); '' when it is not under site-packages or dist-packages."""
  parts = os.path.normpath(path).split(os.sep)
  roots = [i for i, part in enumerate(parts) if part in ('site-packages', 'dist-packages')]
  return '.'.join(parts[roots[-1] + 1:-1]) if roots else ''


def _keras_major() -> Optional[int]:
  try:
    from importlib import metadata
    return int(metadata.version('keras').split('.')[0])
  except Exception:  # Not installed, or an odd version string.
    return None


def _installed(name: str) -> bool:
  return importlib.util.find_spec(name) is not None


def bound_flavour() -> Optional[str]:
  """The flavour `tf.keras` is already bound to in this process, None while TensorFlow (or its tf.keras) is unbound.
  Reading it must not bind it: TF 2.16's loader binds on the first attribute it is asked for."""
  tf = sys.modules.get('tensorflow')
  if tf is None:
    return None
  keras = tf.__dict__.get('keras')
  if keras is None or not getattr(keras, '_tfll_initialized', True):
    return None
  return flavour_of(keras)


def flavour_for_env(value: Optional[str]) -> str:
  """What TF binds in a process whose TF_USE_LEGACY_KERAS is `value` (TF's own rule, lazy_loader.KerasLazyLoader)."""
  if value in _TRUE and _installed('tf_keras'):
    return TF_KERAS
  return KERAS_3 if _keras_major() == 3 else KERAS_2


def launch_env_value() -> Optional[str]:
  """TF_USE_LEGACY_KERAS as this process was launched with it (/proc/self/environ), before any import changed
  os.environ (tensorflow_transform sets it to 1); the current value where /proc is not available."""
  try:
    with open('/proc/self/environ', 'rb') as f:
      entries = f.read().split(b'\0')
  except OSError:
    return os.environ.get(LEGACY_ENV)
  prefix = LEGACY_ENV.encode() + b'='
  for entry in entries:
    if entry.startswith(prefix):
      return entry[len(prefix):].decode('utf-8', 'replace')
  return None


def _env_text(value: Optional[str]) -> str:
  return f'{LEGACY_ENV}={value}' if value is not None else f'{LEGACY_ENV} unset'


def env_for(flavour: str) -> Optional[str]:
  """The variable that makes a new process bind `flavour`: '1' for tf_keras, '0' for Keras 3 (so tensorflow_transform
  does not set it), unset for Keras 2 (TF 2.15 has no tf_keras, and forcing the variable breaks its import)."""
  return {TF_KERAS: '1', KERAS_3: '0'}.get(flavour)


def trainer_keras() -> TrainerKeras:
  """The Keras Trainer gets: observed in this process when TensorFlow has bound tf.keras here (the executor in a
  pipeline process, or the CLI), else what TF would bind in a process launched with this process's environment."""
  launched = launch_env_value()
  bound = bound_flavour()
  if bound is not None:
    source = (f'observed: this process bound tf.keras to {bound} (launched with {_env_text(launched)}; tf_keras '
              f'{"installed" if _installed("tf_keras") else "not installed"}); Trainer in this process '
              '(LocalDagRunner) or started the same way gets the same')
    return TrainerKeras(bound, source, env_for(bound))
  flavour = flavour_for_env(launched)
  source = (f'predicted: TensorFlow has not bound tf.keras in this process; a process launched with '
            f'{_env_text(launched)} binds {flavour} (tf_keras {"installed" if _installed("tf_keras") else "not installed"})')
  return TrainerKeras(flavour, source, env_for(flavour))


def apply_to_env(env: Dict[str, str], keras: TrainerKeras) -> None:
  """Sets (or removes) TF_USE_LEGACY_KERAS in the probe's environment so it binds the same flavour."""
  if keras.legacy_env is None:
    env.pop(LEGACY_ENV, None)
  else:
    env[LEGACY_ENV] = keras.legacy_env
