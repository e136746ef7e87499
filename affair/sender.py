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
  counted, never silently.

Nothing here blocks: :meth:`submit` only appends, and :meth:`pump` does all
socket work within the time it is given. Imports stay light (zmq, msgpack),
because this runs on every node.
"""

import logging
import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import zmq

from affair import wire
from affair.errors import WireError

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    seq: int
    ts: float
    host: str
    dataset: str
    instance: str
    values: dict
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
    rejected: dict = field(default_factory=dict)  # reason -> count

    @property
    def rejected_total(self):
        return sum(self.rejected.values())


class Sender:
    def __init__(
        self,
        endpoint,
        name,
        per_series_limit=360,
        resend_timeout=5.0,
        max_in_flight=500,
        batch_size=100,
        reconnect_after=3,
        backoff_cap=30.0,
        context=None,
        clock=time.monotonic,
        curve=None,
    ):
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
        self.curve = curve  # (client public, client secret, server public) or None
        self.stats = SenderStats()
        self._next_seq = 1
        self._pending = OrderedDict()  # seq -> _Entry, oldest first
        self._per_series = {}  # (host, dataset, instance) -> deque of seqs
        self._timeouts_in_a_row = 0
        self._backoff = 1.0
        self._reconnect_at = 0.0
        self._wake_at = None
        self._retry_in = 0.01  # after a send found no connection; see _send_due
        self._socket = None
        self._connect()

    # --- the application's side ---

    def submit(self, ts, host, dataset, instance, values):
        """Queue one sample; never blocks. Returns its sequence number."""
        seq = self._next_seq
        self._next_seq += 1
        self._pending[seq] = _Entry(seq, ts, host, dataset, instance, values)
        self.stats.submitted += 1
        series = self._per_series.setdefault((host, dataset, instance), deque())
        series.append(seq)
        while len(series) > self.per_series_limit:
            oldest = series.popleft()
            if self._pending.pop(oldest, None) is not None:
                self.stats.dropped += 1
                if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                    log.warning(
                        "buffer full for %s/%s: dropped the oldest unacknowledged sample "
                        "(%d dropped so far)",
                        host,
                        dataset,
                        self.stats.dropped,
                    )
        return seq

    @property
    def buffered(self):
        return len(self._pending)

    # --- the network side ---

    def pump(self, timeout=0.0):
        """Send what is due and read acks, for at most ``timeout`` seconds.

        Waiting uses the real monotonic clock; the injected ``clock`` only
        decides resends and backoff, so tests can move it at will.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._send_due()
            remaining = deadline - time.monotonic()
            # Sleep until an ack arrives or something falls due (a resend, a reconnect):
            # an idle collector wakes a few times a second, not twenty.
            if self._wake_at is not None:
                remaining = min(remaining, max(0.0, self._wake_at - self.clock()))
            wait_ms = max(0, math.ceil(remaining * 1000))  # ceil: no busy spin at the end
            if self._socket is not None and self._socket.poll(wait_ms, zmq.POLLIN):
                self._read_acks()
            elif self._socket is None and remaining > 0:
                time.sleep(remaining)
            if time.monotonic() >= deadline:
                return

    def flush(self, timeout=5.0):
        """Pump until everything is acked or ``timeout`` passes; True if all acked."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            self.pump(min(0.1, max(0.0, deadline - time.monotonic())))
        return not self._pending

    def close(self):
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

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
        socket.connect(self.endpoint)
        self._socket = socket

    def _reconnect(self):
        self.close()
        self.stats.reconnects += 1
        log.warning(
            "no answer from the recorder at %s: reconnecting (%d samples buffered, next try in %.0fs)",
            self.endpoint,
            len(self._pending),
            self._backoff,
        )
        self._reconnect_at = self.clock() + self._backoff
        self._backoff = min(self._backoff * 2, self.backoff_cap)
        for entry in self._pending.values():
            entry.sent_at = None  # everything in flight is resent, oldest first

    def _send_due(self):
        now = self.clock()
        self._wake_at = None  # when pump() must look again even if no ack comes
        if self._socket is None:
            if now < self._reconnect_at:
                self._wake_at = self._reconnect_at
                return
            self._connect()
        in_flight = 0
        due = []
        for entry in self._pending.values():
            if entry.sent_at is not None and now - entry.sent_at < self.resend_timeout:
                in_flight += 1
                self._wake_up_by(entry.sent_at + self.resend_timeout)
                continue
            due.append(entry)
            if in_flight + len(due) >= self.max_in_flight:
                break
        timed_out = any(entry.sent_at is not None for entry in due)
        if timed_out:
            # Counted once per resend round: the resent entries get a fresh sent_at.
            self._timeouts_in_a_row += 1
            if self._timeouts_in_a_row >= self.reconnect_after:
                self._timeouts_in_a_row = 0
                self._reconnect()
                self._wake_at = self._reconnect_at
                return
        for start in range(0, len(due), self.batch_size):
            batch = due[start : start + self.batch_size]
            payload = wire.encode_data(
                self.name,
                (
                    (e.seq, e.ts, e.host, e.dataset, e.instance, e.values, e.attempts + 1)
                    for e in batch
                ),
            )
            try:
                self._socket.send(payload, zmq.NOBLOCK)
            except zmq.Again:
                # Not connected yet (ZeroMQ keeps reconnecting) or the peer is full: try
                # again soon, then less and less often (10 ms doubling to 0.5 s), so a
                # fresh connection is used at once and a long outage costs little CPU.
                self._wake_up_by(now + self._retry_in)
                self._retry_in = min(self._retry_in * 2, 0.5)
                return
            self._retry_in = 0.01
            for entry in batch:
                entry.attempts += 1
                if entry.attempts > 1:
                    self.stats.resends += 1
                entry.sent_at = now
            self._wake_up_by(now + self.resend_timeout)
            self.stats.sent += len(batch)

    def _wake_up_by(self, moment):
        if self._wake_at is None or moment < self._wake_at:
            self._wake_at = moment

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
            for seq in acked:
                if self._forget(seq):
                    self.stats.acked += 1
            for seq, reason in rejected:
                if self._forget(seq):
                    self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
                    log.warning("the recorder refused sample %s: %s", seq, reason)

    def _forget(self, seq):
        entry = self._pending.pop(seq, None)
        if entry is None:
            return False
        key = (entry.host, entry.dataset, entry.instance)
        series = self._per_series.get(key)
        if series and series[0] == seq:
            series.popleft()  # the usual case: acks come oldest first
        elif series and seq in series:
            series.remove(seq)
        if not series:  # a series that stops (an unmounted disk) leaves nothing behind
            self._per_series.pop(key, None)
        return True
