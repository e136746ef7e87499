"""A labelled fuzz of both live ports: every hostile message has one known cause.

Unlike the random fuzz of test_hostile.py (which checks that every message
is accounted for somewhere), each message or line here is built with exactly
one defect, so the generator knows which counter it must move, and by how
much: every counter must equal what was sent for its cause. Meanwhile a
well-behaved collector is acknowledged throughout, and afterwards each of its
samples is in the RRD and in the raw archive; both processes stay under the
memory budget (tests/test_memory_budget.py) and nothing appears outside the
data dir.
"""

import collections
import json
import math
import random
import socket
import time
from pathlib import Path

import msgpack
import pytest
import zmq
from affair.collectors import wire
from affair.collectors.sender import Sender

from affair.config import load_config
from affair.storage.journal import read_after
from affair.storage.rrd_store import RrdStore
from tests.conftest import BASE_CONFIG, wait_for
from tests.test_memory_budget import BUDGET_MB, QUEUED_SAMPLE_KB, peak_rss_mb, writer_pid

pytestmark = pytest.mark.integration

MESSAGES = 20_000
LIMIT = 4096
QUEUE_LIMIT = 20_000
FUZZ_HOSTS = ("fz01", "fz02", "fz03", "fz04")
DATASETS = ("d0", "d1", "d2", "d3")  # each fuzz host at its series cap from the start
CONFIG = (
    BASE_CONFIG.replace(
        "step = 10",
        f"""step = 10
self_interval = 1
queue_limit = {QUEUE_LIMIT}
max_message_bytes = {LIMIT}
max_samples_per_message = 50
max_series_per_host = 4
max_hosts = 6""",
    )
    + """
[graphite]
merge_seconds = 0
max_connections_per_client = 8
max_line_bytes = 200
"""
)


class LabelledFuzzer:
    """Messages with one defect each; ``expected`` counts what each counter must show."""

    def __init__(self, seed, now):
        self.rng = random.Random(seed)
        self.now = now
        self.expected = collections.Counter()
        self.seq = 0
        self.next_ts = collections.defaultdict(lambda: now - 3000)  # per series: always new

    def good_sample(self, host=None, dataset=None):
        host = host or self.rng.choice(FUZZ_HOSTS)
        dataset = dataset or self.rng.choice(DATASETS)
        self.next_ts[host, dataset] += 1
        self.seq += 1
        return [self.seq, self.next_ts[host, dataset], host, dataset, "", {"v": 1.0}, 1]

    def bad_sample(self):
        """``(sample, reason)`` with one defect."""
        rng = self.rng
        sample = self.good_sample()
        self.next_ts[sample[2], sample[3]] -= 1  # not stored: its timestamp is free again
        reason = rng.choice(
            ("structure", "name", "value", "future", "past", "var_cap", "series_cap", "host_cap")
        )
        if reason == "structure":
            sample = sample[: rng.randrange(7)] if rng.random() < 0.5 else [*sample, None]
        elif reason == "name":
            field = rng.choice((2, 3, 4, 5))
            bad = rng.choice(("../x", "a/b", ".hidden", "x" * 64, "na\nme", "ü", "../" + "y" * 200))
            if field == 5:
                sample[5] = {bad[:30]: 1.0}
            else:
                sample[field] = bad
        elif reason == "value":
            if rng.random() < 0.5:
                sample[5] = {"v": rng.choice((math.inf, -math.inf, "12", True, [], {}))}
            else:
                sample[1] = rng.choice((math.inf, "1700000000", True, None))
        elif reason == "future":
            sample[1] = self.now + rng.choice((1e4, 1e6))
        elif reason == "past":
            sample[1] = self.now - rng.choice((1e7, 1e9))
        elif reason == "var_cap":
            sample[5] = {f"v{i}": 1.0 for i in range(65)}
        elif reason == "series_cap":
            sample[3] = f"new{rng.randrange(10**6)}"
        else:  # host_cap: fuzz hosts, goodnode and gf01 fill max_hosts
            sample[2] = f"newhost{rng.randrange(10**6)}"
        return sample, reason

    def message(self):
        """One payload, or a list of frames; its expected counts are added."""
        rng, expected = self.rng, self.expected
        kind = rng.random()
        expected["messages"] += 1
        if kind < 0.08:
            expected["rej_undecodable"] += 1
            return b"\xc1" + rng.randbytes(rng.randrange(200))  # 0xc1: never a msgpack byte
        if kind < 0.16:
            expected["rej_undecodable"] += 1
            whole = wire.encode_data("fuzzer", [(1, self.now, "fz01", "d0", "", {"v": 1.0}, 1)])
            return whole[: rng.randrange(len(whole))]  # a strict prefix never decodes
        if kind < 0.20:
            expected["rej_structure"] += 1
            return [b"frame one", rng.randbytes(20)]
        if kind < 0.24:
            expected["rej_version"] += 1
            return msgpack.packb([rng.choice((0, 2, 99)), 1, "fuzzer", []])
        if kind < 0.28:
            expected["rej_structure"] += 1
            return msgpack.packb(rng.choice(([1, 1, 5, []], [1, 1, "fuzzer", "x"], [1], {"v": 1})))
        if kind < 0.32:
            expected["rej_oversized"] += 1
            if rng.random() < 0.5:
                return wire.encode_data("fuzzer", []) + b"\0" * LIMIT
            samples = [[i, 0, "h", "d", "", {}, 1] for i in range(51)]
            return msgpack.packb([1, 1, "fuzzer", samples])
        if kind < 0.36:
            expected["rej_name"] += 1
            sender = rng.choice(("x" * 129, "evil\nline", "\x1b[2J", "", ".dot", "a b"))
            return wire.encode_data(sender, [(1, self.now, "fz01", "d0", "", {"v": 1.0}, 1)])
        if kind < 0.40:
            expected["sender_implausible"] += 1
            liar = f"liar{rng.randrange(100)}"
            return wire.encode_data(liar, [], {"dropped": 10**18, "buffered": 0})
        samples, counters = [], []
        for _ in range(rng.randint(1, 8)):
            if rng.random() < 0.5:
                sample, counter = self.good_sample(), "accepted"
            else:
                sample, reason = self.bad_sample()
                counter = f"rej_{reason}"
            payload = msgpack.packb([1, 1, "fuzzer", [*samples, sample]])
            if len(payload) > LIMIT:  # one cause per message: never oversized by accident
                if counter == "accepted":
                    self.next_ts[sample[2], sample[3]] -= 1
                break
            samples.append(sample)
            counters.append(counter)
        expected.update(counters)
        expected["received"] += len(samples)
        return msgpack.packb([1, 1, "fuzzer", samples])


GOOD_LINE_TEMPLATE = "gf01.cpu.percent-user {value} {ts}\n"
BAD_LINES = {
    "encoding": lambda rng, now: b"gf01.cpu.percent-user \xff\xfe 1\n",
    "fields": lambda rng, now: b"gf01.cpu.percent-user 1\n",
    "value": lambda rng, now: f"gf01.cpu.percent-user abc {now}\n".encode(),
    "timestamp": lambda rng, now: b"gf01.cpu.percent-user 1 yesterday\n",
    "too_long": lambda rng, now: b"gf01." + b"x" * 300 + b" 1 1\n",
    "unmatched": lambda rng, now: f"..weird 1 {now}\n".encode(),
    "future": lambda rng, now: f"gf01.cpu.percent-user 1 {now + 10**6}\n".encode(),
    "past": lambda rng, now: f"gf01.cpu.percent-user 1 {now - 10**8}\n".encode(),
}


def graphite_stream(rng, now, lines):
    """``(payload, expected graphite counters, good samples)``."""
    expected = collections.Counter()
    parts = []
    good = 0
    for index in range(lines):
        if rng.random() < 0.5:
            parts.append(GOOD_LINE_TEMPLATE.format(value=index, ts=now - 2000 + index).encode())
            good += 1
            expected["lines"] += 1
        else:
            reason = rng.choice(sorted(BAD_LINES))
            parts.append(BAD_LINES[reason](rng, now))
            expected[f"bad_{reason}"] += 1
            expected["lines"] += reason != "too_long"  # an over-long line is never a line
    expected["samples"] = good
    return b"".join(parts), expected, good


def metrics(data_dir):
    path = data_dir / "_state" / "metrics.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def test_labelled_fuzz_of_both_ports_moves_each_counter_by_what_was_sent(recorder):
    process = recorder(CONFIG, extra_args=["--graphite", "0"])
    data_dir = process.data_dir
    recorder_port = int(process.endpoint.rsplit(":", 1)[1])
    graphite_port = process.graphite_port()
    now = int(time.time())
    fuzzer = LabelledFuzzer(seed=20261202, now=now)
    context = zmq.Context.instance()
    fuzz = context.socket(zmq.DEALER)
    fuzz.setsockopt(zmq.LINGER, 0)
    fuzz.setsockopt(zmq.SNDTIMEO, 30_000)
    fuzz.connect(process.endpoint)
    good = Sender(process.endpoint, "goodnode", resend_timeout=30)
    base = now // 10 * 10 - 3000
    good_ts = []
    idle = []
    started = time.monotonic()
    try:
        # every fuzz host at its series cap before the caps are tested
        setup = [fuzzer.good_sample(host, dataset) for host in FUZZ_HOSTS for dataset in DATASETS]
        fuzz.send(wire.encode_data("fuzzer", setup))
        fuzzer.expected.update(messages=1, received=len(setup), accepted=len(setup))
        graphite_payload, graphite_expected, graphite_good = graphite_stream(fuzzer.rng, now, 2000)
        with socket.create_connection(("127.0.0.1", graphite_port), timeout=10) as client:
            client.sendall(graphite_payload)
        graphite_expected["connections"] += 1
        fuzzer.expected["accepted"] += graphite_good
        good.submit(float(base), "goodnode", "system", "", {"load1": 0.0})
        good_ts.append(float(base))
        assert good.flush(timeout=30)
        # max_hosts is full (fz01-04, goodnode, gf01) before any new host is tried
        wait_for(
            lambda: metrics(data_dir).get("accepted") == len(setup) + graphite_good + 1,
            what="the setup, the Graphite stream and the good sender's first sample journaled",
        )

        for index in range(MESSAGES):
            message = fuzzer.message()
            if isinstance(message, list):
                fuzz.send_multipart(message)
            else:
                fuzz.send(message)
            if index % 100 == 0:
                while fuzz.poll(0):
                    fuzz.recv()
            if index % 1000 == 0:
                # a connection storm on both ports: connect and close at once
                # (5 at a time: fewer than one address may hold open at once)
                for port in (recorder_port, graphite_port):
                    for _ in range(5):
                        socket.create_connection(("127.0.0.1", port), timeout=10).close()
                fuzzer.expected["early_disconnect"] += 5
                graphite_expected["connections"] += 5
                # and the well-behaved collector is answered throughout
                ts = float(base + 10 * len(good_ts))  # (the first was sent before the loop)
                good.submit(ts, "goodnode", "system", "", {"load1": float(len(good_ts))})
                good_ts.append(ts)
                assert good.flush(timeout=30), f"the good sender was not acked at {index}"
        # idle connections from one address: 8 held, the rest refused
        wait_for(
            lambda: (
                metrics(data_dir).get("graphite_open") == 0
                and metrics(data_dir).get("graphite_connections")
                == graphite_expected["connections"]
            ),
            what="the storms' connections closed",
        )
        for _ in range(12):
            idle.append(socket.create_connection(("127.0.0.1", graphite_port), timeout=10))
        graphite_expected["connections"] += 8
        graphite_expected["client_limit"] += 4

        # the fuzz connection is read in order: the marker's ack means all was taken
        marker = 10**12
        fuzz.send(
            wire.encode_data("fuzzer", [(marker, base, "goodnode", "marker", "", {"v": 1}, 1)])
        )
        fuzzer.expected.update(messages=1, received=1, accepted=1)
        deadline = time.monotonic() + 60
        acked = set()
        while marker not in acked and time.monotonic() < deadline:
            if fuzz.poll(200):
                acked.update(wire.decode_ack(fuzz.recv())[0])
        assert marker in acked
        wait_for(
            lambda: (
                metrics(data_dir).get("early_disconnect") == fuzzer.expected["early_disconnect"]
                and metrics(data_dir).get("graphite_client_limit") == 4
                and metrics(data_dir).get("graphite_samples") == graphite_good
            ),
            what="the storms and the Graphite stream counted",
        )
        pid = process.process.pid
        peaks = (peak_rss_mb(pid), peak_rss_mb(writer_pid(pid)))
    finally:
        for connection in idle:
            connection.close()
        fuzz.close()
        good.close()
    elapsed = time.monotonic() - started
    assert process.process.poll() is None
    assert process.terminate() == 0
    counts = metrics(data_dir)
    budget = BUDGET_MB + QUEUE_LIMIT * QUEUED_SAMPLE_KB / 1024
    print(f"fuzz: {MESSAGES} messages in {elapsed:.0f}s; peak RSS {peaks} MB (budget {budget})")
    assert max(peaks) < budget

    good_messages = good.stats.sent
    expected = dict(fuzzer.expected)
    expected["messages"] += good_messages
    expected["received"] += good_messages
    expected["accepted"] += len(good_ts)
    got = {name: counts.get(name, 0) for name in expected}
    assert got == expected
    # nothing else was refused, and the refused hosts are named
    for name, value in counts.items():
        if name.startswith("rej_") and name not in expected:
            assert value == 0, name
    assert counts["refused_hosts"] >= 1
    graphite = {name: counts.get(f"graphite_{name}", 0) for name in graphite_expected}
    assert graphite == dict(graphite_expected)
    assert (good.stats.acked, good.stats.rejected) == (len(good_ts), {})

    # every good sample is in the raw archive and in the RRD
    journaled = sorted(
        ts
        for _, ts, host, dataset, *_ in read_after(data_dir / "_journal", None)
        if (host, dataset) == ("goodnode", "system")
    )
    assert journaled == good_ts
    config = load_config(process.config_path)
    store = RrdStore(config, data_dir)
    result = store.fetch(store.path("goodnode", "system"), "AVERAGE", good_ts[0] - 10, good_ts[-1])
    stored = dict(zip(result.times, result.columns["load1"], strict=True))
    assert [stored.get(int(ts)) for ts in good_ts] == [float(i) for i in range(len(good_ts))]

    # nothing outside the data dir; inside it, only valid hosts of RRD files
    assert sorted(p.name for p in data_dir.parent.iterdir()) == sorted(
        ["data", process.log_path.name, "affair-0.toml"]
    )
    hosts = {p.name for p in data_dir.iterdir() if not p.name.startswith("_")}
    assert hosts == {*FUZZ_HOSTS, "goodnode", "gf01", "recorder"}
    for host in hosts:
        assert all(p.suffix == ".rrd" for p in (data_dir / host).iterdir())
    log = process.log()
    assert "\x1b" not in log and "evil\nline" not in log and "Traceback" not in log
    assert len(log.splitlines()) < 400
    assert Path(data_dir / "_state" / "metrics.json").exists()
