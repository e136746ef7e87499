"""The scheduler: passes on intervals, never overlapping, logged."""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from conftest import REPO, wait_for
from sitedata import SITE_CONFIG, drive, site_config

from affair.errors import AffairError
from affair.outputs import schedule
from affair.outputs.schedule import Job, SitePasses, default_jobs, run_schedule
from affair.outputs.site import SiteBuilder
from affair.storage.rrd_store import RrdStore


class Recording:
    """A job body that records when each pass ran, optionally slow or failing."""

    def __init__(self, seconds=0.0, fail=False, on_start=None):
        self.seconds = seconds
        self.fail = fail
        self.on_start = on_start
        self.spans = []
        self.lock = threading.Lock()

    def __call__(self):
        started = time.monotonic()
        if self.on_start is not None:
            self.on_start()
        time.sleep(self.seconds)
        with self.lock:
            self.spans.append((started, time.monotonic()))
        if self.fail:
            raise RuntimeError("the disk is on fire")
        return f"pass of {self.seconds} s"


@pytest.mark.integration
def test_passes_never_overlap_and_jobs_do_not_wait_for_each_other(caplog):
    slow, fast, failing = Recording(0.45), Recording(), Recording(fail=True)
    jobs = [Job("slow", 0.1, slow), Job("fast", 0.1, fast), Job("failing", 0.2, failing)]
    with caplog.at_level(logging.INFO):
        run_schedule(jobs, threading.Event(), seconds=1.6)

    assert 2 <= len(slow.spans) <= 4
    for (_, end), (start, _) in zip(slow.spans, slow.spans[1:], strict=False):
        assert start >= end  # the next pass began only after the previous one ended
    assert len(fast.spans) >= 6  # kept its own pace while 'slow' ran
    assert jobs[0].passes == len(slow.spans) and jobs[0].failures == 0
    assert jobs[2].failures == jobs[2].passes >= 3  # a failing pass does not stop the schedule

    messages = [r.getMessage() for r in caplog.records]
    assert any(re.fullmatch(r"slow pass 1: pass of 0.45 s", m) for m in messages)
    assert "failing pass 1 failed" in messages
    failure = next(r for r in caplog.records if r.getMessage() == "failing pass 1 failed")
    assert "the disk is on fire" in str(failure.exc_info[1])
    assert any(m.startswith("slow: ") and m.endswith("passes, 0 failed") for m in messages)


def test_stop_waits_for_the_running_pass():
    stop = threading.Event()
    slow = Recording(0.3, on_start=stop.set)  # the stop comes while the pass runs
    run_schedule([Job("slow", 5, slow)], stop)
    returned = time.monotonic()
    assert len(slow.spans) == 1  # and no pass after it
    assert slow.spans[0][1] <= returned  # run_schedule returned once the pass had ended


def test_nothing_to_schedule_is_an_error():
    with pytest.raises(AffairError, match="every \\[schedule\\] interval is 0"):
        run_schedule([], threading.Event(), seconds=0.1)


def test_default_jobs_are_plot_and_site_on_their_intervals(tmp_path):
    config = site_config(SITE_CONFIG + '\n[schedule]\nplot = "1min"\nsite = "30s"\n')
    jobs = default_jobs(config, tmp_path / "data", tmp_path / "graphs", tmp_path / "site")
    assert [(j.name, j.interval) for j in jobs] == [("plot", 60), ("site", 30)]
    assert isinstance(jobs[1].run, SitePasses)


def test_default_jobs_call_the_plotter(monkeypatch, tmp_path):
    calls = []

    status_files = []

    def run_plot(
        config,
        data_dir=None,
        out_dir=None,
        all_graphs=False,
        shard=(0, 1),
        workers=1,
        status_file=None,
    ):
        calls.append((config, data_dir, out_dir))
        status_files.append(status_file)
        return types.SimpleNamespace(drawn=12, skipped=3, seconds=0.25)

    monkeypatch.setattr(schedule, "run_plot", run_plot)
    config = site_config(SITE_CONFIG + '\n[schedule]\nplot = "2min"\nsite = 0\n')
    jobs = default_jobs(config, "data-x", "graphs-x", "site-x")
    assert [(j.name, j.interval) for j in jobs] == [("plot", 120)]
    assert jobs[0].run() == "12 graphs drawn, 3 skipped in 0.25 s"
    assert calls == [(config, "data-x", "graphs-x")]
    assert status_files == [Path("site-x") / "status.json"]  # the site pass's: who is not green
    # without --graphs, plotter and site share the configured graphs dir
    default_jobs(config, "data-x")[0].run()
    assert calls[-1] == (config, "data-x", "graphs")


def test_site_passes_gather_latency_over_the_run(tmp_path):
    config = site_config()
    store = RrdStore(config, tmp_path / "data")
    now = time.time()
    drive(store, "ldc01", now - 30, cpu=10.0)
    passes = SitePasses(SiteBuilder(config, tmp_path / "data", tmp_path / "g", tmp_path / "site"))
    assert passes().startswith("1 hosts, 4 pages in ")
    assert passes.close() is None  # nothing new was shown yet
    drive(store, "ldc01", now, cpu=10.0, steps=3)
    assert "sample->page latency" in passes()
    summary = passes.close()
    assert summary.startswith("sample->page latency over the run: p50 ")
    assert summary.endswith(" (3 samples)")


@pytest.mark.integration
def test_affair_schedule_process_builds_pages_until_sigterm(tmp_path):
    config_path = tmp_path / "affair.toml"
    config_path.write_text(SITE_CONFIG + '\n[schedule]\nsite = "1s"\nplot = 0\n')
    store = RrdStore(site_config(), tmp_path / "data")
    drive(store, "gdc07", time.time(), cpu=99.0)
    out = tmp_path / "site"
    left = out / "host" / ".gdc07.html.0badcafe.tmp"  # by a scheduler killed mid-write
    left.parent.mkdir(parents=True)
    left.write_text("<html>half a pa")
    os.utime(left, (time.time() - 7200, time.time() - 7200))
    log_path = tmp_path / "schedule.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "affair",
                "schedule",
                "--config",
                str(config_path),
                "--data-dir",
                str(tmp_path / "data"),
                "--out",
                str(out),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        try:
            wait_for(lambda: "site pass 2:" in log_path.read_text(), what="two site passes")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log_path.read_text()
    assert "scheduled site every 1 s" in text
    assert re.search(r"site pass 1: 1 hosts, 4 pages in [\d.]+ s; 1 red", text)
    assert "SIGTERM received" in text
    assert re.search(r"site: \d+ passes, 0 failed", text)
    status = json.loads((out / "status.json").read_text())
    assert status["hosts"]["gdc07"]["colour"] == "red"
    assert (out / "host" / "gdc07.html").is_file()
    assert not left.exists()
    assert f"removed 1 temporary files under {out} left by an interrupted write" in text


def test_the_daily_export_catches_up_at_start_and_only_when_missing(tmp_path):
    import uproot

    from affair.config import parse_config
    from affair.ingest.validate import Sample
    from affair.outputs.schedule import daily_export_job
    from affair.storage.journal import Journal

    now = time.time()
    yesterday_noon = (int(now) // 86400 - 1) * 86400 + 43200
    config = parse_config(
        {
            "recorder": {"data_dir": str(tmp_path / "data")},
            "export": {"enabled": True, "directory": str(tmp_path / "exports"), "hour": 1},
            "datasets": {"system": {"variables": {"cpu_user": {}}}},
        }
    )
    journal = Journal(tmp_path / "data" / "_journal", clock=lambda: yesterday_noon)
    journal.append(
        [
            Sample(i, yesterday_noon + 10 * i, "ldc01", "system", "", {"cpu_user": float(i)})
            for i in range(3)
        ]
    )
    journal.close()

    job = daily_export_job(config)
    assert (job.daily_at_hour, job.run_at_start) == (1, True)
    stop = threading.Event()
    runner = threading.Thread(target=run_schedule, args=([job], stop))
    runner.start()
    day = time.strftime("%Y-%m-%d", time.gmtime(yesterday_noon))
    output = tmp_path / "exports" / f"affair-{day}.root"
    try:
        wait_for(
            lambda: job.passes == 1 and output.exists(), timeout=60, what="the catch-up export"
        )
    finally:
        stop.set()
        runner.join(30)
    with uproot.open(output) as root:
        tree = root["system"]
        assert list(tree["cpu_user"].array(library="np")) == [0.0, 1.0, 2.0]
        assert list(tree["time"].array(library="np")) == [yesterday_noon + 10 * i for i in range(3)]
    assert daily_export_job(config).run_at_start is False  # yesterday's file exists now


def test_the_sacct_pass_imports_what_the_command_prints_since_its_last_pass(tmp_path):
    import sys

    from affair.config import parse_config
    from affair.outputs.schedule import SacctPasses, default_jobs
    from affair.storage.jobs import JobStore, jobs_path

    fake = tmp_path / "sacct.py"
    fake.write_text(
        "import sys, os\n"
        "print(os.environ['TZ'], sys.argv[1], file=open(sys.argv[2], 'a'))\n"
        "print('1|1|c|p|q|acct|g|1|alice|1|2026-12-01T00:00:00|2026-12-01T00:00:00|"
        "2026-12-01T00:00:00|Unknown|01:00:00|0:0|RUNNING|1|1|1|1G|||UNLIMITED|n1|a|b')\n"
        "print('broken line')\n"
    )
    config = parse_config(
        {
            "recorder": {"data_dir": str(tmp_path / "data")},
            "jobs": {
                "sacct": [sys.executable, str(fake), "{since}", str(tmp_path / "calls")],
                "sacct_interval": "5min",
            },
        }
    )
    assert [job.name for job in default_jobs(config)][-1] == "sacct"
    clock = iter([1_800_000_000.0, 1_800_000_300.0]).__next__
    passes = SacctPasses(config, clock=clock)
    assert passes() == "1 new jobs, 0 changed, 1 malformed lines skipped"
    assert passes() == "0 new jobs, 0 changed, 1 malformed lines skipped"
    assert (tmp_path / "calls").read_text().split("\n")[:2] == [
        "UTC 2026-12-16T08:00:00",  # keep_days (30) back
        "UTC 2027-01-15T07:55:00",  # the first pass's start, less one interval
    ]
    with JobStore(jobs_path(tmp_path / "data")) as store:
        assert store.job("1").record.user == "alice"
