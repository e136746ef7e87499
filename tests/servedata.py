"""A real ``affair serve`` process over a site of real RRDs, for the serve and browser tests."""

import http.client
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from conftest import REPO, wait_for
from sitedata import SITE_CONFIG, drive

from affair.config import load_config
from affair.outputs.site import build_site
from affair.storage.rrd_store import RrdStore

# The site tests' config, with the per-node graphs of 6 h left to the server.
SERVE_CONFIG = (
    SITE_CONFIG
    + """
[plot]
node_windows = ["1h", "6h"]
eager = ["1h"]
"""
)


def make_station(root, hosts, now=None, config_text=SERVE_CONFIG):
    """Config, RRDs (``hosts``: name -> drive() keywords) and a built site under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / "affair.toml"
    config_path.write_text(config_text)
    config = load_config(config_path)
    store = RrdStore(config, root / "data")
    now = time.time() if now is None else now
    for host, keywords in hosts.items():
        drive(store, host, now, **keywords)
    site = root / "site"
    build_site(config, root / "data", site / "graphs", site)
    return {
        "root": root,
        "config_path": config_path,
        "config": config,
        "store": store,
        "data": root / "data",
        "site": site,
        "graphs": site / "graphs",
    }


class ServeProcess:
    """``affair serve --listen 127.0.0.1:0`` of a station; its URL from its first line."""

    def __init__(self, station, workers=1, queue=4, extra=()):
        self.station = station
        self.log_path = station["root"] / f"serve-{time.monotonic_ns()}.log"
        command = [sys.executable, "-m", "affair", "serve", "--config", str(station["config_path"])]
        command += ["--data-dir", str(station["data"]), "--graphs", str(station["graphs"])]
        command += ["--site", str(station["site"]), "--listen", "127.0.0.1:0"]
        command += ["--workers", str(workers), "--queue", str(queue), *extra]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO
        )
        found = wait_for(
            lambda: (
                self.process.poll() is None
                and re.search(r"serving on (http://127\.0\.0\.1:\d+/)", self.log())
            ),
            timeout=60,
            what="affair serve's address",
        )
        self.url = found.group(1)
        self.port = urlsplit(self.url).port

    def log(self):
        return self.log_path.read_text()

    def get(self, raw_path, method="GET", headers=None):
        """``(status, headers, body)`` for exactly ``raw_path`` (no client-side normalising)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, raw_path, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def counters(self):
        status, _, body = self.get("/_affair/counters")
        assert status == 200
        return json.loads(body)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def delta(before, after):
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}
