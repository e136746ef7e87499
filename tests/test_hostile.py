"""Hostile input: fuzzing the live recorder, a flooding sender, and the decode path's contract.

The live fuzz sends 100,000 random and mutated messages into a real recorder
process while a well-behaved sender checks in every 5,000 messages. An
independent oracle (msgpack and the protocol's written rules, not our
decoder) says which messages have a readable envelope and how many samples
they carry; the recorder's own counters must then account for every
message and every sample: accepted, recognised as a duplicate, or rejected
with a counted reason.
"""

import json
import math
import random
import re
import signal
import subprocess
import sys
import time

import msgpack
import pytest
import zmq
from affair.collectors import wire
from affair.collectors.sender import Sender
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affair.config import parse_config
from affair.errors import Rejected, WireError
from affair.ingest.validate import validate_sample
from affair.vocab import REJECTION_REASONS
from tests.conftest import BASE_CONFIG, REPO, wait_for

FUZZ_MESSAGES = 100_000
CHECK_EVERY = 5_000
MESSAGE_LIMIT = 4096
SERIES_CAP = 4
FUZZ_CONFIG = BASE_CONFIG.replace(
    "step = 10",
    f"step = 10\nmax_message_bytes = {MESSAGE_LIMIT}\nmax_series_per_host = {SERIES_CAP}",
)
FUZZ_HOSTS = ("fz01", "fz02", "fz03")
WRITER_REASONS = {"not_increasing", "write_error"}  # counted at the store, for accepted samples
CONNECTION_REASONS = {"auth", "handshake"}  # counted per connection attempt, not per message

BAD_NAMES = [
    "../../etc",
    "..",
    ".hidden",
    "a/b",
    "a\\b",
    "x" * 100,
    "na\nme",
    "\x1b[31mred",
    "",
    "ümlaut",
    "a\x00b",
    None,
    5,
    b"bytes",
    ["list"],
]
BAD_TIMESTAMPS = [math.nan, math.inf, -math.inf, "1700000000", True, None, [1]]
BAD_VALUES = [math.inf, -math.inf, "12", True, [], {}, b"1"]


# --- the generator: random, structured, and mutated messages ---


class Fuzzer:
    def __init__(self, seed, now):
        self.rng = random.Random(seed)
        self.now = now
        self.seq = 0

    def sample(self, hostile=True):
        rng = self.rng
        self.seq += 1
        values = {f"v{i}": rng.uniform(-1e6, 1e6) for i in range(rng.randint(1, 4))}
        sample = [
            self.seq,
            self.now - rng.uniform(-100, 3000),
            rng.choice(FUZZ_HOSTS),
            rng.choice(("system", "app", "disk", "net", "gpu", "ib")),
            rng.choice(("", "a", "b")),
            values,
            rng.randint(1, 3),
        ]
        if not hostile or rng.random() < 0.3:
            return sample
        kind = rng.randrange(10)
        if kind == 0:
            sample[rng.choice((2, 3, 4))] = rng.choice(BAD_NAMES)
        elif kind == 1:
            values[rng.choice(BAD_NAMES[:11])] = 1.0
        elif kind == 2:
            sample[1] = rng.choice(BAD_TIMESTAMPS)
        elif kind == 3:
            sample[1] = self.now + rng.choice((1e4, 1e6, 1e9))  # far in the future
        elif kind == 4:
            sample[1] = self.now - rng.choice((1e7, 1e9, self.now))  # far in the past
        elif kind == 5:
            values["v0"] = rng.choice(BAD_VALUES + [math.nan])  # NaN is unknown, not refused
        elif kind == 6:
            sample[5] = {f"v{i}": 1.0 for i in range(70)}  # more than 64 variables
        elif kind == 7:
            sample = sample[: rng.randrange(7)] + [None] * rng.randrange(3)
        elif kind == 8:
            sample[0] = rng.choice((1.5, "7", None, True))
        else:
            sample[6] = rng.choice(("2", None, 1.0))
        return sample

    def message(self):
        """One payload, or a list of frames for a multi-frame message."""
        rng = self.rng
        kind = rng.random()
        sender = rng.choice(("fuzzer", "fuzzer-2", "x" * 500, "evil\nline", "\x1b[2J"))
        if kind < 0.10:
            return rng.randbytes(rng.randrange(300))
        if kind < 0.15:
            return [b"frame one", rng.randbytes(20)]  # more frames than the protocol has
        if kind < 0.20:
            version = rng.choice((0, 2, 99, -1, "1", None, 1.5))
            return msgpack.packb([version, 1, sender, [self.sample()]])
        if kind < 0.25:
            envelope = rng.choice(
                (
                    [1, 2, [1], []],
                    [1, 1, 5, []],
                    [1, 1, sender, "samples"],
                    [1, 1, sender, [], {"dropped": -1, "buffered": 0}],
                    [1, 1, sender, [], {"dropped": 1}],
                    [1, 1, sender, [], {"dropped": 3, "buffered": 2}],
                    [1, 1],
                    [1],
                    {"v": 1},
                    "text",
                    [1, 1, sender, [], None, None],
                )
            )
            return msgpack.packb(envelope)
        if kind < 0.28:
            return b"\x91" * 3000 + b"\xc0"  # nesting deeper than any decoder should follow
        if kind < 0.31:
            big = [self.sample(hostile=False) for _ in range(100)]
            return msgpack.packb([1, 1, sender, big])  # over the size limit
        samples = [self.sample() for _ in range(rng.randint(1, 8))]
        payload = msgpack.packb([1, 1, sender, samples], use_bin_type=rng.random() < 0.9)
        if kind < 0.45:
            return payload[: rng.randrange(len(payload))]  # truncated
        if kind < 0.60:
            mutated = bytearray(payload)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            return bytes(mutated)
        return payload


def oracle(message):
    """``(envelope_ok, samples)`` from msgpack and the protocol's rules alone."""
    if isinstance(message, list):
        return False, 0
    if len(message) > MESSAGE_LIMIT:
        return False, 0
    try:
        decoded = msgpack.unpackb(message, raw=False, strict_map_key=True)
    except Exception:
        return False, 0
    if not isinstance(decoded, list) or len(decoded) < 2 or decoded[0] != 1:
        return False, 0
    if decoded[1] != 1 or len(decoded) not in (4, 5):
        return False, 0
    if not isinstance(decoded[2], str) or not isinstance(decoded[3], list):
        return False, 0
    if not SENDER_RULE.fullmatch(decoded[2]) or len(decoded[3]) > 10_000:
        return False, 0
    if len(decoded) == 5:
        status = decoded[4]
        if not (
            isinstance(status, dict)
            and sorted(status) == ["buffered", "dropped"]
            and all(type(v) is int and 0 <= v < 2**63 for v in status.values())
        ):
            return False, 0
    return True, len(decoded[3])


MARKER = 10**12
SENDER_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}")  # the README's, written again


def drain(socket):
    """Read every waiting ACK; return the sequence numbers acked."""
    acked = set()
    while True:
        try:
            acked.update(wire.decode_ack(socket.recv(zmq.NOBLOCK))[0])
        except zmq.Again:
            return acked


def metrics(data_dir):
    return json.loads((data_dir / "_state" / "metrics.json").read_text())


@pytest.mark.integration
def test_100k_fuzzed_messages_are_survived_and_every_one_is_accounted_for(recorder):
    process = recorder(FUZZ_CONFIG)
    context = zmq.Context.instance()
    fuzz = context.socket(zmq.DEALER)
    fuzz.setsockopt(zmq.LINGER, 0)
    fuzz.setsockopt(zmq.SNDTIMEO, 30_000)  # a dead recorder fails the test, never hangs it
    fuzz.connect(process.endpoint)
    good = Sender(process.endpoint, "goodnode", resend_timeout=30)
    fuzzer = Fuzzer(seed=20270115, now=time.time())
    base = int(time.time()) // 10 * 10 - 600
    envelopes_ok = samples_in_envelopes = oversized = 0
    checks = 0
    try:
        for index in range(FUZZ_MESSAGES):
            message = fuzzer.message()
            ok, count = oracle(message)
            envelopes_ok += ok
            samples_in_envelopes += count
            if isinstance(message, list):
                fuzz.send_multipart(message)
            else:
                oversized += len(message) > MESSAGE_LIMIT
                fuzz.send(message)
            if index % 100 == 0:
                drain(fuzz)  # the recorder's replies; a peer that never reads loses its own
            if (index + 1) % CHECK_EVERY == 0:
                # the good collector is answered throughout
                good.submit(float(base + 10 * checks), "goodnode", "system", "", {"load1": 1.0})
                assert good.flush(timeout=60), f"no ack for the good sender after {index + 1}"
                assert process.process.poll() is None
                checks += 1
        # A last valid sample on the fuzz connection: one connection is read in
        # order, so its ack means every fuzz message before it was taken.
        marker = wire.encode_data(
            "fuzzer", [(MARKER, base, "goodnode", "marker", "", {"v": 1.0}, 1)]
        )
        envelopes_ok, samples_in_envelopes = envelopes_ok + 1, samples_in_envelopes + 1
        fuzz.send(marker)
        deadline = time.monotonic() + 60
        while MARKER not in drain(fuzz) and time.monotonic() < deadline:
            fuzz.poll(100)
    finally:
        fuzz.close()
        good.close()
    assert (good.stats.acked, good.stats.rejected) == (checks, {})
    assert process.process.poll() is None
    assert process.terminate() == 0
    counts = metrics(process.data_dir)

    good_messages = good.stats.sent  # one sample per message, each flushed alone
    assert counts["messages"] == FUZZ_MESSAGES + 1 + good_messages
    assert counts["received"] == samples_in_envelopes + good_messages
    rejected = {
        reason: counts.get(f"rej_{reason}", 0)
        for reason in REJECTION_REASONS
        if reason not in WRITER_REASONS | CONNECTION_REASONS
    }
    # every message and every sample ends somewhere counted
    envelope_rejections = FUZZ_MESSAGES + 1 - envelopes_ok
    assert (
        counts["accepted"] + counts["duplicates"] + sum(rejected.values())
        == counts["received"] + envelope_rejections
    )
    assert rejected["oversized"] == oversized > 1000
    for reason in ("undecodable", "version", "structure", "name", "value", "future", "past"):
        assert rejected[reason] > 100, (reason, rejected)
    assert rejected["var_cap"] > 10 and rejected["series_cap"] > 10
    assert counts["accepted"] > 1000  # real data got through the noise too

    # nothing escaped the data dir, no host outside the known ones, caps held
    data = process.data_dir
    assert sorted(p.name for p in data.parent.iterdir()) == sorted(
        ["data", process.log_path.name, "affair-0.toml"]
    )
    hosts = {p.name for p in data.iterdir() if not p.name.startswith("_")}
    assert {*FUZZ_HOSTS, "goodnode"} <= hosts  # (mutations also make new, valid host names)
    for host in hosts:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", host) and ".." not in host, host
        files = [p.name for p in (data / host).iterdir()]
        assert all(f.endswith(".rrd") and not f.startswith(".") for f in files), files
        if host != "recorder":  # the recorder's own host
            assert len(files) <= SERIES_CAP, (host, files)
    # the log stays readable: rejections are rate-limited, names cannot forge lines
    log = process.log()
    assert len(log.splitlines()) < 500
    assert "\x1b" not in log and "evil\nline" not in log


FLOOD = """
import itertools, signal, sys, time, msgpack, zmq
endpoint, seconds = sys.argv[1], float(sys.argv[2])
stopped = []
signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
socket = zmq.Context().socket(zmq.DEALER)
socket.setsockopt(zmq.LINGER, 0)
socket.setsockopt(zmq.SNDTIMEO, 100)
socket.connect(endpoint)
now = time.time()
# Made once, sent as fast as the socket takes them: the recorder, not this
# loop, is the bottleneck. New series past the cap, resends, and garbage.
payloads = [b"\\xc1 and some garbage"]
for batch in range(50):
    samples = [
        [batch * 100 + i, now - 600 + i, "flooder", f"s{batch}x{i}", "", {"v": 1.0}, 1]
        for i in range(100)
    ]
    payloads.append(msgpack.packb([1, 1, "flooder", samples]))
sent = 0
deadline = time.monotonic() + seconds
for payload in itertools.cycle(payloads):
    if stopped or time.monotonic() > deadline:
        break
    try:
        socket.send(payload)
        sent += 1
    except zmq.Again:
        pass
print(sent, flush=True)
"""


@pytest.mark.integration
def test_a_flooding_sender_does_not_starve_the_others(recorder):
    process = recorder(BASE_CONFIG.replace("step = 10", "step = 10\nmax_series_per_host = 8"))
    flood = subprocess.Popen(
        [sys.executable, "-c", FLOOD, process.endpoint, "30"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    good = Sender(process.endpoint, "goodnode", resend_timeout=60)
    base = int(time.time()) // 10 * 10 - 300
    try:
        wait_for(  # the flood is in full swing: past the series cap
            lambda: "rejected (series_cap) from flooder" in process.log(),
            what="the recorder to refuse the flood's new series",
        )
        waits = []
        for i in range(20):
            started = time.monotonic()
            good.submit(float(base + 10 * i), "goodnode", "system", "", {"load1": float(i)})
            assert good.flush(timeout=30)
            waits.append(time.monotonic() - started)
        # served while the flood still runs (it stops by itself after 30 s)
        assert flood.poll() is None
    finally:
        good.close()
        flood.send_signal(signal.SIGTERM)
        flood_sent = int(flood.communicate(timeout=30)[0])
    print(
        f"flood: {flood_sent} messages sent; good sender's waits: "
        f"max {max(waits):.3f}s, mean {sum(waits) / 20:.3f}s"
    )
    assert (good.stats.acked, good.stats.resends) == (20, 0)
    assert process.terminate() == 0
    counts = metrics(process.data_dir)
    # the flood outran the recorder: it had more queued than it could take
    assert flood_sent > counts["messages"] > 1000
    assert counts["rej_undecodable"] > 10
    assert counts["rej_series_cap"] > 10_000
    assert len(list((process.data_dir / "flooder").glob("*.rrd"))) == 8


# --- the decode and validation path never fails in any other way ---

CONFIG = parse_config({})
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=30)
    | st.binary(max_size=30)
)
msgpack_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=12,
)
field = scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.text(max_size=20), scalars)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | msgpack_values.map(msgpack.packb))
def test_any_payload_is_decoded_or_refused_with_a_reason(payload):
    try:
        _sender, raw_samples, _status = wire.decode_report(payload, MESSAGE_LIMIT)
    except WireError as error:
        assert error.reason in REJECTION_REASONS
        return
    for raw in raw_samples:
        try:
            sample = validate_sample(raw, CONFIG, 1.8e9)
        except Rejected as rejection:
            assert rejection.reason in REJECTION_REASONS
            continue
        assert all(v is None or math.isfinite(v) for v in sample.values.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.tuples(
        field,
        st.floats() | field,
        st.sampled_from(["ldc01", "../x", ""]) | field,
        st.sampled_from(["system"]) | field,
        st.sampled_from([""]) | field,
        st.dictionaries(st.text(max_size=20), scalars, max_size=5) | field,
        st.integers(1, 3) | field,
    ).map(list)
)
def test_any_sample_shape_is_validated_or_refused_with_a_reason(raw):
    try:
        sample = validate_sample(raw, CONFIG, 1.8e9)
    except Rejected as rejection:
        assert rejection.reason in REJECTION_REASONS
        return
    assert (sample.host, sample.dataset) == (raw[2], raw[3])  # names passed the checks
    assert all(v is None or math.isfinite(v) for v in sample.values.values())


@pytest.mark.parametrize("name", [[], ["a"], {"a": 1}, b"ldc01", 5, None])
@pytest.mark.parametrize("field", [2, 3, 4])
def test_a_name_that_is_not_a_string_is_refused_not_a_crash(name, field):
    # (found by the property above: the name cache once hashed whatever came)
    raw = [1, 1.8e9, "ldc01", "system", "", {"v": 1.0}, 1]
    raw[field] = name
    with pytest.raises(Rejected) as caught:
        validate_sample(raw, CONFIG, 1.8e9)
    assert caught.value.reason == "name"
