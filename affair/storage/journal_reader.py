"""Reading the raw archive (the journal's day files) by time range, in numpy chunks.

A sample lives in the file of the day the recorder *received* it (see
:mod:`affair.storage.journal` for why), so a late sample (a collector back after an
outage) or one stamped a little ahead of the recorder's clock sits in a
neighbouring day's file. Readers therefore never pick files by their names:
:func:`day_spans` asks every file for its smallest and largest timestamp
(two index look-ups each) and keeps those whose span meets the range.

Rows come out in timestamp order within a file, a chunk of at most
``CHUNK_ROWS`` at a time, so memory stays flat however long the range is.
"""

import os
import sqlite3
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Self

import numpy as np

from affair.storage.journal import DAY_FILE_GLOB, DayCatalog, open_day_readonly

_SERIES, _TS, _VALS = itemgetter(0), itemgetter(1), itemgetter(2)

CHUNK_ROWS = 100_000  # rows read at a time


@dataclass(frozen=True)
class DaySpan:
    """One day file and the timestamps of its first and last sample."""

    path: Path
    first: float
    last: float

    @property
    def day(self) -> str:
        return self.path.stem


def day_spans(
    directory: str | os.PathLike[str], start: float | None = None, end: float | None = None
) -> list[DaySpan]:
    """Day files holding samples with ``start <= ts < end``, ordered by their first sample."""
    spans = []
    for path in sorted(Path(directory).glob(DAY_FILE_GLOB)):
        connection = open_day_readonly(path)
        try:
            # Two statements: SQLite answers a lone min() or max() from the index.
            first = connection.execute("SELECT min(ts) FROM samples").fetchone()[0]
            last = connection.execute("SELECT max(ts) FROM samples").fetchone()[0]
        finally:
            connection.close()
        if first is None:
            continue
        if (start is not None and last < start) or (end is not None and first >= end):
            continue
        spans.append(DaySpan(path, first, last))
    return sorted(spans, key=lambda span: (span.first, span.path))


@dataclass
class Chunk:
    """Rows of one day file: local series ids, timestamps and value BLOBs, in ts order."""

    series: np.ndarray  # int64
    ts: np.ndarray  # float64
    blobs: list[bytes]
    widths: np.ndarray  # int64: values in each BLOB

    def __len__(self) -> int:
        return len(self.ts)


class DayReader:
    """One day file, read in a single snapshot: its catalog and its rows agree.

    Use as a context manager; the read transaction (and the WAL snapshot it
    pins) lasts until exit.
    """

    # Set by __enter__: a reader has neither before it is entered.
    connection: sqlite3.Connection
    catalog: DayCatalog

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __enter__(self) -> Self:
        self.connection = open_day_readonly(self.path)
        self.connection.isolation_level = None
        self.connection.execute("BEGIN")  # one snapshot for the catalog and the rows
        self.catalog = DayCatalog(self.connection, self.path)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.connection.execute("COMMIT")
        finally:
            self.connection.close()

    def count(self, start: float | None = None, end: float | None = None) -> int:
        where, parameters = _range_clause(start, end)
        return self.connection.execute(
            f"SELECT count(*) FROM samples{where}", parameters
        ).fetchone()[0]

    def chunks(
        self,
        series_ids: Collection[int] | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> Iterator[Chunk]:
        """Rows with ``start <= ts < end`` of ``series_ids`` (None: all), in chunks."""
        where, parameters = _range_clause(start, end)
        yield from self.select(where, parameters, series_ids=series_ids)

    def select(
        self,
        where: str = "",
        parameters: Collection[object] = (),
        order: str = "ts",
        series_ids: Collection[int] | None = None,
    ) -> Iterator[Chunk]:
        """Rows matching an SQL ``where`` clause (ours, never a user's), in chunks."""
        if series_ids is not None:
            if not series_ids:
                return
            # Our own integer ids, inlined; the unary + keeps SQLite on the ts index
            # (file order) rather than walking series by series.
            listed = ",".join(str(int(i)) for i in sorted(series_ids))
            where += (" AND " if where else " WHERE ") + f"+series IN ({listed})"
        cursor = self.connection.execute(
            f"SELECT series, ts, vals FROM samples{where} ORDER BY {order}", tuple(parameters)
        )
        while rows := cursor.fetchmany(CHUNK_ROWS):
            count = len(rows)
            blobs = list(map(_VALS, rows))
            yield Chunk(
                series=np.fromiter(map(_SERIES, rows), np.int64, count),
                ts=np.fromiter(map(_TS, rows), np.float64, count),
                blobs=blobs,
                widths=np.fromiter(map(len, blobs), np.int64, count) // 8,
            )

    def count_by_series(self, where: str = "", parameters: Collection[object] = ()) -> dict:
        """``{series id: rows}`` of the rows matching ``where``."""
        return dict(
            self.connection.execute(
                f"SELECT series, count(*) FROM samples{where} GROUP BY series", tuple(parameters)
            )
        )


def _range_clause(start, end):
    clauses, parameters = [], []
    if start is not None:
        clauses.append("ts >= ?")
        parameters.append(float(start))
    if end is not None:
        clauses.append("ts < ?")
        parameters.append(float(end))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), parameters


def decode_values(chunk, rows, columns, width):
    """Values of ``chunk`` rows ``rows`` as a (len(rows), width) float64 matrix.

    ``columns[p]`` is the output column of the file's variable position
    ``p`` (-1: not exported). Cells a BLOB does not reach are NaN, and so is
    every unknown or absent value: ROOT and numpy know one kind of missing.
    The matrix may be a read-only view of the BLOBs (the usual case below).
    """
    widths = chunk.widths[rows]
    blobs = chunk.blobs
    every_row = len(rows) == len(chunk)  # rows are distinct indices, so they are all of them
    if _in_order(columns, width) and (widths == width).all():
        # The usual case: every BLOB holds the output's columns, in order, so
        # the BLOBs end to end are the matrix (a third of an export's decoding).
        joined = b"".join(blobs if every_row else [blobs[i] for i in rows])
        return np.frombuffer(joined, "<f8").reshape(len(rows), width)
    matrix = np.full((len(rows), width), np.nan)
    for count in np.unique(widths):
        if count == 0:
            continue
        where = np.flatnonzero(widths == count)
        if every_row and len(where) == len(rows):  # one dataset, one width
            joined = b"".join(blobs)
        else:
            joined = b"".join([blobs[i] for i in rows[where]])
        data = np.frombuffer(joined, "<f8").reshape(-1, count)
        for position in range(count):
            column = columns[position]
            if column >= 0:
                matrix[where, column] = data[:, position]
    return matrix


def _in_order(columns, width):
    """Whether the file's positions 0..width-1 are the output's columns 0..width-1."""
    return width > 0 and len(columns) >= width and bool((columns[:width] == np.arange(width)).all())
