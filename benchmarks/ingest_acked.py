#!/usr/bin/env python3
"""Acked against fire-and-forget ingest: what reliable delivery costs, measured in one run.

One real ``affair record`` process; two ways of feeding it the same samples
(10 values each, distinct hosts per way, timestamps on a 10 s grid):

* fire-and-forget (the baseline): a bare DEALER socket sends messages of
  200 samples as fast as the socket takes them, keeps nothing, never
  resends, and only counts the acks that come back to know when the
  recorder has them all;
* acked: :class:`affair.collectors.sender.Sender`, as a collector or an application
  uses it: every sample buffered until acked, sequence numbers matched,
  resend timers, an in-flight window. Measured with the Sender's defaults
  (500 samples in flight, 100 a message), with a wide window (as the demo's
  simulator and benchmarks/ingest.py use) and with the collector's default
  window of 64 (``[collector] max_in_flight``).

Each rate is samples per second from the first sample handed over to the
last one durable (journaled and acked), and, second, to the last one
written to its RRD (the phase's last row seen in its file). Phases
alternate, in a rotating order, and repeat; the median and the best of the
repeats are reported, each with its ratio to fire-and-forget (on a shared
machine the best is the figure least disturbed by other work).
The client runs on the same machine as the recorder, so the acked path's
extra client work (buffering, matching acks) competes with the recorder
for the same cores, as it would not between a node and its station.

Usage: benchmarks/ingest_acked.py [--hosts 1000] [--rounds 12] [--repeats 5]
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import rrdtool
import zmq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# The same files, samples and recorder settings as benchmarks/ingest.py, so
# the two benchmarks' figures can be read side by side.
import ingest  # noqa: E402
from affair.collectors import wire  # noqa: E402
from affair.collectors.sender import Sender  # noqa: E402
from ingest import CONFIG, free_endpoint, values  # noqa: E402


class Recorder(ingest.Recorder):
    """benchmarks/ingest.py's recorder process, plus the per-phase checks used here."""

    def __init__(self, config_path, data_dir):
        super().__init__(config_path, data_dir, free_endpoint())

    def counts(self):
        try:
            return json.loads(self.metrics_path.read_text())
        except (ValueError, FileNotFoundError):
            return {}

    def wait_row(self, host, ts, timeout=600):
        """Block until ``host``'s RRD holds ``ts``; return when.

        The phase's last sample is its last host's last timestamp: the
        writer takes samples in journal order, so when that row is in its
        file, every row before it is in its own.
        """
        path = str(self.data_dir / host / "bench.rrd")
        deadline = time.monotonic() + timeout
        while True:
            try:
                if rrdtool.lastupdate(path)["date"].timestamp() >= ts:
                    return time.perf_counter()
            except rrdtool.OperationalError:
                pass  # not created yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path} did not reach {ts} in {timeout}s")
            time.sleep(0.005)


class FireAndForget:
    """The baseline: send, keep nothing, never resend; count acks only to see the end."""

    def __init__(self, endpoint, batch=200):
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.batch = batch
        self.seq = 0
        self.acked = 0

    def send(self, samples):
        """``samples``: list of (ts, host, dataset, instance, values)."""
        for start in range(0, len(samples), self.batch):
            chunk = samples[start : start + self.batch]
            encoded = []
            for ts, host, dataset, instance, vals in chunk:
                self.seq += 1
                encoded.append((self.seq, ts, host, dataset, instance, vals, 1))
            self.socket.send(wire.encode_data("fire-and-forget", encoded))
            self._read_acks(0)

    def wait_acked(self, target, timeout=600):
        deadline = time.monotonic() + timeout
        while self.acked < target:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.acked} of {target} acked")
            self._read_acks(50)

    def _read_acks(self, wait_ms):
        if not self.socket.poll(wait_ms):
            return
        while True:
            try:
                acked, _rejected = wire.decode_ack(self.socket.recv(zmq.NOBLOCK))
            except zmq.Again:
                return
            self.acked += len(acked)

    def close(self):
        self.socket.close()


def samples_for(prefix, hosts, base, rounds):
    return [
        [
            (float(base + 10 * r), f"{prefix}{h:05d}", "bench", "", values(h, r))
            for h in range(hosts)
        ]
        for r in rounds
    ]


def measure_fire_and_forget(recorder, client, prefix, hosts, base, rounds):
    batches = samples_for(prefix, hosts, base, rounds)
    total = sum(len(b) for b in batches)
    target_acked = client.acked + total
    started = time.perf_counter()
    for batch in batches:
        client.send(batch)
    client.wait_acked(target_acked)
    durable = time.perf_counter() - started
    written = recorder.wait_row(*last_sample(batches)) - started
    return total, durable, written


def last_sample(batches):
    ts, host, _dataset, _instance, _values = batches[-1][-1]
    return host, ts


def measure_sender(recorder, sender, prefix, hosts, base, rounds):
    batches = samples_for(prefix, hosts, base, rounds)
    total = sum(len(b) for b in batches)
    started = time.perf_counter()
    for batch in batches:
        for sample in batch:
            sender.submit(*sample)
        sender.pump(0)
    if not sender.flush(600):
        raise RuntimeError(f"{sender.buffered} samples not acknowledged")
    durable = time.perf_counter() - started
    written = recorder.wait_row(*last_sample(batches)) - started
    return total, durable, written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000, help="hosts per way of sending")
    parser.add_argument("--rounds", type=int, default=12, help="timestamps per host and phase")
    parser.add_argument("--repeats", type=int, default=5, help="alternating repeats; median kept")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="affair-acked-"))
    recorder = client = wide = default = narrow = None
    try:
        config_path = work / "bench.toml"
        config_path.write_text(CONFIG)
        recorder = Recorder(config_path, work / "data")
        client = FireAndForget(recorder.endpoint)
        window = args.rounds * args.repeats + 2
        wide = Sender(
            recorder.endpoint,
            "acked-wide",
            per_series_limit=window,
            max_in_flight=20_000,
            batch_size=200,
        )
        default = Sender(recorder.endpoint, "acked-default", per_series_limit=window)
        narrow = Sender(
            recorder.endpoint,
            "acked-64",
            per_series_limit=window,
            max_in_flight=64,
            batch_size=100,
        )
        ways = {
            "fire-and-forget": ("f", lambda *a: measure_fire_and_forget(recorder, client, *a)),
            "acked, Sender defaults (window 500)": (
                "d",
                lambda *a: measure_sender(recorder, default, *a),
            ),
            "acked, window 20000": ("w", lambda *a: measure_sender(recorder, wide, *a)),
            "acked, window 64 (collector default)": (
                "n",
                lambda *a: measure_sender(recorder, narrow, *a),
            ),
        }
        base = (int(time.time()) - 86400) // 60 * 60
        # Warm-up: every file created before anything is timed.
        for prefix, measure in ways.values():
            measure(prefix, args.hosts, base, [0])
        results = {name: [] for name in ways}
        for repeat in range(args.repeats):
            first = 1 + repeat * args.rounds
            rounds = range(first, first + args.rounds)
            names = list(ways)
            for name in (
                names[repeat % len(names) :] + names[: repeat % len(names)]
            ):  # rotate: no way always first
                prefix, measure = ways[name]
                total, durable, written = measure(prefix, args.hosts, base, rounds)
                results[name].append((total / durable, total / written))
        counts = recorder.counts()
        print(
            f"machine: {os.cpu_count()} cores, {sys.platform}; "
            f"{args.hosts} hosts x {args.rounds} timestamps x 10 values per phase, "
            f"median of {args.repeats}"
        )
        baseline = None
        for name, rates in results.items():
            figures = [
                statistics.median(r[0] for r in rates),
                max(r[0] for r in rates),
                statistics.median(r[1] for r in rates),
                max(r[1] for r in rates),
            ]
            baseline = baseline or figures
            cells = [f"{v:7.0f}/s ({v / b:.2f}x)" for v, b in zip(figures, baseline, strict=True)]
            print(f"{name:37s} durable median {cells[0]} best {cells[1]}")
            print(f"{'':37s} written median {cells[2]} best {cells[3]}")
        print(
            f"recorder: {counts.get('accepted', 0):.0f} accepted, "
            f"{counts.get('duplicates', 0):.0f} duplicates, {counts.get('resends', 0):.0f} resends"
        )
    finally:
        for closable in (client, wide, default, narrow):
            if closable is not None:
                closable.close()
        if recorder is not None:
            recorder.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
