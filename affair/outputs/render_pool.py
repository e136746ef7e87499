"""Graphs drawn on request: a bounded pool of worker processes running the plotter's Drawer.

``affair serve`` answers HTTP from threads; drawing is CPU work (numpy, Agg,
deflate) that would hold the GIL and stall every other request, so it runs
in K worker processes, each with one :class:`~affair.outputs.plot.run.Drawer`
kept for its life (canvases and glyphs are reused, as in a plot pass).

The backlog is ours, not the executor's: at most ``queue_limit`` distinct
graphs are waiting or drawing at once. A request for a graph already on its
way waits for that render instead of queueing a second (so 20 viewers of one
new graph cost one render); a request beyond the limit is told "full" at
once and the server answers with the stale PNG or 503, never a growing
queue. Workers are spawned (not forked: the server is threaded) and started
at once, so the first view does not pay for importing matplotlib.

A worker that dies (librrd crashing on a broken file) breaks the executor;
the requests it held get a failure and the next request gets a fresh pool.
"""

import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from affair.errors import AffairError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What became of a render request."""

    status: str  # "drawn", "joined" (another request's render), "fresh" (drawn meanwhile),
    # "full" (queue at its limit), "failed", "timeout"
    reason: str = ""

    @property
    def ok(self):
        return self.status in ("drawn", "joined", "fresh")


class RenderPool:
    """K processes drawing graphs; at most ``queue_limit`` graphs in flight, one render per graph."""

    def __init__(self, config, data_dir, graphs_dir, workers=2, queue_limit=16, timeout=60.0):
        if workers < 1 or queue_limit < 1:
            raise ValueError("workers and queue_limit must be 1 or more")
        self.config = config
        self.data_dir = Path(data_dir)
        self.graphs_dir = Path(graphs_dir)
        self.workers = workers
        self.queue_limit = queue_limit
        self.timeout = timeout
        # Re-entrant: a future's done-callback runs in the submitting thread if it is done already.
        self._lock = threading.RLock()
        self._pending = {}  # graph key -> Future
        self._executor = None

    def start(self):
        """Spawn the workers now, so the first request does not wait for their imports."""
        with self._lock:
            if self._executor is None:
                self._executor = self._new_executor()
            executor = self._executor
        return [executor.submit(_warm_up) for _ in range(self.workers)]

    def _new_executor(self):
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self.config, self.data_dir, self.graphs_dir),
        )

    @property
    def in_flight(self):
        return len(self._pending)

    def render(self, job, drawn_meanwhile=lambda: False):
        """Draw ``job`` (a GraphJob) unless it is on its way already; wait for it; an Outcome.

        ``drawn_meanwhile()`` is asked under the lock before a new render is
        queued: a request that found the PNG out of date while another's
        render of it was finishing serves that one instead of drawing again.
        """
        with self._lock:
            future = self._pending.get(job.key)
            joined = future is not None
            if future is None:
                if drawn_meanwhile():
                    return Outcome("fresh")
                if len(self._pending) >= self.queue_limit:
                    return Outcome("full")
                try:
                    future = self._submit(job)
                except BrokenProcessPool:
                    self._replace_broken()
                    future = self._submit(job)
                self._pending[job.key] = future
                future.add_done_callback(lambda done, key=job.key: self._forget(key, done))
        try:
            reason = future.result(timeout=self.timeout)
        except FutureTimeout:
            return Outcome("timeout", f"not drawn within {self.timeout:g} s")
        except BrokenProcessPool:
            self._replace_broken()
            return Outcome("failed", "a render worker died")
        if reason:
            return Outcome("failed", reason)
        return Outcome("joined" if joined else "drawn")

    def _submit(self, job):
        if self._executor is None:
            self._executor = self._new_executor()
        return self._executor.submit(_render_in_worker, job)

    def _forget(self, key, done):
        with self._lock:
            if self._pending.get(key) is done:
                del self._pending[key]

    def _replace_broken(self):
        with self._lock:
            broken = self._executor
            if broken is None or not getattr(broken, "_broken", False):
                return  # replaced already by another request
            log.error("a render worker died; starting a new pool")
            self._executor = self._new_executor()
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self):
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


_drawer = None  # the Drawer of this worker process, made by _start_worker


def _start_worker(config, data_dir, graphs_dir):
    global _drawer
    # Ctrl-C reaches the whole process group: the server decides when its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The server logs a failed render's reason (one line); the Drawer's own warning would repeat it.
    logging.getLogger("affair.outputs.plot").setLevel(logging.ERROR)
    from affair.outputs.plot.run import Drawer  # noqa: PLC0415 - matplotlib: only in workers

    _drawer = Drawer(config, data_dir, graphs_dir, time.time())


def _warm_up():
    return os.getpid()


def _render_in_worker(job):
    """Draw ``job`` now; stamp the PNG with where its data end; None or the reason it failed."""
    now = time.time()
    store = _drawer.store
    try:
        newest = max(
            store.last_update(store.path(host, job.dataset, job.instance)) for host in job.hosts
        )
    except (AffairError, OSError) as error:  # StoreError carries librrd's reason and the path
        return str(error)
    # One Drawer per worker keeps its canvases and glyphs; each render is drawn as of now.
    _drawer.now = now
    reason = _drawer.draw(job)
    if reason is None:
        # The Drawer stamps its pass's time; the server compares the data's end (serve_routes).
        stamp = min(newest, now)
        try:
            os.utime(_drawer.out_dir / job.key, (stamp, stamp))
        except OSError as error:
            return f"{job.key}: {error}"
    else:
        reason = reason.removeprefix(f"{job.key}: ")
    return reason
