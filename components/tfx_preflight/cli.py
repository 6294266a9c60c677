"""tfx-preflight command line: the same checks and report as the component, on files, without a pipeline.

Exit status: 0 pass or warn, 1 block, 2 bad usage or unreadable input (with a one-line reason on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from typing import Iterator, List, Optional, Sequence

from tfx_preflight import report as report_lib
from tfx_preflight.config import ConfigError, PreflightConfig
from tfx_preflight.data import InputError

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
  check.add_argument('-v', '--verbose', action='store_true', help='log progress and full tracebacks')
  return parser


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
    base['exclude_features'] = sorted(set(base.get('exclude_features', [])) | set(excluded))
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
  if not os.path.isfile(path):
    raise InputError(f'--schema: no file {path!r}.')
  try:
    return io_utils.SchemaReader().read(path)
  except Exception as e:  # A text-format parse error: say which file.
    raise InputError(f'--schema {path}: not a TFDV schema text proto: {str(e).splitlines()[0]}') from e


def _is_file(path: str) -> bool:
  """Local or remote (gs://, s3://...: TFX's fileio, as Trainer resolves module_file)."""
  if '://' not in path:
    return os.path.isfile(path)
  from tfx.dsl.io import fileio
  try:
    return fileio.exists(path) and not fileio.isdir(path)
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
    yield staging
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def run_check(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
  from tfx_preflight import data, run

  config = config_from_args(args)
  if args.module_file and not _is_file(args.module_file):
    raise InputError(f'--module-file: no file {args.module_file!r}.')
  make_pipeline = _make_pipeline_factory(beam_args)
  # Absolute paths: the loss check runs the user's input_fn in a subprocess with another working directory.
  patterns = {split: data.directory_pattern(p if '://' in p else os.path.abspath(p))
              for split, p in {'train': args.train, **dict(zip(_split_names(len(args.eval)), args.eval))}.items()}
  files = {split: data.matching_files(p, '--train' if split == 'train' else f'--eval ({split})')
           for split, p in patterns.items()}
  formats = {split: data.detect_format(patterns[split], files[split], args.format) for split in patterns}
  if len(set(formats.values())) > 1:
    raise InputError(f'train and eval files must have one format; got {formats}. Pass --format.')
  out = os.path.abspath(args.out)
  examples = dict(patterns)
  with _csv_staging(formats['train'] == 'csv') as staging:
    locations = None
    if staging:
      examples = data.csv_to_tfrecords(files, make_pipeline, staging)
      locations = data.csv_locations(examples)
    inputs = run.PreflightInputs(examples=examples, module_file=args.module_file,
                                 schema=_read_schema(args.schema) if args.schema else None,
                                 provenance={'train': args.train, 'eval': list(args.eval)}, csv_locations=locations)
    result = run.run_preflight(inputs, config, make_pipeline, out)
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
  try:
    return run_check(args, beam_args)
  except (ConfigError, InputError) as e:
    print(f'tfx-preflight: {e}', file=sys.stderr)
    return EXIT_USAGE
  except Exception as e:  # Unreadable input surfaces from deep inside Beam/TF: one line, full trace with -v.
    if args.verbose:
      logging.exception('tfx-preflight failed')
    reason = ' '.join(str(e).split()) or type(e).__name__
    print(f'tfx-preflight: cannot check the input: {type(e).__name__}: {reason[:500]}', file=sys.stderr)
    return EXIT_USAGE


if __name__ == '__main__':
  sys.exit(main())
