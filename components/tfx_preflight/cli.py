"""tfx-preflight command line: the same checks and report as the component, on files, without a pipeline.

Exit status: 0 pass or warn, 1 block, 2 bad usage or unreadable input (with a one-line reason on stderr).
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import itertools
import json
import logging
import os
import sys
from typing import List, Optional, Sequence, Tuple

# Only light modules at the top: --help and usage errors must answer in well under a second, without importing
# TensorFlow, TFX or Beam (run_check imports them once the arguments are known to be good).
from tfx_preflight import progress
from tfx_preflight.config import ConfigError, PreflightConfig

EXIT_OK, EXIT_BLOCK, EXIT_USAGE = 0, 1, 2
CHECKS = ('skew', 'leakage', 'loss')


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
  check.add_argument('--label-key', metavar='KEY', help='label feature')
  check.add_argument('--exclude-features', default='', metavar='A,B',
                     help='features left out of hashing and comparison (IDs, timestamps)')
  check.add_argument('--group-key', metavar='KEY', help='entity feature (e.g. user_id) for group leakage')
  check.add_argument('--checks', metavar='LIST',
                     help='comma-separated subset of skew,leakage,loss (default: every check whose inputs are given)')
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
  data = sys.modules.get('tfx_preflight.data')
  return (ConfigError, UsageError) + ((data.InputError,) if data is not None else ())


def _surely_missing(pattern: str) -> bool:
  """True when a local pattern certainly matches no file (else the full check decides). Python's glob skips hidden
  files and TF's does not, so a wildcard in the file name is matched against every name in its directory."""
  path = os.path.abspath(pattern)
  directory, name = os.path.split(path)
  if glob.has_magic(directory):  # Only a missing fixed leading directory is certain.
    fixed = itertools.takewhile(lambda part: not glob.has_magic(part), directory.split(os.sep))
    return not os.path.isdir(os.sep.join(fixed) or os.sep)
  if not glob.has_magic(name):
    return not os.path.isfile(path)
  if not os.path.isdir(directory):
    return True
  return not any(fnmatch.fnmatchcase(entry, name) and os.path.isfile(os.path.join(directory, entry))
                 for entry in os.listdir(directory))


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
        base = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
      raise ConfigError(f'--config {args.config}: {e}') from e
    if not isinstance(base, dict):
      raise ConfigError(f'--config {args.config}: must hold a JSON object.')
  base.pop('eval_splits', None)
  base.pop('train_split', None)
  sections = {name: dict(base.pop(name, None) or {}) for name in CHECKS}
  if args.label_key:
    base['label_key'] = args.label_key
  excluded = _csv_list(args.exclude_features)
  if excluded:
    for name in ('skew', 'leakage'):
      sections[name]['exclude_features'] = sorted(set(sections[name].get('exclude_features', [])) | set(excluded))
  if args.group_key:
    sections['leakage']['group_key'] = args.group_key
  if args.checks is not None:
    wanted = _csv_list(args.checks)
    unknown = sorted(set(wanted) - set(CHECKS))
    if unknown or not wanted:
      raise ConfigError(f'--checks takes a comma-separated subset of {",".join(CHECKS)}. Got {args.checks!r}.')
    if 'loss' in wanted and not args.module_file:
      raise ConfigError('--checks loss needs --module-file (the Trainer module to check).')
    for name in CHECKS:
      if name not in wanted:
        sections[name]['mode'] = 'off'
  return PreflightConfig(train_split='train', eval_splits=tuple(_split_names(len(args.eval))), **base, **sections)


def _make_pipeline_factory(beam_args: Sequence[str]):
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions

  def make_pipeline() -> beam.Pipeline:
    return beam.Pipeline(options=PipelineOptions(list(beam_args)))
  return make_pipeline


def _read_schema(path: str):
  from tfx.utils import io_utils

  from tfx_preflight.data import InputError
  try:
    return io_utils.SchemaReader().read(path)
  except Exception as e:  # A text-format parse error: say which file.
    raise InputError(f'--schema {path}: not a TFDV schema text proto: {str(e).splitlines()[0]}') from e


def _write_summaries(args: argparse.Namespace, result, report_path: str) -> None:
  """--summary-md and --junit-xml, written whatever the verdict (CI shows them most when it blocks)."""
  from tfx_preflight import report as report_lib
  from tfx_preflight import summaries
  if args.summary_md:
    report_lib.write_atomically(args.summary_md, summaries.to_markdown(result, report_path))
  if args.junit_xml:
    report_lib.write_atomically(args.junit_xml, summaries.to_junit_xml(result, report_path))


def run_check(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
  config = config_from_args(args)
  _check_local_paths(args)
  from tfx_preflight import data, run  # Heavy (TFX, Beam): only once the arguments are known to be good.
  from tfx_preflight import report as report_lib

  make_pipeline = _make_pipeline_factory(beam_args)
  # Absolute paths: the loss check runs the user's input_fn in a subprocess with another working directory.
  patterns = {split: p if '://' in p else os.path.abspath(p)
              for split, p in {'train': args.train, **dict(zip(_split_names(len(args.eval)), args.eval))}.items()}
  files = {split: data.matching_files(p, '--train' if split == 'train' else f'--eval ({split})')
           for split, p in patterns.items()}
  formats = {split: data.detect_format(patterns[split], files[split], args.format) for split in patterns}
  if len(set(formats.values())) > 1:
    raise data.InputError(f'train and eval files must have one format; got {formats}. Pass --format.')
  out = os.path.abspath(args.out)
  examples = dict(patterns)
  if formats['train'] == 'csv':
    examples = data.csv_to_tfrecords(files, make_pipeline, os.path.join(out, 'examples'))
  inputs = run.PreflightInputs(examples=examples, module_file=args.module_file,
                               schema=_read_schema(args.schema) if args.schema else None,
                               provenance={'train': args.train, 'eval': list(args.eval)})
  result = run.run_preflight(inputs, config, make_pipeline, out)
  _write_summaries(args, result, os.path.join(out, report_lib.REPORT_HTML))
  print('\n'.join(report_lib.findings_summary(result)))
  print(f'report: {os.path.join(out, report_lib.REPORT_HTML)}')
  return EXIT_BLOCK if result['verdict'] == 'block' else EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  beam_args: List[str] = []
  if '--' in argv:
    cut = argv.index('--')
    argv, beam_args = argv[:cut], argv[cut + 1:]
  try:
    args = build_parser().parse_args(argv)
  except SystemExit as e:  # --help and usage errors: return the code so main() is callable in-process.
    return int(e.code or 0)
  logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format='%(levelname)s %(message)s')
  if not args.verbose:  # Before TensorFlow is imported: its C++ log level is read once, at import.
    progress.quiet_libraries()
  progress.enable()
  try:
    return run_check(args, beam_args)
  except _input_errors() as e:
    print(f'tfx-preflight: {e}', file=sys.stderr)
    return EXIT_USAGE
  except Exception as e:  # Unreadable input surfaces from deep inside Beam/TF: one line, full trace with -v.
    if args.verbose:
      logging.exception('tfx-preflight failed')
    reason = ' '.join(str(e).split()) or type(e).__name__
    print(f'tfx-preflight: cannot check the input: {type(e).__name__}: {reason[:500]}', file=sys.stderr)
    return EXIT_USAGE
  finally:
    progress.disable()  # main() may run in-process (tests, notebooks): the next executor run logs its stages.


if __name__ == '__main__':
  sys.exit(main())
