"""Files the package writes, in one place: every file is written whole through a temp file renamed into place (the
driver's report files and the Beam steps' parts alike, local or remote), and names put into TSV rows are escaped the
same way everywhere. No Beam and no report imports: both sides use it."""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from typing import Mapping, Union

import numpy as np

from tfx_preflight import file_io

_TSV_ESCAPES = str.maketrans({'\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r'})


def write_atomically(path: str, content: Union[str, bytes]) -> None:
  """Writes `content` to a temp file beside `path` ('.<name>.tmp-<uuid>') and renames it into place: a reader never
  sees half a file, a retried Beam step simply writes the same file again, and a failed write leaves nothing behind,
  not even the temp file."""
  directory = os.path.dirname(path)
  if directory:
    file_io.makedirs(directory)
  tmp = os.path.join(directory, f'.{os.path.basename(path)}.tmp-{uuid.uuid4().hex}')
  try:
    with file_io.open(tmp, 'wb' if isinstance(content, bytes) else 'w') as f:
      f.write(content)
    file_io.rename(tmp, path, overwrite=True)
  except BaseException:
    if file_io.exists(tmp):
      file_io.remove(tmp)
    raise


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
  """`arrays` as the bytes of an .npz file (`np.load(..., allow_pickle=False)` reads it), the same bytes for the same
  arrays: members in the given order, each with a fixed timestamp (np.savez stamps the clock), no object arrays."""
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, 'w') as archive:
    for name, array in arrays.items():
      member = zipfile.ZipInfo(f'{name}.npy', date_time=(1980, 1, 1, 0, 0, 0))
      with archive.open(member, 'w', force_zip64=True) as f:
        np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)
  return buffer.getvalue()


def tsv_field(text: str) -> str:
  """A file or split name as one TSV field: backslash, tab, newline and carriage return escaped as \\\\, \\t, \\n,
  \\r (a file name may hold any of them; unescaped, one would shift or split the row)."""
  return text.translate(_TSV_ESCAPES)
