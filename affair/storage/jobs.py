"""The jobs table: every batch job affair knows, next to the raw archive.

``<data_dir>/_journal/jobs.sqlite`` (the journal's day files are
``YYYY-MM-DD.sqlite`` beside it; nothing that globs those sees this file).
Three writers fill it: ``affair jobs import`` (sacct lines), the scheduler's
periodic sacct, and the recorder for ``affair job start/end`` events; SQLite
in WAL mode with a busy timeout lets them take turns, and readers (pages,
``affair query``) never block them.

Tables (``affair query`` sees them as the views ``jobs`` and ``job_nodes``):

    jobs       one row per job id (123, 123_4): accounting fields, times as
               Unix seconds (``start_ts``, ``end_ts`` NULL while running), its
               per-job metrics as JSON and whether they are final
    job_nodes  (jobid, node, host): each Slurm node of the job and the affair
               host it maps to (NULL: the name cannot be an affair host)

Merging: the newest run of a job wins. A record whose start is older than
the stored one (an earlier run of a requeued job, an old file re-imported)
is ignored; a record of the same run fills in what it knows and keeps what
it does not (a live start event has no exit code, a still-running sacct
line no end), so importing the same lines twice changes nothing.
"""

import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from affair.config import JobsConfig
from affair.errors import JobsError
from affair.storage.sacct import JobRecord, host_of_node

JOBS_FILE = "jobs.sqlite"

# JobRecord field -> column (a few are renamed: SQL keywords, and times say they are times)
COLUMNS = {
    "jobid": "jobid",
    "jobid_raw": "jobid_raw",
    "cluster": "cluster",
    "partition": "partition",
    "qos": "qos",
    "account": "account",
    "group": "grp",
    "gid": "gid",
    "user": "user",
    "uid": "uid",
    "submit": "submit_ts",
    "eligible": "eligible_ts",
    "start": "start_ts",
    "end": "end_ts",
    "elapsed": "elapsed",
    "exit_code": "exit_code",
    "state": "state",
    "cancelled_by": "cancelled_by",
    "nnodes": "nnodes",
    "ncpus": "ncpus",
    "reqcpus": "reqcpus",
    "reqmem": "reqmem",
    "reqtres": "reqtres",
    "alloctres": "alloctres",
    "timelimit": "timelimit",
    "nodelist": "nodelist",
    "name": "name",
    "source": "source",
}
_REAL = {"submit", "eligible", "start", "end", "elapsed", "timelimit"}
_INT = {"gid", "uid", "cancelled_by", "nnodes", "ncpus", "reqcpus"}

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS jobs ("
    + ", ".join(
        f"{column} {'REAL' if field in _REAL else 'INTEGER' if field in _INT else 'TEXT'}"
        + (" PRIMARY KEY" if field == "jobid" else "")
        for field, column in COLUMNS.items()
    )
    + ", updated REAL, metrics TEXT, metrics_final INTEGER NOT NULL DEFAULT 0);"
    """
CREATE INDEX IF NOT EXISTS jobs_start ON jobs (start_ts);
CREATE INDEX IF NOT EXISTS jobs_end ON jobs (end_ts);
CREATE TABLE IF NOT EXISTS job_nodes (
    jobid TEXT NOT NULL,
    node  TEXT NOT NULL,
    host  TEXT,
    position INTEGER NOT NULL,           -- its place in the expanded node list
    PRIMARY KEY (jobid, node)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_nodes_host ON job_nodes (host);
"""
)

_REPLACE_JOB = (
    f"INSERT OR REPLACE INTO jobs ({', '.join(COLUMNS.values())}, updated, metrics, metrics_final)"
    f" VALUES ({', '.join('?' * len(COLUMNS))}, ?, NULL, 0)"
)


@dataclass
class MergeCounts:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    older: int = 0  # an earlier run than the one stored: ignored


@dataclass(frozen=True)
class StoredJob:
    """A job as the table holds it: its record, its nodes' hosts and its metrics."""

    record: JobRecord
    hosts: dict[str, str | None]  # Slurm node -> affair host (None: cannot be one)
    metrics: dict[str, Any] | None
    metrics_final: bool
    updated: float


def host_mapper(jobs: JobsConfig) -> Callable[[str], str | None]:
    """Slurm node name -> affair host name, as ``[jobs]`` says (host_map, suffix, short names)."""
    mapped = partial(
        host_of_node, host_map=jobs.host_map, suffix=jobs.host_suffix, short_names=jobs.short_names
    )
    return lru_cache(maxsize=65536)(mapped)  # a cluster has a few thousand names


def jobs_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "_journal" / JOBS_FILE


def merge_record(old: JobRecord | None, new: JobRecord) -> JobRecord | None:
    """What the table should hold given ``old`` and an incoming ``new``; None: ``new`` is older."""
    if old is None:
        return new
    if new.start is not None and old.start is not None and new.start < old.start:
        return None
    if new.start is not None and old.start is not None and new.start > old.start:
        return new  # a new run (requeue): nothing of the old one carries over
    changes = {}
    for item in dataclasses.fields(JobRecord):
        value = getattr(new, item.name)
        if value not in (None, "", ()):
            changes[item.name] = value
    if old.end is not None and new.end is None:
        changes.pop("state", None)  # a line from while it ran: the ended state stands
    if old.source != new.source and "source" in changes:
        # sacct is the fuller account: a live event does not take its name over
        changes["source"] = "sacct" if "sacct" in (old.source, new.source) else new.source
    return dataclasses.replace(old, **changes)


class JobStore:
    """The jobs table. ``host_of`` maps a Slurm node name to an affair host (or None)."""

    def __init__(
        self,
        path: str | Path,
        host_of: Callable[[str], str | None] = lambda node: node,
        clock: Callable[[], float] = time.time,
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self.host_of = host_of
        self.clock = clock
        try:
            if readonly:
                self.connection = sqlite3.connect(
                    f"file:{self.path}?mode=ro", uri=True, check_same_thread=False
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.connection = sqlite3.connect(
                    self.path, isolation_level=None, timeout=30, check_same_thread=False
                )
                self.connection.execute("PRAGMA journal_mode=WAL")
                self.connection.executescript(f"BEGIN; {SCHEMA} COMMIT;")
        except sqlite3.Error as error:
            raise JobsError(self.path, f"cannot open the jobs table: {error}") from None

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "JobStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ---

    def merge(self, records: Iterable[JobRecord]) -> MergeCounts:
        """Merge ``records`` (file order: the last of a job id wins) in one transaction."""
        latest: dict[str, JobRecord] = {}
        for record in records:
            kept = merge_record(latest.get(record.jobid), record)
            if kept is not None:
                latest[record.jobid] = kept
        counts = MergeCounts()
        now = self.clock()
        cursor = self.connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            held = self._held(cursor, list(latest))
            job_rows, node_rows, replaced = [], [], []
            for jobid, record in latest.items():
                old = self._record(jobid) if jobid in held else None
                merged = merge_record(old, record)
                if merged is None:
                    counts.older += 1
                    continue
                if merged == old:
                    counts.unchanged += 1
                    continue
                counts.new += old is None
                counts.changed += old is not None
                job_rows.append([*(getattr(merged, field) for field in COLUMNS), now])
                node_rows += self._node_rows(merged)
                if old is not None:
                    replaced.append((jobid,))
            cursor.executemany(_REPLACE_JOB, job_rows)
            cursor.executemany("DELETE FROM job_nodes WHERE jobid = ?", replaced)
            cursor.executemany(
                "INSERT INTO job_nodes (jobid, node, host, position) VALUES (?, ?, ?, ?)",
                node_rows,
            )
            cursor.execute("COMMIT")
        except sqlite3.Error as error:
            cursor.execute("ROLLBACK")
            raise JobsError(self.path, f"cannot write the jobs table: {error}") from None
        return counts

    def _held(self, cursor, jobids):
        """Which of ``jobids`` the table holds (one query per 500: SQLite's parameter limit)."""
        held = set()
        for first in range(0, len(jobids), 500):
            part = jobids[first : first + 500]
            held.update(
                row[0]
                for row in cursor.execute(
                    f"SELECT jobid FROM jobs WHERE jobid IN ({','.join('?' * len(part))})", part
                )
            )
        return held

    def _node_rows(self, record):
        return [
            (record.jobid, node, self.host_of(node), position)
            for position, node in enumerate(dict.fromkeys(record.nodes))
        ]

    def set_metrics(self, jobid: str, metrics: dict[str, Any], final: bool) -> None:
        self.connection.execute(
            "UPDATE jobs SET metrics = ?, metrics_final = ? WHERE jobid = ?",
            (json.dumps(metrics, sort_keys=True), int(final), jobid),
        )

    # --- reading ---

    def _record(self, jobid):
        row = self.connection.execute(
            f"SELECT {', '.join(COLUMNS.values())} FROM jobs WHERE jobid = ?", (jobid,)
        ).fetchone()
        if row is None:
            return None
        return JobRecord(**dict(zip(COLUMNS, row, strict=True)), nodes=self._nodes(jobid))

    def _nodes(self, jobid):
        return tuple(
            node
            for (node,) in self.connection.execute(
                "SELECT node FROM job_nodes WHERE jobid = ? ORDER BY position", (jobid,)
            )
        )

    def job(self, jobid: str) -> StoredJob | None:
        row = self.connection.execute(
            "SELECT updated, metrics, metrics_final FROM jobs WHERE jobid = ?", (jobid,)
        ).fetchone()
        if row is None:
            return None
        return self._stored(jobid, row)

    def _stored(self, jobid, row):
        updated, metrics, final = row
        hosts = dict(
            self.connection.execute(
                "SELECT node, host FROM job_nodes WHERE jobid = ? ORDER BY position", (jobid,)
            )
        )
        record = self._record(jobid)
        return StoredJob(
            record, hosts, json.loads(metrics) if metrics else None, bool(final), updated
        )

    def jobs(
        self, limit: int = 1000, since: float | None = None, host: str | None = None
    ) -> Iterator[StoredJob]:
        """Running jobs first (newest start first), then finished ones, newest end first.

        ``since``: only jobs running or ended at or after it; ``host``: only jobs on it.
        """
        where = ["(end_ts IS NULL AND start_ts IS NOT NULL OR end_ts >= ?)"]
        parameters: list[Any] = [since if since is not None else float("-inf")]
        if host is not None:
            where.append("jobid IN (SELECT jobid FROM job_nodes WHERE host = ?)")
            parameters.append(host)
        rows = self.connection.execute(
            f"SELECT {', '.join(COLUMNS.values())}, updated, metrics, metrics_final FROM jobs"
            f" WHERE {' AND '.join(where)}"
            " ORDER BY end_ts IS NOT NULL, coalesce(end_ts, start_ts) DESC, jobid LIMIT ?",
            [*parameters, limit],
        ).fetchall()
        # Their nodes in a query per 500 jobs, not one per job: the index lists thousands.
        nodes: dict[str, dict[str, str | None]] = {}
        jobids = [row[0] for row in rows]
        for first in range(0, len(jobids), 500):
            part = jobids[first : first + 500]
            for jobid, node, host in self.connection.execute(
                "SELECT jobid, node, host FROM job_nodes"
                f" WHERE jobid IN ({','.join('?' * len(part))}) ORDER BY jobid, position",
                part,
            ):
                nodes.setdefault(jobid, {})[node] = host
        width = len(COLUMNS)
        for row in rows:
            hosts = nodes.get(row[0], {})
            record = JobRecord(**dict(zip(COLUMNS, row[:width], strict=True)), nodes=tuple(hosts))
            updated, metrics, final = row[width:]
            yield StoredJob(
                record, hosts, json.loads(metrics) if metrics else None, bool(final), updated
            )

    def jobids_since(self, since: float) -> set[str]:
        """Ids of the jobs running (or pending) or ended at or after ``since``."""
        return {
            jobid
            for (jobid,) in self.connection.execute(
                "SELECT jobid FROM jobs WHERE end_ts IS NULL OR end_ts >= ?", (since,)
            )
        }

    def count(self) -> int:
        return self.connection.execute("SELECT count(*) FROM jobs").fetchone()[0]
