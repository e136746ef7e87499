"""``affair schedule``: run plot and site on their intervals, and the daily ROOT export.

APScheduler 3.x in the background, one thread per job, so a slow plot pass
never delays the pages. A job's passes never overlap: a pass still running
when the next is due makes APScheduler skip that one (and say so in the
log), and runs that were missed are coalesced into one. Every pass is
logged with its duration and what it did; a failing pass is logged and the
next one runs on time. SIGTERM lets running passes finish, then stops.

With ``[jobs] sacct`` set, Slurm's accounting is imported every
``[jobs] sacct_interval`` (:class:`SacctPasses`).

With ``[export] enabled`` (the default), the permanent archive
(:mod:`affair.outputs.archive`) runs at start and hourly; with a
``[export] resolution`` other than raw, the consolidated daily file of the
previous day is written too, at ``[export] hour`` (UTC), as before. Cron
users run ``affair plot``, ``affair site`` and ``affair archive`` instead
(scripts/crontab.example).
"""

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from affair.atomic import sweep_temporaries
from affair.errors import AffairError
from affair.outputs.jobs.commands import run_sacct
from affair.outputs.plot.run import run_plot
from affair.outputs.site import SiteBuilder, graphs_dir_of
from affair.outputs.status import percentile
from affair.storage.journal import day_name

log = logging.getLogger(__name__)

LATENCIES_KEPT = 100_000  # per run, for the latency summary at shutdown
ARCHIVE_INTERVAL = 3600  # seconds between archive passes


@dataclass
class Job:
    """A stage to run every ``interval`` seconds; ``run()`` returns a one-line summary."""

    name: str
    interval: float  # seconds between passes; ignored when ``daily_at_hour`` is set
    run: object  # callable() -> str | None
    daily_at_hour: int | None = None  # UTC hour of a once-a-day job
    run_at_start: bool = True
    passes: int = 0
    failures: int = 0
    busy_seconds: float = 0.0

    def close(self):
        """Called once at shutdown; returns a summary line or None."""
        closer = getattr(self.run, "close", None)
        return closer() if closer else None


class SitePasses:
    """The site job: one SiteBuilder kept across passes, latencies gathered over the run."""

    def __init__(self, builder):
        self.builder = builder
        self.latencies = []

    def __call__(self):
        summary = self.builder.build()
        self.latencies.extend(summary.latencies)
        del self.latencies[:-LATENCIES_KEPT]
        return summary.describe()

    def close(self):
        if not self.latencies:
            return None
        return (
            f"sample->page latency over the run: p50 {percentile(self.latencies, 50):.1f} s, "
            f"p95 {percentile(self.latencies, 95):.1f} s, max {max(self.latencies):.1f} s "
            f"({len(self.latencies)} samples)"
        )


class SacctPasses:
    """``[jobs] sacct`` every ``sacct_interval``: jobs changed since the last pass, running ones too.

    The first pass reaches back ``[jobs] keep_days``; each later one from the
    previous pass's start, less one interval, so a job that changed while a
    pass ran is read again rather than missed (the import is idempotent).
    """

    def __init__(self, config, clock=time.time):
        self.config = config
        self.clock = clock
        self.since = None

    def __call__(self):
        now = self.clock()
        jobs = self.config.jobs
        since = self.since if self.since is not None else now - jobs.keep_days * 86400
        counts, malformed = run_sacct(self.config, since)
        self.since = now - jobs.sacct_interval
        text = f"{counts.new} new jobs, {counts.changed} changed"
        return text + (f", {malformed} malformed lines skipped" if malformed else "")


def default_jobs(config, data_dir=None, graphs_dir=None, site_dir=None):
    """The jobs ``[schedule]`` asks for: plot, site and the daily export."""
    # One graphs dir for both stages, so the pages look where the plotter draws.
    graphs_dir = graphs_dir or graphs_dir_of(config)
    jobs = []
    if config.schedule.plot:

        def plot_pass():
            # The site pass's status.json says which hosts [plot] eager draws in full.
            status_file = Path(site_dir or config.site.out_dir) / "status.json"
            summary = run_plot(
                config, data_dir=data_dir, out_dir=graphs_dir, status_file=status_file
            )
            return (
                f"{summary.drawn} graphs drawn, {summary.skipped} skipped "
                f"in {summary.seconds:.2f} s"
            )

        jobs.append(Job("plot", config.schedule.plot, plot_pass))
    if config.schedule.site:
        builder = SiteBuilder(config, data_dir, graphs_dir, site_dir)
        jobs.append(Job("site", config.schedule.site, SitePasses(builder)))
    if config.export.enabled:
        config = config.with_overrides(data_dir=data_dir)
        jobs.append(archive_job(config))
        if config.export.resolution != "raw":  # the consolidated daily file, as before
            jobs.append(daily_export_job(config))
    if config.jobs.sacct and config.jobs.sacct_interval:
        jobs.append(
            Job(
                "sacct",
                config.jobs.sacct_interval,
                SacctPasses(config.with_overrides(data_dir=data_dir)),
            )
        )
    return jobs


def archive_job(config):
    """The permanent archive, hourly and at start (catching up every missing day).

    Hourly, not daily: yesterday's file is there within the hour after
    midnight, before the recorder may delete any journal day, and a day that
    could not be written (a full disk) is retried within the hour. A pass
    with nothing new to archive reads only the rows received since the last.
    An archive directory that cannot be written is an error here, at start.
    """
    from affair.outputs.archive import (  # noqa: PLC0415 - uproot is heavy
        check_writable,
        run_archive_politely,
    )

    check_writable(Path(config.export.directory))

    def archive_pass():
        return run_archive_politely(config).describe()

    return Job("archive", ARCHIVE_INTERVAL, archive_pass)


def daily_export_job(config, now=time.time):
    """Yesterday's samples to ``[export] directory`` every day at ``[export] hour`` (UTC)."""
    from affair.outputs.export import run_daily_export  # noqa: PLC0415 - uproot is heavy

    def export_pass():
        return f"wrote {run_daily_export(config)}"

    yesterday = day_name(now() - 86400)
    missing = not (Path(config.export.directory) / f"affair-{yesterday}.root").exists()
    return Job("export", 86400, export_pass, daily_at_hour=config.export.hour, run_at_start=missing)


def run_schedule(jobs, stop, seconds=None):
    """Run ``jobs`` until ``stop`` is set or ``seconds`` pass; the first passes start at once."""
    if not jobs:
        raise AffairError("nothing to schedule: every [schedule] interval is 0")
    # APScheduler logs every run at INFO; we log each pass ourselves. Its warnings stay
    # (a pass skipped because the previous one is still running).
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(len(jobs))},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )
    for job in jobs:
        if job.daily_at_hour is not None:
            trigger = {"trigger": "cron", "hour": job.daily_at_hour, "minute": 5}
            when = f"daily at {job.daily_at_hour:02d}:05 UTC"
        else:
            trigger = {"trigger": "interval", "seconds": job.interval}
            when = f"every {job.interval:g} s"
        if job.run_at_start:
            trigger["next_run_time"] = datetime.now(UTC)
        scheduler.add_job(_run_pass, args=[job], id=job.name, name=job.name, **trigger)
        log.info("scheduled %s %s", job.name, when)
    scheduler.start()
    try:
        stop.wait(seconds)
    finally:
        log.info("stopping: waiting for running passes to finish")
        scheduler.shutdown(wait=True)
        for job in jobs:
            log.info("%s: %d passes, %d failed", job.name, job.passes, job.failures)
            closing = job.close()
            if closing:
                log.info("%s: %s", job.name, closing)


def _run_pass(job):
    started = time.monotonic()
    job.passes += 1
    try:
        summary = job.run()
    except AffairError as error:
        job.failures += 1
        log.error("%s pass %d failed: %s", job.name, job.passes, error)
    except Exception:
        job.failures += 1
        log.exception("%s pass %d failed", job.name, job.passes)
    else:
        if summary:  # the plot and site summaries say their own time
            log.info("%s pass %d: %s", job.name, job.passes, summary)
        else:
            elapsed = time.monotonic() - started
            log.info("%s pass %d done in %.2f s", job.name, job.passes, elapsed)
    finally:
        job.busy_seconds += time.monotonic() - started


def schedule_forever(
    config, data_dir=None, graphs_dir=None, site_dir=None, seconds=None, stop=None
):
    """``affair schedule``: the configured jobs until SIGTERM/SIGINT (or ``seconds``)."""
    stop = stop or threading.Event()
    # A scheduler killed mid-write leaves temporary PNGs and pages behind; the
    # next one sweeps them (once: a walk of every graph each pass would cost).
    for directory in {
        Path(graphs_dir or graphs_dir_of(config)),
        Path(site_dir or config.site.out_dir),
    }:
        swept = sweep_temporaries(directory, time.time())
        if swept:
            log.info(
                "removed %d temporary files under %s left by an interrupted write", swept, directory
            )
    run_schedule(default_jobs(config, data_dir, graphs_dir, site_dir), stop, seconds)
