"""The collector: a real process sampling this machine into a real recorder."""

import json
import subprocess
import sys
import time

import pytest
import rrdtool
from affair.collectors.collector import TICK_OFFSET, Collector
from affair.collectors.probes.system import SystemProbe

from tests.conftest import REPO, wait_for

ONE_SECOND_CONFIG = """
[recorder]
step = 1

[archive]
ladder = ["1s:600", "1min:60"]

[datasets.system.variables]
cpu_user = { type = "GAUGE", unit = "%", min = 0, max = 100 }
mem_used = { type = "GAUGE", unit = "B", min = 0 }
net_in   = { type = "DERIVE", unit = "B/s", min = 0 }
"""


def test_system_probe_reads_this_machine():
    values = SystemProbe().sample()[""]
    for name in ("cpu_user", "cpu_system", "cpu_iowait"):
        assert 0.0 <= values[name] <= 100.0, name
    assert values["mem_used"] > 0 and values["mem_free"] > 0
    assert values["load1"] >= 0
    assert values["net_in"] >= 0 and values["disk_read"] >= 0
    assert set(values) >= {
        "load5",
        "load15",
        "swap_used",
        "disk_write",
        "net_out",
        "net_pkts_in",
        "net_pkts_out",
    }


class FakeSender:
    def __init__(self):
        self.samples = []

    def submit(self, *sample):
        self.samples.append(sample)


class BrokenProbe:
    name = "broken"

    def sample(self):
        raise OSError("sensor gone")


class ConstantProbe:
    name = "const"

    def sample(self):
        return {"": {"v": 1.0}, "a": {"v": 2.0}}


def test_ticks_are_aligned_to_the_wall_clock_grid():
    collector = Collector(FakeSender(), [], "h", 10, wall=lambda: 1_800_000_003.0)
    assert collector.next_tick_delay() == pytest.approx(7 + TICK_OFFSET)


def test_a_broken_probe_does_not_stop_the_others():
    sender = FakeSender()
    Collector(sender, [BrokenProbe(), ConstantProbe()], "h1", 10, wall=lambda: 100.0).sample_once()
    assert sender.samples == [
        (100.0, "h1", "const", "", {"v": 1.0}),
        (100.0, "h1", "const", "a", {"v": 2.0}),
    ]


@pytest.mark.integration
def test_a_real_collector_fills_its_rrd(recorder, tmp_path):
    process = recorder(ONE_SECOND_CONFIG)
    stats_file = tmp_path / "collector-stats.json"
    started = time.time()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "affair.collectors.main",
            "--recorder",
            process.endpoint,
            "--host",
            "node01",
            "--interval",
            "1",
            "--count",
            "4",
            "--probes",
            "system",
            "--stats-file",
            str(stats_file),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    stats = json.loads(stats_file.read_text())
    assert (stats["submitted"], stats["acked"], stats["dropped"]) == (4, 4, 0)
    assert "4 samples taken, 4 acked, 0 rejected, 0 dropped, 0 still buffered" in result.stderr
    process.terminate()
    path = process.data_dir / "node01" / "system.rrd"
    (first, _, step), names, rows = rrdtool.fetch(
        str(path), "AVERAGE", "-s", str(int(started) - 2), "-e", str(int(time.time()))
    )
    assert step == 1
    cpu = [row[names.index("cpu_user")] for row in rows if row[names.index("cpu_user")] is not None]
    memory = [
        row[names.index("mem_used")] for row in rows if row[names.index("mem_used")] is not None
    ]
    assert len(cpu) >= 3  # four samples, one per second, each filling its 1 s row
    assert all(0 <= value <= 100 for value in cpu)
    assert all(value > 1e6 for value in memory)
    assert "swap_used" in names  # undeclared variables are recorded too (accept_undeclared)


@pytest.mark.integration
def test_sigterm_stops_the_collector_cleanly(recorder):
    process = recorder(ONE_SECOND_CONFIG)
    collector = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "affair.collectors.main",
            "--recorder",
            process.endpoint,
            "--host",
            "node02",
            "--interval",
            "1",
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    wait_for(  # sampling and delivering when the signal comes
        lambda: (
            (process.data_dir / "node02" / "system.rrd").exists() or collector.poll() is not None
        ),
        what="the collector's first samples in the recorder",
    )
    collector.terminate()
    _, stderr = collector.communicate(timeout=15)
    assert collector.returncode == 0
    assert "collector: SIGTERM received, flushing and stopping" in stderr
    assert "0 still buffered" in stderr


@pytest.mark.integration
def test_the_collector_imports_nothing_heavy():
    code = (
        "import sys, affair.collectors.main; "
        "heavy = {'matplotlib', 'jinja2', 'uproot', 'rrdtool', 'numpy', 'apscheduler'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.integration
def test_bad_collector_arguments_get_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "affair.collectors.main", "--host", "../etc", "--count", "1"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith("--host '../etc' is not a valid host name")
