"""Scale-out proven, not claimed: the statistics and leakage Beam jobs run on Beam's PortableRunner against a local job
service with an external SDK worker pool (`--environment_type=EXTERNAL`, Python workers in separate processes, as on
Flink, Spark and Dataflow), through the CLI's `-- <beam args>` pass-through, and give the same report bytes as the
in-process DirectRunner run."""

import os
import signal
import socket
import subprocess
import sys
import time

import portpicker
import pytest

from tests.helpers import tabular_rows, write_splits
from tfx_preflight import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT_S = 90


def _wait_for_port(port, process, log_path, deadline):
  while time.monotonic() < deadline:
    if process.poll() is not None:
      raise RuntimeError(f'service exited with {process.returncode}: {open(log_path).read()[-2000:]}')
    with socket.socket() as s:
      if s.connect_ex(('localhost', port)) == 0:
        return
    time.sleep(0.2)
  raise TimeoutError(f'nothing listens on port {port} after {START_TIMEOUT_S} s: {open(log_path).read()[-2000:]}')


def _stop(process):
  """The service and every worker it started (its own process group): SIGTERM, then SIGKILL."""
  if process.poll() is None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
      process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      pass
  try:
    os.killpg(process.pid, signal.SIGKILL)  # Workers left in the group, even when the service itself has exited.
  except ProcessLookupError:
    pass
  process.wait(timeout=10)


@pytest.fixture(scope='module')
def portable_services(tmp_path_factory):
  """A local Beam job service and an external SDK worker pool; yields (job port, worker pool port, pool log)."""
  logs = tmp_path_factory.mktemp('services')
  # The pool starts workers with `python` from PATH: this interpreter's, with the package importable.
  env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''),
             PYTHONPATH=os.pathsep.join([os.path.join(ROOT, 'components'), ROOT]), TF_CPP_MIN_LOG_LEVEL='3')
  job_port, pool_port = portpicker.pick_unused_port(), portpicker.pick_unused_port()
  commands = {
      'job_service': [sys.executable, '-m', 'apache_beam.runners.portability.local_job_service_main',
                      f'--port={job_port}'],
      'worker_pool': [sys.executable, '-m', 'apache_beam.runners.worker.worker_pool_main',
                      f'--service_port={pool_port}'],
  }
  started = []
  try:
    deadline = time.monotonic() + START_TIMEOUT_S
    for (name, command), port in zip(commands.items(), (job_port, pool_port)):
      log_path = logs / f'{name}.log'
      with open(log_path, 'wb') as log:
        started.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True))
      _wait_for_port(port, started[-1], log_path, deadline)
    yield job_port, pool_port, logs / 'worker_pool.log'
  finally:
    for process in started:
      _stop(process)


def _check(patterns, out, *beam_args):
  argv = ['check', '--train', patterns['train'], '--eval', patterns['eval'], '--label-key', 'label',
          '--exclude-features', 'id', '--checks', 'skew,leakage', '--out', str(out)]
  return cli.main(argv + (['--', *beam_args] if beam_args else []))


@pytest.mark.slow
def test_portable_runner_with_external_workers_gives_the_in_process_report(portable_services, tmp_path, capsys):
  job_port, pool_port, pool_log = portable_services
  rows = tabular_rows(600, seed=19)
  leaked = [dict(r, id=90_000 + i) for i, r in enumerate(rows[:25])]
  patterns = write_splits(str(tmp_path / 'examples'), {'train': rows[:450], 'eval': rows[450:] + leaked})

  assert _check(patterns, tmp_path / 'direct') == cli.EXIT_BLOCK
  code = _check(patterns, tmp_path / 'portable', '--runner=PortableRunner', f'--job_endpoint=localhost:{job_port}',
                '--environment_type=EXTERNAL', f'--environment_config=localhost:{pool_port}')
  _, err = capsys.readouterr()
  assert code == cli.EXIT_BLOCK, err

  direct = (tmp_path / 'direct' / 'report.json').read_bytes()
  assert (tmp_path / 'portable' / 'report.json').read_bytes() == direct  # Paths in the report are relative.
  assert b'"duplicate_examples": 25' in direct
  for name in ('leakage/duplicates.tsv',):
    assert (tmp_path / 'portable' / name).read_bytes() == (tmp_path / 'direct' / name).read_bytes()
  # The work ran in SDK workers the pool started, not in this process.
  assert 'Starting worker with command' in pool_log.read_text()
