"""The demo serves the live status pages: the web server, and the whole demo end to end."""

import json
import re
import socket
import subprocess
import sys
import urllib.request

import pytest
from conftest import REPO, wait_for

from affair.demo.launcher import serve_site


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_serve_site_falls_back_to_the_next_free_port(tmp_path):
    (tmp_path / "index.html").write_text("<p>hello</p>\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        server, url = serve_site(tmp_path, taken)
        try:
            port = server.server_address[1]
            assert port != taken
            assert url == f"http://127.0.0.1:{port}/"
            assert server.server_address[0] == "127.0.0.1"  # loopback only
            assert fetch(url + "index.html") == "<p>hello</p>\n"
        finally:
            server.shutdown()
            server.server_close()


@pytest.mark.integration
def test_demo_serves_live_pages_with_colours(tmp_path):
    workdir = tmp_path / "demo"
    log_path = tmp_path / "demo.log"
    command = [sys.executable, "-m", "affair", "demo", "--workdir", str(workdir)]
    command += ["--seconds", "50", "--nodes", "5", "--backfill", "10min", "--port", "0"]
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
            index = fetch(url + "index.html")
            status = json.loads(fetch(url + "status.json"))
            assert {"ldc01", "ldc02", "ldc03", "gdc01", "gdc02"} <= set(status["hosts"])
            assert status["hosts"]["ldc03"]["group"] == "ldc"
            for host, info in status["hosts"].items():
                assert f'<td class="h s-{info["colour"]}"><a href="host/{host}.html">' in index
            assert "ldc01" in fetch(url + "host/ldc01.html")
            assert process.wait(timeout=90) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log_path.read_text()
    # by the last pass: 5 simulated nodes, this machine and the recorder's own host
    assert len(json.loads((workdir / "site" / "status.json").read_text())["hosts"]) == 7
    assert "gdc02 stops sending in 30 s" in text
    assert re.search(r"site pass 2: .*sample->page latency p50 [\d.]+ s, p95 [\d.]+ s", text)
    assert re.search(r"site: sample->page latency over the run: p50 [\d.]+ s, p95 [\d.]+ s", text)
