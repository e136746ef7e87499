"""The Graphite plaintext listener: its own thread, its own asyncio loop, one task per client.

It only reads, parses, maps, merges and validates (:mod:`affair.ingest.graphite`,
:mod:`affair.ingest.validate`); the validated samples wait in a bounded queue that
the recorder's receiving thread drains with :meth:`GraphiteListener.take`
and journals with the ZeroMQ samples, so the journal keeps one writer.

Backpressure, from the narrowest to the widest:

* each connection has a token bucket of ``lines_per_second``; a client
  faster than that is not read from until it has credit again, so its
  kernel buffers fill and TCP slows it down while the others are served;
* each connection yields to the loop after every chunk it reads, so one
  busy client cannot starve the rest;
* when the queue to the recorder is full (the recorder is itself behind),
  every connection pauses reading until there is room again.

Fairness between clients: one client address holds at most
``max_connections_per_client`` of the ``max_connections`` (more are refused,
``client_limit``), and a line begun must end within ``line_timeout`` or the
connection is closed (``slow``), so neither idle connections from one
address nor a client trickling bytes without a newline can lock the others
out. Both are logged a line a minute at most.

The protocol has no acknowledgements, so a sample is safe once journaled;
what waits in the merger and the queue (about a second's worth) is lost if
the recorder is killed. A stop (SIGTERM) journals it.
"""

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import defaultdict, deque

from affair.config.builtin import GRAPHITE_COUNTERS
from affair.errors import BadLine, ListenError, Rejected
from affair.ingest.graphite import (
    LineSplitter,
    PathMapper,
    SampleMerger,
    is_allowed,
    parse_line,
)
from affair.ingest.validate import Sample, validate_sample
from affair.ratelog import RateLimitedLog
from affair.vocab import GRAPHITE_REFUSALS

log = logging.getLogger(__name__)

READ_BYTES = 65536
IDLE_TIMEOUT = 900.0  # seconds without a byte before a connection is closed
TICK = 0.2  # how often held samples are checked for completion


class GraphiteListener:
    """Listens for Graphite plaintext on ``settings.listen`` and queues validated Samples."""

    def __init__(self, settings, config, clock=time.time, reject_log=None, queue_limit=50_000):
        self.settings = settings
        self.config = config
        self.clock = clock
        self.reject_log = reject_log or (lambda reason, sender, detail: None)
        self.counts = defaultdict(float)
        self.address = None  # (host, port) actually bound, once started
        # deque appends and pops are atomic: the listener appends, the recorder pops
        self._queue = deque()
        self.queue_limit = queue_limit
        self._merger = SampleMerger(settings.merge_seconds)
        self._map_path = PathMapper(settings.rules)
        self._open = 0
        self._open_by_client = defaultdict(int)  # client address -> open connections
        # A line a minute for each: a client locked out retries often.
        self._fairness_log = RateLimitedLog(
            log, "graphite connection refused (%s) from %s: %s", per_minute=1, noun="connections"
        )
        self._loop = None
        self._stopping = None  # an asyncio.Event, created on the loop
        self._thread = None
        self._ready = threading.Event()
        self._error = None

    # --- the recorder's side ---

    def start(self, timeout=10.0):
        """Bind and serve on a new thread; raises ListenError if the address cannot be bound."""
        self._thread = threading.Thread(target=self._main, name="graphite", daemon=True)
        self._thread.start()
        host, port = self.settings.listen
        if not self._ready.wait(timeout):
            raise ListenError(f"graphite {host}:{port}", "the listener did not start in time")
        if self._error is not None:
            errno = getattr(self._error, "errno", None)
            cause = os.strerror(errno) if errno else self._error
            raise ListenError(f"graphite {host}:{port}", cause) from None
        host, port = self.address[:2]
        log.info("graphite plaintext listening on %s:%d", host, port)
        return self

    def stop(self, timeout=10.0):
        """Close every connection and pass on what is held; :meth:`take` then returns it."""
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout)

    def take(self, limit=10_000):
        """Up to ``limit`` validated samples, oldest first, without waiting."""
        taken = []
        pop = self._queue.popleft
        with contextlib.suppress(IndexError):
            while len(taken) < limit:
                taken.append(pop())
        return taken

    @property
    def open_connections(self):
        return self._open

    def give_back(self, samples):
        """Samples :meth:`take` returned that could not be journaled: first in line again."""
        self._queue.extendleft(reversed(samples))

    # --- the listener thread ---

    def _main(self):
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # handed to start(), or logged
            if not self._ready.is_set():
                self._error = error
                self._ready.set()
            else:
                log.exception("the Graphite listener failed")

    async def _serve(self):
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        host, port = self.settings.listen
        server = await asyncio.start_server(self._connection, host, port, limit=READ_BYTES)
        self.address = server.sockets[0].getsockname()
        self._ready.set()
        interval = self.config.recorder.self_interval
        next_self_sample = (int(self.clock()) // interval + 1) * interval
        async with server:
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), TICK)
                now = self.clock()
                await self._pass_on(self._merger.due(now), now)
                if now >= next_self_sample:
                    await self._put(self._self_sample(now))
                    next_self_sample = (int(now) // interval + 1) * interval
            server.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()
            await asyncio.sleep(0)
        now = self.clock()
        await self._pass_on(self._merger.due(now, force=True), now, wait=False)

    async def _connection(self, reader, writer):
        peer = writer.get_extra_info("peername") or ("?", 0)
        client = peer[0]
        sender = f"graphite:{client}"
        if (
            not is_allowed(client, self.settings.allow)
            or self._open >= self.settings.max_connections
        ):
            self.counts["refused"] += 1
            self.reject_log("refused", sender, "not in graphite.allow, or too many connections")
            writer.close()
            return
        if self._open_by_client[client] >= self.settings.max_connections_per_client:
            self.counts["client_limit"] += 1
            self._fairness_log(
                "client_limit",
                sender,
                f"already {self._open_by_client[client]} connections from this address",
            )
            writer.close()
            return
        self.counts["connections"] += 1
        self._open += 1
        self._open_by_client[client] += 1
        splitter = LineSplitter(self.settings.max_line_bytes)
        line_timeout = self.settings.line_timeout
        line_begun = None  # monotonic time the unfinished line began, if one is held
        rate = self.settings.lines_per_second
        credit = float(rate)
        refilled = time.monotonic()
        try:
            while True:
                timeout = IDLE_TIMEOUT
                if line_begun is not None:
                    timeout = line_begun + line_timeout - time.monotonic()
                try:
                    chunk = await asyncio.wait_for(reader.read(READ_BYTES), max(timeout, 0))
                except TimeoutError:
                    if line_begun is not None:
                        self.counts["slow"] += 1
                        self._fairness_log("slow", sender, f"a line not ended in {line_timeout}s")
                    break
                if not chunk:
                    break
                lines, too_long = splitter.feed(chunk)
                if too_long:
                    self._bad("too_long", sender, f"{too_long} line(s) over the limit", too_long)
                if not splitter.holds_partial:
                    line_begun = None
                elif lines or too_long or line_begun is None:
                    line_begun = time.monotonic()  # a new line began in this chunk
                await self._lines(lines, sender)
                now = time.monotonic()
                credit = min(float(rate), credit + (now - refilled) * rate) - len(lines)
                refilled = now
                if credit < 0:  # over its rate: not read until it has credit again
                    wait = -credit / rate
                    self.counts["throttled"] += wait
                    await asyncio.sleep(wait)
                else:
                    await asyncio.sleep(0)  # let the other connections have their turn
        except (TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._open -= 1
            self._open_by_client[client] -= 1
            if not self._open_by_client[client]:
                del self._open_by_client[client]
            writer.close()

    async def _lines(self, lines, sender):
        now = self.clock()
        recorder = self.config.recorder
        completed = []
        for line in lines:
            self.counts["lines"] += 1
            try:
                parsed = parse_line(line, now)
                if parsed is None:
                    continue
                path, value, ts = parsed
                if not now - recorder.max_sample_age <= ts <= now + recorder.max_future_skew:
                    # refused before merging: a stray timestamp must not complete a reading
                    raise BadLine("future" if ts > now else "past", f"{ts:.0f} in {path[:80]!r}")
                host, dataset, instance, variable = self._map_path(path)
            except BadLine as bad:
                self._bad(bad.reason, sender, bad.detail)
                continue
            completed += self._merger.add(
                (host, dataset, instance), ts, variable, value, now, sender
            )
        await self._pass_on(completed, now)

    async def _pass_on(self, completed, now, wait=True):
        for ts, (host, dataset, instance), values, sender in completed:
            try:
                sample = validate_sample(
                    [0, ts, host, dataset, instance, values, 1], self.config, now, sender
                )
            except Rejected as rejection:
                self._bad(rejection.reason, sender, rejection.detail)
                continue
            self.counts["samples"] += 1
            if len(self._queue) < self.queue_limit:
                self._queue.append(sample)
            else:
                await self._put(sample, wait)

    async def _put(self, sample, wait=True):
        while wait and len(self._queue) >= self.queue_limit:
            await asyncio.sleep(0.05)  # the recorder is behind: everyone waits
        self._queue.append(sample)  # at stop, over the limit rather than lost

    def _bad(self, reason, sender, detail, count=1):
        self.counts[f"bad_{reason}"] += count
        self.reject_log(f"graphite {reason}", sender, detail)

    def _self_sample(self, now):
        values = {name: self.counts[name] for name in GRAPHITE_COUNTERS}
        values["open"] = float(self._open)
        for reason in GRAPHITE_REFUSALS:
            values[f"bad_{reason}"] = self.counts[f"bad_{reason}"]
        return Sample(0, now, self.config.recorder.self_host, "graphite", "", values)
