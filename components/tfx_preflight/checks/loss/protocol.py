"""What the loss check's parent and its probe subprocess say to each other, defined once for both sides.

The child's stdin carries two JSON documents: a warm-up line (`Warmup`: which of TFX's own libraries to import while
the parent is still busy with statistics and the other checks), sent at once, then the request, sent when the parent
has it, after which the parent closes stdin; the child reads both and closes stdin before it imports any user code.
Messages come back on a pipe the child inherits at a file descriptor named in the request: the child moves it to a
fresh, non-inheritable descriptor and closes the original before importing the module. Every message line starts with
a per-run nonce the parent generated and sent in the request; the child keeps it inside the writer object only. A module that writes `{"complete": true}` to a file, a descriptor or stdout therefore does not produce a
result: forging one takes intent (searching the interpreter for the nonce), not a mistake. See README "threat model".
Everything is JSON (never pickle): the child ran untrusted code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from typing import Any, Dict, List, Optional

# Kinds of message lines.
PROGRESS = 'progress'
RESULT = 'result'


@dataclasses.dataclass
class Warmup:
  """What the probe imports before the request arrives: only what Trainer's own process has imported before it calls
  run_fn (TensorFlow; tfx.components.trainer's FnArgs), and TensorFlow Transform when a transform graph is given.
  Not user code, so importing it early changes nothing the module sees; it only overlaps the imports with the
  parent's work."""
  trainer: bool = True  # FnArgs and the DataAccessor (tfx.components.trainer.fn_args_utils, tfxio_utils).
  transform: bool = False  # tensorflow_transform (TFTransformOutput for the transform graph).

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> Warmup:
    value = json.loads(text or '{}')
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: bool(v) for k, v in value.items() if k in known})


@dataclasses.dataclass
class ProbeRequest:
  """Everything the probe needs; plain JSON values only."""
  module_file: Optional[str] = None  # As the user named it (for messages).
  module_path: Optional[str] = None  # A local file to import, or None with a dotted run_fn.
  run_fn: Optional[str] = None  # A function name in module_file, or a dotted 'pkg.module.run_fn' as Trainer takes.
  model_fn: Optional[str] = None
  input_fn: Optional[str] = None
  loss_fn: Optional[str] = None
  examples: Dict[str, str] = dataclasses.field(default_factory=dict)  # split -> readable file pattern.
  # With transformed examples as `examples`: the raw examples they must come from (loss_transformed.py).
  raw_examples: Dict[str, str] = dataclasses.field(default_factory=dict)
  train_split: str = 'train'
  eval_splits: List[str] = dataclasses.field(default_factory=list)
  label_key: Optional[str] = None
  label_stats: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)
  split_examples: Dict[str, int] = dataclasses.field(default_factory=dict)  # split -> examples (statistics).
  schema_path: Optional[str] = None
  transform_graph_uri: Optional[str] = None
  hyperparameters: Optional[Dict[str, Any]] = None
  custom_config: Optional[Dict[str, Any]] = None
  batch_size: int = 32
  fit_steps: int = 30
  # The parent's budget for the whole probe (loss.timeout_seconds; 0: none), counted from `sent_at` (time.time() when
  # the parent sent the request; 0: when the probe starts): the fit stops on a share of what is left (loss_battery).
  timeout_seconds: float = 0.0
  sent_at: float = 0.0
  seed: int = 7
  workdir: str = ''
  # Whether the module's folder goes on sys.path, as Trainer's packaging of user modules makes its siblings importable.
  module_dir_importable: bool = True
  # The parent's import path (Trainer imports a dotted run_fn with the pipeline process's sys.path).
  sys_path: List[str] = dataclasses.field(default_factory=list)
  # The Keras Trainer gets (loss_keras: keras3, tf_keras or keras2) and why; the probe checks it bound the same one.
  keras: str = ''
  keras_source: str = ''
  # Set by the parent just before sending; never shown to the module.
  nonce: str = ''
  result_fd: int = -1

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> ProbeRequest:
    value = json.loads(text)
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in value.items() if k in known})


def _json_default(value: Any) -> Any:
  if hasattr(value, 'item'):
    return value.item()
  if hasattr(value, 'tolist'):
    return value.tolist()
  return str(value)


class ChildWriter:
  """The child's end of the result pipe. `take` moves the inherited descriptor out of the request's reach."""

  def __init__(self, fd: int, nonce: str):
    self._fd = fd
    self._nonce = nonce

  @classmethod
  def take(cls, request: ProbeRequest) -> ChildWriter:
    """Dups the inherited descriptor to a fresh non-inheritable one, closes the original and wipes both the descriptor
    number and the nonce from the request object, which the module could reach."""
    fd = os.dup(request.result_fd)  # os.dup returns a non-inheritable descriptor.
    os.close(request.result_fd)
    writer = cls(fd, request.nonce)
    request.nonce, request.result_fd = '', -1
    return writer

  def send(self, kind: str, payload: Dict[str, Any]) -> None:
    line = self._nonce + ' ' + json.dumps({'kind': kind, **payload}, sort_keys=True, default=_json_default) + '\n'
    data = line.encode()
    while data:
      written = os.write(self._fd, data)
      data = data[written:]


class NullWriter:
  """In-process runs (tests): messages go nowhere."""

  def send(self, kind: str, payload: Dict[str, Any]) -> None:
    del kind, payload


class ParentReader:
  """The parent's end: a thread drains the pipe (so the child never blocks on a full pipe) and keeps the last progress
  message and the result. Lines without the nonce, or not JSON objects, are dropped."""

  def __init__(self, fd: int, nonce: str):
    self._file = os.fdopen(fd, 'rb')
    self._prefix = (nonce + ' ').encode()
    self.progress: Optional[Dict[str, Any]] = None
    self.result: Optional[Dict[str, Any]] = None
    self._thread = threading.Thread(target=self._drain, name='preflight-loss-reader', daemon=True)
    self._thread.start()

  def _drain(self) -> None:
    with self._file:
      for line in self._file:
        if not line.startswith(self._prefix):
          continue
        try:
          message = json.loads(line[len(self._prefix):])
        except ValueError:
          continue
        if not isinstance(message, dict):
          continue
        if message.get('kind') == RESULT:
          self.result = message
        elif message.get('kind') == PROGRESS:
          self.progress = message

  def join(self, timeout: float) -> None:
    """Waits for the end of the stream (every writer, including the module's children, closed or killed)."""
    self._thread.join(timeout)
