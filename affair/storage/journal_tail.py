"""Following the journal from a position, for a consumer that keeps up with it (a forwarder).

:func:`affair.storage.journal.read_after` opens a day file and loads its
catalog (every series of the day) on each call: right for a replay, too
dear for a consumer that asks for the next few thousand rows many times a
second. A :class:`JournalTail` keeps the newest day file open with its
catalog and moves to the next file only once it is sure the recorder is
done with this one.

Why "sure": files are chosen by the day of receipt, and the recorder's one
journaling thread creates tomorrow's file only after its last commit to
today's. So when a later file exists, one more look at this file finds any
rows committed before that file appeared; nothing is added after.
"""

import os
import sqlite3
import struct
from pathlib import Path

from affair.storage.journal import (
    DAY_FILE_GLOB,
    DayCatalog,
    JournalPosition,
    JournalRow,
    open_day_readonly,
    unpack_values,
)

# The two high bytes of every NaN the journal writes (little-endian 0x7FF8...): a blob
# without them holds no unknown or absent value, and dict(zip()) reads it whole.
_MAYBE_NAN = b"\xf8\x7f"


_STRUCTS: dict[int, struct.Struct] = {}


def _struct(count):
    packer = _STRUCTS.get(count)
    if packer is None:
        packer = _STRUCTS[count] = struct.Struct(f"<{count}d")
    return packer


class JournalTail:
    """Rows after ``position``, in journal order, a batch at a time."""

    def __init__(self, directory: str | os.PathLike[str], position: JournalPosition | None) -> None:
        self.directory = Path(directory)
        self.position: JournalPosition = position or ("", 0)
        self._day: str | None = None
        self._connection: sqlite3.Connection | None = None
        self._catalog: DayCatalog | None = None

    def seek(self, position: JournalPosition | None) -> None:
        """Read from ``position`` on (a forwarder rewinds after its target failed)."""
        self.position = position or ("", 0)

    def read(self, limit: int) -> list[JournalRow]:
        """Up to ``limit`` rows after the position; advances past them."""
        rows: list[JournalRow] = []
        while len(rows) < limit:
            if not self._open_current():
                break
            got = self._read_day(limit - len(rows))
            rows.extend(got)
            if got:
                continue
            later = self._later_days()
            if not later:
                break
            again = self._read_day(limit - len(rows))  # see the module doc: one more look
            if again:
                rows.extend(again)
                continue
            self.position = (later[0], 0)
        return rows

    def backlog(self, position: JournalPosition | None = None) -> tuple[int, float | None]:
        """``(rows after position (default: the tail's), when the oldest of them was received)``.

        Row ids of a day file have no gaps (rows are only appended, never
        deleted), so counting is a subtraction per file, not a scan.
        """
        day, after = position or self.position
        count = 0
        oldest = None
        for path in self._day_files():
            if path.stem < day:
                continue
            start = after if path.stem == day else 0
            try:
                connection = open_day_readonly(path)
            except (sqlite3.Error, OSError):
                continue  # removed by retention meanwhile
            try:
                (newest,) = connection.execute("SELECT max(id) FROM samples").fetchone()
                if newest is not None and newest > start:
                    count += newest - start
                    if oldest is None:
                        (oldest,) = connection.execute(
                            "SELECT received FROM samples WHERE id > ? ORDER BY id LIMIT 1",
                            (start,),
                        ).fetchone()
            finally:
                connection.close()
        return count, oldest

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = self._catalog = self._day = None

    # --- inside ---

    def _day_files(self):
        return sorted(self.directory.glob(DAY_FILE_GLOB))

    def _later_days(self):
        day = self.position[0]
        return [path.stem for path in self._day_files() if path.stem > day]

    def _open_current(self):
        """Have the position's day file open; False when there is none yet."""
        day, _ = self.position
        path = self.directory / f"{day}.sqlite"
        if self._day == day and self._connection is not None:
            if path.exists():
                return True
            self.close()  # retention removed it under us
        else:
            self.close()
        if not day or not path.exists():
            later = [p.stem for p in self._day_files() if p.stem > day]
            if not later:
                return False
            day = later[0]
            self.position = (day, 0)
            path = self.directory / f"{day}.sqlite"
        try:
            self._connection = open_day_readonly(path)
        except (sqlite3.Error, OSError):
            return False
        self._catalog = DayCatalog(self._connection, path)
        self._day = day
        return True

    def _read_day(self, limit: int) -> list[JournalRow]:
        day, after = self.position
        assert self._connection is not None and self._catalog is not None
        fetched = self._connection.execute(
            "SELECT id, series, ts, vals FROM samples WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        ).fetchall()
        catalog = self._catalog
        rows: list[JournalRow] = []
        for row_id, series_id, ts, vals in fetched:
            host, dataset, instance = catalog.series_of(series_id)
            names = catalog.names_for(dataset, vals)
            if _MAYBE_NAN in vals:  # an unknown or absent value (or, rarely, look-alike bytes)
                values = unpack_values(vals, names)
            else:  # every value known: no per-value check needed
                values = dict(zip(names, _struct(len(vals) // 8).unpack(vals), strict=False))
            rows.append(((day, row_id), ts, host, dataset, instance, values))
        if fetched:
            self.position = (day, fetched[-1][0])
        return rows
