"""Replace a file so that a reader sees the old content or the new, never a part of either.

Every file affair writes while others may read it goes through here: the
recorder's metrics file and the writer's watermark, RRD and journal day
files as they are created, PNGs, pages, and ROOT exports.

The new content goes to a temporary file in the same directory (a rename is
atomic only within one file system), which is then renamed over the target.
The temporary name is hidden (a leading dot), ends in ``.tmp`` so no reader's
listing takes it for the real thing (``*.png``, ``*.rrd``, day files), and is
unique, so two writers of one file (plotter shards, a pass overlapping the
next) never write into each other's. On any failure (a full disk, a library
raising, an interrupt) the temporary file is removed and the old file is
left as it was. Only a process killed outright can leave one behind;
:func:`sweep_temporaries` removes those (the recorder, at start, in its data dir).

``durable``: a rename is atomic for readers while the machine runs, but after
a power loss a file renamed before its data reached the disk can come back
empty or short (XFS, ext4 without ``auto_da_alloc``). With ``durable=True``
the data is fsynced before the rename and the directory after it, so a file
that was replaced is there, whole, after a crash: for what a restart reads
back (the writer's watermark, the recorder's metrics) and for files that are
made once and then written in place (RRD and journal day files, exports).
PNGs and pages are not fsynced: each is redrawn or rebuilt within minutes,
so a lost one heals itself, and an fsync per graph would turn every plot
pass over thousands of graphs into thousands of disk flushes.
"""

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

# New files get 0666 less the umask, as open() gives them: pages and PNGs
# must stay readable by the web server (mkstemp's 0600 would hide them).
_MODE = 0o666
_ATTEMPTS = 100  # unique names are random: a collision is a freak, a hundred a broken directory


def write_atomic(path, data, *, durable=False, mtime=None):
    """Replace ``path`` with ``data`` (bytes, or str written as UTF-8).

    ``mtime``, when given, is stamped on the file before it appears, so a
    reader never sees the new content with the old time (the plotter records
    there when it read the graph's data).
    """
    payload = data.encode() if isinstance(data, str) else data
    path = Path(path)
    with _temporary_file(path) as (handle, temporary):
        handle.write(payload)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
        handle.close()
        if mtime is not None:
            os.utime(temporary, (mtime, mtime))
        _replace(temporary, path, durable)


@contextlib.contextmanager
def atomic_path(path, *, durable=False) -> Iterator[Path]:
    """Yield a temporary path for a library that writes to a path (librrd, uproot, SQLite).

    The library may overwrite or reopen it; when the block ends without an
    exception it becomes ``path``, otherwise it is removed. The temporary
    file already exists, empty, when the block starts: that reserves its name.
    """
    path = Path(path)
    with _temporary_file(path) as (handle, temporary):
        handle.close()
        yield temporary
        if durable:
            _fsync_path(temporary)
        _replace(temporary, path, durable)


@contextlib.contextmanager
def _temporary_file(path):
    """``(open binary file, its path)``: a new empty file beside ``path``, removed unless renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = _create_unique(path)
    handle = os.fdopen(descriptor, "wb")
    try:
        yield handle, temporary
    except BaseException:
        with contextlib.suppress(OSError):
            handle.close()  # a no-op when the caller closed it already
        temporary.unlink(missing_ok=True)
        raise


def sweep_temporaries(directory, now, older_than=3600.0):
    """Remove our temporary files under ``directory`` left by a process killed mid-write.

    Only those untouched for ``older_than`` seconds: a younger one may be
    another process's write in progress (a file being written has its
    modification time moved with every write). Returns how many went.
    """
    removed = 0
    for folder, _subfolders, names in os.walk(directory):
        for name in names:
            if not (name.startswith(".") and name.endswith(".tmp")):
                continue
            temporary = Path(folder) / name
            with contextlib.suppress(FileNotFoundError):  # renamed or swept meanwhile
                if now - temporary.stat().st_mtime >= older_than:
                    temporary.unlink()
                    removed += 1
    return removed


def _create_unique(path):
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for _attempt in range(_ATTEMPTS):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temporary, flags, _MODE), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path} after {_ATTEMPTS} attempts")


def _replace(temporary, path, durable):
    os.replace(temporary, path)
    if durable:
        _fsync_path(path.parent)  # the rename itself is an entry of the directory


def _fsync_path(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
