"""PNG out: a small, fast encoder and the atomic write every graph goes through.

A graph is mostly flat colour, so the cheapest encoding that still
compresses well wins: RGB (the alpha channel is always opaque), the PNG
"up" filter on every row (a row of a flat graph is much like the one above
it: numpy does it in one subtraction) and zlib level 1. Measured here on a
720 x 320 graph that is ~3x faster than Pillow's default encoder (adaptive
filters, level 6) for files ~1.5x as large, around 25 kB.
"""

import os
import struct
import zlib
from pathlib import Path

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_UP = 2


def encode_png(rgba, level=1):
    """Bytes of an RGB PNG of the ``(height, width, 4)`` uint8 array ``rgba`` (alpha dropped)."""
    height, width = rgba.shape[:2]
    rgb = rgba[:, :, :3].reshape(height, width * 3)
    rows = np.empty((height, width * 3 + 1), np.uint8)
    rows[:, 0] = _FILTER_UP
    rows[0, 1:] = rgb[0]
    np.subtract(rgb[1:], rgb[:-1], out=rows[1:, 1:])  # wraps modulo 256, as PNG wants
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"".join(
        (
            _SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), level)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_atomic(path, data, mtime=None):
    """Replace ``path`` with ``data`` so a reader sees the old file or the new, never a part.

    The bytes go to a hidden temp file in the same directory, which is then
    renamed over ``path`` (atomic on POSIX). ``mtime``, when given, is
    stamped on the file: the plotter records there the time its data was
    read, which the refresh policy compares with the data's own.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        if mtime is not None:
            os.utime(temporary, (mtime, mtime))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
