"""Compiles the Preflight-gated pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines with KubeflowV2DagRunner.

`python -m kubeflow.runner` (what `make kubeflow` runs) compiles the demo pipeline of `pipelines/pipeline.py` into
`kubeflow/build/<pipeline name>.json`, a PipelineJob JSON every task of which runs in the tfx-preflight image built
from `kubeflow/Dockerfile`. `compile_pipeline()` compiles any other pipeline the same way.

Nothing runs and nothing is uploaded here: compiling only needs the TFX SDK. Paths baked into the JSON (data root,
module file) are read by the containers at run time, so they must be `gs://` paths or paths inside the image.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

import tfx_preflight
from tfx_preflight import worker_packaging

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT_DIR = os.path.join(_REPO, 'kubeflow', 'build')

# The image `kubeflow/Dockerfile` builds; override with --image or $TFX_PREFLIGHT_IMAGE (e.g. a gcr.io / Artifact
# Registry path the cluster can pull).
DEFAULT_IMAGE = os.environ.get('TFX_PREFLIGHT_IMAGE', f'tfx-preflight:{tfx_preflight.__version__}')
# Where kubeflow/Dockerfile puts the repo inside the image (its WORKDIR).
IMAGE_REPO_DIR = '/tfx-preflight'
DEFAULT_MODULE_FILE = f'{IMAGE_REPO_DIR}/pipelines/modules/cnn_trainer.py'
DEFAULT_PIPELINE_NAME = 'tfx-preflight-demo'
# Placeholders: Vertex AI / KFP read them from the JSON, so pass real buckets when compiling.
DEFAULT_PIPELINE_ROOT = 'gs://YOUR_BUCKET/tfx-preflight/pipeline_root'
DEFAULT_DATA_ROOT = 'gs://YOUR_BUCKET/tfx-preflight/data/clean'
# Beam's DirectRunner inside each task's container, one worker process per core of the pod (0 = all cores).
DEFAULT_BEAM_ARGS = ('--direct_running_mode=multi_processing', '--direct_num_workers=0')

# TFX packages Trainer/Transform/Tuner/Evaluator module files as wheels under pipeline_root at compile time unless
# this is set when those components are constructed (see tfx/components/util/udf_utils.py).
_NO_MODULE_WHEELS_ENV = 'UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES'


@contextlib.contextmanager
def module_files_as_paths() -> Iterator[None]:
  """Components built inside this block keep `module_file` as the given path instead of a compile-time wheel.

  Why: Preflight's loss check imports the Trainer's module file by path (local, in the image, or gs://); TFX's
  wheel packaging would rewrite only Trainer's copy, upload it to pipeline_root while compiling (needing write
  access to the bucket from the compiling machine) and require the file to exist on that machine. With paths, both
  components read the very same file inside the container.
  """
  previous = os.environ.get(_NO_MODULE_WHEELS_ENV)
  os.environ[_NO_MODULE_WHEELS_ENV] = '1'
  try:
    yield
  finally:
    if previous is None:
      os.environ.pop(_NO_MODULE_WHEELS_ENV, None)
    else:
      os.environ[_NO_MODULE_WHEELS_ENV] = previous


def give_dataflow_workers_the_image(pipeline: tfx.dsl.Pipeline, image: str) -> List[str]:
  """Adds `--sdk_container_image=image` to each Beam component's args that run on DataflowRunner with no way to get
  tfx_preflight onto the workers; returns the ids of the components changed.

  The tasks' image is the TFX image with tfx-preflight, and Beam's SDK harness is its entrypoint, so Dataflow workers
  started from it run Preflight's steps with the very versions the task compiled them with.
  """
  changed = []
  for component in pipeline.components:
    spec = component.executor_spec
    if isinstance(spec, executor_spec.BeamExecutorSpec):
      args = worker_packaging.with_worker_image(spec.beam_pipeline_args, image)
      if args != list(spec.beam_pipeline_args):
        spec.beam_pipeline_args = args
        changed.append(component.id)
  if changed:
    logging.info('Added %s=%s for the Dataflow workers of %s.', worker_packaging.IMAGE_FLAG, image,
                 ', '.join(changed))
  return changed


def compile_pipeline(pipeline: tfx.dsl.Pipeline,
                     output_dir: str = DEFAULT_OUTPUT_DIR,
                     image: str = DEFAULT_IMAGE,
                     output_filename: Optional[str] = None,
                     display_name: Optional[str] = None) -> str:
  """Compiles `pipeline` for Kubeflow Pipelines v2 / Vertex AI Pipelines and returns the JSON file's path.

  Use it for your own pipeline: build it with your factory, Preflight placed between ExampleGen and Trainer and
  Trainer inside `tfx.dsl.Cond(preflight.outputs['blessing'].future()[0].custom_property('blessed') == 1)`, with
  `metadata_connection_config=None` (Kubeflow provides ML Metadata) and `beam_pipeline_args` set on the pipeline
  (they reach every Beam component, Preflight included). Build it inside `module_files_as_paths()` when Trainer and
  Preflight share a module file that lives in the image or on GCS. On Dataflow, give the workers the same image
  (Preflight refuses Dataflow args without `--sdk_container_image`, `--setup_file` or `--extra_package` when the
  pipeline is built):

  ```
  from kubeflow import runner
  image = 'europe-docker.pkg.dev/p/repo/tfx-preflight:0.3.0'
  with runner.module_files_as_paths():
    pipeline = my_pipeline.create_pipeline(pipeline_root='gs://bucket/root', module_file='gs://bucket/trainer.py',
                                           beam_pipeline_args=['--runner=DataflowRunner', ...,
                                                               f'--sdk_container_image={image}'])
  runner.compile_pipeline(pipeline, output_dir='build', image=image)
  ```

  Args:
    pipeline: The TFX pipeline; its pipeline_root becomes the job's output directory.
    output_dir: Directory of the JSON (local or gs://); created if missing.
    image: Container image of every task: tfx-preflight installed on the TFX image (kubeflow/Dockerfile); also
      the Dataflow workers' `--sdk_container_image` when a Beam component runs on DataflowRunner without it,
      `--setup_file` or `--extra_package`.
    output_filename: Default `<pipeline_name>.json`; a `.yaml` name writes the YAML PipelineSpec instead.
    display_name: Name shown in the UI; default the pipeline name.

  Returns:
    The path of the compiled file.
  """
  if not image:
    raise ValueError('image must name the tfx-preflight container image (see kubeflow/Dockerfile). Got '
                     f'{image!r} instead.')
  give_dataflow_workers_the_image(pipeline, image)
  filename = output_filename or f'{pipeline.pipeline_info.pipeline_name}.json'
  config = tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(display_name=display_name, default_image=image)
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(config=config, output_dir=output_dir,
                                                              output_filename=filename)
  runner.run(pipeline, write_out=True)
  return os.path.join(output_dir, filename)


def create_demo_pipeline(pipeline_root: str = DEFAULT_PIPELINE_ROOT,
                         data_root: str = DEFAULT_DATA_ROOT,
                         module_file: str = DEFAULT_MODULE_FILE,
                         beam_pipeline_args: Sequence[str] = DEFAULT_BEAM_ARGS,
                         pipeline_name: str = DEFAULT_PIPELINE_NAME,
                         preflight_kwargs: Optional[Mapping[str, Any]] = None,
                         train_steps: Optional[int] = None,
                         eval_steps: Optional[int] = None,
                         enable_gate: bool = True,
                         image: str = DEFAULT_IMAGE) -> tfx.dsl.Pipeline:
  """The demo pipeline (pipelines/pipeline.py) set up for Kubeflow: no local metadata, module file as a path, and
  `image` as the Dataflow workers' image when beam_pipeline_args run on Dataflow without one."""
  from pipelines import pipeline as pipeline_lib  # The repo's demo; its modules are copied into the image.
  steps: Dict[str, int] = {}
  if train_steps is not None:
    steps['train_steps'] = train_steps
  if eval_steps is not None:
    steps['eval_steps'] = eval_steps
  with module_files_as_paths():
    return pipeline_lib.create_pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        data_root=data_root,
        module_file=module_file,
        preflight_kwargs=preflight_kwargs,
        beam_pipeline_args=worker_packaging.with_worker_image(beam_pipeline_args, image),
        metadata_connection_config=None,
        enable_gate=enable_gate,
        **steps)


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m kubeflow.runner',
      description='Compile the Preflight-gated demo pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines.')
  parser.add_argument('--output-dir', default=DEFAULT_OUTPUT_DIR, help='Where the pipeline JSON goes.')
  parser.add_argument('--output-filename', default=None, help='Default: <pipeline name>.json.')
  parser.add_argument('--pipeline-name', default=DEFAULT_PIPELINE_NAME)
  parser.add_argument('--pipeline-root', default=DEFAULT_PIPELINE_ROOT, help='gs:// root of every output.')
  parser.add_argument('--data-root', default=DEFAULT_DATA_ROOT,
                      help='gs:// folder with train/ and eval/ gzipped tf.Example TFRecords (ImportExampleGen).')
  parser.add_argument('--module-file', default=DEFAULT_MODULE_FILE,
                      help='Trainer module read by Trainer and Preflight at run time: a path in the image or gs://.')
  parser.add_argument('--image', default=DEFAULT_IMAGE, help='Container image of every task (kubeflow/Dockerfile).')
  parser.add_argument('--beam-pipeline-args', default=shlex.join(DEFAULT_BEAM_ARGS),
                      help='Beam options for every Beam task, as one shell-quoted string, e.g. '
                           '"--runner=DataflowRunner --project=p --region=europe-west4 --temp_location=gs://b/tmp '
                           '--sdk_container_image=IMAGE". On DataflowRunner without --sdk_container_image, '
                           '--setup_file or --extra_package, --sdk_container_image=<--image> is added: Dataflow '
                           'workers need tfx_preflight.')
  parser.add_argument('--preflight-kwargs', default=None, type=json.loads,
                      help='JSON object of extra Preflight arguments, e.g. \'{"skew": {"mode": "warn"}}\'.')
  parser.add_argument('--train-steps', type=int, default=None)
  parser.add_argument('--eval-steps', type=int, default=None)
  parser.add_argument('--no-gate', dest='enable_gate', action='store_false',
                      help='Run Trainer regardless of the verdict (the report is informational).')
  return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  logging.basicConfig(level=logging.INFO, format='%(message)s')
  args = _parse_args(argv)
  placeholders = [flag for flag, value in (('--pipeline-root', args.pipeline_root), ('--data-root', args.data_root))
                  if 'YOUR_BUCKET' in value]
  if placeholders:
    logging.warning('%s still point at the placeholder bucket: pass real gs:// paths before submitting the job.',
                    ' and '.join(placeholders))
  pipeline = create_demo_pipeline(
      pipeline_root=args.pipeline_root, data_root=args.data_root, module_file=args.module_file,
      beam_pipeline_args=shlex.split(args.beam_pipeline_args), pipeline_name=args.pipeline_name,
      preflight_kwargs=args.preflight_kwargs, train_steps=args.train_steps, eval_steps=args.eval_steps,
      enable_gate=args.enable_gate, image=args.image)
  path = compile_pipeline(pipeline, output_dir=args.output_dir, image=args.image,
                          output_filename=args.output_filename)
  print(f'Compiled {args.pipeline_name} for image {args.image}: {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
