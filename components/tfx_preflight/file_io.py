"""The package's file operations. Remote paths (gs://, s3://, hdfs://...) go through TFX's fileio, as Trainer's do;
local paths are served by Python with the semantics TensorFlow's gfile gives them there (a glob's `*` matches hidden
files, text is UTF-8 with no newline translation, `size` from a stat). Why: importing TFX's fileio imports TensorFlow
(~2-3 s of a process's start), which a run on local files that needs no TensorFlow otherwise (the CLI's leakage and
label-proxy checks) should not pay. Before this module, such a run used gfile for local files too: same results."""

from __future__ import annotations

import builtins
import fnmatch
import glob as glob_module
import os
import shutil
from typing import IO, Any, Iterator, List, Tuple, Union

Path = Union[str, 'os.PathLike[str]']


def _dispatch(path: Path, name: str, local: Any) -> Any:
  """TFX fileio's `name` for a remote path, else `local`."""
  remote = _remote(path)
  return getattr(remote, name)(path) if remote else local(path)


def _makedirs(path: Path) -> None:
  os.makedirs(path, exist_ok=True)


def _remote(path: Path) -> Any:
  """TFX's fileio for a path with a scheme, else None (a local path)."""
  if '://' not in os.fspath(path):
    return None
  from tfx.dsl.io import fileio  # Imports TensorFlow: only when a remote path is really used.
  return fileio


def open(path: Path, mode: str = 'r') -> IO:  # pylint: disable=redefined-builtin
  """`path` opened as gfile opens it: text as UTF-8, lines ending at '\\n' only, nothing translated."""
  remote = _remote(path)
  if remote:
    return remote.open(path, mode)
  if 'b' in mode:
    return builtins.open(path, mode)
  return builtins.open(path, mode, encoding='utf-8', newline='\n')


def exists(path: Path) -> bool:
  return _dispatch(path, 'exists', os.path.exists)


def isdir(path: Path) -> bool:
  return _dispatch(path, 'isdir', os.path.isdir)


def glob(pattern: Path) -> List[str]:
  """The paths `pattern` matches, matched as gfile matches local paths: name by name, hidden names included (Python's
  glob leaves them out, but Trainer's reader, through gfile, would read them)."""
  remote = _remote(pattern)
  return remote.glob(pattern) if remote else _local_glob(os.fspath(pattern))


def _local_glob(pattern: str) -> List[str]:
  if not glob_module.has_magic(pattern):
    return [pattern] if os.path.exists(pattern) else []
  head, tail = os.path.split(pattern)
  parents = _local_glob(head) if glob_module.has_magic(head) else [head]
  matched = []
  for parent in parents:
    if not tail:  # 'name*/': what 'name*' matches (gfile ignores the slash, directory or not).
      matched.append(parent)
      continue
    try:
      names = os.listdir(parent or os.curdir)
    except (NotADirectoryError, FileNotFoundError, PermissionError):
      continue
    matched.extend(os.path.join(parent, name) for name in fnmatch.filter(names, tail) if name not in ('.', '..'))
  return matched


def listdir(path: Path) -> List[str]:
  return _dispatch(path, 'listdir', os.listdir)


def makedirs(path: Path) -> None:
  _dispatch(path, 'makedirs', _makedirs)


def remove(path: Path) -> None:
  _dispatch(path, 'remove', os.remove)


def rename(src: Path, dst: Path, overwrite: bool = False) -> None:
  _transfer('rename', os.replace, src, dst, overwrite)


def copy(src: Path, dst: Path, overwrite: bool = False) -> None:
  _transfer('copy', shutil.copyfile, src, dst, overwrite)


def _transfer(name: str, local: Any, src: Path, dst: Path, overwrite: bool) -> None:
  """A rename or copy: TFX fileio's `name` when either path is remote, else `local`, refused as gfile refuses it
  when `dst` exists and `overwrite` is False."""
  remote = _remote(src) or _remote(dst)
  if remote:
    getattr(remote, name)(src, dst, overwrite=overwrite)
  elif not overwrite and os.path.exists(dst):
    raise FileExistsError(f'{os.fspath(dst)} exists and overwrite is False')
  else:
    local(src, dst)


def rmtree(path: Path) -> None:
  _dispatch(path, 'rmtree', shutil.rmtree)


def walk(top: Path) -> Iterator[Tuple[str, List[str], List[str]]]:
  return _dispatch(top, 'walk', os.walk)


def size(path: Path) -> int:
  """The file's length in bytes."""
  remote = _remote(path)
  return int(remote.stat(path).length) if remote else os.path.getsize(path)
