"""A real VictoriaMetrics (Debian's ``victoria-metrics``) on loopback, for the forwarding tests.

Its own data dir and ports; self-scrape is off by default in the Debian
build and nothing else reaches out. ``-dedup.minScrapeInterval=1ms`` keeps
one sample per series and millisecond, so a batch the forwarder sent twice
(after a kill) reads back once.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.conftest import wait_for

BINARY = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class VictoriaMetrics:
    def __init__(self, directory):
        self.directory = Path(directory)
        self.http_port = _free_port()
        self.graphite_port = _free_port()
        self.process = None
        self._log = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def write_url(self):
        return f"{self.url}/write"

    @property
    def graphite_address(self):
        return f"127.0.0.1:{self.graphite_port}"

    def start(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        self._log = open(self.directory / "vm.log", "a")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                BINARY,
                f"-storageDataPath={self.directory / 'data'}",
                f"-httpListenAddr=127.0.0.1:{self.http_port}",
                f"-graphiteListenAddr=127.0.0.1:{self.graphite_port}",
                "-dedup.minScrapeInterval=1ms",
                "-search.disableCache",
                "-retentionPeriod=100y",
                "-loggerLevel=WARN",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._healthy, timeout=30, what="VictoriaMetrics to answer /health")
        return self

    def _healthy(self):
        assert self.process.poll() is None, (self.directory / "vm.log").read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def kill(self):
        """SIGKILL: what it held in memory and had not flushed is gone."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log:
            self._log.close()

    def export(self, match, start=0, end=4_000_000_000):
        """``{(metric name, ((label, value), ...)): [(ms, value), ...]}`` from /api/v1/export."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).read()
        query = urllib.parse.urlencode({"match[]": match, "start": start, "end": end})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as response:
            text = response.read().decode()
        series = {}
        for line in text.splitlines():
            item = json.loads(line)
            metric = dict(item["metric"])
            name = metric.pop("__name__")
            key = (name, tuple(sorted(metric.items())))
            points = sorted(zip(item["timestamps"], item["values"], strict=True))
            series.setdefault(key, []).extend(points)
        return {key: sorted(points) for key, points in series.items()}
