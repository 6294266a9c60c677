"""Image-like float lists drawn as pictures in report.html: a PNG (written here with zlib, no imaging library) in a
data: URI, which the page's Content-Security-Policy allows (img-src data:). The pixels come from the report dict
(check.py: base64 of uint8 values and a shape), are checked against the shape, and the URI holds only base64
characters; the attribute is escaped all the same."""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from typing import Any, Mapping, Optional

import numpy as np

from tfx_preflight.report.render.escape import esc

_MIN_SIDE = 96  # Small images (8x8 digits) are scaled up in the page, pixelated, to at least this many CSS pixels.


def png(pixels: np.ndarray) -> bytes:
  """A PNG of uint8 pixels shaped (height, width) grey or (height, width, 3) RGB."""
  height, width = pixels.shape[:2]
  colour = 2 if pixels.ndim == 3 else 0
  rows = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(height, -1)
  raw = b''.join(b'\x00' + row.tobytes() for row in rows)

  def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', binascii.crc32(kind + data) & 0xffffffff)

  header = struct.pack('>IIBBBBB', width, height, 8, colour, 0, 0, 0)
  return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')


def decode(picture: Mapping[str, Any], key: str) -> Optional[np.ndarray]:
  """The uint8 pixels of picture[key] in picture['shape'], or None when they do not fit the shape."""
  shape = picture.get('shape')
  if not isinstance(shape, (list, tuple)) or len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3)):
    return None
  try:
    pixels = np.frombuffer(base64.b64decode(str(picture.get(key, '')), validate=True), dtype=np.uint8)
  except (binascii.Error, ValueError):
    return None
  if pixels.size != int(np.prod(shape)) or min(shape) <= 0:
    return None
  pixels = pixels.reshape(shape)
  return pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels


def img(pixels: np.ndarray, title: str) -> str:
  """An <img> of the pixels (a PNG data URI), scaled up pixelated when small."""
  height, width = pixels.shape[:2]
  scale = max(1, -(-_MIN_SIDE // max(height, width)))
  uri = 'data:image/png;base64,' + base64.b64encode(png(pixels)).decode('ascii')
  return (f'<img src="{esc(uri)}" width="{width * scale}" height="{height * scale}" alt="{esc(title)}" '
          f'title="{esc(title)}" style="image-rendering:pixelated;border:1px solid #ccc">')


def side_by_side(feature: str, picture: Mapping[str, Any]) -> str:
  """The eval example's picture and its train partner's, or '' when either does not decode."""
  shown = [(decode(picture, key), f'{feature} ({name})') for key, name in (('eval', 'eval'), ('train', 'train'))]
  if any(pixels is None for pixels, _ in shown):
    return ''
  cells = ''.join(f'<figure style="display:inline-block;margin:4px">{img(p, t)}<figcaption><small>{esc(t)}</small>'
                  '</figcaption></figure>' for p, t in shown)
  return f'<div>{cells}</div>'
