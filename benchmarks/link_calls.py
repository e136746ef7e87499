#!/usr/bin/env python3
"""What a link call costs beside ``increment``: the issue's bound is within 2x of it.

Measured on a ``Publisher`` whose sender thread runs (towards an endpoint where
nobody listens), 50,000 calls each, the runs taking turns, best of --repeat: the baseline
``increment("events")`` in the same run, then ``link(peer).sent(nbytes=...)``,
``.received(...)``, ``.latency(seconds)`` (one log2, a histogram bucket, count,
sum, max) and ``timed()`` (a context manager: two clock reads, a latency and a
count). The ratio to ``increment`` is the figure.

    .venv/bin/python benchmarks/link_calls.py
"""

import argparse
import os
import socket
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from affair.collectors.client import Publisher  # noqa: E402

CALLS = 50_000


def best_of_interleaved(repeat, runs):
    """``{name: best seconds a call}``, the runs taking turns (a shared machine's load then
    falls on all of them alike, not on whichever ran during a busy spell)."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, calls in runs.items():
            started = time.perf_counter()
            calls()
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: seconds / CALLS for name, seconds in best.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs of each (the best is kept)")
    args = parser.parse_args()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
        publisher = Publisher("ldc", endpoint=endpoint, host="ldc01", interval=1)
        link = publisher.link("gdc01/gdc")
        latencies = [0.0001 * (1 + i % 997) for i in range(CALLS)]

        def increments():
            increment = publisher.increment
            for _ in range(CALLS):
                increment("events")

        def sends():
            sent = link.sent
            for _ in range(CALLS):
                sent(4096)

        def receipts():
            received = link.received
            for _ in range(CALLS):
                received(4096)

        def latency_calls():
            latency = link.latency
            for seconds in latencies:
                latency(seconds)

        def timed_blocks():
            timed = link.timed
            for _ in range(CALLS):
                with timed(4096):
                    pass

        try:
            figures = best_of_interleaved(
                args.repeat,
                {
                    "increment": increments,
                    "link.sent(nbytes)": sends,
                    "link.received(nbytes)": receipts,
                    "link.latency(seconds)": latency_calls,
                    "with link.timed(nbytes)": timed_blocks,
                },
            )
            baseline = figures.pop("increment")
        finally:
            publisher.close(timeout=0)
    print(f"machine: {os.cpu_count()} cores, {sys.platform}; best of {args.repeat}, {CALLS} calls")
    print(f"baseline  increment('events'):  {baseline * 1e6:6.2f} us a call")
    for name, cost in figures.items():
        verdict = "within 2x" if cost <= 2 * baseline else "OVER 2x"
        print(f"{name:26s} {cost * 1e6:6.2f} us a call, {cost / baseline:4.2f}x ({verdict})")


if __name__ == "__main__":
    main()
