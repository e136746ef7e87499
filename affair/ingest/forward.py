"""Forwarders: further consumers of the journal, streaming every sample to a ``[[forward]]`` target.

Each target has its own process (spawned by the recorder, like the RRD
writer, so encoding never competes with receiving for the GIL) and its own
watermark (``_state/forward-<name>.watermark``). It reads the journal past
the watermark (:class:`affair.storage.journal_tail.JournalTail`), encodes a
batch (:mod:`affair.ingest.forward_encode`), sends it, and only then moves
the watermark. So:

* a target that is down or slow stalls nobody but its own forwarder: the
  recorder keeps journaling and acking, the RRD writer keeps writing, and
  the forwarder retries with a capped exponential backoff, then catches up
  from its watermark;
* a SIGKILL of the recorder (and its forwarders) costs at most the batch in
  flight sent twice;
* a SIGKILL of the target loses what it held in memory but had answered
  for (VictoriaMetrics flushes to disk about every second). So after a
  failed send the forwarder goes back to the first batch it sent within
  ``resend_window`` before the failure and sends from there again.

Duplicates are harmless to the target: the same series, timestamp and
value (VictoriaMetrics with ``-dedup.minScrapeInterval`` keeps one).

A batch the target refuses as bad (HTTP 4xx) is not retried forever: the
reason is logged, its samples are counted as ``rejected``, and the forwarder
moves on. A 5xx, a 429, a timeout or a refused connection is retried.

What each forwarder has done and how far behind it is goes to
``_state/forward-<name>.json`` (atomically, about once a second); the
recorder records it as the ``forward`` dataset of its own host
(:mod:`affair.config.builtin`) and in ``metrics.json``.
"""

import concurrent.futures
import json
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import urllib3

from affair.atomic import write_atomic
from affair.config import Config, ForwardTarget
from affair.daemon import setup_logging
from affair.errors import ForwardError
from affair.ingest.forward_encode import graphite_lines, influx_lines
from affair.ratelog import RateLimitedLog
from affair.storage.journal import JournalPosition, Watermark
from affair.storage.journal_tail import JournalTail

log = logging.getLogger(__name__)

STATE_EVERY = 1.0  # seconds between state files while busy
FORWARDER_NICENESS = 10  # added to the recorder's: see forward_main
FORWARD_COUNTERS = ("sent", "rejected", "failures")
# HTTP answers that mean "try again later" although they are 4xx.
_RETRY_STATUSES = {408, 425, 429}


def watermark_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"forward-{name}.watermark"


def state_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"forward-{name}.json"


class Target(Protocol):
    """Where a forwarder sends: ``send`` returns None when taken, a reason when refused as bad."""

    def encode(self, rows: Sequence) -> bytes: ...
    def send(self, body: bytes) -> str | None: ...
    def close(self) -> None: ...


class InfluxTarget:
    """POST line protocol to an InfluxDB-compatible ``/write`` (VictoriaMetrics, InfluxDB 1.x)."""

    def __init__(self, target: ForwardTarget) -> None:
        self.name = target.name
        self.prefix = target.prefix
        separator = "&" if "?" in target.url else "?"
        self.url = f"{target.url}{separator}precision=ms"
        self.pool = urllib3.PoolManager(
            num_pools=1,
            maxsize=1,
            retries=False,  # ours, with backoff and a watermark, not urllib3's
            timeout=urllib3.Timeout(connect=target.timeout, read=target.timeout),
        )

    def encode(self, rows):
        return influx_lines(rows, self.prefix)

    def send(self, body):
        try:
            response = self.pool.request(
                "POST", self.url, body=body, headers={"Content-Type": "text/plain"}
            )
        except urllib3.exceptions.HTTPError as error:
            raise ForwardError(self.name, f"POST {self.url}: {error}") from None
        if 200 <= response.status < 300:
            return None
        text = response.data[:300].decode("utf-8", "replace").strip()
        if 400 <= response.status < 500 and response.status not in _RETRY_STATUSES:
            return f"HTTP {response.status}: {text}"
        raise ForwardError(self.name, f"POST {self.url}: HTTP {response.status}: {text}")

    def close(self):
        self.pool.clear()


class GraphiteTarget:
    """Plaintext lines over one kept-open TCP connection (carbon, VictoriaMetrics)."""

    def __init__(self, target: ForwardTarget) -> None:
        assert target.address is not None
        self.name = target.name
        self.prefix = target.prefix
        self.address = target.address
        self.timeout = target.timeout
        self._socket: socket.socket | None = None

    def encode(self, rows):
        return graphite_lines(rows, self.prefix)

    def send(self, body):
        try:
            if self._socket is None:
                self._socket = socket.create_connection(self.address, timeout=self.timeout)
            self._socket.sendall(body)
        except OSError as error:
            self.close()
            host, port = self.address
            raise ForwardError(self.name, f"graphite {host}:{port}: {error}") from None
        return None  # the protocol has no answer: a dead peer shows at a later send

    def close(self):
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def make_target(target: ForwardTarget) -> Target:
    return InfluxTarget(target) if target.kind == "influx" else GraphiteTarget(target)


class Forwarder:
    """One target's consumer loop: read past the watermark, send, move the watermark."""

    def __init__(
        self,
        target: ForwardTarget,
        journal_dir: str | os.PathLike[str],
        state_dir: str | os.PathLike[str],
        sender: Target | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.state_dir = Path(state_dir)
        self.sender = sender or make_target(target)
        self.clock = clock
        self.monotonic = monotonic
        self.watermark = Watermark(watermark_path(self.state_dir, target.name))
        self.tail = JournalTail(journal_dir, self.watermark.load())
        # How far the target has answered for; the tail reads ahead of it (see run).
        self.confirmed: JournalPosition = self.tail.position
        self.counts = dict.fromkeys(FORWARD_COUNTERS, 0)
        self._load_counts()
        self.last_error = ""
        self.backoff = 0.0  # seconds to wait before the next try; 0 while sends succeed
        self._recent: deque[tuple[float, JournalPosition]] = deque()  # (sent at, position before)
        self._state_at = 0.0
        self._errors = RateLimitedLog(
            log, "forward to %s failed, retrying: %s", per_minute=2, noun="errors"
        )
        self._refusals = RateLimitedLog(
            log, "forward to %s: %d samples refused: %s", per_minute=2, noun="refusals"
        )

    def _load_counts(self):
        """Counters continue across restarts, so the recorder's DERIVE rates never jump back."""
        try:
            saved = json.loads(state_path(self.state_dir, self.target.name).read_text())
            for name in FORWARD_COUNTERS:
                self.counts[name] = int(saved.get(name, 0))
        except (OSError, ValueError, TypeError, AttributeError):
            pass

    def step(self) -> int:
        """One batch: read, send, move on. Returns the samples it took (0: caught up or failed).

        Raises nothing for a target's failure: it is counted, the position
        rewound (see the module doc) and ``backoff`` set for the caller.
        """
        before = self.tail.position
        rows = self.tail.read(self.target.batch_size)
        if not rows:
            return 0
        try:
            refusal = self.sender.send(self.sender.encode(rows))
        except ForwardError as error:
            self._failed(before, error)
            return 0
        self._taken(before, self.tail.position, len(rows), refusal)
        return len(rows)

    def _taken(self, before, after, count, refusal):
        """The target answered for the batch from ``before`` to ``after``: count it, move on."""
        if self.backoff:
            log.info("forward to %s: the target answers again", self.target.name)
        self.backoff = 0.0
        self.last_error = ""
        now = self.monotonic()
        if refusal is None:
            self.counts["sent"] += count
        else:
            self.counts["rejected"] += count
            self.last_error = refusal
            self._refusals(self.target.name, count, refusal)
        self._recent.append((now, before))
        while self._recent and self._recent[0][0] < now - self.target.resend_window:
            self._recent.popleft()
        self.watermark.save(after)
        self.confirmed = after

    def _failed(self, before, error):
        self.counts["failures"] += 1
        self.last_error = str(error)
        self._errors(
            self.target.name, str(error).removeprefix(f"forward target {self.target.name}: ")
        )
        # What the target answered for lately may have died with it: send it again.
        window_start = self.monotonic() - self.target.resend_window
        rewind_to = before
        for sent_at, position in self._recent:
            if sent_at >= window_start:
                rewind_to = position
                break
        self._recent.clear()
        self.tail.seek(rewind_to)  # a batch read ahead meanwhile is dropped too
        if rewind_to != before:
            self.watermark.save(rewind_to)
        self.confirmed = rewind_to
        self.backoff = min(self.target.backoff_cap, max(0.5, 2 * self.backoff))

    def state(self) -> dict:
        behind, oldest = self.tail.backlog(self.confirmed)
        now = self.clock()
        return {
            **self.counts,
            "lag_samples": behind,
            "lag_seconds": max(0.0, now - oldest) if oldest is not None else 0.0,
            "last_error": self.last_error,
            "position": list(self.confirmed),
            "time": now,
        }

    def write_state(self, force: bool = False) -> None:
        now = self.monotonic()
        if not force and now - self._state_at < STATE_EVERY:
            return
        self._state_at = now
        write_atomic(
            state_path(self.state_dir, self.target.name), json.dumps(self.state(), sort_keys=True)
        )

    def run(self, stop: threading.Event, parent_alive: Callable[[], bool] = lambda: True) -> None:
        """Forward until ``stop`` is set or the parent is gone.

        The same steps as :meth:`step`, overlapped: while the target takes
        one batch (the wait for its answer releases the GIL), the next is
        read and encoded, and the answer is concluded before that one goes.
        Batches are concluded in order, so the watermark moves as in
        :meth:`step`; after a failure the read-ahead batch is dropped with
        the rewind.
        """
        where = self.target.url or "{}:{}".format(*self.target.address)  # type: ignore[misc]
        log.info(
            "forwarding to %s (%s) from journal position %s",
            self.target.name,
            where,
            self.tail.position,
        )
        sending = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"forward-{self.target.name}"
        )
        in_flight = None  # (future, before, after, count)
        try:
            while not stop.is_set() and parent_alive():
                before = self.tail.position
                rows = self.tail.read(self.target.batch_size)
                after = self.tail.position
                body = self.sender.encode(rows) if rows else b""
                if in_flight is not None:
                    future, sent_from, sent_to, count = in_flight
                    in_flight = None
                    try:
                        refusal = future.result()
                    except ForwardError as error:
                        self._failed(sent_from, error)
                        self.write_state()
                        stop.wait(self.backoff)
                        continue
                    self._taken(sent_from, sent_to, count, refusal)
                if rows:
                    future = sending.submit(self.sender.send, body)
                    in_flight = (future, before, after, len(rows))
                self.write_state()
                if not rows and in_flight is None:
                    stop.wait(self.target.poll)  # caught up: look again shortly
        finally:
            if in_flight is not None:  # let the last batch finish; its answer moves the watermark
                try:
                    self._taken(in_flight[1], in_flight[2], in_flight[3], in_flight[0].result())
                except ForwardError as error:
                    self._failed(in_flight[1], error)
            sending.shutdown(wait=True)
            self.write_state(force=True)
            self.sender.close()
            self.tail.close()


def forward_main(config: Config, name: str, parent_pid: int, log_level: str = "INFO") -> None:
    """Entry point of a forwarder process (spawned by the recorder)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C goes to the recorder; it stops us
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Receiving and the RRD writer come first when the cores are busy: a forwarder
    # is a consumer that catches up from its watermark, so it waits, not they.
    os.nice(FORWARDER_NICENESS)
    setup_logging(log_level)
    target = next(t for t in config.forward if t.name == name)
    data_dir = Path(config.recorder.data_dir)
    forwarder = Forwarder(target, data_dir / "_journal", data_dir / "_state")
    forwarder.run(stop, parent_alive=lambda: os.getppid() == parent_pid)
