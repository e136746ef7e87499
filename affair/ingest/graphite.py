"""Graphite's plaintext protocol, turned into affair samples: pure functions, no sockets.

Agents that sites already run (collectd's write_graphite, telegraf, netdata)
speak it over TCP, one line per value::

    <path> <value> <timestamp>\\n        e.g.  node01.cpu.percent-user 3.5 1700000000

The path is one string; config rules (``[[graphite.rules]]``, compiled at
load by :mod:`affair.config.graphite`) map it to affair's host, dataset,
instance and variable.

Host names must already be valid (a host name is an identity: it is never
rewritten into someone else's). Dataset, instance and variable names are
made safe with :func:`affair.names.safe_name`, so ``percent-user`` becomes
the rrdtool data source ``percent_user``.

Graphite sends one value per line; an RRD file takes all of a series'
variables per timestamp in one update, and the journal holds one row per
(series, timestamp). :class:`SampleMerger` therefore gathers the lines of
one series and timestamp into one sample before it goes on.

The server that uses these lives in :mod:`affair.ingest.graphite_server`.
"""

import ipaddress
import math
from collections import OrderedDict

from affair.errors import BadLine
from affair.names import is_valid, safe_name

# --- clients ---


def is_allowed(address, networks):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


# --- lines ---


class LineSplitter:
    """Cuts a byte stream into lines, holding at most ``max_line_bytes`` of a partial line.

    A line longer than that is dropped whole (up to its newline) and
    counted, so a client that never sends a newline cannot make us buffer
    without bound.
    """

    def __init__(self, max_line_bytes):
        self.max_line_bytes = max_line_bytes
        self._partial = b""
        self._discarding = False

    def feed(self, chunk):
        """Return ``(complete_lines, lines_too_long)`` for this chunk."""
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        too_long = 0
        if self._discarding:
            if lines:
                lines.pop(0)  # the tail of the over-long line
                self._discarding = False
            else:
                self._partial = b""
        kept = []
        for line in lines:
            if len(line) > self.max_line_bytes:
                too_long += 1
            else:
                kept.append(line)
        if len(self._partial) > self.max_line_bytes:
            too_long += 1
            self._partial = b""
            self._discarding = True
        return kept, too_long

    @property
    def holds_partial(self):
        """True while a line has begun and not ended (held, or being discarded)."""
        return bool(self._partial) or self._discarding


def parse_line(line, now):
    """``b"a.b.c 1.5 1700000000"`` -> ``("a.b.c", 1.5, 1700000000.0)``; None for a blank line.

    A value of ``nan`` is unknown (None); a timestamp of ``-1`` or ``N``
    means now, as in carbon and rrdtool.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise BadLine("encoding", repr(line[:80])) from None
    fields = text.split()
    if not fields:
        return None
    if len(fields) != 3:
        raise BadLine("fields", f"{len(fields)} fields in {text[:80]!r}")
    path, value_text, ts_text = fields
    try:
        value = float(value_text)
    except ValueError:
        raise BadLine("value", f"{value_text[:40]!r} in {path[:80]!r}") from None
    if math.isinf(value):
        raise BadLine("value", f"{value_text[:40]!r} in {path[:80]!r}")
    if math.isnan(value):
        value = None
    if ts_text in ("-1", "N"):
        ts = float(now)
    else:
        try:
            ts = float(ts_text)
        except ValueError:
            raise BadLine("timestamp", f"{ts_text[:40]!r} in {path[:80]!r}") from None
        if not math.isfinite(ts):
            raise BadLine("timestamp", f"{ts_text[:40]!r} in {path[:80]!r}")
    return path, value, ts


# --- mapping rules ---


def map_path(rules, path):
    """``(host, dataset, instance, variable)``, all valid names, or raise BadLine."""
    for rule in rules:
        mapped = rule.apply(path)
        if mapped is not None:
            break
    else:
        raise BadLine("unmatched", path[:120])
    host, dataset, instance, variable = mapped
    if not is_valid("host", host):
        raise BadLine("name", f"host {host[:80]!r} from {path[:120]!r}")
    dataset = safe_name("dataset", dataset)
    variable = safe_name("variable", variable)
    if instance:
        instance = safe_name("instance", instance)
    if not dataset or not variable or instance is None:
        raise BadLine("name", f"nothing usable left of {path[:120]!r}")
    return host, dataset, instance, variable


class PathMapper:
    """:func:`map_path` with a memory: agents send the same paths every interval.

    Holds at most ``limit`` answers (failures too); when full it starts
    afresh, so a flood of unique paths costs time, never memory.
    """

    def __init__(self, rules, limit=100_000):
        self.rules = rules
        self.limit = limit
        self._known = {}

    def __call__(self, path):
        answer = self._known.get(path)
        if answer is None:
            try:
                answer = map_path(self.rules, path)
            except BadLine as bad:
                answer = bad
            if len(self._known) >= self.limit:
                self._known.clear()
            self._known[path] = answer
        if isinstance(answer, BadLine):
            raise answer
        return answer


# --- merging lines into samples ---


class SampleMerger:
    """Gathers the one-value lines of a series and timestamp into one sample.

    An agent sends each reading's lines together, but may split them across
    two of its buffer flushes seconds apart (collectd's write_graphite
    sends when its buffer is full). A reading is therefore complete when
    the same series' next reading begins (a line with a later timestamp),
    or at the latest ``hold_seconds`` after its first line. Lines that are
    out of order still merge while their reading is held. At most
    ``max_open`` readings are held; past that the oldest is let go early.
    """

    def __init__(self, hold_seconds=30.0, max_open=50_000):
        self.hold_seconds = hold_seconds
        self.max_open = max_open
        self._open = OrderedDict()  # (series, ts) -> [values, first seen, sender], oldest first
        self._newest = {}  # series -> ts of its newest held reading

    def __len__(self):
        return len(self._open)

    def add(self, series, ts, variable, value, now, sender=""):
        """Add one value; returns the readings it completed, as (ts, series, values, sender)."""
        done = []
        held = self._open.get((series, ts))
        if held is None:
            newest = self._newest.get(series)
            if newest is not None and newest < ts:
                done.append(self._close((series, newest)))  # the next reading has begun
            if len(self._open) >= self.max_open:
                done.append(self._close(next(iter(self._open))))
            held = self._open[(series, ts)] = [{}, now, sender]
            if newest is None or newest < ts:
                self._newest[series] = ts
        held[0][variable] = value
        return done

    def due(self, now, force=False):
        """Readings held for ``hold_seconds`` or more (all of them when ``force``)."""
        done = []
        while self._open:
            key, (_values, since, _sender) = next(iter(self._open.items()))
            if not force and now - since < self.hold_seconds:
                break  # the rest arrived later still
            done.append(self._close(key))
        return done

    def _close(self, key):
        values, _since, sender = self._open.pop(key)
        series, ts = key
        if self._newest.get(series) == ts:
            del self._newest[series]
        return ts, series, values, sender
