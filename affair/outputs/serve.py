"""``affair serve``: the site over HTTP, with per-node graphs drawn when someone looks.

A station of thousands of hosts cannot redraw every host's every graph each
minute, and almost none of them is ever looked at; so (as Munin's and
Ganglia's CGI graphs do) the schedule draws what is needed ahead of time
(``[plot] eager``) and this server draws a per-node graph when it is
requested and missing or out of date, then keeps it on disk under the
plotter's own name (atomically, so plotter and server never trip over each
other), where the next viewer, nginx or the plotter finds it.

Read-only and narrow on purpose: it sends files under the site and graphs
directories and draws only names that map to an existing host, dataset and
window (:mod:`affair.outputs.serve_routes`); everything else is 404, a URL it
cannot read is 400, and nothing outside those directories is ever opened.
Drawing runs in a bounded pool of processes (:mod:`affair.outputs.render_pool`):
when it is full a request gets the stale PNG if there is one, else 503 with
Retry-After. A render that fails is a 500 with its reason logged in one line.

Zoom and HiDPI: a per-node graph's ``?from=<s>&to=<s>`` is drawn for that
range and ``?scale=2`` at twice the pixels (:mod:`affair.outputs.serve_routes`),
on request only, so a plot pass costs what it did. Ranged PNGs live in one
folder, at most ``range_cache`` of them: the least recently viewed go first
(:func:`sweep_ranges`). ``GET /_affair/features`` says so to the pages (their
script shows the zoom and asks for 2x graphs only when it answers), with the
ranges the archives can show.

The WSGI server is waitress (threads for requests, one event loop for the
sockets). ``GET /_affair/counters`` answers the server's own counters as JSON.
"""

import contextlib
import dataclasses
import email.utils
import json
import logging
import os
import stat
import threading
import time
from pathlib import Path

from affair.errors import AffairError, RequestError, ServeError
from affair.outputs.graph_paths import RANGES_DIR
from affair.outputs.plot.chart import graph_grid
from affair.outputs.render_pool import RenderPool
from affair.outputs.serve_routes import (
    SCALES,
    GraphTarget,
    RangeLimits,
    check_query,
    content_type,
    graph_is_current,
    graphs_prefix,
    route,
    split_path,
)
from affair.outputs.site import graphs_dir_of
from affair.storage.ladder import archive_for_window
from affair.storage.rrd_store import RrdStore
from affair.vocab import WINDOWS

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8080"
COUNTERS_PATH = ("_affair", "counters")
FEATURES_PATH = ("_affair", "features")
RANGE_CACHE = 256  # ranged PNGs kept on disk (--range-cache), the least recently viewed go first
RETRY_AFTER = 5  # seconds a client is asked to wait when the render queue is full
COUNTERS = (
    "requests",
    "files_served",  # pages, assets, aggregate and overlay graphs, sent as they are
    "graphs_current",  # per-node graphs sent from disk without drawing
    "graphs_drawn",  # renders this server started and that succeeded
    "graphs_joined",  # requests that waited for a render another request started
    "graphs_stale_served",  # queue full: the out-of-date PNG sent instead
    "busy",  # 503: queue full and no PNG to fall back on, or a render too slow
    "render_failed",  # 500
    "not_modified",  # 304: the client's copy is current (counted besides the above)
    "not_found",
    "bad_request",
)
STATUS_LINES = {
    200: "200 OK",
    304: "304 Not Modified",
    400: "400 Bad Request",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


def parse_listen(text):
    """``"127.0.0.1:8080"`` or ``"[::1]:8080"`` -> ``(host, port)``; ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen must be HOST:PORT like 127.0.0.1:8080, got {text!r}")
    return host, int(port)


class SiteServer:
    """The WSGI application: routes a request, sends a file or draws a graph first."""

    def __init__(
        self, config, data_dir, graphs_dir, site_dir, pool, clock=time.time, range_cache=RANGE_CACHE
    ):
        self.config = config
        self.store = RrdStore(config, data_dir)
        self.graphs_dir = Path(graphs_dir)
        self.site_dir = Path(site_dir)
        self.roots = {"site": self.site_dir.resolve(), "graphs": self.graphs_dir.resolve()}
        self.prefix = graphs_prefix(self.site_dir, self.graphs_dir)
        self.pool = pool
        self.clock = clock
        self.config_changed_at = _stat(config.path).st_mtime if _stat(config.path) else 0.0
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._counters_lock = threading.Lock()
        self.range_cache = range_cache
        self._sweep_lock = threading.Lock()

    def count(self, name):
        with self._counters_lock:
            self.counters[name] += 1

    def __call__(self, environ, start_response):
        self.count("requests")
        status, headers, body = self.respond(environ)
        if status == 200 and _unchanged_for(environ, headers):
            # A page reloads every [site] refresh seconds and asks again for each graph
            # (Cache-Control: no-cache): the ones not redrawn since cost a header, not a PNG.
            self.count("not_modified")
            status, body = 304, b""
            headers = [(name, value) for name, value in headers if name != "Content-Length"]
        start_response(STATUS_LINES[status], headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def respond(self, environ):
        """``(status, headers, body)`` for one request."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _text(405, "only GET and HEAD\n", [("Allow", "GET, HEAD")])
        raw = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        path, _, query = raw.partition("?")
        limits = RangeLimits.of(self.config, self.clock())
        try:
            asked = check_query(query, limits)
            parts = split_path(path)
            target = route(parts, self.prefix, self.config, asked)
        except RequestError as error:
            self.count("bad_request")
            return _text(400, f"{error}\n")
        if parts == COUNTERS_PATH:
            with self._counters_lock:
                document = {**self.counters, "renders_in_flight": self.pool.in_flight}
            return _json(document)
        if parts == FEATURES_PATH:
            return _json({"ranges": dataclasses.asdict(limits), "scales": list(SCALES)})
        if target is None:
            return self._not_found()
        if isinstance(target, GraphTarget):
            return self.graph(target)
        response = self._file(self.roots[target.root].joinpath(*target.parts))
        if response[0] == 200:
            self.count("files_served")
        return response

    # --- graphs ---

    def graph(self, target):
        job = target.job
        try:
            inputs = [self.store.path(host, job.dataset, job.instance) for host in job.hosts]
        except AffairError:
            return self._not_found()
        input_stats = [_stat(path) for path in inputs]
        if not all(s and stat.S_ISREG(s.st_mode) for s in input_stats):
            return self._not_found()  # no such host, dataset or instance
        png = self.graphs_dir / job.key
        before = _stat(png)
        if before is not None and self._current(job, before, inputs):
            self.count("graphs_current")
            if job.ranged:
                _viewed(png, before)
            return self._file(png)

        def drawn_meanwhile():
            now = _stat(png)
            return now is not None and (before is None or now.st_ctime_ns != before.st_ctime_ns)

        outcome = self.pool.render(job, drawn_meanwhile)
        if outcome.ok:
            # "fresh": drawn by another request between our look and our turn: joined it too.
            self.count("graphs_drawn" if outcome.status == "drawn" else "graphs_joined")
            if job.ranged:
                _viewed(png, _stat(png))
                response = self._file(png)  # read before a sweep may take it
                self._sweep_ranges()
                return response
            return self._file(png)
        if outcome.status == "failed":
            self.count("render_failed")
            log.warning("graph %s: %s", job.key, outcome.reason)
            # The reason names files on the station: for the log, not for every client.
            return _text(500, "the graph could not be drawn; the server's log says why\n")
        if before is not None:  # full or too slow: the old graph beats none
            self.count("graphs_stale_served")
            return self._file(png)
        self.count("busy")
        return _text(
            503, "busy drawing graphs; retry shortly\n", [("Retry-After", str(RETRY_AFTER))]
        )

    def _current(self, job, png_stat, inputs):
        """Whether the PNG shows its archive's newest row (serve_routes.graph_is_current)."""
        window_seconds = WINDOWS[job.window]
        # The files' own newest update (a header read, tens of microseconds), not their
        # mtimes: librrd writes through mmap, and a file's mtime has a clock tick's grain.
        try:
            newest = max(self.store.last_update(path) for path in inputs)
        except AffairError:
            return False  # let the render say what is wrong
        now = self.clock()
        range_end = None
        if job.ranged:
            archive, grid = graph_grid(job, self.config, now)
            step, range_end = archive.step, grid.end
        else:
            step = archive_for_window(self.config.archives, window_seconds).step
        return graph_is_current(
            png_stat.st_mtime,
            png_stat.st_ctime,  # when it was written (its mtime says where its data end)
            newest,
            now,
            step,
            window_seconds,
            self.config_changed_at,
            range_end,
        )

    def _sweep_ranges(self):
        """Keep at most ``range_cache`` ranged PNGs; one sweep at a time, the others skip it."""
        if not self._sweep_lock.acquire(blocking=False):
            return
        try:
            removed = sweep_ranges(self.graphs_dir / RANGES_DIR, self.range_cache)
        finally:
            self._sweep_lock.release()
        if removed:
            log.debug("removed %d ranged graphs viewed least recently", removed)

    # --- files ---

    def _file(self, path):
        """200 with the file's bytes, if it is a regular file inside one of our roots; else 404."""
        real = os.path.realpath(path)
        if not any(real.startswith(str(root) + os.sep) for root in self.roots.values()):
            return self._not_found()  # a symlink out of the served directories
        try:
            with open(real, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode):
                    return self._not_found()
                body = handle.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return self._not_found()
        except OSError as error:
            log.warning("cannot read %s: %s", path, error)
            return _text(500, "cannot read the file\n")
        headers = [
            ("Content-Type", content_type(path.name)),
            ("Content-Length", str(len(body))),
            # Graphs change under the same name: a browser asks again (pages version their links).
            ("Cache-Control", "no-cache"),
            ("Last-Modified", email.utils.formatdate(info.st_mtime, usegmt=True)),
        ]
        return 200, headers, body

    def _not_found(self):
        self.count("not_found")
        return _text(404, "not found\n")


def sweep_ranges(directory, keep):
    """Remove all but the ``keep`` ranged PNGs in ``directory`` viewed last; how many went.

    Viewing one sets its access time (:func:`_viewed`; its modification time
    says where its data end, the freshness rule's), so this is an LRU.
    Another process's temporary files are not ours to touch.
    """
    try:
        entries = [entry for entry in os.scandir(directory) if entry.name.endswith(".png")]
    except FileNotFoundError:
        return 0
    if len(entries) <= keep:
        return 0
    viewed = []
    for entry in entries:
        try:
            viewed.append((entry.stat().st_atime_ns, entry.path))
        except FileNotFoundError:
            continue
    viewed.sort()
    removed = 0
    for _, path in viewed[: max(0, len(viewed) - keep)]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed += 1
    return removed


def _viewed(path, info):
    """Mark a ranged PNG as just viewed (its atime), keeping its mtime (where its data end).

    Its ctime moves too, which the freshness rule reads as "written" only for
    a config change (fixed for the server's life, checked before this) and for
    a window's slide (a range has none).
    """
    if info is not None:
        with contextlib.suppress(OSError):
            os.utime(path, ns=(time.time_ns(), info.st_mtime_ns))


def _json(document):
    return 200, [("Content-Type", "application/json")], json.dumps(document).encode()


def _unchanged_for(environ, headers):
    """Whether the client's copy is this one: it sends back the Last-Modified it was given."""
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    return since is not None and ("Last-Modified", since) in headers


def _text(status, message, headers=()):
    body = message.encode()
    return status, [("Content-Type", "text/plain; charset=utf-8"), *headers], body


def _stat(path):
    try:
        return os.stat(path)
    except (OSError, ValueError, TypeError):
        return None


def run_serve(
    config,
    data_dir=None,
    graphs_dir=None,
    site_dir=None,
    listen=DEFAULT_LISTEN,
    workers=2,
    queue_limit=16,
    threads=8,
    stop=None,
    ready=None,
    range_cache=RANGE_CACHE,
):
    """``affair serve``: serve until ``stop`` is set; ``ready(url)`` is called once listening."""
    import waitress  # noqa: PLC0415 - only this command needs it
    from waitress import wasyncore  # noqa: PLC0415

    try:
        host, port = parse_listen(listen)
    except ValueError as error:
        raise ServeError(str(error)) from None
    data_dir = Path(data_dir or config.recorder.data_dir)
    graphs_dir = Path(graphs_dir or graphs_dir_of(config))
    site_dir = Path(site_dir or config.site.out_dir)
    if not site_dir.is_dir():
        raise ServeError(f"site directory {site_dir} does not exist (run `affair site` first)")
    graphs_dir.mkdir(parents=True, exist_ok=True)
    stop = stop or threading.Event()
    pool = RenderPool(config, data_dir, graphs_dir, workers=workers, queue_limit=queue_limit)
    app = SiteServer(config, data_dir, graphs_dir, site_dir, pool, range_cache=range_cache)
    socket_map = {}
    try:
        server = waitress.create_server(
            app, map=socket_map, host=host, port=port, threads=threads, ident="affair"
        )
    except OSError as error:
        raise ServeError(f"cannot listen on {listen}: {error}") from None
    pool.start()
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{server.effective_port}/"
    log.info(
        "serving %s (graphs %s) on %s: %d render workers, at most %d graphs queued",
        site_dir,
        graphs_dir,
        url,
        workers,
        queue_limit,
    )
    if ready:
        ready(url)
    try:
        # Our own loop over waitress's sockets, so a signal's Event stops it between polls.
        while not stop.is_set():
            wasyncore.loop(timeout=0.5, map=socket_map, use_poll=True, count=1)
    finally:
        server.task_dispatcher.shutdown()
        wasyncore.close_all(socket_map)
        pool.close()
        log.info("stopped: %s", ", ".join(f"{k} {v}" for k, v in app.counters.items()))
