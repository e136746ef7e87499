"""Collector footprint: CPU (% of one core) and RSS of affair-collector with every probe on,
next to collectd with the same plugins (the baseline, measured in the same run when installed).

Both send to one recorder on loopback (collectd through the Graphite listener),
every ``--interval`` seconds, for ``--minutes``; both are measured from outside
with psutil (CPU time used over the window, RSS sampled every few seconds).
The issue's target for the collector: under 0.5 % of a core and 40 MB RSS.

    .venv/bin/python benchmarks/footprint.py --minutes 10
"""

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
COLLECTD = shutil.which("collectd") or shutil.which("collectd", path="/usr/sbin:/sbin")
PLUGIN_DIR = Path("/usr/lib/collectd")
TYPES_DB = Path("/usr/share/collectd/types.db")

CONFIG = """
[recorder]
step = {interval}

[collector]
interval = {interval}
probes = ["system", "disks", "net", "processes"]

[[collector.processes]]
instance = "recorder"
cmdline = "affair record"

[[collector.processes]]
name = "collectd"

[[collector.processes]]
name = "sshd"
"""

COLLECTD_CONFIG = """
Hostname "collectdbench"
FQDNLookup false
Interval {interval}
BaseDir "{directory}"
PIDFile "{directory}/collectd.pid"
PluginDir "{plugin_dir}"
TypesDB "{types_db}"
LoadPlugin cpu
LoadPlugin load
LoadPlugin memory
LoadPlugin swap
LoadPlugin disk
LoadPlugin df
<Plugin df>
  FSType "tmpfs"
  FSType "devtmpfs"
  FSType "overlay"
  FSType "squashfs"
  IgnoreSelected true
  ValuesPercentage true
  ReportInodes true
</Plugin>
LoadPlugin interface
<Plugin interface>
  Interface "lo"
  IgnoreSelected true
</Plugin>
LoadPlugin processes
<Plugin processes>
  ProcessMatch "recorder" "affair record"
  Process "collectd"
  Process "sshd"
</Plugin>
LoadPlugin write_graphite
<Plugin write_graphite>
  <Node "affair">
    Host "127.0.0.1"
    Port "{port}"
    Protocol "tcp"
  </Node>
</Plugin>
"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Footprint:
    """CPU seconds over a window and RSS samples of one process, measured from outside."""

    def __init__(self, pid):
        self.process = psutil.Process(pid)
        self.rss = []
        self._start = None

    def begin(self):
        times = self.process.cpu_times()
        self._start = (times.user + times.system, time.monotonic())

    def sample_rss(self):
        self.rss.append(self.process.memory_info().rss)

    def result(self):
        times = self.process.cpu_times()
        cpu, started = self._start
        wall = time.monotonic() - started
        return {
            "cpu_pct": 100.0 * (times.user + times.system - cpu) / wall,
            "rss_max_mb": max(self.rss) / 2**20,
            "rss_mean_mb": sum(self.rss) / len(self.rss) / 2**20,
        }


def run(minutes, interval, with_collectd):
    work = Path(tempfile.mkdtemp(prefix="affair-footprint-"))
    config = work / "affair.toml"
    config.write_text(CONFIG.format(interval=interval))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    graphite = free_port()
    python = sys.executable
    children = {}
    logs = []

    def start(name, command):
        log = open(work / f"{name}.log", "w")  # noqa: SIM115 - closed at the end
        logs.append(log)
        children[name] = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    try:
        start(
            "recorder",
            [python, "-m", "affair", "record", "--config", str(config), "--listen", endpoint]
            + ["--data-dir", str(work / "data"), "--graphite", str(graphite)],
        )
        time.sleep(2)
        start(
            "collector",
            [
                python,
                "-m",
                "affair.collectors.main",
                "--config",
                str(config),
                "--recorder",
                endpoint,
            ]
            + ["--host", "affairbench", "--log-level", "WARNING"],
        )
        if with_collectd:
            collectd_config = work / "collectd.conf"
            collectd_config.write_text(
                textwrap.dedent(
                    COLLECTD_CONFIG.format(
                        interval=interval,
                        directory=work,
                        plugin_dir=PLUGIN_DIR,
                        types_db=TYPES_DB,
                        port=graphite,
                    )
                )
            )
            start("collectd", [COLLECTD, "-f", "-C", str(collectd_config)])
        warm_up = 2 * interval + 1  # start-up and the first samples are not the steady state
        print(f"warming up for {warm_up} s, then measuring for {minutes} min...", flush=True)
        time.sleep(warm_up)
        for name, child in children.items():
            if child.poll() is not None:
                raise SystemExit(f"{name} exited early; see {work}/{name}.log")
        measured = {name: Footprint(children[name].pid) for name in children if name != "recorder"}
        for footprint in measured.values():
            footprint.begin()
            footprint.sample_rss()
        deadline = time.monotonic() + minutes * 60
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            for footprint in measured.values():
                footprint.sample_rss()
        results = {name: footprint.result() for name, footprint in measured.items()}
    finally:
        for child in reversed(list(children.values())):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(15)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        for log in logs:
            log.close()
    series = sorted(p.relative_to(work / "data").as_posix() for p in (work / "data").rglob("*.rrd"))
    shutil.rmtree(work, ignore_errors=True)
    return results, series


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="measuring window (default 10)")
    parser.add_argument("--interval", type=int, default=10, help="seconds between samples")
    parser.add_argument("--no-collectd", action="store_true", help="skip the collectd baseline")
    args = parser.parse_args(argv)
    with_collectd = not args.no_collectd and bool(COLLECTD) and TYPES_DB.exists()
    if not with_collectd and not args.no_collectd:
        print("collectd is not installed: measuring the collector alone", flush=True)
    results, series = run(args.minutes, args.interval, with_collectd)
    print(f"\ninterval {args.interval} s, window {args.minutes:g} min, {len(series)} RRD files")
    print(f"{'process':<12}{'CPU % of a core':>18}{'RSS max MB':>13}{'RSS mean MB':>13}")
    for name, result in results.items():
        print(
            f"{name:<12}{result['cpu_pct']:>18.3f}{result['rss_max_mb']:>13.1f}"
            f"{result['rss_mean_mb']:>13.1f}"
        )
    collector = results["collector"]
    if "collectd" in results:
        baseline = results["collectd"]
        print(
            f"collector / collectd: CPU x{collector['cpu_pct'] / max(baseline['cpu_pct'], 1e-9):.2f}, "
            f"RSS x{collector['rss_max_mb'] / baseline['rss_max_mb']:.2f}"
        )
    verdict = collector["cpu_pct"] < 0.5 and collector["rss_max_mb"] < 40
    print(f"target (< 0.5 % of a core, < 40 MB): {'met' if verdict else 'NOT met'}")
    print("series:", ", ".join(series))
    return 0


if __name__ == "__main__":
    sys.exit(main())
