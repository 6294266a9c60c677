"""Real data with planted near-copies for the near-duplicate accuracy tests: bundled sklearn images and tabular rows,
and sentences from the Python standard library's own docstrings (shipped, never downloaded).

Each builder returns (train rows, eval rows, eval indices that are copies of a train row, exclude_features, label).
"""

import importlib
import inspect
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np

Rows = List[Dict[str, object]]
Planted = Tuple[Rows, Rows, np.ndarray, Tuple[str, ...], str]


def _mix(clean_eval: Rows, copies: Rows, rng: np.random.Generator) -> Tuple[Rows, np.ndarray]:
  """Clean eval rows and copies shuffled together; returns (rows, indices of the copies)."""
  rows = clean_eval + copies
  order = rng.permutation(len(rows))
  shuffled = [rows[i] for i in order]
  return shuffled, np.flatnonzero(order >= len(clean_eval))


def digits(num_copies: int = 150, seed: int = 0) -> Planted:
  """sklearn digits scaled to [0, 1]; copies get Gaussian noise (sigma up to 0.02) and a brightness shift (up to
  +-0.05), clipped to [0, 1]."""
  from sklearn.datasets import load_digits
  data = load_digits()
  rng = np.random.default_rng(seed)
  images = data.data / 16.0
  order = rng.permutation(len(images))
  train_ids, eval_ids = order[:1200], order[1200:]
  train = [{'pixels': images[i].tolist(), 'label': int(data.target[i])} for i in train_ids]
  clean = [{'pixels': images[i].tolist(), 'label': int(data.target[i])} for i in eval_ids]
  sources = rng.choice(len(train_ids), num_copies, replace=False)
  copies = []
  for s in sources:
    image = images[train_ids[s]]
    sigma = rng.uniform(0.005, 0.02)
    noised = np.clip(image + rng.normal(0, sigma, image.shape) + rng.uniform(-0.05, 0.05), 0.0, 1.0)
    copies.append({'pixels': noised.tolist(), 'label': int(data.target[train_ids[s]])})
  evals, planted = _mix(clean, copies, rng)
  return train, evals, planted, (), 'label'


def perturb_third_digit(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Each value moved by up to one unit of its 3rd significant digit (1.234 -> 1.23x +- 0.01)."""
  magnitude = np.floor(np.log10(np.where(x != 0, np.abs(x), 1.0)))
  return x + rng.uniform(-1, 1, x.shape) * 10.0 ** (magnitude - 2) * (x != 0)


def breast_cancer(num_copies: int = 80, seed: int = 0) -> Planted:
  """sklearn breast_cancer rows (30 float columns) with a unique integer id (excluded); copies perturbed at the 3rd
  significant digit, with new ids."""
  from sklearn.datasets import load_breast_cancer
  data = load_breast_cancer()
  rng = np.random.default_rng(seed)
  names = [re.sub(r'\W+', '_', n) for n in data.feature_names]
  order = rng.permutation(len(data.data))
  train_ids, eval_ids = order[:400], order[400:]

  def row(values: np.ndarray, i: int, row_id: int) -> Dict[str, object]:
    return {**{n: float(v) for n, v in zip(names, values)}, 'id': row_id, 'target': int(data.target[i])}

  train = [row(data.data[i], i, k) for k, i in enumerate(train_ids)]
  clean = [row(data.data[i], i, 1000 + k) for k, i in enumerate(eval_ids)]
  sources = rng.choice(len(train_ids), num_copies, replace=False)
  copies = [row(perturb_third_digit(data.data[train_ids[s]], rng), train_ids[s], 5000 + k)
            for k, s in enumerate(sources)]
  evals, planted = _mix(clean, copies, rng)
  return train, evals, planted, ('id',), 'target'


_DOC_MODULES = ('collections', 'json', 're', 'os', 'argparse', 'logging', 'typing', 'functools', 'itertools',
                'pathlib', 'subprocess', 'datetime', 'decimal', 'fractions', 'statistics', 'textwrap', 'string', 'csv',
                'unittest', 'email.message', 'http.client', 'urllib.parse', 'asyncio', 'threading', 'socket',
                'tarfile', 'zipfile', 'shutil', 'tempfile', 'inspect', 'ast', 'dataclasses', 'enum', 'heapq',
                'random', 'pickle', 'sqlite3', 'xml.etree.ElementTree', 'configparser', 'codecs', 'io', 'struct')


def _bigrams(sentence: str) -> frozenset:
  words = re.findall(r'\w+', sentence.lower())
  return frozenset(zip(words, words[1:]))


def drop_near_twins(sentences: Sequence[str], min_jaccard: float = 0.3) -> List[str]:
  """Keeps a sentence only if no kept sentence shares >= min_jaccard of its word bigrams: docstrings are full of
  templated twins ("Log a message with severity 'ERROR'/'INFO' ..."), which are real near-duplicates, so a clean split
  must not contain them. Brute force over pairs sharing a bigram, with plain Python sets (independent of the LSH)."""
  kept: List[str] = []
  kept_sets: List[frozenset] = []
  index: Dict[tuple, List[int]] = {}
  for sentence in sentences:
    grams = _bigrams(sentence)
    others = {k for g in grams for k in index.get(g, ())}
    if any(len(grams & kept_sets[k]) / len(grams | kept_sets[k]) >= min_jaccard for k in others):
      continue
    for g in grams:
      index.setdefault(g, []).append(len(kept))
    kept.append(sentence)
    kept_sets.append(grams)
  return kept


def doc_sentences(min_words: int = 10, max_words: int = 40) -> List[str]:
  """Distinct sentences of the standard library's docstrings, in a stable order, without near twins."""
  seen, sentences = set(), []
  for module_name in _DOC_MODULES:
    module = importlib.import_module(module_name)
    docs = [module.__doc__ or '']
    for _, member in sorted(inspect.getmembers(module), key=lambda m: m[0]):
      doc = getattr(member, '__doc__', None)
      if isinstance(doc, str) and (inspect.isfunction(member) or inspect.isclass(member)):
        docs.append(doc)
    for doc in docs:
      for sentence in re.split(r'(?<=[.!?])\s+|\n\s*\n', doc):
        words = sentence.split()
        key = ' '.join(re.findall(r'\w+', sentence.lower()))
        if min_words <= len(words) <= max_words and key not in seen:
          seen.add(key)
          sentences.append(' '.join(words))
  return drop_near_twins(sentences)


def edit_text(sentence: str, vocabulary: Sequence[str], rng: np.random.Generator) -> str:
  """Case, whitespace and punctuation changes plus a 5% token edit (at least one token replaced or deleted)."""
  words = sentence.split()
  for _ in range(max(1, round(0.05 * len(words)))):
    i = int(rng.integers(len(words)))
    if rng.random() < 0.5 and len(words) > 2:
      del words[i]
    else:
      words[i] = str(vocabulary[int(rng.integers(len(vocabulary)))])
  words = [w.upper() if rng.random() < 0.1 else w.capitalize() if rng.random() < 0.2 else w for w in words]
  words = [w.rstrip('.,;:') + (',' if rng.random() < 0.1 else '') for w in words]
  separators = rng.choice([' ', '  ', ' \n ', '\t'], len(words) - 1, p=[0.7, 0.1, 0.1, 0.1])
  text = words[0] + ''.join(s + w for s, w in zip(separators, words[1:]))
  return '  ' + text + ('!' if rng.random() < 0.5 else '.')


def text(num_copies: int = 150, seed: int = 0) -> Planted:
  """Docstring sentences (a text feature and a short categorical one); copies edited by `edit_text`."""
  rng = np.random.default_rng(seed)
  sentences = doc_sentences()
  order = rng.permutation(len(sentences))
  n_train = len(sentences) * 2 // 3
  vocabulary = sorted({w.lower() for s in sentences for w in re.findall(r'[A-Za-z]+', s)})
  kinds = ['doc', 'note']

  def row(sentence: str, i: int) -> Dict[str, object]:
    return {'text': sentence, 'kind': kinds[i % 2], 'label': i % 3}

  train = [row(sentences[i], int(i)) for i in order[:n_train]]
  clean = [row(sentences[i], int(i)) for i in order[n_train:]]
  sources = rng.choice(n_train, num_copies, replace=False)
  copies = [row(edit_text(sentences[order[s]], vocabulary, rng), int(order[s])) for s in sources]
  evals, planted = _mix(clean, copies, rng)
  return train, evals, planted, (), 'label'
