"""Two real stations, collectors split between them, one failing over, one index over both.

Real recorder and collector processes on loopback: a1 and a2 send to
station A, b1 to station B, and c1 to a station C that is down, with B as
its fallback. B records c1 like its own hosts; A's index shows every host,
B's linking to B's pages.
"""

import json
import sqlite3
import subprocess
import sys

import pytest

from affair.config import load_config
from affair.outputs.site import build_site
from tests.conftest import REPO, HeldPort, wait_for, write_config

pytestmark = pytest.mark.integration

STATION = """
[recorder]
step = 1
heartbeat = 2
self_interval = 1

[archive]
ladder = ["1s:600"]

[collector]
interval = 1
resend_timeout = 1
backoff_cap = 1
fallback_after = 2

[datasets.system.variables]
cpu_user = {{ type = "GAUGE", unit = "%", min = 0, max = 100 }}
load1 = {{ type = "GAUGE" }}
{site}
"""


def start_collector(config_path, endpoint, host, workdir, fallback=None):
    log = open(workdir / f"{host}.log", "w")  # noqa: SIM115 - the child owns it
    extra = ["--fallback", fallback] if fallback else []
    return subprocess.Popen(
        [sys.executable, "-m", "affair.collectors.main", "--config", str(config_path)]
        + ["--recorder", endpoint, "--host", host, "--interval", "1", *extra],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


def journaled_hosts(data_dir):
    hosts = set()
    for path in (data_dir / "_journal").glob("*.sqlite"):
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            hosts |= {row[0] for row in connection.execute("SELECT DISTINCT host FROM series")}
        finally:
            connection.close()
    return hosts


def test_two_stations_one_failing_over_and_one_index_over_both(recorder, tmp_path):
    station_b_site = tmp_path / "site-b"
    site_a = f'[site]\n[[site.stations]]\nname = "b"\nstatus = "{station_b_site}/status.json"'
    a = recorder(STATION.format(site=site_a), data_dir=tmp_path / "a")
    b = recorder(STATION.format(site=""), data_dir=tmp_path / "b")
    collector_config = write_config(tmp_path, STATION.format(site=""), "collectors.toml")
    down = HeldPort()  # station C: its port refuses every connection
    children = [
        start_collector(collector_config, a.endpoint, "a1", tmp_path),
        start_collector(collector_config, a.endpoint, "a2", tmp_path),
        start_collector(collector_config, b.endpoint, "b1", tmp_path),
        start_collector(collector_config, down.endpoint, "c1", tmp_path, fallback=b.endpoint),
    ]
    try:
        wait_for(
            lambda: (
                journaled_hosts(tmp_path / "a") >= {"a1", "a2"}
                and journaled_hosts(tmp_path / "b") >= {"b1", "c1"}
                and (tmp_path / "b" / "c1" / "system.rrd").exists()
            ),
            timeout=60,
            what="each station to record its hosts, c1 through the fallback",
        )
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)
        down.release()
    assert "c1" not in journaled_hosts(tmp_path / "a")
    assert "sending to the fallback" in (tmp_path / "c1.log").read_text()

    config_b = load_config(b.config_path)
    build_site(config_b, tmp_path / "b", tmp_path / "graphs-b", station_b_site)
    status_b = json.loads((station_b_site / "status.json").read_text())
    assert {"b1", "c1"} <= set(status_b["hosts"])

    config_a = load_config(a.config_path)
    build_site(config_a, tmp_path / "a", tmp_path / "graphs-a", tmp_path / "site-a")
    index = (tmp_path / "site-a" / "index.html").read_text()
    for host in ("a1", "a2"):
        assert f'href="host/{host}.html">{host}</a>' in index
    for host in ("b1", "c1"):
        assert f'<a href="{station_b_site}/host/{host}.html">{host}</a>' in index
        assert (station_b_site / "host" / f"{host}.html").exists()
