"""Plain helpers shared by the test modules, in one place so no test module imports another.

Fixtures stay in conftest.py; data modules (near_data, leakage_tables, ...) stay where they are. TFX, tfx-bsl and the
package are imported inside the helpers that need them, so a test module that only writes records does not load TFX.
"""

import html.parser
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from typing import Dict, Iterable, List, Mapping, Sequence

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
MODULES = os.path.join(TESTS_DIR, 'modules')
TFX_DIR = os.path.dirname(os.path.dirname(importlib.util.find_spec('tfx').origin))
PENGUIN_DATA = os.path.join(TESTS_DIR, 'data', 'penguin', 'data')


# ---------------------------------------------------------------------------------------------------------------------
# Records laid out the way ExampleGen writes them.


def to_example(row: Mapping[str, object]) -> tf.train.Example:
  """A tf.Example from a dict of scalars or lists (float, int or str/bytes): test data without a CSV round trip."""
  features = {}
  for name, value in row.items():
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if values and isinstance(values[0], (str, bytes)):
      features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[v.encode() if isinstance(v, str) else v for v in values]))
    elif values and isinstance(values[0], (int, np.integer)) and not isinstance(values[0], bool):
      features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
    else:
      features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))
  return tf.train.Example(features=tf.train.Features(feature=features))


def write_tfrecords(path: str, rows: Iterable[Mapping[str, object]], gzip: bool = True) -> str:
  """One (by default gzipped) TFRecord file of tf.Examples, as ExampleGen writes a shard; returns its path."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  options = tf.io.TFRecordOptions(compression_type='GZIP' if gzip else '')
  with tf.io.TFRecordWriter(path, options) as writer:
    for row in rows:
      writer.write(to_example(row).SerializeToString())
  return path


def write_splits(root: str, splits: Mapping[str, Sequence[Mapping[str, object]]]) -> Dict[str, str]:
  """Writes root/Split-<name>/data_tfrecord-00000-of-00001.gz per split; returns split -> file pattern."""
  patterns = {}
  for split, rows in splits.items():
    write_tfrecords(os.path.join(root, f'Split-{split}', 'data_tfrecord-00000-of-00001.gz'), rows)
    patterns[split] = os.path.join(root, f'Split-{split}', '*')
  return patterns


def tabular_rows(n: int, seed: int, scale: float = 1.0, offset: int = 0) -> List[Dict[str, object]]:
  """n rows of 4 float features, a categorical string and an int label; `scale` rescales the floats."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 4))
  colors = np.array(['red', 'green', 'blue'])[rng.integers(0, 3, n)]
  # Noisy: a label computed exactly from f0 + f1, both kept, is the derived label the label-proxy check blocks.
  labels = (x[:, 0] + x[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype(int)
  return [{'f0': x[i, 0] * scale, 'f1': x[i, 1] * scale, 'f2': x[i, 2] * scale, 'f3': x[i, 3] * scale,
           'color': str(colors[i]), 'id': i + offset, 'label': int(labels[i])} for i in range(n)]


def write_sequence_examples(path, n, seed=0):
  """n tf.SequenceExamples: a context (f, label) and a `tokens` feature list. The sequences are the same for every
  seed, the context float `f` is drawn anew: read as tf.Examples, copies look distinct and alike in distribution."""
  rng, context = np.random.default_rng(0), np.random.default_rng(seed + 1)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type='GZIP')) as writer:
    for i in range(n):
      sequence = tf.train.SequenceExample()
      sequence.context.feature['f'].float_list.value.append(context.normal())
      sequence.context.feature['label'].int64_list.value.append(i % 2)
      for _ in range(3):
        sequence.feature_lists.feature_list['tokens'].feature.add().int64_list.value.extend(
            rng.integers(0, 1000, 4).tolist())
      writer.write(sequence.SerializeToString())
  return path


def write_examples_then_sequences(path, n_examples, n_sequences):
  """One file: tf.Examples first (all a probe of the file's start sees), then tf.SequenceExamples."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  sequences = path + '.sequences'
  write_sequence_examples(sequences, n_sequences)
  with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type='GZIP')) as writer:
    for row in tabular_rows(n_examples, seed=5):
      writer.write(to_example(row).SerializeToString())
    for record in tf.data.TFRecordDataset(sequences, compression_type='GZIP').as_numpy_iterator():
      writer.write(record)
  os.remove(sequences)
  return path


# ---------------------------------------------------------------------------------------------------------------------
# One run through the CLI, one through the executor.


def without_progress(err: str) -> str:
  """stderr of a CLI run without its progress lines: what remains is the error reason, if any."""
  from tfx_preflight.report import progress
  return '\n'.join(line for line in err.splitlines() if not progress.is_progress_line(line))


def run_cli(capsys, *argv):
  """The CLI in-process: (exit code, stdout, stderr without progress lines), as a user would read them."""
  from tfx_preflight import cli
  code = cli.main([str(a) for a in argv])
  out, err = capsys.readouterr()
  return code, out, without_progress(err)


def assert_usage_error(code, err, *named):
  """Exit 2, exactly one line on stderr, naming every string in `named`."""
  from tfx_preflight import cli
  assert code == cli.EXIT_USAGE, err
  assert len(err.strip().splitlines()) == 1, err
  for what in named:
    assert what in err, f'{what!r} not in {err!r}'


def examples_artifact(root, split_names):
  """A real Examples artifact over split directories written by write_splits, as ExampleGen hands it on."""
  from tfx.types import artifact_utils, standard_artifacts
  examples = standard_artifacts.Examples()
  examples.uri = str(root)
  examples.split_names = artifact_utils.encode_split_names(list(split_names))
  return examples


def run_executor(tmp_path, examples, config_json):
  """Executor.Do on real artifacts; returns (report artifact, blessing artifact). Raises what the executor raises."""
  from tfx_preflight import executor, spec
  from tfx_preflight.artifacts import PreflightBlessing, PreflightReport
  report_artifact, blessing = PreflightReport(), PreflightBlessing()
  report_artifact.uri, blessing.uri = str(tmp_path / 'report'), str(tmp_path / 'blessing')
  executor.Executor().Do({spec.EXAMPLES_KEY: [examples]},
                         {spec.REPORT_KEY: [report_artifact], spec.BLESSING_KEY: [blessing]},
                         {spec.CONFIG_KEY: config_json, spec.MODULE_FILE_KEY: None})
  return report_artifact, blessing


# ---------------------------------------------------------------------------------------------------------------------
# Report directories holding things before a run, and processes after one.

PASSING_REPORT = json.dumps({'verdict': 'pass', 'checks': {}})
# Things a report directory may hold before a run: ours (by an earlier run or an older version) and a user's.
PRIOR_ENTRIES = {
    'report.json': PASSING_REPORT,
    'report.html': '<p>verdict: pass</p>',
    'statistics.html': '<p>old</p>',
    'leakage/duplicates.tsv': 'exact\tabc\teval\told.gz\t0\n',
    'statistics/Split-train/FeatureStats.pb': 'x',
    'examples/csv-eval/00001.csv': 'a,b,label\n1,2,0\n',
    '.tmp-0123/report.json': PASSING_REPORT,
    '.published': 'leakage\nreport.json\n',
    'notes.txt': 'the user keeps notes here',
    'mine/data.csv': 'a\n1\n',
}
USER_ENTRIES = ('notes.txt', 'mine/data.csv')


def fill(out, names):
  """Writes the named PRIOR_ENTRIES under `out`: a report directory as an earlier run or a user left it."""
  for name in names:
    path = out / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PRIOR_ENTRIES[name])


def files_under(out):
  """Every file under `out`, relative and sorted: what a run left behind, to compare with what it should have."""
  return sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)


def gone(pid: int) -> bool:
  """Dead, or a zombie nobody reaped yet (it runs nothing): what "the process was ended" can mean without waiting."""
  try:
    with open(f'/proc/{pid}/stat', encoding='utf-8') as f:
      return f.read().rsplit(')', 1)[1].split()[0] in ('Z', 'X')
  except FileNotFoundError:
    return True


# ---------------------------------------------------------------------------------------------------------------------
# Label proxy on real tables.


def decode(rows):
  """RecordBatch of rows as tfx-bsl decodes serialized tf.Examples (what the Beam job feeds the CombineFn)."""
  from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder
  return ExamplesToRecordBatchDecoder().DecodeBatch([to_example(r).SerializeToString() for r in rows])


def frame_rows(frame: pd.DataFrame):
  """tf.Example rows from a DataFrame; NaN cells are left out (a missing feature), as CsvExampleGen does."""
  rows = []
  for record in frame.to_dict('records'):
    row = {}
    for name, value in record.items():
      if isinstance(value, float) and np.isnan(value):
        continue
      row[name] = int(value) if isinstance(value, (np.integer, int)) and not isinstance(value, bool) else value
    rows.append(row)
  return rows


def random_split(frame: pd.DataFrame, seed: int = 0, eval_fraction: float = 1 / 3):
  """(train, eval) frames by a seeded coin per row: a split that carries no information about any feature."""
  mask = np.random.default_rng(seed).random(len(frame)) < eval_fraction
  return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def check(tmp_path, splits, label_key, beam_factory, **config):
  """The label-proxy check on DataFrames per split, through real records and Beam; returns the result as a dict."""
  from tfx_preflight.checks.label_proxy import check as label_proxy
  from tfx_preflight.config import LabelProxyConfig
  patterns = write_splits(str(tmp_path / 'data'), {s: frame_rows(f) for s, f in splits.items()})
  evals = [s for s in splits if s != 'train']
  return label_proxy.check_label_proxy(patterns, 'train', evals, LabelProxyConfig(**config), beam_factory,
                                       str(tmp_path / 'out'), label_key).to_dict()


# ---------------------------------------------------------------------------------------------------------------------
# Trainer modules for the loss probe.


def module(name: str) -> str:
  """Path of tests/modules/<name>.py, the Trainer modules the loss probe runs."""
  return os.path.join(MODULES, f'{name}.py')


def codes(findings, severity=None):
  """The distinct finding codes (of one severity, if given): what a test asserts without pinning messages."""
  return sorted({f['code'] for f in findings if severity is None or f['severity'] == severity})


# ---------------------------------------------------------------------------------------------------------------------
# Pages in a real browser.


def chromium_binary():
  """The first Chromium on PATH, or None: the browser tests skip without one."""
  for name in ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'):
    path = shutil.which(name)
    if path:
      return path
  return None


def dump_dom(page_path):
  """The DOM after load (scripts and error handlers given time to run) as Chromium serializes it."""
  binary = chromium_binary()
  if binary is None:
    pytest.skip('no chromium binary on PATH (Debian: apt-get install -y chromium); the HTML escaping is still checked '
                'without a browser by test_report.py')
  with tempfile.TemporaryDirectory() as profile:
    result = subprocess.run(
        [binary, '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
         f'--user-data-dir={profile}', '--virtual-time-budget=3000', '--dump-dom', f'file://{page_path}'],
        capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 0 and '<html' in result.stdout, result.stderr[-2000:]
  return result.stdout


class _Elements(html.parser.HTMLParser):
  """Every element and attribute of a serialized DOM, and its title."""

  def __init__(self):
    super().__init__(convert_charrefs=True)
    self.elements, self.title, self._in_title = [], '', False

  def handle_starttag(self, tag, attrs):
    self.elements.append((tag, dict(attrs)))
    # The document's title is the first <title> (SVG charts have their own, inside the body).
    self._in_title = tag == 'title' and not any(t == 'title' for t, _ in self.elements[:-1])

  def handle_endtag(self, tag):
    self._in_title = False

  def handle_data(self, data):
    if self._in_title:
      self.title += data


def parse(dom):
  """Elements, attributes and title of a DOM dump: what a script could have changed."""
  parser = _Elements()
  parser.feed(dom)
  return parser


def assert_nothing_injected(dom, expected_title):
  """No script ran (title unchanged) and no element that could run one, load one or handle an event survived."""
  page = parse(dom)
  assert page.title == expected_title, f'a script changed the title to {page.title!r}'
  tags = [tag for tag, _ in page.elements]
  assert 'script' not in tags and 'iframe' not in tags and 'object' not in tags and 'embed' not in tags
  for tag, attrs in page.elements:
    assert not [a for a in attrs if a.startswith('on')], f'event handler on <{tag} {attrs}>'
    if tag == 'img':
      assert attrs.get('src', '').startswith('data:'), f'<img> loading {attrs.get("src")!r}'
    for name in ('href', 'src', 'xlink:href'):
      assert not attrs.get(name, '').strip().lower().startswith('javascript:'), attrs
