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
  every message (``status`` in :mod:`affair.wire`), which records it as
  its own metric (``sender_dropped``, and ``dropped`` per sender);
* a handshake the recorder refuses (wrong or missing CURVE key) is logged,
  because nothing else would tell: the socket simply never connects.

Nothing here blocks: :meth:`submit` only appends, and :meth:`pump` does all
socket work within the time it is given. Imports stay light (zmq, msgpack),
because this runs on every node.
"""

import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import zmq
from zmq.utils.monitor import recv_monitor_message

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
    handshake_failures: int = 0  # connections the recorder refused (CURVE keys)
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
        self._socket = None
        self._monitor = None
        self._silent_since = None  # when the recorder stopped answering, for the recovery log
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
        """Send what is due and read acks, for at most ``timeout`` seconds."""
        deadline = self.clock() + timeout
        while True:
            self._send_due()
            remaining = deadline - self.clock()
            wait_ms = max(0, int(min(remaining, 0.05) * 1000))
            if self._socket is not None and self._socket.poll(wait_ms, zmq.POLLIN):
                self._read_acks()
            elif self._socket is None and remaining > 0:
                time.sleep(min(remaining, 0.05))
            self._read_monitor()
            if self.clock() >= deadline:
                return

    def flush(self, timeout=5.0):
        """Pump until everything is acked or ``timeout`` passes; True if all acked."""
        deadline = self.clock() + timeout
        while self._pending and self.clock() < deadline:
            self.pump(min(0.1, max(0.0, deadline - self.clock())))
        return not self._pending

    def close(self):
        if self._socket is not None:
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
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
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            self.stats.handshake_failures += 1
            failures = self.stats.handshake_failures
            if failures == 1 or failures % 100 == 0:
                log.error(
                    "the recorder at %s refused our handshake (%s, %d so far): %s; "
                    "%d samples buffered",
                    self.endpoint,
                    _HANDSHAKE_FAILURES_NAMED.get(event["event"], event["event"]),
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

    def _send_due(self):
        now = self.clock()
        if self._socket is None:
            if now < self._reconnect_at:
                return
            self._connect()
        in_flight = 0
        due = []
        for entry in self._pending.values():
            if entry.sent_at is not None and now - entry.sent_at < self.resend_timeout:
                in_flight += 1
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
                return
        status = {"dropped": self.stats.dropped, "buffered": len(self._pending)}
        for start in range(0, len(due), self.batch_size):
            batch = due[start : start + self.batch_size]
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
                return  # not connected (ZeroMQ keeps reconnecting) or peer full: next pump
            for entry in batch:
                entry.attempts += 1
                if entry.attempts > 1:
                    self.stats.resends += 1
                entry.sent_at = now
            self.stats.sent += len(batch)

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
                if self._forget(seq):
                    self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
                    log.warning("the recorder refused sample %s: %s", seq, reason)

    def _forget(self, seq):
        entry = self._pending.pop(seq, None)
        if entry is None:
            return False
        series = self._per_series.get((entry.host, entry.dataset, entry.instance))
        if series and series[0] == seq:
            series.popleft()  # the usual case: acks come oldest first
        elif series and seq in series:
            series.remove(seq)
        return True


_HANDSHAKE_FAILURES_NAMED = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "authentication refused",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol or key mismatch",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
}
_HANDSHAKE_FAILURES = sum(_HANDSHAKE_FAILURES_NAMED)
