"""Benchmark: ``affair archive`` of a day of raw samples, written and verified.

The issue's case: 1,000 hosts x 10 variables every 10 s for one day (8.64 M
samples), the same journal as ``benchmarks/export.py`` (shared --workdir,
generated once). Each command runs as its own process, so its wall time
and peak memory (ru_maxrss) are its own. Measured in the same run:

* baseline: ``affair export`` of the whole day (the write alone);
* ``affair archive``: plan, count by SQL, write, read back and verify, catalog;
* ``affair archive verify``: the read-back alone, over the finished file;
* beside a recorder at full load (10,000 hosts at a 10 s interval: 1,000
  samples a second, 10 values each, over loopback): the time from sending
  a message of 200 samples to its ack (journaled), while nothing else of
  ours runs (the baseline) and while ``affair archive`` runs.

Targets: archive and verify under 90 s and under 1 GB; the recorder's ack
latency raised by at most 10 %.

    .venv/bin/python benchmarks/archive.py                      # the full case
    .venv/bin/python benchmarks/archive.py --hosts 50 --hours 2  # a quick look
"""

import argparse
import os
import resource
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import zmq  # noqa: E402
from affair.collectors import wire  # noqa: E402
from export import generate, run_measured  # noqa: E402 - the export benchmark's journal
from ingest import CONFIG, Recorder  # noqa: E402 - its recorder process and config

from affair.demo.launcher import free_tcp_endpoint  # noqa: E402

STATION_HOSTS = 10_000  # sending every 10 s: 1,000 samples a second
BATCH = 200


class Station:
    """Hosts sending every 10 s to a real recorder; the send-to-ack time of each message."""

    def __init__(self, endpoint):
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.seq = 0
        self.sent_at = {}  # last seq of a message -> when it was sent
        self.latencies = []

    def run(self, seconds, keep=True):
        """Send a tenth of the hosts every second for ``seconds``; keep the latencies."""
        self.latencies = []
        end = time.monotonic() + seconds
        tick = time.monotonic()
        while time.monotonic() < end:
            now = int(time.time())
            first = (now % 10) * (STATION_HOSTS // 10)
            hosts = range(first, first + STATION_HOSTS // 10)
            for start in range(0, len(hosts), BATCH):
                batch = []
                for host in hosts[start : start + BATCH]:
                    self.seq += 1
                    values = {f"v{i}": float(host + i) for i in range(10)}
                    batch.append((self.seq, float(now), f"node{host:05d}", "bench", "", values, 1))
                self.sent_at[self.seq] = time.perf_counter()
                self.socket.send(wire.encode_data("bench-station", batch))
            tick += 1
            while time.monotonic() < tick:
                self._read_acks(keep, max(1, int((tick - time.monotonic()) * 1000)))
        self._read_acks(keep, 2000)
        return list(self.latencies)

    def _read_acks(self, keep, wait_ms):
        if not self.socket.poll(wait_ms):
            return
        while True:
            try:
                acked, _ = wire.decode_ack(self.socket.recv(zmq.NOBLOCK))
            except zmq.Again:
                return
            now = time.perf_counter()
            for seq in acked:
                sent = self.sent_at.pop(seq, None)
                if sent is not None and keep:
                    self.latencies.append(now - sent)


def beside_the_recorder(workdir, archive_command):
    """Ack latency of a loaded recorder, quiet and while ``archive_command`` runs."""
    data = workdir / "station-data"
    shutil.rmtree(data, ignore_errors=True)
    config = workdir / "station.toml"
    config.write_text(CONFIG + "\n[export]\nenabled = false\n")
    recorder = Recorder(config, data, free_tcp_endpoint())
    station = Station(recorder.endpoint)
    try:
        station.run(15, keep=False)  # every host's RRD made, the writer warm
        quiet = station.run(40)
        archiving = subprocess.Popen(archive_command, stdout=subprocess.DEVNULL, cwd=REPO)
        busy = []
        while archiving.poll() is None:
            busy += station.run(5)
        during = busy
    finally:
        recorder.stop()
        station.socket.close()
    return quiet, during


def percentiles(latencies):
    ordered = sorted(latencies)
    return {
        p: ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 for p in (50, 95, 99)
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--variables", type=int, default=10)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--workdir", default="/tmp/affair-bench-export")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    (workdir / "data" / "_journal").mkdir(parents=True, exist_ok=True)
    archive = workdir / "archive"
    config = workdir / "archive.toml"
    config.write_text(f'[export]\ndirectory = "{archive}"\n')
    python = sys.executable

    samples = generate(workdir, args.hosts, args.variables, args.hours)
    journal_bytes = sum(p.stat().st_size for p in (workdir / "data" / "_journal").glob("*"))
    print(f"journal: {samples:,} samples, {journal_bytes / 1e6:.0f} MB")

    shutil.rmtree(archive, ignore_errors=True)  # else the export reads the last run's archive
    output = workdir / "baseline-export.root"
    command = [python, "-m", "affair", "export", "--config", str(config)]
    command += ["--data-dir", str(workdir / "data"), "--output", str(output)]
    export_seconds, export_cpu, export_rss, _ = run_measured(command)
    print(
        f"baseline, affair export of the day: {export_seconds:.1f} s ({export_cpu:.1f} s CPU), "
        f"peak {export_rss:.0f} MB, file {output.stat().st_size / 1e6:.0f} MB"
    )
    output.unlink()

    shutil.rmtree(archive, ignore_errors=True)
    base = [python, "-m", "affair", "archive", "--config", str(config)]
    base += ["--data-dir", str(workdir / "data")]
    seconds, cpu, rss, out = run_measured(base)
    files = sorted(archive.glob("*/*.root"))
    size = sum(p.stat().st_size for p in files)
    print(out.strip())
    print(
        f"affair archive (write + read back + verify): {seconds:.1f} s ({cpu:.1f} s CPU), "
        f"peak {rss:.0f} MB, {len(files)} file(s), {size / 1e6:.0f} MB"
    )
    verify_seconds, verify_cpu, verify_rss, out = run_measured([*base[:-2], "verify"])
    print(out.strip().splitlines()[-1])
    print(
        f"affair archive verify (read back alone): {verify_seconds:.1f} s "
        f"({verify_cpu:.1f} s CPU), peak {verify_rss:.0f} MB"
    )

    shutil.rmtree(archive, ignore_errors=True)
    quiet, during = beside_the_recorder(workdir, base)
    for name, latencies in (("quiet", quiet), ("archiving", during)):
        p = percentiles(latencies)
        print(
            f"recorder ack latency, {name}: p50 {p[50]:.1f} ms, p95 {p[95]:.1f} ms, "
            f"p99 {p[99]:.1f} ms, mean {statistics.fmean(latencies) * 1000:.1f} ms "
            f"({len(latencies)} messages)"
        )
    quiet_p, during_p = percentiles(quiet), percentiles(during)

    print()
    print(f"archive: {seconds:.1f} s (target < 90 s), peak {rss:.0f} MB (target < 1024 MB)")
    print(
        "ack latency while archiving / quiet: "
        + ", ".join(f"p{p} {during_p[p] / quiet_p[p]:.2f}x" for p in (50, 95, 99))
        + " (target <= 1.10x)"
    )
    print(
        f"ratio to the export alone: {seconds / export_seconds:.2f}x time, "
        f"{rss / export_rss:.2f}x peak memory; verify alone {verify_seconds / export_seconds:.2f}x"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
