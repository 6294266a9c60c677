"""One benchmark job per process: `python -m bench.jobs JOB ARGS_JSON RESULT_JSON`.

Each job runs in a fresh interpreter so its wall time and peak RSS are its own (the parent reads the child's rusage
from wait4). The child times only the job itself (`job_seconds`, after imports) and records the RSS its imports
already cost (`import_rss_mb`); the parent adds the whole process's wall time and peak RSS.

Every leakage implementation returns the same numbers (`duplicate_examples`, `label_conflicts`): the runner checks
they agree with each other and with the leak the generator injected, so a fast wrong answer cannot win.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from typing import Any, Callable, Dict, List, Mapping

_STARTED = time.perf_counter()
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402

from bench import generate  # noqa: E402

TRAIN, EVAL = generate.TRAIN, generate.EVAL
JOBS: Dict[str, Callable[[Mapping[str, Any]], Dict[str, Any]]] = {}
# Rows per decoded RecordBatch in the single-process floor (TFXIO's default desired batch size is in the same range).
FLOOR_BATCH_SIZE = 8192


def job(name: str):
  def register(fn):
    JOBS[name] = fn
    return fn
  return register


def _rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


_MARKS: Dict[str, float] = {}


def _begin() -> float:
  """Marks the end of a job's imports and set-up: what the process costs before the job does any work."""
  _MARKS['setup_seconds'] = time.perf_counter() - _STARTED
  _MARKS['setup_rss_mb'] = _rss_mb()
  _MARKS['setup_cpu_seconds'] = time.process_time()
  return time.perf_counter()


def _make_pipeline(runner_args: List[str]):
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  return lambda: beam.Pipeline(options=PipelineOptions(list(runner_args)))


def _feature_names(manifest: Mapping[str, Any]) -> List[str]:
  if manifest['kind'] == generate.TABULAR:
    return sorted((*generate.FLOAT_KEYS, generate.STRING_KEY))
  return [generate.PIXELS_KEY]


def _files(pattern: str) -> List[str]:
  import glob
  return sorted(glob.glob(pattern))


def _count_cross(train_hashes: np.ndarray, eval_hashes: np.ndarray, train_labels: np.ndarray,
                 eval_labels: np.ndarray) -> Dict[str, int]:
  """Cross-split counts from per-example 64-bit keys: eval examples whose content occurs in train (with
  multiplicity) and those among them whose label differs from some train copy's label."""
  in_train = np.isin(eval_hashes, train_hashes)
  pairs = np.unique(np.stack([train_hashes, train_labels.astype(np.uint64)], axis=1), axis=0)
  eval_pairs = np.stack([eval_hashes[in_train], eval_labels[in_train].astype(np.uint64)], axis=1)
  # A leaked eval example conflicts when train holds its content with another label.
  train_content_labels: Dict[int, set] = {}
  for content, label in pairs[np.isin(pairs[:, 0], eval_hashes[in_train])]:
    train_content_labels.setdefault(int(content), set()).add(int(label))
  conflicts = sum(1 for content, label in eval_pairs if train_content_labels[int(content)] - {int(label)})
  return {'duplicate_examples': int(in_train.sum()), 'unique_duplicates': int(len(np.unique(eval_hashes[in_train]))),
          'label_conflicts': int(conflicts)}


# ---------------------------------------------------------------------------------------------------------------
# Leakage: ours and three baselines.


@job('leakage')
def leakage_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """tfx_preflight.checks.leakage.check.check_leakage on DirectRunner, as the component runs it, exact copies only (the baseline
  of the other leakage jobs; `leakage_near` runs the defaults, near copies included)."""
  from tfx_preflight.checks.leakage import check as leakage
  from tfx_preflight.config import LeakageConfig
  manifest = args['manifest']
  config = LeakageConfig(**{'near_duplicates': False, **args.get('config', {})})
  started = _begin()
  result = leakage.check_leakage(manifest['examples'], TRAIN, [EVAL], config, _make_pipeline(args['runner_args']),
                                 args['output_dir'], generate.LABEL_KEY).to_dict()
  seconds = time.perf_counter() - started
  cross = (result.get('cross_split') or [{}])[0]
  near = (result.get('near_duplicates') or [{}])[0]
  return {'job_seconds': seconds, 'status': result.get('status'), 'skip_reason': result.get('reason'),
          'num_shards': _hash_shards(manifest, config),
          'duplicate_examples': cross.get('duplicate_examples'), 'label_conflicts': cross.get('label_conflicts'),
          'unique_duplicates': cross.get('unique_duplicates'),
          'near_duplicate_examples': near.get('duplicate_examples'), 'near_buckets': result.get('near_buckets')}


def _hash_shards(manifest: Mapping[str, Any], config: Any) -> Any:
  """How many hash shards the leakage job joined (its plan, rebuilt after the clock stopped), for the per-shard
  memory bound in the report."""
  from tfx_preflight.checks.leakage import check as leakage
  return leakage.make_plan(manifest['examples'], TRAIN, [EVAL], config, generate.LABEL_KEY).num_shards


@job('leakage_near')
def leakage_near_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """The leakage job with its defaults: near-duplicates on (LSH candidates verified by distance, and the held-out
  reference sample of train that measures their chance rate), for the cost ratio to exact-only."""
  measured = leakage_job({**args, 'config': {**args.get('config', {}), 'near_duplicates': True}})
  return measured


# Stored train hashes of earlier runs per example of the data, for the leakage_history job (issue 27: 1M new examples
# against 10M stored hashes).
HISTORY_MULTIPLE = 10


def _write_stored_hashes(directory: str, count: int, plan: Any, seed: int) -> None:
  """A train_hashes directory of `count` random 128-bit hashes (16 shards), as a blessed run would have saved it."""
  from tfx_preflight.checks.leakage import history
  rng = np.random.default_rng(seed)
  staging = history.staging_dir(directory)
  os.makedirs(staging, exist_ok=True)
  for shard, part in enumerate(np.array_split(np.arange(count), 16)):
    with open(os.path.join(staging, history.shard_name(shard)), 'wb') as f:
      f.write(history.to_npy(rng.integers(0, 2**64 - 1, size=(len(part), 2), dtype=np.uint64)))
  history.publish(staging, directory, True, count, plan.exclude, plan.label_key, ())


@job('leakage_history')
def leakage_history_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """The leakage job with eval also joined against HISTORY_MULTIPLE x the data's size of stored train hashes of
  earlier runs (history.py), for the cost ratio to 'leakage'; the stored hashes are written before the clock starts."""
  import dataclasses

  from tfx_preflight.checks.leakage import check as leakage
  from tfx_preflight.checks.leakage import history, history_findings, leakage_beam
  from tfx_preflight.config import LeakageConfig
  from tfx_preflight.inputs import read_pass
  manifest = args['manifest']
  config = LeakageConfig(**args.get('config', {}))
  plan = leakage.make_plan(manifest['examples'], TRAIN, [EVAL], config, generate.LABEL_KEY)
  stored_dir = os.path.join(args['output_dir'], 'stored')
  stored_count = HISTORY_MULTIPLE * int(manifest['size'])
  _write_stored_hashes(stored_dir, stored_count, plan, seed=7)
  stored = history.load(stored_dir)
  plan = dataclasses.replace(plan, history_files=tuple((0, f) for f in stored.files), history_dirs=(stored_dir,))
  started = _begin()
  part = leakage_beam.LeakageReadPart(plan, args['output_dir'], (stored,))
  request = read_pass.PassRequest(examples=manifest['examples'], splits=plan.splits, files=plan.files,
                                  parts={'leakage': part})
  counts = read_pass.run_pass(request, _make_pipeline(args['runner_args'])).parts['leakage']
  result = history_findings.with_history(leakage.summarize(counts, plan, config, args['output_dir']), counts, plan,
                                         (stored,), config).to_dict()
  seconds = time.perf_counter() - started
  cross = (result.get('cross_split') or [{}])[0]
  return {'job_seconds': seconds, 'status': result.get('status'), 'stored_hashes': stored_count,
          'num_shards': plan.num_shards, 'duplicate_examples': cross.get('duplicate_examples'),
          'label_conflicts': cross.get('label_conflicts'), 'unique_duplicates': cross.get('unique_duplicates'),
          'history_duplicate_examples': (result.get('history') or [{}])[0].get('duplicate_examples')}


@job('pandas_join')
def pandas_join_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """Baseline (a): everything in memory: Parquet -> pandas, hash each row, hash join eval to train."""
  import pandas as pd
  manifest = args['manifest']
  features = _feature_names(manifest)
  started = _begin()
  frames = {split: pd.read_parquet(manifest['parquet'][split]) for split in (TRAIN, EVAL)}
  hashes = {split: pd.util.hash_pandas_object(frame[features], index=False) for split, frame in frames.items()}
  train = pd.DataFrame({'h': hashes[TRAIN].values, 'train_label': frames[TRAIN][generate.LABEL_KEY].values})
  evals = pd.DataFrame({'h': hashes[EVAL].values, 'label': frames[EVAL][generate.LABEL_KEY].values,
                        'row': np.arange(len(frames[EVAL]))})
  joined = evals.merge(train.drop_duplicates(), on='h', how='inner')
  conflict_rows = joined.loc[joined['label'] != joined['train_label'], 'row'].nunique()
  seconds = time.perf_counter() - started
  return {'job_seconds': seconds, 'duplicate_examples': int(joined['row'].nunique()),
          'unique_duplicates': int(joined['h'].nunique()), 'label_conflicts': int(conflict_rows)}


def _floor(manifest: Mapping[str, Any], read_batches: Callable[[str], Any]) -> Dict[str, Any]:
  from tfx_preflight.inputs import hashing
  features = _feature_names(manifest)
  keys: Dict[str, List[np.ndarray]] = {TRAIN: [], EVAL: []}
  labels: Dict[str, List[np.ndarray]] = {TRAIN: [], EVAL: []}
  rows = 0
  for split in (TRAIN, EVAL):
    for path in _files(manifest['examples'][split]):
      for batch in read_batches(path):
        hashes = hashing.hash_batch(batch, features)
        keys[split].append(hashes[:, 0] ^ (hashes[:, 1] * np.uint64(0x9e3779b97f4a7c15)))
        labels[split].append(batch.column(generate.LABEL_KEY).flatten().to_numpy())
        rows += batch.num_rows
  counts = _count_cross(np.concatenate(keys[TRAIN]), np.concatenate(keys[EVAL]), np.concatenate(labels[TRAIN]),
                        np.concatenate(labels[EVAL]))
  return {**counts, 'rows': rows}


@job('floor')
def floor_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """Baseline (b): one process reads every file with tfx_preflight.inputs.records' reader (the leakage job's own read path:
  gunzip, TFRecord framing, CRCs), decodes batches to Arrow with tfx-bsl and hashes them with hashing.hash_batch."""
  from tfx_preflight.inputs import records
  started = _begin()
  result = _floor(args['manifest'], lambda path: (b for _, b in records.iter_record_batches(path, FLOOR_BATCH_SIZE)))
  return {'job_seconds': time.perf_counter() - started, **result}


@job('floor_tfdata')
def floor_tfdata_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """Baseline (b'): the same, but records read by TensorFlow's C++ TFRecord reader (the fastest reader at hand) and
  decoded as fast as tfx-bsl goes (`records.decode_examples`: 1,024 records per decoder call, as the leakage job)."""
  import tensorflow as tf
  from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

  from tfx_preflight.inputs import records as preflight_records
  decoder = ExamplesToRecordBatchDecoder()

  def read(path: str):
    dataset = tf.data.TFRecordDataset(path, compression_type='GZIP', buffer_size=8 << 20).batch(FLOOR_BATCH_SIZE)
    for records in dataset.as_numpy_iterator():
      yield preflight_records.decode_examples(decoder, list(records))

  started = _begin()
  result = _floor(args['manifest'], read)
  return {'job_seconds': time.perf_counter() - started, **result}


@job('cli')
def cli_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """The user's view: `tfx-preflight check --checks leakage` end to end in this process (TensorFlow, TFX and Beam
  imports included, report written), compared by process wall time with the floor's process."""
  from tfx_preflight import cli
  manifest = args['manifest']
  started = _begin()
  code = cli.main(['check', '--train', manifest['examples'][TRAIN], '--eval', manifest['examples'][EVAL],
                   '--label-key', generate.LABEL_KEY, '--checks', 'leakage', '--out', args['output_dir'],
                   '--', *args['runner_args']])
  seconds = time.perf_counter() - started
  if code not in (0, 1):
    raise RuntimeError(f'tfx-preflight check exited {code}')
  with open(os.path.join(args['output_dir'], 'report.json')) as f:
    leakage = json.load(f)['checks']['leakage']
  cross = (leakage.get('cross_split') or [{}])[0]
  near = (leakage.get('near_duplicates') or [{}])[0]  # Its defaults compare near copies too.
  return {'job_seconds': seconds, 'status': leakage.get('status'), 'exit_code': code,
          'near_duplicate_examples': near.get('duplicate_examples'),
          'duplicate_examples': cross.get('duplicate_examples'), 'label_conflicts': cross.get('label_conflicts'),
          'unique_duplicates': cross.get('unique_duplicates')}


def _naive_key(record: bytes, features: List[str]):
  """Parses one tf.Example in Python and hashes its features' serialized values (one object per example)."""
  import hashlib

  from tensorflow.core.example import example_pb2
  example = example_pb2.Example.FromString(record)
  digest = hashlib.blake2b(digest_size=16)
  feature_map = example.features.feature
  for name in features:
    digest.update(name.encode())
    digest.update(feature_map[name].SerializeToString())
  label = feature_map[generate.LABEL_KEY].int64_list.value
  return digest.hexdigest(), int(label[0]) if label else None


@job('naive_beam')
def naive_beam_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """Baseline (c): the obvious Beam job: ReadFromTFRecord, parse each tf.Example in Python, key by a hash,
  CoGroupByKey train with eval, count."""
  import apache_beam as beam
  from tensorflow.core.example import example_pb2  # noqa: F401  (imports TF before the clock starts, as for TFDV)
  manifest = args['manifest']
  features = _feature_names(manifest)
  output = os.path.join(args['output_dir'], 'counts')

  def count(element):
    _, grouped = element
    train_labels, eval_labels = list(grouped[TRAIN]), list(grouped[EVAL])
    if not train_labels or not eval_labels:
      return []
    conflicts = sum(1 for label in eval_labels if set(train_labels) - {label})
    return [(len(eval_labels), 1, conflicts)]

  started = _begin()
  with _make_pipeline(args['runner_args'])() as p:
    keyed = {}
    for split in (TRAIN, EVAL):
      keyed[split] = (p | f'Read[{split}]' >> beam.io.ReadFromTFRecord(manifest['examples'][split])
                      | f'ParseAndHash[{split}]' >> beam.Map(_naive_key, features))
    _ = (keyed | 'Join' >> beam.CoGroupByKey() | 'Count' >> beam.FlatMap(count)
         | 'Sum' >> beam.CombineGlobally(lambda rows: tuple(map(sum, zip(*rows))) or (0, 0, 0))
         | 'Write' >> beam.Map(lambda t: _write_json(output, t)))
  seconds = time.perf_counter() - started
  with open(output) as f:
    duplicates, unique, conflicts = json.load(f)
  return {'job_seconds': seconds, 'duplicate_examples': duplicates, 'unique_duplicates': unique,
          'label_conflicts': conflicts}


def _write_json(path: str, value: Any) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(list(value), f)


# ---------------------------------------------------------------------------------------------------------------
# Statistics, skew, the whole gate, loss.


@job('statistics_gen')
def statistics_gen_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """The real StatisticsGen executor (TFDV GenerateStatistics over every split), as a pipeline runs it."""
  from tfx.components.statistics_gen import executor as statistics_gen_executor
  from tfx.dsl.components.base import base_beam_executor
  from tfx.types import artifact_utils, standard_artifacts
  manifest = args['manifest']
  examples = standard_artifacts.Examples()
  examples.uri = manifest['root']
  examples.split_names = artifact_utils.encode_split_names([TRAIN, EVAL])
  statistics = standard_artifacts.ExampleStatistics()
  statistics.uri = args['output_dir']
  executor = statistics_gen_executor.Executor(
      base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=args['runner_args']))
  started = _begin()
  executor.Do({'examples': [examples]}, {'statistics': [statistics]}, {'exclude_splits': '[]'})
  return {'job_seconds': time.perf_counter() - started, 'statistics_dir': args['output_dir']}


def _load_statistics(statistics_dir: str):
  import tensorflow_data_validation as tfdv
  return {split: tfdv.load_stats_binary(os.path.join(statistics_dir, f'Split-{split}', 'FeatureStats.pb'))
          for split in (TRAIN, EVAL)}


@job('skew')
def skew_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """tfx_preflight.checks.skew.check.check_skew with StatisticsGen's statistics supplied (loading them included)."""
  from tfx_preflight.checks.skew import check as skew
  from tfx_preflight.config import SkewConfig
  started = _begin()
  statistics = _load_statistics(args['statistics_dir'])
  result = skew.check_skew(statistics, TRAIN, [EVAL], SkewConfig(), None, generate.LABEL_KEY).to_dict()
  return {'job_seconds': time.perf_counter() - started, 'status': result.get('status'),
          'skip_reason': result.get('reason'), 'findings': len(result.get('findings', []))}


@job('skew_wide')
def skew_wide_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """Wide data (issue 13): TFDV statistics of both splits in one Beam pipeline (the TFDV GenerateStatistics transform
  StatisticsGen runs), then tfx_preflight.checks.skew.check.check_skew on them, timed apart: in a pipeline the statistics come from
  StatisticsGen, so the skew check's own cost is `skew_seconds`. The data is a clean random split: it must pass."""
  from bench import tfdv_statistics
  from tfx_preflight.checks.skew import check as skew
  from tfx_preflight.config import SkewConfig
  from tfx_preflight.inputs import statistics
  manifest = args['manifest']
  statistics.tfdv()  # TensorFlow and TFDV imported before the clock starts, as for the other jobs.
  started = _begin()
  stats = tfdv_statistics.generate_statistics(manifest['examples'], _make_pipeline(args['runner_args']),
                                              args['output_dir'])
  statistics_seconds = time.perf_counter() - started
  statistics_peak_rss_mb = _rss_mb()  # Peak so far: setup + statistics; the skew check's share is what comes after.
  skew_started = time.perf_counter()
  result = skew.check_skew(stats, TRAIN, [EVAL], SkewConfig(), None, generate.LABEL_KEY).to_dict()
  skew_seconds = time.perf_counter() - skew_started
  findings = result.get('findings', [])
  testing = result.get('multiple_testing', {}).get(EVAL, {})
  return {'job_seconds': time.perf_counter() - started, 'statistics_seconds': statistics_seconds,
          'skew_seconds': skew_seconds, 'statistics_peak_rss_mb': statistics_peak_rss_mb, 'status': result.get('status'), 'num_features': manifest['num_features'],
          'rows_per_split': manifest['rows_per_split'],
          'features_compared': len(result.get('comparisons', {}).get(EVAL, {})),
          'not_compared': len(result.get('not_compared', {}).get(EVAL, [])), 'findings': len(findings),
          'blocking_findings': [{'feature': f.get('feature'), 'kind': f.get('kind')}
                                for f in findings if f.get('severity') == 'block'][:20],
          'tests': testing.get('tests'), 'withheld_findings': testing.get('withheld_count')}


@job('gate')
def gate_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """The whole gate, tfx_preflight.run.run_preflight, with statistics supplied (as the component gets them from
  StatisticsGen); writes report.json and report.html."""
  from tfx_preflight import run
  from tfx_preflight.config import PreflightConfig
  from tfx_preflight.inputs import statistics
  manifest = args['manifest']
  statistics.tfdv()  # TensorFlow and TFDV loaded before the clock starts, as TFX's launcher has them in a pipeline.
  started = _begin()
  inputs = run.PreflightInputs(examples=dict(manifest['examples']),
                               statistics=_load_statistics(args['statistics_dir']))
  _, result = run.run_preflight(inputs, PreflightConfig(label_key=generate.LABEL_KEY),
                                _make_pipeline(args['runner_args']), args['output_dir'])
  return {'job_seconds': time.perf_counter() - started, 'verdict': result['verdict'],
          'statuses': {name: check['status'] for name, check in result['checks'].items()}}


@job('gate_statistics_out')
def gate_statistics_out_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """The whole gate of a pipeline without StatisticsGen (Preflight(output_statistics=True)): run_preflight with no
  statistics supplied, the read pass computing them and writing them as StatisticsGen would for SchemaGen; to be
  compared with statistics_gen + gate, what a pipeline with StatisticsGen pays for the same."""
  from tfx_preflight import run
  from tfx_preflight.config import PreflightConfig
  from tfx_preflight.inputs import statistics
  manifest = args['manifest']
  statistics.tfdv()  # TensorFlow and TFDV imported before the clock starts, as for the one-pass job.
  started = _begin()
  inputs = run.PreflightInputs(examples=dict(manifest['examples']),
                               statistics_output=os.path.join(args['output_dir'], 'example_statistics'))
  _, result = run.run_preflight(inputs, PreflightConfig(label_key=generate.LABEL_KEY),
                                _make_pipeline(args['runner_args']), os.path.join(args['output_dir'], 'report'))
  return {'job_seconds': time.perf_counter() - started, 'verdict': result['verdict'],
          'statuses': {name: check['status'] for name, check in result['checks'].items()}}


@job('loss')
def loss_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """tfx_preflight.checks.loss.check.check_loss on the demo CNN Trainer module and image-like data (schema from statistics)."""
  import tensorflow_data_validation as tfdv
  from tfx.utils import io_utils

  from tfx_preflight.checks.loss import check as loss
  from tfx_preflight.config import LossConfig
  manifest = args['manifest']
  started = _begin()
  statistics = _load_statistics(args['statistics_dir'])
  schema_path = os.path.join(args['output_dir'], 'schema.pbtxt')
  io_utils.write_pbtxt_file(schema_path, tfdv.infer_schema(statistics[TRAIN]))
  inputs = loss.LossInputs(args['module_file'], manifest['examples'], TRAIN, (EVAL,), generate.LABEL_KEY, schema_path,
                           statistics=statistics)
  result = loss.check_loss(inputs, LossConfig(), os.path.join(args['output_dir'], 'loss')).to_dict()
  return {'job_seconds': time.perf_counter() - started, 'status': result.get('status'),
          'skip_reason': result.get('reason'),
          'findings': [{'code': f.get('code'), 'severity': f.get('severity'), 'message': str(f.get('message'))[:400]}
                       for f in result.get('findings', [])]}


# ---------------------------------------------------------------------------------------------------------------
# One read pass (issue 19.2): statistics and hashes from the same read vs TFDV's statistics alone.


@job('statistics_alone')
def statistics_alone_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """TFDV statistics of both splits alone (tfdv_statistics.generate_statistics: the strict reader, TFXIO's decode,
  GenerateStatistics): what a run without StatisticsGen paid for statistics before the one read pass."""
  from bench import tfdv_statistics
  from tfx_preflight.inputs import statistics
  manifest = args['manifest']
  statistics.tfdv()  # TensorFlow and TFDV imported before the clock starts, as for the one-pass job.
  started = _begin()
  stats = tfdv_statistics.generate_statistics(manifest['examples'], _make_pipeline(args['runner_args']),
                                              args['output_dir'])
  return {'job_seconds': time.perf_counter() - started,
          'examples': {split: int(s.datasets[0].num_examples) for split, s in stats.items()}}


@job('statistics_read_pass')
def statistics_read_pass_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """The read pass with statistics as its only consumer: what the one pass costs before hashing, so one_pass over
  this is the marginal cost of skew + leakage on the same read and decode."""
  from tfx_preflight.inputs import read_pass, statistics
  manifest = args['manifest']
  statistics.tfdv()
  request = read_pass.PassRequest(examples=dict(manifest['examples']), splits=(TRAIN, EVAL),
                                  statistics_dir=args['output_dir'])
  started = _begin()
  stats = read_pass.run_pass(request, _make_pipeline(args['runner_args'])).statistics
  return {'job_seconds': time.perf_counter() - started,
          'examples': {split: int(s.datasets[0].num_examples) for split, s in stats.items()}}


@job('one_pass')
def one_pass_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """Skew + leakage with statistics not supplied (the CLI, pipelines without StatisticsGen): run.run_checks, where
  one read of each split feeds TFDV's statistics and the leakage hashes (read_pass.py); the skew check and the
  leakage interpretation included, the report not written."""
  from tfx_preflight import run
  from tfx_preflight.config import PreflightConfig
  from tfx_preflight.inputs import statistics
  manifest = args['manifest']
  statistics.tfdv()
  config = PreflightConfig.from_dict({'label_key': generate.LABEL_KEY, 'label_proxy': {'mode': 'off'}})
  inputs = run.PreflightInputs(examples=dict(manifest['examples']))
  started = _begin()
  result = run.run_checks(inputs, config, _make_pipeline(args['runner_args']), args['output_dir']).to_dict()
  seconds = time.perf_counter() - started
  leakage = result['checks']['leakage']
  cross = (leakage.get('cross_split') or [{}])[0]
  return {'job_seconds': seconds, 'status': leakage.get('status'), 'skew_status': result['checks']['skew']['status'],
          'duplicate_examples': cross.get('duplicate_examples'), 'label_conflicts': cross.get('label_conflicts'),
          'unique_duplicates': cross.get('unique_duplicates')}


# Label proxies with the pair search (issue 29.3): the check alone vs the leakage job on the same data.


@job('label_proxy')
def label_proxy_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """The label-proxy part of the one read pass: its CombineFn over every decoded batch of both splits (what the check
  adds to the shared read; reading and decoding, which the pass shares, not timed) + its interpretation (single
  scores and the pair search). job_seconds is that part's wall time, part_cpu_seconds its CPU time (the calling
  thread's: the reader's gunzip thread excluded); check_seconds the check run alone with its own read pass."""
  from tfx_preflight.checks.label_proxy import check as label_proxy
  from tfx_preflight.checks.label_proxy import label_proxy_beam
  from tfx_preflight.config import LabelProxyConfig
  from tfx_preflight.inputs import located_batches, records
  manifest = args['manifest']
  config = LabelProxyConfig(**args.get('config', {}))
  options = label_proxy.count_options(config, generate.LABEL_KEY)
  fn = label_proxy_beam.LabelProxyCombineFn(options)
  _begin()
  wall = {'combine': 0.0, 'interpret': 0.0}
  cpu = {'combine': 0.0, 'interpret': 0.0}

  def timed(part: str, call: Callable[[], Any]) -> Any:
    tick, tock = time.perf_counter(), time.thread_time()
    value = call()
    wall[part] += time.perf_counter() - tick
    cpu[part] += time.thread_time() - tock
    return value

  counts = {}
  for split in (TRAIN, EVAL):
    parts = []
    for path in _files(manifest['examples'][split]):
      accumulator = fn.create_accumulator()
      for _, batch in records.iter_record_batches(path, located_batches.BATCH_SIZE):
        accumulator = timed('combine', lambda a=accumulator, b=batch: fn.add_input(a, b))
      parts.append(accumulator)
    counts[split] = timed('combine', lambda p=parts: fn.extract_output(fn.merge_accumulators(p)))
  result = timed('interpret', lambda: label_proxy.summarize(counts[TRAIN], {EVAL: counts[EVAL]}, TRAIN, config,
                                                             generate.LABEL_KEY).to_dict())
  tick = time.perf_counter()
  alone = label_proxy.check_label_proxy(dict(manifest['examples']), TRAIN, [EVAL], config,
                                        _make_pipeline(args['runner_args']), args['output_dir'], generate.LABEL_KEY)
  check_seconds = time.perf_counter() - tick
  search = (result.get('pairs') or {}).get(EVAL, {})
  best = (search.get('best') or [{}])[0]
  return {'job_seconds': wall['combine'] + wall['interpret'], 'combine_seconds': wall['combine'],
          'interpret_seconds': wall['interpret'], 'part_cpu_seconds': cpu['combine'] + cpu['interpret'],
          'combine_cpu_seconds': cpu['combine'], 'interpret_cpu_seconds': cpu['interpret'],
          'check_seconds': check_seconds, 'status': result.get('status'),
          'same_status_alone': alone.status == result.get('status'), 'pairs_scored': search.get('pairs_scored'),
          'best_pair': best.get('features'), 'best_pair_rule': best.get('rule'),
          'best_pair_score': best.get('eval_score')}


# The gate's cost inside a TFX pipeline (issue 14.6): MLMD wall times of each component in one LocalDagRunner run.

# Components whose MLMD execution time is reported (by executor class name's last part as the execution type).
PIPELINE_COMPONENTS = ('Preflight', 'StatisticsGen', 'Transform', 'Trainer', 'ImportExampleGen')


def _penguin_data(replicate: int, seed: int, data_root: str) -> str:
  """TFX's penguin testdata, unmodified for replicate=1; else every row `replicate` times (per split), copies after
  the first with Gaussian noise of 2% of each float feature's spread, so copies differ (no leak, no duplicate) and
  the label is kept. Gzipped TFRecords in ExampleGen's layout; cached by replicate and seed."""
  from pipelines import penguin
  source = os.path.join(penguin.TESTDATA_DIR, 'data')
  if replicate == 1:
    return source
  root = os.path.join(data_root, f'penguin-x{replicate}-seed{seed}')
  if os.path.exists(os.path.join(root, 'done')):
    return root
  import tensorflow as tf
  rng = np.random.default_rng(seed)
  for split in penguin.SPLITS:
    examples = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(
        _files(os.path.join(source, f'Split-{split}', '*')), compression_type='GZIP')]
    floats = sorted(k for k, v in examples[0].features.feature.items() if v.HasField('float_list'))
    values = np.array([[e.features.feature[k].float_list.value[0] for k in floats] for e in examples])
    spread = values.std(axis=0) * 0.02
    os.makedirs(os.path.join(root, f'Split-{split}'), exist_ok=True)
    path = os.path.join(root, f'Split-{split}', 'data_tfrecord-00000-of-00001.gz')
    with tf.io.TFRecordWriter(path, options='GZIP') as writer:
      for copy in range(replicate):
        noise = rng.normal(size=values.shape) * spread if copy else np.zeros_like(values)
        for example, row in zip(examples, values + noise):
          out = tf.train.Example()
          out.CopyFrom(example)
          for key, value in zip(floats, row):
            out.features.feature[key].float_list.value[:] = [float(value)]
          writer.write(out.SerializeToString())
  with open(os.path.join(root, 'done'), 'w') as f:
    f.write('ok\n')
  return root


def _floor_seconds(module_file: str) -> Dict[str, float]:
  """What any isolated probe pays before it can run one line of the user's run_fn: a fresh Python importing
  TensorFlow, then the user's module (Trainer's environment: TF_USE_LEGACY_KERAS=1, CPU only). Measured from the
  spawn to the end of the imports (the interpreter's teardown after that is not counted, as the probe skips it)."""
  import subprocess
  code = ('import sys, time; t = time.time(); import tensorflow; a = time.time(); sys.path.insert(0, sys.argv[1]); '
          'import importlib; importlib.import_module(sys.argv[2]); print(t, a, time.time())')
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1', CUDA_VISIBLE_DEVICES='', TF_CPP_MIN_LOG_LEVEL='2')
  spawned = time.time()
  out = subprocess.run([sys.executable, '-c', code, os.path.dirname(module_file),
                        os.path.splitext(os.path.basename(module_file))[0]], env=env, check=True,
                       capture_output=True, text=True).stdout.split()
  started, tensorflow_done, module_done = map(float, out[-3:])
  return {'floor_seconds': round(module_done - spawned, 3), 'floor_start_python_seconds': round(started - spawned, 3),
          'floor_import_tensorflow_seconds': round(tensorflow_done - started, 3),
          'floor_import_module_seconds': round(module_done - tensorflow_done, 3)}


@job('pipeline_cost')
def pipeline_cost_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """A LocalDagRunner pipeline as tests/test_loss_compat.py runs it: ImportExampleGen + StatisticsGen +
  ImportSchemaGen + Transform + Preflight (penguin_utils_keras.py, unmodified, reading the transformed examples) +
  Trainer under tfx.dsl.Cond, on TFX's penguin testdata (x `replicate`). Reports each component's MLMD execution
  time, Preflight / StatisticsGen, the loss probe's phases (the report's loss/timing.json) and the floor."""
  import shutil

  from ml_metadata import metadata_store
  from tfx import v1 as tfx_v1
  from tfx.examples.penguin import penguin_utils_keras

  from pipelines import penguin
  from tfx_preflight.checks.loss import check as loss
  replicate, work = int(args['replicate']), args['output_dir']
  shutil.rmtree(work, ignore_errors=True)
  os.makedirs(work)
  data = _penguin_data(replicate, int(args.get('seed', 0)), args['data_root'])
  module_file = os.path.join(work, 'penguin_utils_keras.py')
  shutil.copy(penguin_utils_keras.__file__, module_file)
  metadata_path = os.path.join(work, 'metadata.db')
  stages = _PreflightLines()
  started = _begin()
  tfx_v1.orchestration.LocalDagRunner().run(penguin.create_pipeline(
      'penguin-preflight-cost', os.path.join(work, 'root'), data, module_file, metadata_path))
  pipeline_seconds = time.perf_counter() - started
  seconds = penguin.component_seconds(metadata_path)
  store = metadata_store.MetadataStore(tfx_v1.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))
  [report_artifact] = store.get_artifacts_by_type('tfx_preflight.PreflightReport')
  with open(os.path.join(report_artifact.uri, 'report.json')) as f:
    report = json.load(f)
  with open(os.path.join(report_artifact.uri, 'loss', loss.TIMING_JSON)) as f:
    probe_phases = json.load(f)
  num_examples = sum(1 for _ in _iter_records(os.path.join(data, 'Split-*', '*')))
  return {'job_seconds': pipeline_seconds, 'replicate': replicate, 'num_examples': num_examples,
          'component_seconds': {k: seconds.get(k) for k in PIPELINE_COMPONENTS if k in seconds},
          'preflight_over_statistics_gen': round(seconds['Preflight'] / seconds['StatisticsGen'], 3),
          'verdict': report['verdict'], 'status': 'complete' if 'Trainer' in seconds else 'not blessed',
          'statuses': {name: check['status'] for name, check in report['checks'].items()},
          'probe_phases': probe_phases, 'preflight_log': stages.lines, **_floor_seconds(module_file)}


# A pipeline without StatisticsGen (issue 32.2): the same LocalDagRunner pipeline gated by Preflight emitting the
# statistics, and ungated with StatisticsGen, on the tabular data with no leak (so the gate passes and Trainer trains).
TABULAR_TRAINER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tabular_trainer.py')
PIPELINE_TRAIN_STEPS = 100
PIPELINE_EVAL_STEPS = 10


def _statistics_pipeline(manifest: Mapping[str, Any], gated: bool, work: str, runner_args: List[str]):
  """Gated: the demo's pipeline without StatisticsGen (pipelines/pipeline.py, statistics_from_gate: ImportExampleGen ->
  Preflight(output_statistics=True) -> SchemaGen -> Trainer under tfx.dsl.Cond), with the gate's own defaults.
  Ungated: ImportExampleGen -> StatisticsGen -> SchemaGen -> Trainer. Both train the bench's trainer module."""
  from tfx import v1 as tfx_v1

  from pipelines import pipeline as demo_pipeline
  from tfx_preflight.config import LossConfig
  input_config = demo_pipeline.presplit_input_config(f'Split-{TRAIN}/*', f'Split-{EVAL}/*')
  metadata = tfx_v1.orchestration.metadata.sqlite_metadata_connection_config(os.path.join(work, 'metadata.db'))
  if gated:
    # The demo raises the loss check's timeout for busy machines; the bench measures the gate's default.
    return demo_pipeline.create_pipeline(
        'bench-gated', os.path.join(work, 'root'), manifest['root'], TABULAR_TRAINER,
        preflight_kwargs={'loss': {'timeout_seconds': LossConfig().timeout_seconds}},
        train_steps=PIPELINE_TRAIN_STEPS, eval_steps=PIPELINE_EVAL_STEPS, beam_pipeline_args=runner_args,
        metadata_connection_config=metadata, input_config=input_config, statistics_from_gate=True)
  example_gen = tfx_v1.components.ImportExampleGen(input_base=manifest['root'], input_config=input_config)
  statistics_gen = tfx_v1.components.StatisticsGen(examples=example_gen.outputs['examples'])
  schema_gen = tfx_v1.components.SchemaGen(statistics=statistics_gen.outputs['statistics'], infer_feature_shape=True)
  trainer = tfx_v1.components.Trainer(
      module_file=TABULAR_TRAINER, examples=example_gen.outputs['examples'], schema=schema_gen.outputs['schema'],
      train_args=tfx_v1.proto.TrainArgs(num_steps=PIPELINE_TRAIN_STEPS),
      eval_args=tfx_v1.proto.EvalArgs(num_steps=PIPELINE_EVAL_STEPS))
  return tfx_v1.dsl.Pipeline(
      pipeline_name='bench-statistics-gen', pipeline_root=os.path.join(work, 'root'),
      components=[example_gen, statistics_gen, schema_gen, trainer], enable_cache=False,
      metadata_connection_config=metadata, beam_pipeline_args=list(runner_args))


def _statistics_pipeline_job(args: Mapping[str, Any], gated: bool) -> Dict[str, Any]:
  import shutil

  from tfx import v1 as tfx_v1

  from pipelines import penguin
  work = args['output_dir']
  shutil.rmtree(work, ignore_errors=True)
  os.makedirs(work)
  pipeline = _statistics_pipeline(args['manifest'], gated, work, args['runner_args'])
  started = _begin()
  tfx_v1.orchestration.LocalDagRunner().run(pipeline)
  pipeline_seconds = time.perf_counter() - started
  seconds = penguin.component_seconds(os.path.join(work, 'metadata.db'))
  return {'job_seconds': pipeline_seconds, 'trained': 'Trainer' in seconds,
          'status': 'complete' if 'Trainer' in seconds else 'not blessed',
          'component_seconds': {k: seconds.get(k) for k in PIPELINE_COMPONENTS + ('SchemaGen',) if k in seconds}}


@job('pipeline_gated')
def pipeline_gated_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """The pipeline without StatisticsGen: ImportExampleGen -> Preflight (statistics out, loss check on the trainer
  module) -> SchemaGen -> Trainer when blessed. Job seconds: LocalDagRunner.run, every component."""
  return _statistics_pipeline_job(args, gated=True)


@job('pipeline_statistics_gen')
def pipeline_statistics_gen_job(args: Mapping[str, Any]) -> Dict[str, Any]:
  """The same pipeline ungated: ImportExampleGen -> StatisticsGen -> SchemaGen -> Trainer."""
  return _statistics_pipeline_job(args, gated=False)


class _PreflightLines(logging.Handler):
  """Collects the gate's own INFO lines ('Preflight [leakage] ...; 3.1 s', 'Preflight loss probe phases ...') with
  their time since the pipeline started: where Preflight's wall time goes besides the probe."""

  def __init__(self):
    super().__init__(logging.INFO)
    self.lines: List[str] = []
    self._started = time.time()
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger().addHandler(self)

  def emit(self, record: logging.LogRecord) -> None:
    message = record.getMessage()
    if message.startswith('Preflight'):
      self.lines.append(f'{record.created - self._started:7.2f} {message[:300]}')


def _iter_records(pattern: str):
  import tensorflow as tf
  return tf.data.TFRecordDataset(_files(pattern), compression_type='GZIP').as_numpy_iterator()


def main(argv: List[str]) -> int:
  name, args_json, result_path = argv
  args = json.loads(args_json)
  result = JOBS[name](args)
  # CPU seconds of the job (all its threads): steadier than wall time on a machine shared with other work.
  cpu = {'job_cpu_seconds': round(time.process_time() - _MARKS['setup_cpu_seconds'], 3)} if 'setup_cpu_seconds' in \
      _MARKS else {}
  result.update(_MARKS, **cpu, peak_rss_self_mb=_rss_mb())
  with open(result_path, 'w') as f:
    json.dump(result, f, sort_keys=True, default=str)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
