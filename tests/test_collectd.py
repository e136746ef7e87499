"""A real collectd feeds the recorder through write_graphite (skipped where collectd is absent).

scripts/bootstrap --test installs Debian's collectd-core; the test runs it in
the foreground with its own config (cpu and memory, every second) and
stops it itself.
"""

import shutil
import signal
import subprocess
import textwrap
from pathlib import Path

import psutil
import pytest

from tests.conftest import wait_for
from tests.test_client import journal_rows

COLLECTD = shutil.which("collectd") or shutil.which("collectd", path="/usr/sbin:/sbin")
PLUGIN_DIR = Path("/usr/lib/collectd")
TYPES_DB = Path("/usr/share/collectd/types.db")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (COLLECTD and (PLUGIN_DIR / "write_graphite.so").exists() and TYPES_DB.exists()),
        reason="collectd (Debian's collectd-core) is not installed",
    ),
]

CONFIG = """
[recorder]
step = 1

[archive]
ladder = ["1s:900"]
"""


def collectd_config(directory, port):
    return textwrap.dedent(
        f"""
        Hostname "collectdtest"
        FQDNLookup false
        Interval 1
        BaseDir "{directory}"
        PIDFile "{directory}/collectd.pid"
        PluginDir "{PLUGIN_DIR}"
        TypesDB "{TYPES_DB}"
        LoadPlugin logfile
        <Plugin logfile>
          LogLevel info
          File "{directory}/collectd.log"
        </Plugin>
        LoadPlugin cpu
        <Plugin cpu>
          ReportByCpu false
          ReportByState true
          ValuesPercentage true
        </Plugin>
        LoadPlugin memory
        LoadPlugin write_graphite
        <Plugin write_graphite>
          <Node "affair">
            Host "127.0.0.1"
            Port "{port}"
            Protocol "tcp"
            LogSendErrors true
            EscapeCharacter "_"
          </Node>
        </Plugin>
        """
    )


def test_collectd_cpu_and_memory_land_in_the_recorder(recorder, tmp_path):
    process = recorder(CONFIG, extra_args=["--graphite", "0"])
    port = process.graphite_port()
    config_path = tmp_path / "collectd.conf"
    config_path.write_text(collectd_config(tmp_path, port))
    collectd = subprocess.Popen(
        [COLLECTD, "-f", "-C", str(config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:

        def latest():
            """The newest journaled sample (one collectd reading) of cpu and of memory."""
            found = {}
            for _, _, host, dataset, _instance, values in journal_rows(process.data_dir):
                if host == "collectdtest" and (dataset != "cpu" or "percent_idle" in values):
                    found[dataset] = values
            return found if {"cpu", "memory"} <= set(found) else None

        found = wait_for(latest, timeout=40, what="collectd's cpu and memory values")
    finally:
        collectd.send_signal(signal.SIGTERM)
        try:
            collectd.wait(10)
        except subprocess.TimeoutExpired:
            collectd.kill()
            collectd.wait()
    cpu, memory = found["cpu"], found["memory"]
    states = [value for name, value in cpu.items() if name.startswith("percent_")]
    assert {"percent_user", "percent_system", "percent_idle"} <= set(cpu)
    assert all(0 <= value <= 100 for value in states)
    assert sum(states) == pytest.approx(100, abs=2)  # one reading's states add up
    total = psutil.virtual_memory().total
    assert {"memory_used", "memory_free", "memory_cached"} <= set(memory)
    assert sum(memory.values()) == pytest.approx(total, rel=0.1)  # they partition RAM
    rrds = [process.data_dir / "collectdtest" / f"{dataset}.rrd" for dataset in ("cpu", "memory")]
    # journaled first, then written by the recorder's writer process: wait for the files
    wait_for(lambda: all(path.exists() for path in rrds), what="collectd's RRDs")
