"""The RRD writer: journaled samples -> batched ``rrdtool update`` calls.

It runs in the recorder's writer process (:mod:`affair.writer_process`), so
receiving never waits on disk: a page-cache miss can stall a librrd write for
seconds. Samples wait here per series file until ``write_delay`` has passed
(or ``max_batch`` rows are pending), then go to librrd in one call: several
timestamps per call are ~3x cheaper per sample than one.

That process has one thread, the only one that writes RRDs (the binding
keeps its argument vector in a global, so two threads must never call it).
"""

import logging
import time
from collections import defaultdict

from affair.errors import AffairError

log = logging.getLogger(__name__)


class RrdWriter:
    def __init__(
        self, store, metrics, watermark=None, write_delay=0.0, max_batch=120, clock=time.time
    ):
        self.store = store
        self.metrics = metrics
        self.watermark = watermark
        self.write_delay = write_delay
        self.max_batch = max_batch
        self.clock = clock
        self._pending = defaultdict(list)  # series -> [(position, sample, replayed)]
        self._pending_since = {}  # series -> arrival time of its oldest pending sample
        self._open = {}  # series -> SeriesFile
        self._last_position = None  # newest journal position handed to us
        self._saved_position = None

    @property
    def pending_count(self):
        return sum(len(rows) for rows in self._pending.values())

    def add(self, items, replayed=False):
        """Queue ``(position, sample)`` pairs, in journal order."""
        now = self.clock()
        for position, sample in items:
            series = sample.series
            if series not in self._pending_since:
                self._pending_since[series] = now
            self._pending[series].append((position, sample, replayed))
            if position is not None:
                self._last_position = position

    def write_due(self, force=False):
        """Write every series whose batch is due (all of them when ``force``)."""
        now = self.clock()
        due = [
            series
            for series, since in self._pending_since.items()
            if force
            or now - since >= self.write_delay
            or len(self._pending[series]) >= self.max_batch
        ]
        for series in due:
            rows = self._pending.pop(series)
            del self._pending_since[series]
            self._write_series(series, rows)
        self._advance_watermark()
        return len(due)

    def _write_series(self, series, rows):
        host, dataset, instance = series
        rows.sort(key=lambda row: row[1].ts)
        try:
            series_file = self._open.get(series)
            if series_file is None:
                names = _variables_in(rows)
                series_file = self.store.open_series(host, dataset, instance, names, rows[0][1].ts)
                self._open[series] = series_file
            known = series_file.known_names
            if any(not (row[1].values.keys() <= known) for row in rows):
                new_names = [n for n in _variables_in(rows) if n not in known]
                self.store.add_variables(series_file, new_names)
        except AffairError as error:
            self.metrics.add("rej_write_error", len(rows))
            log.error(
                "cannot open %s/%s: %s (%d samples kept in the journal only)",
                host,
                dataset,
                error,
                len(rows),
            )
            return
        batch = []
        last = series_file.last_update
        for _position, sample, replayed in rows:
            second = int(sample.ts)
            if second <= last:
                if not replayed:  # a replayed sample at or before the file's end was written before
                    self.metrics.add("rej_not_increasing")
                    log.debug(
                        "%s/%s: timestamp %d not after %d, kept in journal only",
                        host,
                        dataset,
                        second,
                        last,
                    )
                continue
            batch.append((second, sample.values, sample))
            last = second
        if batch:
            self._update(series_file, batch)

    def _update(self, series_file, batch):
        started = time.perf_counter()
        try:
            self.store.update_many(series_file, [(ts, values) for ts, values, _ in batch])
            written = batch
        except AffairError as error:
            # One bad row fails the whole call; retry row by row to keep the rest.
            log.warning(
                "batched update failed (%s); retrying %d rows one by one", error, len(batch)
            )
            written = []
            for row in batch:
                try:
                    self.store.update_many(series_file, [(row[0], row[1])])
                    written.append(row)
                except AffairError as row_error:
                    self.metrics.add("rej_write_error")
                    log.error("%s", row_error)
        elapsed = time.perf_counter() - started
        now = self.clock()
        self.metrics.add("written", len(written))
        self.metrics.add("rrd_updates")
        self.metrics.add("write_seconds", elapsed)
        latencies = {}
        for _, _, sample in written:
            latencies.setdefault(sample.sender, []).append(now - sample.ts)
        if latencies:
            self.metrics.observe_delivery(latencies)

    def _advance_watermark(self):
        if self.watermark is None:
            return
        pending_positions = [
            row[0] for rows in self._pending.values() for row in rows if row[0] is not None
        ]
        if pending_positions:
            day, row_id = min(pending_positions)
            position = (day, row_id - 1)
        else:
            position = self._last_position
        if position is not None and position != self._saved_position:
            self.watermark.save(position)
            self._saved_position = position


def _variables_in(rows):
    names = []
    for _, sample, _ in rows:
        for name in sample.values:
            if name not in names:
                names.append(name)
    return names
