"""Every process below a given one, found and killed: what a process group misses (a child that started its own
session, a daemon that double-forked) is still a descendant, or an orphan handed to the nearest subreaper.

Linux only (/proc, prctl); elsewhere these do nothing and process groups are all there is. Light: no TensorFlow, TFX
or Beam, so the CLI's interrupt path and the probe's exit can use it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Dict, List, Set

# prctl option: orphans below the caller are handed to it instead of init (the probe sets it, checks/loss/process.py).
PR_SET_CHILD_SUBREAPER = 36


def _stat_fields(pid: int) -> List[bytes]:
  """/proc/<pid>/stat after the command name (field 3 on: state, ppid, ...); the name may hold spaces and ')'."""
  with open(f'/proc/{pid}/stat', 'rb') as f:
    return f.read().rsplit(b')', 1)[1].split()


def start_time(pid: int) -> str:
  """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22): with the pid, it names one
  process, not whichever later reuses its pid. '' where there is no /proc or no such process."""
  try:
    return _stat_fields(pid)[19].decode()
  except (OSError, IndexError):
    return ''


def _parents() -> Dict[int, int]:
  """pid -> parent pid of every process visible in /proc."""
  parents = {}
  try:
    entries = os.listdir('/proc')
  except OSError:
    return parents
  for entry in entries:
    if not entry.isdigit():
      continue
    try:
      parents[int(entry)] = int(_stat_fields(int(entry))[1])
    except (OSError, IndexError, ValueError):
      continue  # Gone meanwhile.
  return parents


def descendants(root: int) -> List[int]:
  """Every process below `root` (children first found, then theirs)."""
  children: Dict[int, List[int]] = {}
  for pid, parent in _parents().items():
    children.setdefault(parent, []).append(pid)
  found, queue = [], [root]
  while queue:
    for child in children.get(queue.pop(), []):
      found.append(child)
      queue.append(child)
  return found


def kill_descendants(root: int) -> List[int]:
  """SIGKILLs every process below `root` (not `root` itself). Each is stopped first and the tree walked again until
  no new one shows up, so none can start another between the walk and the kill. Returns the pids killed."""
  stopped: Set[int] = set()
  for _ in range(50):  # A fork bomb could outrun any number; in practice two rounds find everything.
    new = [pid for pid in descendants(root) if pid not in stopped]
    if not new:
      break
    for pid in new:
      with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGSTOP)
      stopped.add(pid)
  for pid in stopped:
    with contextlib.suppress(ProcessLookupError, PermissionError):
      os.kill(pid, signal.SIGKILL)
  return sorted(stopped)
