"""Reliable, asynchronous sending of samples to the recorder.

The zguide's Lazy Pirate pattern over a DEALER socket, made a class:

* every sample gets a sequence number and waits in a bounded buffer until
  the recorder acks it (durable) or refuses it for good (with a reason);
* up to ``max_in_flight`` samples are out at once, sent in batches, oldest
  first, so the recorder sees each series in time order;
* a sample not acked within ``resend_timeout`` is sent again; after
  ``reconnect_after`` timeouts in a row the socket is rebuilt (LINGER 0, so
  a dead peer cannot hold us) after a backoff that doubles up to a cap;
* when the buffer is full the oldest sample of that series is dropped and
  counted, never silently: logged here, and reported to the recorder in
  every message (``status`` in :mod:`affair.collectors.wire`), which records it as
  its own metric (``sender_dropped``, and ``dropped`` per sender);
* a handshake the recorder refuses (wrong or missing CURVE key) is logged,
  because nothing else would tell: the socket simply never connects.

Nothing here blocks: :meth:`submit` only appends, and :meth:`pump` does all
socket work within the time it is given, sleeping until an ack arrives or
something falls due (a resend, a reconnect, a retry of a send that found no
connection), so an idle collector wakes a few times a second, not twenty.
Its cost does not grow with the buffer: samples waiting to go out sit in a heap by sequence number, samples
in flight in a queue by send time, so a pump looks only at what it sends
and at the oldest sample in flight (entries acked or dropped meanwhile are
skipped when they come up). Imports stay light (zmq, msgpack),
because this runs on every node.
"""

import heapq
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import zmq
from affair.collectors import wire

from affair.errors import WireError
from affair.names import check_name
from affair.ratelog import RateLimitedLog

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Entry:
    seq: int
    ts: float
    host: str
    dataset: str
    instance: str
    values: wire.SampleValues
    series: deque[int]  # the seqs of its series, for the per-series bound
    attempts: int = 0
    sent_at: float | None = None


@dataclass
class SenderStats:
    submitted: int = 0
    acked: int = 0
    dropped: int = 0  # buffer overflow: oldest samples let go
    sent: int = 0
    resends: int = 0
    reconnects: int = 0
    handshake_failures: int = 0  # connections the recorder refused (CURVE keys)
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class Sender:
    def __init__(
        self,
        endpoint: str,
        name: str,
        per_series_limit: int = 360,
        resend_timeout: float = 5.0,
        max_in_flight: int = 500,
        batch_size: int = 100,
        reconnect_after: int = 3,
        backoff_cap: float = 30.0,
        context: zmq.Context | None = None,
        clock: Callable[[], float] = time.monotonic,
        curve: tuple[bytes, bytes, bytes] | None = None,
    ) -> None:
        # The recorder refuses every message of a sender named otherwise (rej_name):
        # say so here, once, rather than resend forever.
        check_name("sender", name)
        self.endpoint = endpoint
        self.name = name
        self.per_series_limit = per_series_limit
        self.resend_timeout = resend_timeout
        self.max_in_flight = max_in_flight
        self.batch_size = batch_size
        self.reconnect_after = reconnect_after
        self.backoff_cap = backoff_cap
        self.context = context or zmq.Context.instance()
        self.clock = clock
        self._refusals = RateLimitedLog(
            log,
            "the recorder refused a sample (%s) of %s/%s",
            per_minute=1,
            clock=clock,
            noun="refusals",
        )
        self.curve = curve  # (client public, client secret, server public) or None
        self.stats = SenderStats()
        self._next_seq = 1
        # seq -> _Entry, oldest first (dicts keep insertion order)
        self._pending: dict[int, _Entry] = {}
        # (host, dataset, instance) -> deque of seqs
        self._per_series: dict[tuple[str, str, str], deque[int]] = {}
        # heap of seqs to send (again), oldest first; may hold stale seqs
        self._unsent: list[int] = []
        # (sent_at, seq) in send order; may hold stale pairs
        self._in_flight: deque[tuple[float, int]] = deque()
        self._in_flight_count = 0  # pending entries with sent_at set
        self._timeouts_in_a_row = 0
        self._backoff = 1.0
        self._reconnect_at = 0.0
        self._wake_at: float | None = None  # when pump() must look again even if no ack comes
        self._retry_in = 0.01  # after a send found no connection; see _send_due
        self._socket: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        # when the recorder stopped answering, for the recovery log
        self._silent_since: float | None = None
        self._connect()

    # --- the application's side ---

    def submit(
        self,
        ts: float,
        host: str,
        dataset: str,
        instance: str,
        values: Mapping[str, float | None],
    ) -> int:
        """Queue one sample; never blocks. Returns its sequence number."""
        if not isinstance(values, dict):  # msgpack packs dicts only
            values = dict(values)
        seq = self._next_seq
        self._next_seq += 1
        series = self._per_series.get((host, dataset, instance))
        if series is None:
            series = self._per_series[(host, dataset, instance)] = deque()
        self._pending[seq] = _Entry(seq, ts, host, dataset, instance, values, series)
        self._unsent.append(seq)  # the largest seq so far: the heap stays a heap
        self.stats.submitted += 1
        series.append(seq)
        while len(series) > self.per_series_limit:
            oldest = series.popleft()
            entry = self._pending.pop(oldest, None)
            if entry is not None:
                if entry.sent_at is not None:
                    self._in_flight_count -= 1
                self.stats.dropped += 1
                if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                    log.warning(
                        "buffer full for %s/%s: dropped the oldest unacknowledged sample "
                        "(%d dropped so far)",
                        host,
                        dataset,
                        self.stats.dropped,
                    )
        if len(self._unsent) > 2 * len(self._pending) + 1000:
            self._compact_unsent()  # dropped seqs linger in the heap while nothing is sent
        return seq

    def _compact_unsent(self):
        self._unsent = [seq for seq, entry in self._pending.items() if entry.sent_at is None]

    @property
    def buffered(self) -> int:
        return len(self._pending)

    def switch_endpoint(self, endpoint: str) -> None:
        """Send to another recorder from now on: everything unacknowledged goes there.

        For a fallback station (:mod:`affair.collectors.failover`); a sample the
        first recorder journaled but did not ack in time is then journaled by
        both, as a resend to one recorder is recognised by it.
        """
        self.endpoint = endpoint
        self._reconnect(quietly=True)
        self._backoff = 1.0
        self._reconnect_at = self.clock()  # connect at once
        self._silent_since = None  # the new recorder's silence is timed afresh

    # --- the network side ---

    def pump(self, timeout: float = 0.0) -> None:
        """Send what is due and read acks, for at most ``timeout`` seconds.

        Waiting uses the real monotonic clock; the injected ``clock`` only
        decides resends and backoff, so tests can move it at will.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._send_due()
            remaining = deadline - time.monotonic()
            if self._wake_at is not None:
                remaining = min(remaining, max(0.0, self._wake_at - self.clock()))
            wait_ms = max(0, math.ceil(remaining * 1000))  # ceil: no busy spin at the end
            if self._socket is not None and self._socket.poll(wait_ms, zmq.POLLIN):
                self._read_acks()
            elif self._socket is None and remaining > 0:
                time.sleep(remaining)
            self._read_monitor()
            if time.monotonic() >= deadline:
                return

    def flush(self, timeout: float = 5.0) -> bool:
        """Pump until everything is acked or ``timeout`` passes; True if all acked."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            self.pump(min(0.1, max(0.0, deadline - time.monotonic())))
        return not self._pending

    def close(self) -> None:
        # The monitor is made before the socket connects, so it may outlive a failed connect.
        if self._socket is not None:
            self._socket.disable_monitor()
        if self._monitor is not None:
            self._monitor.close(linger=0)
        if self._socket is not None:
            self._socket.close(linger=0)
        self._socket = self._monitor = None

    def _connect(self):
        socket = self.context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, 1000)
        socket.setsockopt(zmq.IMMEDIATE, 1)  # queue nothing for a peer we are not connected to
        if self.curve is not None:
            public, secret, server = self.curve
            socket.curve_publickey = public
            socket.curve_secretkey = secret
            socket.curve_serverkey = server
        self._monitor = socket.get_monitor_socket(_HANDSHAKE_FAILURES)
        socket.connect(self.endpoint)
        self._socket = socket

    def _read_monitor(self):
        while self._monitor is not None:
            event = wire.read_monitor_event(self._monitor)
            if event is None:
                return
            self.stats.handshake_failures += 1
            failures = self.stats.handshake_failures
            if failures == 1 or failures % 100 == 0:
                log.error(
                    "the recorder at %s refused our handshake (%s, %d so far): %s; "
                    "%d samples buffered",
                    self.endpoint,
                    _HANDSHAKE_FAILURES_NAMED.get(event, event),
                    failures,
                    "is our CURVE key on its allow-list, and is the recorder's public key right?"
                    if self.curve
                    else "it may require CURVE keys ([collector] curve_secret_key_file)",
                    len(self._pending),
                )
            # ZeroMQ gives up on a peer that refused us; a fresh socket after the
            # backoff finds out whether the keys have been fixed meanwhile.
            self._reconnect(quietly=True)

    def _reconnect(self, quietly=False):
        self.close()
        self.stats.reconnects += 1
        if not quietly:
            log.warning(
                "no answer from the recorder at %s: reconnecting "
                "(%d samples buffered, next try in %.0fs)",
                self.endpoint,
                len(self._pending),
                self._backoff,
            )
        self._reconnect_at = self.clock() + self._backoff
        if self._silent_since is None:
            self._silent_since = self.clock()
        self._backoff = min(self._backoff * 2, self.backoff_cap)
        for entry in self._pending.values():
            entry.sent_at = None  # everything in flight is resent, oldest first
        self._unsent = list(self._pending)  # ascending seqs: already a heap
        self._in_flight.clear()
        self._in_flight_count = 0

    def _send_due(self):
        now = self.clock()
        self._wake_at = None
        if self._socket is None:
            if now < self._reconnect_at:
                self._wake_at = self._reconnect_at
                return
            self._connect()
        if self._requeue_timed_out(now):
            # Counted once per resend round: the resent entries get a fresh sent_at.
            self._timeouts_in_a_row += 1
            if self._timeouts_in_a_row >= self.reconnect_after:
                self._timeouts_in_a_row = 0
                self._reconnect()
                self._wake_at = self._reconnect_at
                return
        status = None
        while self._unsent and self._in_flight_count < self.max_in_flight:
            if not self._socket.poll(0, zmq.POLLOUT):
                self._retry_soon(now)  # not connected (ZeroMQ keeps trying) or the peer is full
                break
            room = min(self.batch_size, self.max_in_flight - self._in_flight_count)
            batch = self._take_unsent(room)
            if not batch:
                break
            status = status or {"dropped": self.stats.dropped, "buffered": len(self._pending)}
            payload = wire.encode_data(
                self.name,
                (
                    (e.seq, e.ts, e.host, e.dataset, e.instance, e.values, e.attempts + 1)
                    for e in batch
                ),
                status,
            )
            try:
                self._socket.send(payload, zmq.NOBLOCK)
            except zmq.Again:
                for entry in batch:
                    heapq.heappush(self._unsent, entry.seq)
                self._retry_soon(now)
                break
            self._retry_in = 0.01
            for entry in batch:
                entry.attempts += 1
                if entry.attempts > 1:
                    self.stats.resends += 1
                entry.sent_at = now
                self._in_flight.append((now, entry.seq))
            self._in_flight_count += len(batch)
            self.stats.sent += len(batch)
        if self._in_flight:  # the oldest in flight (or an acked one: an early, harmless look)
            self._wake_up_by(self._in_flight[0][0] + self.resend_timeout)

    def _retry_soon(self, now):
        # Try again soon, then less and less often (10 ms doubling to 0.5 s), so a
        # fresh connection is used at once and a long outage costs little CPU.
        self._wake_up_by(now + self._retry_in)
        self._retry_in = min(self._retry_in * 2, 0.5)

    def _wake_up_by(self, moment):
        if self._wake_at is None or moment < self._wake_at:
            self._wake_at = moment

    def _take_unsent(self, count):
        """Up to ``count`` pending, unsent entries, oldest first."""
        batch = []
        while self._unsent and len(batch) < count:
            entry = self._pending.get(heapq.heappop(self._unsent))
            if entry is not None and entry.sent_at is None:  # else acked, dropped or a repeat
                batch.append(entry)
        return batch

    def _requeue_timed_out(self, now):
        """Move entries unacked for ``resend_timeout`` back to the unsent heap; any?"""
        timed_out = False
        while self._in_flight:
            sent_at, seq = self._in_flight[0]
            entry = self._pending.get(seq)
            if entry is None or entry.sent_at != sent_at:
                self._in_flight.popleft()  # acked, dropped, or sent again since
                continue
            if now - sent_at < self.resend_timeout:
                break
            self._in_flight.popleft()
            entry.sent_at = None
            self._in_flight_count -= 1
            heapq.heappush(self._unsent, seq)
            timed_out = True
        return timed_out

    def _read_acks(self):
        while True:
            try:
                payload = self._socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                acked, rejected = wire.decode_ack(payload)
            except WireError as error:
                log.warning("unreadable reply from the recorder: %s", error)
                continue
            self._timeouts_in_a_row = 0
            self._backoff = 1.0
            if self._silent_since is not None:
                log.info(
                    "the recorder answers again after %.0fs (%d samples buffered, %d dropped so far)",
                    self.clock() - self._silent_since,
                    len(self._pending),
                    self.stats.dropped,
                )
                self._silent_since = None
            for seq in acked:
                if self._forget(seq):
                    self.stats.acked += 1
            for seq, reason in rejected:
                entry = self._pending.get(seq)
                if self._forget(seq):
                    self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
                    # A misconfigured node has every sample refused every interval.
                    self._refusals(reason, entry.host, entry.dataset)

    def _forget(self, seq):
        entry = self._pending.pop(seq, None)
        if entry is None:
            return False
        if entry.sent_at is not None:
            self._in_flight_count -= 1
        series = entry.series
        if series and series[0] == seq:
            series.popleft()  # the usual case: acks come oldest first
        elif series and seq in series:
            series.remove(seq)
        if not series:  # a series that stops (an unmounted disk) leaves nothing behind
            key = (entry.host, entry.dataset, entry.instance)
            if self._per_series.get(key) is series:
                del self._per_series[key]
        return True


_HANDSHAKE_FAILURES_NAMED = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "authentication refused",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol or key mismatch",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
}
_HANDSHAKE_FAILURES = sum(_HANDSHAKE_FAILURES_NAMED)
