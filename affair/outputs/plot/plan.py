"""Which graphs exist, which are due, and which belong to this shard. No drawing here.

Every graph is a :class:`GraphJob` named by its PNG's path under the output
directory (from :mod:`affair.outputs.graph_paths`, the contract with the site). Jobs:

* a default per-node graph for every (host, dataset, instance) found in the
  data directory and every window of ``[plot] node_windows``: no config, so
  a new host, dataset or variable shows up by itself;
* each ``[graphs.<name>]`` for each of its windows: once per matching host
  in ``node`` mode, once in all in ``aggregate`` and ``overlay`` mode.

A graph is due (:func:`is_stale`) when its window moved on by at least one
row of the archive it is drawn from, new data or not: the 1 h graph every
10 s step, the 1 year graph once a day. A silent host's graph thus shows its
gap growing up to now, and its "to HH:MM" is when it was drawn, not when the
host stopped. ``[plot] refresh`` can slow a window down further.

Each graph's period (if over a minute) starts at its own offset (a hash of its name), so the
1 d graphs of 1,000 hosts are not all due on the same minute: a cron pass
every minute draws a quarter of them each time instead of all of them every
fourth pass, and no pass is much longer than another. A graph is still
redrawn once per period, so it is never more than one period behind (and
the spread is at most 15 min, so the 1 y graph shows yesterday by 00:15).
"""

import contextlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from affair.errors import AffairError
from affair.hosts import HostMatcher
from affair.names import is_valid
from affair.outputs.graph_paths import graph_path, node_graph_path
from affair.storage.ladder import archive_for_window
from affair.vocab import WINDOWS

# How far a silent host's graph must slide before it is redrawn, as a fraction of its
# width: 0, it is redrawn at the next row of its window like any other (is_stale);
# affair serve reads the same rule (serve_routes.graph_is_current).
SILENT_REDRAW_FRACTION = 0.0
# Graphs of one window fall due spread over their period, at most this long (see is_stale).
STAGGER_SECONDS = 900


@dataclass(frozen=True)
class GraphJob:
    """One PNG to draw."""

    key: str  # the PNG's path relative to the output directory; shards hash it
    mode: str  # "node", "aggregate" or "overlay"
    window: str
    dataset: str
    instance: str
    hosts: tuple  # exactly one for a node graph
    graph: str = ""  # the [graphs.<name>] it comes from; "" for a default per-node graph
    # affair serve's zoom: the custom range drawn instead of the window (seconds since the
    # epoch; 0, 0: the window), and 2 for twice the pixels (HiDPI screens).
    start: int = 0
    end: int = 0
    scale: int = 1

    @property
    def ranged(self):
        return self.end > self.start


def select_hosts(patterns, hosts):
    """Hosts matching any pattern, minus those matching a ``!pattern``, in ``hosts`` order.

    Patterns are shell globs (``gdc*``, ``ldc0[1-4]``) or plain names; only
    ``!patterns`` means every host but those (the rules: :mod:`affair.hosts`).
    """
    return HostMatcher(patterns).select(hosts)


def plan_jobs(config, store, keep=None):
    """Every graph of the config and the data directory, in an order that keeps shapes together.

    ``keep(host, window)``, when given, decides whether a per-node graph is
    planned at all (an :class:`EagerFilter`).
    """
    series = {
        host: store.series(host) for host in store.hosts() if is_valid("host", host)
    }  # host -> [(dataset, instance), ...]
    jobs = []
    for host, held in series.items():
        for dataset, instance in held:
            for window in config.plot.node_windows:
                if keep is not None and not keep(host, window):
                    continue
                key = node_graph_path(Path(), host, dataset, instance, window)
                jobs.append(GraphJob(str(key), "node", window, dataset, instance, (host,)))
    for graph in config.graphs.values():
        wanted = (graph.dataset, graph.instance)
        hosts = [host for host in select_hosts(graph.hosts, series) if wanted in series[host]]
        for window in graph.windows:
            if graph.mode == "node":
                for host in hosts:
                    if keep is not None and not keep(host, window):
                        continue
                    key = graph_path(Path(), graph.name, "node", window, host=host)
                    jobs.append(
                        GraphJob(
                            str(key),
                            "node",
                            window,
                            graph.dataset,
                            graph.instance,
                            (host,),
                            graph.name,
                        )
                    )
            else:
                key = graph_path(Path(), graph.name, graph.mode, window)
                jobs.append(
                    GraphJob(
                        str(key),
                        graph.mode,
                        window,
                        graph.dataset,
                        graph.instance,
                        tuple(hosts),
                        graph.name,
                    )
                )
    jobs.sort(key=lambda job: (job.graph, job.dataset, job.instance, job.window, job.key))
    return jobs


class EagerFilter:
    """Which per-node graphs a pass draws ahead of time under ``[plot] eager``.

    ``eager`` is "all" (every graph) or the windows drawn for every host; the
    per-node graphs of other windows are drawn only for ``problem_hosts``
    (those not green: the red host's page is ready when someone is called
    at 3 a.m.) and otherwise left to ``affair serve``, which draws them
    under the same names when someone looks (``left`` counts them).
    Aggregates and overlays read every host's files, too dear to draw while
    a viewer waits: always drawn. Asked before a job is made, since at
    10,000 hosts most jobs are not.
    """

    def __init__(self, eager, problem_hosts):
        self.eager = eager
        self.problem_hosts = problem_hosts
        self.left = 0

    def __call__(self, host, window):
        if self.eager == "all" or window in self.eager or host in self.problem_hosts:
            return True
        self.left += 1
        return False


def eager_jobs(jobs, eager, problem_hosts):
    """The ``jobs`` an :class:`EagerFilter` keeps (plan_jobs asks it before making them)."""
    keep = EagerFilter(eager, problem_hosts)
    return [job for job in jobs if job.mode != "node" or keep(job.hosts[0], job.window)]


def in_shard(key, index, count):
    """Whether the graph ``key`` is shard ``index``'s of ``count``: a stable hash, not a position.

    Machines sharing the data directory may list it a moment apart; hashing
    the name gives every graph one owner whatever each machine sees.
    """
    return zlib.crc32(key.encode()) % count == index


def parse_shard(text):
    """``"1/4"`` -> ``(1, 4)``; raises ValueError unless 0 <= i < N."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must be i/N like 0/2, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {text!r}: need 0 <= i < N")
    return index, count


def refresh_period(config, window):
    """Seconds between redraws of a ``window`` graph: its archive's step unless configured."""
    configured = config.plot.refresh.get(window)
    if configured:
        return configured
    return archive_for_window(config.archives, WINDOWS[window]).step


def is_stale(drawn_at, now, period, data_changed_at, config_changed_at, window_seconds, offset=0):
    """Whether a graph drawn with data up to ``drawn_at`` (None: never) must be redrawn at ``now``.

    It must when its config changed since, or when a new row is due
    (``now`` is in a later ``period`` than ``drawn_at``, periods starting
    ``offset`` seconds after multiples of ``period``), whether or not its data
    changed (``data_changed_at``, ``window_seconds``): a graph that waited for
    new data froze at a dead host's last row and hid the silence an operator
    needs to see (a 1 h graph that ended at 04:05 at 04:09 said "to 04:05").
    """
    if drawn_at is None or config_changed_at > drawn_at:
        return True
    return (now - offset) // period > (drawn_at - offset) // period


def period_offset(key, period):
    """Where in its refresh period the graph ``key`` falls due: spread evenly, stable per name.

    Only periods longer than a minute (cron's finest interval) are spread:
    shorter ones are due at every pass anyway, and stay on their rows'
    boundaries. The spread is at most STAGGER_SECONDS, so a long period's
    graphs still follow its boundary closely (the 1 y graph shows yesterday
    soon after midnight).
    """
    if period <= 60:
        return 0
    return zlib.crc32(key.encode()) % int(min(period, STAGGER_SECONDS))


class Staleness:
    """:func:`is_stale` for jobs, with each file stat'ed at most once per pass."""

    def __init__(self, config, store, out_dir, now):
        self.config = config
        self.store = store
        self.out_dir = Path(out_dir)
        self.now = now
        self.config_changed_at = _mtime(config.path) or 0.0
        self._mtimes = {}

    def __call__(self, job):
        drawn_at = _mtime(self.out_dir / job.key)
        inputs = (self.store.path(host, job.dataset, job.instance) for host in job.hosts)
        data_changed_at = max((self._input_mtime(path) for path in inputs), default=0.0)
        period = refresh_period(self.config, job.window)
        return is_stale(
            drawn_at,
            self.now,
            period,
            data_changed_at,
            self.config_changed_at,
            WINDOWS[job.window],
            offset=period_offset(job.key, period),
        )

    def _input_mtime(self, path):
        if path not in self._mtimes:
            changed = _mtime(path) or 0.0
            if self.store.daemon:
                # rrdcached writes the file minutes after the rows arrive: its newest
                # row (the daemon's LAST, no flush) says when the data moved.
                with contextlib.suppress(AffairError):
                    changed = max(changed, self.store.last_update(path))
            self._mtimes[path] = changed
        return self._mtimes[path]


def _mtime(path):
    try:
        return os.stat(path).st_mtime
    except (OSError, ValueError):
        return None
