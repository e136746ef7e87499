"""``affair.collectors.client``: an application publishes its own variables.

::

    from affair.collectors.client import Publisher

    daq = Publisher("daq", endpoint="tcp://station:5678")
    daq.set(event_size=1.2e6, run_number=4711)   # levels: the latest value is sent
    daq.increment("events")                       # counters: the running total is sent
    daq.series("eb01").increment("bytes_out", 8192)   # one instance of the dataset
    to_gdc = daq.link("gdc01/gdc")                # a link to another daemon (host/daemon)
    to_gdc.sent(nbytes=8192)                      # counted on this end (the source)
    to_gdc.latency(0.004)                         # one message's latency, in seconds
    with to_gdc.timed():                          # or time a block
        send_event()
    daq.link("ldc01/ldc").received(nbytes=4096)   # the other way: this daemon is the target
    ...
    daq.close()                                   # sends what is still buffered

Calls from the application only update a dictionary under a lock (a few
microseconds); a background thread owns the socket (ZeroMQ sockets must stay
on one thread) and, every ``interval`` seconds on the wall-clock grid,
sends each series' current values through a :class:`~affair.collectors.sender.Sender`:
the collector's acked, buffered, resent and (with ``curve=``) authenticated
delivery. The application never waits for the network.

Counters are sent as raw running totals: declare them ``DERIVE`` with
``min = 0`` in the recorder's config, so librrd stores a rate per second
and a restart of the application (the total starts again at 0) is one
unknown slot, not a spike.

Links: this publisher is the daemon ``<host>/<daemon>`` (``daemon`` defaults
to the dataset's name). Every interval each link end it used sends one
sample of the ``links`` dataset (instance ``<daemon>_<out|in>_<peer host>_<peer
daemon>``, see :func:`affair.names.link_instance`) with the interval's
messages, bytes, errors, rate and latency count, mean, p50, p95 and max
(:mod:`affair.collectors.linkstats`), then starts the next interval from zero;
an end that saw nothing still sends its zeros, so a quiet link is told apart
from a dead one.

Import cost: zmq and msgpack only (no rrdtool, numpy or matplotlib).
"""

import atexit
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Self, SupportsFloat

import zmq
from affair.collectors.linkstats import LinkEnd
from affair.collectors.sender import Sender, SenderStats

from affair.names import check_daemon, check_name, link_instance
from affair.vocab import LINK_DATASET

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5678"
TICK_OFFSET = 0.05  # seconds after the grid line, as the collector does
_NUMBERS = (int, float)
_perf_counter = time.perf_counter  # Link.timed()'s clock (tests replace it)


class Series:
    """The variables of one instance of a dataset; get one with :meth:`Publisher.series`."""

    __slots__ = ("instance", "_lock", "_gauges", "_counters", "_kinds")

    def __init__(self, instance: str, lock: threading.Lock) -> None:
        self.instance = instance
        self._lock = lock
        # ints, floats and None only: set() and increment() convert any other number
        self._gauges: dict[str, Any] = {}
        self._counters: dict[str, Any] = {}
        self._kinds: dict[str, str] = {}  # variable -> "level" or "counter", checked on first use

    def set(self, **values: SupportsFloat | None) -> None:
        """Set levels (GAUGE variables): ``set(event_size=1.2e6, buffers_free=12)``.

        ``None`` or NaN means unknown; True/False are 1/0. Raises at once, in the caller's
        thread, for a bad name or a value that is not a number.
        """
        for name, value in values.items():
            if self._kinds.get(name) != "level":
                self._first_use(name, "level")
            if value.__class__ not in _NUMBERS:
                values[name] = _number(name, value)
        with self._lock:
            self._gauges.update(values)

    def increment(self, name: str, by: SupportsFloat = 1) -> None:
        """Add ``by`` to the counter ``name`` (declare it DERIVE, min 0, at the recorder)."""
        if self._kinds.get(name) != "counter":
            self._first_use(name, "counter")
        if by.__class__ not in _NUMBERS:
            by = _number(name, by)
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + by

    def snapshot(self) -> dict[str, float | None] | None:
        """The values to send now, or None when nothing was ever set."""
        with self._lock:
            if not self._gauges and not self._counters:
                return None
            return {**self._gauges, **self._counters}

    def _first_use(self, name, kind):
        check_name("variable", name)
        known = self._kinds.get(name)
        if known is not None and known != kind:
            raise ValueError(
                f"variable {name!r} is a {known}; use one name for set() and another for increment()"
            )
        self._kinds[name] = kind


class Link:
    """The link between this publisher's daemon and one peer; get one with :meth:`Publisher.link`.

    ``sent()`` counts on the out end (this daemon -> peer), ``received()`` on the
    in end (peer -> this daemon); ``error()``, ``latency()`` and ``timed()`` go to
    the out end unless ``inbound=True``.
    """

    __slots__ = ("peer", "out", "inbound", "sent", "received", "latency")

    def __init__(self, peer: str, out: LinkEnd, inbound: LinkEnd) -> None:
        self.peer = peer
        self.out = out
        self.inbound = inbound
        out.inbound_end = inbound
        # The hot paths, no call in between (as Publisher.set): sent(nbytes=0, messages=1)
        # and received(...) are the ends' own count(), and latency(seconds, inbound=False)
        # the out end's observe(), which hands an inbound latency to the in end.
        self.sent = out.count
        self.received = inbound.count
        self.latency = out.observe

    def error(self, errors: int = 1, inbound: bool = False) -> None:
        """A message that failed (a send that raised, a corrupt message received)."""
        (self.inbound if inbound else self.out).fail(errors)

    def timed(self, nbytes: int = 0, inbound: bool = False) -> "Timed":
        """``with link.timed():`` times the block as one message's latency and counts it.

        A block that raises counts as an error instead.
        """
        return Timed(self.inbound if inbound else self.out, nbytes)


class Timed:
    """The context manager of :meth:`Link.timed` (a class: a generator costs ~5x more)."""

    __slots__ = ("end", "nbytes", "started")

    def __init__(self, end: LinkEnd, nbytes: int) -> None:
        self.end = end
        self.nbytes = nbytes
        self.started = 0.0

    def __enter__(self) -> None:
        self.started = _perf_counter()

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is not None:
            self.end.fail()
            return
        self.end.observe(_perf_counter() - self.started)
        self.end.count(self.nbytes)


def _number(name, value):
    if value is None:
        return None
    if isinstance(value, str | bytes) or not hasattr(value, "__float__"):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    return float(value)


class Publisher:
    """Publishes one dataset of this application; one background thread per publisher.

    ``endpoint``: the recorder (default ``$AFFAIR_RECORDER`` or
    tcp://127.0.0.1:5678); ``host``: the host to record under (default this
    machine's short name); ``interval``: seconds between samples;
    ``buffer_seconds``: how much is kept per series while the recorder is
    away; ``curve``: (client public, client secret, server public) keys.
    """

    def __init__(
        self,
        dataset: str,
        endpoint: str | None = None,
        host: str | None = None,
        interval: float = 10,
        buffer_seconds: float = 3600,
        curve: tuple[bytes, bytes, bytes] | None = None,
        send_on_close: bool = True,
        context: zmq.Context | None = None,
        daemon: str | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dataset = check_name("dataset", dataset)
        self.endpoint = endpoint or os.environ.get("AFFAIR_RECORDER") or DEFAULT_ENDPOINT
        self.host = check_name("host", host or socket.gethostname().split(".")[0])
        self.daemon = check_name("dataset", daemon or dataset)  # links need it: see link()
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.interval = interval
        self.send_on_close = send_on_close
        self.wall = wall
        self.monotonic = monotonic
        self.stats: SenderStats | None = None  # the Sender's, once its thread has started
        self._sender_options = {
            "per_series_limit": max(1, int(buffer_seconds // interval)),
            "context": context,
            "curve": curve,
        }
        self._lock = threading.Lock()
        self._series = {"": Series("", self._lock)}
        self._default = self._series[""]
        self._links: dict[str, Link] = {}  # peer 'host/daemon' -> Link
        # (instance, LinkEnd) of every end in use, in creation order
        self._link_ends: list[tuple[str, LinkEnd]] = []
        # The hot path, one call shorter than the methods below (which document it and
        # give its types). Through the instance's dict, which Python looks in before the
        # class, because mypy refuses an assignment over a method.
        vars(self).update(set=self._default.set, increment=self._default.increment)
        self._stop = threading.Event()
        self._started = threading.Event()
        self._closed = False
        self._start_error: Exception | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"affair-publisher-{dataset}", daemon=True
        )
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error
        atexit.register(self.close)  # a forgotten close() still sends the last values

    # --- the application's side ---

    def set(self, **values: SupportsFloat | None) -> None:
        """Set levels of the dataset's single series; see :meth:`Series.set`."""
        self._default.set(**values)

    def increment(self, name: str, by: SupportsFloat = 1) -> None:
        """Add to a counter of the dataset's single series; see :meth:`Series.increment`."""
        self._default.increment(name, by)

    def series(self, instance: str) -> Series:
        """The :class:`Series` of one instance (a partition, a builder): created on first use."""
        found = self._series.get(instance)
        if found is None:
            check_name("instance", instance)
            with self._lock:
                found = self._series.setdefault(instance, Series(instance, self._lock))
        return found

    def link(self, peer: str) -> Link:
        """The :class:`Link` between this daemon and ``peer`` (``'host/daemon'``), made on first use.

        Raises InvalidName at once for a peer that is not
        ``host/daemon``, or names too long for a link's series.
        """
        found = self._links.get(peer)
        if found is not None:
            return found
        peer_host, peer_daemon = check_daemon(peer)
        check_daemon(f"{self.host}/{self.daemon}")  # this daemon's own name must fit a link
        out_name = link_instance(self.daemon, "out", peer_host, peer_daemon)
        in_name = link_instance(self.daemon, "in", peer_host, peer_daemon)
        with self._lock:
            found = self._links.get(peer)
            if found is None:
                found = Link(peer, LinkEnd(self._lock), LinkEnd(self._lock))
                self._link_ends += [(out_name, found.out), (in_name, found.inbound)]
                self._links[peer] = found
        return found

    def close(self, timeout: float = 5.0) -> bool:
        """Send the current values once more and wait up to ``timeout`` s for their acks.

        Returns True when everything sent was acknowledged.
        """
        if not self._closed:
            self._closed = True
            self._flush_timeout = timeout
            self._stop.set()
            self._thread.join(timeout + 2.0)
            atexit.unregister(self.close)
        return not self._thread.is_alive() and self._unacked == 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the background thread ---

    _flush_timeout = 5.0
    _unacked = 0

    def _run(self):
        try:
            sender = Sender(
                # host.daemon: the recorder's link from this daemon to it takes this name
                self.endpoint,
                name=f"{self.host}.{self.daemon}",
                **self._sender_options,
            )
        except Exception as error:  # e.g. a malformed endpoint: raised in the constructor
            self._start_error = error
            self._started.set()
            return
        self.stats = sender.stats
        self._started.set()
        try:
            next_tick = self.monotonic() + self._delay_to_grid()
            while not self._stop.is_set():
                if self.monotonic() >= next_tick:
                    self._publish(sender, round(self.wall(), 3))
                    next_tick += self.interval
                    if next_tick <= self.monotonic():  # the process stalled: skip, realign
                        next_tick = self.monotonic() + self._delay_to_grid()
                sender.pump(max(0.0, min(next_tick - self.monotonic(), 0.5)))
            if self.send_on_close:
                self._publish(sender, round(self.wall(), 3))
            sender.flush(self._flush_timeout)
        except Exception:
            log.exception("affair publisher for %s stopped", self.dataset)
        finally:
            self._unacked = sender.buffered
            sender.close()

    def _delay_to_grid(self):
        now = self.wall()
        return (now // self.interval + 1) * self.interval + TICK_OFFSET - now

    def _publish(self, sender, timestamp):
        for series in list(self._series.values()):
            values = series.snapshot()
            if values is not None:
                sender.submit(timestamp, self.host, self.dataset, series.instance, values)
        with self._lock:
            taken = [
                (name, end.take(self.interval)) for name, end in self._link_ends if end.in_use()
            ]
        for instance, values in taken:
            sender.submit(timestamp, self.host, LINK_DATASET, instance, values)
