"""Graphite's plaintext protocol, turned into affair samples: pure functions, no sockets.

Agents that sites already run (collectd's write_graphite, telegraf, netdata)
speak it over TCP, one line per value::

    <path> <value> <timestamp>\\n        e.g.  node01.cpu.percent-user 3.5 1700000000

The path is one string; config rules (``[[graphite.rules]]``) map it to
affair's host, dataset, instance and variable. A rule is a regular
expression with named groups, matched against the whole path, and four
templates that use the groups as ``{name}``. The default rule reads
collectd's ``host.plugin[-plugin_instance].type[-type_instance][.ds]``.

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
import re
from collections import OrderedDict
from dataclasses import dataclass

from affair.config import Dataset, Variable
from affair.errors import BadLine
from affair.names import is_valid, safe_name

FIELDS = ("host", "dataset", "instance", "variable")

# collectd's write_graphite naming (SeparateInstances false, the default):
# host.plugin[-plugin_instance].type[-type_instance][.ds_name]
COLLECTD_PATTERN = (
    r"(?P<host>[^.]+)"
    r"\.(?P<plugin>[^.-]+)(?:-(?P<plugin_instance>[^.]+))?"
    r"\.(?P<type>[^.-]+)(?:-(?P<type_instance>[^.]+))?"
    r"(?:\.(?P<ds>[^.]+))?"
)
COLLECTD_RULE = {
    "pattern": COLLECTD_PATTERN,
    "host": "{host}",
    "dataset": "{plugin}",
    "instance": "{plugin_instance}",
    "variable": "{type}_{type_instance}_{ds}",
}

BAD_REASONS = (
    "encoding",  # not UTF-8
    "fields",  # not exactly three fields
    "value",  # not a number, or infinite
    "timestamp",  # not a number
    "too_long",  # longer than max_line_bytes
    "unmatched",  # no rule matches the path
    "name",  # the mapped host (or another name) is not usable
)

COUNTERS = ("lines", "samples", "connections", "refused", "throttled")
# Why lines are refused: parsing and mapping, then the recorder's own validation.
BAD = (*BAD_REASONS, "future", "past", "undeclared", "var_cap")


def graphite_dataset():
    """The listener's own ``graphite`` dataset, recorded under the recorder's host name."""

    def counter(name, label):
        return Variable(name, "DERIVE", "/s", label, 0.0, None)

    variables = {
        "lines": counter("lines", "lines received per second"),
        "samples": counter("samples", "samples passed on per second"),
        "connections": counter("connections", "connections accepted per second"),
        "refused": counter("refused", "connections refused per second"),
        "throttled": counter("throttled", "seconds clients waited for credit, per second"),
        "open": Variable("open", "GAUGE", "", "open connections", 0.0, None),
    }
    for reason in BAD:
        name = f"bad_{reason}"
        variables[name] = counter(name, f"refused ({reason.replace('_', ' ')}) per second")
    return Dataset("graphite", "the Graphite plaintext listener", variables)


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


# --- listen addresses ---


def parse_listen(value, default_host="127.0.0.1"):
    """``2003``, ``"2003"``, ``"0.0.0.0:2003"`` or ``"[::1]:2003"`` -> ``(host, port)``.

    A bare port listens on loopback only: the protocol has no authentication,
    so opening it to the network must be a deliberate choice.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a port: {value!r}")
    if isinstance(value, int):
        host, port_text = default_host, str(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            if not rest.startswith(":"):
                raise ValueError(f"expected '[HOST]:PORT', got {value!r}")
            port_text = rest[1:]
        elif ":" in text:
            host, _, port_text = text.rpartition(":")
        else:
            host, port_text = default_host, text
    else:
        raise ValueError(f"not a port: {value!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"not a port number: {port_text!r}")
    if not host:
        raise ValueError(f"no host before ':' in {value!r}")
    return host, int(port_text)


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


@dataclass(frozen=True)
class GraphiteRule:
    """A compiled ``[[graphite.rules]]`` entry: a regex and four templates."""

    pattern: re.Pattern
    host: str
    dataset: str
    instance: str
    variable: str

    def apply(self, path):
        """``(host, dataset, instance, variable)`` as raw text, or None if the path does not match."""
        match = self.pattern.fullmatch(path)
        if match is None:
            return None
        groups = {name: value or "" for name, value in match.groupdict().items()}
        return tuple(
            _PLACEHOLDER.sub(lambda m: groups[m.group(1)], getattr(self, field)) for field in FIELDS
        )


def compile_rule(pattern, host=None, dataset=None, instance=None, variable=None):
    """Build a rule, raising ValueError(text) naming what is wrong.

    A template left out defaults to the group of the same name
    (``{host}``...); ``instance`` defaults to none when the pattern has no
    ``instance`` group.
    """
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"pattern: not a regular expression ({error})") from None
    groups = set(compiled.groupindex)
    templates = {"host": host, "dataset": dataset, "instance": instance, "variable": variable}
    for field, template in templates.items():
        if template is None:
            if field in groups:
                template = "{" + field + "}"
            elif field == "instance":
                template = ""
            else:
                raise ValueError(
                    f"{field}: give a template like '{{{field}}}' or a pattern group (?P<{field}>...)"
                )
        for name in _PLACEHOLDER.findall(template):
            if name not in groups:
                raise ValueError(
                    f"{field}: {{{name}}} is not a named group of the pattern "
                    f"(groups: {', '.join(sorted(groups)) or 'none'})"
                )
        if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
            raise ValueError(f"{field}: stray brace in {template!r}; use {{group}} only")
        templates[field] = template
    return GraphiteRule(compiled, **templates)


def default_rules():
    return (compile_rule(**COLLECTD_RULE),)


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
