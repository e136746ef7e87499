#!/usr/bin/env python3
"""Forwarding to VictoriaMetrics: what it costs the recorder, and how fast a forwarder goes.

All against a real ``victoria-metrics`` this script starts on loopback (its
own data dir, ``-dedup.minScrapeInterval=1ms``), measured in this run:

1. ingest: the recorder's rate (host-samples of 10 values, sent, acked,
   journaled and written to RRDs: benchmarks/ingest.py's measure) without
   forwarding and with one ``[[forward]]`` influx target, alternating, as a
   ratio (the issue's aim: at least 0.9x);
2. forwarder: a journal of N host-samples forwarded from scratch by one
   forwarder, samples/s until VictoriaMetrics has every one (aim: 50,000/s),
   for both kinds;
3. steady: 10,000 hosts at a real 10 s interval with one target: CPU of the
   recorder, its writer and its forwarder per wall second (aim: under a
   quarter of a core), VictoriaMetrics' own apart.

Usage: benchmarks/forward.py [--hosts 1000] [--rounds 36] [--pairs 2]
                             [--journal 200000] [--steady-hosts 10000]
                             [--steady-seconds 60] [--skip-steady]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import ingest  # noqa: E402  (benchmarks/ingest.py: the recorder and sender harness)

from affair.config import parse_config  # noqa: E402
from affair.ingest.forward import Forwarder  # noqa: E402
from affair.ingest.validate import Sample  # noqa: E402
from affair.storage.journal import Journal  # noqa: E402


class Victoria:
    def __init__(self, directory):
        self.directory = directory
        self.port = _free_port()
        self.graphite_port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics",
                f"-storageDataPath={directory}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-graphiteListenAddr=127.0.0.1:{self.graphite_port}",
                "-dedup.minScrapeInterval=1ms",
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("victoria-metrics did not start") from None
                time.sleep(0.1)

    def rows(self, match):
        """How many samples of series matching ``match`` it holds (after a flush)."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30).read()
        query = urllib.parse.urlencode({"query": f"sum(count_over_time({match}[100d]))"})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=60) as answer:
            result = json.loads(answer.read())["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0

    def cpu_seconds(self):
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)


def _free_port():
    return int(ingest.free_endpoint().rsplit(":", 1)[1])


def forward_config(config_path, victoria, prefix="bench"):
    path = config_path.with_name(f"bench-forward-{prefix}.toml")
    path.write_text(
        config_path.read_text()
        + f'\n[[forward]]\nname = "vm"\nurl = "{victoria.url}/write"\nprefix = "{prefix}"\n'
    )
    return path


def fill_journal(directory, samples, hosts=1000):
    """``samples`` host-samples of 10 values, journaled as the recorder would (bursts of 5,000)."""
    now = time.time()
    journal = Journal(directory)
    base = now - samples // hosts * 10 - 60
    burst = []
    for index in range(samples):
        round_index, host = divmod(index, hosts)
        values = ingest.values(host, round_index)
        burst.append(Sample(0, base + 10 * round_index, f"h{host:05d}", "bench", "", values))
        if len(burst) == 5000:
            journal.append(burst)
            burst = []
    if burst:
        journal.append(burst)
    journal.close()


def forwarder_rate(work, victoria, samples, kind):
    """Samples/s of one forwarder from an empty watermark to the journal's end."""
    data_dir = work / f"fwd-{kind}"
    (data_dir / "_state").mkdir(parents=True)
    fill_journal(data_dir / "_journal", samples)
    prefix = f"fwd{kind}"
    entry = {"name": "vm", "kind": kind, "prefix": prefix}
    if kind == "influx":
        entry["url"] = f"{victoria.url}/write"
    else:
        entry["address"] = f"127.0.0.1:{victoria.graphite_port}"
    target = parse_config({"forward": [entry]}).forward[0]
    forwarder = Forwarder(target, data_dir / "_journal", data_dir / "_state")
    stop = threading.Event()
    cpu_before, vm_before = time.process_time(), victoria.cpu_seconds()
    started = time.perf_counter()
    running = threading.Thread(target=forwarder.run, args=(stop,))
    running.start()  # the forwarder's own loop, overlapping reads and sends
    while forwarder.counts["sent"] < samples and running.is_alive():
        time.sleep(0.01)
    sent = time.perf_counter() - started
    cpu, vm_cpu = time.process_time() - cpu_before, victoria.cpu_seconds() - vm_before
    stop.set()
    running.join()
    # VictoriaMetrics has them all? (for graphite, its listener may still be parsing)
    match = f'{{__name__=~"{prefix}[._].*v0"}}'
    deadline = time.monotonic() + 120
    while victoria.rows(match) < samples and time.monotonic() < deadline:
        time.sleep(0.5)
    landed = victoria.rows(match)
    total = time.perf_counter() - started
    return samples / sent, samples / total, landed, cpu / samples, vm_cpu / samples


def steady(config_path, work, hosts, seconds, victoria):
    before = victoria.cpu_seconds()
    started = time.monotonic()
    share, rounds, _ = ingest.steady_state(config_path, work / "steady", hosts, seconds)
    vm_share = (victoria.cpu_seconds() - before) / (time.monotonic() - started)
    return share, rounds, vm_share


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=36)
    parser.add_argument("--pairs", type=int, default=2, help="without/with runs, alternating")
    parser.add_argument("--journal", type=int, default=200_000, help="samples for the forwarder")
    parser.add_argument("--steady-hosts", type=int, default=10_000)
    parser.add_argument("--steady-seconds", type=float, default=60)
    parser.add_argument("--skip-steady", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="affair-forward-"))
    victoria = Victoria(work / "victoria")
    try:
        config_path = work / "bench.toml"
        config_path.write_text(ingest.CONFIG)
        forwarding = forward_config(config_path, victoria)
        print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB")
        base = (int(time.time()) - 86400) // 60 * 60
        plain, forwarded = [], []
        for pair in range(args.pairs):
            for label, path, rates in (
                ("without", config_path, plain),
                ("with", forwarding, forwarded),
            ):
                rate, _, _ = ingest.recorder_throughput(
                    path, work / f"ingest-{label}-{pair}", args.hosts, args.rounds, base
                )
                rates.append(rate)
                print(f"ingest    {label:7} forwarding: {rate:10.0f} samples/s")
        if plain:
            ratio = sorted(forwarded)[len(forwarded) // 2] / sorted(plain)[len(plain) // 2]
            print(f"ingest    with / without forwarding (medians): {ratio:.2f}x")
        for kind in ("influx", "graphite"):
            sending, landed_rate, landed, cpu, vm_cpu = forwarder_rate(
                work, victoria, args.journal, kind
            )
            print(
                f"forwarder {kind:8} {args.journal} journaled samples: {sending:10.0f} samples/s "
                f"sent; {landed_rate:10.0f} samples/s until VictoriaMetrics holds them "
                f"({landed} of {args.journal}); CPU per sample: forwarder {cpu * 1e6:.1f} us "
                f"(= {1 / cpu:.0f}/s on a free core), victoria-metrics {vm_cpu * 1e6:.1f} us"
            )
        if not args.skip_steady:
            share, rounds, vm_share = steady(
                forwarding, work, args.steady_hosts, args.steady_seconds, victoria
            )
            print(
                f"steady    {args.steady_hosts} hosts at 10 s with one target, {rounds} rounds: "
                f"recorder + writer + forwarder CPU {share * 100:.1f}% of one core; "
                f"victoria-metrics {vm_share * 100:.1f}%"
            )
    finally:
        victoria.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
