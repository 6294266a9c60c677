"""tfx-preflight command line: the same checks and report as the component, on files, without a pipeline.

Exit status: 0 pass or warn, 1 block, 2 bad usage, unreadable input or nothing checked (verdict not_checked), with a
one-line reason on stderr; 129 / 130 / 143 interrupted by SIGHUP / SIGINT (Ctrl-C) / SIGTERM before the report was
complete, leaving no report (interrupts.py: a signal after it changes nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import itertools
import json
import logging
import os
import shutil
import sys
import tempfile
from typing import Iterator, List, Optional, Sequence, Tuple

# Only light modules at the top: --help and usage errors must answer in well under a second, without importing
# TensorFlow, TFX or Beam (run_check imports them once the arguments are known to be good).
from tfx_preflight import constants, file_io, interrupts
from tfx_preflight.config import CHECK_NAMES, ConfigError, PreflightConfig
from tfx_preflight.report import progress

EXIT_OK, EXIT_BLOCK, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
  """argparse exits 2 on bad usage already; keep its message to one line."""

  def error(self, message: str):
    self.exit(EXIT_USAGE, f'tfx-preflight: error: {message}\n')


def build_parser() -> argparse.ArgumentParser:
  parser = _Parser(prog='tfx-preflight', description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest='command', required=True)
  check = sub.add_parser('check', help='check train/eval files and write a report',
                         description='Check train/eval files and write report.json and report.html. '
                                     'Arguments after "--" are passed to Beam (e.g. --direct_num_workers=2).')
  check.error = parser.error  # One-line usage errors for the subcommand too.
  check.add_argument('--train', required=True, metavar='PATTERN', help='train files (tf.Example TFRecord or CSV)')
  check.add_argument('--eval', required=True, action='append', metavar='PATTERN',
                     help='eval files; repeat for several eval splits (named eval, eval_2, ...)')
  check.add_argument('--format', choices=('tfrecord', 'csv'), help='input format (default: by file extension)')
  check.add_argument('--schema', metavar='FILE', help='TFDV schema (text proto) with skew/drift comparators')
  check.add_argument('--module-file', metavar='FILE', help='Trainer module file, for the loss check')
  check.add_argument('--run-fn', metavar='NAME',
                     help="as Trainer takes it: run_fn's name in --module-file, or a dotted package.module.run_fn")
  check.add_argument('--custom-config', metavar='JSON', help="Trainer's custom_config (a JSON object), for run_fn")
  check.add_argument('--transform-graph', metavar='DIR', help="Transform's transform_graph output, for the loss check")
  check.add_argument('--transformed-train', metavar='PATTERN',
                     help='transformed train examples Trainer reads (default: a sample transformed with the graph)')
  check.add_argument('--transformed-eval', action='append', metavar='PATTERN',
                     help='transformed eval examples, one per --eval')
  check.add_argument('--label-key', metavar='KEY', help='label feature')
  check.add_argument('--exclude-features', default='', metavar='A,B',
                     help='features left out of hashing and comparison (IDs, timestamps)')
  check.add_argument('--group-key', metavar='KEY', help='entity feature (e.g. user_id) for group leakage')
  check.add_argument('--history', action='append', default=[], metavar='DIR',
                     help='train hashes of an earlier run (its --save-history DIR); eval is also joined with them')
  check.add_argument('--save-history', metavar='DIR',
                     help="save the train data's content hashes here when the run blesses (for a later --history)")
  check.add_argument('--checks', metavar='LIST',
                     help='comma-separated subset of skew,leakage,loss,label_proxy (default: every check whose inputs are given)')
  check.add_argument('--config', metavar='FILE', help='JSON PreflightConfig with thresholds; flags override it')
  check.add_argument('--out', default='preflight_report', metavar='DIR', help='report directory')
  check.add_argument('--summary-md', metavar='FILE',
                     help='also write a Markdown summary (e.g. "$GITHUB_STEP_SUMMARY"), on pass and on block')
  check.add_argument('--junit-xml', metavar='FILE',
                     help='also write JUnit XML, one test case per check (block = failure, skipped = skipped)')
  check.add_argument('-v', '--verbose', action='store_true',
                     help='also show the libraries\' logs (TensorFlow, absl, Beam) and full tracebacks')
  return parser


class UsageError(ValueError):
  """An argument names a file that does not exist; found before any heavy import."""


def _input_errors() -> Tuple[type, ...]:
  """The errors that mean bad usage or input (exit 2). `data.InputError` can only have been raised once `data` is
  imported, so asking for it never imports TFX."""
  data = sys.modules.get('tfx_preflight.inputs.data')
  return (ConfigError, UsageError) + ((data.InputError,) if data is not None else ())


def _surely_missing(pattern: str) -> bool:
  """True when a local pattern certainly matches no file (else the full check decides). Python's glob skips hidden
  files and TF's does not, so a wildcard in the file name is matched as gfile matches it (file_io.glob)."""
  path = os.path.abspath(pattern)
  directory, name = os.path.split(path)
  if glob.has_magic(directory):  # Only a missing fixed leading directory is certain.
    fixed = itertools.takewhile(lambda part: not glob.has_magic(part), directory.split(os.sep))
    return not os.path.isdir(os.sep.join(fixed) or os.sep)
  if not glob.has_magic(name):
    return not (os.path.isfile(path) or os.path.isdir(path))  # A directory stands for its files.
  return not any(os.path.isfile(match) for match in file_io.glob(path))  # A missing directory matches nothing.


def _check_local_paths(args: argparse.Namespace) -> None:
  """Missing local files and patterns fail fast, with the messages the full checks would give."""
  if args.module_file and not os.path.isfile(args.module_file):  # Imported by the probe: a local file.
    raise UsageError(f'--module-file: no file {args.module_file!r}.')
  if args.schema and '://' not in args.schema and not os.path.isfile(args.schema):
    raise UsageError(f'--schema: no file {args.schema!r}.')
  named = [('--train', args.train)] + [(f'--eval ({s})', p) for s, p in zip(_split_names(len(args.eval)), args.eval)]
  for what, pattern in named:
    if '://' not in pattern and _surely_missing(pattern):
      raise UsageError(f'{what}: no file matches {os.path.abspath(pattern)!r}.')
  _check_summaries_overwrite_no_input(args)


def _local_files(pattern: Optional[str]) -> List[str]:
  """The local files a flag's pattern names (a directory stands for every file under it)."""
  if not pattern or '://' in pattern:
    return []
  found = []
  for path in file_io.glob(os.path.abspath(pattern)) or [os.path.abspath(pattern)]:  # Hidden files too, as TF reads.
    if os.path.isdir(path):
      found.extend(os.path.join(d, f) for d, _, names in os.walk(path) for f in names)
    elif os.path.lexists(path):
      found.append(path)
  return found


def _check_summaries_overwrite_no_input(args: argparse.Namespace) -> None:
  """--summary-md and --junit-xml are replaced whole: never one of the run's inputs (a typo away from --train)."""
  inputs = {}
  for flag, value in [('--train', args.train), *(('--eval', p) for p in args.eval), ('--schema', args.schema),
                      ('--module-file', args.module_file), ('--config', args.config),
                      ('--transform-graph', args.transform_graph), ('--transformed-train', args.transformed_train),
                      *(('--transformed-eval', p) for p in args.transformed_eval or [])]:
    for path in _local_files(value):
      inputs.setdefault(os.path.realpath(path), (flag, path))
  targets = [(flag, value) for flag, value in (('--summary-md', args.summary_md), ('--junit-xml', args.junit_xml))
             if value and '://' not in value]
  for flag, value in targets:
    named = inputs.get(os.path.realpath(value))
    if named:
      raise UsageError(f'{flag} {value!r} is an input of this run ({named[0]} {named[1]!r}); it would be overwritten '
                       'with the summary. Name another file.')
  if len(targets) == 2 and os.path.realpath(targets[0][1]) == os.path.realpath(targets[1][1]):
    raise UsageError(f'--summary-md and --junit-xml name the same file {targets[0][1]!r}; name two files.')


def _split_names(n_eval: int) -> List[str]:
  return ['eval'] + [f'eval_{i}' for i in range(2, n_eval + 1)]


def _csv_list(value: str) -> List[str]:
  return [v.strip() for v in value.split(',') if v.strip()]


def config_from_args(args: argparse.Namespace) -> PreflightConfig:
  """Flags over an optional --config file; --checks switches unlisted checks off."""
  base = {}
  if args.config:
    try:
      with open(args.config, encoding='utf-8') as f:
        text = f.read()
    except (OSError, UnicodeDecodeError) as e:
      raise ConfigError(f'--config {args.config}: {e}') from e
    from tfx_preflight.config import parse_config_file  # pylint: disable=g-import-not-at-top  # Light.
    base = parse_config_file(text, f'--config {args.config}')
  base.pop('eval_splits', None)
  base.pop('train_split', None)
  sections = {name: dict(base.pop(name, None) or {}) for name in CHECK_NAMES}
  if args.label_key:
    base['label_key'] = args.label_key
  excluded = _csv_list(args.exclude_features)
  if excluded:
    base['exclude_features'] = sorted(set(base.get('exclude_features', [])) | set(excluded))
  if args.group_key:
    sections[constants.LEAKAGE]['group_key'] = args.group_key
  if args.checks is not None:
    wanted = _csv_list(args.checks)
    unknown = sorted(set(wanted) - set(CHECK_NAMES))
    if unknown or not wanted:
      raise ConfigError(f'--checks takes a comma-separated subset of {",".join(CHECK_NAMES)}. Got {args.checks!r}.')
    if constants.LOSS in wanted and not args.module_file and not args.run_fn:
      raise ConfigError('--checks loss needs --module-file or --run-fn (the Trainer code to check).')
    if constants.LABEL_PROXY in wanted and not (args.label_key or base.get('label_key')):
      raise ConfigError('--checks label_proxy needs --label-key (the label a feature could give away).')
    base['checks'] = [name for name in CHECK_NAMES if name in wanted]  # The others are skipped as left out.
  return PreflightConfig(train_split='train', eval_splits=tuple(_split_names(len(args.eval))), **base, **sections)


def _check_beam_options(beam_args: Sequence[str]) -> None:
  """Beam's own parse of the arguments after '--', before anything runs: a bad value, an option Beam does not know
  (Beam would drop it with a warning) or a runner it does not know is named as a Beam option error, not as input that
  cannot be checked. argparse's usage text, which Beam prints before exiting, is kept to its one error line."""
  import io

  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions

  from tfx_preflight.inputs.data import InputError
  what = f'Beam pipeline options (after "--": {" ".join(beam_args)})'
  said = io.StringIO()
  try:
    with contextlib.redirect_stderr(said):
      options = PipelineOptions(list(beam_args))
      unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(options.get_all_options()))
      pipeline = beam.Pipeline(options=options)  # Resolves the runner.
      shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)  # Beam removes it when a pipeline runs; this one won't.
  except (Exception, SystemExit) as e:  # argparse exits on a bad value; an unknown runner is a ValueError.
    errors = [line.split('error:', 1)[1].strip() for line in said.getvalue().splitlines() if 'error:' in line]
    reason = errors[-1] if errors else ' '.join(str(e).split())[:400]
    raise InputError(f'{what}: {reason}') from e
  if unknown:
    raise InputError(f'{what}: Beam knows no option {", ".join("--" + name for name in unknown)}.')


def _make_pipeline_factory(beam_args: Sequence[str]):
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions

  _check_beam_options(beam_args)

  def make_pipeline() -> beam.Pipeline:
    return beam.Pipeline(options=PipelineOptions(list(beam_args)))
  return make_pipeline


def _read_schema(path: str):
  from tfx.utils import io_utils

  from tfx_preflight.inputs.data import InputError
  try:
    return io_utils.SchemaReader().read(path)
  except Exception as e:  # A text-format parse error: say which file.
    raise InputError(f'--schema {path}: not a TFDV schema text proto: {str(e).splitlines()[0]}') from e


def _out_dir(value: str) -> str:
  return value if '://' in value else os.path.abspath(value)


def _add_trainer_inputs(args: argparse.Namespace, inputs) -> None:
  """--run-fn, --custom-config, --transform-graph and --transformed-train/--transformed-eval: what Trainer takes."""
  inputs.run_fn = args.run_fn
  if args.run_fn and not args.module_file and '.' not in args.run_fn:
    raise ConfigError(f'--run-fn {args.run_fn!r}: without --module-file it must be a dotted path '
                      '(package.module.run_fn), as Trainer takes it.')
  if args.custom_config is not None:
    try:
      inputs.custom_config = json.loads(args.custom_config)
    except json.JSONDecodeError as e:
      raise ConfigError(f'--custom-config: not JSON: {e}') from e
    if not isinstance(inputs.custom_config, dict):
      raise ConfigError(f'--custom-config must be a JSON object, as Trainer requires. Got {args.custom_config!r}.')
  if args.transform_graph:
    from tfx_preflight.inputs.data import InputError
    if not os.path.isdir(os.path.join(args.transform_graph, 'transform_fn')):
      raise InputError(f'--transform-graph: {args.transform_graph!r} is not a Transform output (no transform_fn/).')
    inputs.transform_graph_uri = os.path.abspath(args.transform_graph)
  transformed_eval = list(args.transformed_eval or [])
  if bool(args.transformed_train) != bool(transformed_eval):
    raise ConfigError('--transformed-train and --transformed-eval go together (one --transformed-eval per --eval).')
  if args.transformed_train:
    if len(transformed_eval) != len(args.eval):
      raise ConfigError(f'--transformed-eval: {len(transformed_eval)} given for {len(args.eval)} --eval.')
    from tfx_preflight.inputs import data
    patterns = {'train': args.transformed_train, **dict(zip(_split_names(len(args.eval)), transformed_eval))}
    for split, pattern in patterns.items():
      data.matching_files(os.path.abspath(pattern), f'--transformed-{"train" if split == "train" else "eval"}')
    inputs.transformed_examples = {s: os.path.abspath(p) for s, p in patterns.items()}


def _write_summaries(args: argparse.Namespace, result, report_path: str) -> None:
  """--summary-md and --junit-xml, written whatever the verdict (CI shows them most when it blocks)."""
  from tfx_preflight import file_writes
  from tfx_preflight.report import summaries
  if args.summary_md:
    file_writes.write_atomically(args.summary_md, summaries.to_markdown(result, report_path))
  if args.junit_xml:
    file_writes.write_atomically(args.junit_xml, summaries.to_junit_xml(result, report_path))


def _invalidate(out: str) -> None:
  """A run that fails before it starts is a failed run too: no earlier report may stay in its --out to be read as
  its result. Light when there is nothing to invalidate (usage errors stay fast); never hides the usage error."""
  try:
    if '://' not in out and not (os.path.isdir(out) and set(os.listdir(out)) - {constants.LOCK_FILE}):
      return  # Nothing there, or only the lock every run leaves: no TFX import for nothing (usage errors stay fast).
    from tfx_preflight.report import report_dir
    if '://' in out or os.path.isdir(out):
      report_dir.clear(out, '--out')
  except Exception:  # pylint: disable=broad-except  # The usage error is what the user needs to see.
    pass


def _is_file(path: str) -> bool:
  """Local or remote (gs://, s3://...: through file_io, TFX's fileio, as Trainer resolves module_file)."""
  if '://' not in path:
    return os.path.isfile(path)
  try:
    return file_io.exists(path) and not file_io.isdir(path)
  except Exception:  # Unknown scheme or no credentials: let the loss check say why it cannot read it.
    return True


@contextlib.contextmanager
def _csv_staging(needed: bool) -> Iterator[Optional[str]]:
  """A fresh temporary directory for CSV converted to TFRecords, private to this run and removed after it."""
  if not needed:
    yield None
    return
  staging = tempfile.mkdtemp(prefix='tfx-preflight-csv-')
  try:
    with interrupts.removed_on_forced_exit(staging):
      yield staging
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def run_check(args: argparse.Namespace, beam_args: Sequence[str],
              received: Optional[interrupts.Received] = None) -> int:
  out = _out_dir(args.out)
  try:  # Light checks first: a bad flag or a missing file answers without importing TFX.
    config = config_from_args(args)
    _check_local_paths(args)
  except (ConfigError, UsageError):
    _invalidate(out)
    raise
  from tfx_preflight.report import build as report_lib  # Heavy (TFX): only once the arguments are known to be good.
  from tfx_preflight.report import report_dir

  # Whatever --out holds is invalidated first, so a run failing on anything below leaves no report there. The
  # rename of report.json is the commit point: a signal after it no longer stops the run (interrupts.py).
  commit = received.commit if received is not None else contextlib.nullcontext
  with report_dir.transaction(out, '--out', commit) as work, interrupts.removed_on_forced_exit(work):
    result = _check(args, beam_args, work, config)
  report_path = os.path.join(out, constants.REPORT_HTML)
  _write_summaries(args, result, report_path)
  print('\n'.join(report_lib.findings_summary(result)))
  print(f'report: {report_path}')
  if result['verdict'] == constants.NOT_CHECKED:  # Not a pass: say on stderr what was not checked and why.
    print(f'tfx-preflight: not checked, {result["verdict_reason"]}', file=sys.stderr)
    return EXIT_USAGE
  return EXIT_BLOCK if result['verdict'] == constants.BLOCK else EXIT_OK


def _check(args: argparse.Namespace, beam_args: Sequence[str], work: str, config: PreflightConfig) -> dict:
  """Runs the checks; the report is written under `work`, the run's fresh directory, and CSV is staged in a temp
  directory private to this run and removed after it, so nothing of an earlier run is ever read again."""
  from tfx_preflight import run
  from tfx_preflight.inputs import csv_staging, data

  if args.module_file and not _is_file(args.module_file):
    raise data.InputError(f'--module-file: no file {args.module_file!r}.')
  make_pipeline = _make_pipeline_factory(beam_args)
  # Absolute paths: the loss check runs the user's input_fn in a subprocess with another working directory.
  patterns = {split: data.directory_pattern(p if '://' in p else os.path.abspath(p))
              for split, p in {'train': args.train, **dict(zip(_split_names(len(args.eval)), args.eval))}.items()}
  files = {split: data.matching_files(p, '--train' if split == 'train' else f'--eval ({split})')
           for split, p in patterns.items()}
  formats = {split: data.detect_format(patterns[split], files[split], args.format) for split in patterns}
  if len(set(formats.values())) > 1:
    raise data.InputError(f'train and eval files must have one format; got {formats}. Pass --format.')
  examples = dict(patterns)
  with _csv_staging(formats['train'] == 'csv') as staging:
    locations = None
    if staging:
      examples = csv_staging.csv_to_tfrecords(files, make_pipeline, staging)
      locations = csv_staging.csv_locations(examples)
    inputs = run.PreflightInputs(examples=examples, module_file=args.module_file,
                                 schema=_read_schema(args.schema) if args.schema else None,
                                 provenance={'train': args.train, 'eval': list(args.eval)}, csv_locations=locations)
    _add_trainer_inputs(args, inputs)
    inputs.history = [os.path.abspath(d) if '://' not in d else d for d in args.history]
    inputs.save_history = (os.path.abspath(args.save_history) if args.save_history and '://' not in args.save_history
                           else args.save_history)
    return run.check_and_write(inputs, config, make_pipeline, work)[1]


def _invalidate_after_usage_error(argv: Sequence[str]) -> None:
  """A `check` command line that does not even parse leaves no earlier report in its --out either."""
  if 'check' not in argv:
    return
  pre = argparse.ArgumentParser(add_help=False)
  pre.add_argument('--out', default='preflight_report')
  try:
    out = _out_dir(pre.parse_known_args(argv)[0].out)
  except BaseException:  # pylint: disable=broad-except  # argparse may exit; the usage error is what matters.
    return
  if not {'-v', '--verbose'} & set(argv):  # Clearing a report imports TFX: its logs would bury the usage error.
    progress.quiet_libraries()
  _invalidate(out)


def main(argv: Optional[Sequence[str]] = None) -> int:
  whole_process = argv is None  # The console script or `python -m`, not a caller in the same process.
  argv = list(sys.argv[1:] if argv is None else argv)
  beam_args: List[str] = []
  if '--' in argv:
    cut = argv.index('--')
    argv, beam_args = argv[:cut], argv[cut + 1:]
  try:
    args = build_parser().parse_args(argv)
  except SystemExit as e:  # --help and usage errors: return the code so main() is callable in-process.
    if e.code:
      _invalidate_after_usage_error(argv)
    return int(e.code or 0)
  logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format='%(levelname)s %(message)s')
  if not args.verbose:  # Before TensorFlow is imported: its C++ log level is read once, at import.
    progress.quiet_libraries()
  progress.enable()
  # Ctrl-C and SIGTERM unwind the run like an error (every `finally` cleans up), then end it with one line.
  out = _out_dir(args.out)
  with interrupts.raised_in_main_thread(lambda signum: _forced_exit(signum, out)) as received:
    status = _run_and_report_errors(args, beam_args, received, whole_process)
    if received.late_signum is not None:  # After the commit point: the run is complete, its status stands.
      print(f'tfx-preflight: {interrupts.name(received.late_signum)} came after the report was complete; it stands '
            f'(exit status {status}).', file=sys.stderr)
    if whole_process:
      # Exit here, with the handlers still installed: a signal during the interpreter's teardown (~1 s with TensorFlow
      # loaded) would otherwise end a complete run with 128 + its number. Cleaned up already (see exit_process).
      interrupts.exit_process(status)
    return status


def _run_and_report_errors(args: argparse.Namespace, beam_args: Sequence[str], received: interrupts.Received,
                           whole_process: bool = False) -> int:
  try:
    return run_check(args, beam_args, received)
  except BaseException as e:  # pylint: disable=broad-except
    # Interrupted: decided by the signal received, not by the exception's type (a library may have wrapped it).
    if received.signum is not None:
      # Beam's worker processes (and its threads watching them) would print their tracebacks after the line below.
      stream = interrupts.quiet_the_rest() if whole_process else sys.stderr
      out = _out_dir(args.out)
      # No report from an interrupted run, wherever the signal came before the commit point: before the run
      # invalidated --out (e.g. while TFX imports), or half-way through publishing.
      _invalidate(out)
      print(_interrupted(received.signum, out), file=stream)
      stream.flush()
      return interrupts.exit_status(received.signum)
    if isinstance(e, _input_errors()):
      print(f'tfx-preflight: {e}', file=sys.stderr)
      return EXIT_USAGE
    if not isinstance(e, Exception):  # SystemExit, a KeyboardInterrupt raised by code rather than by a signal.
      raise
    if args.verbose:  # Unreadable input surfaces from deep inside Beam/TF: one line, full trace with -v.
      logging.exception('tfx-preflight failed')
    reason = ' '.join(str(e).split()) or type(e).__name__
    print(f'tfx-preflight: cannot check the input: {type(e).__name__}: {reason[:500]}', file=sys.stderr)
    return EXIT_USAGE
  finally:
    progress.disable()  # main() may run in-process (tests, notebooks): the next executor run logs its stages.


def _interrupted(signum: int, out: str) -> str:
  """The one line an interrupted run ends with."""
  try:
    if '://' in out:
      left = file_io.exists(os.path.join(out, constants.REPORT_JSON))
    else:
      left = os.path.isfile(os.path.join(out, constants.REPORT_JSON))
  except Exception:  # pylint: disable=broad-except
    left = False
  where = f"the report.json in {out} is not this run's" if left else f'no report was written to {out}'
  return f'tfx-preflight: interrupted ({interrupts.name(signum)}); {where}'


def _forced_exit(signum: int, out: str) -> str:
  """The last resort when the run did not unwind within interrupts.GRACE_SECONDS (the timer's thread runs this, then
  the process exits): without TFX, remove report.json (the commit marker) from a local --out unless another run holds
  the lock (this one then holds it, inside its transaction: report.json is gone already). The next run clears the
  rest."""
  if '://' not in out and os.path.isfile(os.path.join(out, constants.REPORT_JSON)):
    import fcntl
    with contextlib.suppress(OSError), open(os.path.join(out, constants.LOCK_FILE), 'a', encoding='utf-8') as handle:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # As report_dir does (importing it imports TFX).
      os.remove(os.path.join(out, constants.REPORT_JSON))
  return _interrupted(signum, out)


if __name__ == '__main__':
  sys.exit(main())
