"""The journal: every accepted sample, durable before it is acknowledged.

Why SQLite, one file per UTC day of receipt, in WAL mode:

* A commit in WAL mode survives SIGKILL of the recorder the moment it
  returns (the WAL is in the OS page cache; ``journal_sync = "full"`` adds
  an fsync per commit for power loss too). So the recorder commits a batch,
  then acks it, and a collector never forgets a sample that could be lost.
* One transaction per receive burst keeps the cost near 3 microseconds a
  sample; a crash mid-transaction rolls back cleanly, never a torn record.
* UNIQUE(host, dataset, instance, ts) makes resends idempotent: a sample
  that was already journaled is recognised, acked again and not written
  twice. A resend can arrive after midnight (UTC) when the first copy went
  into yesterday's file, so a sample older than today is also looked up in
  the earlier day files it could have been received on (from the day of
  its timestamp minus the accepted future skew, ``lookback``).
* The same files are the raw archive for offline analysis (every sample
  unconsolidated, with its own timestamp) and answer SQL directly; values
  are a JSON object so ``json_extract`` works from any sqlite3 client.
* Daily files make retention a file deletion, never a long DELETE.

The RRD writer consumes samples in journal order and records how far it
got (its *watermark*: a day file and a row id); after a crash, everything
past the watermark is replayed into the RRDs.
"""

import json
import logging
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    id       INTEGER PRIMARY KEY,
    ts       REAL NOT NULL,            -- the sample's own time, Unix seconds
    host     TEXT NOT NULL,
    dataset  TEXT NOT NULL,
    instance TEXT NOT NULL DEFAULT '',
    vals     TEXT NOT NULL,            -- JSON object {variable: number or null}
    received REAL NOT NULL,            -- when the recorder accepted it
    UNIQUE (host, dataset, instance, ts)
);
CREATE INDEX IF NOT EXISTS samples_ts ON samples (ts);
"""


_INSERT = (
    "INSERT OR IGNORE INTO samples (ts, host, dataset, instance, vals, received)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


def day_name(timestamp):
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def _day_start(timestamp):
    return timestamp - timestamp % 86400  # UTC days are whole multiples of 86400 s


def open_day(path, sync="normal"):
    """Open (creating) one day file in WAL mode with our schema."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
    connection.executescript(SCHEMA)
    return connection


class Journal:
    """Append-only, day-rotated store of accepted samples (the receiving side)."""

    def __init__(self, directory, sync="normal", clock=time.time, lookback=0):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sync = sync
        self.clock = clock
        self.lookback = lookback  # how far ahead of its receipt a sample's time may be
        self._day = None
        self._connection = None
        self._earlier = {}  # day -> read-only connection to an earlier day file

    def _connection_for_now(self):
        day = day_name(self.clock())
        if day != self._day:
            if self._connection is not None:
                self._connection.close()
            self._connection = open_day(self.directory / f"{day}.sqlite", self.sync)
            self._day = day
        return self._day, self._connection

    def append(self, samples):
        """Journal ``samples`` in one transaction.

        ``samples`` are objects with ts, host, dataset, instance and values.
        Returns one entry per sample: its position ``(day, row id)`` if it is
        new, or None if the journal already held it (a resend).
        """
        day, connection = self._connection_for_now()
        received = self.clock()
        held = self._held_earlier(samples, day, received)
        rows = [
            (
                sample.ts,
                sample.host,
                sample.dataset,
                sample.instance,
                json.dumps(sample.values, allow_nan=False, separators=(",", ":")),
                received,
            )
            for sample, is_held in zip(samples, held, strict=True)
            if not is_held
        ]
        cursor = connection.cursor()
        cursor.execute("BEGIN")
        try:
            before = connection.total_changes
            cursor.executemany(_INSERT, rows)
            if connection.total_changes - before == len(rows):
                # The usual case, no resends: one transaction, consecutive row ids.
                (last,) = cursor.execute("SELECT last_insert_rowid()").fetchone()
                fresh = [(day, row_id) for row_id in range(last - len(rows) + 1, last + 1)]
            else:
                cursor.execute("ROLLBACK")
                cursor.execute("BEGIN")
                fresh = []
                for row in rows:  # some were resends: find out which, row by row
                    cursor.execute(_INSERT, row)
                    fresh.append((day, cursor.lastrowid) if cursor.rowcount == 1 else None)
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        fresh = iter(fresh)
        return [None if is_held else next(fresh) for is_held in held]

    def _held_earlier(self, samples, today, received):
        """For each sample, whether an earlier day file holds it (a resend across midnight).

        Only samples older than today (less the lookback) can be there, so the
        usual batch costs one comparison a sample and no lookup at all.
        """
        today_starts = _day_start(received)
        earlier = None  # the earlier day files, listed once per call if needed
        held = []
        for sample in samples:
            if sample.ts - self.lookback >= today_starts:
                held.append(False)
                continue
            if earlier is None:
                earlier = [p for p in self.day_files() if p.stem < today]
            held.append(self._held_in(sample, earlier))
        return held

    def _held_in(self, sample, earlier_files):
        first = day_name(max(0.0, sample.ts - self.lookback))
        for path in earlier_files:
            day = path.stem
            if day < first:
                continue
            connection = self._earlier.get(day)
            if connection is None:
                connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                self._earlier[day] = connection
            row = connection.execute(
                "SELECT 1 FROM samples WHERE host = ? AND dataset = ? AND instance = ? AND ts = ?",
                (sample.host, sample.dataset, sample.instance, sample.ts),
            ).fetchone()
            if row is not None:
                return True
        return False

    def close(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None
            self._day = None
        self._close_earlier()

    def _close_earlier(self):
        for connection in self._earlier.values():
            connection.close()
        self._earlier = {}

    def day_files(self):
        return sorted(self.directory.glob("????-??-??.sqlite"))

    def remove_days_before(self, keep_from_day):
        """Delete day files older than ``keep_from_day`` (a 'YYYY-MM-DD' string)."""
        self._close_earlier()
        removed = []
        for path in self.day_files():
            if path.stem < keep_from_day and path.stem != self._day:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                removed.append(path.stem)
        return removed


def read_after(directory, watermark, limit=10_000):
    """Journal rows after ``watermark`` (``(day, id)`` or None), in order.

    Yields ``((day, id), ts, host, dataset, instance, values)``.
    """
    directory = Path(directory)
    start_day, start_id = watermark if watermark else ("", 0)
    for path in sorted(directory.glob("????-??-??.sqlite")):
        day = path.stem
        if day < start_day:
            continue
        after = start_id if day == start_day else 0
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            while True:
                rows = connection.execute(
                    "SELECT id, ts, host, dataset, instance, vals FROM samples"
                    " WHERE id > ? ORDER BY id LIMIT ?",
                    (after, limit),
                ).fetchall()
                if not rows:
                    break
                for row_id, ts, host, dataset, instance, vals in rows:
                    yield (day, row_id), ts, host, dataset, instance, json.loads(vals)
                after = rows[-1][0]
        finally:
            connection.close()


class Watermark:
    """How far the RRD writer got through the journal, saved atomically."""

    def __init__(self, path):
        self.path = Path(path)

    def load(self):
        try:
            day, row_id = json.loads(self.path.read_text())
            return str(day), int(row_id)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            log.warning("watermark %s is unreadable; replaying the whole journal", self.path)
            return None

    def save(self, position):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(list(position)))
        os.replace(temporary, self.path)
