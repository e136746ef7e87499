"""``affair demo --forward``: a local VictoriaMetrics the demo's recorder forwards every sample to.

Debian's single-node ``victoria-metrics`` speaks the same write protocols
as a cluster's ``vminsert``, so this is the production path in miniature:
the recorder's ``[[forward]]`` target is its ``/write`` on loopback, and
PromQL reads the demo's data back (``affair_system_cpu_user``...). It keeps
its data under the demo's workdir and listens on loopback only; its
self-scrape is off by default and it reaches nowhere else.
"""

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from affair.config import DEFAULT_CONFIG

BINARY = "victoria-metrics"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_victoria(workdir: Path, timeout: float = 30.0) -> tuple[subprocess.Popen, str]:
    """Start it on a free loopback port; ``(process, base URL)`` once it answers /health."""
    binary = shutil.which(BINARY)
    if binary is None:
        raise SystemExit(
            "affair demo --forward: no victoria-metrics on PATH "
            "(Debian: apt-get install victoria-metrics; scripts/bootstrap --test installs it)"
        )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(workdir / "victoria-metrics.log", "a")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [
            binary,
            f"-storageDataPath={workdir / 'victoria'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-dedup.minScrapeInterval=1ms",  # a batch resent after a failure reads back once
            "-retentionPeriod=1y",
            "-loggerLevel=WARN",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"victoria-metrics exited; see {workdir / 'victoria-metrics.log'}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return process, url
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    process.kill()
    raise SystemExit("victoria-metrics did not answer on /health in time")


def forward_config(config_path: str | None, workdir: Path, url: str) -> Path:
    """The demo's config plus a ``[[forward]]`` target at ``url``, written under ``workdir``."""
    text = Path(config_path or DEFAULT_CONFIG).read_text()
    path = workdir / "affair-forward.toml"
    path.write_text(
        f"{text}\n\n# added by affair demo --forward\n"
        f'[[forward]]\nname = "demo_vm"\nkind = "influx"\nurl = "{url}/write"\n'
    )
    return path
