"""Runs the demo pipeline with LocalDagRunner (Beam DirectRunner) and sqlite ML Metadata; reads the outcome back.

The runner owns what the pure factory in pipeline.py does not: where things go and which metadata store is used.
Layout under one runs root (default `tfx_preflight_runs/` in the repo, git-ignored):

  <root>/data/<scenario>/{train,eval}/     the scenario's prepared splits (ExampleGen input_base)
  <root>/pipelines/<scenario>/             pipeline_root: every component's outputs
  <root>/metadata/<scenario>.sqlite        ML Metadata
  <root>/direct/<scenario>/                the demo's training without the gate (pipelines.demo)
  <root>/logs/<scenario>.log               each scenario's full output when the demo runs several at once
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, Dict, Optional, Sequence

from tfx import v1 as tfx

from pipelines import data as data_lib
from pipelines import pipeline as pipeline_lib
from tfx_preflight import constants

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RUNS_ROOT = data_lib.DEFAULT_RUNS_ROOT
MODULES_DIR = os.path.join(_REPO, 'pipelines', 'modules')
CNN_MODULE = os.path.join(MODULES_DIR, 'cnn_trainer.py')
ZERO_LOSS_MODULE = os.path.join(MODULES_DIR, 'zero_loss_trainer.py')
PROXY_MODULE = os.path.join(MODULES_DIR, 'proxy_trainer.py')
# DirectRunner in this process: nothing to start, and the whole demo stays within 2 cores.
DEFAULT_BEAM_ARGS = ('--direct_running_mode=in_memory', '--direct_num_workers=1')

BLESSING_TYPE = constants.BLESSING_TYPE_NAME
REPORT_TYPE = constants.REPORT_TYPE_NAME
MODEL_TYPE = 'Model'
MODEL_RUN_TYPE = 'ModelRun'


def module_for(scenario: str) -> str:
  """The Trainer module a scenario uses: the broken loss in zero_loss, the CNN that also reads the review queue in
  label_proxy, the CNN everywhere else."""
  return {'zero_loss': ZERO_LOSS_MODULE, 'label_proxy': PROXY_MODULE}.get(scenario, CNN_MODULE)


@dataclasses.dataclass(frozen=True)
class RunPaths:
  """Where one scenario's run lives."""
  root: str
  scenario: str

  @property
  def data_root(self) -> str:
    return os.path.join(self.root, 'data', self.scenario)

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.root, 'pipelines', self.scenario)

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.root, 'metadata', f'{self.scenario}.sqlite')

  @property
  def pipeline_name(self) -> str:
    return f'preflight-demo-{self.scenario.replace("_", "-")}'


def run_pipeline(paths: RunPaths, module_file: str, preflight_kwargs: Optional[Dict[str, Any]] = None,
                 train_steps: int = pipeline_lib.DEFAULT_TRAIN_STEPS, eval_steps: int = pipeline_lib.DEFAULT_EVAL_STEPS,
                 enable_gate: bool = True, beam_pipeline_args: Sequence[str] = DEFAULT_BEAM_ARGS,
                 statistics_from_gate: bool = False) -> None:
  """Builds the pipeline over paths.data_root and runs it to completion (raises if a component fails)."""
  os.makedirs(os.path.dirname(paths.metadata_path), exist_ok=True)
  pipeline = pipeline_lib.create_pipeline(
      pipeline_name=paths.pipeline_name,
      pipeline_root=paths.pipeline_root,
      data_root=paths.data_root,
      module_file=module_file,
      preflight_kwargs=preflight_kwargs,
      train_steps=train_steps,
      eval_steps=eval_steps,
      beam_pipeline_args=beam_pipeline_args,
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(paths.metadata_path),
      enable_gate=enable_gate,
      statistics_from_gate=statistics_from_gate)
  tfx.orchestration.LocalDagRunner().run(pipeline)


@dataclasses.dataclass
class GateOutcome:
  """What ML Metadata records about one run: the blessing, the report and whether Trainer produced a model."""
  blessed: Optional[int]
  verdict: Optional[str]
  report_uri: Optional[str]
  report: Optional[Dict[str, Any]]
  model_uris: Sequence[str]
  trainer_metrics: Optional[Dict[str, Any]]


def _artifacts(store, type_name: str) -> list:
  """LIVE artifacts of a type ([] when the type was never registered, e.g. no Trainer ever ran)."""
  return [a for a in store.get_artifacts_by_type(type_name) if a.state == a.LIVE]


def read_outcome(metadata_path: str) -> GateOutcome:
  """Reads the latest blessing, report and models from the sqlite ML Metadata at `metadata_path`."""
  from ml_metadata.metadata_store import metadata_store
  from tfx.dsl.io import fileio
  store = metadata_store.MetadataStore(
      tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))
  blessings = sorted(_artifacts(store, BLESSING_TYPE), key=lambda a: a.id)
  reports = sorted(_artifacts(store, REPORT_TYPE), key=lambda a: a.id)
  blessing = blessings[-1] if blessings else None
  report_uri = reports[-1].uri if reports else None
  report = None
  if report_uri and fileio.exists(os.path.join(report_uri, constants.REPORT_JSON)):
    with fileio.open(os.path.join(report_uri, constants.REPORT_JSON), 'r') as f:
      report = json.loads(f.read())
  model_uris = [m.uri for m in _artifacts(store, MODEL_TYPE)]
  trainer_metrics = None
  for run in _artifacts(store, MODEL_RUN_TYPE):
    path = os.path.join(run.uri, 'metrics.json')
    if fileio.exists(path):
      with fileio.open(path, 'r') as f:
        trainer_metrics = json.loads(f.read())
  return GateOutcome(
      blessed=blessing.custom_properties[constants.BLESSED_PROPERTY].int_value if blessing is not None else None,
      verdict=blessing.custom_properties[constants.VERDICT_PROPERTY].string_value if blessing is not None else None,
      report_uri=report_uri, report=report, model_uris=model_uris, trainer_metrics=trainer_metrics)


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description='Run one demo scenario through the gated TFX pipeline.')
  parser.add_argument('--scenario', choices=data_lib.SCENARIOS, default='clean')
  parser.add_argument('--root', default=DEFAULT_RUNS_ROOT)
  parser.add_argument('--train-steps', type=int, default=pipeline_lib.DEFAULT_TRAIN_STEPS)
  args = parser.parse_args(argv)
  paths = RunPaths(args.root, args.scenario)
  data_lib.generate(args.scenario, paths.data_root)
  run_pipeline(paths, module_for(args.scenario), train_steps=args.train_steps)
  outcome = read_outcome(paths.metadata_path)
  print(f'verdict={outcome.verdict} blessed={outcome.blessed} models={list(outcome.model_uris)}\n'
        f'report: {outcome.report_uri}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
