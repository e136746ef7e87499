"""The recorder: receive -> validate -> journal -> ack, and hand over to the writer.

This process receives on a ZeroMQ ROUTER socket, validates each sample,
journals the good ones in one SQLite transaction per burst, and only then
acks them: an ack means the sample survives a SIGKILL of this process.
A child process (:mod:`affair.ingest.writer_process`) turns journaled samples into
RRD rows. Their queue is bounded: when the writer falls ``queue_limit``
samples behind, receiving pauses, ZeroMQ's buffers fill, and senders keep
their samples until acks resume (carbon's "cache full" pause).

With a CURVE secret key (``[recorder] curve_secret_key_file``) every
connection must complete a CURVE handshake with a key on the allow-list
(:mod:`affair.ingest.auth`); refused handshakes are counted as ``rej_auth`` and
``rej_handshake``. A connection that closes before ZeroMQ's greeting ends (a
port probe, a health check, a collector exiting while it connects) is no
handshake failure: it is counted as ``early_disconnect`` and not logged.
With ``curve_bind_hosts`` each message carries its key's name (the ZAP User-Id) and a sample for a host that key may not write is
refused as ``host_not_bound``. ROUTER fair-queues its peers, and a burst takes at most
``BURST_MESSAGES`` messages and about ``BURST_SAMPLES`` samples, so a sender
that floods the recorder delays the others by one bounded burst at most.

A full disk under the data dir is waited out, not fatal: the burst that
could not be journaled is not acknowledged (its senders keep it and send it
again), receiving pauses, one line is logged, a ballast file
(:class:`~affair.storage.diskspace.DiskReserve`) is given up so the
recorder can still record that it is full (``disk_full`` in its ``affair``
dataset, and ``metrics.json``), and once there is room for the ballast
again it resumes by itself. SQLite's transaction keeps no half-written row.
"""

import fcntl
import json
import logging
import multiprocessing
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import msgpack
import zmq

from affair.atomic import sweep_temporaries, write_atomic
from affair.collectors import wire
from affair.config import Config
from affair.errors import (
    DataDirLocked,
    JobsError,
    ListenError,
    Rejected,
    WireError,
    WriterFailed,
)
from affair.ingest.auth import HostBinding, start_authenticator
from affair.ingest.forward_processes import ForwarderProcesses
from affair.ingest.job_events import validate_job_event
from affair.ingest.selfmetrics import Metrics
from affair.ingest.senders import SenderReports
from affair.ingest.validate import HostCap, Sample, SeriesCap, validate_sample
from affair.ingest.writer_process import STOP, encode_batch, writer_main
from affair.ratelog import RateLimitedLog
from affair.storage import archive_health
from affair.storage.archive_catalog import archived_guard
from affair.storage.diskspace import DiskReserve, free_bytes, is_disk_full
from affair.storage.jobs import JobStore, host_mapper, jobs_path
from affair.storage.journal import Journal, Watermark
from affair.storage.rrd_store import RrdStore
from affair.vocab import LINK_DATASET

if TYPE_CHECKING:  # imported when [graphite] listen is set: it loads asyncio
    from affair.ingest.graphite_server import GraphiteListener

log = logging.getLogger(__name__)

_PRINTABLE_NAME = re.compile(r"[A-Za-z0-9._:@/+-]{1,80}")
_HANDSHAKE_FAILURES = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)

BURST_MESSAGES = 500  # messages taken per journal transaction at most
BURST_SAMPLES = 5000  # ...and samples, so one burst (and so any sender's wait) stays short
KEEPING_INTERVAL = 60  # seconds between measures of the journal's and archive's disks
WRITER_STOP_TIMEOUT = 120  # seconds a stopping writer may take to flush what it holds
RECEIVE_HWM = 64  # messages queued per connection in ZeroMQ, unread (see _bind)
SPACE_CHECK_EVERY = 1.0  # seconds between looks at the free space while the disk is full


def _is_local(endpoint):
    return endpoint.startswith(
        ("ipc://", "inproc://", "tcp://127.", "tcp://[::1]", "tcp://localhost")
    )


def _receive_with_key_name(socket):
    """``(frames as bytes, the sender's CURVE key name)``: the ZAP User-Id rides on each frame."""
    frames = socket.recv_multipart(zmq.NOBLOCK, copy=False)
    try:
        key_name = frames[-1].get("User-Id")
    except zmq.ZMQError:  # no ZAP User-Id at all: then no host is this sender's
        key_name = None
    return [frame.bytes for frame in frames], key_name


def rejection_log():
    """Rejected samples, a few lines of each reason a minute (see affair.ratelog)."""
    return RateLimitedLog(log, "rejected (%s) from %s: %.200s", noun="rejections")


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
            holder = self._handle.read().strip() or None
            self._handle.close()
            raise DataDirLocked(self.path.parent.parent, holder) from None
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(str(os.getpid()))
        self._handle.flush()
        return self

    def __exit__(self, *exc):
        self._handle.close()


class Recorder:
    def __init__(
        self,
        config: Config,
        clock: Callable[[], float] = time.time,
        context: zmq.Context | None = None,
        server_key: bytes | None = None,
        allowed_keys: dict[bytes, str] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.data_dir = Path(config.recorder.data_dir)
        self.context = context or zmq.Context.instance()
        self.server_key = server_key  # CURVE secret key, or None for plain TCP
        self.allowed_keys = allowed_keys  # {public key: key name}
        # Which hosts each key may write, or None: any allowed key writes any host.
        self.host_binding = (
            HostBinding(config.recorder.curve_key_hosts)
            if config.recorder.curve_bind_hosts and server_key is not None
            else None
        )
        recorder = config.recorder
        self.metrics = Metrics(
            SenderReports(
                recorder.max_senders,
                recorder.sender_idle_forget,
                recorder.max_sender_rate,
                recorder.max_sample_age,
                clock,
            )
        )
        self.metrics.counts["journal_days_held"] = 0.0  # old days kept: not archived yet
        self.store = RrdStore(config, self.data_dir)
        self.journal = Journal(
            self.data_dir / "_journal",
            config.recorder.journal_sync,
            clock,
            lookback=config.recorder.max_future_skew,
        )
        self.watermark = Watermark(self.data_dir / "_state" / "writer.watermark")
        self.series_cap = SeriesCap(config.recorder.max_series_per_host, self.store.series)
        self.host_cap = HostCap(recorder.max_hosts, self.store.hosts, recorder.self_host)
        self.reject_log = rejection_log()
        self.reserve = DiskReserve(self.data_dir / "_state" / "reserve")
        self._disk_full_since: float | None = None  # clock time the disk filled, while it is
        self._space_checked = 0.0
        self.endpoint: str | None = None  # the address actually bound, once running
        self._enqueued = 0  # samples handed to the writer
        self._own_samples = 0  # the recorder's own metrics journaled (for the stop line)
        self._done = 0  # samples the writer has taken
        self._writer_pending = 0  # samples the writer holds for batching
        self._writer = None  # the child process
        self._writer_ready = False  # set by its first report, after its replay
        self._to_writer = None  # PUSH socket of batches
        self._from_writer = None  # PULL socket of reports
        # journal and archive sizes and free space (affair.storage.archive_health)
        self._keeping: dict[str, float | None] = {}
        self._keeping_measured = float("-inf")
        # the Graphite plaintext listener, when [graphite] listen is set
        self.graphite: GraphiteListener | None = None
        self.job_store: JobStore | None = None  # opened at the first job event
        # one process per [[forward]] target, each following the journal on its own
        self.forwarders = ForwarderProcesses(
            config, logging.getLevelName(logging.getLogger().level), clock
        )

    # --- life cycle ---

    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        """Serve until ``stop`` (a threading.Event) is set, then flush and return."""
        with DataDirLock(self.data_dir):
            # A recorder or writer killed mid-write leaves its temporary file behind.
            swept = sweep_temporaries(self.data_dir, self.clock())
            if swept:
                log.info("removed %d temporary files left by an interrupted write", swept)
            if not self.reserve.ensure():
                log.warning(
                    "no room for the disk reserve %s: the disk is nearly full", self.reserve.path
                )
            # Everything that can fail on a bad address binds first, before a
            # writer process exists that would have to be stopped again.
            self._open_writer_sockets()
            authenticator = None
            if self.server_key is not None:
                # Before the bind: a CURVE socket with no ZAP handler yet accepts any key.
                authenticator = start_authenticator(self.context, self.allowed_keys or {})
            try:
                socket = self._bind()
            except BaseException:
                if authenticator is not None:
                    authenticator.stop()
                raise
            monitor = socket.get_monitor_socket(_HANDSHAKE_FAILURES)
            try:
                if self.config.graphite.listen:
                    self.graphite = self._start_graphite()
                self._start_writer(stop)
                self.forwarders.start()
                log.info("recorder listening on %s, data in %s", self.endpoint, self.data_dir)
                self._check_archive_directory()
                if authenticator is None and not _is_local(self.endpoint):
                    log.warning(
                        "no CURVE keys: anyone who reaches %s can write samples "
                        "(see config/production.toml)",
                        self.endpoint,
                    )
                if ready is not None:
                    ready.set()
                self._serve(socket, monitor, stop)
            finally:
                socket.disable_monitor()
                monitor.close(linger=0)
                socket.close(linger=0)
                if self.graphite is not None:
                    self.graphite.stop()
                    self._journal_graphite()  # the writer takes these before it stops
                if authenticator is not None:
                    authenticator.stop()
                self._stop_writer()
                self.forwarders.stop()
                self.journal.close()
                if self.job_store is not None:
                    self.job_store.close()
                self._write_metrics_file()
                log.info(
                    "recorder stopped: %d samples accepted, %d written "
                    "(%d of them its own metrics), %d rejected",
                    self.metrics.counts["accepted"],
                    self.metrics.counts["written"],
                    self._own_samples,
                    sum(v for k, v in self.metrics.counts.items() if k.startswith("rej_")),
                )

    # --- the writer process ---

    def _open_writer_sockets(self):
        self._to_writer = self.context.socket(zmq.PUSH)
        self._to_writer.setsockopt(zmq.LINGER, 0)
        self._to_writer.setsockopt(zmq.SNDHWM, 0)  # bounded by queue_limit instead
        self._to_writer.bind("tcp://127.0.0.1:*")
        self._from_writer = self.context.socket(zmq.PULL)
        self._from_writer.setsockopt(zmq.LINGER, 0)
        self._from_writer.bind("tcp://127.0.0.1:*")

    def _start_writer(self, stop):
        """Start a writer and wait until it has replayed the journal.

        New samples are journaled only after the replay, so the writer sees
        every sample exactly once and in journal order.
        """
        spawn = multiprocessing.get_context("spawn")
        self._writer = spawn.Process(
            target=writer_main,
            name="affair-rrd-writer",
            args=(
                self.config,
                self._to_writer.getsockopt_string(zmq.LAST_ENDPOINT),
                self._from_writer.getsockopt_string(zmq.LAST_ENDPOINT),
                os.getpid(),
                logging.getLevelName(logging.getLogger().level),
            ),
        )
        self._writer.start()
        # Whatever was in flight to a previous writer is in the journal; the
        # new one replays it, so the queue starts empty.
        self._enqueued = self._done = self._writer_pending = 0
        self._writer_ready = False
        waited = time.monotonic()
        while not self._writer_ready and not stop.is_set():
            if not self._writer.is_alive():
                raise WriterFailed(self._writer.exitcode)
            if self._from_writer.poll(100):
                self._read_reports()
            if time.monotonic() - waited > 5:
                log.info("waiting for the RRD writer to replay the journal...")
                waited = time.monotonic()

    def _check_writer(self, stop):
        if self._writer.is_alive():
            return
        log.error(
            "the RRD writer process died (exit code %s); starting a new one, which replays "
            "the journal",
            self._writer.exitcode,
        )
        self._writer.join()
        time.sleep(1)
        self._start_writer(stop)

    def _stop_writer(self):
        if self._writer is not None:
            self._finish_writer()
        self._to_writer.close()
        self._from_writer.close()

    def _finish_writer(self):
        if self._writer.is_alive():
            self._to_writer.send(STOP)
            deadline = time.monotonic() + WRITER_STOP_TIMEOUT
            while self._writer.is_alive() and time.monotonic() < deadline:
                if self._from_writer.poll(100):
                    self._read_reports()
            if self._writer.is_alive():
                # It ignores SIGTERM by design; what it held is in the journal.
                log.error("the RRD writer did not finish in %ds; killing it", WRITER_STOP_TIMEOUT)
                self._writer.kill()
        self._writer.join()
        self._read_reports()

    def _read_reports(self):
        while True:
            try:
                report = msgpack.unpackb(self._from_writer.recv(zmq.NOBLOCK), strict_map_key=False)
            except zmq.Again:
                return
            self._writer_ready = self._writer_ready or report.get("ready", False)
            self._done += report["done"]
            self._writer_pending = report.get("pending", 0)
            for name, delta in report["counts"].items():
                self.metrics.add(name, delta)
            self.metrics.merge_delivery(report["delivery"])

    def _enqueue(self, fresh):
        try:
            self._to_writer.send(encode_batch(fresh), zmq.NOBLOCK)
        except zmq.Again:
            # No writer connected (it just died): these samples are in the
            # journal, and the next writer replays them.
            log.warning("no RRD writer to take %d samples; they wait in the journal", len(fresh))
            return
        self._enqueued += len(fresh)

    def _bind(self):
        socket = self.context.socket(zmq.ROUTER)
        socket.setsockopt(zmq.LINGER, 0)
        # A hard ceiling well above our own limit: ZeroMQ drops the peer of a
        # larger message before we see it; ours counts the ones in between.
        socket.setsockopt(zmq.MAXMSGSIZE, 4 * self.config.recorder.max_message_bytes)
        # Messages ZeroMQ holds per connection that the recorder has not read
        # yet: past this it stops reading that peer's TCP, and the peer waits.
        # It bounds what one flooding connection can park in our memory
        # (RECEIVE_HWM x the message ceiling); a collector has a few messages
        # in flight, a wide-window application about 100 (they wait in TCP).
        socket.setsockopt(zmq.RCVHWM, RECEIVE_HWM)
        if self.server_key is not None:
            socket.curve_server = True
            socket.curve_secretkey = self.server_key
        try:
            socket.bind(self.config.recorder.listen)
        except zmq.ZMQError as error:
            socket.close()
            raise ListenError(self.config.recorder.listen, zmq.strerror(error.errno)) from None
        self.endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        return socket

    def _serve(self, socket, monitor, stop):
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(self._from_writer, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        interval = self.config.recorder.self_interval
        next_self_sample = (int(self.clock()) // interval + 1) * interval
        next_retention = 0.0
        write_calls = write_seconds = 0.0
        while not stop.is_set():
            self._check_writer(stop)
            self.forwarders.check()
            if self._disk_full_since is not None and not self._space_is_back():
                # not reading: ZeroMQ's buffers fill and the senders keep their samples
                if self._from_writer.poll(200):
                    self._read_reports()
                self._read_monitor(monitor)
                now = self.clock()
                if now >= next_self_sample:
                    self._record_self(now, write_calls, write_seconds)
                    write_calls = self.metrics.counts["rrd_updates"]
                    write_seconds = self.metrics.counts["write_seconds"]
                    next_self_sample = (int(now) // interval + 1) * interval
                continue
            if self.queue_depth() > self.config.recorder.queue_limit:
                # backpressure: let ZeroMQ and the senders hold the data
                if self._from_writer.poll(50):
                    self._read_reports()
                self._read_monitor(monitor)
                continue
            events = dict(poller.poll(100))
            if self._from_writer in events:
                self._read_reports()
            if socket in events:
                self._receive_burst(socket)
            if self.graphite is not None and self.queue_depth() <= self.config.recorder.queue_limit:
                self._journal_graphite()
            if monitor in events:
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

    def queue_depth(self) -> int:
        """Samples journaled but not yet written: in transit plus held by the writer."""
        return self._enqueued - self._done + self._writer_pending

    # --- receiving ---

    def _receive_burst(self, socket):
        now = self.clock()
        accepted = []  # (identity, Sample)
        replies = {}  # identity -> ([acked seqs], [(seq, reason)])
        samples_taken = 0
        bound = self.host_binding is not None
        key_name = None
        for _ in range(BURST_MESSAGES):
            if samples_taken >= BURST_SAMPLES:
                break
            try:
                if bound:
                    frames, key_name = _receive_with_key_name(socket)
                else:
                    frames = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            samples_taken += self._take_message(frames, now, accepted, replies, key_name)
        self._journal_and_ack(accepted, replies, socket)

    def _take_message(self, frames, now, accepted, replies, key_name=None):
        """Validate one message's samples into ``accepted``/``replies``; return how many.

        ``key_name``: the CURVE key the message came with, when hosts are bound to keys.
        """
        self.metrics.add("messages")
        if len(frames) != 2:
            self._reject("structure", frames[0] if frames else b"?", "expected one frame")
            return 0
        identity, payload = frames
        if wire.is_job_message(payload):
            return self._take_job_message(identity, payload, replies)
        try:
            sender, raw_samples, status = wire.decode_report(
                payload,
                self.config.recorder.max_message_bytes,
                self.config.recorder.max_samples_per_message,
            )
        except WireError as error:
            self._reject(error.reason, identity, error)
            return 0
        if status is not None:
            self.metrics.sender_report(sender, status)
        reply = replies.setdefault(identity, ([], []))
        binding = self.host_binding
        self.metrics.add("received", len(raw_samples))
        for raw in raw_samples:
            try:
                sample = validate_sample(raw, self.config, now, sender)
                if binding is not None and not binding.allows(key_name, sample.host):
                    raise Rejected(
                        "host_not_bound",
                        sample.seq,
                        f"key {key_name} may not write host {sample.host}",
                    )
                if not self.host_cap.admit(sample.host):
                    raise Rejected("host_cap", sample.seq, f"new host {sample.host}: max_hosts")
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

    def _take_job_message(self, identity, payload, replies):
        """Validate and store one JOB message's events (jobs table); ack them like samples."""
        try:
            sender, raw_events = wire.decode_job(payload, self.config.recorder.max_message_bytes)
        except WireError as error:
            self._reject(error.reason, identity, error)
            return 0
        reply = replies.setdefault(identity, ([], []))
        taken = []
        for raw in raw_events:
            self.metrics.add("received")
            try:
                seq, record = validate_job_event(raw)
            except Rejected as rejection:
                self._reject(rejection.reason, sender, rejection.detail)
                if rejection.seq is not None:
                    reply[1].append((rejection.seq, rejection.reason))
                continue
            taken.append((seq, record))
        if taken:
            if self.job_store is None:
                self.job_store = JobStore(
                    jobs_path(self.data_dir), host_mapper(self.config.jobs), self.clock
                )
            try:
                self.job_store.merge(record for _, record in taken)
            except JobsError as error:
                # not acked: the sender keeps the events and resends them
                log.error("job events from %s not stored: %s", sender, error)
                return len(raw_events)
            reply[0].extend(seq for seq, _ in taken)
            self.metrics.add("job_events", len(taken))
        return len(raw_events)

    def _journal_and_ack(self, accepted, replies, socket):
        if accepted:
            try:
                positions = self.journal.append([sample for _, sample in accepted])
            except (sqlite3.Error, OSError) as error:
                if not is_disk_full(error):
                    raise
                self._enter_disk_full(error)
                positions = []
                accepted = []  # not acknowledged: their senders send them again
            fresh = []
            for (identity, sample), position in zip(accepted, positions, strict=True):
                replies[identity][0].append(sample.seq)
                if position is None:
                    self.metrics.add("duplicates")
                else:
                    self.metrics.add("accepted")
                    fresh.append((position, sample))
            if fresh:
                self._enqueue(fresh)
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
        """Count refused handshakes: a key not allowed (auth) or no/wrong CURVE (handshake).

        libzmq reports a connection closed before the greeting ended as
        HANDSHAKE_FAILED_NO_DETAIL (measured: a TCP connect-and-close, or
        bytes that are not ZMTP); that is a probe or a peer that went away,
        counted as ``early_disconnect`` and never logged. A protocol
        failure (no CURVE, the wrong recorder key) is ``rej_handshake``,
        logged only when CURVE is on: without it nobody is refused a key.
        """
        while (event := wire.read_monitor_event(monitor)) is not None:
            if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self._reject("auth", None, "its CURVE key is not on the allow-list")
            elif event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                self.metrics.add("early_disconnect")
            elif self.server_key is not None:
                self._reject("handshake", None, "failed the CURVE handshake (no or wrong keys)")
            else:
                self.metrics.add("rej_handshake")

    # --- Graphite plaintext (affair.ingest.graphite_server), journaled on this thread ---

    def _start_graphite(self):
        from affair.ingest.graphite_server import GraphiteListener  # noqa: PLC0415 - only when enabled

        return GraphiteListener(
            self.config.graphite, self.config, clock=self.clock, reject_log=rejection_log()
        ).start()

    def _journal_graphite(self):
        samples = []
        for sample in self.graphite.take():
            if not self.host_cap.admit(sample.host):
                self._reject("host_cap", sample.sender, f"new host {sample.host}: max_hosts")
            elif self.series_cap.admit(sample.host, sample.dataset, sample.instance):
                samples.append(sample)
            elif not sample.sender:
                # The listener's own health sample on the recorder's host, capped like
                # _record_self's samples: not a peer's sample, so no peer's rejection.
                continue
            else:
                self._reject(
                    "series_cap", sample.sender, f"host {sample.host} is at its series cap"
                )
        if samples:
            try:
                positions = self.journal.append(samples)
            except (sqlite3.Error, OSError) as error:
                if not is_disk_full(error):
                    raise
                self._enter_disk_full(error)
                self.graphite.give_back(samples)  # taken again once there is space
                return
            fresh = [(p, s) for p, s in zip(positions, samples, strict=True) if p is not None]
            # The listener's own health sample has no sender: it is the
            # recorder's own data, like _record_self's, not a peer's.
            own = sum(1 for _, sample in fresh if not sample.sender)
            self._own_samples += own
            self.metrics.add("accepted", len(fresh) - own)
            self.metrics.add("duplicates", len(samples) - len(fresh))
            if fresh:
                self._enqueue(fresh)

    # --- the recorder's own data ---

    def _record_self(self, now, write_calls_before, write_seconds_before):
        values, per_sender = self.metrics.self_samples(
            self.queue_depth(),
            write_calls_before,
            write_seconds_before,
            self.config.recorder.self_interval,
        )
        values["disk_full"] = 0.0 if self._disk_full_since is None else 1.0
        values["refused_hosts"] = float(self.host_cap.refused_count)
        values.update(self._keeping_values(now))
        host = self.config.recorder.self_host
        samples = [Sample(0, now, host, "affair", "", values)]
        samples += [Sample(0, now, host, "delivery", name, v) for name, v in per_sender.items()]
        links = self.metrics.take_links()
        samples += [Sample(0, now, host, LINK_DATASET, name, v) for name, v in links.items()]
        forwarded = self.forwarders.self_samples().items()
        samples += [Sample(0, now, host, "forward", name, v) for name, v in forwarded]
        self._write_metrics_file()
        admitted = [s for s in samples if self.series_cap.admit(s.host, s.dataset, s.instance)]
        try:
            positions = self.journal.append(admitted)
        except (sqlite3.Error, OSError) as error:
            if not is_disk_full(error):
                raise
            self._enter_disk_full(error)
            return  # even the reserve is used up: this one is not recorded
        fresh = [(p, s) for p, s in zip(positions, admitted, strict=True) if p is not None]
        if fresh:
            self._own_samples += len(fresh)
            self._enqueue(fresh)

    def _keeping_values(self, now):
        """Journal and archive sizes and free space, measured at most once a minute."""
        if now - self._keeping_measured >= KEEPING_INTERVAL:
            self._keeping = archive_health.self_values(
                archive_health.measure(self.config, self.data_dir, now)
            )
            self._keeping_measured = now
        return self._keeping

    def _write_metrics_file(self):
        """Raw counters as JSON, for `affair status`, scripts and tests (atomic replace)."""
        path = self.data_dir / "_state" / "metrics.json"
        counts = dict(self.metrics.counts)
        counts["queue_depth"] = self.queue_depth()
        counts.update(self.forwarders.metrics())
        counts["time"] = self.clock()
        counts["refused_hosts"] = self.host_cap.refused_count
        counts["refused_host_names"] = list(self.host_cap.refused)[:20]
        counts["disk_full"] = 0 if self._disk_full_since is None else 1
        if self.graphite is not None:  # the listener's own counters, under graphite_<name>
            for name, value in list(self.graphite.counts.items()):
                counts[f"graphite_{name}"] = value
            counts["graphite_open"] = self.graphite.open_connections
        try:
            write_atomic(path, json.dumps(counts, indent=1, sort_keys=True), durable=True)
        except OSError as error:
            if not is_disk_full(error):
                raise
            log.debug("cannot write %s: %s", path, error)

    # --- a full disk ---

    def _enter_disk_full(self, error):
        if self._disk_full_since is not None:
            return
        self._disk_full_since = self.clock()
        self._space_checked = time.monotonic()
        log.error(
            "the disk of %s is full (%s): not acknowledging, collectors keep their samples; "
            "resuming by itself once space is freed",
            self.data_dir,
            error,
        )
        self.reserve.release()  # room to record that we are full
        self._write_metrics_file()

    def _space_is_back(self):
        """True (and receiving resumes) once there is room for the reserve and as much again."""
        if time.monotonic() - self._space_checked < SPACE_CHECK_EVERY:
            return False
        self._space_checked = time.monotonic()
        try:
            room = free_bytes(self.data_dir)
        except OSError:
            return False
        if room < 2 * self.reserve.size or not self.reserve.ensure():
            return False
        log.info(
            "space is back on the disk of %s after %.0fs: acknowledging again",
            self.data_dir,
            self.clock() - self._disk_full_since,
        )
        self._disk_full_since = None
        self._write_metrics_file()
        return True

    def _apply_retention(self, now):
        keep_days = self.config.recorder.journal_days
        keep_from = (datetime.fromtimestamp(now, UTC) - timedelta(days=keep_days)).strftime(
            "%Y-%m-%d"
        )
        saved = self.watermark.load()
        if saved and saved[0] < keep_from:
            keep_from = saved[0]  # never delete what the writer has not applied yet
        keep_from = self.forwarders.keep_from(keep_from, now)  # nor what a forwarder has not sent
        guards = self._retention_guards()
        removed = self.journal.remove_days_before(
            keep_from, lambda day: all(guard(day) for guard in guards)
        )
        for day in removed:
            log.info("journal day %s is older than %d days: removed", day, keep_days)
        held = [p.stem for p in self.journal.day_files() if p.stem < keep_from]
        self.metrics.counts["journal_days_held"] = len(held) if guards else 0
        if held and guards:
            log.warning(
                "journal days %s are older than %d days but kept: not archived and verified yet",
                ", ".join(held),
                keep_days,
            )

    def _check_archive_directory(self):
        """Say it at start: with no writable archive, journal days pile up (status is red)."""
        directory = Path(self.config.export.directory)
        if self.config.export.enabled and not archive_health.archive_writable(directory):
            log.error(
                "the archive directory %s is not writable: no journal day will be deleted "
                "until its samples are archived ([export] directory)",
                directory,
            )

    def _retention_guards(self):
        """Conditions a journal day must meet, besides its age, before it is deleted."""
        guards = []
        if self.config.export.enabled:  # the permanent archive must hold it, verified
            guards.append(archived_guard(self.config.export.directory))
        return guards
