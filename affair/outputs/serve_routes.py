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

A graph is current (:func:`graph_is_current`) when it shows its archive's
newest row: the server redraws it when it is missing, when a row came in
since, when the config changed, or when a silent host's graph is due a new
row of its window, the plotter's rule (plan.SILENT_REDRAW_FRACTION, now 0).
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from affair.errors import RequestError
from affair.hosts import HostMatcher
from affair.names import is_valid, parse_rrd_file_name
from affair.outputs.graph_paths import graph_path, node_graph_path
from affair.outputs.plot.plan import SILENT_REDRAW_FRACTION, GraphJob
from affair.storage.ladder import align
from affair.vocab import WINDOWS

# Query strings the pages use: ``?v=<version>`` on graphs and assets (a cache buster).
_VERSION = re.compile(r"v=[0-9a-f]{1,40}")
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
    draw (host, dataset, instance, window, configured graph), ``job.key``
    where it goes. A custom time range would be another field here, parsed
    from the query by :func:`route`, with its own cache name.
    """

    job: GraphJob

    @property
    def key(self):
        return self.job.key


def check_query(query):
    """Raise RequestError unless ``query`` is empty or one ``v=<hex>`` cache buster."""
    if query and not _VERSION.fullmatch(query):
        raise RequestError("unknown query string")


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


def route(parts, prefix, config):
    """``parts`` (from :func:`split_path`) -> GraphTarget, StaticTarget or None (not found).

    Static targets are checked for their file type only; whether the file
    exists is the caller's question (a stat under the root it names).
    """
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
        if under[0] == "node":
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
    drawn_at, rendered_at, newest_update, now, step, window_seconds, config_changed_at=0.0
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
    """
    if drawn_at is None or config_changed_at > rendered_at:
        return False
    newest_row = align(min(newest_update, now), step)
    if newest_row > drawn_at:
        return False
    # No new row: a silent host's graph still slides left as time passes.
    slid = now - rendered_at >= window_seconds * SILENT_REDRAW_FRACTION
    return not (slid and align(now, step) > align(rendered_at, step))
