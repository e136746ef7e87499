"""The RRD writer as a child process of the recorder.

Why a process and not a thread: librrd releases the GIL while it writes,
but each call must take the GIL back afterwards, and the receiving thread
holds it for up to the interpreter's switch interval, so a busy receiving
thread made every ``rrdtool update`` call several times slower than bare
librrd (see benchmarks/RESULTS.md). A separate process writes at librrd's full speed on the
second core and can never stall receiving.

The two processes talk over two loopback ZeroMQ sockets:

* batches: recorder PUSH -> writer PULL, msgpack ``[senders, rows]``: each
  sender name once, and rows ``[day, id, ts, host, dataset, instance, values,
  sender index]`` in journal order (a name per row would copy a long name
  into every sample, in both processes);
* reports: writer PUSH -> recorder PULL, ``{"done": n, "counts": {...},
  "delivery": {...}}`` with counter *deltas* since the last report, so a
  restarted writer adds to the totals instead of resetting them.

Nothing is lost if the writer dies: every sample it was sent is already in
the journal, and a new writer replays the journal past its watermark first.
Samples it then receives that it already replayed are skipped by position.

With rrdcached, a daemon that cannot be reached (or that lost rows: see
:mod:`affair.ingest.writer`) is met the same way, without a new process: the
writer drops what it holds, waits for the daemon, and replays the journal
from its watermark, which no row the daemon may have lost has passed. The
recorder keeps receiving meanwhile, up to its queue limit.
"""

import fcntl
import logging
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TypeAlias

import msgpack
import zmq

from affair.config import Config
from affair.daemon import setup_logging
from affair.errors import DataDirLocked, DiskFull, RrdcachedError
from affair.ingest.selfmetrics import Metrics
from affair.ingest.validate import Sample
from affair.ingest.writer import RrdWriter
from affair.storage.journal import JournalPosition, Watermark, read_after
from affair.storage.rrd_store import RrdStore

log = logging.getLogger("affair.ingest.writer")

STOP = b"STOP"
REPORT_EVERY = 0.5  # seconds between progress reports while busy
RETRY_EVERY = 1.0  # seconds between attempts to reach an rrdcached that is down
WRITER_COUNTERS = (
    "written",
    "rrd_updates",
    "write_seconds",
    "rej_not_increasing",
    "rej_write_error",
)


# A journaled sample on its way to the writer: where it is in the journal, and what.
JournaledItem: TypeAlias = tuple[JournalPosition, Sample]


def encode_batch(items: Iterable[JournaledItem]) -> bytes:
    """``seq`` and ``attempt`` stay behind: the writer needs neither (it gets 0 and 1)."""
    senders: dict[str, int] = {}
    rows = [
        [
            p[0],
            p[1],
            s.ts,
            s.host,
            s.dataset,
            s.instance,
            s.values,
            senders.setdefault(s.sender, len(senders)),
        ]
        for p, s in items
    ]
    return msgpack.packb([list(senders), rows])


def decode_batch(payload: bytes) -> list[JournaledItem]:
    senders, rows = msgpack.unpackb(payload)
    return [
        ((day, row_id), Sample(0, ts, host, dataset, instance, values, 1, senders[sender]))
        for day, row_id, ts, host, dataset, instance, values, sender in rows
    ]


def writer_main(
    config: Config,
    batches_endpoint: str,
    reports_endpoint: str,
    parent_pid: int,
    log_level: str = "INFO",
) -> None:
    """Entry point of the child process (spawned by the recorder)."""
    # The recorder decides when we stop (it sends STOP and waits for the
    # flush); a Ctrl-C or a SIGTERM to the whole process group must not
    # kill us halfway through a batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    setup_logging(log_level)
    data_dir = Path(config.recorder.data_dir)
    lock_path = data_dir / "_state" / "writer.lock"
    with open(lock_path, "a") as lock:
        _wait_for_lock(lock, lock_path)
        context = zmq.Context()
        batches = context.socket(zmq.PULL)
        batches.setsockopt(zmq.LINGER, 0)
        batches.connect(batches_endpoint)
        reports = context.socket(zmq.PUSH)
        reports.setsockopt(zmq.LINGER, 2000)
        reports.connect(reports_endpoint)
        try:
            WriterLoop(config, data_dir, batches, reports, parent_pid).run()
        finally:
            batches.close()
            reports.close()
            context.term()


def _wait_for_lock(lock, path, timeout=60):
    # A writer left by a recorder killed with SIGKILL exits within a second
    # of noticing; wait for it rather than write the same files twice.
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                # data_dir/_state/writer.lock: the data dir is the one the operator knows
                raise DataDirLocked(
                    Path(path).parent.parent, who="an RRD writer of an earlier recorder"
                ) from None
            time.sleep(0.1)


class WriterLoop:
    def __init__(self, config, data_dir, batches, reports, parent_pid):
        self.config = config
        self.data_dir = data_dir
        self.batches = batches
        self.reports = reports
        self.parent_pid = parent_pid
        self.metrics = Metrics()
        self.watermark = Watermark(data_dir / "_state" / "writer.watermark")
        self.journal_dir = data_dir / "_journal"
        self.writer = self._new_writer()
        self._replayed_up_to = None
        self._held = []  # batches taken while catching up, added after the replay
        self._done = 0
        self._reported = dict.fromkeys(WRITER_COUNTERS, 0.0)
        self._last_report = 0.0

    def _new_writer(self):
        recorder = self.config.recorder
        return RrdWriter(
            RrdStore(self.config, self.data_dir),
            self.metrics,
            self.watermark,
            recorder.write_delay,
            flush_interval=recorder.rrdcached_flush,
        )

    def run(self):
        if not self._catch_up():
            self._report(force=True)
            return
        self._report(force=True, ready=True)
        stopping = False
        while not stopping:
            if os.getppid() != self.parent_pid:
                log.warning("the recorder is gone: writing what is pending and exiting")
                stopping = True
            elif self.batches.poll(100):
                stopping = self._take_batches()
            try:
                self.writer.write_due(force=stopping)
            except (RrdcachedError, DiskFull) as error:
                if stopping:  # the journal has it all; the next start replays it
                    log.error("%s; stopping, the next start replays the journal", error)
                    break
                waiting_for = "the daemon answers" if isinstance(error, RrdcachedError) else "space"
                log.error("%s; replaying the journal once %s", error, waiting_for)
                self.writer = self._new_writer()
                stopping = not self._catch_up()
            self._report(force=stopping)

    def _catch_up(self):
        """Replay the journal past the watermark, waiting while rrdcached is down.

        False if told to stop first. Batches that arrive meanwhile are held
        and added after the replay, less what it already wrote.
        """
        failures = 0
        while True:
            try:
                if not self._replay():
                    return False
                break
            except (RrdcachedError, DiskFull) as error:
                if (
                    failures % 60 == 0
                ):  # a line a minute while the daemon stays down (or the disk full)
                    log.error("%s; waiting for it", error)
                failures += 1
                self.writer = self._new_writer()
                deadline = time.monotonic() + RETRY_EVERY
                while time.monotonic() < deadline:
                    if self._told_to_stop():
                        return False
                    self._report()
                    time.sleep(0.1)
        if failures:
            log.info("rrdcached answers again (or space is back): the journal is replayed")
        held, self._held = self._held, []
        replayed = self._replayed_up_to
        self.writer.add([item for item in held if replayed is None or item[0] > replayed])
        return True

    def _take_batches(self):
        while True:
            try:
                payload = self.batches.recv(zmq.NOBLOCK)
            except zmq.Again:
                return False
            if payload == STOP:
                return True
            items = decode_batch(payload)
            self._done += len(items)
            if self._replayed_up_to is not None:
                items = [item for item in items if item[0] > self._replayed_up_to]
            self.writer.add(items)

    def _replay(self):
        """Write the journal past the watermark; False if told to stop first.

        A long replay (a big backlog) stops between chunks on STOP or when
        the recorder dies, so SIGTERM stays quick and a restarted recorder's
        writer need not wait for this one: the watermark marks where the
        next replay resumes.
        """
        replayed = 0
        chunk = []
        for position, ts, host, dataset, instance, values in read_after(
            self.journal_dir, self.watermark.load()
        ):
            chunk.append((position, Sample(0, ts, host, dataset, instance, values)))
            self._replayed_up_to = position
            if len(chunk) >= 10_000:
                replayed += self._write_replayed(chunk)
                chunk = []
                if self._told_to_stop():
                    log.info("stopping after replaying %d samples; the rest next time", replayed)
                    return False
        if chunk:
            replayed += self._write_replayed(chunk)
        if replayed:
            log.info("replayed %d journaled samples into the RRDs", replayed)
        return True

    def _told_to_stop(self):
        # Before we report ready the recorder sends nothing but STOP; while we catch
        # up after losing rrdcached it goes on sending batches, held for later.
        if os.getppid() != self.parent_pid:
            return True
        while self.batches.poll(0):
            payload = self.batches.recv()
            if payload == STOP:
                return True
            items = decode_batch(payload)
            self._done += len(items)
            self._held.extend(items)
        return False

    def _write_replayed(self, chunk):
        self.writer.add(chunk, replayed=True)
        self.writer.write_due(force=True)
        return len(chunk)

    def _report(self, force=False, ready=False):
        now = time.monotonic()
        if not force and now - self._last_report < REPORT_EVERY:
            return
        counts = self.metrics.counts
        deltas = {name: counts[name] - self._reported[name] for name in WRITER_COUNTERS}
        delivery = self.metrics.take_interval()
        if not force and not self._done and not delivery and not any(deltas.values()):
            return
        self.reports.send(
            msgpack.packb(
                {
                    "ready": ready,
                    "done": self._done,
                    "pending": self.writer.pending_count + len(self._held),
                    "counts": deltas,
                    "delivery": delivery,
                }
            )
        )
        self._reported = {name: counts[name] for name in WRITER_COUNTERS}
        self._done = 0
        self._last_report = now
