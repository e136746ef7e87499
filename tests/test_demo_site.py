"""The demo: its web server, and the whole demo end to end (history, live rows, live pages)."""

import json
import re
import socket
import subprocess
import sys
import urllib.request

import pytest
import rrdtool
from affair.collectors import main as collector_main
from conftest import REPO, wait_for

from affair import cli
from affair.config import DEFAULT_CONFIG
from affair.demo import eventbuilder
from affair.demo.launcher import (
    free_port,
    local_host_name,
    recorder_and_sources,
    scheduler_arguments,
    server_arguments,
)
from affair.storage.journal import read_after


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_the_demo_starts_each_process_with_arguments_its_own_parser_takes(tmp_path):
    started = recorder_and_sources("tcp://127.0.0.1:5999", 2003, tmp_path / "data", 10)
    assert [(what, arguments[:2], takes_config) for what, arguments, takes_config in started] == [
        ("recorder", ["-m", "affair"], True),
        ("collector", ["-m", "affair.collectors.main"], True),
        ("event builder", ["-m", "affair.demo.eventbuilder"], False),
    ]
    recorder = cli.build_parser().parse_args(started[0][1][2:])
    assert (recorder.handler, recorder.listen, recorder.graphite, recorder.data_dir) == (
        cli.cmd_record,
        "tcp://127.0.0.1:5999",
        "2003",
        str(tmp_path / "data"),
    )
    collector = collector_main.build_parser().parse_args(started[1][1][2:])
    builder = eventbuilder.build_parser().parse_args(started[2][1][2:])
    for parsed in (collector, builder):
        assert (parsed.recorder, parsed.host, parsed.interval) == (
            "tcp://127.0.0.1:5999",
            local_host_name(),
            10,
        )
    scheduler = cli.build_parser().parse_args(
        scheduler_arguments(tmp_path / "data", tmp_path / "site" / "graphs", tmp_path / "site")[2:]
    )
    assert (
        scheduler.handler,
        scheduler.data_dir,
        scheduler.graphs,
        scheduler.out,
        scheduler.eager,
    ) == (
        cli.cmd_schedule,
        str(tmp_path / "data"),
        str(tmp_path / "site" / "graphs"),
        str(tmp_path / "site"),
        "1h",  # the other per-node graphs are drawn by affair serve when viewed
    )


def test_the_demo_serves_on_the_next_free_port_on_loopback(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        port = free_port(taken)
        assert port != taken
    server = cli.build_parser().parse_args(
        server_arguments(tmp_path / "data", tmp_path / "site" / "graphs", tmp_path / "site", port)[
            2:
        ]
    )
    assert (server.handler, server.data_dir, server.graphs, server.site, server.listen) == (
        cli.cmd_serve,
        str(tmp_path / "data"),
        str(tmp_path / "site" / "graphs"),
        str(tmp_path / "site"),
        f"127.0.0.1:{port}",  # loopback only
    )


def demo_config(directory):
    """The shipped config with a site pass every 2 s instead of 30 s: passes after the
    first (which report the latency of new samples) come within a 20 s run, not after 30 s.
    Everything else is as shipped."""
    shipped = DEFAULT_CONFIG.read_text()
    text = shipped.replace('site = "30s"', 'site = "2s"', 1)
    assert text != shipped, "the shipped [schedule] site changed: update this test"
    path = directory / "affair.toml"
    path.write_text(text)
    return path


@pytest.mark.integration
def test_the_demo_backfills_history_records_live_rows_and_serves_live_pages(tmp_path):
    workdir = tmp_path / "demo"
    log_path = tmp_path / "demo.log"
    command = [sys.executable, "-m", "affair", "demo", "--workdir", str(workdir)]
    command += ["--config", str(demo_config(tmp_path))]
    command += ["--seconds", "25", "--nodes", "5", "--backfill", "2h", "--port", "0"]
    command += ["--telescopes", "3"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            found = wait_for(
                lambda: re.search(
                    r"status pages on (http://127\.0\.0\.1:\d+/)", log_path.read_text()
                ),
                timeout=60,
                what="the demo's address",
            )
            url = found.group(1)
            wait_for(lambda: "site pass 1:" in log_path.read_text(), timeout=60, what="a pass")
            # the pages, served while the demo runs
            index = fetch(url + "index.html")
            status = json.loads(fetch(url + "status.json"))
            assert {"ldc01", "ldc02", "ldc03", "gdc01", "gdc02"} <= set(status["hosts"])
            assert status["hosts"]["ldc03"]["group"] == "ldc"
            for host, info in status["hosts"].items():
                assert f'<td class="h s-{info["colour"]}"><a href="host/{host}.html">' in index
            page = fetch(url + "host/ldc01.html")
            assert "ldc01" in page
            # a 6 h graph: not drawn by the schedule (--eager 1h), drawn by affair serve on view
            assert 'data-w6h="../graphs/node/ldc01/system.6h.png' in page
            with urllib.request.urlopen(url + "graphs/node/ldc01/system.6h.png", timeout=60) as png:
                assert png.headers["Content-Type"] == "image/png"
                assert png.read(8) == b"\x89PNG\r\n\x1a\n"
            assert process.wait(timeout=90) == 0  # --seconds ends it
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log_path.read_text()
    assert "RRDs for 5 simulated nodes" in text
    assert "gdc02 stops sending in 30 s" in text
    # a later pass, one after new samples arrived, says how long they took to reach a page
    assert re.search(r"site pass \d+: .*sample->page latency p50 [\d.]+ s, p95 [\d.]+ s", text)
    assert re.search(r"site: sample->page latency over the run: p50 [\d.]+ s, p95 [\d.]+ s", text)
    assert "Traceback" not in text

    # 5 simulated nodes, this machine (its collector and event builder), the recorder's
    # own host and the pipeline's (3 telescopes, 2 stereo hosts, the data recorder): each
    # has its RRDs, and the last pass showed each
    data = workdir / "data"
    hosts = sorted(p.name for p in data.iterdir() if not p.name.startswith("_"))
    assert {"ldc01", "ldc02", "ldc03", "gdc01", "gdc02", "recorder"} <= set(hosts)
    assert {"tel01", "tel02", "tel03", "stereo01", "stereo02", "datarec01"} <= set(hosts)
    assert len(hosts) == 13
    status = json.loads((workdir / "site" / "status.json").read_text())
    assert len(status["hosts"]) == 13
    # the pipeline's slow and lossy links are red, its dead one grey, on the tree too
    problems = {  # the pipeline's (the delivery latency to the recorder depends on the load)
        (p["source"], p["target"]): p["colour"]
        for p in status["links"]["problems"]
        if p["target"] != "recorder/recorder"  # the recorder's own daemon
    }
    assert problems == {
        ("tel02/r0dl1", "tel02/dl1dl2"): "red",
        ("tel03/dl1dl2", "stereo01/stereo"): "red",
        ("tel01/camera", "tel01/r0dl1"): "grey",
    }
    tree = (workdir / "site" / "topology.html").read_text()
    assert 'id="link&#45;tel02_r0dl1__tel02_dl1dl2" class="edge link red"' in tree
    assert 'id="link&#45;tel01_camera__tel01_r0dl1" class="edge link grey"' in tree

    # simulated batch jobs, told to the recorder as the Slurm hooks do: running and
    # finished ones on the jobs index, a page each with its graphs and flags
    jobs_dir = workdir / "site" / "jobs"
    jobs_index = (jobs_dir / "index.html").read_text()
    assert '<tr class="running">' in jobs_index and '<tr class="finished">' in jobs_index
    pages = {page.stem: page.read_text() for page in jobs_dir.glob("[0-9]*.html")}
    assert len(pages) >= 5
    assert any('<span class="flag">idle nodes</span>' in page for page in pages.values())
    assert any('<span class="flag">swapping</span>' in page for page in pages.values())
    assert all((jobs_dir / jobid / "cpu.png").exists() for jobid in pages)
    # and a host page lists the jobs that ran on it
    host_pages = [page.read_text() for page in (workdir / "site" / "host").glob("*.html")]
    assert any("<h2>Recent jobs</h2>" in page and 'href="../jobs/41' in page for page in host_pages)

    # the backfilled history, at 10 s and consolidated to 1 min, then live rows to the end:
    # more samples than the backfill's 720 (2 h at 10 s), and the RRD holds the newest
    stamps = [
        ts
        for _, ts, host, dataset, _, _ in read_after(data / "_journal", None)
        if (host, dataset) == ("ldc01", "system")
    ]
    assert len(stamps) > 7200 // 10
    path = data / "ldc01" / "system.rrd"
    last = int(rrdtool.lastupdate(str(path))["date"].timestamp())
    assert last == int(max(stamps))
    for start, resolution, at_least in ((last - 3500, 10, 340), (last - 7200, 60, 110)):
        (_, _, step), names, rows = rrdtool.fetch(
            str(path), "AVERAGE", "-s", str(start), "-e", str(last), "-r", str(resolution)
        )
        column = names.index("cpu_user")
        known = [row[column] for row in rows if row[column] is not None]
        assert step == resolution
        assert len(known) >= at_least
        assert all(0 <= value <= 100 for value in known)
