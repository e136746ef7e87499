#!/usr/bin/env python3
"""Sample-to-page latency with N hosts: the whole path, on loopback, in real time.

Starts a real recorder (``affair record``), sends every simulated host's
``system`` sample on the 10 s grid through one Sender (as N collectors
would), and runs the site job under the real scheduler every --interval
seconds for --seconds. A sample's latency is the time the pages showing it
were written minus its timestamp (affair.outputs.site measures it each pass).

The baseline, measured in the same run, is the recorder's own delivery
latency (sample time to RRD write, its ``delivery_max`` self metric): the
part of the latency the site cannot do anything about. The issue's target is
p95 under 60 s with 1,000 hosts.

    .venv/bin/python benchmarks/site_latency.py --hosts 1000 --seconds 180 --interval 30
    .venv/bin/python benchmarks/site_latency.py --hosts 50 --seconds 60      # quick
"""

import argparse
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from affair.collectors.sender import Sender  # noqa: E402

from affair.config import DEFAULT_CONFIG, load_config  # noqa: E402
from affair.demo.launcher import free_tcp_endpoint  # noqa: E402
from affair.demo.simulation import SimulatedNode, host_names  # noqa: E402
from affair.outputs.schedule import Job, SitePasses, run_schedule  # noqa: E402
from affair.outputs.site import SiteBuilder  # noqa: E402
from affair.outputs.status import percentile  # noqa: E402
from affair.storage.rrd_store import RrdStore  # noqa: E402

SHIPPED_LADDER = (
    'ladder = ["10s:360", "1min:360", "4min:360", "30min:336", "2h:372", "6h:368", "1d:366"]'
)
SMALL_LADDER = 'ladder = ["10s:360", "1min:360"]'  # 1,000 full-ladder RRDs would be ~1 GB


class TimedBuilder:
    """A SiteBuilder that remembers how long each pass took."""

    def __init__(self, builder):
        self.builder = builder
        self.seconds = []

    def build(self):
        summary = self.builder.build()
        self.seconds.append(summary.seconds)
        return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=180, help="how long to run live")
    parser.add_argument("--interval", type=float, default=30, help="seconds between site passes")
    parser.add_argument("--workdir", help="keep the data here (default: a temp dir)")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="affair-latency-"))
    workdir.mkdir(parents=True, exist_ok=True)
    shipped = DEFAULT_CONFIG.read_text()
    assert SHIPPED_LADDER in shipped, "the shipped ladder changed: update this benchmark"
    config_path = workdir / "affair.toml"
    config_path.write_text(shipped.replace(SHIPPED_LADDER, SMALL_LADDER))
    config = load_config(config_path)
    step = config.recorder.step
    data = workdir / "data"
    endpoint = free_tcp_endpoint()
    log_path = workdir / "recorder.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    recorder = subprocess.Popen(
        [sys.executable, "-m", "affair", "record", "--config", str(config_path)]
        + ["--listen", endpoint, "--data-dir", str(data)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    nodes = [SimulatedNode(name) for name in host_names(args.hosts)]
    sender = Sender(endpoint, "latency-bench", max_in_flight=2000, per_series_limit=100)
    stop = threading.Event()
    scheduler = None
    try:
        deadline = time.monotonic() + 30
        while "recorder listening" not in log_path.read_text():
            if recorder.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the recorder did not start:\n{log_path.read_text()}")
            time.sleep(0.1)

        # A first sample for every host, so the first pass sees them all.
        tick = int(time.time()) // step * step
        for node in nodes:
            sender.submit(float(tick), node.name, "system", "", node.sample(tick))
        if not sender.flush(120):
            raise SystemExit("the recorder did not take the first samples")
        print(f"{args.hosts} hosts recording into {data}; site every {args.interval:g} s")

        timed = TimedBuilder(SiteBuilder(config, data, workdir / "graphs", workdir / "site"))
        passes = SitePasses(timed)
        job = Job("site", args.interval, passes)
        scheduler = threading.Thread(target=run_schedule, args=([job], stop), daemon=True)
        started_wall = time.time()
        scheduler.start()

        end = time.monotonic() + args.seconds
        tick += step
        while time.monotonic() < end:
            if time.time() >= tick:
                for node in nodes:
                    sender.submit(float(tick), node.name, "system", "", node.sample(tick))
                tick += step
            sender.pump(0.2)
        stop.set()
        scheduler.join(timeout=120)
        sender.flush(10)
        baseline = recorder_delivery(config, data, started_wall, time.time())
    finally:
        stop.set()
        sender.close()
        if recorder.poll() is None:
            recorder.send_signal(signal.SIGTERM)
            try:
                recorder.wait(timeout=60)
            except subprocess.TimeoutExpired:
                recorder.kill()
        log.close()

    report(args, timed.seconds, passes.latencies, baseline, sender)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


def recorder_delivery(config, data, start, end):
    """The recorder's own sample->RRD latency over the run: (mean of averages, worst)."""
    store = RrdStore(config, data)
    path = store.path(config.recorder.self_host, "affair")
    rows = store.fetch(path, "AVERAGE", start, end, resolution=config.recorder.step)
    averages = [v for v in rows.columns["delivery_avg"] if v is not None and not math.isnan(v)]
    worst = [v for v in rows.columns["delivery_max"] if v is not None and not math.isnan(v)]
    if not averages:
        return None
    return sum(averages) / len(averages), max(worst)


def report(args, pass_seconds, latencies, baseline, sender):
    print(f"site passes: {len(pass_seconds)}", end="")
    if pass_seconds:
        mean = sum(pass_seconds) / len(pass_seconds)
        print(f", {mean:.2f} s mean, {max(pass_seconds):.2f} s worst for {args.hosts} hosts")
    else:
        print()
    print(f"sender: {sender.stats.acked} acked, {sender.stats.rejected_total} rejected")
    if baseline:
        print(
            f"baseline, sample->RRD (recorder): {baseline[0]:.2f} s mean, {baseline[1]:.2f} s worst"
        )
    if not latencies:
        print("no latency samples: run longer than two site intervals")
        return
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    print(
        f"sample->page: p50 {p50:.1f} s, p95 {p95:.1f} s, max {max(latencies):.1f} s "
        f"over {len(latencies)} samples"
    )
    print(
        f"expected from the interval alone: p50 ~{args.interval / 2:.0f} s, p95 ~{0.95 * args.interval:.0f} s"
    )
    if baseline:
        print(f"ratio p95 sample->page / worst sample->RRD: {p95 / max(baseline[1], 1e-3):.1f}x")
    verdict = "met" if p95 < 60 else "MISSED"
    print(f"target p95 < 60 s: {verdict} ({p95 / 60:.2f} of the budget)")


if __name__ == "__main__":
    main()
