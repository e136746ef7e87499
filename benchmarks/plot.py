"""Plotter benchmark: per-node graphs of N hosts with affair's matplotlib renderer,
against ``rrdtool graph`` drawing the same graphs in the same run.

    .venv/bin/python benchmarks/plot.py --hosts 100
    .venv/bin/python benchmarks/plot.py --hosts 1000 --workers 2

The data: 3 datasets of 2 variables each (cpu: user/system %, net: in/out
B/s, mem: used/free B) with the default AFFAIR ladder and a week of 10 s
history. A few template RRDs are filled with noisy, run-structured data
(hours of activity, pauses, a daily swell) and copied to every host, so
setting up 1,000 hosts takes seconds, not hours. Windows 1h 6h 1d 1w, so a
host has 12 graphs: 360 rows each, 2 lines at 1 h, 6 (AVERAGE, MAX, MIN) in
the others, a legend of last/min/avg/max, 720 px wide.

Measured:

1. per graph, one process: ``affair plot`` (fetch + chart + draw + PNG +
   atomic write) over a sample, and ``rrdtool graph`` (through the Python
   binding, no process start) over the same graphs with the same lines,
   dashes, legend numbers and size; wall and CPU time, best of 3;
2. a full regeneration (``--all``) of all N x 12 graphs with K workers;
3. routine cron passes: a minute of new data for every host, then
   ``affair plot`` with nothing forced, four times (each draws every 1 h
   and 6 h graph and the quarter of the 1 d graphs whose staggered 4 min
   period began);
4. the issue's own reference graph, on this machine, in this run: "one
   360-point, two-line 600x250 graph" drawn the three ways the issue timed
   it (matplotlib blitting with a fast PNG setting: ~5 ms there; ``rrdtool
   graph``: ~7 ms; a fresh matplotlib figure: ~50 ms). Their ratio to the
   issue's figures says how much slower this machine is than the one the
   targets were set on, so the absolute targets can be read here.

The machine this was written on is shared with other engineers' test runs,
so wall times swing with their load; CPU times (of this process and of the
pool's workers) say what a pass costs on idle cores, and rrdtool, timed in
the same run, is the yardstick that suffers the same.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rrdtool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affair.config import load_config  # noqa: E402
from affair.outputs.plot.chart import PALETTE  # noqa: E402
from affair.outputs.plot.plan import plan_jobs  # noqa: E402
from affair.outputs.plot.run import Drawer, run_plot  # noqa: E402
from affair.storage.rrd_store import RrdStore  # noqa: E402

CONFIG = """
[recorder]
step = 10

[datasets.cpu.variables]
user = { type = "GAUGE", unit = "%", label = "CPU user", min = 0, max = 100 }
system = { type = "GAUGE", unit = "%", label = "CPU system", min = 0, max = 100 }

[datasets.net.variables]
rx = { type = "GAUGE", unit = "B/s", label = "network in", min = 0 }
tx = { type = "GAUGE", unit = "B/s", label = "network out", min = 0 }

[datasets.mem.variables]
used = { type = "GAUGE", unit = "B", label = "memory used", min = 0 }
free = { type = "GAUGE", unit = "B", label = "memory free", min = 0 }

[plot]
node_windows = ["1h", "6h", "1d", "1w"]
"""
DATASETS = {"cpu": ("user", "system"), "net": ("rx", "tx"), "mem": ("used", "free")}
SCALE = {"cpu": 1.0, "net": 1.2e8, "mem": 3.2e10}
WINDOW_SECONDS = {"1h": 3600, "6h": 21600, "1d": 86400, "1w": 604800}
TEMPLATES = 6
LETTER = {"AVERAGE": "A", "MAX": "X", "MIN": "N"}
WEEK = 7 * 86400


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=240, help="graphs timed one by one (each)")
    parser.add_argument("--passes", type=int, default=4, help="routine cron passes")
    parser.add_argument("--keep", help="keep the work directory here (to look at the PNGs)")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="affair-plotbench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(args, work):
    config_path = work / "affair.toml"
    config_path.write_text(CONFIG)
    config = load_config(config_path)
    data = work / "data"
    end = int(time.time()) // 1800 * 1800 - 1800  # on every archive's row boundary up to 30 min
    os.utime(config_path, (end - 3600, end - 3600))  # older than the first pass's "now"
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {args.hosts} hosts")
    # Other work on the machine slows both sides alike; the ratios are what travels.

    started = time.monotonic()
    store = RrdStore(config, data)
    templates = make_templates(RrdStore(config, work / "templates"), end)
    hosts = [f"node{index:04d}" for index in range(args.hosts)]
    for index, host in enumerate(hosts):
        (data / host).mkdir(parents=True)
        for dataset in DATASETS:
            source = templates[dataset][index % TEMPLATES]
            shutil.copyfile(source, data / host / f"{dataset}.rrd")
    print(
        f"setup: {len(hosts) * 3} RRDs with a week of 10 s rows in {time.monotonic() - started:.1f} s"
    )

    jobs = plan_jobs(config, store)
    assert len(jobs) == len(hosts) * 12, len(jobs)
    now = end + 5

    # 1. per graph, one process, the same sample for both
    # Best of 3, the two interleaved: the machine is shared, and a burst of someone
    # else's work should not decide the ratio.
    sample = jobs[:: max(1, len(jobs) // args.sample)][: args.sample]
    reference = reference_timings(work / "reference")  # again after the per-graph runs: best kept
    (ours, ours_cpu), (theirs, theirs_cpu) = best_of(3, config, store, data, work, now, sample)
    print(
        f"per graph, one process, {len(sample)} graphs (best of 3): affair plot "
        f"{ours * 1e3:.1f} ms ({ours_cpu * 1e3:.1f} ms CPU), rrdtool graph {theirs * 1e3:.1f} ms "
        f"({theirs_cpu * 1e3:.1f} ms CPU) -> affair takes {ours_cpu / theirs_cpu:.2f} of "
        f"rrdtool's CPU time"
    )
    per_window = {}
    for window in WINDOW_SECONDS:
        subset = [job for job in sample if job.window == window]
        (ours_w, ours_w_cpu), (theirs_w, theirs_w_cpu) = best_of(
            3, config, store, data, work, now, subset
        )
        per_window[window] = ours_w_cpu * 1e3
        print(
            f"  {window}: affair {ours_w * 1e3:.1f} ms ({ours_w_cpu * 1e3:.1f} CPU), "
            f"rrdtool {theirs_w * 1e3:.1f} ms ({theirs_w_cpu * 1e3:.1f} CPU)"
        )
    again = reference_timings(work / "reference")
    reference = {way: min(reference[way], again[way]) for way in reference}
    print_reference(reference, per_window)

    # 2. full regeneration
    out = work / "graphs"
    cpu = cpu_seconds()
    summary = run_plot(config, data, out, all_graphs=True, workers=args.workers, now=now)
    cpu = cpu_seconds() - cpu
    passes = {"full": (summary.drawn, cpu)}
    print(
        f"full regeneration (--all, {args.workers} workers): {summary.drawn} graphs in "
        f"{summary.seconds:.1f} s ({summary.drawn / summary.seconds:.0f} graphs/s), "
        f"failed {summary.failed}; {cpu:.0f} CPU s, so {cpu / args.workers:.0f} s on "
        f"{args.workers} idle cores; rrdtool graph would need "
        f"{summary.drawn * theirs_cpu / args.workers:.0f} s of them"
    )

    # 3. routine passes, one minute apart, each after a minute of new data
    for minute in range(1, args.passes + 1):
        appended = append_minute(data, hosts, end + 60 * (minute - 1))
        cpu = cpu_seconds()
        summary = run_plot(config, data, out, workers=args.workers, now=end + 60 * minute + 5)
        cpu = cpu_seconds() - cpu
        passes[f"routine {minute}"] = (summary.drawn, cpu)
        print(
            f"routine pass {minute} (+{minute} min, {appended} RRDs updated first): drew "
            f"{summary.drawn}, skipped {summary.skipped} in {summary.seconds:.1f} s; "
            f"{cpu:.0f} CPU s, so {cpu / args.workers:.1f} s on {args.workers} idle cores"
        )
    sizes = [path.stat().st_size for path in out.rglob("*.png")]
    rrd_sizes = [path.stat().st_size for path in (work / "rrdtool").glob("*.png")]
    print(
        f"PNG size: median {np.median(sizes) / 1024:.1f} kB "
        f"(rrdtool graph's: {np.median(rrd_sizes) / 1024:.1f} kB)"
    )
    in_issue_seconds(passes, reference, args.hosts, args.workers)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


# The issue's reference graph and its timings on the machine the targets were set on.
ISSUE_REFERENCE_MS = {"blit": 5.0, "rrdtool": 7.0, "fresh": 50.0}
TARGETS = {"full": 60.0, "routine": 15.0}  # seconds at 1,000 hosts on 2 cores


def print_reference(reference, per_window):
    """The issue's reference graph timed here, and affair's graphs in units of it."""
    factors = {way: reference[way] / ISSUE_REFERENCE_MS[way] for way in reference}
    print(
        "the issue's reference graph (360 points, 2 lines, 600x250), CPU, best of 6: "
        + ", ".join(
            f"{way} {reference[way]:.1f} ms (issue: ~{ISSUE_REFERENCE_MS[way]:.0f} ms, "
            f"{factors[way]:.1f}x)"
            for way in reference
        )
    )
    print(
        "  an affair graph costs, in reference graphs (blit): "
        + ", ".join(f"{w} {cost / reference['blit']:.2f}" for w, cost in per_window.items())
    )


def in_issue_seconds(passes, reference, hosts, workers):
    """Each pass scaled to 1,000 hosts, and to the issue's machine by the blit reference.

    Blitting is what affair's renderer does, so that factor is the one that
    applies; the other two are printed above so a reader can see whether they
    agree. The passes run for minutes: if the load changed since the
    reference was timed, these figures move with it (the per-graph ratios
    above, timed side by side, do not).
    """
    factor = reference["blit"] / ISSUE_REFERENCE_MS["blit"]
    for name, (drawn, cpu) in passes.items():
        target = TARGETS["full" if name == "full" else "routine"]
        at_1000 = cpu * 1000 / hosts / workers  # seconds on `workers` idle cores here
        print(
            f"  {name}: {drawn * 1000 // hosts} graphs at 1,000 hosts = {at_1000:.0f} s on "
            f"{workers} idle cores here, {at_1000 / factor:.0f} s on the issue's machine "
            f"(target {target:.0f} s; {at_1000 / factor / target:.2f} of it)"
        )


def reference_timings(work, repeats=3, count=30):
    """``{"blit", "rrdtool", "fresh": CPU ms per graph}`` for the issue's reference graph."""
    work.mkdir(parents=True, exist_ok=True)
    import io  # noqa: PLC0415

    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    rng = np.random.default_rng(7)
    x = np.arange(360)
    walks = [np.cumsum(rng.normal(size=(2, 360)), axis=1) for _ in range(count)]

    figure, axes = plt.subplots(figsize=(6, 2.5), dpi=100)
    lines = [axes.plot(x, walks[0][k], "-" if k == 0 else "--", animated=True)[0] for k in (0, 1)]
    axes.set_ylim(-60, 60)
    figure.canvas.draw()
    background = figure.canvas.copy_from_bbox(figure.bbox)

    def blit():
        for walk in walks:
            figure.canvas.restore_region(background)
            for line, values in zip(lines, walk, strict=True):
                line.set_ydata(values)
                axes.draw_artist(line)
            pixels = np.asarray(figure.canvas.buffer_rgba())
            Image.fromarray(pixels).save(io.BytesIO(), format="png", compress_level=1)

    def fresh():
        for walk in walks[:10]:
            fig, ax = plt.subplots(figsize=(6, 2.5), dpi=100)
            ax.plot(x, walk[0])
            ax.plot(x, walk[1], "--")
            fig.savefig(io.BytesIO(), format="png")
            plt.close(fig)

    path = work / "reference.rrd"
    start = 1_000_000_000
    rrdtool.create(
        str(path), "--step", "10", "--start", str(start),
        "DS:a:GAUGE:20:U:U", "DS:b:GAUGE:20:U:U", "RRA:AVERAGE:0.5:1:360",
    )  # fmt: skip
    rrdtool.update(
        str(path),
        *(f"{start + 10 * (i + 1)}:{walks[0][0][i]}:{walks[0][1][i]}" for i in range(360)),
    )

    def rrdtool_graph():
        for _ in walks:
            rrdtool.graph(
                str(work / "reference.png"), "--start", str(start), "--end", str(start + 3600),
                "--width", "600", "--height", "250", f"DEF:a={path}:a:AVERAGE",
                f"DEF:b={path}:b:AVERAGE", "LINE1:a#1f77b4", "LINE1:b#ff7f0e::dashes",
            )  # fmt: skip

    timings = {}
    for way, function, graphs in (
        ("blit", blit, count),
        ("rrdtool", rrdtool_graph, count),
        ("fresh", fresh, 10),
    ):
        function()  # warm: fonts, caches
        timings[way] = min(timed(function, graphs)[1] for _ in range(repeats)) * 1e3
    plt.close(figure)
    return timings


def make_templates(store, end):
    """TEMPLATES filled RRDs per dataset: a week of 10 s rows ending at ``end``."""
    times = np.arange(end - WEEK + 10, end + 1, 10)
    templates = {}
    for dataset, variables in DATASETS.items():
        templates[dataset] = []
        for index in range(TEMPLATES):
            rng = np.random.default_rng(hash((dataset, index)) % 2**32)
            # Created through the store, so with the config's ladder and data sources.
            series = store.open_series(f"t{index}", dataset, "", list(variables), int(times[0]))
            columns = [synthetic(times, rng, SCALE[dataset], k) for k in range(len(variables))]
            lines = [
                f"{ts}:" + ":".join(f"{column[i]:.6g}" for column in columns)
                for i, ts in enumerate(times)
            ]
            template = ["--template", ":".join(series.variables)]
            for first in range(0, len(lines), 2000):
                rrdtool.update(str(series.path), *template, *lines[first : first + 2000])
            templates[dataset].append(series.path)
    return templates


def synthetic(times, rng, scale, which):
    """Runs of an hour with 20 min pauses, a daily swell and noise, like a DAQ node."""
    phase = rng.uniform(0, 2 * np.pi)
    daily = 0.5 + 0.5 * np.sin(2 * np.pi * times / 86400 + phase)
    running = (times % 4800) < 3600
    level = np.where(running, 0.55 + 0.3 * daily, 0.08 + 0.04 * daily) * rng.uniform(0.6, 1.0)
    level = level * (0.3 if which else 0.9) + rng.normal(0, 0.03, len(times))
    return np.clip(level, 0, 1) * (scale if scale != 1.0 else 100.0)


def append_minute(data, hosts, after):
    """Six more rows (one minute) for every RRD, as the recorder would write them."""
    count = 0
    for host in hosts:
        for dataset in DATASETS:
            rows = [f"{after + 10 * i}:{0.5 + 0.1 * i}:{0.3}" for i in range(1, 7)]
            rrdtool.update(str(data / host / f"{dataset}.rrd"), *rows)
            count += 1
    return count


def best_of(repeats, config, store, data, work, now, jobs):
    """``((wall, cpu), (wall, cpu))`` per graph for affair and rrdtool, each the best seen."""
    ours = theirs = (float("inf"), float("inf"))
    for _ in range(repeats):
        ours = _least(ours, time_affair(config, data, work / "sample", now, jobs))
        theirs = _least(theirs, time_rrdtool(config, store, work / "rrdtool", now, jobs))
    return ours, theirs


def _least(a, b):
    return tuple(min(x, y) for x, y in zip(a, b, strict=True))


def cpu_seconds():
    """CPU time of this process and its reaped children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(function, count):
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return (time.perf_counter() - wall) / count, (time.process_time() - cpu) / count


def time_affair(config, data, out, now, jobs):
    drawer = Drawer(config, data, out, now)
    drawer.draw(jobs[0])  # glyphs and canvases are made once per process

    def draw():
        failures = drawer.draw_batch(jobs)
        assert not failures, failures[:3]

    return timed(draw, len(jobs))


def time_rrdtool(config, store, out, now, jobs):
    out.mkdir(parents=True, exist_ok=True)
    commands = [rrdtool_command(config, store, out, now, job) for job in jobs]
    rrdtool.graph(*commands[0])

    def draw():
        for command in commands:
            rrdtool.graph(*command)

    return timed(draw, len(jobs))


def rrdtool_command(config, store, out, now, job):
    """``rrdtool graph`` arguments for the graph affair draws for ``job``: same content."""
    host = job.hosts[0]
    path = store.path(host, job.dataset)
    window = WINDOW_SECONDS[job.window]
    step = {"1h": 10, "6h": 60, "1d": 240, "1w": 1800}[job.window]
    end = now // step * step
    cfs = ("AVERAGE",) if job.window == "1h" else ("MIN", "MAX", "AVERAGE")
    unit = config.variable(job.dataset, DATASETS[job.dataset][0]).unit
    arguments = [
        str(out / f"{host}-{job.dataset}-{job.window}.png"),
        "--start",
        str(end - window),
        "--end",
        str(end),
        "--width",
        "644",
        "--height",
        "170",
        "--imgformat",
        "PNG",
        "--title",
        f"{host} · {job.dataset}",
        "--vertical-label",
        unit,
        "--lower-limit",
        "0",
    ]
    styles = {
        "AVERAGE": ("LINE1.5", ""),
        "MAX": ("LINE1", ":dashes=5,3"),
        "MIN": ("LINE1", ":dashes=1,2"),
    }
    for index, variable in enumerate(DATASETS[job.dataset]):
        color = PALETTE[index]
        label = config.variable(job.dataset, variable).title
        for cf in cfs:
            arguments.append(f"DEF:{LETTER[cf]}{index}={path}:{variable}:{cf}")
        for cf in cfs:
            width, dashes = styles[cf]
            legend = label if cf == "AVERAGE" else ""
            arguments.append(f"{width}:{LETTER[cf]}{index}{color}:{legend}{dashes}")
        low = "N" if "MIN" in cfs else "A"
        high = "X" if "MAX" in cfs else "A"
        arguments += [
            f"GPRINT:A{index}:LAST:last %6.2lf%s",
            f"GPRINT:{low}{index}:MIN:min %6.2lf%s",
            f"GPRINT:A{index}:AVERAGE:avg %6.2lf%s",
            f"GPRINT:{high}{index}:MAX:max %6.2lf%s\\n",
        ]
    return arguments


if __name__ == "__main__":
    main()
