"""Beam options that get tfx_preflight onto Dataflow workers.

Preflight's Beam steps are functions of tfx_preflight that Beam pickles by reference: a Dataflow worker started from
Beam's default image, without the package, fails on the first step. Dataflow workers get it from one of these options;
without any, the pipeline is refused when it is built (the component) or given the image it is compiled with (the
Kubeflow runner), instead of failing on the workers after the job was submitted.
"""

from typing import Any, List, Optional, Sequence

# Beam's options that install tfx_preflight on the workers (`--worker_harness_container_image` is the older name of
# `--sdk_container_image`).
WORKER_PACKAGE_FLAGS = ('--sdk_container_image', '--worker_harness_container_image', '--setup_file',
                        '--extra_package', '--extra_packages')
IMAGE_FLAG = '--sdk_container_image'


def _flag_value(args: Sequence[Any], flag: str) -> Optional[str]:
  """The last value of `flag` in `args` ('--flag=value' or '--flag value'), as Beam's parser keeps the last one."""
  value = None
  strings = [arg for arg in args if isinstance(arg, str)]  # Placeholders are resolved at run time: not known here.
  for i, arg in enumerate(strings):
    if arg.startswith(flag + '='):
      value = arg[len(flag) + 1:]
    elif arg == flag and i + 1 < len(strings):
      value = strings[i + 1]
  return value


def runs_on_dataflow(args: Sequence[Any]) -> bool:
  """Whether `--runner` names Dataflow, the way Beam matches runner names (any case, 'Runner' suffix or not,
  or the class path)."""
  runner = (_flag_value(args, '--runner') or '').rsplit('.', 1)[-1].lower()
  return runner in ('dataflow', 'dataflowrunner')


def ships_the_package(args: Sequence[Any]) -> bool:
  """Whether one of WORKER_PACKAGE_FLAGS is given (with a value)."""
  return any(_flag_value(args, flag) for flag in WORKER_PACKAGE_FLAGS)


def missing_package_message(args: Sequence[Any], where: str) -> Optional[str]:
  """Why `args` would start Dataflow workers without tfx_preflight, or None when they would not."""
  if not runs_on_dataflow(args) or ships_the_package(args):
    return None
  return (f'{where} run on DataflowRunner, but none of {", ".join(WORKER_PACKAGE_FLAGS)} is given: the workers would '
          'start without tfx_preflight and fail on its first step. Add --sdk_container_image=IMAGE with the image '
          'the Kubeflow tasks run (kubeflow/Dockerfile: the TFX image with tfx-preflight), or '
          '--extra_package=tfx_preflight-VERSION.tar.gz (the sdist), or --setup_file=PATH/setup.py '
          '(workers then pip-install the package at start-up) to the beam_pipeline_args.')


def check_worker_package(args: Sequence[Any], where: str) -> None:
  """Raises ValueError when `args` would start Dataflow workers without tfx_preflight."""
  message = missing_package_message(args, where)
  if message:
    raise ValueError(message)


def with_worker_image(args: Sequence[Any], image: str) -> List[Any]:
  """`args` plus `--sdk_container_image=image` when they run on Dataflow without any way to ship the package."""
  if missing_package_message(args, 'beam_pipeline_args') is None:
    return list(args)
  return [*args, f'{IMAGE_FLAG}={image}']
