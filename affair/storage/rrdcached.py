"""A client for rrdcached's line protocol: how affair talks to the daemon.

librrd has its own client (``--daemon``), but with librrd and rrdcached
1.7.2 (Debian's) it loses data in ways nothing reports, all seen here:

* an ``update --daemon`` longer than rrdcached's 4 KiB command line (about
  20 rows of 10 values) is dropped whole, and librrd returns success;
* when the daemon is down, librrd writes the file itself, so rows the dead
  daemon held are a gap that nobody sees;
* a read in another process (``fetch``, ``info``, ``last`` without the
  daemon) locks the file; rrdcached's write of that file then fails and
  the daemon drops those values (logged at NOTICE, below its default
  level). A reader fetching nonstop cost most of the rows in a test. Reads
  inside rrdcached hold its own (per-process) lock and never cost a row;
* ``fetch --daemon`` is the text FETCH, many times slower than a local
  fetch, where FETCHBIN (binary) costs about what a local fetch does;
* librrd keeps one connection per process, which a forked plot worker would
  share with its parent.

(The figures are in benchmarks/RESULTS.md, "Figures quoted from the code".)

So readers read through FETCHBIN, LAST and INFO here, and the writer sends
UPDATE and FLUSH itself, split under the line limit, every answer checked.
One connection per process, opened on first use and again after a fork.
A command that fails on the connection is never resent: the daemon may have
restarted in between and lost what it held, which only the writer can
repair (it replays the journal, see :mod:`affair.ingest.writer`); the next command
connects afresh.
"""

import os
import socket
import threading
from collections.abc import Iterable
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from affair.errors import RrdcachedError, StoreError

LINE_LIMIT = 4000  # bytes per command; rrdcached's buffer is RRD_CMD_MAX = 4096 with the newline
# Seconds for one answer: a FLUSH waits for the write, which can queue behind others.
TIMEOUT = 120.0


class RrdcachedClient:
    """Commands to the rrdcached at ``address`` (``unix:/path`` or ``HOST:PORT``)."""

    def __init__(self, address: str, timeout: float = TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout
        self._lock = threading.Lock()  # the scheduler's threads may share a store
        self._socket: socket.socket | None = None
        self._reader: BinaryIO | None = None
        self._pid: int | None = None

    # --- commands ---

    def update(self, path: str | os.PathLike[str], rows: Iterable[str]) -> None:
        """Send rows ``"ts:v1:v2..."`` (the file's DS order), as few commands as fit the limit."""
        prefix = f"UPDATE {path}"
        size = base = len(prefix.encode())  # rows are ASCII; the path may not be
        command = prefix
        for row in rows:
            if base + len(row) + 2 > LINE_LIMIT:
                raise StoreError(path, "update", f"one row is longer than {LINE_LIMIT} bytes")
            if size + len(row) + 2 > LINE_LIMIT:
                self._checked(command, path, "update")
                command, size = prefix, base
            command += f" {row}"
            size += len(row) + 1
        if command != prefix:
            self._checked(command, path, "update")

    def flush(self, path: str | os.PathLike[str]) -> None:
        """Have rrdcached write what it holds of ``path``; returns once written.

        But at once if another client's flush already took those rows and the
        write is still running: no barrier (see RrdStore._settled).
        """
        self._checked(f"FLUSH {path}", path, "flush")

    def flush_all(self) -> None:
        """Start writing everything the daemon holds (its write threads at once); no wait."""
        self._checked("FLUSHALL", "", "flushall")

    def last(self, path: str | os.PathLike[str]) -> int:
        """The file's last update, from the daemon's cache: rounded down to the file's step."""
        _, message, _ = self._checked(f"LAST {path}", path, "last")
        return int(message)

    def info(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """``rrdtool info`` as read by the daemon, as librrd's binding gives it (NaN is None)."""
        _, _, lines = self._checked(f"INFO {path}", path, "info")
        info = {}
        for line in lines:
            key, kind, value = line.split(" ", 2)
            if kind == "0":  # RD_I_VAL
                info[key] = None if value == "NaN" else float(value)
            elif kind in ("1", "3"):  # RD_I_CNT, RD_I_INT
                info[key] = int(value)
            elif kind == "2":  # RD_I_STR
                info[key] = value
        return info

    def fetch(
        self, path: str | os.PathLike[str], consolidation: str, start: float, end: float
    ) -> tuple[int, int, tuple[str, ...], npt.NDArray[np.float64]]:
        """FETCHBIN: ``(first, step, names, rows x names float array)``.

        Row ``i`` ends at ``first + step * (i + 1)``, as librrd's fetch. The
        daemon flushes the file first, and answers from the finest archive
        that holds ``start`` (FETCH takes no resolution).
        """
        command = f"FETCHBIN {path} {consolidation} {int(start)} {int(end)}"
        _, _, lines = self._checked(command, path, "fetch", binary=True)
        header = dict(line.split(": ", 1) for line in lines if isinstance(line, str))
        columns = [line for line in lines if not isinstance(line, str)]
        names = tuple(name for name, _ in columns)
        values = np.column_stack([column for _, column in columns] or [np.empty(0)])
        return int(header["Start"]), int(header["Step"]), names, values

    def stats(self) -> dict[str, int]:
        """The daemon's STATS counters, as ints."""
        _, _, lines = self._checked("STATS", "", "stats")
        return {key: int(value) for key, value in (line.split(": ") for line in lines)}

    # --- the connection ---

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _checked(self, command, path, operation, binary=False):
        status, message, lines = self._request(command, path, operation, binary)
        if status < 0:
            raise StoreError(path, operation, f"rrdcached at {self.address}: {message}")
        return status, message, lines

    def _request(self, command, path, operation, binary):
        with self._lock:
            try:
                self._connect()
                self._socket.sendall(command.encode() + b"\n")
                return self._answer(binary)
            except (OSError, ValueError, EOFError) as error:
                self._drop()  # never resent: see the module doc
                raise RrdcachedError(self.address, operation, _reason(error), path) from None

    def _answer(self, binary):
        """``(status, message, lines)``; with ``binary``, a BinaryData line is ``(ds, array)``."""
        count, _, message = self._line().partition(" ")
        status = int(count)
        lines = []
        for _ in range(max(status, 0)):
            line = self._line()
            if binary and line.startswith("DSName-"):
                # "DSName-<ds>: BinaryData <records> <size> LITTLE", then the doubles and "\n"
                name, _, spec = line[len("DSName-") :].partition(": BinaryData ")
                records, size, order = spec.split()
                length = int(records) * int(size)
                data = self._reader.read(length + 1)
                if len(data) != length + 1:
                    raise EOFError("the connection closed mid-answer")
                dtype = "<f8" if order == "LITTLE" else ">f8"
                lines.append((name, np.frombuffer(data[:length], dtype=dtype)))
            else:
                lines.append(line)
        return status, message, lines

    def _line(self):
        line = self._reader.readline()
        if not line.endswith(b"\n"):
            raise EOFError("the connection closed")
        return line[:-1].decode()

    def _connect(self):
        if self._socket is not None and self._pid == os.getpid():
            return
        self._socket = None  # a forked child leaves its parent's connection alone
        if self.address.startswith("unix:"):
            family, target = socket.AF_UNIX, self.address[len("unix:") :]
        else:
            host, _, port = self.address.rpartition(":")
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            target = (host.strip("[]"), int(port))
        connection = socket.socket(family, socket.SOCK_STREAM)
        connection.settimeout(self.timeout)
        try:
            connection.connect(target)
        except OSError:
            connection.close()
            raise
        self._socket, self._reader, self._pid = connection, connection.makefile("rb"), os.getpid()

    def _drop(self):
        if self._socket is not None and self._pid == os.getpid():
            self._reader.close()
            self._socket.close()
        self._socket = self._reader = None


def _reason(error):
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return str(error) or type(error).__name__
