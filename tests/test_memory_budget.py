"""The memory budget: whatever a peer sends, the recorder and its writer stay under a bound.

The largest allowed message of every kind (longest names, most samples, most
variables, most series, all-refused samples) goes to a live recorder, several
times, and the peak resident size (VmHWM) of the recorder and of its writer
child is read from /proc; then one connection floods the costliest kind for
a few seconds. The bound is the README's: 150 MB plus the configured queue
at its worst per-sample size, plus what ZeroMQ may hold unread for the
flooding connection (RECEIVE_HWM messages).
"""

import contextlib
import time
from pathlib import Path

import pytest
import zmq
from affair.collectors import wire

from tests.conftest import BASE_CONFIG

pytestmark = pytest.mark.integration

QUEUE_LIMIT = 5000
BUDGET_MB = 150
QUEUED_SAMPLE_KB = 10  # the worst queued sample: 64 variables of 19-character names
MESSAGE_BYTES = 1 << 20  # the default max_message_bytes
FLOOD_SECONDS = 8
# What ZeroMQ may hold unread for one flooding connection: 64 messages (the
# recorder's RECEIVE_HWM) of up to 1 MiB. Written out, not imported: a larger
# RECEIVE_HWM must fail here (10,000 took the recorder to 3.5 GB).
PER_CONNECTION_MB = 64
CONFIG = BASE_CONFIG.replace(
    "step = 10",
    f"""step = 10
queue_limit = {QUEUE_LIMIT}
max_series_per_host = 4
max_hosts = 20""",
)


def peak_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def writer_pid(recorder_pid):
    """The writer child (multiprocessing spawn); not the resource tracker, if any."""
    children = Path(f"/proc/{recorder_pid}/task/{recorder_pid}/children").read_text().split()
    for child in children:
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in command:
            return int(child)
    raise AssertionError(f"no writer among {children}")


SEQS = iter(range(1, 10**9))  # unique over all messages: the acks tell which were taken


def fill(make_sample, limit=MESSAGE_BYTES, max_samples=10_000, sender="s" * 128):
    """The most samples ``make_sample(i)`` that fit in one message, and their seqs."""
    samples = []
    empty = len(wire.encode_data(sender, []))
    size = empty + 2  # the array header may grow
    for i in range(max_samples):
        sample = (next(SEQS), *make_sample(i))
        grown = len(wire.encode_data(sender, [sample])) - empty
        if size + grown > limit:
            break
        samples.append(sample)
        size += grown
    payload = wire.encode_data(sender, samples)
    assert len(payload) <= limit
    return payload, {sample[0] for sample in samples}


def largest_messages(now):
    """``{kind: [payload, ...]}``: each the largest of its kind the limits allow."""
    long_vars = {f"v{i:02d}" + "x" * 16: float(i) for i in range(64)}
    kinds = {}
    kinds["long names"] = [
        fill(
            lambda i, round=round: (
                now - 6000 + round * 1000 + i,
                f"h{i % 20:02d}" + "n" * 60,
                "d" * 40,
                "i" * 40,
                long_vars,
                1,
            )
        )
        for round in range(3)
    ]
    kinds["many samples"] = [
        fill(
            lambda i, round=round: (
                now - 30_000 + round * 10_000 + i,
                "h00" + "n" * 60,
                "s",
                "",
                {"v": 1.0},
                1,
            )
        )
        for round in range(3)
    ]
    kinds["many series"] = [
        fill(lambda i: (now - 100, f"host{i % 5000}", f"ds{i}", f"in{i}", {"v": 1.0}, 1))
    ]
    kinds["many variables"] = [
        fill(lambda i: (now - 3000 + i, "h01" + "n" * 60, "wide", "", long_vars, 1))
    ]
    kinds["refused names"] = [fill(lambda i: (now, "../" + "x" * 60, "d", "", {"v" * 19: 1.0}, 1))]
    return kinds


def test_the_largest_messages_of_every_kind_stay_within_the_memory_budget(recorder):
    process = recorder(CONFIG)
    pid = process.process.pid
    writer = writer_pid(pid)
    before = (peak_rss_mb(pid), peak_rss_mb(writer))
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(process.endpoint)
    now = int(time.time())
    expected = set()
    started = time.monotonic()
    try:
        for payloads in largest_messages(now).values():
            for payload, seqs in payloads:
                socket.send(payload)
                expected |= seqs
        # every sample answered (acked or refused): every message was taken
        answered = set()
        deadline = time.monotonic() + 120
        while not expected <= answered and time.monotonic() < deadline:
            if socket.poll(500):
                acked, rejected = wire.decode_ack(socket.recv())
                answered.update(acked, (seq for seq, _ in rejected))
        assert expected <= answered, len(expected - answered)
    finally:
        socket.close()
    # then a flood of the costliest kind (10,000 samples a message) for a while:
    # what ZeroMQ parks unread for one connection is bounded too (RECEIVE_HWM)
    flood = [
        fill(
            lambda i, r=r: (
                now - 500_000 + r * 10_000 + i,
                "h02" + "n" * 60,
                "f",
                "",
                {"v": 1.0},
                1,
            )
        )[0]
        for r in range(10)
    ]
    flooder = zmq.Context.instance().socket(zmq.DEALER)
    flooder.setsockopt(zmq.LINGER, 0)
    flooder.setsockopt(zmq.SNDTIMEO, 100)
    flooder.connect(process.endpoint)
    flooded = 0
    until = time.monotonic() + FLOOD_SECONDS
    try:
        while time.monotonic() < until:
            with contextlib.suppress(zmq.Again):
                flooder.send(flood[flooded % len(flood)])
                flooded += 1
            while flooder.poll(0):
                flooder.recv()
    finally:
        flooder.close()
    peaks = (peak_rss_mb(pid), peak_rss_mb(writer))
    budget = BUDGET_MB + QUEUE_LIMIT * QUEUED_SAMPLE_KB / 1024 + PER_CONNECTION_MB
    print(
        f"{len(expected)} samples in {time.monotonic() - started:.1f}s, then {flooded} "
        f"messages of 10,000 samples in {FLOOD_SECONDS}s; "
        f"peak RSS before {before}, after {peaks} MB; budget {budget:.0f} MB"
    )
    assert max(peaks) < budget, (peaks, budget)
    assert process.process.poll() is None
