"""The permanent archive's catalog: which ROOT files hold which samples, and what is verified.

The archive (:mod:`affair.outputs.archive`) writes each UTC day of samples
(by the sample's own time) to ``<directory>/YYYY/affair-YYYY-MM-DD.root``,
and samples of that day that arrive after it was written to supplements
``affair-YYYY-MM-DD.1.root``, ``.2.root``... This module is the small
SQLite index beside them, ``<directory>/catalog.sqlite``, read by both sides:
the archive records files and failures in it, and the recorder's journal
retention (ingest, which may not import outputs) asks it whether a journal
day file is safe to delete.

Why coverage is kept per *journal* file and *sample* day: a journal file
holds the samples *received* on one day, with any timestamps (a few seconds
ahead of midnight, or days late after an outage). For each pair the catalog
keeps a row id: the rows of that file with a timestamp in that day and an id
up to it are in a verified archive file. Rows are only ever appended (ids
grow), so the next pass takes the rows past it and nothing is read twice or
skipped, and a day whose file failed keeps its old id without holding back
the other days. ``scanned`` says up to which id a file's rows have had
their sample days noted. A journal file is *archived* once it was finished
(its day over) when it was scanned to its last row, and every sample day of
it is covered to there: only then may retention delete it.

A verified file that ``affair archive verify`` later finds damaged gets a
row in ``rebuilds``: the next pass writes its rows again from the journal
under a new name (the damaged file kept aside as ``*.rejected``), and
until then the journal days it came from are not complete, so retention
keeps them. When the journal no longer holds every row of it, the row says
why, and the day stays red.
"""

import json
import logging
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing  # sqlite3's own context manager only commits
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CATALOG_NAME = "catalog.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    day      TEXT NOT NULL,       -- the samples' UTC day, 'YYYY-MM-DD'
    part     INTEGER NOT NULL,    -- 0: the day's file, 1, 2...: supplements (late samples)
    file     TEXT NOT NULL,       -- relative to the archive directory
    bytes    INTEGER NOT NULL,
    samples  INTEGER NOT NULL,
    expected TEXT NOT NULL,       -- JSON: entries per dataset/host/instance and checksums
    created  REAL NOT NULL,
    verified REAL,                -- when it was last read back and matched; NULL: it did not
    problem  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (day, part)
);
CREATE TABLE IF NOT EXISTS journal (
    day      TEXT PRIMARY KEY,    -- a journal day file (day of receipt)
    scanned  INTEGER NOT NULL,    -- rows up to this id have their sample days in covered
    complete INTEGER NOT NULL     -- 1: every row of the (finished) file is archived and verified
);
CREATE TABLE IF NOT EXISTS covered (
    journal_day TEXT NOT NULL,
    sample_day  TEXT NOT NULL,
    rowid       INTEGER NOT NULL, -- rows of that file and day with id <= rowid are archived
    PRIMARY KEY (journal_day, sample_day)
);
CREATE TABLE IF NOT EXISTS rebuilds (
    day      TEXT NOT NULL,       -- the file found damaged, by its (day, part) in files
    part     INTEGER NOT NULL,
    found    REAL NOT NULL,       -- when verify found it damaged
    problem  TEXT NOT NULL DEFAULT '',  -- why it cannot be rebuilt ('': not tried, or done)
    rebuilt  TEXT,                -- the file written in its place; NULL: not yet
    PRIMARY KEY (day, part)
);
CREATE TABLE IF NOT EXISTS failures (
    day      TEXT PRIMARY KEY,    -- a sample day that could not be archived
    problem  TEXT NOT NULL,
    first    REAL NOT NULL,
    last     REAL NOT NULL,
    attempts INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class ArchiveFile:
    day: str
    part: int
    file: str
    bytes: int
    samples: int
    expected: dict
    created: float
    verified: float | None
    problem: str


@dataclass
class Coverage:
    """One journal file: how far it was scanned, and each sample day's archived row id."""

    scanned: int = 0
    complete: bool = False
    days: dict[str, int] = field(default_factory=dict)  # sample day -> row id


@dataclass(frozen=True)
class Failure:
    day: str
    problem: str
    first: float
    last: float
    attempts: int


@dataclass(frozen=True)
class Rebuild:
    """A verified file found damaged later: rewritten from the journal, or why it cannot be."""

    day: str
    part: int
    found: float
    problem: str
    rebuilt: str | None

    @property
    def pending(self) -> bool:
        return self.rebuilt is None


def archive_file_name(day: str, part: int = 0) -> str:
    """``YYYY/affair-YYYY-MM-DD.root``, or ``...DD.<part>.root`` for a supplement."""
    suffix = f".{part}" if part else ""
    return f"{day[:4]}/affair-{day}{suffix}.root"


class ArchiveCatalog:
    """The catalog file, opened per use (it is small, and two processes share it)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CATALOG_NAME

    def exists(self) -> bool:
        return self.path.exists()

    def _connect(self, create: bool = False) -> sqlite3.Connection:
        if create:
            self.directory.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(SCHEMA)
        else:
            # Readers include the recorder's serving loop: never wait long (WAL readers
            # do not wait for the writer anyway).
            connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=2)
        return connection

    # --- reading ---

    def files(self, day: str | None = None) -> list[ArchiveFile]:
        if not self.exists():
            return []
        where, parameters = (" WHERE day = ?", (day,)) if day else ("", ())
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT day, part, file, bytes, samples, expected, created, verified, problem"
                f" FROM files{where} ORDER BY day, part",
                parameters,
            ).fetchall()
        return [
            ArchiveFile(day, part, file, size, samples, json.loads(expected), *rest)
            for day, part, file, size, samples, expected, *rest in rows
        ]

    def total_bytes(self) -> int:
        """Bytes of every file in the catalog (without reading what each holds)."""
        if not self.exists():
            return 0
        with closing(self._connect()) as connection:
            return connection.execute("SELECT coalesce(sum(bytes), 0) FROM files").fetchone()[0]

    def coverage(self) -> dict[str, Coverage]:
        if not self.exists():
            return {}
        with closing(self._connect()) as connection:
            coverage = {
                day: Coverage(scanned, bool(done))
                for day, scanned, done in connection.execute(
                    "SELECT day, scanned, complete FROM journal"
                )
            }
            for journal_day, sample_day, rowid in connection.execute(
                "SELECT journal_day, sample_day, rowid FROM covered"
            ):
                coverage.setdefault(journal_day, Coverage()).days[sample_day] = rowid
        return coverage

    def failures(self) -> list[Failure]:
        if not self.exists():
            return []
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT day, problem, first, last, attempts FROM failures ORDER BY day"
            ).fetchall()
        return [Failure(*row) for row in rows]

    def rebuilds(self) -> list[Rebuild]:
        if not self.exists():
            return []
        with closing(self._connect()) as connection:
            try:
                rows = connection.execute(
                    "SELECT day, part, found, problem, rebuilt FROM rebuilds ORDER BY day, part"
                ).fetchall()
            except sqlite3.OperationalError:  # a catalog from before rebuilds, not written since
                return []
        return [Rebuild(*row) for row in rows]

    def archived_journal_days(self) -> set[str]:
        """Journal day files whose every row is in a verified archive file."""
        return {day for day, cover in self.coverage().items() if cover.complete}

    # --- writing (the archive pass only) ---

    def add_file(self, entry: ArchiveFile) -> None:
        with closing(self._connect(create=True)) as connection, connection:
            connection.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.day,
                    entry.part,
                    entry.file,
                    entry.bytes,
                    entry.samples,
                    json.dumps(entry.expected, sort_keys=True),
                    entry.created,
                    entry.verified,
                    entry.problem,
                ),
            )

    def set_verified(self, day: str, part: int, verified: float | None, problem: str) -> None:
        with closing(self._connect(create=True)) as connection, connection:
            connection.execute(
                "UPDATE files SET verified = ?, problem = ? WHERE day = ? AND part = ?",
                (verified, problem, day, part),
            )

    def set_coverage(self, day: str, cover: Coverage) -> None:
        """Replace what is known of journal file ``day``, in one transaction."""
        with closing(self._connect(create=True)) as connection, connection:
            connection.execute(
                "INSERT OR REPLACE INTO journal VALUES (?, ?, ?)",
                (day, cover.scanned, int(cover.complete)),
            )
            connection.executemany(
                "INSERT OR REPLACE INTO covered VALUES (?, ?, ?)",
                [(day, sample_day, rowid) for sample_day, rowid in cover.days.items()],
            )

    def unverify_journal(self, days: set[str]) -> None:
        """Journal files that fed a file found bad: no longer safe to delete."""
        with closing(self._connect(create=True)) as connection, connection:
            connection.executemany(
                "UPDATE journal SET complete = 0 WHERE day = ?", [(d,) for d in days]
            )

    def mark_rebuild(self, day: str, part: int, now: float) -> None:
        """File (day, part) was found damaged: the next pass writes its rows again."""
        with closing(self._connect(create=True)) as connection, connection:
            connection.execute(
                "INSERT OR REPLACE INTO rebuilds VALUES (?, ?, ?, '', NULL)", (day, part, now)
            )

    def set_rebuild(self, day: str, part: int, problem: str, rebuilt: str | None) -> None:
        with closing(self._connect(create=True)) as connection, connection:
            connection.execute(
                "UPDATE rebuilds SET problem = ?, rebuilt = ? WHERE day = ? AND part = ?",
                (problem[:500], rebuilt, day, part),
            )

    def record_failure(self, day: str, problem: str, now: float) -> None:
        with closing(self._connect(create=True)) as connection, connection:
            connection.execute(
                "INSERT INTO failures VALUES (?, ?, ?, ?, 1) ON CONFLICT (day) DO UPDATE"
                " SET problem = excluded.problem, last = excluded.last, attempts = attempts + 1",
                (day, problem[:500], now, now),
            )

    def clear_failure(self, day: str) -> None:
        if not self.exists():
            return
        with closing(self._connect(create=True)) as connection, connection:
            connection.execute("DELETE FROM failures WHERE day = ?", (day,))


def archived_guard(directory: str | os.PathLike[str]) -> Callable[[str], bool]:
    """A retention predicate: may journal day file ``day`` go? Only once it is archived.

    The catalog is read once, when the guard is made (once per retention pass).
    """
    try:
        archived = ArchiveCatalog(directory).archived_journal_days()
    except (
        sqlite3.Error
    ) as error:  # a damaged catalog keeps every journal day, not the recorder down
        log.error(
            "archive catalog in %s unreadable (%s): no journal day is deleted", directory, error
        )
        archived = set()
    return archived.__contains__
