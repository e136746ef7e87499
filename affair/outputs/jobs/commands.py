"""The bodies of ``affair jobs import|list|show`` and the scheduler's periodic sacct."""

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, Any

from affair.config import Config
from affair.errors import JobsError
from affair.outputs.jobs.metrics import FLAG_TEXT, compute_job_metrics
from affair.storage.jobs import JobStore, MergeCounts, StoredJob, host_mapper, jobs_path
from affair.storage.sacct import BadSacctLine, check_job_id, parse_sacct

log = logging.getLogger(__name__)


def open_store(config: Config, clock: Callable[[], float] = time.time) -> JobStore:
    return JobStore(jobs_path(config.recorder.data_dir), host_mapper(config.jobs), clock)


def import_lines(
    store: JobStore, lines: Iterable[str]
) -> tuple[MergeCounts, list[BadSacctLine], int]:
    """Merge sacct lines into the store: (counts, malformed lines, records read)."""
    errors: list[BadSacctLine] = []
    records = list(parse_sacct(lines, errors))
    return store.merge(records), errors, len(records)


def describe_import(counts: MergeCounts, errors: list, read: int, source: str) -> str:
    text = (
        f"{source}: {read} jobs read: {counts.new} new, {counts.changed} changed, "
        f"{counts.unchanged} unchanged"
    )
    if counts.older:
        text += f", {counts.older} older runs ignored"
    if errors:
        text += f"; {len(errors)} malformed lines skipped"
    return text


def cmd_import(config: Config, path: str, out: IO[str], err: IO[str]) -> int:
    """``affair jobs import FILE|-``: exit 1 when a line was skipped (the rest are in)."""
    with open_store(config) as store:
        if path == "-":
            counts, errors, read = import_lines(store, sys.stdin)
        else:
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    counts, errors, read = import_lines(store, handle)
            except OSError as error:
                raise JobsError(path, error.strerror or str(error)) from None
    for bad in errors[:50]:
        print(f"affair jobs import: {path}: {bad}", file=err)
    if len(errors) > 50:
        print(f"affair jobs import: ... and {len(errors) - 50} more", file=err)
    print(describe_import(counts, errors, read, path), file=out)
    return 1 if errors else 0


def sacct_command(config: Config, since: float) -> list[str]:
    """The configured sacct argv with ``{since}`` replaced by a UTC time sacct reads."""
    moment = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return [part.replace("{since}", moment) for part in config.jobs.sacct]


def run_sacct(config: Config, since: float, timeout: float = 120) -> tuple[MergeCounts, int]:
    """Run ``[jobs] sacct`` (with TZ=UTC: sacct prints zoneless local times) and import it."""
    command = sacct_command(config, since)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "TZ": "UTC"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise JobsError(command[0], f"cannot run [jobs] sacct: {error}") from None
    if done.returncode != 0:
        raise JobsError(command[0], f"exit {done.returncode}: {done.stderr.strip()[:200]}")
    with open_store(config) as store:
        counts, errors, read = import_lines(store, done.stdout.splitlines())
    for bad in errors[:5]:
        log.warning("[jobs] sacct: %s", bad)
    log.info("%s", describe_import(counts, errors, read, "[jobs] sacct"))
    return counts, len(errors)


def refresh_metrics(
    store: JobStore, job: StoredJob, config: Config, now: float
) -> dict[str, Any] | None:
    """The job's metrics: stored ones if final, else computed now (and stored)."""
    if job.metrics is not None and job.metrics_final:
        return job.metrics
    if job.record.start is None:
        return None
    metrics = compute_job_metrics(job, config, now)
    store.set_metrics(job.record.jobid, metrics, metrics["final"])
    return metrics


def job_range(config: Config, jobid: str, now: float) -> tuple[list[str], float, float]:
    """``(hosts, start, end)`` of a job for ``affair export --job``: its run, end included."""
    try:
        check_job_id(jobid)
    except ValueError as error:
        raise JobsError(jobid, str(error)) from None
    require_table(config)
    with open_store(config) as store:
        job = store.job(jobid)
    if job is None:
        raise JobsError(jobid, "no such job in the jobs table")
    if job.record.start is None:
        raise JobsError(jobid, "the job has not started: no run to export")
    hosts = sorted({host for host in job.hosts.values() if host is not None})
    if not hosts:
        raise JobsError(jobid, "none of the job's nodes is an affair host")
    end = job.record.end if job.record.end is not None else now
    return hosts, job.record.start, end + 0.001  # export's end is excluded


# --- printing ---


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "B":
        for prefix in ("", "Ki", "Mi", "Gi", "Ti", "Pi"):
            if abs(value) < 1024 or prefix == "Pi":
                return f"{value:.0f} B" if not prefix else f"{value:.1f} {prefix}B"
            value /= 1024
    if unit == "%":
        return f"{value:.1f}%"
    return f"{value:.2f}" if not float(value).is_integer() else f"{value:.0f}"


def job_row(job: StoredJob, metrics: dict[str, Any] | None, now: float) -> dict[str, str]:
    """One job as a row of the index and of ``affair jobs list``."""
    record = job.record
    start = record.start
    end = record.end if record.end is not None else now
    figures = (metrics or {}).get("metrics", {})
    return {
        "jobid": record.jobid,
        "user": record.user or "-",
        "account": record.account or "-",
        "nodes": str(len(job.hosts)),
        "start": when(start),
        "duration": duration(end - start) if start is not None else "-",
        "state": record.state or "-",
        "cpu": format_value(figures.get("cpu", {}).get("value"), "%"),
        "memory": format_value(figures.get("memory", {}).get("value"), "B"),
        "flags": ", ".join(FLAG_TEXT.get(f, f) for f in (metrics or {}).get("flags", [])),
    }


LIST_COLUMNS = (
    "jobid",
    "user",
    "account",
    "nodes",
    "start",
    "duration",
    "state",
    "cpu",
    "memory",
    "flags",
)


def require_table(config: Config) -> None:
    """Reading commands never create the table: say how jobs get in instead."""
    path = jobs_path(config.recorder.data_dir)
    if not path.exists():
        raise JobsError(
            path, "no jobs yet: affair jobs import, [jobs] sacct, or the affair job start|end hooks"
        )


def cmd_list(config: Config, out: IO[str], limit: int, now: float | None = None) -> int:
    now = time.time() if now is None else now
    require_table(config)
    with open_store(config) as store:
        rows = [
            job_row(job, refresh_metrics(store, job, config, now), now) for job in store.jobs(limit)
        ]
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in LIST_COLUMNS}
    print("  ".join(c.ljust(widths[c]) for c in LIST_COLUMNS).rstrip(), file=out)
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in LIST_COLUMNS).rstrip(), file=out)
    print(f"({len(rows)} job{'s' if len(rows) != 1 else ''})", file=out)
    return 0


METRIC_TEXT = {
    "cpu": ("CPU use (mean over nodes and run)", "%"),
    "memory": ("memory high water", "B"),
    "imbalance": ("node imbalance (max / mean CPU)", ""),
    "idle_nodes": ("idle nodes", ""),
    "network": ("network bytes", "B"),
    "disk": ("disk bytes", "B"),
    "swap": ("swap high water", "B"),
}


def cmd_show(config: Config, jobid: str, out: IO[str], now: float | None = None) -> int:
    try:
        check_job_id(jobid)
    except ValueError as error:
        raise JobsError(jobid, str(error)) from None
    now = time.time() if now is None else now
    require_table(config)
    with open_store(config) as store:
        job = store.job(jobid)
        if job is None:
            raise JobsError(
                jobid, "no such job in the jobs table (affair jobs import, or the hooks)"
            )
        metrics = refresh_metrics(store, job, config, now)
    record = job.record
    lines = [
        f"job {record.jobid}  {record.name}",
        f"  user {record.user or '-'}  account {record.account or '-'}  "
        f"partition {record.partition or '-'}  state {record.state or '-'}"
        + (f" by uid {record.cancelled_by}" if record.cancelled_by is not None else ""),
        f"  start {when(record.start)}  end {when(record.end)}"
        + ("  (running)" if record.end is None and record.start is not None else ""),
        f"  nodes ({len(job.hosts)}): {record.nodelist or 'none assigned'}",
    ]
    if metrics is None:
        lines.append("  no metrics: the job has not started")
    else:
        kind = "final" if metrics["final"] else "provisional"
        lines.append(f"  metrics ({kind}):")
        for name, (label, unit) in METRIC_TEXT.items():
            item = metrics["metrics"].get(name, {})
            shown = format_value(item.get("value"), unit)
            if item.get("value") is None:
                shown = f"- ({item.get('reason')})"
            lines.append(f"    {label:36s} {shown}{item.get('note') or ''}")
        flags = ", ".join(FLAG_TEXT.get(f, f) for f in metrics["flags"]) or "none"
        lines.append(f"  flags: {flags}")
        lines.append("  per node:")
        for node, entry in metrics["nodes"].items():
            if entry.get("reason"):
                lines.append(f"    {node:16s} - ({entry['reason']})")
            else:
                lines.append(
                    f"    {node:16s} cpu {format_value(entry['cpu'], '%'):>7s}  "
                    f"memory {format_value(entry['memory'], 'B'):>9s}  "
                    f"samples {entry['samples']}" + ("  idle" if entry["idle"] else "")
                )
    print("\n".join(lines), file=out)
    return 0
