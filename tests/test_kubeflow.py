"""Kubeflow Pipelines v2 compilation, and Beam options reaching Preflight's Beam jobs.

The compile tests read the PipelineJob JSON that `make kubeflow` produces and replay the container arguments of the
Preflight task through the Vertex/KFP v2 entrypoint's own flag parser into the Preflight executor, so they check what
the cluster will actually run, without a cluster.
"""

import json
import os
import shlex

import pytest

from kubeflow import runner
from pipelines import pipeline as pipeline_lib
from tfx_preflight import config as config_lib

IMAGE = 'europe-docker.pkg.dev/acme/ml/tfx-preflight:0.3.0'
PIPELINE_ROOT = 'gs://acme-ml/tfx-preflight/root'
DATA_ROOT = 'gs://acme-ml/tfx-preflight/data/clean'
MODULE_FILE = '/tfx-preflight/pipelines/modules/cnn_trainer.py'
# Dataflow args without a way to ship tfx_preflight to the workers: the runner adds the image it compiles with.
BEAM_ARGS = ('--runner=DataflowRunner', '--project=acme-ml', '--region=europe-west4',
             '--temp_location=gs://acme-ml/tmp')
COMPILED_BEAM_ARGS = (*BEAM_ARGS, f'--sdk_container_image={IMAGE}')


@pytest.fixture(scope='module')
def compiled(tmp_path_factory):
  """The demo pipeline compiled once with the Kubeflow runner's CLI: (path, job JSON)."""
  out = tmp_path_factory.mktemp('kubeflow_build')
  assert runner.main(['--output-dir', str(out), '--image', IMAGE, '--pipeline-root', PIPELINE_ROOT,
                      '--data-root', DATA_ROOT, '--module-file', MODULE_FILE,
                      '--beam-pipeline-args', shlex.join(BEAM_ARGS),
                      '--preflight-kwargs', '{"skew": {"mode": "warn"}}']) == 0
  path = os.path.join(out, f'{runner.DEFAULT_PIPELINE_NAME}.json')
  with open(path, encoding='utf-8') as f:
    return path, json.load(f)


def _tasks(job):
  return job['pipelineSpec']['root']['dag']['tasks']


def _container(job, task):
  executor_label = job['pipelineSpec']['components'][task]['executorLabel']
  return job['pipelineSpec']['deploymentSpec']['executors'][executor_label]['container']


def _parameter(job, task, name):
  return _tasks(job)[task]['inputs']['parameters'][name]['runtimeValue']['constantValue']['stringValue']


def test_preflight_task_carries_its_config_module_file_and_image(compiled):
  _, job = compiled
  assert list(_tasks(job)) == ['ImportExampleGen', 'Preflight', 'SchemaGen', 'StatisticsGen', 'Trainer']
  preflight = _tasks(job)['Preflight']
  assert sorted(preflight['dependentTasks']) == ['ImportExampleGen', 'SchemaGen', 'StatisticsGen']
  assert {k: v['taskOutputArtifact']['producerTask'] for k, v in preflight['inputs']['artifacts'].items()} == {
      'examples': 'ImportExampleGen', 'statistics': 'StatisticsGen', 'schema': 'SchemaGen'}
  config = config_lib.PreflightConfig.from_json(_parameter(job, 'Preflight', 'config'))
  assert config.label_key == 'label'
  assert config.skew.mode == 'warn'  # From --preflight-kwargs,
  assert config.loss.timeout_seconds == 300.0  # merged into the demo's defaults.
  assert _parameter(job, 'Preflight', 'module_file') == MODULE_FILE
  container = _container(job, 'Preflight')
  assert container['image'] == IMAGE
  assert container['args'][:2] == ['--executor_class_path', 'tfx_preflight.executor.Executor']
  outputs = job['pipelineSpec']['components']['Preflight']['outputDefinitions']['artifacts']
  assert {k: v['artifactType']['instanceSchema'].splitlines()[0] for k, v in outputs.items()} == {
      'report': 'title: tfx_preflight.PreflightReport', 'blessing': 'title: tfx_preflight.PreflightBlessing'}
  assert job['runtimeConfig']['gcsOutputDirectory'] == PIPELINE_ROOT
  assert _parameter(job, 'ImportExampleGen', 'input_base') == DATA_ROOT


def test_every_task_runs_in_the_preflight_image(compiled):
  _, job = compiled
  assert {task: _container(job, task)['image'] for task in _tasks(job)} == {task: IMAGE for task in _tasks(job)}


def test_trainer_runs_only_when_preflight_blesses(compiled):
  _, job = compiled
  trainer = _tasks(job)['Trainer']
  condition = trainer['triggerPolicy']['condition']
  assert "['_Preflight.blessing']" in condition and "metadata['blessed'] == 1" in condition
  blessing_input = trainer['inputs']['artifacts']['_Preflight.blessing']['taskOutputArtifact']
  assert blessing_input == {'producerTask': 'Preflight', 'outputArtifactKey': 'blessing'}
  # Trainer and Preflight read the same module file in the container: no compile-time wheel on pipeline_root.
  assert _parameter(job, 'Trainer', 'module_file') == MODULE_FILE
  assert 'module_path' not in trainer['inputs']['parameters']


def test_without_gate_trainer_has_no_condition(tmp_path):
  pipeline = runner.create_demo_pipeline(pipeline_root=PIPELINE_ROOT, data_root=DATA_ROOT, module_file=MODULE_FILE,
                                         enable_gate=False)
  path = runner.compile_pipeline(pipeline, output_dir=str(tmp_path), image=IMAGE, output_filename='ungated.json')
  with open(path, encoding='utf-8') as f:
    trainer = _tasks(json.load(f))['Trainer']
  assert 'triggerPolicy' not in trainer
  assert 'Preflight' in trainer['dependentTasks']


def test_beam_args_reach_every_beam_task(compiled):
  _, job = compiled
  for task in ('ImportExampleGen', 'StatisticsGen', 'Preflight'):
    assert _container(job, task)['args'][-len(COMPILED_BEAM_ARGS):] == list(COMPILED_BEAM_ARGS), task


def test_dataflow_workers_keep_a_given_way_to_get_the_package(tmp_path):
  given = [*BEAM_ARGS, '--setup_file=/tfx-preflight/setup.py']
  pipeline = runner.create_demo_pipeline(pipeline_root=PIPELINE_ROOT, data_root=DATA_ROOT, module_file=MODULE_FILE,
                                         beam_pipeline_args=given, image=IMAGE)
  with open(runner.compile_pipeline(pipeline, output_dir=str(tmp_path), image=IMAGE), encoding='utf-8') as f:
    args = _container(json.load(f), 'Preflight')['args']
  assert args[-len(given):] == given
  assert not any(arg.startswith('--sdk_container_image') for arg in args)


def test_direct_runner_args_get_no_image(tmp_path):
  pipeline = runner.create_demo_pipeline(pipeline_root=PIPELINE_ROOT, data_root=DATA_ROOT, module_file=MODULE_FILE,
                                         image=IMAGE)
  with open(runner.compile_pipeline(pipeline, output_dir=str(tmp_path), image=IMAGE), encoding='utf-8') as f:
    args = _container(json.load(f), 'Preflight')['args']
  assert args[-len(runner.DEFAULT_BEAM_ARGS):] == list(runner.DEFAULT_BEAM_ARGS)
  assert not any(arg.startswith('--sdk_container_image') for arg in args)


@pytest.mark.parametrize('runner_flag', ['--runner=DataflowRunner', '--runner=dataflow',
                                         '--runner=apache_beam.runners.dataflow.dataflow_runner.DataflowRunner'])
def test_preflight_refuses_dataflow_args_that_leave_workers_without_the_package(runner_flag):
  """A pipeline built (not compiled by the Kubeflow runner) with Dataflow args and no image fails when it is built,
  naming the options to add; an image, setup file or extra package lets it build."""
  from tfx import v1 as tfx_v1
  from tfx.types import Channel, standard_artifacts

  from tfx_preflight import Preflight

  def build(*beam_args):
    gate = Preflight(examples=Channel(type=standard_artifacts.Examples), label_key='label')
    return tfx_v1.dsl.Pipeline(pipeline_name='p', pipeline_root=PIPELINE_ROOT, components=[gate],
                               beam_pipeline_args=[runner_flag, '--project=acme-ml', *beam_args])

  with pytest.raises(ValueError, match='--sdk_container_image=IMAGE') as raised:
    build()
  assert '--extra_package' in str(raised.value) and '--setup_file' in str(raised.value)
  for given in (f'--sdk_container_image={IMAGE}', '--setup_file=/tfx-preflight/setup.py',
                '--extra_package=dist/tfx_preflight-0.3.0.tar.gz'):
    [gate] = build(given).components
    assert gate.executor_spec.beam_pipeline_args[-1] == given


def test_preflight_added_with_component_beam_args_is_checked_when_compiled(tmp_path):
  """Dataflow args given with with_beam_pipeline_args are checked when a compiler encodes the spec."""
  from tfx.types import Channel, standard_artifacts

  from tfx_preflight import Preflight
  gate = Preflight(examples=Channel(type=standard_artifacts.Examples), label_key='label')
  gate.with_beam_pipeline_args(['--runner=DataflowRunner'])
  with pytest.raises(ValueError, match="Preflight's beam_pipeline_args run on DataflowRunner"):
    gate.executor_spec.encode()


def test_beam_args_reach_the_preflight_executors_beam_pipelines(compiled):
  """Replays the Preflight container's argv through the v2 entrypoint's parser into Executor._make_beam_pipeline."""
  from apache_beam.options.pipeline_options import GoogleCloudOptions, StandardOptions, WorkerOptions
  from tfx.dsl.components.base import base_beam_executor
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

  from tfx_preflight import executor

  _, job = compiled
  container = _container(job, 'Preflight')
  assert container['command'][-1] == 'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor'
  args, beam_args = kubeflow_v2_run_executor._parse_flags(['run_executor', *container['args']])
  assert args.executor_class_path == 'tfx_preflight.executor.Executor'
  assert beam_args[1:] == list(COMPILED_BEAM_ARGS)  # beam_args[0] is the program name, as absl passes argv.
  preflight_executor = executor.Executor(base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=beam_args))
  options = preflight_executor._make_beam_pipeline().options  # What run.run_preflight's Beam jobs are built with.
  assert options.view_as(StandardOptions).runner == 'DataflowRunner'
  google = options.view_as(GoogleCloudOptions)
  assert (google.project, google.region, google.temp_location) == ('acme-ml', 'europe-west4', 'gs://acme-ml/tmp')
  assert options.view_as(WorkerOptions).sdk_container_image == IMAGE  # Dataflow workers start with tfx_preflight.


def test_compile_rejects_an_empty_image(tmp_path):
  pipeline = runner.create_demo_pipeline(pipeline_root=PIPELINE_ROOT, data_root=DATA_ROOT, module_file=MODULE_FILE)
  with pytest.raises(ValueError, match='image must name'):
    runner.compile_pipeline(pipeline, output_dir=str(tmp_path), image='')


def test_module_files_as_paths_restores_the_environment(monkeypatch):
  name = 'UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES'
  monkeypatch.delenv(name, raising=False)
  with runner.module_files_as_paths():
    assert os.environ[name] == '1'
  assert name not in os.environ


def test_dockerfile_installs_with_the_constraints_file():
  """The image must resolve the same stack as CI: FROM the TFX 1.16 image, `pip install -c constraints.txt .`."""
  here = os.path.dirname(os.path.abspath(runner.__file__))
  with open(os.path.join(here, 'Dockerfile'), encoding='utf-8') as f:
    dockerfile = f.read()
  assert 'FROM gcr.io/tfx-oss-public/tfx:1.16.0' in dockerfile
  assert '-c constraints.txt .' in dockerfile
  assert f'WORKDIR {runner.IMAGE_REPO_DIR}' in dockerfile
  for copied in ('setup.py', 'constraints.txt', 'README.md', 'MANIFEST.in', 'components/', 'pipelines/'):
    assert f' {copied}' in dockerfile, copied


def _executor_input(examples_uri, splits, config_json, out):
  """The ExecutorInput Vertex AI / KFP v2 substitutes for `{{$}}` in the Preflight task's args."""
  def artifact(name, uri, title, metadata=None):
    return {'artifacts': [{'name': f'projects/1/locations/europe-west4/metadataStores/default/artifacts/{name}',
                           'uri': uri, 'type': {'schemaTitle': title}, 'metadata': metadata or {}}]}
  return {
      'inputs': {
          'artifacts': {'examples': artifact('examples', examples_uri, 'tfx.Examples',
                                             {'split_names': json.dumps(list(splits))})},
          # Schema 2.0.0 (what KubeflowV2DagRunner emits) is read from `parameters`; both forms are sent.
          'parameterValues': {'config': config_json},
          'parameters': {'config': {'stringValue': config_json}},
      },
      'outputs': {
          'artifacts': {'report': artifact('report', os.path.join(out, 'report'), 'tfx_preflight.PreflightReport'),
                        'blessing': artifact('blessing', os.path.join(out, 'blessing'),
                                             'tfx_preflight.PreflightBlessing')},
          'outputFile': os.path.join(out, 'executor_output.json'),
      },
  }


@pytest.mark.slow
def test_preflight_container_command_runs_and_reports_the_blessing_as_metadata(tmp_path):
  """Runs the compiled Preflight task's command as the cluster would, on a skewed dataset.

  Vertex AI / KFP v2 record what the entrypoint writes to executor_output.json as the output artifacts' metadata:
  that is where Trainer's triggerPolicy reads `blessed`, and where the UI shows it.
  """
  import subprocess
  import sys

  from tests.helpers import tabular_rows, write_splits

  pipeline = runner.create_demo_pipeline(pipeline_root=str(tmp_path / 'root'), data_root=DATA_ROOT,
                                         module_file=MODULE_FILE,
                                         beam_pipeline_args=['--direct_running_mode=in_memory',
                                                             '--direct_num_workers=1'])
  with open(runner.compile_pipeline(pipeline, output_dir=str(tmp_path), image=IMAGE), encoding='utf-8') as f:
    container = _container(json.load(f), 'Preflight')
  examples_uri = str(tmp_path / 'examples')
  write_splits(examples_uri, {'train': tabular_rows(300, seed=1),
                              'eval': tabular_rows(150, seed=2, scale=10.0, offset=1000)})
  config_json = config_lib.PreflightConfig(label_key='label').to_json()
  out = str(tmp_path / 'task')
  invocation = json.dumps(_executor_input(examples_uri, ['train', 'eval'], config_json, out))
  command = [sys.executable if part == 'python' else part for part in container['command']]
  args = [invocation if arg == '{{$}}' else arg for arg in container['args']]
  completed = subprocess.run([*command, *args], capture_output=True, text=True, timeout=600)
  assert completed.returncode == 0, completed.stderr[-4000:]

  with open(os.path.join(out, 'executor_output.json'), encoding='utf-8') as f:
    outputs = json.load(f)['artifacts']
  blessing = outputs['blessing']['artifacts'][0]['metadata']
  report_metadata = outputs['report']['artifacts'][0]['metadata']
  with open(os.path.join(out, 'report', 'report.json'), encoding='utf-8') as f:
    report = json.load(f)
  assert report['verdict'] == 'block' and report['checks']['skew']['status'] == 'block'
  assert blessing['blessed'] == 0.0  # What `metadata['blessed'] == 1.0` evaluates: Trainer is skipped.
  assert blessing['verdict'] == 'block'
  assert blessing['report'] == os.path.join(out, 'report')
  assert report_metadata['verdict'] == 'block' and report_metadata['skew_status'] == 'block'
  assert os.path.exists(os.path.join(out, 'report', 'report.html'))


def _report_bytes(output_dir):
  with open(os.path.join(output_dir, 'report.json'), encoding='utf-8') as f:
    return f.read().replace(output_dir, '<OUT>')


@pytest.mark.slow
def test_direct_runner_multi_processing_gives_the_same_report_as_in_process(tmp_path):
  """Two DirectRunner worker processes (as on a Kubeflow pod) produce the very report of one in-process run."""
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions

  from pipelines import data as data_lib
  from tfx_preflight import run

  data_root = str(tmp_path / 'data')
  data_lib.generate('leaky_split', data_root, limit=240)
  config = config_lib.PreflightConfig(label_key=data_lib.LABEL_KEY)  # near-duplicates on by default
  reports = {}
  for name, beam_args in (('in_process', []),
                          ('multi_processing', ['--direct_running_mode=multi_processing', '--direct_num_workers=2'])):
    out = str(tmp_path / name)
    inputs = run.PreflightInputs(examples=data_lib.split_patterns(data_root))
    run.run_preflight(inputs, config, lambda args=beam_args: beam.Pipeline(options=PipelineOptions(args)), out)
    reports[name] = _report_bytes(out)
  report = json.loads(reports['in_process'])
  assert report['checks']['leakage']['near_duplicates'][0]['near_only_examples'] > 0  # The checks found something,
  assert report['verdict'] == 'block'
  assert reports['multi_processing'] == reports['in_process']  # and found it identically with 2 workers.


def test_the_v2_entrypoint_can_load_the_custom_artifact_classes_by_type_name():
  """kubeflow_v2_run_executor imports a custom artifact's class from its schema title, i.e. its TYPE_NAME."""
  from tfx.utils import import_utils

  from tfx_preflight.artifacts import PreflightBlessing, PreflightReport
  for artifact_cls in (PreflightBlessing, PreflightReport):
    assert import_utils.import_class_by_path(artifact_cls.TYPE_NAME) is artifact_cls


def test_worker_package_flags_are_read_as_beams_parser_reads_them():
  from tfx_preflight import worker_packaging as wp
  assert wp.runs_on_dataflow(['--runner', 'DataflowRunner'])
  assert not wp.runs_on_dataflow(['--runner=DataflowRunner', '--runner=DirectRunner'])  # The last one wins.
  assert not wp.runs_on_dataflow([])
  given = ['--runner=dataflow', '--sdk_container_image', IMAGE]
  assert wp.with_worker_image(given, 'other') == given
  assert wp.with_worker_image(['--runner=dataflow', '--setup_file='], IMAGE)[-1] == f'--sdk_container_image={IMAGE}'


def test_schema_gen_reading_the_gates_statistics_compiles(tmp_path):
  """ExampleGen -> Preflight(output_statistics=True) -> SchemaGen -> Trainer: SchemaGen's input is the gate's
  optional `example_statistics` output, and Trainer keeps its condition."""
  with runner.module_files_as_paths():
    pipeline = pipeline_lib.create_pipeline('p', PIPELINE_ROOT, DATA_ROOT, MODULE_FILE, statistics_from_gate=True)
  path = runner.compile_pipeline(pipeline, output_dir=str(tmp_path), image=IMAGE, output_filename='no_stats_gen.json')
  with open(path, encoding='utf-8') as f:
    tasks = _tasks(json.load(f))
  assert sorted(tasks) == ['ImportExampleGen', 'Preflight', 'SchemaGen', 'Trainer']
  assert tasks['SchemaGen']['inputs']['artifacts']['statistics'] == {
      'taskOutputArtifact': {'outputArtifactKey': 'example_statistics', 'producerTask': 'Preflight'}}
  assert "['blessed'] == 1" in tasks['Trainer']['triggerPolicy']['condition']
