"""The report directory as a transaction: a run leaves either its complete new report or none.

A run (CLI or executor) first takes the directory's lock, then invalidates what it holds (report.json first, then
everything an earlier run published, including CSV staging and temp directories of runs that died), writes
everything into a fresh `.tmp-<uuid>/` inside it, and publishes at the end by renaming the entries in, report.json
last. report.json is the commit marker: present only when every other file of that run is in place.

Only what is ours: the manifest records every file a run published with its identity (size, SHA-256), and the next
run removes exactly those files (and the directories it created, once empty). A user's file beside the report, in
one of its directories, or in place of one of its files is left alone; a symbolic link is never followed; a run that
would have to write over something not ours refuses, naming it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import uuid
from typing import Callable, ContextManager, Dict, Iterator, List, Optional, Tuple

from tfx_preflight import constants, file_io, file_writes
from tfx_preflight.inputs import data

LOCK_FILE = constants.LOCK_FILE
# What the last run published: every file with its identity (size and SHA-256 of its bytes), and the directories it
# created. The next run removes a file only when it is still there, a plain file (no symbolic link on its path), with
# those bytes: a user's file beside the report, or one put in place of ours, is never ours to remove.
MANIFEST = '.published'
MANIFEST_VERSION = 2
TMP_PREFIX = '.tmp-'
_TMP_NAME = re.compile(r'\.tmp-[0-9a-f]+')
# What runs without an identity manifest (older versions) wrote: removed only where a report.json of ours shows the
# directory is a report directory, and only files by these names (never a user's `leakage/notes.txt`).
_LEGACY_FILES = ('report.html', 'statistics.html', 'statistics-*.html', 'statistics/Split-*/FeatureStats.pb',
                 'leakage/duplicates.tsv', 'leakage/leakage_stats.json', 'label_proxy/label_proxy_counts-*.json',
                 'loss/*.txt', 'loss/*.json', 'inputs/schema.pbtxt', 'examples/csv-*/*.csv', 'examples/csv-*/*.gz')


class _Manifest:
  """Files (relative path -> identity, None for an older version's file known by name only) and directories."""

  def __init__(self, files: Dict[str, Optional[List]], dirs: List[str]):
    self.files, self.dirs = files, dirs


def _is_local(path: str) -> bool:
  return '://' not in path


def _lexists(path: str) -> bool:
  return os.path.lexists(path) if _is_local(path) else file_io.exists(path)


def _is_link(path: str) -> bool:
  return _is_local(path) and os.path.islink(path)


def _is_real_dir(path: str) -> bool:
  """A directory, not a symbolic link to one."""
  return not _is_link(path) and file_io.isdir(path)


def _safe_relative(rel: str) -> bool:
  """A manifest entry is data, never a path to anywhere: relative, no '..', nothing but names."""
  parts = rel.split('/')
  return bool(rel) and not rel.startswith('/') and all(p not in ('', '.', '..') for p in parts) and '\\' not in rel


def _inside_without_links(out: str, rel: str) -> bool:
  """No symbolic link between `out` and `out/rel` (the file itself included): nothing is reached through a link."""
  path = out
  for part in rel.split('/'):
    path = os.path.join(path, part)
    if _is_link(path):
      return False
  return True


def _identity(path: str) -> List:
  digest = hashlib.sha256()
  size = 0
  with file_io.open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
      size += len(block)
  return [size, digest.hexdigest()]


def _tree(root: str) -> Tuple[List[str], List[str]]:
  """(files, directories) under `root`, as sorted '/'-separated relative paths; directories parents first."""
  files, dirs = [], []
  walk = file_io.walk(root)  # Follows no link.
  for directory, subdirs, names in walk:
    rel = os.path.relpath(directory, root).replace(os.sep, '/')
    prefix = '' if rel == '.' else rel + '/'
    dirs.extend(prefix + d.rstrip('/') for d in subdirs)
    files.extend(prefix + n for n in names)
  return sorted(files), sorted(dirs)


def _read_manifest(out: str) -> Optional[_Manifest]:
  """This version's manifest; for an older version's report directory (a plain list of names, or none beside a
  report.json), the files older versions wrote by name; None when nothing shows the directory holds a report."""
  path = os.path.join(out, MANIFEST)
  text = None
  if _lexists(path) and not _is_link(path) and not file_io.isdir(path):
    with file_io.open(path, 'r') as f:
      text = f.read()
  try:
    parsed = json.loads(text) if text is not None else None
  except ValueError:
    parsed = None
  if isinstance(parsed, dict) and parsed.get('version') == MANIFEST_VERSION:
    files = {rel: identity for rel, identity in dict(parsed.get('files') or {}).items() if _safe_relative(rel)}
    return _Manifest(files, [d for d in parsed.get('dirs') or [] if _safe_relative(d)])
  if text is None and not _lexists(os.path.join(out, constants.REPORT_JSON)):
    return None
  present = [f for f in _tree(out)[0] if not f.startswith(TMP_PREFIX)] if _is_real_dir(out) else []
  legacy = [f for f in present if any(fnmatch.fnmatchcase(f, pattern) for pattern in _LEGACY_FILES)]
  dirs = sorted({d for f in legacy for d in _parents(f)})
  return _Manifest({f: None for f in legacy}, dirs)


def _parents(rel: str) -> List[str]:
  parts = rel.split('/')[:-1]
  return ['/'.join(parts[:i]) for i in range(1, len(parts) + 1)]


def _is_ours(out: str, rel: str, manifest: Optional[_Manifest]) -> bool:
  """`out/rel` is a plain file reached without a link and, for this version's manifest, holds the bytes it lists."""
  if manifest is None or rel not in manifest.files or not _inside_without_links(out, rel):
    return False
  path = os.path.join(out, rel)
  if not _lexists(path) or file_io.isdir(path):
    return False
  recorded = manifest.files[rel]
  return recorded is None or list(recorded) == _identity(path)


def _looks_like_our_report(path: str) -> bool:
  """An older version's report.json (no identity manifest): a JSON object with a verdict and checks."""
  try:
    with file_io.open(path, 'r') as f:
      content = json.loads(f.read())
  except Exception:  # pylint: disable=broad-except  # Unreadable or not JSON: not a report of ours.
    return False
  return isinstance(content, dict) and 'verdict' in content and 'checks' in content


def _remove_tree(path: str) -> None:
  """A run's own work directory; a link is removed as a link, never followed."""
  if _is_local(path):
    shutil.rmtree(path, ignore_errors=True)
  elif file_io.exists(path):
    file_io.rmtree(path)


def invalidate(out: str, what: str = 'report directory') -> None:
  """Removes report.json first (from then on nothing there reads as a result), then the files the last run published
  that still hold its bytes, the work directories of runs that died, the directories left empty, and the manifest
  last (so a run that dies half-way still leaves the list for the next one). Raises when a report.json is there
  that no run of ours wrote: it is not ours to remove, and must not be read as this run's result either."""
  manifest = _read_manifest(out)
  report_json = os.path.join(out, constants.REPORT_JSON)
  if _lexists(report_json):
    ours = (_is_ours(out, constants.REPORT_JSON, manifest) if manifest and constants.REPORT_JSON in manifest.files
            and manifest.files[constants.REPORT_JSON] is not None
            else not _is_link(report_json) and _looks_like_our_report(report_json))
    if not ours:
      raise data.InputError(f'{what} {out}: its {constants.REPORT_JSON} was not written by tfx-preflight (or was changed '
                            'since); it is not ours to remove, and would read as this run\'s report. Move it away or '
                            'choose another directory.')
    file_io.remove(report_json)
  if manifest is not None:
    for rel in sorted(manifest.files):
      if rel != constants.REPORT_JSON and _is_ours(out, rel, manifest):
        file_io.remove(os.path.join(out, rel))
  for name in _names(out):
    if _TMP_NAME.fullmatch(name) and _is_real_dir(os.path.join(out, name)):
      _remove_tree(os.path.join(out, name))
  for rel in sorted(manifest.dirs if manifest else [], reverse=True):  # Children before parents.
    path = os.path.join(out, rel)
    if _inside_without_links(out, rel) and _is_real_dir(path) and not file_io.listdir(path):
      file_io.rmtree(path)
  manifest_path = os.path.join(out, MANIFEST)
  if _lexists(manifest_path) and not _is_link(manifest_path) and not file_io.isdir(manifest_path):
    file_io.remove(manifest_path)


def _names(directory: str) -> List[str]:
  return sorted(name.rstrip('/') for name in file_io.listdir(directory))


def _check_nothing_in_the_way(work: str, out: str, what: str) -> Tuple[List[str], List[str]]:
  """The run's files and directories, once none of them would replace or write through something in `out`."""
  files, dirs = _tree(work)
  for rel in dirs:
    path = os.path.join(out, rel)
    if _is_link(path) or (_lexists(path) and not file_io.isdir(path)):
      kind = 'a symbolic link' if _is_link(path) else 'a file'
      raise data.InputError(f'{what} {out}: {path} is {kind} that tfx-preflight did not write, where the report puts '
                            'its directory; nothing was written through it or over it. Move it away or choose another '
                            'directory.')
  for rel in files:
    path = os.path.join(out, rel)
    if _lexists(path):
      raise data.InputError(f'{what} {out}: {path} is a file that tfx-preflight did not write (or one changed since '
                            'it did), where the report puts a file of the same name; it was left as it is and no '
                            'report was published. Move it away or choose another directory.')
  return files, dirs


def publish(work: str, out: str, what: str = 'report directory',
            commit: Callable[[], ContextManager[None]] = contextlib.nullcontext) -> None:
  """Moves every file of `work` into `out`, report.json last (inside `commit()`, the run's commit point), after the
  manifest recording each file's identity. Refuses, naming it, when something not ours is in the way."""
  files, dirs = _check_nothing_in_the_way(work, out, what)
  listed = {rel: _identity(os.path.join(work, rel)) for rel in files}
  file_writes.write_atomically(os.path.join(out, MANIFEST),
                          json.dumps({'version': MANIFEST_VERSION, 'files': listed,
                                      'dirs': [d for d in dirs if not _lexists(os.path.join(out, d))]},
                                     sort_keys=True, indent=0) + '\n')
  for name in _names(work):
    if name == constants.REPORT_JSON:
      continue
    if not _lexists(os.path.join(out, name)):  # The whole entry at once.
      file_io.rename(os.path.join(work, name), os.path.join(out, name))
      continue
    for rel in files:  # A directory that is there already (a user's files in it): file by file.
      if rel.startswith(name + '/'):
        file_io.makedirs(os.path.dirname(os.path.join(out, rel)))
        file_io.rename(os.path.join(work, rel), os.path.join(out, rel))
  if file_io.exists(os.path.join(work, constants.REPORT_JSON)):
    with commit():
      file_io.rename(os.path.join(work, constants.REPORT_JSON), os.path.join(out, constants.REPORT_JSON))


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
      raise data.InputError(f'{what} {out}: another tfx-preflight run is writing its report there (it holds {path}); '
                            'wait for it to finish or choose another directory.') from e
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare(out: str, what: str) -> None:
  if file_io.exists(out) and not file_io.isdir(out):
    raise data.InputError(f'{what} {out} is a file; it must name a directory for the report (created when missing).')
  try:
    file_io.makedirs(out)
  except Exception as e:  # Permission, read-only file system, a file on the way.
    raise data.InputError(f'{what} {out}: cannot create the report directory: {type(e).__name__}: {e}') from e


@contextlib.contextmanager
def _cleared(out: str, what: str) -> Iterator[None]:
  """`out` exists, is locked by this run and holds nothing of an earlier run, for the duration of the block."""
  _prepare(out, what)
  with contextlib.ExitStack() as stack:
    try:
      stack.enter_context(_locked(out, what))
    except OSError as e:
      raise data.InputError(f'{what} {out}: cannot write there: {type(e).__name__}: {e}') from e
    try:
      invalidate(out, what)
    except data.InputError:
      raise
    except Exception as e:
      raise data.InputError(f'{what} {out}: cannot remove the earlier report there ({type(e).__name__}: {e}); what it '
                            'holds is not the result of this run.') from e
    yield


def clear(out: str, what: str = 'report directory') -> None:
  """Invalidates `out` (under its lock) for a run that fails before it starts, e.g. on a command line that does not
  parse."""
  with _cleared(out, what):
    pass


@contextlib.contextmanager
def transaction(out: str, what: str = 'report directory',
                commit: Callable[[], ContextManager[None]] = contextlib.nullcontext) -> Iterator[str]:
  """Locks and invalidates `out`, yields a fresh work directory inside it, and publishes that when the block ends
  without an error (report.json's rename inside `commit()`); on an error the work directory is removed and `out`
  holds no report.json."""
  with _cleared(out, what):
    work = os.path.join(out, f'{TMP_PREFIX}{uuid.uuid4().hex}')
    file_io.makedirs(work)
    try:
      yield work
      publish(work, out, what, commit)
    finally:
      _remove_tree(work)
