"""A full disk under the data dir: recognising it, and a reserve to keep working on it.

librrd, SQLite and the OS each say "full" in their own way: ENOSPC or
EDQUOT from a system call, "database or disk is full" (SQLITE_FULL) from
SQLite, the OS's message inside librrd's text. :func:`is_disk_full` knows
them all.

:class:`DiskReserve` is a ballast file: made while there is space, deleted
when the disk fills, so the recorder can still write what says it is full
(its own health sample, metrics.json), and made again before it resumes,
so it resumes only once there is more room than that.
"""

import errno
import os
from pathlib import Path

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# librrd's create reports a full disk with an empty message (measured on a
# full tmpfs): a failure with less than this free is taken for a full disk.
NEARLY_FULL_BYTES = 2 << 20
_FULL_TEXTS = ("no space left on device", "database or disk is full", "disk quota exceeded")


def is_disk_full(error: BaseException) -> bool:
    """True when ``error`` (or what it wraps) says the file system is full."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return True
        if any(text in str(current).lower() for text in _FULL_TEXTS):
            return True
        current = current.__cause__ or current.__context__
    return False


def failed_for_space(error: BaseException, directory: str | os.PathLike[str]) -> bool:
    """True when ``error`` says the disk is full, or came with the disk nearly full."""
    if is_disk_full(error):
        return True
    try:
        return free_bytes(directory) < NEARLY_FULL_BYTES
    except OSError:
        return False


def free_bytes(directory: str | os.PathLike[str]) -> int:
    """Bytes an unprivileged process may still write on ``directory``'s file system."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


class DiskReserve:
    """A file of ``size`` bytes that is given up when the disk fills."""

    def __init__(self, path: str | os.PathLike[str], size: int = 1 << 20) -> None:
        self.path = Path(path)
        self.size = size

    def ensure(self) -> bool:
        """Make the reserve if it is missing; False (and nothing left behind) when there is no room."""
        if self.path.exists() and self.path.stat().st_size == self.size:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Written, not truncated: a sparse file would reserve nothing.
            with open(self.path, "wb") as handle:
                handle.write(b"\0" * self.size)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            self.path.unlink(missing_ok=True)
            if is_disk_full(error):
                return False
            raise
        return True

    def release(self) -> bool:
        """Give the space back; True if there was a reserve to give."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
