"""The report directory as a transaction: a run leaves either its complete new report or none.

A run (CLI or executor) first takes the directory's lock, then invalidates what it holds (report.json first, then
everything an earlier run published, including CSV staging and temp directories of runs that died), writes
everything into a fresh `.tmp-<uuid>/` inside it, and publishes at the end by renaming the entries in, report.json
last. report.json is the commit marker: present only when every other file of that run is in place. Files that no
run of ours wrote (a user's notes beside the report) are left alone.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator, List

from tfx.dsl.io import fileio

from tfx_preflight import constants, report
from tfx_preflight.data import InputError

LOCK_FILE = constants.LOCK_FILE
# The names the last run published, one per line: what the next run removes.
MANIFEST = '.published'
TMP_PREFIX = '.tmp-'
# What runs without a manifest (older versions) wrote, each with the prefix of an entry it holds: removed only where a
# report.json shows the directory is ours and the entry looks like ours (never a user's own `examples/`).
_LEGACY_NAMES = {constants.STATISTICS_DIR: 'Split-', constants.LEAKAGE: constants.DUPLICATES_FILE, constants.LOSS: '',
                 'inputs': 'schema.pbtxt', 'examples': 'csv-'}


def _names(directory: str) -> List[str]:
  return sorted(name.rstrip('/') for name in fileio.listdir(directory))


def _remove(path: str) -> None:
  if fileio.isdir(path):
    fileio.rmtree(path)
  elif fileio.exists(path):
    fileio.remove(path)


def _read_manifest(out: str) -> List[str]:
  path = os.path.join(out, MANIFEST)
  if not fileio.exists(path):
    return []
  with fileio.open(path, 'r') as f:
    names = [line.strip() for line in f.read().splitlines()]
  # Only plain names inside `out`: a manifest is data, not a list of paths to delete anywhere.
  return [n for n in names if n and '/' not in n and n not in ('.', '..', LOCK_FILE)]


def _stale_names(out: str) -> List[str]:
  present = _names(out)
  stale = set(_read_manifest(out)) | {report.REPORT_HTML}
  stale |= {n for n in present if n.startswith(TMP_PREFIX) or (n.startswith('statistics') and n.endswith('.html'))}
  if report.REPORT_JSON in present and MANIFEST not in present:
    stale |= {name for name, marker in _LEGACY_NAMES.items()
              if name in present and fileio.isdir(os.path.join(out, name))
              and any(n.startswith(marker) for n in _names(os.path.join(out, name)))}
  return sorted(n for n in stale if n in present)


def invalidate(out: str) -> None:
  """Removes report.json first (from then on nothing there reads as a result), then what earlier runs published,
  then the manifest (last, so a run that dies half-way still leaves the list for the next one)."""
  stale = _stale_names(out)  # Before report.json goes: it shows the directory is ours.
  _remove(os.path.join(out, report.REPORT_JSON))
  for name in stale:
    if name not in (MANIFEST, LOCK_FILE):
      _remove(os.path.join(out, name))
  _remove(os.path.join(out, MANIFEST))


def publish(work: str, out: str) -> None:
  """Moves every entry of `work` into `out`, report.json last; the manifest lists them first."""
  names = [n for n in _names(work) if n != report.REPORT_JSON]
  report.write_atomically(os.path.join(out, MANIFEST), ''.join(f'{n}\n' for n in [*names, report.REPORT_JSON]))
  for name in names:
    _remove(os.path.join(out, name))
    fileio.rename(os.path.join(work, name), os.path.join(out, name))
  if fileio.exists(os.path.join(work, report.REPORT_JSON)):
    fileio.rename(os.path.join(work, report.REPORT_JSON), os.path.join(out, report.REPORT_JSON), overwrite=True)


@contextlib.contextmanager
def _locked(out: str, what: str) -> Iterator[None]:
  """An exclusive flock on `out/.lock` for local directories: a second run into the same directory is refused (not
  queued: two runs racing on one report is a mistake worth hearing about). Remote directories have no lock."""
  if '://' in out:
    yield
    return
  import fcntl
  path = os.path.join(out, LOCK_FILE)
  with open(path, 'a', encoding='utf-8') as handle:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
      raise InputError(f'{what} {out}: another tfx-preflight run is writing its report there (it holds {path}); '
                       'wait for it to finish or choose another directory.') from e
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare(out: str, what: str) -> None:
  if fileio.exists(out) and not fileio.isdir(out):
    raise InputError(f'{what} {out} is a file; it must name a directory for the report (created when missing).')
  try:
    fileio.makedirs(out)
  except Exception as e:  # Permission, read-only file system, a file on the way.
    raise InputError(f'{what} {out}: cannot create the report directory: {type(e).__name__}: {e}') from e


@contextlib.contextmanager
def _cleared(out: str, what: str) -> Iterator[None]:
  """`out` exists, is locked by this run and holds nothing of an earlier run, for the duration of the block."""
  _prepare(out, what)
  with contextlib.ExitStack() as stack:
    try:
      stack.enter_context(_locked(out, what))
    except OSError as e:
      raise InputError(f'{what} {out}: cannot write there: {type(e).__name__}: {e}') from e
    try:
      invalidate(out)
    except Exception as e:
      raise InputError(f'{what} {out}: cannot remove the earlier report there ({type(e).__name__}: {e}); what it '
                       'holds is not the result of this run.') from e
    yield


def clear(out: str, what: str = 'report directory') -> None:
  """Invalidates `out` (under its lock) for a run that fails before it starts, e.g. on a command line that does not
  parse."""
  with _cleared(out, what):
    pass


@contextlib.contextmanager
def transaction(out: str, what: str = 'report directory') -> Iterator[str]:
  """Locks and invalidates `out`, yields a fresh work directory inside it, and publishes that when the block ends
  without an error; on an error the work directory is removed and `out` holds no report.json."""
  with _cleared(out, what):
    work = os.path.join(out, f'{TMP_PREFIX}{uuid.uuid4().hex}')
    fileio.makedirs(work)
    try:
      yield work
      publish(work, out)
    finally:
      if fileio.exists(work):
        fileio.rmtree(work)
