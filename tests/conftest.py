"""Shared fixtures: real recorder and collector processes on loopback, temp configs.

A test that starts a process (a one-shot command too), binds or serves a socket,
or waits seconds of real time is marked ``integration``: ``scripts/test --fast``
runs the rest, in well under a minute. Waits are bounded polls (``wait_for``), not
sleeps; a port a process binds later is held (``HeldPort``) or picked by the binder.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

BASE_CONFIG = """
[recorder]
step = 10

[datasets.system.variables]
cpu_user = { type = "GAUGE", unit = "%", min = 0, max = 100 }
load1 = { type = "GAUGE" }
net_in = { type = "DERIVE", unit = "B/s", min = 0 }
"""


def free_endpoint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


class HeldPort:
    """A loopback port bound but not listening, until ``release()``.

    Connections to it are refused, as to a recorder that is down, and no other
    process can take the port meanwhile: a test that starts (or restarts) a
    recorder on a known endpoint later holds the port until then.
    """

    def __init__(self, endpoint=None):
        port = int(endpoint.rsplit(":", 1)[1]) if endpoint else 0
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.endpoint = f"tcp://127.0.0.1:{self._socket.getsockname()[1]}"

    def release(self):
        self._socket.close()


@pytest.fixture
def closed_endpoint():
    """An endpoint where nobody listens, and nobody will while the test runs."""
    port = HeldPort()
    yield port.endpoint
    port.release()


def write_config(directory, text=BASE_CONFIG, name="affair.toml"):
    path = Path(directory) / name
    path.write_text(textwrap.dedent(text))
    return path


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RecorderProcess:
    """``affair record`` as a real child process."""

    def __init__(self, config_path, data_dir, endpoint=None, extra_args=()):
        self.config_path = Path(config_path)
        self.data_dir = Path(data_dir)
        self.chosen_port = endpoint is None  # then another may be picked if it was taken
        self.endpoint = endpoint or free_endpoint()
        self.extra_args = list(extra_args)
        self.process = None

    @property
    def log_path(self):
        return self.data_dir.parent / f"recorder-{self.endpoint.rsplit(':', 1)[1]}.log"

    def start(self, attempts=3):
        """Start and wait until it listens; a free port another process took meanwhile
        (probing a port and binding it are two steps) is replaced by a new one."""
        for attempt in range(attempts):
            self._start()
            if self.process.poll() is None or not self.chosen_port:
                break
            if "Address already in use" not in self.log() or attempt == attempts - 1:
                break
            self._log.close()
            self.endpoint = free_endpoint()
        assert self.process.poll() is None, f"recorder exited:\n{self.log()}"
        return self

    def _start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "affair",
                "record",
                "--config",
                str(self.config_path),
                "--listen",
                self.endpoint,
                "--data-dir",
                str(self.data_dir),
                *self.extra_args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        wait_for(
            lambda: "recorder listening" in self.log() or self.process.poll() is not None,
            what="the recorder to listen",
        )

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def graphite_port(self):
        """The port of ``--graphite 0``: the recorder picked a free one and logged it."""
        found = re.search(r"graphite plaintext listening on [^ ]+:(\d+)", self.log())
        assert found, f"the recorder did not say where Graphite listens:\n{self.log()}"
        return int(found.group(1))

    def terminate(self, timeout=15):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=timeout)
        return self.process.returncode

    def kill(self):
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self):
        try:
            self.terminate()
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()


@pytest.fixture
def recorder(tmp_path):
    """A factory: ``recorder(config_text=...)`` starts one; all are stopped at teardown."""
    started = []

    def start(config_text=BASE_CONFIG, data_dir=None, endpoint=None, extra_args=()):
        config_path = write_config(tmp_path, config_text, name=f"affair-{len(started)}.toml")
        process = RecorderProcess(config_path, data_dir or tmp_path / "data", endpoint, extra_args)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
