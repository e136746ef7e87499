"""Every command answers --help; the demo runs the whole path on loopback."""

import subprocess
import sys
import time

import pytest
import rrdtool

from tests.conftest import REPO

COMMANDS = [
    ["affair", "--help"],
    ["affair", "record", "--help"],
    ["affair", "check-config", "--help"],
    ["affair", "demo", "--help"],
    ["affair-collector", "--help"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_help(command):
    executable = REPO / ".venv" / "bin" / command[0]
    result = subprocess.run(
        [str(executable), *command[1:]], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "usage:" in result.stdout
    assert len(result.stdout.splitlines()) > 3


@pytest.mark.parametrize("command", [["--help"], ["plot", "--help"]], ids=" ".join)
def test_help_does_not_import_matplotlib(command):
    # the plot runner is imported inside `affair plot` only, for start-up cost
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "affair", *command],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: affair")
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "affair.cli" in imported  # the import log is there to be read
    assert [name for name in imported if name.split(".")[0] == "matplotlib"] == []


@pytest.mark.integration
def test_demo_leaves_history_and_live_rows(tmp_path):
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "affair",
            "demo",
            "--workdir",
            str(workdir),
            "--seconds",
            "25",
            "--nodes",
            "3",
            "--backfill",
            "2h",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RRDs for 3 simulated nodes" in result.stdout
    data = workdir / "data"
    hosts = sorted(p.name for p in data.iterdir() if not p.name.startswith("_"))
    assert {"ldc01", "ldc02", "gdc01", "affair"} <= set(hosts)
    assert len(hosts) == 5  # plus this machine's real collector
    path = data / "ldc01" / "system.rrd"
    last = int(rrdtool.lastupdate(str(path))["date"].timestamp())
    assert time.time() - last < 30  # live rows up to the end of the run
    for start, resolution, at_least in ((last - 3500, 10, 340), (last - 7200, 60, 110)):
        (_, _, step), names, rows = rrdtool.fetch(
            str(path), "AVERAGE", "-s", str(start), "-e", str(last), "-r", str(resolution)
        )
        column = names.index("cpu_user")
        known = [row[column] for row in rows if row[column] is not None]
        assert step == resolution
        assert len(known) >= at_least  # the backfilled history, at 10 s and consolidated to 1 min
        assert all(0 <= value <= 100 for value in known)
    assert "Traceback" not in result.stderr
