#!/usr/bin/env python3
"""Ingest throughput: samples through the recorder into RRDs, against bare librrd.

Three figures, all measured in this run on this machine:

1. baseline: bare ``rrdtool.update`` on the same kind of files (10 DS, the
   AFFAIR ladder), one timestamp per call, and six per call for reference;
2. recorder: host-samples/s (10 values each) sent by a Sender over loopback
   TCP, validated, journaled, acked and written by a real ``affair record``
   process, from the first sample sent to the last one written;
3. steady state: a recorder receiving 10,000 hosts at a real 10 s interval,
   its CPU time (user + system, all threads, with its writer process) per
   wall second.

With ``--rrdcached``, 2 and 3 again with the writer going through an
rrdcached this script starts (``-w 300 -z 60 -j``, on a unix socket), as
ratios to the direct runs of the same invocation; the recorder's stop, which
ends with a checkpoint flushing every file, is timed too, and the daemon's
own CPU is counted in the steady state.

Usage: benchmarks/ingest.py [--hosts 1000] [--rounds 36] [--steady-hosts 10000]
                            [--steady-seconds 60] [--skip-steady] [--rrdcached]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import psutil
import rrdtool

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from affair.collectors.sender import Sender  # noqa: E402

from affair.config import load_config  # noqa: E402
from affair.demo.launcher import free_tcp_endpoint as free_endpoint  # noqa: E402
from affair.storage.journal import Watermark  # noqa: E402
from affair.storage.rrd_store import RrdStore  # noqa: E402

VARIABLES = [f"v{i}" for i in range(10)]
CONFIG = (
    """
[recorder]
step = 10
self_interval = 1
max_sample_age = "2d"
queue_limit = 500000

[datasets.bench.variables]
"""
    + "\n".join(f"{name} = {{ type = 'GAUGE' }}" for name in VARIABLES)
    + "\n"
)


def values(host_index, round_index):
    return {
        name: float((host_index * 7 + round_index * 3 + i) % 100)
        for i, name in enumerate(VARIABLES)
    }


def baseline(config, directory, hosts, rounds, base):
    store = RrdStore(config, directory)
    files = [store.open_series(f"h{h:05d}", "bench", "", VARIABLES, base) for h in range(hosts)]
    template = ":".join(VARIABLES)
    started = time.perf_counter()
    for r in range(1, rounds + 1):
        for h, series in enumerate(files):
            line = f"{base + 10 * r}:" + ":".join(repr(v) for v in values(h, r).values())
            rrdtool.update(str(series.path), "--template", template, line)
    one_per_call = hosts * rounds / (time.perf_counter() - started)
    started = time.perf_counter()
    for chunk in range(rounds + 1, 2 * rounds + 1, 6):
        for h, series in enumerate(files):
            lines = [
                f"{base + 10 * r}:" + ":".join(repr(v) for v in values(h, r).values())
                for r in range(chunk, chunk + 6)
            ]
            rrdtool.update(str(series.path), "--template", template, *lines)
    six_per_call = hosts * rounds / (time.perf_counter() - started)
    return one_per_call, six_per_call


class Recorder:
    def __init__(self, config_path, data_dir, endpoint):
        self.data_dir = data_dir
        self.endpoint = endpoint
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "affair",
                "record",
                "--config",
                str(config_path),
                "--listen",
                endpoint,
                "--data-dir",
                str(data_dir),
                "--log-level",
                "WARNING",
            ],
            cwd=REPO,
        )
        self.metrics_path = data_dir / "_state" / "metrics.json"
        deadline = time.monotonic() + 30
        while not self.metrics_path.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the recorder did not start")
            time.sleep(0.1)

    def written(self):
        return self.counter("written")

    def counter(self, name):
        try:
            return json.loads(self.metrics_path.read_text()).get(name, 0)
        except (ValueError, FileNotFoundError):
            return 0

    def wait_written(self, target, timeout):
        deadline = time.monotonic() + timeout
        while self.written() < target:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.written()} of {target} written after {timeout}s")
            time.sleep(0.05)

    def wait_journal_written(self, timeout):
        """Until the RRD writer's watermark passes every row journaled so far.

        Exact, unlike ``written`` in metrics.json, which the recorder rewrites
        once per ``self_interval`` (1 s here) from the writer's reports (every
        0.5 s): a run of about a second read through it ended on the next whole
        second, so the same commit measured 1 s or 2 s, 12,000 or 6,000
        samples/s, from run to run (the "bimodal" figures of RESULTS.md).
        """
        day = sorted((self.data_dir / "_journal").glob("????-??-??.sqlite"))[-1]
        connection = sqlite3.connect(f"file:{day}?mode=ro", uri=True)
        try:
            (last,) = connection.execute("SELECT max(id) FROM samples").fetchone()
        finally:
            connection.close()
        watermark = Watermark(self.data_dir / "_state" / "writer.watermark")
        deadline = time.monotonic() + timeout
        while (watermark.load() or ("", 0)) < (day.stem, last):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the writer did not reach row {last} after {timeout}s")
            time.sleep(0.002)

    def cpu_seconds(self):
        """The recorder's CPU time and its RRD writer child's (all threads of both)."""
        recorder = psutil.Process(self.process.pid)
        total = 0.0
        for process in [recorder, *recorder.children(recursive=True)]:
            times = process.cpu_times()
            total += times.user + times.system
        return total

    def cpu_split(self):
        """``(receiving process, writer and other children)`` CPU seconds so far."""
        recorder = psutil.Process(self.process.pid)
        own = recorder.cpu_times()
        children = 0.0
        for child in recorder.children(recursive=True):
            times = child.cpu_times()
            children += times.user + times.system
        return own.user + own.system, children

    def stop(self):
        """SIGTERM and wait; the seconds it took (with rrdcached: the final checkpoint)."""
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=600)
        return time.perf_counter() - started


class Rrdcached:
    """An rrdcached for the data dir, on a unix socket in ``run_dir``."""

    def __init__(self, data_dir, run_dir):
        data_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "journal").mkdir(parents=True, exist_ok=True)
        self.address = f"unix:{run_dir / 'rrdcached.sock'}"
        self.process = subprocess.Popen(
            [shutil.which("rrdcached") or "/usr/bin/rrdcached", "-g", "-l", self.address]
            + ["-b", os.path.realpath(data_dir), "-B", "-j", str(run_dir / "journal")]
            + ["-w", "300", "-z", "60", "-f", "600", "-p", str(run_dir / "rrdcached.pid")],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(self.address[len("unix:") :])
                    break
                except OSError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise RuntimeError("rrdcached did not start") from None
            time.sleep(0.05)

    def cpu_seconds(self):
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)


def send_round(sender, hosts, ts, round_index):
    for h in range(hosts):
        sender.submit(float(ts), f"h{h:05d}", "bench", "", values(h, round_index))


def recorder_throughput(config_path, directory, hosts, rounds, base):
    """Samples/s from the first sent to the last written, and the recorder's stop in s."""
    recorder = Recorder(config_path, directory, free_endpoint())
    sender = Sender(
        recorder.endpoint,
        "bench",
        per_series_limit=rounds + 2,
        max_in_flight=20_000,
        batch_size=200,
    )
    try:
        send_round(sender, hosts, base, 0)  # warm-up: creates the files
        assert sender.flush(300), "warm-up not acknowledged"
        recorder.wait_written(hosts, 300)
        already = recorder.written()
        calls_before = recorder.counter("rrd_updates")
        receiving_before, writer_before = recorder.cpu_split()
        sender_before = time.process_time()
        started = time.perf_counter()
        for r in range(1, rounds + 1):
            send_round(sender, hosts, base + 10 * r, r)
            sender.pump(0)
        assert sender.flush(600), "samples not acknowledged"
        acked_in = time.perf_counter() - started
        recorder.wait_journal_written(600)  # all are journaled once acked: wait for the writer
        elapsed = time.perf_counter() - started
        sender_cpu = time.process_time() - sender_before
        receiving_after, writer_after = recorder.cpu_split()
        recorder.wait_written(already + hosts * rounds, 600)  # and the counters agree
        calls = recorder.counter("rrd_updates") - calls_before
    finally:
        sender.close()
        stopped_in = recorder.stop()
    samples = hosts * rounds
    cpu = CpuPerSample(
        (receiving_after - receiving_before) / samples,
        (writer_after - writer_before) / samples,
        sender_cpu / samples,
    )
    return (
        samples / elapsed,
        stopped_in,
        cpu._replace(acked_rate=samples / acked_in, rows_a_call=samples / max(calls, 1)),
    )


class CpuPerSample(NamedTuple):
    """CPU seconds per sample of each process during a throughput run (from /proc)."""

    receiving: float  # the recorder: decode, validate, journal, ack, hand to the writer
    writer: float  # its RRD writer process
    sender: float  # this script's Sender (encoding, resends, acks)
    acked_rate: float = 0.0  # samples/s from the first sent to the last acknowledged
    rows_a_call: float = 0.0  # rows the writer gave each rrdtool update (about: own metrics too)

    def __str__(self):
        return (
            f"acked {self.acked_rate:.0f} samples/s; CPU a sample: receiving {self.receiving * 1e6:.1f} us, "
            f"writer {self.writer * 1e6:.1f} us ({self.rows_a_call:.1f} rows a call), sender {self.sender * 1e6:.1f} us"
        )


def steady_state(config_path, directory, hosts, seconds, daemon=None):
    recorder = Recorder(config_path, directory, free_endpoint())
    sender = Sender(
        recorder.endpoint, "bench", per_series_limit=100, max_in_flight=20_000, batch_size=200
    )
    try:
        tick = (int(time.time()) // 10 + 1) * 10
        while time.time() < tick:
            sender.pump(0.1)
        send_round(sender, hosts, tick, 0)  # warm-up: creates the files
        assert sender.flush(600), "warm-up not acknowledged"
        recorder.wait_written(hosts, 600)
        tick = (int(time.time()) // 10 + 1) * 10
        while time.time() < tick:
            sender.pump(0.1)
        cpu_before, wall_before = recorder.cpu_seconds(), time.monotonic()
        daemon_before = daemon.cpu_seconds() if daemon else 0.0
        rounds = 0
        while time.monotonic() - wall_before < seconds:
            if time.time() >= tick:
                rounds += 1
                send_round(sender, hosts, tick, rounds)
                tick += 10
            sender.pump(0.05)
        cpu = recorder.cpu_seconds() - cpu_before
        daemon_cpu = daemon.cpu_seconds() - daemon_before if daemon else 0.0
        wall = time.monotonic() - wall_before
        assert sender.flush(120)
    finally:
        sender.close()
        recorder.stop()
    return cpu / wall, rounds, daemon_cpu / wall


def writer_alone(config, directory, hosts, rounds, base, daemon):
    """RrdStore.update_many, 1 timestamp per call, direct or into the daemon; then a checkpoint.

    Samples/s of the updates, and the seconds to settle every file after them
    (what the writer's checkpoint costs; direct: reading each file's last update).
    """
    store = RrdStore(config, directory, daemon=daemon)
    files = [store.open_series(f"h{h:05d}", "bench", "", VARIABLES, base) for h in range(hosts)]
    started = time.perf_counter()
    for r in range(1, rounds + 1):
        for h, series in enumerate(files):
            store.update_many(series, [(base + 10 * r, values(h, r))])
    rate = hosts * rounds / (time.perf_counter() - started)
    started = time.perf_counter()
    if store.daemon:
        store.daemon.flush_all()  # as the writer's checkpoint does
    for series in files:
        store.settle(series)
    return rate, time.perf_counter() - started


def with_rrdcached(config_path, address):
    """A copy of the config whose recorder writes through ``address``."""
    cached = config_path.with_name("bench-rrdcached.toml")
    text = config_path.read_text().replace("step = 10", f'step = 10\nrrdcached = "{address}"', 1)
    cached.write_text(text)
    return cached


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    # 36 rounds: 36,000 samples, about 0.8 s of sending on a quiet machine. The
    # old default, 12, sent for 0.3 s, mostly the writer's start and tail, and
    # measured those rather than a rate the recorder sustains (RESULTS.md).
    parser.add_argument(
        "--rounds", type=int, default=36, help="timestamps per host (a multiple of 6)"
    )
    parser.add_argument("--steady-hosts", type=int, default=10_000)
    parser.add_argument("--steady-seconds", type=float, default=60)
    parser.add_argument("--skip-steady", action="store_true")
    parser.add_argument(
        "--rrdcached", action="store_true", help="again through an rrdcached, as ratios"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="affair-ingest-"))
    try:
        config_path = work / "bench.toml"
        config_path.write_text(CONFIG)
        config = load_config(config_path)
        base = (int(time.time()) - 86400) // 60 * 60
        one, six = baseline(config, work / "baseline", args.hosts, args.rounds, base)
        print(
            f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, {sys.platform}"
        )
        print(f"baseline  bare rrdtool.update, 1 timestamp/call : {one:10.0f} samples/s  (1.00x)")
        print(
            f"baseline  bare rrdtool.update, 6 timestamps/call: {six:10.0f} samples/s  ({six / one:.2f}x)"
        )
        rate, stopped_in, cpu = recorder_throughput(
            config_path, work / "recorder", args.hosts, args.rounds, base
        )
        print(
            f"recorder  acked, journaled, written ({args.hosts} hosts x {args.rounds}): "
            f"{rate:10.0f} samples/s  ({rate / one:.2f}x bare 1/call), stop {stopped_in:.1f} s"
        )
        print(
            f"          {cpu}; bare rrdtool.update 1/call {1e6 / one:.1f} us wall; "
            f"acked {cpu.acked_rate / one:.2f}x bare 1/call"
        )
        if args.rrdcached:
            direct = writer_alone(config, work / "alone", args.hosts, args.rounds, base, "")
            daemon = Rrdcached(work / "alone-cached", work / "run-alone")
            try:
                cached = writer_alone(
                    config, work / "alone-cached", args.hosts, args.rounds, base, daemon.address
                )
            finally:
                daemon.stop()
            print(
                f"writer    update_many, 1 timestamp/call, direct: {direct[0]:10.0f} samples/s; "
                f"into rrdcached: {cached[0]:10.0f} samples/s ({cached[0] / direct[0]:.2f}x); "
                f"checkpoint of {args.hosts} files {cached[1]:.2f} s"
            )
            daemon = Rrdcached(work / "cached", work / "run")
            try:
                cached_rate, cached_stop, _ = recorder_throughput(
                    with_rrdcached(config_path, daemon.address),
                    work / "cached",
                    args.hosts,
                    args.rounds,
                    base,
                )
            finally:
                daemon.stop()
            print(
                f"rrdcached same, into rrdcached ({args.hosts} hosts x {args.rounds}): "
                f"{cached_rate:10.0f} samples/s  ({cached_rate / rate:.2f}x the direct recorder), "
                f"stop with its checkpoint of {args.hosts} files {cached_stop:.1f} s"
            )
        if not args.skip_steady:
            shutil.rmtree(work / "baseline", ignore_errors=True)
            share, rounds, _ = steady_state(
                config_path, work / "steady", args.steady_hosts, args.steady_seconds
            )
            print(
                f"steady    {args.steady_hosts} hosts at a 10 s interval, {rounds} rounds: recorder CPU "
                f"{share * 100:.1f}% of one core"
            )
            if args.rrdcached:
                shutil.rmtree(work / "steady", ignore_errors=True)
                daemon = Rrdcached(work / "steady-cached", work / "run-steady")
                try:
                    cached_share, rounds, daemon_share = steady_state(
                        with_rrdcached(config_path, daemon.address),
                        work / "steady-cached",
                        args.steady_hosts,
                        args.steady_seconds,
                        daemon,
                    )
                finally:
                    daemon.stop()
                print(
                    f"rrdcached same, into rrdcached, {rounds} rounds: recorder CPU "
                    f"{cached_share * 100:.1f}% of one core ({cached_share / share:.2f}x direct), "
                    f"rrdcached {daemon_share * 100:.1f}%"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
