"""The journal: every accepted sample, durable before it is acknowledged.

It is also the raw archive: every sample unconsolidated, with its own
timestamp, kept for ``recorder.journal_days`` days for offline analysis
(``affair export``, ``affair query``, :mod:`affair.storage.journal_reader`).

Why SQLite, one file per UTC day of receipt, in WAL mode:

* A commit in WAL mode survives SIGKILL of the recorder the moment it
  returns (the WAL is in the OS page cache; ``journal_sync = "full"`` adds
  an fsync per commit for power loss too). So the recorder commits a batch,
  then acks it, and a collector never forgets a sample that could be lost.
  A crash mid-transaction rolls back cleanly, never a torn record; a file
  always opens, and any sqlite3 client can read it while the recorder writes.
* One transaction per receive burst keeps the cost per sample small (see
  benchmarks/RESULTS.md).
* UNIQUE(series, ts) makes resends idempotent: a sample that was already
  journaled is recognised, acked again and not written twice. A resend that
  crosses midnight is looked up in the earlier day's file too.
* Daily files make retention a file deletion, never a long DELETE.
* Files are chosen by the day of *receipt*, not by the sample's own time,
  so the journal stays append-only: the writer's watermark (a day and a row
  id) and replay rely on rows only ever being added at the end of the newest
  file, and a late sample never reopens (or resurrects) an old file.
  Readers therefore pick files by their timestamp span, not by name
  (:func:`affair.storage.journal_reader.day_spans`).

Storage of values, chosen for the raw archive's readers: the values of a
sample are one BLOB of little-endian float64, one per variable position,
with the positions of each dataset's variables in the ``variables`` table
(appended to when a new variable appears, never reordered). Reading rows
this way is several times cheaper than a JSON object per sample (json.loads
dominates) or one REAL column per variable (a Python float per cell), which
is what keeps ``affair export`` of a day within a minute (figures in
benchmarks/RESULTS.md). Host, dataset and instance are stored once per file
in ``series``, so appending is cheaper too (no json.dumps, no names per
row). SQL users get per-dataset views with one column per
variable from ``affair query``; any other client can unpack a value with
the same few lines (:func:`affair.outputs.query.value_at`).

A value that is unknown (None, rrdtool's U) is a NaN; a variable that the
sample did not carry at all is a NaN with a distinct payload, so replay
gives the writer exactly the dict that was journaled. Genuine values are
never NaN (validation turns NaN into None).

The RRD writer consumes samples in journal order and records how far it
got (its *watermark*: a day file and a row id); after a crash, everything
past the watermark is replayed into the RRDs.
"""

import json
import logging
import os
import sqlite3
import struct
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeAlias

from affair.atomic import atomic_path, write_atomic
from affair.errors import JournalError

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # PRAGMA user_version of a day file in this format
DAY_FILE_GLOB = "????-??-??.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id       INTEGER PRIMARY KEY,
    host     TEXT NOT NULL,
    dataset  TEXT NOT NULL,
    instance TEXT NOT NULL DEFAULT '',
    UNIQUE (host, dataset, instance)
);
CREATE TABLE IF NOT EXISTS variables (
    dataset  TEXT NOT NULL,
    position INTEGER NOT NULL,           -- index of the variable's float64 in samples.vals
    name     TEXT NOT NULL,
    PRIMARY KEY (dataset, position),
    UNIQUE (dataset, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS samples (
    id       INTEGER PRIMARY KEY,        -- journal order: the writer's watermark counts these
    series   INTEGER NOT NULL REFERENCES series (id),
    ts       REAL NOT NULL,              -- the sample's own time, Unix seconds
    received REAL NOT NULL,              -- when the recorder accepted it
    vals     BLOB NOT NULL,              -- float64 little-endian, one per variable position
    UNIQUE (series, ts)
);
CREATE INDEX IF NOT EXISTS samples_ts ON samples (ts);
"""

_INSERT = "INSERT OR IGNORE INTO samples (series, ts, received, vals) VALUES (?, ?, ?, ?)"

NULL_BITS = 0x7FF8000000000000  # the canonical quiet NaN: a value sent as unknown
ABSENT_BITS = 0x7FF800000A85E7A1  # a quiet NaN with a payload: the sample had no such variable
_BITS = struct.Struct("<Q")
ABSENT_BYTES = _BITS.pack(ABSENT_BITS)
_ABSENT = struct.unpack("<d", ABSENT_BYTES)[0]
_NAN = struct.unpack("<d", _BITS.pack(NULL_BITS))[0]
_STRUCTS: dict[int, struct.Struct] = {}

# Where a sample is in the journal: its day file ('YYYY-MM-DD') and row id. Positions
# compare in journal order; the writer's watermark is one.
JournalPosition: TypeAlias = tuple[str, int]
# A row as read_after yields it: (position, ts, host, dataset, instance, values).
JournalRow: TypeAlias = tuple[JournalPosition, float, str, str, str, dict[str, float | None]]


class JournaledSample(Protocol):
    """What the journal keeps of a sample (:class:`affair.ingest.validate.Sample` has it)."""

    @property
    def ts(self) -> float: ...
    @property
    def host(self) -> str: ...
    @property
    def dataset(self) -> str: ...
    @property
    def instance(self) -> str: ...
    @property
    def values(self) -> Mapping[str, float | None]: ...


_last_day = (0.0, 0.0, "")  # (start, end, name) of the day asked for last


def day_name(timestamp: float) -> str:
    """'YYYY-MM-DD' of ``timestamp`` in UTC.

    Called per received sample, and nearly always for the same day, so the
    last day's bounds are kept: a comparison instead of a datetime and a
    strftime (which showed in the recorder's profile).
    """
    global _last_day
    start, end, name = _last_day
    if start <= timestamp < end:
        return name
    name = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    start = timestamp - timestamp % 86400  # Unix days are whole UTC days (no leap seconds)
    _last_day = (start, start + 86400, name)
    return name


def day_start(day: str) -> float:
    """Unix time of 00:00 UTC of ``day`` ('YYYY-MM-DD')."""
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()


def _struct(count):
    packer = _STRUCTS.get(count)
    if packer is None:
        packer = _STRUCTS[count] = struct.Struct(f"<{count}d")
    return packer


def pack_values(values: Mapping[str, float | None], positions: Mapping[str, int]) -> bytes:
    """``{name: float or None}`` -> BLOB, given ``{name: position}`` holding every name."""
    count = 1 + max(positions[name] for name in values) if values else 0
    cells = [_ABSENT] * count
    for name, value in values.items():
        cells[positions[name]] = _NAN if value is None else value
    return _struct(count).pack(*cells)


def unpack_values(blob: bytes, names: Sequence[str]) -> dict[str, float | None]:
    """Inverse of :func:`pack_values`; ``names[i]`` is the variable at position ``i``."""
    count = len(blob) // 8
    cells = _struct(count).unpack(blob)
    values = {}
    for position, value in enumerate(cells):
        if value != value:  # NaN: unknown, or not carried at all
            if blob[8 * position : 8 * position + 8] == ABSENT_BYTES:
                continue
            value = None
        values[names[position]] = value
    return values


def open_day(path: str | os.PathLike[str], sync: str = "normal") -> sqlite3.Connection:
    """Open (creating) one day file in WAL mode with our schema."""
    path = Path(path)
    if not path.exists():
        _create_day(path)
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
    check_format(connection, path, creating=True)
    # One transaction, so a file never holds our tables without our version.
    connection.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version={FORMAT_VERSION}; COMMIT;")
    return connection


def _create_day(path):
    """Make a day file with its schema under a temporary name, then rename it.

    Readers (export, query, a replaying writer) list the directory at any
    moment; this way they never meet a file that exists but has no schema yet.
    """
    with atomic_path(path, durable=True) as temporary:
        connection = sqlite3.connect(temporary, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(
                f"BEGIN; {SCHEMA} PRAGMA user_version={FORMAT_VERSION}; COMMIT;"
            )
        finally:
            connection.close()  # a clean close folds the WAL back in and removes it


def open_day_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A read-only connection to one day file (readers never create or change one)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    try:
        check_format(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def check_format(
    connection: sqlite3.Connection, path: str | os.PathLike[str], creating: bool = False
) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version == FORMAT_VERSION:
        return
    empty = not connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
    if creating and version == 0 and empty:
        return
    raise JournalError(
        path,
        f"journal format {version}, this affair reads format {FORMAT_VERSION}"
        " (move the file aside to start a new day file)",
    )


class DayCatalog:
    """What one day file's rows refer to: series ids and each dataset's variable order.

    Both tables only grow, and a row is committed together with the series
    and variables it uses, so a reader that meets an unknown id reloads.
    """

    def __init__(self, connection: sqlite3.Connection, path: str | os.PathLike[str] = "") -> None:
        self.connection = connection
        self.path = path
        self.series: dict[int, tuple[str, str, str]] = {}  # id -> (host, dataset, instance)
        self.variables: dict[str, list[str]] = {}  # dataset -> [name at position 0, 1, ...]
        self.reload()

    def reload(self) -> None:
        self.series = {
            row[0]: tuple(row[1:])
            for row in self.connection.execute("SELECT id, host, dataset, instance FROM series")
        }
        variables: dict[str, list[str]] = {}
        for dataset, position, name in self.connection.execute(
            "SELECT dataset, position, name FROM variables ORDER BY dataset, position"
        ):
            names = variables.setdefault(dataset, [])
            if position != len(names):
                raise JournalError(self.path, f"variables of {dataset} skip position {len(names)}")
            names.append(name)
        self.variables = variables

    def series_of(self, series_id: int) -> tuple[str, str, str]:
        if series_id not in self.series:
            self.reload()
        return self.series[series_id]

    def names_for(self, dataset: str, blob: bytes) -> list[str]:
        names = self.variables.get(dataset, [])
        if len(blob) // 8 > len(names):
            self.reload()
            names = self.variables.get(dataset, [])
        return names


class _DayWriter:
    """The write side of one day file: ids of known series and variable positions, cached."""

    def __init__(self, connection):
        self.connection = connection
        self.forget()

    def forget(self):
        """Drop the caches (after a rollback they may name rows that never were)."""
        self._series = None
        self._positions = None

    def _load(self):
        catalog = DayCatalog(self.connection)
        self._series = {key: series_id for series_id, key in catalog.series.items()}
        self._positions = {
            dataset: {name: position for position, name in enumerate(names)}
            for dataset, names in catalog.variables.items()
        }

    def series_id(self, cursor, host, dataset, instance):
        if self._series is None:
            self._load()
        key = (host, dataset, instance)
        series_id = self._series.get(key)
        if series_id is None:
            cursor.execute("INSERT INTO series (host, dataset, instance) VALUES (?, ?, ?)", key)
            series_id = self._series[key] = cursor.lastrowid
        return series_id

    def pack(self, cursor, dataset, values):
        if self._positions is None:
            self._load()
        positions = self._positions.setdefault(dataset, {})
        for name in values:
            if name not in positions:
                position = len(positions)
                cursor.execute(
                    "INSERT INTO variables (dataset, position, name) VALUES (?, ?, ?)",
                    (dataset, position, name),
                )
                positions[name] = position
        return pack_values(values, positions)


class Journal:
    """Append-only, day-rotated store of accepted samples (the receiving side)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        sync: str = "normal",
        clock: Callable[[], float] = time.time,
        lookback: float = 0,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sync = sync
        self.clock = clock
        self.lookback = lookback  # how far ahead of its receipt a sample's time may be
        self._day: str | None = None
        self._day_start: float | None = None
        self._connection: sqlite3.Connection | None = None
        self._writer: _DayWriter | None = None
        # day -> path of each older day file, for resends
        self._earlier_paths: dict[str, Path] = {}
        # day -> read-only connection, opened when first needed
        self._earlier: dict[str, sqlite3.Connection] = {}

    def _connection_for_now(self):
        day = day_name(self.clock())
        if day != self._day:
            self.close()
            self._connection = open_day(self.directory / f"{day}.sqlite", self.sync)
            self._writer = _DayWriter(self._connection)
            self._day = day
            self._day_start = day_start(day)
            self._earlier_paths = {p.stem: p for p in self.day_files() if p.stem < day}
        return self._day, self._connection, self._writer

    def append(self, samples: Sequence[JournaledSample]) -> list[JournalPosition | None]:
        """Journal ``samples`` in one transaction.

        Returns one entry per sample: its position ``(day, row id)`` if it is
        new, or None if the journal already held it (a resend).
        """
        day, connection, writer = self._connection_for_now()
        received = self.clock()
        cursor = connection.cursor()
        cursor.execute("BEGIN")
        try:
            rows = self._rows(cursor, samples, received)
            fresh = [row for row in rows if row is not None]
            before = connection.total_changes
            cursor.executemany(_INSERT, fresh)
            if connection.total_changes - before == len(fresh):
                # The usual case, no resends: one statement, consecutive row ids.
                (last,) = cursor.execute("SELECT last_insert_rowid()").fetchone()
                ids = iter(range(last - len(fresh) + 1, last + 1))
                positions = [None if row is None else (day, next(ids)) for row in rows]
            else:
                # Some were resends: start over and find out which, row by row.
                cursor.execute("ROLLBACK")
                writer.forget()  # the series and variables it added are gone too
                cursor.execute("BEGIN")
                positions = []
                for row in self._rows(cursor, samples, received):
                    if row is not None:
                        cursor.execute(_INSERT, row)
                    inserted = row is not None and cursor.rowcount == 1
                    positions.append((day, cursor.lastrowid) if inserted else None)
            cursor.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (SQLITE_FULL does): the
            # original error is the one to raise, not "no transaction is active".
            if connection.in_transaction:
                cursor.execute("ROLLBACK")
            writer.forget()
            raise
        return positions

    def _rows(self, cursor, samples, received):
        """The samples' rows (adding series and variables as needed); None: in an earlier file."""
        rows = []
        writer = self._writer
        recheck_before = self._day_start + self.lookback
        for sample in samples:
            if sample.ts < recheck_before and self._held_earlier(sample):
                rows.append(None)
                continue
            series_id = writer.series_id(cursor, sample.host, sample.dataset, sample.instance)
            blob = writer.pack(cursor, sample.dataset, sample.values)
            rows.append((series_id, sample.ts, received, blob))
        return rows

    def _held_earlier(self, sample):
        """Is this sample (stamped before today, or just after midnight) in an earlier file?

        A sample lands in the file of the day it was received, so a resend
        whose first copy was received before midnight would otherwise be
        stored twice. The first copy was received on the day of the sample's
        own time or later, or earlier when it was stamped ahead of the
        recorder's clock (up to ``lookback``, the accepted future skew); all
        those files are checked. Only samples stamped before today +
        ``lookback`` can be in one, so the cost is paid for late samples and
        for a few seconds after midnight.
        """
        first = day_name(max(0.0, sample.ts - self.lookback))
        for day in self._earlier_days(first):
            found = (
                self._earlier[day]
                .execute(
                    "SELECT 1 FROM samples JOIN series ON series.id = samples.series"
                    " WHERE host = ? AND dataset = ? AND instance = ? AND ts = ?",
                    (sample.host, sample.dataset, sample.instance, sample.ts),
                )
                .fetchone()
            )
            if found:
                return True
        return False

    def _earlier_days(self, first):
        days = []
        for day, path in sorted(self._earlier_paths.items()):
            if day < first:
                continue
            if day not in self._earlier:
                try:
                    self._earlier[day] = open_day_readonly(path)
                except (sqlite3.Error, JournalError) as error:
                    log.warning("cannot check %s for resends: %s", path, error)
                    del self._earlier_paths[day]
                    continue
            days.append(day)
        return days

    def close(self) -> None:
        for connection in self._earlier.values():
            connection.close()
        self._earlier = {}
        if self._connection is not None:
            self._connection.close()
            self._connection = None
            self._writer = None
            self._day = None

    def day_files(self) -> list[Path]:
        return sorted(self.directory.glob(DAY_FILE_GLOB))

    def remove_days_before(
        self, keep_from_day: str, may_remove: Callable[[str], bool] | None = None
    ) -> list[str]:
        """Delete day files older than ``keep_from_day`` (a 'YYYY-MM-DD' string).

        ``may_remove(day)``, when given, must also say yes (the archive's guard).
        """
        removed = []
        for path in self.day_files():
            if path.stem < keep_from_day and path.stem != self._day:
                if may_remove is not None and not may_remove(path.stem):
                    continue
                self._earlier_paths.pop(path.stem, None)
                earlier = self._earlier.pop(path.stem, None)
                if earlier is not None:
                    earlier.close()
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                removed.append(path.stem)
        return removed


def read_after(
    directory: str | os.PathLike[str], watermark: JournalPosition | None, limit: int = 10_000
) -> Iterator[JournalRow]:
    """Journal rows after ``watermark`` (``(day, id)`` or None), in order.

    Yields ``((day, id), ts, host, dataset, instance, values)``.
    """
    directory = Path(directory)
    start_day, start_id = watermark if watermark else ("", 0)
    for path in sorted(directory.glob(DAY_FILE_GLOB)):
        day = path.stem
        if day < start_day:
            continue
        after = start_id if day == start_day else 0
        connection = open_day_readonly(path)
        try:
            catalog = DayCatalog(connection, path)
            while True:
                rows = connection.execute(
                    "SELECT id, series, ts, vals FROM samples WHERE id > ? ORDER BY id LIMIT ?",
                    (after, limit),
                ).fetchall()
                if not rows:
                    break
                for row_id, series_id, ts, vals in rows:
                    host, dataset, instance = catalog.series_of(series_id)
                    values = unpack_values(vals, catalog.names_for(dataset, vals))
                    yield (day, row_id), ts, host, dataset, instance, values
                after = rows[-1][0]
        finally:
            connection.close()


class Watermark:
    """How far the RRD writer got through the journal, saved atomically."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> JournalPosition | None:
        try:
            day, row_id = json.loads(self.path.read_text())
            return str(day), int(row_id)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            log.warning("watermark %s is unreadable; replaying the whole journal", self.path)
            return None

    def save(self, position: JournalPosition) -> None:
        # Durable: after a crash a lost watermark replays the whole journal.
        write_atomic(self.path, json.dumps(list(position)), durable=True)
