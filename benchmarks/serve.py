"""``affair serve`` benchmark: a station of N hosts whose graphs are drawn when someone looks.

    .venv/bin/python benchmarks/serve.py --hosts 1000              # a few minutes
    .venv/bin/python benchmarks/serve.py --hosts 10000             # the issue's station

The data are benchmarks/plot.py's: 3 datasets of 2 variables per host, the
AFFAIR ladder, a week of noisy 10 s rows, copied from a few template RRDs to
every host; 1 % of the hosts are red (their CPU over the rule's line).

Measured, each against a baseline from the same run:

1. a scheduled pass with ``[plot] eager = []`` (aggregates and overlays,
   none here, and every window of the red hosts), then a routine pass a
   minute later; baseline: a pass with ``eager = "all"`` (every per-node
   graph, as before), timed on a 1/``--shard`` shard and scaled up, and
   ``eager = ["1h"]`` the same way;
2. ``affair serve`` (a real process, 2 render workers) with 4 viewers at
   once, each opening host pages of random hosts: a view is the host's 3
   node graphs of the 6 h window requested at once (as a browser does);
   first views (nothing drawn yet) and cached views (the same pages again),
   p50/p95; baseline: the same PNGs read straight from disk;
3. the server's memory (its RSS plus its workers') before and after
   10,000 requests.
"""

import argparse
import dataclasses
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import rrdtool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from plot import CONFIG, DATASETS, TEMPLATES, cpu_seconds, make_templates  # noqa: E402

from affair.config import load_config  # noqa: E402
from affair.outputs.plot.run import run_plot  # noqa: E402
from affair.outputs.site import build_site  # noqa: E402
from affair.storage.rrd_store import RrdStore  # noqa: E402

SERVE_CONFIG = (
    CONFIG
    + """eager = []

[[status.rules]]
variable = "cpu.user"
yellow = 90
red = 95
"""
)
RED_EVERY = 100  # 1 % of the hosts are red
VIEWERS = 4
VIEW_WINDOW = "6h"
TARGETS = {"pass": 15.0, "first view p95": 0.300, "cached view p95": 0.020}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="plot and render processes")
    parser.add_argument("--views", type=int, default=100, help="first views per viewer")
    parser.add_argument("--requests", type=int, default=10_000, help="for the memory check")
    parser.add_argument("--shard", type=int, default=20, help="baseline passes draw 1/N of it")
    parser.add_argument("--keep", help="keep the work directory here")
    parser.add_argument("--server-only", action="store_true", help="skip the plot passes")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="affair-servebench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(args, work):
    config_path = work / "affair.toml"
    config_path.write_text(SERVE_CONFIG)
    os.utime(config_path, (time.time() - 3600,) * 2)
    config = load_config(config_path)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {args.hosts} hosts")
    data, hosts, end = make_station(config, work, args.hosts)
    site = work / "site"
    graphs = site / "graphs"

    # 1. scheduled passes, on the clock of the data (the setup takes minutes; a host
    # silent for 6 steps would be grey). The site pass writes the status.json that
    # says which hosts are not green.
    now = end + 15
    site_pass(config, data, graphs, site, now)
    if not args.server_only:
        passes(args, config, data, hosts, graphs, site, now, work)

    # 2. and 3. the server
    server = ServeProcess(config_path, data, graphs, site, args.workers)
    try:
        measure_views(server, hosts, args.views)
        measure_memory(server, hosts, args.requests)
    finally:
        server.stop()
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


def passes(args, config, data, hosts, graphs, site, now, work):
    pass_seconds = timed_pass(config, data, graphs, args.workers, "eager = []", now + 1)
    timed_pass(config, data, graphs, args.workers, "eager = [] again, nothing new", now + 2)
    append_minute(data, hosts)
    site_pass(config, data, graphs, site, now + 60)
    timed_pass(config, data, graphs, args.workers, "eager = [] a minute later", now + 61)
    for eager in (("1h",), "all"):
        wider = dataclasses.replace(config, plot=dataclasses.replace(config.plot, eager=eager))
        scratch = work / f"graphs-{eager}"
        started, cpu = time.monotonic(), cpu_seconds()
        summary = run_plot(
            wider, data, scratch, shard=(0, args.shard), workers=args.workers, now=now + 62
        )
        wall, cpu = time.monotonic() - started, cpu_seconds() - cpu
        print(
            f"baseline pass eager = {eager!r}, shard 1/{args.shard}: drew {summary.drawn} in "
            f"{wall:.1f} s ({cpu:.0f} CPU s); whole: ~{summary.drawn * args.shard} graphs, "
            f"~{wall * args.shard:.0f} s ({pass_seconds / (wall * args.shard):.3f} of it for eager = [])"
        )
        shutil.rmtree(scratch, ignore_errors=True)


def make_station(config, work, count):
    started = time.monotonic()
    end = int(time.time()) // 10 * 10 - 10
    templates = make_templates(RrdStore(config, work / "templates"), end)
    data = work / "data"
    hosts = [f"node{index:05d}" for index in range(count)]
    for index, host in enumerate(hosts):
        (data / host).mkdir(parents=True)
        for dataset in DATASETS:
            shutil.copyfile(templates[dataset][index % TEMPLATES], data / host / f"{dataset}.rrd")
        if index % RED_EVERY == 0:  # CPU over the red line in its newest row
            rrdtool.update(str(data / host / "cpu.rrd"), f"{end + 10}:99:1")
    print(
        f"setup: {count * 3} RRDs with a week of 10 s rows, 1 host in {RED_EVERY} red, "
        f"in {time.monotonic() - started:.0f} s"
    )
    return data, hosts, end


def append_minute(data, hosts):
    started = time.monotonic()
    for index, host in enumerate(hosts):
        user = 99 if index % RED_EVERY == 0 else 50  # the red hosts stay red
        for dataset in DATASETS:
            path = data / host / f"{dataset}.rrd"
            last = rrdtool.last(str(path))
            rrdtool.update(str(path), *(f"{last + 10 * i}:{user}:1" for i in range(1, 7)))
    print(f"a minute of rows for every RRD in {time.monotonic() - started:.0f} s")


def site_pass(config, data, graphs, site, now):
    started = time.monotonic()
    summary = build_site(config, data, graphs, site, clock=lambda: now)
    print(
        f"site pass (its status.json feeds eager): {summary.describe()}; wall "
        f"{time.monotonic() - started:.1f} s"
    )


def timed_pass(config, data, graphs, workers, what, now):
    started, cpu = time.monotonic(), cpu_seconds()
    summary = run_plot(config, data, graphs, workers=workers, now=now)
    wall, cpu = time.monotonic() - started, cpu_seconds() - cpu
    print(
        f"pass, {what}: {summary.line()}; wall {wall:.1f} s, {cpu:.0f} CPU s "
        f"(target {TARGETS['pass']:.0f} s: {'met' if wall < TARGETS['pass'] else 'NOT met'})"
    )
    return wall


class ServeProcess:
    def __init__(self, config_path, data, graphs, site, workers):
        self.log = Path(site).parent / "serve.log"
        command = [sys.executable, "-m", "affair", "serve", "--config", str(config_path)]
        command += ["--data-dir", str(data), "--graphs", str(graphs), "--site", str(site)]
        command += ["--listen", "127.0.0.1:0", "--workers", str(workers), "--queue", "32"]
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"serving on (http://[\d.:]+/)", self.log.read_text())
            if found:
                self.url = found.group(1)
                self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])
                self._local = threading.local()
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"affair serve did not start: {self.log.read_text()}")
        time.sleep(3)  # the render workers import matplotlib once, at start

    def get(self, path):
        """GET over this thread's keep-alive connection, as a browser keeps its connections."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=60
            )
        connection.request("GET", "/" + path)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, (path, response.status)
        return body

    def rss(self):
        """``(server, workers)`` resident bytes (the workers: the render pool's processes)."""
        process = psutil.Process(self.process.pid)
        workers = sum(p.memory_info().rss for p in process.children(recursive=True))
        return process.memory_info().rss, workers

    def counters(self):
        return json.loads(self.get("_affair/counters"))

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def view_paths(host):
    return [f"graphs/node/{host}/{dataset}.{VIEW_WINDOW}.png" for dataset in DATASETS]


def view(server, pool, host, prefix=""):
    """One host page's graphs, requested at once; seconds until the last arrives."""
    started = time.perf_counter()
    list(pool.map(server.get, (prefix + path for path in view_paths(host))))
    return time.perf_counter() - started


def viewers(server, pages, prefix=""):
    """VIEWERS threads viewing ``pages`` (a list per viewer); all view times."""
    times = []
    lock = threading.Lock()

    def viewer(hosts):
        with ThreadPoolExecutor(len(DATASETS)) as pool:
            for host in hosts:
                seconds = view(server, pool, host, prefix)
                with lock:
                    times.append(seconds)

    threads = [threading.Thread(target=viewer, args=(hosts,)) for hosts in pages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times


def percentile(values, percent):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


def measure_views(server, hosts, views):
    rng = random.Random(16)
    green = [host for index, host in enumerate(hosts) if index % RED_EVERY]  # not drawn eagerly
    chosen = rng.sample(green, VIEWERS * views)
    pages = [chosen[i::VIEWERS] for i in range(VIEWERS)]
    before = server.counters()
    first = viewers(server, pages)
    middle = server.counters()
    cached = viewers(server, pages)
    after = server.counters()
    # baselines: the same PNGs as plain files through the same server, the same way
    # (what HTTP and this client cost), and read straight from disk
    site = Path(server.log).parent / "site"
    for host in chosen:
        for path in view_paths(host):
            copy = site / "static" / path
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(site / path, copy)
    static = viewers(server, pages, prefix="static/")
    disk = []
    for host in chosen:
        started = time.perf_counter()
        for path in view_paths(host):
            (site / path).read_bytes()
        disk.append(time.perf_counter() - started)
    drawn = middle["graphs_drawn"] - before["graphs_drawn"]
    print(
        f"first views, {VIEWERS} viewers at once, {len(first)} host pages of 3 {VIEW_WINDOW} "
        f"graphs: p50 {statistics.median(first) * 1e3:.0f} ms, p95 "
        f"{percentile(first, 95) * 1e3:.0f} ms ({drawn} graphs drawn, "
        f"{middle['busy'] - before['busy']} busy; target p95 "
        f"{TARGETS['first view p95'] * 1e3:.0f} ms: "
        f"{'met' if percentile(first, 95) < TARGETS['first view p95'] else 'NOT met'})"
    )
    print(
        f"cached views, the same pages again: p50 {statistics.median(cached) * 1e3:.1f} ms, p95 "
        f"{percentile(cached, 95) * 1e3:.1f} ms ({after['graphs_current'] - middle['graphs_current']}"
        f" sent from disk, {after['graphs_drawn'] - middle['graphs_drawn']} drawn; target p95 "
        f"{TARGETS['cached view p95'] * 1e3:.0f} ms: "
        f"{'met' if percentile(cached, 95) < TARGETS['cached view p95'] else 'NOT met'})"
    )
    print(
        f"baseline, the same PNGs as plain files through the server: p50 "
        f"{statistics.median(static) * 1e3:.1f} ms, p95 {percentile(static, 95) * 1e3:.1f} ms "
        f"(cached view / plain file: p50 {statistics.median(cached) / statistics.median(static):.2f}x, "
        f"p95 {percentile(cached, 95) / percentile(static, 95):.2f}x); read from disk: p50 "
        f"{statistics.median(disk) * 1e3:.2f} ms, p95 {percentile(disk, 95) * 1e3:.2f} ms"
    )


def measure_memory(server, hosts, requests, checkpoints=4):
    """RSS before and after every quarter of ``requests``: a mix of new and cached graphs."""
    rng = random.Random(7)
    sample = rng.sample(hosts, min(300 * checkpoints, len(hosts)))
    before = server.rss()
    sizes = []
    started = time.monotonic()
    with ThreadPoolExecutor(VIEWERS) as pool:
        for part in range(checkpoints):
            # each quarter: 300 hosts' graphs never asked for before, then cached requests
            fresh = [path for host in sample[part::checkpoints] for path in view_paths(host)]
            asked = [rng.choice(fresh) for _ in range(requests // checkpoints - len(fresh))]
            list(pool.map(server.get, fresh + asked))
            sizes.append(server.rss())
    seconds = time.monotonic() - started
    for name, which in (("server", 0), ("render workers", 1)):
        print(
            f"memory over {requests} requests (4 at once, {seconds:.0f} s; each quarter draws "
            f"{len(fresh)} new graphs): {name} RSS {before[which] / 2**20:.0f} MiB, then "
            + " -> ".join(f"{size[which] / 2**20:.0f}" for size in sizes)
            + f" MiB ({(sizes[-1][which] - sizes[0][which]) / 2**20:+.1f} MiB over the last "
            "three quarters)"
        )


if __name__ == "__main__":
    main()
