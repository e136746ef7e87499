"""The recorder: receive -> validate -> journal -> ack, and hand over to the writer.

One thread receives on a ZeroMQ ROUTER socket, validates each sample,
journals the good ones in one SQLite transaction per burst, and only then
acks them: an ack means the sample survives a SIGKILL of this process.
A second thread (:mod:`affair.writer`) turns journaled samples into RRD
rows. The two meet in a queue whose depth is bounded: when the writer falls
``queue_limit`` samples behind, receiving pauses, ZeroMQ's buffers fill, and
senders keep their samples until acks resume (carbon's "cache full" pause).

With a CURVE secret key (``[recorder] curve_secret_key_file``) every
connection must complete a CURVE handshake with a key on the allow-list
(:mod:`affair.auth`); refused handshakes are counted as ``rej_auth`` and
``rej_handshake``. ROUTER fair-queues its peers, and a burst takes at most
``BURST_MESSAGES`` messages and about ``BURST_SAMPLES`` samples, so a sender
that floods the recorder delays the others by one bounded burst at most.
"""

import fcntl
import json
import logging
import os
import queue
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import zmq
from zmq.utils.monitor import recv_monitor_message

from affair import wire
from affair.auth import start_authenticator
from affair.errors import WireError
from affair.journal import Journal, Watermark, read_after
from affair.selfmetrics import Metrics
from affair.store import RrdStore
from affair.validate import Rejected, Sample, SeriesCap, validate_sample
from affair.writer import RrdWriter

log = logging.getLogger(__name__)

_PRINTABLE_NAME = re.compile(r"[A-Za-z0-9._:@/+-]{1,80}")
_HANDSHAKE_FAILURES = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)

BURST_MESSAGES = 500  # messages taken per journal transaction at most
BURST_SAMPLES = 5000  # ...and samples, so one burst (and so any sender's wait) stays short
_STOP = object()


def _is_local(endpoint):
    return endpoint.startswith(
        ("ipc://", "inproc://", "tcp://127.", "tcp://[::1]", "tcp://localhost")
    )


class RejectionLog:
    """Logs the first few rejections of each reason per minute, then a count.

    A fuzzer or a broken sender can send a million bad messages; the log
    must stay readable at 3 a.m.
    """

    def __init__(self, per_minute=5, clock=time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self._window_start = clock()
        self._seen = {}

    def __call__(self, reason, sender, detail):
        now = self.clock()
        if now - self._window_start >= 60:
            for name, count in self._seen.items():
                if count > self.per_minute:
                    log.warning(
                        "%d more '%s' rejections in the last minute (not logged one by one)",
                        count - self.per_minute,
                        name,
                    )
            self._seen = {}
            self._window_start = now
        count = self._seen.get(reason, 0) + 1
        self._seen[reason] = count
        if count <= self.per_minute:
            log.warning("rejected (%s) from %s: %s", reason, sender, str(detail)[:200])


class DataDirLock:
    """One recorder per data dir; the kernel releases the lock if we are killed."""

    def __init__(self, data_dir):
        self.path = Path(data_dir) / "_state" / "recorder.lock"
        self._handle = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a+")  # noqa: SIM115 - held for the process lifetime
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            holder = self._handle.read().strip() or "unknown"
            self._handle.close()
            raise RuntimeError(
                f"another recorder (pid {holder}) is using {self.path.parent.parent}"
            ) from None
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(str(os.getpid()))
        self._handle.flush()
        return self

    def __exit__(self, *exc):
        self._handle.close()


class Recorder:
    def __init__(self, config, clock=time.time, context=None, server_key=None, allowed_keys=None):
        self.config = config
        self.clock = clock
        self.data_dir = Path(config.recorder.data_dir)
        self.context = context or zmq.Context.instance()
        self.server_key = server_key  # CURVE secret key, or None for plain TCP
        self.allowed_keys = allowed_keys
        self.metrics = Metrics()
        self.store = RrdStore(config, self.data_dir)
        self.journal = Journal(
            self.data_dir / "_journal",
            config.recorder.journal_sync,
            clock,
            lookback=config.recorder.max_future_skew,
        )
        self.watermark = Watermark(self.data_dir / "_state" / "writer.watermark")
        self.writer = RrdWriter(
            self.store, self.metrics, self.watermark, config.recorder.write_delay, clock=clock
        )
        self.series_cap = SeriesCap(config.recorder.max_series_per_host, self.store.series)
        self.reject_log = RejectionLog()
        self.endpoint = None  # the address actually bound, once running
        self._queue = queue.SimpleQueue()
        self._enqueued = 0  # samples handed to the writer (receiving thread only)
        self._dequeued = 0  # samples taken by the writer (writer thread only)
        self._writer_thread = None
        self._writer_error = None
        self._stopping = threading.Event()  # tells a long replay to stop early

    # --- life cycle ---

    def run(self, stop, ready=None):
        """Serve until ``stop`` (a threading.Event) is set, then flush and return."""
        with DataDirLock(self.data_dir):
            authenticator = None
            if self.server_key is not None:
                authenticator = start_authenticator(self.context, self.allowed_keys or ())
            socket = self._bind()
            monitor = socket.get_monitor_socket(_HANDSHAKE_FAILURES)
            log.info("recorder listening on %s, data in %s", self.endpoint, self.data_dir)
            if authenticator is None and not _is_local(self.endpoint):
                log.warning(
                    "no CURVE keys: anyone who reaches %s can write samples "
                    "(see config/production.toml)",
                    self.endpoint,
                )
            self._writer_thread = threading.Thread(target=self._writer_main, name="rrd-writer")
            self._writer_thread.start()
            if ready is not None:
                ready.set()
            try:
                self._serve(socket, monitor, stop)
            finally:
                self._stopping.set()
                socket.disable_monitor()
                monitor.close(linger=0)
                socket.close(linger=0)
                if authenticator is not None:
                    authenticator.stop()
                self._queue.put(_STOP)
                self._writer_thread.join()
                self.journal.close()
                self._write_metrics_file()
                log.info(
                    "recorder stopped: %d samples accepted, %d written, %d rejected",
                    self.metrics.counts["accepted"],
                    self.metrics.counts["written"],
                    sum(v for k, v in self.metrics.counts.items() if k.startswith("rej_")),
                )
        if self._writer_error:
            raise self._writer_error

    def _bind(self):
        socket = self.context.socket(zmq.ROUTER)
        socket.setsockopt(zmq.LINGER, 0)
        # A hard ceiling well above our own limit: ZeroMQ drops the peer of a
        # larger message before we see it; ours counts the ones in between.
        socket.setsockopt(zmq.MAXMSGSIZE, 4 * self.config.recorder.max_message_bytes)
        socket.setsockopt(zmq.RCVHWM, 10_000)
        if self.server_key is not None:
            socket.curve_server = True
            socket.curve_secretkey = self.server_key
        socket.bind(self.config.recorder.listen)
        self.endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        return socket

    def _serve(self, socket, monitor, stop):
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        interval = self.config.recorder.self_interval
        next_self_sample = (int(self.clock()) // interval + 1) * interval
        next_retention = 0.0
        write_calls = write_seconds = 0.0
        while not stop.is_set():
            if self._writer_error:
                raise self._writer_error
            if self.queue_depth() > self.config.recorder.queue_limit:
                time.sleep(0.05)  # backpressure: let ZeroMQ and the senders hold the data
                self._read_monitor(monitor)
            else:
                ready = dict(poller.poll(100))
                if socket in ready:
                    self._receive_burst(socket)
                if monitor in ready:
                    self._read_monitor(monitor)
            now = self.clock()
            if now >= next_self_sample:
                self._record_self(now, write_calls, write_seconds)
                write_calls = self.metrics.counts["rrd_updates"]
                write_seconds = self.metrics.counts["write_seconds"]
                next_self_sample = (int(now) // interval + 1) * interval
            if now >= next_retention:
                self._apply_retention(now)
                next_retention = now + 3600

    def queue_depth(self):
        return self._enqueued - self._dequeued

    # --- receiving ---

    def _receive_burst(self, socket):
        now = self.clock()
        accepted = []  # (identity, Sample)
        replies = {}  # identity -> ([acked seqs], [(seq, reason)])
        samples_taken = 0
        for _ in range(BURST_MESSAGES):
            if samples_taken >= BURST_SAMPLES:
                break
            try:
                frames = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            samples_taken += self._take_message(frames, now, accepted, replies)
        self._journal_and_ack(accepted, replies, socket)

    def _take_message(self, frames, now, accepted, replies):
        """Validate one message's samples into ``accepted``/``replies``; return how many."""
        self.metrics.add("messages")
        if len(frames) != 2:
            self._reject("structure", frames[0] if frames else b"?", "expected one frame")
            return 0
        identity, payload = frames
        try:
            sender, raw_samples, status = wire.decode_report(
                payload, self.config.recorder.max_message_bytes
            )
        except WireError as error:
            self._reject(error.reason, identity, error)
            return 0
        if status is not None:
            self.metrics.sender_report(sender, status)
        reply = replies.setdefault(identity, ([], []))
        for raw in raw_samples:
            self.metrics.add("received")
            try:
                sample = validate_sample(raw, self.config, now, sender)
                if not self.series_cap.admit(sample.host, sample.dataset, sample.instance):
                    raise Rejected(
                        "series_cap", sample.seq, f"host {sample.host} is at its series cap"
                    )
            except Rejected as rejection:
                self._reject(rejection.reason, sender, rejection.detail)
                if rejection.seq is not None:
                    reply[1].append((rejection.seq, rejection.reason))
                continue
            if sample.attempt > 1:
                self.metrics.add("resends")
            accepted.append((identity, sample))
        return len(raw_samples)

    def _journal_and_ack(self, accepted, replies, socket):
        if accepted:
            positions = self.journal.append([sample for _, sample in accepted])
            fresh = []
            for (identity, sample), position in zip(accepted, positions, strict=True):
                replies[identity][0].append(sample.seq)
                if position is None:
                    self.metrics.add("duplicates")
                else:
                    self.metrics.add("accepted")
                    fresh.append((position, sample))
            if fresh:
                self._enqueued += len(fresh)
                self._queue.put(fresh)
        for identity, (acked, rejected) in replies.items():
            if not acked and not rejected:
                continue
            try:
                socket.send_multipart([identity, wire.encode_ack(acked, rejected)], zmq.NOBLOCK)
                self.metrics.add("acks", len(acked))
            except zmq.Again:
                pass  # the sender is gone or not reading: it resends and is acked then

    def _reject(self, reason, sender, detail):
        self.metrics.add(f"rej_{reason}")
        if sender is None:
            sender = "a peer"  # a refused handshake: ZeroMQ does not tell us who
        elif isinstance(sender, bytes):
            sender = sender.hex()
        elif not _PRINTABLE_NAME.fullmatch(sender):
            sender = repr(sender[:60])  # a hostile name must not forge or flood log lines
        self.reject_log(reason, sender, detail)

    def _read_monitor(self, monitor):
        """Count refused handshakes: a key not allowed (auth) or no/wrong CURVE (handshake)."""
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self._reject("auth", None, "its CURVE key is not on the allow-list")
            else:
                self._reject("handshake", None, "failed the CURVE handshake (no or wrong keys)")

    # --- the recorder's own data ---

    def _record_self(self, now, write_calls_before, write_seconds_before):
        values, per_sender = self.metrics.self_samples(
            self.queue_depth(), write_calls_before, write_seconds_before
        )
        host = self.config.recorder.self_host
        samples = [Sample(0, now, host, "affair", "", values)]
        samples += [Sample(0, now, host, "delivery", name, v) for name, v in per_sender.items()]
        self._write_metrics_file()
        admitted = [s for s in samples if self.series_cap.admit(s.host, s.dataset, s.instance)]
        positions = self.journal.append(admitted)
        fresh = [(p, s) for p, s in zip(positions, admitted, strict=True) if p is not None]
        if fresh:
            self._enqueued += len(fresh)
            self._queue.put(fresh)

    def _write_metrics_file(self):
        """Raw counters as JSON, for `affair status`, scripts and tests (atomic replace)."""
        path = self.data_dir / "_state" / "metrics.json"
        temporary = path.with_suffix(".tmp")
        counts = dict(self.metrics.counts)
        counts["queue_depth"] = self.queue_depth()
        counts["time"] = self.clock()
        temporary.write_text(json.dumps(counts, indent=1, sort_keys=True))
        os.replace(temporary, path)

    def _apply_retention(self, now):
        keep_days = self.config.recorder.journal_days
        keep_from = (datetime.fromtimestamp(now, UTC) - timedelta(days=keep_days)).strftime(
            "%Y-%m-%d"
        )
        saved = self.watermark.load()
        if saved and saved[0] < keep_from:
            keep_from = saved[0]  # never delete what the writer has not applied yet
        for day in self.journal.remove_days_before(keep_from):
            log.info("journal day %s is older than %d days: removed", day, keep_days)

    # --- the writer thread ---

    def _writer_main(self):
        try:
            if not self._replay():
                return  # stopped mid-replay: what is queued is journaled, replayed next start
            stopping = False
            while not stopping:
                try:
                    batches = [self._queue.get(timeout=0.1)]
                except queue.Empty:
                    batches = []
                while True:
                    try:
                        batches.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                for batch in batches:
                    if batch is _STOP:
                        stopping = True
                        continue
                    self._dequeued += len(batch)
                    self.writer.add(batch)
                self.writer.write_due(force=stopping)
        except BaseException as error:  # surfaced to the receiving thread, which stops
            log.exception("the RRD writer failed")
            self._writer_error = error

    def _replay(self):
        """Write what the journal holds past the watermark (after a crash).

        Returns False if told to stop first: the watermark then stays where
        the replay got to, and nothing newer may be written before the rest.
        """
        replayed = 0
        chunk = []
        for position, ts, host, dataset, instance, values in read_after(
            self.journal.directory, self.watermark.load()
        ):
            chunk.append((position, Sample(0, ts, host, dataset, instance, values)))
            if len(chunk) >= 10_000:
                if self._stopping.is_set():
                    log.info("stopping: the rest of the journal is replayed at the next start")
                    return False
                self.writer.add(chunk, replayed=True)
                self.writer.write_due(force=True)
                replayed += len(chunk)
                chunk = []
        if chunk:
            self.writer.add(chunk, replayed=True)
            self.writer.write_due(force=True)
            replayed += len(chunk)
        if replayed:
            log.info("replayed %d journaled samples into the RRDs", replayed)
        return True
