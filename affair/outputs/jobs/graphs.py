"""A job's graphs: its nodes over exactly its run, from the raw archive, by the plotter.

Not the rolling windows of the RRDs: the grid spans the job's start to its
end (now, while it runs), at the recorder's step for a job of up to 360
steps and at a multiple of it beyond, so a 20-hour job is a few hundred
rows like any graph. Each row holds the mean of the samples in it; counters
(network, disk) become rates between consecutive samples of a node.

Four charts, CPU, memory, network and disk, each with two panels: every
node as a line (an overlay) and the aggregate (the mean CPU over nodes; the
sum of memory and of the rates), drawn by :class:`affair.outputs.plot.render.Renderer`.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from affair.config import Config
from affair.outputs.jobs.metrics import read_samples
from affair.outputs.plot.chart import HOST_PALETTE, PALETTE, Chart, LegendEntry, Line, Panel
from affair.outputs.plot.data import Grid
from affair.outputs.plot.scale import format_value
from affair.storage.jobs import StoredJob
from affair.vocab import WINDOWS

MAX_ROWS = 360
OVERLAY_LEGEND = 40  # node lines named in the legend; past that "and N more"


@dataclass(frozen=True)
class JobGraph:
    kind: str  # file stem: cpu, memory, network, disk
    title: str
    unit: str
    label: str
    rate: bool  # counters: drawn as rates
    aggregate: str  # "average" or "sum" over nodes


GRAPHS = (
    JobGraph("cpu", "CPU", "%", "CPU use", False, "average"),
    JobGraph("memory", "memory", "B", "memory used", False, "sum"),
    JobGraph("network", "network", "B/s", "network in + out", True, "sum"),
    JobGraph("disk", "disk", "B/s", "disk read + write", True, "sum"),
)


def job_grid(start: float, end: float, step: int) -> Grid:
    """Rows of a multiple of ``step`` covering [start, end], at most about MAX_ROWS of them."""
    span = max(end - start, step)
    row = step * max(1, math.ceil(span / (step * MAX_ROWS)))
    first = math.floor(start / row) * row
    count = max(1, math.ceil((end - first) / row))
    return Grid(row, int(first + count * row), count)


def window_for(seconds: float) -> str:
    """The smallest rolling window at least this long: its time-axis ticks suit the run."""
    return next((name for name, length in WINDOWS.items() if length >= seconds), "1y")


def job_rows(job: StoredJob, config: Config, grid: Grid, start: float, end: float):
    """``({kind: hosts x rows array}, hosts)``: each node's row means for every graph."""
    jobs = config.jobs
    hosts = sorted({h for h in job.hosts.values() if h is not None})
    wanted = [*jobs.cpu, jobs.memory, *jobs.network, *jobs.disk]
    cpu_end = len(jobs.cpu)
    network = range(cpu_end + 1, cpu_end + 1 + len(jobs.network))
    disk = range(network.stop, len(wanted))
    shape = (len(hosts), grid.count)
    sums = {g.kind: np.zeros(shape) for g in GRAPHS}
    counts = {g.kind: np.zeros(shape) for g in GRAPHS}
    data_dir = Path(config.recorder.data_dir)
    for index, ts, values in read_samples(data_dir, jobs.dataset, hosts, wanted, start, end):
        order = np.lexsort((ts, index))
        index, ts, values = index[order], ts[order], values[order]
        rows = np.clip(((ts - grid.start) // grid.step).astype(np.int64), 0, grid.count - 1)
        gauges = {
            "cpu": values[:, :cpu_end].sum(axis=1) if cpu_end else np.full(len(ts), np.nan),
            "memory": values[:, cpu_end],
        }
        for kind, column in gauges.items():
            _add(sums[kind], counts[kind], index, rows, column)
        same = np.concatenate(([False], index[1:] == index[:-1]))
        gap = np.concatenate(([np.nan], np.diff(ts)))
        for kind, columns in (("network", network), ("disk", disk)):
            if not len(columns):
                continue
            total = values[:, list(columns)].sum(axis=1)
            step = np.concatenate(([np.nan], np.diff(total)))
            rate = np.where(
                same & (gap > 0) & (step >= 0), step / np.where(gap > 0, gap, 1), np.nan
            )
            _add(sums[kind], counts[kind], index, rows, rate)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = {kind: sums[kind] / counts[kind] for kind in sums}
    return means, hosts


def _add(sums, counts, index, rows, column):
    known = ~np.isnan(column)
    np.add.at(sums, (index[known], rows[known]), column[known])
    np.add.at(counts, (index[known], rows[known]), 1)


def job_charts(job: StoredJob, config: Config, now: float) -> dict[str, Chart]:
    """The job's four charts, by kind."""
    record = job.record
    start = record.start if record.start is not None else now
    end = record.end if record.end is not None else now
    grid = job_grid(start, end, config.recorder.step)
    window = window_for(grid.count * grid.step)
    means, hosts = job_rows(job, config, grid, start, end)
    silent = [h for i, h in enumerate(hosts) if not np.isfinite(means["cpu"][i]).any()]
    unknown = [n for n, h in job.hosts.items() if h is None]
    footnote = ""
    if silent or unknown:
        footnote = "no samples: " + ", ".join((silent + unknown)[:8])
        footnote += " …" if len(silent + unknown) > 8 else ""
    until = "now" if record.end is None else _clock(end)
    nodes = f"{len(job.hosts)} node{'' if len(job.hosts) == 1 else 's'}"
    subtitle = f"{nodes} · {_clock(start)} – {until} UTC · {grid.step}s rows"
    charts = {}
    for graph in GRAPHS:
        stack = means[graph.kind]
        overlay = Panel(graph.unit, f"{graph.label}, per node", compact_legend=True, floor=0)
        for i, host in enumerate(hosts):
            color = HOST_PALETTE[i % len(HOST_PALETTE)]
            overlay.lines.append(Line(stack[i], color))
            if len(overlay.legend) < OVERLAY_LEGEND:
                mean = _mean(stack[i])
                overlay.legend.append(
                    LegendEntry(host, color, values=(format_value(mean, graph.unit),))
                )
        if len(hosts) > len(overlay.legend):
            more = len(hosts) - len(overlay.legend)
            overlay.legend.append(LegendEntry(f"and {more} more", "#ffffff", values=("",)))
        reporting = (~np.isnan(stack)).sum(axis=0)
        combined = np.nansum(stack, axis=0)
        if graph.aggregate == "average":
            combined = combined / np.where(reporting > 0, reporting, 1)
        combined = np.where(reporting > 0, combined, np.nan)  # a row no node reported: a gap
        total = Panel(graph.unit, f"{graph.label}, {graph.aggregate} of nodes", floor=0)
        total.lines.append(Line(combined, PALETTE[0]))
        values = (
            format_value(_last(combined), graph.unit),
            format_value(_known(np.fmin.reduce(combined)), graph.unit),
            format_value(_mean(combined), graph.unit),
            format_value(_known(np.fmax.reduce(combined)), graph.unit),
        )
        total.legend.append(LegendEntry(graph.aggregate, PALETTE[0], values=values))
        for panel in (overlay, total):
            if not any(np.isfinite(line.values).any() for line in panel.lines):
                panel.note = "no samples from its nodes"
        charts[graph.kind] = Chart(
            f"job {record.jobid}: {graph.title}",
            subtitle,
            window,
            grid,
            [overlay, total],
            footnote=footnote,
        )
    return charts


def _mean(values):
    known = values[np.isfinite(values)]
    return float(known.mean()) if len(known) else None


def _last(values):
    known = values[np.isfinite(values)]
    return float(known[-1]) if len(known) else None


def _known(value):
    return None if np.isnan(value) else float(value)


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")
