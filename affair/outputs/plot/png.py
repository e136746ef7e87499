"""PNG out: a small, fast encoder (every graph is then written with affair.atomic).

Encoding was a large part of a graph's cost with Pillow or zlib, so: the
canvas's RGBA bytes as they are (dropping the always-opaque alpha costs a
strided copy that takes longer than compressing the alpha away), no PNG row
filter (a plain row of a flat graph compresses as well as a filtered one
here), and ISA-L's deflate at level 1 (``isal``, zlib-compatible), several
times faster than either (see benchmarks/RESULTS.md). Plain zlib is the
fallback where isal is not installed.
"""

import struct
import types
import zlib

import numpy as np

_deflate: types.ModuleType
try:
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - isal is a dependency; keep working without it
    _deflate = zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NO_FILTER = 0
_RGBA = 6  # PNG colour type: 8-bit RGB with alpha


def encode_png(rgba, level=1, text=()):
    """Bytes of a PNG of the ``(height, width, 4)`` uint8 array ``rgba``.

    ``text``: ``(keyword, value)`` pairs, written as tEXt chunks before the
    pixels (Latin-1, as the PNG spec says), where a reader finds them early.
    """
    height, width = rgba.shape[:2]
    rows = np.empty((height, width * 4 + 1), np.uint8)
    rows[:, 0] = _NO_FILTER
    rows[:, 1:] = rgba.reshape(height, width * 4)
    header = struct.pack(">IIBBBBB", width, height, 8, _RGBA, 0, 0, 0)
    return b"".join(
        (
            _SIGNATURE,
            _chunk(b"IHDR", header),
            *(_chunk(b"tEXt", f"{key}\0{value}".encode("latin-1")) for key, value in text),
            _chunk(b"IDAT", _deflate.compress(rows.data, level)),  # no copy to bytes
            _chunk(b"IEND", b""),
        )
    )


def read_text(png):
    """``{keyword: value}`` of a PNG's tEXt chunks (what :func:`encode_png` wrote)."""
    found, at = {}, len(_SIGNATURE)
    while at + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[at : at + 8])
        if kind == b"IDAT":
            break
        if kind == b"tEXt":
            key, _, value = png[at + 8 : at + 8 + length].partition(b"\0")
            found[key.decode("latin-1")] = value.decode("latin-1")
        at += 12 + length
    return found


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
