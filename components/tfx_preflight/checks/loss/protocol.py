"""What the loss check's parent and its probe subprocess say to each other, defined once for both sides.

The child's stdin carries three JSON documents: a warm-up line (`Warmup`: which of TFX's own libraries to import while
the parent is still busy with statistics and the other checks) and the request's head (a `ProbeRequest` naming only
the code to run, the nonce and the result descriptor), both sent at launch, then the whole request, sent when the
parent has the data, schema and statistics, after which the parent closes stdin. The child takes the nonce and moves
the result pipe it inherits at the descriptor the head names to a fresh, non-inheritable descriptor, closing the
original, before it imports the module; it imports the module while the parent still reads the data, then reads the
whole request (which carries no nonce) and closes stdin. A module that reads stdin at import gets no more than that
request, and the probe then ends with a blocking finding (`request_lost`). Every message line starts with the per-run
nonce the parent generated and sent in the head; the child keeps it inside the writer object only. A module that
writes `{"complete": true}` to a file, a descriptor or stdout therefore does not produce a result: forging one takes
intent (searching the interpreter for the nonce), not a mistake. See docs/threat-model.md.
Everything is JSON (never pickle): the child ran untrusted code, so every `from_json` here checks types and drops what
does not fit (a finding without a known severity, a timing mark that is not a number).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from tfx_preflight import constants

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
  # With transformed examples as `examples`: the raw examples they must come from (transformed.py).
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
  # the parent sent the request; 0: when the probe starts): the fit stops on a share of what is left (real_batch.py).
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
  # Set by the parent in the head only; taken by the child before it imports the module, never shown to the module.
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


def plain_json(value: Any) -> Any:
  """`value` as plain JSON (numpy scalars and arrays as numbers and lists, anything else as its str), the form every
  message takes on the wire."""
  return json.loads(json.dumps(value, sort_keys=True, default=_json_default))


def _scalar(value: Any) -> bool:
  return value is None or isinstance(value, (str, int, float, bool))


def _finding_detail(value: Any) -> bool:
  """What a finding's detail may be in report.json: a JSON scalar, or a list of strings and numbers."""
  return _scalar(value) or (isinstance(value, list) and all(isinstance(e, (str, int, float)) for e in value))


def _json_object(value: Any) -> Dict[str, Any]:
  """A JSON object with string keys, else empty: what came over the wire is untrusted."""
  return {k: v for k, v in value.items() if isinstance(k, str)} if isinstance(value, dict) else {}


_FINDING_FIELDS = ('code', 'severity', 'message')


@dataclasses.dataclass(frozen=True)
class ProbeFinding:
  """One finding as the probe states it: on the wire a flat object, {code, severity, message, **details}."""
  code: str
  severity: str
  message: str
  details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  @classmethod
  def of(cls, flat: Mapping[str, Any]) -> ProbeFinding:
    """The child's own finding (Probe.add's flat dict), not validated: the child trusts itself."""
    return cls(flat['code'], flat['severity'], flat['message'],
               {k: v for k, v in flat.items() if k not in _FINDING_FIELDS})

  def to_json(self) -> Dict[str, Any]:
    return {**self.details, 'code': self.code, 'severity': self.severity, 'message': self.message}

  @classmethod
  def from_json(cls, value: Any) -> Optional[ProbeFinding]:
    """None unless a known severity, a string code and message; details kept only as JSON scalars or lists of them."""
    if not isinstance(value, dict) or value.get('severity') not in constants.SEVERITIES:
      return None
    if not isinstance(value.get('code'), str) or not isinstance(value.get('message'), str):
      return None
    details = {k: v for k, v in value.items()
               if isinstance(k, str) and k not in _FINDING_FIELDS and _finding_detail(v)}
    return cls(value['code'], value['severity'], value['message'], details)


@dataclasses.dataclass(frozen=True)
class ProbeMeasurements:
  """The probe's numbers by stage (initial_loss, fit_batch, eval_path...): free-form plain JSON, kept as sent."""
  values: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def to_json(self) -> Dict[str, Any]:
    return dict(self.values)

  @classmethod
  def from_json(cls, value: Any) -> ProbeMeasurements:
    return cls(plain_json(_json_object(value)))


# report.json shows `skipped_reason` under info with this key (details.py); a value sent under it is not the reason.
SKIPPED_INFO_KEY = 'skipped'


@dataclasses.dataclass(frozen=True)
class ProbeInfo:
  """What the probe learnt about the module (its loss, run_fn, Keras, validation data...), and, apart from it, why
  it could not check at all (`skipped_reason`: a run_fn that never trains with Keras fit), never an info key."""
  values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  skipped_reason: Optional[str] = None

  def to_json(self) -> Dict[str, Any]:
    return {'values': dict(self.values), 'skipped_reason': self.skipped_reason}

  @classmethod
  def from_json(cls, value: Any) -> ProbeInfo:
    value = _json_object(value)
    reason = value.get('skipped_reason')
    values = {k: v for k, v in _json_object(value.get('values')).items() if k != SKIPPED_INFO_KEY}
    return cls(plain_json(values), reason if isinstance(reason, str) else None)


def _timing(value: Any) -> Tuple[Tuple[str, float], ...]:
  return tuple((str(m[0]), float(m[1])) for m in value if isinstance(m, list) and len(m) == 2
               and isinstance(m[1], (int, float)) and not isinstance(m[1], bool)) if isinstance(value, list) else ()


@dataclasses.dataclass(frozen=True)
class ProbeState:
  """Everything the probe has found so far; sent with every progress message and as the result."""
  findings: Tuple[ProbeFinding, ...] = ()
  measurements: ProbeMeasurements = ProbeMeasurements()
  info: ProbeInfo = ProbeInfo()
  # (stage, wall-clock time it began): where the probe's time went (loss/timing.json, never report.json).
  timing: Tuple[Tuple[str, float], ...] = ()

  def to_json(self) -> Dict[str, Any]:
    return {'findings': [f.to_json() for f in self.findings], 'measurements': self.measurements.to_json(),
            'info': self.info.to_json(), 'timing': [list(m) for m in self.timing]}

  @classmethod
  def from_json(cls, value: Any) -> ProbeState:
    value = _json_object(value)
    findings = value.get('findings')
    return cls(tuple(f for f in map(ProbeFinding.from_json, findings if isinstance(findings, list) else []) if f),
               ProbeMeasurements.from_json(value.get('measurements')), ProbeInfo.from_json(value.get('info')),
               _timing(value.get('timing')))


@dataclasses.dataclass(frozen=True)
class ProbeProgress:
  """A progress message: the stage about to run (and the user function it runs), with the state so far, so that a
  hang or a crash there still says where it happened and what was found before."""
  stage: str
  function: Optional[str] = None
  state: ProbeState = ProbeState()
  KIND = PROGRESS

  def to_json(self) -> Dict[str, Any]:
    return {'stage': self.stage, 'function': self.function, 'state': self.state.to_json()}

  @classmethod
  def from_json(cls, value: Any) -> Optional[ProbeProgress]:
    value = _json_object(value)
    stage, function = value.get('stage'), value.get('function')
    if not isinstance(stage, str):
      return None
    return cls(stage, function if isinstance(function, str) else None, ProbeState.from_json(value.get('state')))


@dataclasses.dataclass(frozen=True)
class ProbeResult:
  """The result message: the probe ran to its end (`complete`) with this state."""
  state: ProbeState = ProbeState()
  complete: bool = True
  KIND = RESULT

  def to_json(self) -> Dict[str, Any]:
    return {'complete': self.complete, 'state': self.state.to_json()}

  @classmethod
  def from_json(cls, value: Any) -> ProbeResult:
    value = _json_object(value)
    return cls(ProbeState.from_json(value.get('state')), value.get('complete') is True)


# How a probe run ended (ProbeRun.outcome).
COMPLETE = 'complete'
TIMEOUT = 'timeout'
CRASHED = 'crashed'
OUTCOMES = (COMPLETE, TIMEOUT, CRASHED)


@dataclasses.dataclass(frozen=True)
class ProbeRun:
  """How one probe process ended, as the parent saw it (`ProbeProcess.wait`): complete (it sent a complete result
  and exited 0), timeout or crashed; its last messages; its exit code; where its stderr is; its wall time."""
  outcome: str
  returncode: Optional[int] = None
  result: Optional[ProbeResult] = None
  progress: Optional[ProbeProgress] = None
  stderr_path: str = ''
  elapsed: float = 0.0

  def state(self) -> ProbeState:
    """What the probe found: its result when complete, else what its last progress message said."""
    if self.outcome == COMPLETE and self.result is not None:
      return self.result.state
    return self.progress.state if self.progress is not None else ProbeState()

  def to_json(self) -> Dict[str, Any]:
    return {'outcome': self.outcome, 'returncode': self.returncode, 'stderr_path': self.stderr_path,
            'elapsed': self.elapsed, 'result': self.result.to_json() if self.result else None,
            'progress': self.progress.to_json() if self.progress else None}

  @classmethod
  def from_json(cls, value: Any) -> ProbeRun:
    value = _json_object(value)
    outcome, code = value.get('outcome'), value.get('returncode')
    if outcome not in OUTCOMES:
      raise ValueError(f'A probe run ends complete, timeout or crashed. Got {outcome!r} instead.')
    elapsed = value.get('elapsed')
    return cls(outcome, code if isinstance(code, int) and not isinstance(code, bool) else None,
               ProbeResult.from_json(value['result']) if isinstance(value.get('result'), dict) else None,
               ProbeProgress.from_json(value.get('progress')) if isinstance(value.get('progress'), dict) else None,
               str(value.get('stderr_path') or ''), float(elapsed) if isinstance(elapsed, (int, float)) else 0.0)


Message = Union[ProbeProgress, ProbeResult]


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

  def send(self, message: Message) -> None:
    payload = {'kind': message.KIND, **message.to_json()}
    line = self._nonce + ' ' + json.dumps(payload, sort_keys=True, default=_json_default) + '\n'
    data = line.encode()
    while data:
      written = os.write(self._fd, data)
      data = data[written:]


class NullWriter:
  """In-process runs (tests): messages go nowhere."""

  def send(self, message: Message) -> None:
    del message


class ParentReader:
  """The parent's end: a thread drains the pipe (so the child never blocks on a full pipe) and keeps the last progress
  message and the result. Lines without the nonce, or not JSON objects, are dropped."""

  def __init__(self, fd: int, nonce: str):
    self._file = os.fdopen(fd, 'rb')
    self._prefix = (nonce + ' ').encode()
    self.progress: Optional[ProbeProgress] = None
    self.result: Optional[ProbeResult] = None
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
          self.result = ProbeResult.from_json(message)
        elif message.get('kind') == PROGRESS:
          self.progress = ProbeProgress.from_json(message) or self.progress

  def join(self, timeout: float) -> None:
    """Waits for the end of the stream (every writer, including the module's children, closed or killed)."""
    self._thread.join(timeout)
