"""Per-job figures from the raw archive, at full resolution, and the flags they raise.

The daily tools compute these from 5-minute averages the morning after;
here they come from every 10 s sample of the job's nodes over exactly its
run, while it runs (provisional) and once more when it has ended (final).

Streaming keeps memory flat in the job's size: the journal is read a chunk
at a time (:mod:`affair.storage.journal_reader`) and folded into a few
numbers per node (:class:`NodeAccumulator`); a 64-node day is never held.

Every figure carries either a value or the reason it has none: a job
shorter than ``[jobs] short_steps`` steps, a node that sent no samples in
the run, a node affair has never heard of, a dataset variable missing.

Counters (network and disk bytes) are summed over their increases between
consecutive samples of a node; a decrease is a counter reset (a reboot) and
adds nothing, as rrdtool's DERIVE with min 0 treats it.
"""

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affair.config import Config, JobsConfig
from affair.storage.jobs import StoredJob
from affair.storage.journal_reader import DayReader, day_spans, decode_values

# Samples may arrive this many steps after a job ends (a collector's buffer);
# metrics become final only after that.
FINAL_AFTER_STEPS = 3

FLAG_TEXT = {
    "idle": "idle nodes",
    "imbalanced": "imbalanced",
    "swapping": "swapping",
    "short": "short",
    "unknown_nodes": "unknown nodes",
}


@dataclass
class NodeAccumulator:
    """What the job's metrics need of one node, folded sample by sample (chunk by chunk)."""

    cpu_sum: float = 0.0
    cpu_count: int = 0
    idle_count: int = 0
    samples: int = 0
    mem_max: float = -math.inf
    swap_max: float = -math.inf
    counter_last: dict[str, float] = field(default_factory=dict)
    counter_sum: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Columns:
    """Where the metric variables are in the values matrix."""

    cpu: Sequence[int]
    memory: int
    swap: int
    network: Sequence[int]
    disk: Sequence[int]


def fold(
    nodes: list[NodeAccumulator],
    node_index: np.ndarray,
    ts: np.ndarray,
    values: np.ndarray,
    columns: Columns,
    idle_cpu: float,
) -> None:
    """Fold one chunk of samples into ``nodes``.

    ``node_index[i]``: which node row ``i`` is of; ``values``: one column per
    metric variable (NaN: unknown). Rows may interleave nodes; within a node
    they are in time order after a stable sort on ts.
    """
    if len(ts) == 0:
        return
    order = np.lexsort((ts, node_index))
    node_index, values = node_index[order], values[order]
    count = len(nodes)
    samples = np.bincount(node_index, minlength=count)
    cpu = values[:, list(columns.cpu)].sum(axis=1) if columns.cpu else np.full(len(ts), np.nan)
    known = ~np.isnan(cpu)
    cpu_sum = np.bincount(node_index[known], cpu[known], minlength=count)
    cpu_count = np.bincount(node_index[known], minlength=count)
    idle = np.bincount(node_index[known & (cpu < idle_cpu)], minlength=count)
    mem_max = _group_max(node_index, values[:, columns.memory], count)
    swap_max = _group_max(node_index, values[:, columns.swap], count)
    counter_sums = {}
    for name, column in _counter_columns(columns):
        counter_sums[name] = _increases(node_index, values[:, column], nodes, name, count)
    for i, node in enumerate(nodes):
        node.samples += int(samples[i])
        node.cpu_sum += float(cpu_sum[i])
        node.cpu_count += int(cpu_count[i])
        node.idle_count += int(idle[i])
        node.mem_max = max(node.mem_max, float(mem_max[i]))
        node.swap_max = max(node.swap_max, float(swap_max[i]))
        for name, sums in counter_sums.items():
            node.counter_sum[name] = node.counter_sum.get(name, 0.0) + float(sums[i])


def _counter_columns(columns):
    for kind in ("network", "disk"):
        for k, column in enumerate(getattr(columns, kind)):
            yield f"{kind}{k}", column


def _group_max(node_index, column, count):
    result = np.full(count, -np.inf)
    known = ~np.isnan(column)
    np.maximum.at(result, node_index[known], column[known])
    return result


def _increases(node_index, column, nodes, name, count):
    """Sum of each node's counter increases in this chunk, joined to its last value before."""
    known = ~np.isnan(column)
    index, value = node_index[known], column[known]
    sums = np.zeros(count)
    if len(value) == 0:
        return sums
    steps = np.diff(value)
    same = index[1:] == index[:-1]
    rising = same & (steps > 0)
    sums += np.bincount(index[1:][rising], steps[rising], minlength=count)
    firsts = np.flatnonzero(np.concatenate(([True], ~same)))
    lasts = np.concatenate((firsts[1:] - 1, [len(value) - 1]))
    for first, last in zip(firsts, lasts, strict=True):
        node = nodes[index[first]]
        before = node.counter_last.get(name)
        if before is not None and value[first] > before:
            sums[index[first]] += value[first] - before
        node.counter_last[name] = float(value[last])
    return sums


def figure(value: float | None = None, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """A metric as pages and JSON show it: a value, or None and the reason why."""
    if value is not None and not math.isfinite(value):
        value = None
    return {"value": value, "reason": None if value is not None else reason, **extra}


def summarise(
    job: StoredJob,
    accumulators: Mapping[str, NodeAccumulator],
    known_hosts: set[str],
    config: Config,
    window: tuple[float, float],
    final: bool,
) -> dict[str, Any]:
    """The job's figures, per node and in all, with reasons and flags (pure)."""
    jobs = config.jobs
    start, end = window
    step = config.recorder.step
    nodes: dict[str, dict[str, Any]] = {}
    with_data: dict[str, NodeAccumulator] = {}
    for node, host in job.hosts.items():
        entry: dict[str, Any] = {"host": host}
        if host is None:
            entry["reason"] = f"node {node} cannot be an affair host name"
        elif host not in known_hosts:
            entry["reason"] = f"node {node} (host {host}) is unknown to affair"
        elif (acc := accumulators.get(host)) is None or acc.samples == 0:
            entry["reason"] = f"no samples from {host} during the run"
        else:
            with_data[node] = acc
            cpu = acc.cpu_sum / acc.cpu_count if acc.cpu_count else None
            entry.update(
                samples=acc.samples,
                cpu=cpu,
                idle_fraction=acc.idle_count / acc.cpu_count if acc.cpu_count else None,
                memory=acc.mem_max if acc.mem_max > -math.inf else None,
                swap=acc.swap_max if acc.swap_max > -math.inf else None,
                network=sum(v for k, v in acc.counter_sum.items() if k.startswith("network")),
                disk=sum(v for k, v in acc.counter_sum.items() if k.startswith("disk")),
            )
            entry["idle"] = (
                entry["idle_fraction"] is not None and entry["idle_fraction"] >= jobs.idle_fraction
            )
        nodes[node] = entry
    flags = []
    unknown = [n for n, e in nodes.items() if "reason" in e and "unknown" in e["reason"]]
    unknown += [n for n, e in nodes.items() if e["host"] is None]
    if unknown:
        flags.append("unknown_nodes")
    metrics: dict[str, dict[str, Any]] = {}
    short = end - start < jobs.short_steps * step
    if not job.hosts:
        why = "the job has no nodes (never started, or 'None assigned')"
    elif short:
        why = f"job shorter than {jobs.short_steps} steps ({jobs.short_steps * step}s)"
        flags.append("short")
    elif not with_data and all(
        e["host"] is None or e["host"] not in known_hosts for e in nodes.values()
    ):
        why = "none of its nodes is known to affair"
    elif not with_data:
        why = "no samples from any of its nodes during the run"
    else:
        why = ""
    names = ("cpu", "memory", "imbalance", "idle_nodes", "network", "disk", "swap")
    if why:
        metrics = {name: figure(None, why) for name in names}
    else:
        per_node = list(with_data.values())
        cpus = [nodes[n]["cpu"] for n in with_data if nodes[n]["cpu"] is not None]
        missing = len(job.hosts) - len(with_data)
        note = f" ({missing} of {len(job.hosts)} nodes without samples)" if missing else ""
        cpu_mean = sum(cpus) / len(cpus) if cpus else None
        metrics["cpu"] = figure(cpu_mean, "no CPU values from its nodes", unit="%", note=note)
        if cpu_mean:
            metrics["imbalance"] = figure(max(cpus) / cpu_mean, unit="", note=note)
        else:
            metrics["imbalance"] = figure(None, "no CPU use on any node to compare")
        idle_nodes = [n for n in with_data if nodes[n]["idle"]]
        metrics["idle_nodes"] = figure(float(len(idle_nodes)), unit="", nodes=idle_nodes, note=note)
        memory = [a.mem_max for a in per_node if a.mem_max > -math.inf]
        metrics["memory"] = figure(max(memory) if memory else None, "no memory values", unit="B")
        swap = [a.swap_max for a in per_node if a.swap_max > -math.inf]
        metrics["swap"] = figure(max(swap) if swap else None, "no swap values", unit="B")
        for kind in ("network", "disk"):
            total = sum(nodes[n][kind] for n in with_data)
            metrics[kind] = figure(total, unit="B", note=note)
        if idle_nodes:
            flags.append("idle")
        imbalance = metrics["imbalance"]["value"]
        if imbalance is not None and len(cpus) > 1 and imbalance >= jobs.imbalance:
            flags.append("imbalanced")
        if metrics["swap"]["value"] is not None and metrics["swap"]["value"] > jobs.swap_bytes:
            flags.append("swapping")
    return {
        "window": [start, end],
        "final": final,
        "metrics": metrics,
        "nodes": nodes,
        "flags": flags,
    }


def job_window(job: StoredJob, now: float) -> tuple[float, float, bool]:
    """``(start, end, final)``: the run so far, and whether its figures can change no more."""
    record = job.record
    start = record.start if record.start is not None else now
    end = record.end if record.end is not None else now
    return start, max(start, end), record.end is not None


def compute_job_metrics(job: StoredJob, config: Config, now: float) -> dict[str, Any]:
    """Read the job's nodes over its run from the raw archive and summarise them."""
    start, end, ended = job_window(job, now)
    final = ended and now >= end + FINAL_AFTER_STEPS * config.recorder.step
    data_dir = Path(config.recorder.data_dir)
    jobs = config.jobs
    hosts = sorted({h for h in job.hosts.values() if h is not None})
    accumulators = {host: NodeAccumulator() for host in hosts}
    known = {host for host in hosts if (data_dir / host).is_dir()}
    wanted, columns = wanted_variables(jobs)
    nodes = [accumulators[host] for host in hosts]
    for node_index, ts, values in read_samples(
        data_dir, jobs.dataset, hosts, wanted, start, end, known
    ):
        fold(nodes, node_index, ts, values, columns, jobs.idle_cpu)
    summary = summarise(job, accumulators, known, config, (start, end), final)
    summary["computed"] = now
    return summary


def read_samples(
    data_dir: Path,
    dataset: str,
    hosts: Sequence[str],
    wanted: Sequence[str],
    start: float,
    end: float,
    known: set[str] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(host index, ts, values)`` chunks of ``hosts``' samples of ``dataset`` in [start, end].

    ``values`` has one column per ``wanted`` variable (NaN: unknown or not
    recorded). ``known`` (when given) gains every host seen in the files read.
    """
    journal = Path(data_dir) / "_journal"
    if not hosts or not journal.is_dir():
        return
    host_set = set(hosts)
    place = {host: index for index, host in enumerate(hosts)}
    # end inclusive: a sample stamped at the job's last second belongs to it
    for span in day_spans(journal, start, end + 1e-6):
        with DayReader(span.path) as reader:
            series = {}
            for sid, (host, name, _instance) in reader.catalog.series.items():
                if host in host_set:
                    if known is not None:
                        known.add(host)
                    if name == dataset:
                        series[sid] = place[host]
            if not series:
                continue
            names = reader.catalog.variables.get(dataset, [])
            position = {name: p for p, name in enumerate(names)}
            lookup = np.full(max(series) + 1, -1, np.int64)
            for sid, index in series.items():
                lookup[sid] = index
            for chunk in reader.chunks(series, start, end + 1e-6):
                values = _decode(chunk, [position.get(name, -1) for name in wanted])
                yield lookup[chunk.series], chunk.ts, values


def wanted_variables(jobs: JobsConfig) -> tuple[list[str], Columns]:
    """The variables the metrics read, and where each kind is among them."""
    wanted = [*jobs.cpu, jobs.memory, jobs.swap, *jobs.network, *jobs.disk]
    cpu = len(jobs.cpu)
    network_end = cpu + 2 + len(jobs.network)
    return wanted, Columns(
        cpu=range(cpu),
        memory=cpu,
        swap=cpu + 1,
        network=range(cpu + 2, network_end),
        disk=range(network_end, len(wanted)),
    )


def _decode(chunk, positions):
    """The chunk's values of the variables at ``positions`` (-1: not in this file)."""
    width = len(positions)
    columns = np.full(max([p for p in positions if p >= 0], default=-1) + 1, -1, np.int64)
    for column, position in enumerate(positions):
        if position >= 0:
            columns[position] = column
    if len(columns) == 0:
        return np.full((len(chunk), width), np.nan)
    full = np.full(max(int(chunk.widths.max()), len(columns)), -1, np.int64)
    full[: len(columns)] = columns
    return decode_values(chunk, np.arange(len(chunk)), full, width)
