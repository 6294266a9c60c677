"""The per-shard memory bound the README states for the leakage join, measured: what one shard's hashed examples
weigh in the shuffle and what joining them allocates (tracemalloc sees numpy's buffers)."""

import pickle
import tracemalloc

import numpy as np

from bench import report
from tfx_preflight.checks.leakage import leakage_beam


def _pieces(n: int, num_shards: int, seed: int = 0):
  """_ShardFn's output for n examples (80% train in 4 files, 20% eval, 2% of eval copied from train)."""
  plan = leakage_beam.Plan(splits=('train', 'eval'), files=tuple((int(i == 4), f'f{i}') for i in range(5)),
                             exclude=('label',), label_key='label', group_key=None, near=None, num_shards=num_shards,
                             max_samples=5)
  shard_fn = leakage_beam._ShardFn(plan)
  rng = np.random.default_rng(seed)
  hashes = rng.integers(0, 2 ** 63, size=(n, 2), dtype=np.int64).view(np.uint64)
  n_train = n * 4 // 5
  hashes[n_train:n_train + n // 50] = hashes[:n // 50]
  by_shard = {}
  for start in range(0, n, 8192):
    stop = min(start + 8192, n)
    part = {'split': int(start >= n_train), 'file': np.full(stop - start, min(start * 5 // n, 4), dtype=np.uint32),
            'index': np.arange(start, stop, dtype=np.int64), 'exact': hashes[start:stop],
            'label': rng.integers(0, 10, stop - start).astype(np.uint64)}
    for key, piece in shard_fn.process(part):
      by_shard.setdefault(key, []).append(piece)
  return plan, by_shard


def test_one_shard_weighs_the_bytes_per_example_the_readme_states():
  n = 200_000
  plan, by_shard = _pieces(n, num_shards=2)
  shuffled = sum(len(pickle.dumps(p, protocol=4)) for pieces in by_shard.values() for p in pieces)
  assert report.SHUFFLE_BYTES_PER_EXAMPLE <= shuffled / n <= report.SHUFFLE_BYTES_PER_EXAMPLE + 1
  join_shard = leakage_beam.join_shard
  (kind, _), pieces = next(iter(by_shard.items()))
  rows = sum(len(p[1]) for p in pieces)
  tracemalloc.start()
  counters, _ = join_shard(kind, pieces, plan)
  _, peak = tracemalloc.get_traced_memory()
  tracemalloc.stop()
  assert counters.cross[(kind, 'eval')].duplicate_examples > 0  # The join ran on the copies.
  # Within 15% of the stated figure: the bound in README is this measurement, and a join that starts holding more
  # per example must update it.
  assert 0.85 * report.JOIN_BYTES_PER_EXAMPLE <= peak / rows <= 1.15 * report.JOIN_BYTES_PER_EXAMPLE, peak / rows
