#!/usr/bin/env python3
"""CPU per sample of the recorder's receiving path, in one process, no sockets.

The wall-clock ingest benchmark (benchmarks/ingest.py) swings from run to run
on a shared machine; this one counts the CPU time (``time.process_time``) of
the receiving path alone for a fixed workload: DATA messages of
``--batch`` samples (10 values each), as a Sender encodes them, through the
recorder's own code: decode, validation, caps, the journal transaction, the
batch handed to the writer and the ACK. The writer socket and the peer are
stand-ins that only keep the bytes. The best of ``--repeat`` runs is the
figure (the least disturbed by other processes).

Usage: benchmarks/receive_cpu.py [--hosts 1000] [--rounds 12] [--batch 200] [--repeat 3]
"""

import argparse
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from affair.collectors import wire  # noqa: E402

from affair.config import parse_config  # noqa: E402
from affair.ingest.recorder import Recorder  # noqa: E402

VARIABLES = [f"v{i}" for i in range(10)]
CONFIG = (
    """
[recorder]
step = 10
max_sample_age = "2d"

[datasets.bench.variables]
"""
    + "\n".join(f"{name} = {{ type = 'GAUGE' }}" for name in VARIABLES)
    + "\n"
)


class KeepBytes:
    """Stands in for a ZeroMQ socket: keeps what is sent, counts the bytes."""

    def __init__(self):
        self.sent = 0

    def send(self, payload, flags=0):
        self.sent += len(payload)

    def send_multipart(self, frames, flags=0):
        self.sent += sum(len(frame) for frame in frames)


def messages(hosts, rounds, batch, base):
    seq = 0
    pending = []
    for r in range(1, rounds + 1):
        for h in range(hosts):
            seq += 1
            values = {name: float((h * 7 + r * 3 + i) % 100) for i, name in enumerate(VARIABLES)}
            pending.append((seq, float(base + 10 * r), f"h{h:05d}", "bench", "", values, 1))
    return [
        wire.encode_data("bench", pending[i : i + batch], {"dropped": 0, "buffered": 0})
        for i in range(0, len(pending), batch)
    ]


def run_once(hosts, rounds, batch):
    work = Path(tempfile.mkdtemp(prefix="affair-receive-cpu-"))
    try:
        config = parse_config(tomllib.loads(CONFIG)).with_overrides(data_dir=str(work))
        recorder = Recorder(config)
        recorder._to_writer = KeepBytes()
        peer = KeepBytes()
        base = int(time.time()) - 86400
        payloads = messages(hosts, rounds, batch, base)
        per_burst = max(1, 5000 // batch)  # the recorder's BURST_SAMPLES
        started = time.process_time()
        now = time.time()
        for i in range(0, len(payloads), per_burst):
            accepted, replies = [], {}
            for payload in payloads[i : i + per_burst]:
                recorder._take_message([b"peer", payload], now, accepted, replies)
            recorder._journal_and_ack(accepted, replies, peer)
        cpu = time.process_time() - started
        recorder.journal.close()
        assert recorder.metrics.counts["accepted"] == hosts * rounds, recorder.metrics.counts
        return cpu / (hosts * rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    figures = [run_once(args.hosts, args.rounds, args.batch) for _ in range(args.repeat)]
    figures.sort()
    print(
        f"receiving path, {args.hosts} hosts x {args.rounds}, {args.batch} a message: "
        f"{figures[0] * 1e6:.1f} us CPU a sample (best of {args.repeat}; "
        f"all: {', '.join(f'{f * 1e6:.1f}' for f in figures)})"
    )


if __name__ == "__main__":
    main()
