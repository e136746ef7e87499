"""One plotting pass: plan, keep this shard's due graphs, draw them over K processes.

Made for cron: every pass is independent (the PNGs' modification times are
the only state, so passes on several machines sharing the directories
cooperate), a failed graph does not stop the others, and the summary says
what happened in one line.
"""

import json
import logging
import multiprocessing
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from affair.atomic import write_atomic
from affair.config.graphs import EAGER_ALL
from affair.errors import AffairError, PlotError
from affair.outputs.plot.chart import build_chart
from affair.outputs.plot.plan import EagerFilter, Staleness, in_shard, plan_jobs
from affair.outputs.status import collect
from affair.storage.rrd_store import RrdStore

log = logging.getLogger("affair.outputs.plot")

_ERRORS_KEPT = 5
# A status.json older than this (or two site passes) is not trusted for [plot] eager.
STATUS_FRESH_SECONDS = 120
_BATCH = 32  # jobs per message to a worker: neighbours share a shape, so a canvas is reused


@dataclass(frozen=True)
class PlotSummary:
    drawn: int
    skipped: int
    seconds: float
    failed: int = 0
    errors: tuple = ()  # the first few failures, "graph: reason"
    on_request: int = 0  # per-node graphs [plot] eager leaves to `affair serve`

    def line(self):
        text = f"drew {self.drawn} graphs, skipped {self.skipped} up to date"
        if self.on_request:
            text += f", left {self.on_request} to draw on request"
        if self.failed:
            text += f", {self.failed} failed"
        return f"{text} in {self.seconds:.1f} s"


def run_plot(
    config,
    data_dir=None,
    out_dir=None,
    all_graphs=False,
    shard=(0, 1),
    workers=None,
    now=None,
    status_file=None,
):
    """Draw this shard's graphs that are due (all of them with ``all_graphs``).

    ``data_dir`` and ``out_dir`` default to ``[recorder] data_dir`` and
    ``[plot] out_dir``; ``workers`` to ``[plot] workers`` (1 unless set);
    ``status_file`` (the site's status.json, default in ``[site] out_dir``)
    names the hosts that are not green when ``[plot] eager`` is not "all";
    ``now`` (seconds since the epoch) is injectable for tests. Raises
    PlotError when the pass cannot start (no data directory, a bad shard);
    a graph that fails is counted in the summary and the pass goes on.
    """
    started = time.monotonic()
    now = time.time() if now is None else float(now)
    status_file = status_file or Path(config.site.out_dir) / "status.json"
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise PlotError(f"shard {index}/{count}: need 0 <= i < N")
    workers = config.plot.workers if workers is None else workers
    if workers < 1:
        raise PlotError(f"workers must be 1 or more, got {workers}")
    store = RrdStore(config, data_dir)
    if not store.data_dir.is_dir():
        raise PlotError(f"data directory {store.data_dir} does not exist")
    out = Path(out_dir or config.plot.out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PlotError(f"cannot create the output directory {out}: {error}") from None

    keep = None
    if not all_graphs and config.plot.eager != EAGER_ALL:
        problems = problem_hosts(config, store.data_dir, now, status_file)
        keep = EagerFilter(config.plot.eager, problems)
    jobs = [job for job in plan_jobs(config, store, keep) if in_shard(job.key, index, count)]
    if all_graphs:
        due = jobs
    else:
        stale = Staleness(config, store, out, now)
        due = [job for job in jobs if stale(job)]
    failures = _execute(due, config, store.data_dir, out, now, workers)
    return PlotSummary(
        drawn=len(due) - len(failures),
        skipped=len(jobs) - len(due),
        seconds=time.monotonic() - started,
        failed=len(failures),
        errors=tuple(failures[:_ERRORS_KEPT]),
        on_request=keep.left if keep else 0,
    )


def problem_hosts(config, data_dir, now, status_file=None):
    """Hosts that are not green: ``[plot] eager`` draws all their windows.

    Read from the site's status.json when it is recent: the site pass reads
    every host's newest rows every ``[schedule] site`` seconds anyway, and
    doing it again here would be most of an eager pass at 10,000 hosts
    (benchmarks/RESULTS.md). A host that turned red since is drawn in full
    by the first pass after the next site pass. Otherwise read them now.
    """
    fresh_for = max(STATUS_FRESH_SECONDS, 2 * config.schedule.site)
    try:
        document = json.loads(Path(status_file).read_text())
        if now - document["built"] <= fresh_for:
            return {h for h, info in document["hosts"].items() if info["colour"] != "green"}
    except (OSError, TypeError, ValueError, KeyError, AttributeError):
        pass  # none, unreadable or from another layout: read the RRDs
    return {status.host for status in collect(config, data_dir, now) if status.colour != "green"}


class Drawer:
    """Draws jobs to their PNGs; one per process, so canvases and glyphs are reused."""

    def __init__(self, config, data_dir, out_dir, now):
        self.config = config
        self.store = RrdStore(config, data_dir)
        self.out_dir = Path(out_dir)
        self.now = now
        # Imported here: a pass with nothing due never loads matplotlib, a large part of a
        # short cron run (see benchmarks/RESULTS.md).
        from affair.outputs.plot.render import Renderer  # noqa: PLC0415

        self._renderer_class = Renderer
        self.renderer = Renderer(width=config.plot.width)
        self._scaled = {1: self.renderer}  # a HiDPI one is made when affair serve asks for one

    def renderer_for(self, scale):
        if scale not in self._scaled:
            self._scaled[scale] = self._renderer_class(width=self.config.plot.width, scale=scale)
        return self._scaled[scale]

    def draw(self, job):
        """Draw one graph; return None, or the reason it failed."""
        try:
            chart = build_chart(job, self.config, self.store, self.now)
            png = self.renderer_for(job.scale).png(chart)
            # Stamped with the time its data end, which the refresh policy compares.
            write_atomic(self.out_dir / job.key, png, mtime=self.now)
        except (AffairError, OSError) as error:
            log.warning("graph %s: %s", job.key, error)
            return f"{job.key}: {error}"
        except Exception as error:  # a bug must not cost the other graphs their turn
            log.exception("graph %s failed", job.key)
            return f"{job.key}: {type(error).__name__}: {error}"
        return None

    def draw_batch(self, jobs):
        return [reason for reason in map(self.draw, jobs) if reason]


def _execute(jobs, config, data_dir, out_dir, now, workers):
    if not jobs:
        return []
    if workers == 1 or len(jobs) < 2 * _BATCH:
        return Drawer(config, data_dir, out_dir, now).draw_batch(jobs)
    batches = [jobs[start : start + _BATCH] for start in range(0, len(jobs), _BATCH)]
    # fork is cheap (matplotlib is already imported) but unsafe in a threaded
    # process (the site's scheduler calls us from a thread): forkserver there.
    method = "fork" if threading.active_count() == 1 else "forkserver"
    context = multiprocessing.get_context(method)
    failures = []
    with context.Pool(
        min(workers, len(batches)),
        initializer=_start_worker,
        initargs=(config, data_dir, out_dir, now),
    ) as pool:
        for reasons in pool.imap_unordered(_draw_in_worker, batches):
            failures.extend(reasons)
    return failures


_worker_drawer = None  # set in each pool process by _start_worker


def _start_worker(config, data_dir, out_dir, now):
    global _worker_drawer
    _worker_drawer = Drawer(config, data_dir, out_dir, now)


def _draw_in_worker(jobs):
    return _worker_drawer.draw_batch(jobs)
