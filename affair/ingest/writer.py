"""The RRD writer: journaled samples -> batched ``rrdtool update`` calls.

It runs in the recorder's writer process (:mod:`affair.ingest.writer_process`), so
receiving never waits on disk: a page-cache miss can stall a librrd write for
seconds. Samples wait here per series file until ``write_delay`` has passed
(or ``max_batch`` rows are pending), then go to librrd in one call: librrd is
faster per sample with several timestamps per call (see benchmarks/RESULTS.md).

That process has one thread, the only one that writes RRDs (the binding
keeps its argument vector in a global, so two threads must never call it).

The watermark (how far the journal is in the RRDs) moves only past rows that
are in the files. Written directly, a row is once ``rrdtool update``
returns. Through rrdcached it is only in the daemon's memory then, and in
its ``-j`` journal only after a stdio buffer fills (a SIGKILL loses the
buffered tail: measured), so with a daemon the watermark moves at a
checkpoint every ``rrdcached_flush`` seconds (and at stop): every file
updated since the last one is flushed through the daemon and read back
ending at the last row sent, and only then is the position saved. A crash
of either process, or a daemon that lost rows, costs a replay of at most
that long from the journal; rows already in a file are skipped by
timestamp. Between checkpoints the daemon batches writes as it is meant to.
"""

import logging
import time
from collections import defaultdict

from affair.errors import AffairError, DiskFull, RrdcachedError
from affair.storage.diskspace import failed_for_space, is_disk_full

log = logging.getLogger(__name__)


class RrdWriter:
    def __init__(
        self,
        store,
        metrics,
        watermark=None,
        write_delay=0.0,
        max_batch=120,
        clock=time.time,
        flush_interval=300,
    ):
        self.store = store
        self.metrics = metrics
        self.watermark = watermark
        self.write_delay = write_delay
        self.max_batch = max_batch
        self.clock = clock
        self.flush_interval = flush_interval  # seconds between checkpoints through rrdcached
        self._updated = {}  # series -> SeriesFile written since the last checkpoint (rrdcached)
        self._checkpoint_at = clock()
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
        if self.store.daemon is None:
            self._advance_watermark()
        elif force or now - self._checkpoint_at >= self.flush_interval:
            self.checkpoint()
        return len(due)

    def checkpoint(self):
        """Flush every file written since the last checkpoint through rrdcached, then move on.

        Raises RrdcachedError when the daemon is unreachable or a file ends
        before the last row sent to it: what it held is gone, and the
        journal must be replayed from the watermark, which has not moved.
        """
        position = self._safe_position()  # before the flushes: rows sent up to now
        if self._updated:
            # The daemon's write threads start on everything at once; the settles below
            # then mostly find their file written, so a checkpoint is faster (RESULTS.md).
            self.store.daemon.flush_all()
        for series_file in self._updated.values():
            self.store.settle(series_file)
        self._updated = {}
        self._checkpoint_at = self.clock()
        self._save(position)

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
        except RrdcachedError:
            raise  # not this series' fault: the writer replays (writer_process.py)
        except (AffairError, OSError) as error:
            if failed_for_space(error, self.store.data_dir):  # the writer waits and replays
                raise DiskFull(self.store.data_dir, error) from None
            if isinstance(error, OSError):
                raise
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
            if self.store.daemon is not None:
                self._updated[series] = series_file

    def _update(self, series_file, batch):
        started = time.perf_counter()
        try:
            self.store.update_many(series_file, [(ts, values) for ts, values, _ in batch])
            written = batch
        except RrdcachedError:
            raise
        except AffairError as error:
            if failed_for_space(error, self.store.data_dir):
                raise DiskFull(self.store.data_dir, error) from None
            # One bad row fails the whole call; retry row by row to keep the rest.
            log.warning(
                "batched update failed (%s); retrying %d rows one by one", error, len(batch)
            )
            written = []
            for row in batch:
                try:
                    self.store.update_many(series_file, [(row[0], row[1])])
                    written.append(row)
                except RrdcachedError:
                    raise
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
        self._save(self._safe_position())

    def _safe_position(self):
        """The newest journal position with nothing at or before it still pending here."""
        pending_positions = [
            row[0] for rows in self._pending.values() for row in rows if row[0] is not None
        ]
        if pending_positions:
            day, row_id = min(pending_positions)
            return (day, row_id - 1)
        return self._last_position

    def _save(self, position):
        if self.watermark is None:
            return
        if position is not None and position != self._saved_position:
            try:
                self.watermark.save(position)
            except OSError as error:
                if is_disk_full(error):  # the rows are written: a replay skips them
                    raise DiskFull(self.watermark.path, error) from None
                raise
            self._saved_position = position


def _variables_in(rows):
    names = []
    for _, sample, _ in rows:
        for name in sample.values:
            if name not in names:
                names.append(name)
    return names
