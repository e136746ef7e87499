"""What ``affair serve`` answers to a URL: pure functions, no files or sockets.

A request path becomes one of three things, decided here and nowhere else:

* a :class:`GraphTarget`: a per-node graph the server may draw, named
  exactly as the plotter names it (:mod:`affair.outputs.graph_paths`):
  ``<graphs>/node/<host>/<dataset>[.<instance>].<window>.png``, or a
  configured ``node`` graph ``<graphs>/<name>.node.<host>.<window>.png``;
* a :class:`StaticTarget`: a file to send as it is, from the site or the
  graphs directory (pages, CSS, JS, status.json, aggregate and overlay PNGs);
* None: not found.

The path is split on the *raw* URL (before percent-decoding), so an encoded
slash (``%2F``) can never join two segments into a path; every decoded
segment must be a plain file name (no ``/``, ``\\``, NUL, no leading dot,
so no ``..`` and no hidden temp files). What a segment names is then
checked against the name rules of :mod:`affair.names` before anything
touches the disk, so a traversal attempt is a 404 that opened nothing.

The graphs directory's URL is where the site's pages point: they link
graphs by a relative path, which a browser resolves against the page's URL
and clamps at the root, so ``../../graphs/x.png`` from ``/host/a.html`` is
``/graphs/x.png``. :func:`graphs_prefix` works that out once.

A per-node graph's query may ask for more than its file (:func:`check_query`):
``from=<s>&to=<s>`` (Unix seconds) draws a custom range instead of the
window (the zoom), ``scale=2`` twice the pixels (HiDPI screens). Both are
drawn on request only and cached under their own names
(:func:`~affair.outputs.graph_paths.ranged_graph_key`,
:func:`~affair.outputs.graph_paths.scaled_graph_key`), never over the
plotter's PNG. A range is checked against what the archives can show
(:class:`RangeLimits`) before anything is read: a bad one is a 400 that says
what was expected.

A graph is current (:func:`graph_is_current`) when it shows its archive's
newest row: the server redraws it when it is missing, when a row came in
since, when the config changed, or when a silent host's graph is due a new
row of its window, the plotter's rule (plan.SILENT_REDRAW_FRACTION, now 0).
A range whose rows were all written when it was drawn never changes again.
"""

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from affair.errors import RequestError
from affair.hosts import HostMatcher
from affair.names import is_valid, parse_rrd_file_name
from affair.outputs.graph_paths import (
    RANGES_DIR,
    graph_path,
    node_graph_path,
    ranged_graph_key,
    scaled_graph_key,
)
from affair.outputs.plot.plan import SILENT_REDRAW_FRACTION, GraphJob
from affair.outputs.status import format_age
from affair.storage.ladder import align
from affair.times import iso_utc
from affair.vocab import WINDOWS

# What a query string may hold, each at most once: the pages' cache buster ``v`` (on
# graphs and assets), and on per-node graphs a custom range and a pixel scale.
_QUERY_VALUES = {
    "v": re.compile(r"[0-9a-f]{1,40}"),
    "from": re.compile(r"[0-9]{1,12}"),
    "to": re.compile(r"[0-9]{1,12}"),
    "scale": re.compile(r"[12]"),
}
SCALES = (1, 2)
MIN_RANGE_SECONDS = 60  # a zoom narrower than this (or two base steps) shows a row or two
MAX_AHEAD_SECONDS = 86400  # a range may end up to a day ahead ("today" until midnight)
_UNSAFE_IN_SEGMENT = ("/", "\\", "\0")
MAX_PATH_LENGTH = 1024

# What the server sends, by file extension; any other file is not ours to serve.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class StaticTarget:
    root: str  # "site" or "graphs"
    parts: tuple  # path segments under that root, each a checked file name


@dataclass(frozen=True)
class GraphTarget:
    """A graph the server may draw: the plotter's job for it, and its file under the graphs dir.

    This is the one seam between a URL and a render: ``job`` says what to
    draw (host, dataset, instance, window or custom range, configured graph,
    scale), ``job.key`` where it goes.
    """

    job: GraphJob

    @property
    def key(self):
        return self.job.key

    def asking(self, query):
        """This graph for a custom range and/or scale: another job, under its own name."""
        job = self.job
        if query.end:
            key = ranged_graph_key(job.key, query.start, query.end, query.scale)
        else:
            key = scaled_graph_key(job.key, query.scale)
        return GraphTarget(
            dataclasses.replace(job, key=key, start=query.start, end=query.end, scale=query.scale)
        )


@dataclass(frozen=True)
class GraphQuery:
    """What a query asks of a graph beyond its file: a custom range (0, 0: none), a scale."""

    start: int = 0
    end: int = 0
    scale: int = 1

    @property
    def plain(self):
        return not self.end and self.scale == 1


@dataclass(frozen=True)
class RangeLimits:
    """Which custom ranges can be drawn at a moment: the pure maths, from the config."""

    earliest: int  # the oldest second the longest archive still holds
    latest: int  # how far ahead a range may end
    min_span: int
    max_span: int  # the longest archive's span: a graph of more would be mostly empty

    @classmethod
    def of(cls, config, now):
        longest = max(archive.span for archive in config.archives)
        now = int(now)
        return cls(
            earliest=now - longest,
            latest=now + MAX_AHEAD_SECONDS,
            min_span=max(MIN_RANGE_SECONDS, 2 * config.recorder.step),
            max_span=longest,
        )

    def check(self, start, end):
        """Raise RequestError, saying what is expected, unless ``start``..``end`` can be drawn."""
        if start >= end:
            raise RequestError(f"from ({start}) must be before to ({end})")
        if end - start < self.min_span:
            raise RequestError(
                f"the range is {end - start} s: it must be at least {self.min_span} s"
            )
        if end - start > self.max_span:
            raise RequestError(
                f"the range is {format_age(end - start)}: at most {format_age(self.max_span)} "
                "(what the archives keep) can be drawn"
            )
        if start < self.earliest:
            raise RequestError(
                f"from ({iso_utc(start)}) is older than anything the archives keep "
                f"(from {iso_utc(self.earliest)} on)"
            )
        if end > self.latest:
            raise RequestError(
                f"to ({iso_utc(end)}) is more than {format_age(MAX_AHEAD_SECONDS)} ahead of now"
            )


def check_query(query, limits):
    """The GraphQuery a raw query string asks for; RequestError (a 400) saying what is wrong.

    Only ``v=<hex>``, ``from=<s>&to=<s>`` (Unix seconds, checked against
    ``limits``: a RangeLimits) and ``scale=1|2``, each at most once; no
    percent-encoding (none of them needs any).
    """
    if not query:
        return GraphQuery()
    values = {}
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        if name not in _QUERY_VALUES:
            raise RequestError(
                f"unknown query parameter {name[:40]!r}: known are from, to, scale (and v)"
            )
        if name in values:
            raise RequestError(f"{name} is given twice")
        if not equals or not _QUERY_VALUES[name].fullmatch(value):
            expected = {
                "v": "a version in hex",
                "from": "whole seconds since 1970 (UTC)",
                "to": "whole seconds since 1970 (UTC)",
                "scale": "1 or 2",
            }[name]
            raise RequestError(f"{name} must be {expected}, got {value[:40]!r}")
        values[name] = value
    if ("from" in values) != ("to" in values):
        raise RequestError("from and to come together: a range needs both")
    scale = int(values.get("scale", 1))
    if "from" not in values:
        return GraphQuery(scale=scale)
    start, end = int(values["from"]), int(values["to"])
    limits.check(start, end)
    return GraphQuery(start, end, scale)


def split_path(raw_path):
    """The decoded segments of a raw request path; raise RequestError if it is unsafe or malformed.

    ``"/"`` is ``()``; a trailing slash leaves an empty last segment, so a
    directory is never mistaken for a file.
    """
    if not raw_path.startswith("/") or len(raw_path) > MAX_PATH_LENGTH:
        raise RequestError("not an absolute path")
    if raw_path == "/":
        return ()
    segments = []
    for raw in raw_path[1:].split("/"):
        try:
            segment = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise RequestError("path is not UTF-8") from None
        if segment.startswith(".") or any(c in segment for c in _UNSAFE_IN_SEGMENT):
            raise RequestError("unsafe path segment")
        segments.append(segment)
    return tuple(segments)


def graphs_prefix(site_dir, graphs_dir):
    """The URL segments under which the site's pages find the graphs dir (see the module doc)."""
    relative = os.path.relpath(Path(graphs_dir).resolve(), Path(site_dir).resolve())
    if relative == ".":
        return ()
    return tuple(part for part in Path(relative).parts if part != "..")


def route(parts, prefix, config, query=None):
    """``parts`` (from :func:`split_path`) -> GraphTarget, StaticTarget or None (not found).

    Static targets are checked for their file type only; whether the file
    exists is the caller's question (a stat under the root it names).
    ``query`` (from :func:`check_query`) applies to per-node graphs only:
    anything else asked for a range or a scale is a RequestError.
    """
    target = _route(parts, prefix, config)
    if query is None or query.plain or target is None:
        return target
    if not isinstance(target, GraphTarget):
        raise RequestError("from, to and scale are for per-node graphs only")
    return target.asking(query)


def _route(parts, prefix, config):
    if not parts:
        return StaticTarget("site", ("index.html",))
    if not all(parts):
        return None  # an empty segment: a directory or a doubled slash
    if _content_type(parts[-1]) is None:
        return None
    if parts[: len(prefix)] == prefix and len(parts) > len(prefix):
        under = parts[len(prefix) :]
        graph = graph_target(under, config)
        if graph is not None:
            return graph
        if under[0] in ("node", RANGES_DIR):
            return None  # per-node graphs are drawn, never served from anything else
        return StaticTarget("graphs", under)
    return StaticTarget("site", parts)


def graph_target(parts, config):
    """A per-node graph named by ``parts`` (under the graphs dir), or None.

    Only names that map to a valid host, dataset (and instance) and a window
    the config draws: whether the RRD exists is checked by the caller.
    """
    if len(parts) == 3 and parts[0] == "node":
        _, host, file_name = parts
        stem_window = _split_png(file_name)
        if stem_window is None or not is_valid("host", host):
            return None
        stem, window = stem_window
        series = parse_rrd_file_name(f"{stem}.rrd")
        if series is None or window not in config.plot.node_windows:
            return None
        dataset, instance = series
        key = node_graph_path(Path(), host, dataset, instance, window)
        return GraphTarget(GraphJob(str(key), "node", window, dataset, instance, (host,)))
    if len(parts) == 1:
        return _configured_node_graph(parts[0], config)
    return None


def _configured_node_graph(file_name, config):
    """``<name>.node.<host>.<window>.png`` of a ``[graphs.<name>]`` in node mode, or None."""
    stem_window = _split_png(file_name)
    if stem_window is None:
        return None
    stem, window = stem_window
    name, _, rest = stem.partition(".")
    mode, _, host = rest.partition(".")
    graph = config.graphs.get(name)
    if (
        graph is None
        or mode != "node"
        or graph.mode != "node"
        or window not in graph.windows
        or not is_valid("host", host)
        or not HostMatcher(graph.hosts)(host)
    ):
        return None
    key = graph_path(Path(), name, "node", window, host=host)
    return GraphTarget(
        GraphJob(str(key), "node", window, graph.dataset, graph.instance, (host,), name)
    )


def _split_png(file_name):
    """``"system.1h.png"`` -> ``("system", "1h")``; None unless a PNG with a known window."""
    if not file_name.endswith(".png"):
        return None
    stem, _, window = file_name[: -len(".png")].rpartition(".")
    if not stem or window not in WINDOWS:
        return None
    return stem, window


def _content_type(file_name):
    return CONTENT_TYPES.get(os.path.splitext(file_name)[1])


def content_type(file_name):
    """The Content-Type the server sends ``file_name`` with (every routed file has one)."""
    return _content_type(file_name) or "application/octet-stream"


def graph_is_current(
    drawn_at,
    rendered_at,
    newest_update,
    now,
    step,
    window_seconds,
    config_changed_at=0.0,
    range_end=None,
):
    """Whether a PNG may be served as it is, or must be drawn again first.

    ``drawn_at`` is the PNG's mtime: where its data end (the server stamps
    the newest update it read, the plotter its pass's time), None when there
    is no PNG. ``rendered_at`` is when it was written (its ctime).
    ``newest_update`` is the newest update of its RRDs and ``step`` the step
    of the archive its window is drawn from. Rows are labelled by their end,
    so the newest row the files hold ends at ``align(newest_update, step)``
    (never ahead of ``now``: a sample from the future is not drawn yet);
    the PNG lacks it when it ends after ``drawn_at``.

    A custom range (``range_end``: the end of its last row) has rows that
    never move: once its data reached that end when it was drawn, it is final;
    until then a new row redraws it, as a window's does, but passing time
    alone does not (its edges stay where they are).
    """
    if drawn_at is None or config_changed_at > rendered_at:
        return False
    if range_end is not None and align(drawn_at, step) >= range_end:
        return True
    newest_row = align(min(newest_update, now), step)
    if newest_row > drawn_at:
        return False
    if range_end is not None:
        return True
    # No new row: a silent host's graph still slides left as time passes.
    slid = now - rendered_at >= window_seconds * SILENT_REDRAW_FRACTION
    return not (slid and align(now, step) > align(rendered_at, step))
