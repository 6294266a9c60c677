"""`make bench`: measures the Preflight gate against its baselines on the same data, in one run.

    python -m bench.run                                  # default sizes 100k, 300k, 1M (2 cores: ~10-15 minutes)
    BENCH_SIZES=100000,1000000,3000000 make bench        # the full scaling run of issue 4 (~40+ minutes)
    python -m bench.run --naive-max-size 0               # also the naive Beam job at every size (slow)
    python -m bench.report bench/results.json            # re-render results.md / results.png
    python -m bench.run --jobs skew_wide --wide-features 10000   # the wide-data skew check alone, at another width

Every job runs in its own process (bench/jobs.py); this parent reads each child's wall time and peak RSS from
wait4(), so numbers do not contaminate each other. Results: bench/results.json (machine, versions, every figure
with its baseline and ratio), bench/results.md (tables) and bench/results.png (time vs size). Working files, data
and logs go to bench/out/ (git-ignored; generated data is cached there by size and seed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from bench import generate, report

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
DEFAULT_SIZES = (100_000, 300_000, 1_000_000)
DEFAULT_IMAGE_SIZE = 2_000
DEFAULT_TIMEOUT_SECONDS = 900
DEFAULT_NAIVE_MAX_SIZE = 300_000
CNN_MODULE = os.path.join(REPO_DIR, 'pipelines', 'modules', 'cnn_trainer.py')
# Leakage implementations that must agree on the counts (and with the injected leak).
LEAKAGE_JOBS = ('leakage', 'leakage_near', 'leakage_history', 'floor', 'floor_tfdata', 'pandas_join', 'naive_beam', 'cli')
# One read pass (issue 19.2): TFDV statistics alone vs statistics + skew + leakage from one read.
ONE_PASS_JOBS = ('statistics_alone', 'statistics_read_pass', 'one_pass')
# Label proxies with the pair search (issue 29.3): the check alone, compared with the leakage job.
LABEL_PROXY_JOBS = ('label_proxy',)
# A pipeline without StatisticsGen (issue 32.2): the gate emitting the statistics, vs statistics_gen + gate.
STATISTICS_OUT_JOBS = ('gate_statistics_out',)
# The same LocalDagRunner pipeline (issue 32.2) ungated with StatisticsGen, and gated by Preflight emitting the
# statistics; at the headline size, on leak-free data (the gate passes, Trainer trains in both), interleaved rounds.
PIPELINE_STATISTICS_JOBS = ('pipeline_statistics_gen', 'pipeline_gated')
ALL_JOBS = LEAKAGE_JOBS + ('statistics_gen', 'skew', 'gate', 'loss', 'skew_wide', 'pipeline_cost') + ONE_PASS_JOBS \
    + LABEL_PROXY_JOBS + STATISTICS_OUT_JOBS + PIPELINE_STATISTICS_JOBS
# Jobs run on the tabular data of every --sizes entry (the others have their own data: images, wide).
PER_SIZE_JOBS = LEAKAGE_JOBS + ('statistics_gen', 'skew', 'gate') + ONE_PASS_JOBS + LABEL_PROXY_JOBS \
    + STATISTICS_OUT_JOBS
# Run at the headline size only (1M, else the largest size below it, else the smallest): each costs a process start
# (~10-30 s of TensorFlow import) and none of them is part of the scaling question.
DEFAULT_HEADLINE_ONLY = ('floor_tfdata', 'cli', 'skew', 'gate', 'leakage_history') + ONE_PASS_JOBS + LABEL_PROXY_JOBS \
    + STATISTICS_OUT_JOBS
# The jobs of the issue-19 targets (leakage job vs fair floor, CLI process vs floor process), of issue 27's
# near-duplicate budget (leakage_near vs leakage) and of issue 32.3's (the gate vs StatisticsGen) run this many times
# at the headline size, in interleaved rounds, and each is reported by its median: one run of each on a shared VM
# varies by +-15%, more than the margin the targets leave.
DEFAULT_REPEATS = 3
REPEATED_JOBS = ('leakage', 'leakage_near', 'floor_tfdata', 'cli', 'statistics_gen', 'gate')
# Measures reported as the median over the repeats.
_REPEATED_MEASURES = ('job_seconds', 'wall_seconds', 'job_cpu_seconds', 'cpu_seconds', 'peak_rss_mb')
_POLL_SECONDS = 0.05
# pipeline_cost: TFX's penguin testdata as shipped (x1, 334 rows) and every row 300 times with noise (~100k rows).
DEFAULT_PIPELINE_REPLICAS = (1, 300)


def _log(message: str) -> None:
  print(f'[bench {time.strftime("%H:%M:%S")}] {message}', flush=True)


def run_job(name: str, args: Dict[str, Any], out_dir: str, tag: str, timeout: float) -> Dict[str, Any]:
  """Runs `bench.jobs NAME` in a fresh process; returns its result plus process wall time and peak RSS."""
  logs = os.path.join(out_dir, 'logs')
  os.makedirs(logs, exist_ok=True)
  result_path = os.path.join(logs, f'{name}-{tag}.json')
  if os.path.exists(result_path):
    os.remove(result_path)
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO_DIR, os.environ.get('PYTHONPATH')])),
             CUDA_VISIBLE_DEVICES='', TF_CPP_MIN_LOG_LEVEL='2', PYTHONWARNINGS='ignore')
  load_before = os.getloadavg()[0]
  started = time.perf_counter()
  with open(os.path.join(logs, f'{name}-{tag}.log'), 'w') as log:
    process = subprocess.Popen([sys.executable, '-m', 'bench.jobs', name, json.dumps(args), result_path],
                               cwd=REPO_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    status, usage, timed_out = _wait(process, timeout)
  wall = time.perf_counter() - started
  measured: Dict[str, Any] = {
      'job': name, 'tag': tag, 'wall_seconds': round(wall, 3),
      # Max RSS of the child or of any of its own waited-for children (Beam workers in multi-process mode).
      'peak_rss_mb': round(usage.ru_maxrss / 1024.0, 1), 'cpu_seconds': round(usage.ru_utime + usage.ru_stime, 2),
      'returncode': os.waitstatus_to_exitcode(status) if not timed_out else None, 'timed_out': timed_out,
      'load_average_before': round(load_before, 2), 'load_average_after': round(os.getloadavg()[0], 2),
      'log': os.path.relpath(os.path.join(logs, f'{name}-{tag}.log'), REPO_DIR),
  }
  if os.path.exists(result_path):
    with open(result_path) as f:
      measured.update(json.load(f))
    measured['job_seconds'] = round(measured['job_seconds'], 3)
  elif not timed_out:
    measured['error'] = _tail(os.path.join(logs, f'{name}-{tag}.log'))
  _log(f'{name:<15} {tag:<14} job {measured.get("job_seconds", float("nan")):8.2f} s  '
       f'process {wall:7.1f} s  peak RSS {measured["peak_rss_mb"]:7.0f} MB'
       + (f'  {measured.get("duplicate_examples")} dup' if name in LEAKAGE_JOBS else '')
       + ('  TIMEOUT' if timed_out else '') + ('  FAILED' if measured.get('error') else ''))
  return measured


def _wait(process: subprocess.Popen, timeout: float):
  """wait4() the child (rusage of that child only), killing its process group after `timeout` seconds."""
  deadline = time.monotonic() + timeout
  while True:
    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
    if pid:
      process.returncode = os.waitstatus_to_exitcode(status)
      return status, usage, False
    if time.monotonic() > deadline:
      os.killpg(process.pid, signal.SIGKILL)  # The group of the child started above, nothing else.
      _, status, usage = os.wait4(process.pid, 0)
      process.returncode = -9
      return status, usage, True
    time.sleep(_POLL_SECONDS)


def _tail(path: str, lines: int = 15) -> str:
  with open(path, errors='replace') as f:
    return ''.join(f.readlines()[-lines:])


def _generate(kind: str, size: int, leak_rate: float, seed: int, data_root: str) -> Dict[str, Any]:
  """Generates (or reuses) a data set in a child process, so the parent never imports TensorFlow."""
  root = generate.dataset_dir(data_root, kind, size, leak_rate, seed)
  manifest_path = os.path.join(root, generate.MANIFEST)
  if not os.path.exists(manifest_path):
    _log(f'generating {kind} data, {size} examples -> {os.path.relpath(root, REPO_DIR)}')
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', TF_CPP_MIN_LOG_LEVEL='2', PYTHONWARNINGS='ignore')
    subprocess.run([sys.executable, '-m', 'bench.generate', '--data-root', data_root, '--kind', kind, '--size',
                    str(size), '--leak-rate', str(leak_rate), '--seed', str(seed)], cwd=REPO_DIR, env=env,
                   check=True, stdout=subprocess.DEVNULL)
  with open(manifest_path) as f:
    return json.load(f)


def _generate_wide(num_features: int, rows: int, seed: int, data_root: str) -> Dict[str, Any]:
  """Generates (or reuses) the wide clean split in a child process, as _generate does."""
  root = generate.wide_dataset_dir(data_root, num_features, rows, seed)
  manifest_path = os.path.join(root, generate.MANIFEST)
  if not os.path.exists(manifest_path):
    _log(f'generating wide data, {num_features} features x {rows} rows per split -> {os.path.relpath(root, REPO_DIR)}')
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', TF_CPP_MIN_LOG_LEVEL='2', PYTHONWARNINGS='ignore')
    subprocess.run([sys.executable, '-m', 'bench.generate', '--data-root', data_root, '--kind', generate.WIDE,
                    '--features', str(num_features), '--rows', str(rows), '--seed', str(seed)], cwd=REPO_DIR,
                   env=env, check=True, stdout=subprocess.DEVNULL)
  with open(manifest_path) as f:
    return json.load(f)


def machine_info() -> Dict[str, Any]:
  cpu_model = platform.processor() or 'unknown'
  try:
    with open('/proc/cpuinfo') as f:
      models = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
    cpu_model = models[0] if models else cpu_model
  except OSError:
    pass
  import psutil
  return {'cores': os.cpu_count(), 'cores_available': len(os.sched_getaffinity(0)),
          'memory_gb': round(psutil.virtual_memory().total / 2 ** 30, 1), 'cpu_model': cpu_model,
          'os': f'{platform.system()} {platform.release()}', 'python': platform.python_version()}


def versions() -> Dict[str, str]:
  from importlib import metadata
  names = {'tfx': 'tfx', 'apache-beam': 'beam', 'tensorflow-data-validation': 'tfdv', 'tfx-bsl': 'tfx_bsl',
           'tensorflow': 'tensorflow', 'pyarrow': 'pyarrow', 'pandas': 'pandas', 'numpy': 'numpy'}
  found = {}
  for package, key in names.items():
    try:
      found[key] = metadata.version(package)
    except metadata.PackageNotFoundError:
      found[key] = 'not installed'
  found['python'] = platform.python_version()
  return found


def run(sizes: Sequence[int], out_dir: str, results_dir: str, seed: int, leak_rate: float, image_size: int,
        runner_args: Sequence[str], jobs: Sequence[str], timeout: float, naive_max_size: Optional[int],
        headline_only: Sequence[str] = DEFAULT_HEADLINE_ONLY, wide_features: int = generate.DEFAULT_WIDE_FEATURES,
        wide_rows: int = generate.DEFAULT_WIDE_ROWS,
        pipeline_replicas: Sequence[int] = DEFAULT_PIPELINE_REPLICAS, repeats: int = DEFAULT_REPEATS) -> Dict[str, Any]:
  data_root = os.path.join(out_dir, 'data')
  started = time.time()
  load_start = os.getloadavg()
  runs: List[Dict[str, Any]] = []
  manifests: Dict[str, Dict[str, Any]] = {}
  common = {'runner_args': list(runner_args)}

  headline = headline_size(sizes)
  for size in sizes:
    jobs_here = [j for j in jobs if (size == headline or j not in headline_only) and j in PER_SIZE_JOBS]
    if not jobs_here:
      continue  # No job reads the tabular data (e.g. --jobs skew_wide): do not generate it.
    manifest = _generate(generate.TABULAR, size, leak_rate, seed, data_root)
    manifests[str(size)] = manifest
    tag = f'n{size}'
    work = os.path.join(out_dir, 'work', tag)
    leakage_jobs = [name for name in LEAKAGE_JOBS if name in jobs_here]
    if 'naive_beam' in leakage_jobs and naive_max_size and size > naive_max_size:
      _log(f'naive_beam skipped at {size} (> --naive-max-size {naive_max_size})')
      leakage_jobs.remove('naive_beam')
    rounds = repeats if size == headline else 1
    runs += _interleaved_runs(leakage_jobs, rounds,
                              lambda name, manifest=manifest, work=work: {**common, 'manifest': manifest,
                                                                          'output_dir': os.path.join(work, name)},
                              size, out_dir, tag, timeout)
    runs += _statistics_runs(jobs_here, size, rounds, manifest, common, work, out_dir, tag, timeout)
    for name in ONE_PASS_JOBS + LABEL_PROXY_JOBS + STATISTICS_OUT_JOBS:
      if name in jobs_here:
        runs.append({'size': size, 'kind': generate.TABULAR, **run_job(
            name, {**common, 'manifest': manifest, 'output_dir': os.path.join(work, name)}, out_dir, tag, timeout)})

  runs += _pipeline_statistics_runs([j for j in PIPELINE_STATISTICS_JOBS if j in jobs], headline, seed, data_root,
                                    manifests, common, out_dir, timeout, repeats)

  if 'loss' in jobs:
    if os.path.exists(CNN_MODULE):
      manifest = _generate(generate.IMAGE, image_size, leak_rate, seed, data_root)
      manifests[f'image-{image_size}'] = manifest
      tag = f'image-n{image_size}'
      work = os.path.join(out_dir, 'work', tag)
      statistics_dir = os.path.join(work, 'statistics')
      runs.append({'size': image_size, 'kind': generate.IMAGE, **run_job(
          'statistics_gen', {**common, 'manifest': manifest, 'output_dir': statistics_dir}, out_dir, tag, timeout)})
      runs.append({'size': image_size, 'kind': generate.IMAGE, **run_job(
          'loss', {**common, 'manifest': manifest, 'statistics_dir': statistics_dir, 'module_file': CNN_MODULE,
                   'output_dir': os.path.join(work, 'loss')}, out_dir, tag, timeout)})
    else:
      _log(f'loss check skipped: {os.path.relpath(CNN_MODULE, REPO_DIR)} does not exist')

  if 'skew_wide' in jobs:
    # One width only (--wide-features): the question is seconds vs minutes at thousands of features, not scaling.
    manifest = _generate_wide(wide_features, wide_rows, seed, data_root)
    manifests[f'wide-{wide_features}'] = manifest
    tag = f'wide-f{wide_features}'
    runs.append({'size': manifest['size'], 'kind': generate.WIDE, **run_job(
        'skew_wide', {**common, 'manifest': manifest, 'output_dir': os.path.join(out_dir, 'work', tag, 'statistics')},
        out_dir, tag, timeout)})

  if 'pipeline_cost' in jobs:
    # The gate inside a LocalDagRunner pipeline: MLMD wall time of Preflight vs StatisticsGen in the same run.
    for replicate in pipeline_replicas:
      tag = f'penguin-x{replicate}'
      measured = run_job('pipeline_cost', {'replicate': replicate, 'seed': seed, 'data_root': data_root,
                                           'output_dir': os.path.join(out_dir, 'work', tag)}, out_dir, tag, timeout)
      runs.append({'size': measured.get('num_examples', replicate), 'kind': 'penguin_pipeline', **measured})

  results = {
      'machine': machine_info(), 'versions': versions(),
      'settings': {'sizes': list(sizes), 'image_size': image_size, 'seed': seed, 'leak_rate': leak_rate,
                   'eval_fraction': generate.EVAL_FRACTION, 'runner_args': list(runner_args),
                   'timeout_seconds': timeout, 'naive_max_size': naive_max_size, 'headline_size': headline,
                   'headline_only_jobs': list(headline_only), 'wide_features': wide_features,
                   'wide_rows_per_split': wide_rows, 'pipeline_replicas': list(pipeline_replicas),
                   'repeats': repeats, 'repeated_jobs': list(REPEATED_JOBS)},
      'load_average': {'start': [round(x, 2) for x in load_start], 'end': [round(x, 2) for x in os.getloadavg()]},
      'total_seconds': round(time.time() - started, 1),
      'data': {key: {k: m[k] for k in ('kind', 'size', 'num_examples', 'num_files', 'leaked_eval_rows',
                                       'label_conflicts', 'bytes_on_disk')} for key, m in manifests.items()},
      'notes': [],
      'runs': runs,
  }
  results.update(report.figures(results))
  report.write(results, results_dir)
  return results


def _interleaved_runs(names: Sequence[str], rounds: int, args_of: Callable[[str], Dict[str, Any]], size: int,
                      out_dir: str, tag: str, timeout: float) -> List[Dict[str, Any]]:
  """The jobs `names` in interleaved rounds (a slow spell of the machine hits every job alike): the repeated ones
  (REPEATED_JOBS) every round, the others in the first only; each reported by its median."""
  measured: Dict[str, List[Dict[str, Any]]] = {name: [] for name in names}
  for round_index in range(rounds):
    for name in names:
      if round_index and name not in REPEATED_JOBS:
        continue
      measured[name].append(run_job(name, args_of(name), out_dir,
                                    tag + (f'-r{round_index + 1}' if rounds > 1 else ''), timeout))
  return [{'size': size, 'kind': generate.TABULAR, **median_run(runs)} for runs in measured.values()]


def _statistics_runs(jobs_here: Sequence[str], size: int, rounds: int, manifest: Dict[str, Any],
                     common: Dict[str, Any], work: str, out_dir: str, tag: str, timeout: float) -> List[Dict[str, Any]]:
  """StatisticsGen, then the jobs given its statistics (skew, gate), interleaved like the leakage jobs: each gate run
  on the statistics of its round."""
  given_statistics = [name for name in ('skew', 'gate') if name in jobs_here]
  if 'statistics_gen' not in jobs_here and not given_statistics:
    return []
  statistics_dir = os.path.join(work, 'statistics')

  def args_of(name: str) -> Dict[str, Any]:
    if name == 'statistics_gen':
      return {**common, 'manifest': manifest, 'output_dir': statistics_dir}
    return {**common, 'manifest': manifest, 'statistics_dir': statistics_dir, 'output_dir': os.path.join(work, name)}

  return _interleaved_runs(['statistics_gen', *given_statistics], rounds, args_of, size, out_dir, tag, timeout)


def _pipeline_statistics_runs(jobs: Sequence[str], size: int, seed: int, data_root: str,
                              manifests: Dict[str, Dict[str, Any]], common: Dict[str, Any], out_dir: str,
                              timeout: float, repeats: int) -> List[Dict[str, Any]]:
  """The gated pipeline without StatisticsGen and the ungated one with it, in interleaved rounds, by their medians.
  Their data has no leak: a blocked gate would skip Trainer and make the gated pipeline look cheap."""
  if not jobs:
    return []
  manifest = _generate(generate.TABULAR, size, 0.0, seed, data_root)
  manifests[f'{size}-no-leak'] = manifest
  tag = f'n{size}-no-leak'
  measured: Dict[str, List[Dict[str, Any]]] = {name: [] for name in jobs}
  for round_index in range(repeats):
    # A B, B A, ...: each pipeline runs first as often as second, so a machine that speeds up or slows down over the
    # rounds (minutes each) does not favour the one that always runs second.
    for name in (jobs if round_index % 2 == 0 else list(reversed(jobs))):
      measured[name].append(run_job(name, {**common, 'manifest': manifest,
                                           'output_dir': os.path.join(out_dir, 'work', tag, name)},
                                    out_dir, tag + (f'-r{round_index + 1}' if repeats > 1 else ''), timeout))
  return [{'size': size, 'kind': report.PIPELINE_KIND, **median_run(measured[name])} for name in jobs]


def median_run(repeats: List[Dict[str, Any]]) -> Dict[str, Any]:
  """One run standing for several of the same job: the run of median job time, with each measure replaced by its
  median over the runs and every run's measures kept under 'repeats'. A single run is returned as it is."""
  if len(repeats) == 1:
    return repeats[0]
  ok = [r for r in repeats if r.get('returncode') == 0 and r.get('job_seconds') is not None]
  if len(ok) < len(repeats):
    return next(r for r in repeats if r not in ok)  # A failed repeat is reported as the failure it is.
  chosen = dict(sorted(ok, key=lambda r: r['job_seconds'])[len(ok) // 2])
  for measure in _REPEATED_MEASURES:
    values = sorted(r[measure] for r in ok if r.get(measure) is not None)
    if len(values) == len(ok):
      chosen[measure] = values[len(values) // 2] if len(values) % 2 else round(
          (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2, 3)
  chosen['repeats'] = [{m: r.get(m) for m in _REPEATED_MEASURES} for r in ok]
  return chosen


def headline_size(sizes: Sequence[int]) -> int:
  at_most_1m = [s for s in sizes if s <= 1_000_000]
  return max(at_most_1m) if at_most_1m else min(sizes)


def _sizes(text: str) -> List[int]:
  try:
    sizes = [int(float(s)) for s in text.replace(' ', '').split(',') if s]
  except ValueError:
    raise argparse.ArgumentTypeError(f'--sizes must be comma-separated example counts, e.g. 100000,1000000. '
                                     f'Got {text!r} instead.') from None
  if not sizes or min(sizes) < 10:
    raise argparse.ArgumentTypeError(f'--sizes needs at least one size of 10 or more examples. Got {text!r}.')
  return sorted(set(sizes))


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sizes', type=_sizes, default=_sizes(os.environ.get('BENCH_SIZES') or
                                                             ','.join(map(str, DEFAULT_SIZES))),
                      help='comma-separated example counts (train + eval); default 100000,300000,1000000')
  parser.add_argument('--image-size', type=int, default=DEFAULT_IMAGE_SIZE, help='image examples for the loss check')
  parser.add_argument('--leak-rate', type=float, default=generate.DEFAULT_LEAK_RATE)
  parser.add_argument('--seed', type=int, default=generate.DEFAULT_SEED)
  parser.add_argument('--jobs', default=','.join(ALL_JOBS), help=f'subset of {",".join(ALL_JOBS)}')
  parser.add_argument('--runner-args', default='--runner=DirectRunner',
                      help='Beam pipeline args for every Beam job (ours and the baselines alike), space-separated')
  parser.add_argument('--timeout', type=float, default=DEFAULT_TIMEOUT_SECONDS, help='per job, seconds')
  parser.add_argument('--naive-max-size', type=int, default=DEFAULT_NAIVE_MAX_SIZE,
                      help='skip the naive per-element Beam baseline above this size (it alone would take most of '
                           'the 15-minute budget at 1M on 2 cores); 0 runs it at every size')
  parser.add_argument('--headline-only', default=','.join(DEFAULT_HEADLINE_ONLY),
                      help='jobs run at the headline size only (empty: every job at every size)')
  parser.add_argument('--wide-features', type=int, default=generate.DEFAULT_WIDE_FEATURES,
                      help='skew_wide: number of random float features (run at this one width)')
  parser.add_argument('--wide-rows', type=int, default=generate.DEFAULT_WIDE_ROWS,
                      help='skew_wide: examples per split (train and eval)')
  parser.add_argument('--pipeline-replicas', default=','.join(map(str, DEFAULT_PIPELINE_REPLICAS)),
                      help='pipeline_cost: copies of every penguin testdata row (1 = the testdata as shipped)')
  parser.add_argument('--repeats', type=int, default=DEFAULT_REPEATS,
                      help=f'runs of {", ".join(REPEATED_JOBS)} at the headline size, interleaved; each is reported by '
                           'its median')
  parser.add_argument('--out-dir', default=os.path.join(BENCH_DIR, 'out'))
  parser.add_argument('--results-dir', default=BENCH_DIR, help='where results.json/.md/.png are written')
  args = parser.parse_args(argv)
  jobs = [j for j in args.jobs.split(',') if j]
  unknown = sorted(set(jobs) - set(ALL_JOBS))
  if unknown:
    parser.error(f'unknown job(s) {", ".join(unknown)}; known: {", ".join(ALL_JOBS)}')
  if args.repeats < 1:
    parser.error(f'--repeats must be at least 1. Got {args.repeats}.')
  if args.wide_features < 1 or args.wide_rows < 2:
    parser.error(f'--wide-features must be at least 1 and --wide-rows at least 2. Got {args.wide_features} and '
                 f'{args.wide_rows}.')
  _log(f'sizes {args.sizes}, jobs {",".join(jobs)}, results -> {args.results_dir}')
  results = run(args.sizes, args.out_dir, args.results_dir, args.seed, args.leak_rate, args.image_size,
                args.runner_args.split(), jobs, args.timeout, args.naive_max_size or None,
                [j for j in args.headline_only.split(',') if j], args.wide_features, args.wide_rows,
                [int(r) for r in args.pipeline_replicas.split(',') if r], args.repeats)
  _log(f'done in {results["total_seconds"]:.0f} s: {os.path.join(args.results_dir, report.RESULTS_MD)}')
  return results


if __name__ == '__main__':
  main()
