"""The jobs pages: ``jobs/index.html`` and ``jobs/<jobid>.html`` with the job's graphs.

Built by the site builder on each pass (:mod:`affair.outputs.site`), when a
jobs table exists. Running jobs are redrawn every pass (their metrics are
provisional); a finished job's page and graphs are drawn once its metrics
are final and then kept, untouched, for ``[jobs] keep_days`` after its end,
when they are removed. Every file is replaced atomically.
"""

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from affair.atomic import write_atomic
from affair.config import Config
from affair.outputs.jobs.commands import (
    METRIC_TEXT,
    duration,
    format_value,
    job_row,
    refresh_metrics,
    when,
)
from affair.outputs.jobs.graphs import GRAPHS, job_charts
from affair.outputs.jobs.metrics import FLAG_TEXT
from affair.outputs.plot.render import Renderer
from affair.storage.jobs import JobStore, StoredJob, host_mapper, jobs_path

log = logging.getLogger(__name__)

FINAL_MARK = ".final"  # <jobid>.final beside a finished job's page: drawn final, keep it


@dataclass(frozen=True)
class JobPagesSummary:
    pages: int  # written this pass
    kept: int  # finished pages left as they were
    removed: int


def jobs_exist(config: Config) -> bool:
    return jobs_path(config.recorder.data_dir).exists()


def recent_jobs_by_host(config: Config, since: float) -> dict[str, list[dict[str, str]]]:
    """``{host: [job link rows]}`` of the jobs running on or ended after ``since`` (one query)."""
    path = jobs_path(config.recorder.data_dir)
    if not path.exists():
        return {}
    found: dict[str, list[dict[str, str]]] = {}
    with JobStore(path, readonly=True) as store:
        rows = store.connection.execute(
            "SELECT n.host, j.jobid, j.user, j.start_ts, j.end_ts, j.state FROM jobs AS j"
            " JOIN job_nodes AS n ON n.jobid = j.jobid WHERE n.host IS NOT NULL"
            " AND j.start_ts IS NOT NULL AND (j.end_ts IS NULL OR j.end_ts >= ?)"
            " ORDER BY j.end_ts IS NOT NULL, coalesce(j.end_ts, j.start_ts) DESC",
            (since,),
        ).fetchall()
    for host, jobid, user, start, end, state in rows:
        found.setdefault(host, []).append(
            {
                "jobid": jobid,
                "file": quote(f"{jobid}.html"),
                "user": user or "-",
                "start": when(start),
                "end": when(end) if end is not None else "running",
                "state": state or "-",
            }
        )
    return found


def index_rows_html(rows: list[dict[str, Any]]) -> Markup:
    """The index's table rows, escaped here rather than by the template.

    A template loop costs about 0.1 ms a row in attribute look-ups alone;
    the index lists thousands, so its rows are joined in Python, every value
    escaped (markupsafe, as the templates' autoescape does).
    """
    parts = []
    for row in rows:
        raw = row["raw"]
        cells = [
            f'<td class="h"><a href="{escape(row["file"])}">{escape(row["jobid"])}</a></td>',
            f"<td>{escape(row['user'])}</td>",
            f"<td>{escape(row['account'])}</td>",
            f'<td data-v="{raw["nodes"]}">{escape(row["nodes"])}</td>',
            f'<td data-v="{raw["start"]}">{escape(row["start"])}</td>',
            f'<td data-v="{raw["duration"]}">{escape(row["duration"])}</td>',
            f"<td>{escape(row['state'])}</td>",
            f'<td data-v="{raw["cpu"]}">{escape(row["cpu"])}</td>',
            f'<td data-v="{raw["memory"]}">{escape(row["memory"])}</td>',
            '<td class="flags">'
            + "".join(
                f'<span class="flag f-{escape(flag)}">{escape(FLAG_TEXT.get(flag, flag))}</span>'
                for flag in row["flag_list"]
            )
            + "</td>",
        ]
        kind = "running" if row["running"] else "finished"
        parts.append(f'<tr class="{kind}">{"".join(cells)}</tr>\n')
    return Markup("".join(parts))


class JobPages:
    """Writes the jobs pages of one site pass; ``render(template, page)`` gives HTML."""

    def __init__(self, config: Config, out_dir: Path, render, clock=time.time) -> None:
        self.config = config
        self.directory = Path(out_dir) / "jobs"
        self.render = render
        self.clock = clock
        self.renderer: Renderer | None = None

    def write(self, now: float) -> JobPagesSummary:
        jobs_config = self.config.jobs
        cutoff = now - jobs_config.keep_days * 86400
        self.directory.mkdir(parents=True, exist_ok=True)
        written = kept = 0
        rows = []
        with JobStore(
            jobs_path(self.config.recorder.data_dir), host_mapper(jobs_config), self.clock
        ) as store:
            keep = store.jobids_since(cutoff)
            present = set(os.listdir(self.directory))  # one listing, not two stats a job
            for job in store.jobs(jobs_config.index_jobs, since=cutoff):
                # Final before this pass: its page was drawn final and nothing changed
                # since (a changed record, e.g. sacct's state after the epilog's end,
                # clears metrics_final, so the page is drawn again).
                drawn = job.metrics is not None and job.metrics_final
                metrics = refresh_metrics(store, job, self.config, now)
                rows.append(self._index_row(job, metrics, now))
                jobid = job.record.jobid
                final = bool(metrics and metrics["final"])
                marked = f"{jobid}{FINAL_MARK}" in present and f"{jobid}.html" in present
                if drawn and marked:
                    kept += 1
                    continue
                self._write_job(job, metrics, now)
                if final:
                    write_atomic(self.directory / f"{jobid}{FINAL_MARK}", "")
                written += 1
        html = self.render("jobs.html", self._index(rows))
        write_atomic(self.directory / "index.html", html)
        removed = self._remove_old(keep)
        return JobPagesSummary(written + 1, kept, removed)

    def _index_row(self, job: StoredJob, metrics: dict[str, Any] | None, now: float):
        row = job_row(job, metrics, now)
        record = job.record
        figures = (metrics or {}).get("metrics", {})
        raw = {
            "start": record.start or 0,
            "duration": ((record.end or now) - record.start) if record.start else 0,
            "cpu": figures.get("cpu", {}).get("value"),
            "memory": figures.get("memory", {}).get("value"),
            "nodes": len(job.hosts),
        }
        return {
            **row,
            "file": quote(f"{record.jobid}.html"),
            "running": record.end is None,
            "flag_list": (metrics or {}).get("flags", []),
            "raw": {k: "" if v is None else f"{v:.6g}" for k, v in raw.items()},
        }

    def _index(self, rows):
        running = sum(1 for row in rows if row["running"])
        return {
            "root": "../",
            "rows_html": index_rows_html(rows),
            "running": running,
            "finished": len(rows) - running,
            "keep_days": self.config.jobs.keep_days,
        }

    def _write_job(self, job: StoredJob, metrics: dict[str, Any] | None, now: float) -> None:
        record = job.record
        images = {}
        if record.start is not None and job.hosts:
            if self.renderer is None:
                self.renderer = Renderer()
            for kind, chart in job_charts(job, self.config, now).items():
                target = self.directory / record.jobid / f"{kind}.png"
                write_atomic(target, self.renderer.png(chart))
                images[kind] = f"{quote(record.jobid)}/{kind}.png?v={int(now)}"
        figures = []
        for name, (label, unit) in METRIC_TEXT.items():
            item = (metrics or {}).get("metrics", {}).get(name, {})
            value = item.get("value")
            figures.append(
                {
                    "label": label,
                    "text": format_value(value, unit) if value is not None else "–",
                    "reason": item.get("reason") or "",
                    "note": (item.get("note") or "").strip(" ()"),
                    "nodes": ", ".join(item.get("nodes", [])),
                }
            )
        nodes = []
        for node, entry in (metrics or {}).get("nodes", {}).items():
            nodes.append(
                {
                    "node": node,
                    "host": entry.get("host") or "",
                    "host_file": quote(f"{entry['host']}.html") if entry.get("host") else "",
                    "reason": entry.get("reason", ""),
                    "cpu": format_value(entry.get("cpu"), "%"),
                    "memory": format_value(entry.get("memory"), "B"),
                    "network": format_value(entry.get("network"), "B"),
                    "disk": format_value(entry.get("disk"), "B"),
                    "samples": entry.get("samples", 0),
                    "idle": entry.get("idle", False),
                }
            )
        end = record.end if record.end is not None else now
        page = {
            "root": "../",
            "job": {
                "jobid": record.jobid,
                "name": record.name,
                "user": record.user or "-",
                "account": record.account or "-",
                "partition": record.partition or "-",
                "state": record.state or "-",
                "cancelled_by": record.cancelled_by,
                "start": when(record.start),
                "end": when(record.end) if record.end is not None else "running",
                "duration": duration(end - record.start) if record.start is not None else "-",
                "nodelist": record.nodelist
                or (", ".join(record.nodes[:20]) + (" …" if len(record.nodes) > 20 else ""))
                or "none assigned",
                "running": record.end is None,
                "source": record.source,
            },
            "final": bool(metrics and metrics["final"]),
            "flags": [FLAG_TEXT.get(f, f) for f in (metrics or {}).get("flags", [])],
            "figures": figures,
            "nodes": nodes,
            "graphs": [
                {"kind": g.kind, "title": g.title, "url": images.get(g.kind, "")} for g in GRAPHS
            ],
        }
        write_atomic(self.directory / f"{record.jobid}.html", self.render("job.html", page))

    def _remove_old(self, keep: set[str]) -> int:
        """Pages, marks and graph folders of jobs no longer kept; return the pages removed."""
        removed = 0
        with os.scandir(self.directory) as entries:
            for entry in entries:
                name = entry.name
                jobid = name
                for suffix in (".html", FINAL_MARK):
                    jobid = jobid.removesuffix(suffix)
                if name == "index.html" or jobid in keep or name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    Path(entry.path).unlink(missing_ok=True)
                    removed += name.endswith(".html")
        return removed
