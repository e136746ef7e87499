"""Reading what a graph shows: rows of one archive on the graph's time grid, and aggregates.

A graph of window W is drawn from the finest archive that keeps W
(:func:`affair.storage.ladder.archive_for_window`), fetched at that archive's step
so librrd's own consolidation is what we draw: nothing is resampled here.

The grid is the window's rows, labelled by the end of their interval like
:meth:`RrdStore.fetch`: ``end - (count - 1) * step .. end``, with ``end``
the current time rounded down to the step. Every series of a graph lands on
the same grid, so an aggregate adds row to row, and a host that stopped
sending shows as a gap at the right, not as a graph that ends early.

librrd picks the archive itself, and prefers one that covers the whole
requested span: asking a 10 s x 360 archive for the hour up to *now* while
its last update is a few seconds older (or newer: samples may be stamped a
little in the future) would silently get 1 min rows. So each file is asked
only for what its archive at the grid's step still holds, found from its
last update (``rrdtool last``, a header read), and the rows are then placed
on the grid by their timestamps.
"""

import math
from dataclasses import dataclass

import numpy as np

from affair.errors import AffairError, ResolutionMismatch
from affair.storage.ladder import align


@dataclass(frozen=True)
class Grid:
    """The rows a graph shows: ``count`` rows of ``step`` seconds ending at ``end``."""

    step: int
    end: int
    count: int

    @classmethod
    def for_window(cls, now, window_seconds, step):
        return cls(step, align(now, step), -(-window_seconds // step))

    @classmethod
    def for_range(cls, start, end, step):
        """The rows that cover ``start`` to ``end``: whole rows, so the edges move out to a step."""
        first = align(start, step)
        last = math.ceil(end / step) * step  # the end of the row holding ``end``
        return cls(step, last, max(1, (last - first) // step))

    @property
    def start(self):
        """The start of the first row's interval: the graph's left edge."""
        return self.end - self.count * self.step

    def row_ends(self):
        return self.start + self.step * np.arange(1, self.count + 1, dtype=float)


@dataclass
class SeriesRows:
    """One RRD's rows on a grid: ``values[cf]`` is a ``count x len(names)`` array."""

    names: tuple
    values: dict
    last_update: int


def fetch_rows(store, path, consolidations, grid, span):
    """Fetch ``consolidations`` of the RRD at ``path`` onto ``grid``.

    ``span`` is what the grid's archive keeps (its step times its rows).
    Rows the file does not have (too old, not yet written, or unknown)
    are NaN. Raises StoreError for an unreadable file and
    ResolutionMismatch when librrd has no archive at the grid's step.
    """
    last_update = store.last_update(path)
    newest = align(last_update, grid.step)  # the end of the archive's newest row
    fetch_end = min(grid.end, newest)
    # Never ask for more than the archive still holds, or librrd answers from a coarser one.
    # (Its newest row can be ahead of the grid: samples may come a little from the future.)
    fetch_start = max(fetch_end - grid.count * grid.step, newest - span)
    if fetch_end <= max(grid.start, fetch_start):  # nothing of the window is in the file
        names = tuple(store.variables(path))
        empty = {cf: np.full((grid.count, len(names)), np.nan) for cf in consolidations}
        return SeriesRows(names, empty, last_update)
    values = {}
    names = ()
    for cf in consolidations:
        step, first_end, names, fetched = store.fetch_array(
            path, cf, fetch_start, fetch_end, grid.step
        )
        if step != grid.step:
            raise ResolutionMismatch(path, grid.step, step)
        values[cf] = _place(fetched, first_end, grid)
    return SeriesRows(tuple(names), values, last_update)


def _place(fetched, first_end, grid):
    """Copy fetched rows (the first ending at ``first_end``) to their rows of ``grid``."""
    placed = np.full((grid.count, fetched.shape[1]), np.nan)
    offset = (first_end - (grid.start + grid.step)) // grid.step  # grid row of fetched row 0
    source_from = max(0, -offset)
    target_from = max(0, offset)
    length = min(len(fetched) - source_from, grid.count - target_from)
    if length > 0:
        placed[target_from : target_from + length] = fetched[source_from : source_from + length]
    return placed


def aggregate(stack, how):
    """Combine hosts row by row: ``stack`` is ``hosts x rows`` (or more axes after rows).

    ``how`` is "sum" or "average". A host with no value in a row is left
    out of that row (it does not count as zero: it lowers neither the
    average nor the count); a row no host has is NaN, a gap. Returns
    ``(values, reporting)`` where ``reporting`` counts the hosts in each row.
    """
    stack = np.asarray(stack, dtype=float)
    known = np.isfinite(stack)
    reporting = known.sum(axis=0)
    total = np.where(known, stack, 0.0).sum(axis=0)
    if how == "sum":
        values = total
    elif how == "average":
        with np.errstate(invalid="ignore", divide="ignore"):
            values = total / reporting
    else:
        raise ValueError(f"unknown aggregate {how!r}: use 'sum' or 'average'")
    values = np.where(reporting > 0, values, np.nan)
    return values, reporting


def latest_values(store, path, base_step, last_update, rows=6):
    """``{variable: value}`` of the newest known base-step row of each variable: "now".

    A long window's rows are consolidated (a 1 w graph's last row averages
    30 min), so its last row is not what the host does now; the finest
    archive's newest rows are. Unknown stays out; an unreadable file gives {}.
    """
    end = align(last_update, base_step)
    try:
        _step, _first, names, values = store.fetch_array(
            path, "AVERAGE", end - rows * base_step, end, base_step
        )
    except AffairError:
        return {}
    found = {}
    for column, name in enumerate(names):
        known = np.flatnonzero(np.isfinite(values[:, column]))
        if len(known):
            found[name] = float(values[known[-1], column])
    return found
