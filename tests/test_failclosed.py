"""Fail closed (issue 12): no pass unless something was really checked, no payload read as something else, no report
left behind by a failed run, every user-given name checked against the data.

Each test reproduces one way the gate used to pass or leave a stale pass behind; CLI runs are in-process.
"""

import json
import os

import pytest

from tests.helpers import (
    PASSING_REPORT,
    PRIOR_ENTRIES,
    USER_ENTRIES,
    assert_usage_error,
    examples_artifact,
    files_under,
    fill,
    run_cli,
    run_executor,
    tabular_rows,
    write_examples_then_sequences,
    write_sequence_examples,
    write_splits,
)
from tfx_preflight import constants, executor, spec
from tfx_preflight.checks.skew.details import SkewDetails
from tfx_preflight.config import PreflightConfig
from tfx_preflight.report import build as report
from tfx_preflight.report.results import CheckResult, Finding

ALL_OFF = {'skew': {'mode': 'off'}, 'leakage': {'mode': 'off'}, 'loss': {'mode': 'off'}}
MODULES = os.path.join(os.path.dirname(__file__), 'modules')


@pytest.fixture(scope='module')
def base(tmp_path_factory):
  """800/200 rows of float f0..f3, string color, int id, 0/1 label (the issue's `base`)."""
  root = tmp_path_factory.mktemp('base')
  rows = tabular_rows(1000, seed=21)
  return write_splits(str(root / 'examples'), {'train': rows[:800], 'eval': rows[800:]})


def read_json(path):
  with open(path, encoding='utf-8') as f:
    return json.load(f)


# ---------------------------------------------------------------------------------------------------------------
# 1. One rule: pass only when something was compared.


def test_report_with_every_check_skipped_is_not_checked_and_not_blessed():
  result = report.build_report({}, 'train', ['eval'])
  assert result['verdict'] == constants.NOT_CHECKED
  assert not report.is_blessed(result)
  assert 'skew: not run' in result['verdict_reason'] and 'loss' in result['verdict_reason']
  assert report.findings_summary(result)[0].startswith('verdict: not_checked (nothing was checked: ')


def test_a_check_that_compared_no_feature_is_not_checked_not_pass():
  def skew(status='pass', findings=(), features=(), examples=5):
    return CheckResult(status, findings, details=SkewDetails({'eval': {f: {'distance': 0.01} for f in features}}, {},
                                                             {'train': 5, 'eval': examples}, [], {}, []))

  result = report.build_report({'skew': skew()}, 'train', ['eval'])
  assert result['checks']['skew']['status'] == constants.NOT_CHECKED
  assert result['checks']['skew']['reason'] == 'it compared no feature'
  assert result['verdict'] == constants.NOT_CHECKED and not report.is_blessed(result)

  assert report.build_report({'skew': skew(features=['f0'])}, 'train', ['eval'])['verdict'] == 'pass'
  empty_split = skew(features=['f0'], examples=0)
  assert report.build_report({'skew': empty_split}, 'train', ['eval'])['verdict'] == constants.NOT_CHECKED
  # A check that says nothing about what it compared proves nothing either (fail closed for new checks).
  assert report.build_report({'label_proxy': CheckResult('pass')}, 'train', ['eval'])['verdict'] == (
      constants.NOT_CHECKED)
  # A block is always earned, compared or not.
  blocked = skew('block', (Finding('skew', 'missing_in_split', 'block', 'x'),))
  assert report.build_report({'skew': blocked}, 'train', ['eval'])['verdict'] == 'block'


def test_cli_with_every_check_off_exits_2_saying_nothing_was_checked(tmp_path, capsys, base):
  (tmp_path / 'config.json').write_text(json.dumps(ALL_OFF))
  code, out, err = run_cli(capsys, 'check', '--train', base['train'], '--eval', base['eval'],
                           '--config', tmp_path / 'config.json', '--out', tmp_path / 'r')
  assert_usage_error(code, err, 'not checked', 'skew.mode is off', 'leakage.mode is off')
  result = read_json(tmp_path / 'r' / 'report.json')
  assert result['verdict'] == 'not_checked' and 'nothing was checked' in result['verdict_reason']
  assert 'verdict: not_checked' in out


def test_cli_checks_loss_with_loss_mode_off_is_not_checked(tmp_path, capsys, base):
  (tmp_path / 'config.json').write_text(json.dumps({'loss': {'mode': 'off'}}))
  code, _, err = run_cli(capsys, 'check', '--train', base['train'], '--eval', base['eval'], '--checks', 'loss',
                         '--module-file', os.path.join(MODULES, 'good_module.py'),
                         '--config', tmp_path / 'config.json', '--out', tmp_path / 'r')
  assert_usage_error(code, err, 'not checked', 'loss.mode is off')
  assert read_json(tmp_path / 'r' / 'report.json')['verdict'] == 'not_checked'


@pytest.mark.slow
def test_cli_skew_comparing_zero_features_is_not_checked(tmp_path, capsys, base):
  code, out, err = run_cli(capsys, 'check', '--train', base['train'], '--eval', base['eval'], '--checks', 'skew',
                           '--exclude-features', 'f0,f1,f2,f3,color,id,label', '--out', tmp_path / 'r')
  assert_usage_error(code, err, 'not checked', 'skew: it compared no feature')
  result = read_json(tmp_path / 'r' / 'report.json')
  assert result['checks']['skew']['status'] == 'not_checked', out


def test_executor_with_every_check_off_does_not_bless_and_fail_on_block_raises(tmp_path, base):
  examples = examples_artifact(os.path.dirname(os.path.dirname(base['train'])), ['train', 'eval'])
  _, blessing = run_executor(tmp_path / 'a', examples, PreflightConfig(**ALL_OFF).to_json())
  assert blessing.get_int_custom_property(spec.BLESSED_PROPERTY) == 0
  assert blessing.get_string_custom_property('verdict') == 'not_checked'
  assert (tmp_path / 'a' / 'blessing' / 'NOT_BLESSED').exists()
  with pytest.raises(executor.PreflightBlocked, match='(?s)verdict not_checked.*nothing was checked'):
    run_executor(tmp_path / 'b', examples, PreflightConfig(fail_on_block=True, **ALL_OFF).to_json())
  assert not (tmp_path / 'b' / 'blessing' / 'BLESSED').exists()


# ---------------------------------------------------------------------------------------------------------------
# 2. Payloads other than tf.Example are refused, never read as something else.


def test_sequence_examples_are_refused_by_content_in_cli_and_executor(tmp_path, capsys):
  root = tmp_path / 'examples'
  write_sequence_examples(str(root / 'Split-train' / 'data.gz'), 40, seed=1)
  # Eval: 100% copies of the train sequences with a new context (only the context would have been compared).
  evaluation = write_sequence_examples(str(root / 'Split-eval' / 'data.gz'), 40, seed=2)
  code, _, err = run_cli(capsys, 'check', '--train', root / 'Split-train' / '*', '--eval', root / 'Split-eval' / '*',
                         '--checks', 'skew,leakage', '--label-key', 'label', '--out', tmp_path / 'cli')
  assert_usage_error(code, err, 'tf.SequenceExample', 'FORMAT_TF_SEQUENCE_EXAMPLE', "split 'eval'", evaluation)
  assert not (tmp_path / 'cli' / 'report.json').exists()

  # Under an artifact that says FORMAT_TF_EXAMPLE (ImportExampleGen's default): refused by content.
  examples = examples_artifact(root, ['train', 'eval'])
  with pytest.raises(ValueError, match='record 0 is a tf.SequenceExample'):
    run_executor(tmp_path / 'a', examples, PreflightConfig(label_key='label').to_json())
  assert not (tmp_path / 'a' / 'blessing' / 'BLESSED').exists()

  # Under an artifact that says FORMAT_TF_SEQUENCE_EXAMPLE: refused by its payload_format, naming it.
  from tfx.components.util import examples_utils
  from tfx.proto import example_gen_pb2
  examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_SEQUENCE_EXAMPLE)
  with pytest.raises(ValueError, match='tf.Example payloads only.*FORMAT_TF_SEQUENCE_EXAMPLE'):
    run_executor(tmp_path / 'b', examples, PreflightConfig(label_key='label').to_json())
  assert not (tmp_path / 'b' / 'blessing' / 'BLESSED').exists()


def test_records_of_another_proto_are_refused():
  from tensorflow.core.example import example_pb2

  from tfx_preflight.inputs import records
  example = example_pb2.Example()
  example.features.feature['a'].float_list.value.append(1.0)
  assert records.payload_problem(example.SerializeToString()) is None
  assert records.payload_problem(b'') is None  # An empty tf.Example is still a tf.Example.
  sequence = example_pb2.SequenceExample()
  sequence.feature_lists.feature_list['s'].feature.add().float_list.value.append(1.0)
  assert 'SequenceExample' in records.payload_problem(sequence.SerializeToString())
  other = example.SerializeToString() + b'\x18\x05'  # An extra varint field 3: some other message.
  assert 'not a tf.Example' in records.payload_problem(other)


def test_sequence_examples_after_the_first_records_of_a_file_fail_the_run_naming_file_and_record(tmp_path, capsys,
                                                                                                  base):
  """Issue 30: 64 tf.Examples then 136 tf.SequenceExamples passed (only a file's first records were probed)."""
  mixed = write_examples_then_sequences(str(tmp_path / 'eval' / 'mixed.gz'), 64, 136)
  code, _, err = run_cli(capsys, 'check', '--train', base['train'], '--eval', mixed, '--checks', 'skew,leakage',
                         '--label-key', 'label', '--out', tmp_path / 'cli')
  assert_usage_error(code, err, "split 'eval'", f'{mixed} record 64 is a tf.SequenceExample')
  assert not (tmp_path / 'cli' / 'report.json').exists()


@pytest.mark.slow
def test_import_example_gen_of_sequence_examples_never_blesses(tmp_path):
  """R5 in a real pipeline: ImportExampleGen (default payload) -> Preflight (skew+leakage), 100% copied sequences."""
  from ml_metadata.metadata_store import metadata_store
  from tfx import v1 as tfx
  from tfx.proto import example_gen_pb2

  from tfx_preflight.component import Preflight
  data_root = tmp_path / 'data'
  write_sequence_examples(str(data_root / 'train' / 'data.gz'), 60, seed=1)
  write_sequence_examples(str(data_root / 'eval' / 'data.gz'), 60, seed=2)
  example_gen = tfx.components.ImportExampleGen(
      input_base=str(data_root),
      input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name='train', pattern='train/*'),
                                                 example_gen_pb2.Input.Split(name='eval', pattern='eval/*')]))
  preflight = Preflight(examples=example_gen.outputs['examples'], label_key='label', loss={'mode': 'off'})
  metadata_path = str(tmp_path / 'metadata.sqlite')
  pipeline = tfx.dsl.Pipeline(
      pipeline_name='sequence', pipeline_root=str(tmp_path / 'root'), components=[example_gen, preflight],
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))
  with pytest.raises(Exception) as raised:
    tfx.orchestration.LocalDagRunner().run(pipeline)
  chain, error = [], raised.value
  while error is not None:
    chain.append(str(error))
    error = error.__cause__ or error.__context__
  assert 'tf.SequenceExample' in '\n'.join(chain)
  store = metadata_store.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))
  blessed = [a.custom_properties['blessed'].int_value for a in store.get_artifacts()
             if 'blessed' in a.custom_properties]
  assert 1 not in blessed


# ---------------------------------------------------------------------------------------------------------------
# 3. Transactional report directory: a failed run leaves no report, a rerun reads nothing of the last one.

def failing_runs(tmp_path, base):
  """Command lines that fail (exit 2), each at a different stage: flags, config, files, CSV conversion, argparse."""
  (tmp_path / 'schema.pbtxt').write_text('feature { name: "f0" type: NOPE }')
  (tmp_path / 'config.txt').write_text('{not json')
  (tmp_path / 'train.csv').write_text('a,b,label\n1,2,0\n3,4,1\n')
  (tmp_path / 'ragged.csv').write_text('a,b,label\n1,2,0\n3,4\n')
  good = ['--train', base['train'], '--eval', base['eval']]
  return {
      'glob': ['--train', tmp_path / 'nothing-*.gz', '--eval', base['eval']],
      'module': [*good, '--module-file', tmp_path / 'nope.py'],
      'schema': [*good, '--schema', tmp_path / 'schema.pbtxt'],
      'config': [*good, '--config', tmp_path / 'config.txt'],
      'checks': [*good, '--checks', 'skew,bogus'],
      'ragged_csv': ['--train', tmp_path / 'train.csv', '--eval', tmp_path / 'ragged.csv', '--checks', 'leakage'],
      'argparse': [*good, '--format', 'parquet'],
  }


def test_whatever_out_holds_a_failing_run_leaves_no_report(tmp_path, capsys, base):
  """Property-style: random earlier contents of --out x every way to fail; never a report.json afterwards, the
  user's own files kept, and nothing of ours left where the directory was recognizably a report directory."""
  import random
  rng = random.Random(12)
  runs = failing_runs(tmp_path, base)
  for case, (name, argv) in enumerate(sorted(runs.items()) * 3):
    out = tmp_path / f'out-{case}'
    prior = sorted(rng.sample(sorted(PRIOR_ENTRIES), rng.randint(1, len(PRIOR_ENTRIES))))
    fill(out, prior)
    code, _, err = run_cli(capsys, 'check', *argv, '--out', out)
    assert code == 2, (name, err)
    left = files_under(out)
    assert not [f for f in left if os.path.basename(f) == 'report.json'], (name, prior, left)
    assert not [f for f in left if f.startswith('.tmp-')], (name, prior, left)
    assert [f for f in USER_ENTRIES if f in prior] == [f for f in USER_ENTRIES if f in left], (name, prior, left)
    if 'report.json' in prior or '.published' in prior:  # Recognizably ours (a page alone may be the user's).
      assert not {'report.html', 'statistics.html'} & set(left), (name, prior, left)
      assert 'leakage/duplicates.tsv' not in left, (name, prior, left)
    if 'report.json' in prior and '.published' not in prior:  # An older version's directory: its details go too.
      assert set(left) <= {*USER_ENTRIES, '.lock'}, (name, prior, left)


def test_executor_into_a_used_report_dir_fails_leaving_no_report(tmp_path, base):
  examples = examples_artifact(os.path.dirname(os.path.dirname(base['train'])), ['train', 'eval'])
  fill(tmp_path / 'report', [n for n in PRIOR_ENTRIES if n != '.published'])  # An older version's report dir.
  with pytest.raises(ValueError, match="label_key 'lable'"):
    run_executor(tmp_path, examples, PreflightConfig(label_key='lable', leakage={'mode': 'off'}).to_json())
  assert set(files_under(tmp_path / 'report')) == {*USER_ENTRIES, '.lock'}


def test_out_naming_a_file_is_a_one_line_error(tmp_path, capsys, base):
  (tmp_path / 'file').write_text('not a directory')
  code, _, err = run_cli(capsys, 'check', '--train', base['train'], '--eval', base['eval'], '--out', tmp_path / 'file')
  assert_usage_error(code, err, f'--out {tmp_path / "file"} is a file')
  code, _, err = run_cli(capsys, 'check', '--train', base['train'], '--eval', base['eval'],
                         '--out', tmp_path / 'file' / 'sub')
  assert_usage_error(code, err, '--out', 'cannot create the report directory')


def test_a_second_run_into_a_locked_out_is_refused(tmp_path, capsys, base):
  import fcntl
  out = tmp_path / 'r'
  fill(out, ['report.json', 'leakage/duplicates.tsv'])  # The first run's, still being written.
  with open(out / '.lock', 'a') as held:
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    code, _, err = run_cli(capsys, 'check', '--train', base['train'], '--eval', base['eval'], '--out', out)
  assert_usage_error(code, err, 'another tfx-preflight run is writing its report there', str(out / '.lock'))
  assert (out / 'report.json').read_text() == PASSING_REPORT  # Not ours to touch while the other run holds it.


@pytest.mark.slow
def test_rerun_into_a_used_out_reads_nothing_of_the_last_run(tmp_path, capsys):
  """R3: three eval CSV files, then one: the rerun counts 50 eval rows, not 150 (no stale staged CSV read again),
  and its report directory holds no detail file of the first run (duplicates.tsv of a check now off)."""
  import pandas as pd
  rows = pd.DataFrame(tabular_rows(300, seed=31))
  rows.iloc[:150].to_csv(tmp_path / 'train.csv', index=False)
  for i in range(3):
    rows.iloc[150 + 50 * i:200 + 50 * i].to_csv(tmp_path / f'eval-{i}.csv', index=False)
  out = tmp_path / 'r'
  code, out_text, err = run_cli(capsys, 'check', '--train', tmp_path / 'train.csv', '--eval', tmp_path / 'eval-*.csv',
                                '--checks', 'leakage', '--label-key', 'label', '--out', out)
  assert code == 0, out_text + err
  assert read_json(out / 'report.json')['checks']['leakage']['examples']['eval'] == 150
  assert (out / 'leakage' / 'duplicates.tsv').exists()
  code, out_text, err = run_cli(capsys, 'check', '--train', tmp_path / 'train.csv', '--eval', tmp_path / 'eval-0.csv',
                                '--checks', 'skew', '--label-key', 'label', '--exclude-features', 'id', '--out', out)
  assert code == 0, out_text + err
  result = read_json(out / 'report.json')
  assert result['checks']['skew']['num_examples']['eval'] == 50
  assert not (out / 'leakage').exists()
  assert not [n for n in os.listdir(out) if n.startswith('.tmp-')]


# ---------------------------------------------------------------------------------------------------------------
# 4. Every name and number the user gives is checked, whichever checks run.


@pytest.mark.parametrize('flags, named', [
    (['--label-key', 'lable', '--checks', 'leakage'], "label_key 'lable' is not a feature of split 'train'"),
    (['--label-key', 'lable', '--checks', 'skew'], "label_key 'lable' is not a feature of split 'train'"),
    (['--exclude-features', 'idd', '--checks', 'leakage'], "names 'idd'"),
    (['--exclude-features', 'idd', '--checks', 'skew'], "exclude_features names 'idd'"),
    (['--group-key', 'user', '--checks', 'skew'], "leakage.group_key 'user' is not a feature of split 'train'"),
])
def test_a_misspelled_name_fails_naming_the_available_features(tmp_path, capsys, base, flags, named):
  code, _, err = run_cli(capsys, 'check', '--train', base['train'], '--eval', base['eval'], *flags,
                         '--out', tmp_path / 'r')
  assert_usage_error(code, err, named, 'color', 'f0')
  assert not (tmp_path / 'r' / 'report.json').exists()


def test_leakage_only_with_a_misspelled_label_does_not_pass_where_the_right_one_blocks(tmp_path, capsys):
  """R6: 50% of eval copies train (same label; copies with another label are label conflicts, which warn):
  --label-key label blocks, --label-key lable must not pass."""
  rows = tabular_rows(400, seed=41)
  copies = [dict(r, id=10_000 + i) for i, r in enumerate(rows[:100])]
  patterns = write_splits(str(tmp_path / 'examples'), {'train': rows[:300], 'eval': rows[300:] + copies})
  argv = ['check', '--train', patterns['train'], '--eval', patterns['eval'], '--checks', 'leakage',
          '--exclude-features', 'id']
  code, out, _ = run_cli(capsys, *argv, '--label-key', 'label', '--out', tmp_path / 'right')
  assert code == 1, out
  code, _, err = run_cli(capsys, *argv, '--label-key', 'lable', '--out', tmp_path / 'typo')
  assert_usage_error(code, err, "label_key 'lable' is not a feature of split 'train'", 'label')
  assert not (tmp_path / 'typo' / 'report.json').exists()


@pytest.mark.parametrize('config, named', [
    ({'loss': {'timeout_seconds': float('inf')}}, 'loss.timeout_seconds must be a finite'),
    ({'loss': {'timeout_seconds': 1e12}}, 'loss.timeout_seconds must be at most'),
    ({'loss': {'memory_limit_mb': 1e30}}, 'loss.memory_limit_mb must be a non-negative integer'),
    ({'loss': {'memory_limit_mb': 10 ** 30}}, 'loss.memory_limit_mb must be at most'),
    ({'skew': {'numeric_threshold': float('inf')}}, 'skew.numeric_threshold must be a finite'),
    ({'leakage': {'max_samples': 2.5}}, 'leakage.max_samples must be a non-negative integer'),
    ({'skew': {'exclude_features': 5}}, 'skew.exclude_features must be a list of feature names'),
    ({'leakage': {'exclude_features': 'id'}}, 'leakage.exclude_features must be a list'),
    ({'eval_splits': 'eval'}, 'eval_splits must be a list of split names'),
])
def test_numbers_and_lists_out_of_range_are_refused_naming_the_setting(config, named):
  from tfx_preflight.config import ConfigError
  with pytest.raises(ConfigError, match=named):
    PreflightConfig(**config)


def test_component_refuses_a_bare_string_for_eval_splits():
  from tfx.types import channel_utils, standard_artifacts

  from tfx_preflight.component import Preflight
  from tfx_preflight.config import ConfigError
  examples = channel_utils.as_channel([standard_artifacts.Examples()])
  with pytest.raises(ConfigError, match="eval_splits must be a list of split names.*Got 'eval'"):
    Preflight(examples=examples, eval_splits='eval')
  assert Preflight(examples=examples, eval_splits=['eval']).exec_properties[spec.CONFIG_KEY]


# ---------------------------------------------------------------------------------------------------------------
# 5. Weak points: odd file names, pages that fetch code at view time.


def test_file_names_with_tab_and_newline_keep_duplicates_tsv_one_row_per_example(tmp_path, capsys):
  from tests.helpers import write_tfrecords
  rows = tabular_rows(200, seed=51)
  train = write_tfrecords(str(tmp_path / 'train' / 'data.gz'), rows[:150])
  evil = str(tmp_path / 'eval' / 'a\tb\nc\\d.gz')
  write_tfrecords(evil, rows[150:] + rows[:10])  # 10 copies of train rows.
  code, out, err = run_cli(capsys, 'check', '--train', train, '--eval', str(tmp_path / 'eval' / '*'),
                           '--checks', 'leakage', '--label-key', 'label', '--out', tmp_path / 'r')
  assert code == 1, out + err
  lines = (tmp_path / 'r' / 'leakage' / 'duplicates.tsv').read_text().splitlines()
  header = lines[0].split('\t')
  assert header[:5] == ['kind', 'hash', 'split', 'file', 'record_index']
  fields = [line.split('\t') for line in lines[1:]]
  assert all(len(f) == len(header) for f in fields)  # One field per header column, near rows included.
  # 10 train + 10 eval rows of exact copies (exact rows leave the near-pair columns empty); near-duplicates, on by
  # default, add a line per eval example with its train partner.
  fields = [f for f in fields if f[0] == 'exact']
  assert len(fields) == 20
  eval_files = {f[3] for f in fields if f[2] == 'eval'}
  assert eval_files == {evil.replace('\\', '\\\\').replace('\t', '\\t').replace('\n', '\\n')}


@pytest.mark.slow
def test_statistics_html_is_static_and_self_contained(tmp_path, capsys, base):
  code, out, err = run_cli(capsys, 'check', '--train', base['train'], '--eval', base['eval'], '--checks', 'skew',
                           '--label-key', 'label', '--exclude-features', 'id', '--out', tmp_path / 'r')
  assert code == 0, out + err
  page = (tmp_path / 'r' / 'statistics.html').read_text()
  assert '<script' not in page and 'src=' not in page and 'import' not in page
  assert 'cdnjs' not in page and 'githubusercontent' not in page and 'http' not in page.replace('http-equiv', '')
  assert "default-src 'none'" in page
  for feature in ('f0', 'color', 'label'):
    assert f'<td class="name" rowspan="2">{feature}</td>' in page
  assert '800 examples' in page and '200 examples' in page
