"""Delivery's pieces without processes: midnight dedupe, the sender's status, drop reporting."""

import logging
import os
import time
import tracemalloc

import msgpack
import pytest
import rrdtool
import zmq
from affair.collectors import wire
from affair.collectors.sender import Sender

from affair.config import parse_config
from affair.config.builtin import RECORDER_COUNTERS, builtin_datasets
from affair.errors import WireError
from affair.ingest.selfmetrics import Metrics
from affair.ingest.validate import Sample
from affair.ingest.writer_process import STOP, WriterLoop
from affair.storage.journal import Journal, Watermark
from affair.vocab import REJECTION_REASONS
from tests.conftest import free_endpoint

MIDNIGHT = 1_800_057_600.0  # 2027-01-16 00:00:00 UTC


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def sample(ts, host="ldc01", value=1.0):
    return Sample(1, ts, host, "system", "", {"cpu_user": value})


# --- the journal recognises a resend across midnight ---


def test_a_resend_after_midnight_is_recognised_in_yesterdays_file(tmp_path):
    clock = Clock(MIDNIGHT - 5)
    journal = Journal(tmp_path, clock=clock, lookback=300)
    assert journal.append([sample(MIDNIGHT - 10)]) == [("2027-01-15", 1)]
    clock.now = MIDNIGHT + 20  # the ack was lost; the collector resends after midnight
    assert journal.append([sample(MIDNIGHT - 10), sample(MIDNIGHT + 10)]) == [
        None,
        ("2027-01-16", 1),
    ]
    # a sample stamped ahead of the recorder's clock (within the skew) is found too
    clock.now = MIDNIGHT - 60
    journal2 = Journal(tmp_path / "skew", clock=clock, lookback=300)
    journal2.append([sample(MIDNIGHT + 100)])
    clock.now = MIDNIGHT + 120
    assert journal2.append([sample(MIDNIGHT + 100)]) == [None]
    # a genuinely new old sample (never journaled) is still accepted
    assert journal.append([sample(MIDNIGHT - 3600, host="ldc02")]) == [("2027-01-16", 2)]


def test_without_lookback_only_days_of_the_samples_own_time_are_searched(tmp_path):
    clock = Clock(MIDNIGHT - 5)
    journal = Journal(tmp_path, clock=clock)
    journal.append([sample(MIDNIGHT + 1)])  # stamped 6 s ahead, journaled yesterday
    clock.now = MIDNIGHT + 30
    # no lookback configured: the recorder does not expect samples from the future
    assert journal.append([sample(MIDNIGHT + 1)]) == [("2027-01-16", 1)]


# --- the wire's optional status ---


def test_data_with_a_status_round_trips():
    payload = wire.encode_data(
        "n", [(1, 1.0, "h", "d", "", {"v": 1.0}, 1)], {"dropped": 7, "buffered": 2}
    )
    assert wire.decode_report(payload) == (
        "n",
        [[1, 1.0, "h", "d", "", {"v": 1.0}, 1]],
        {"dropped": 7, "buffered": 2},
    )
    assert wire.decode_report(wire.encode_data("n", []))[2] is None


@pytest.mark.parametrize(
    "status",
    [
        {"dropped": -1, "buffered": 0},
        {"dropped": 1.5, "buffered": 0},
        {"dropped": True, "buffered": 0},
        {"dropped": 1},
        {"dropped": 1, "buffered": 0, "extra": 1},
        [1, 2],
        "x",
    ],
)
def test_a_malformed_status_is_a_structure_error(status):
    payload = msgpack.packb([1, 1, "n", [], status])
    with pytest.raises(WireError) as caught:
        wire.decode_report(payload)
    assert caught.value.reason == "structure"


# --- the recorder's account of what senders report ---


def test_sender_reports_reach_the_recorders_own_values():
    metrics = Metrics()
    metrics.sender_report("ldc01", {"dropped": 5, "buffered": 40})
    metrics.sender_report("ldc02", {"dropped": 0, "buffered": 3})
    metrics.sender_report("ldc01", {"dropped": 7, "buffered": 0})  # newer figures replace older
    metrics.observe_delivery({"ldc02": [2.0]})
    values, per_sender = metrics.self_samples(0, 0, 0)
    assert (values["sender_dropped"], values["sender_buffered"]) == (7.0, 3.0)
    # a row for each sender written in the interval, with its latest report
    assert per_sender == {
        "ldc02": {
            "samples": 1.0,
            "latency_avg": 2.0,
            "latency_max": 2.0,
            "dropped": 0.0,
            "buffered": 3.0,
        },
    }
    metrics.observe_delivery({"ldc01": [1.0, 3.0]})
    values, per_sender = metrics.self_samples(0, 0, 0)
    assert values["sender_dropped"] == 7.0  # the totals stay
    assert per_sender["ldc01"]["dropped"] == 7.0 and per_sender["ldc01"]["samples"] == 2.0
    datasets = builtin_datasets()
    assert {"sender_dropped", "sender_buffered", "rej_auth", "rej_handshake"} <= set(
        datasets["affair"].variables
    )
    assert {"dropped", "buffered"} <= set(datasets["delivery"].variables)


# --- the sender's buffer bound and what it tells the recorder ---


def test_a_full_buffer_keeps_a_flat_memory_footprint_and_counts_every_drop(caplog):
    # An hour of 10 s samples for 10 series, then 8 more hours with nobody listening.
    caplog.set_level(
        logging.ERROR, "affair.collectors.sender"
    )  # captured log records would grow memory
    sender = Sender(free_endpoint(), "n", per_series_limit=360)
    values = {f"v{i}": float(i) for i in range(15)}

    def one_hour(hour):
        for tick in range(360):
            for series in range(10):
                sender.submit(hour * 3600 + tick * 10.0, "h", f"d{series}", "", dict(values))
            if tick % 30 == 0:
                sender.pump(0)

    tracemalloc.start()
    try:
        one_hour(0)
        one_hour(1)
        full = tracemalloc.get_traced_memory()[0]
        for hour in range(2, 10):
            one_hour(hour)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        sender.close()
    assert sender.buffered == 3600
    assert sender.stats.submitted == 10 * 3600
    assert sender.stats.dropped == 9 * 3600  # every sample beyond the hour, counted
    assert after - full < 0.02 * full, (full, after)  # flat: 8 more hours cost nothing
    kept = [entry.ts for entry in sender._pending.values() if entry.dataset == "d0"]
    assert kept == [9 * 3600 + tick * 10.0 for tick in range(360)]  # the newest hour


@pytest.mark.integration
def test_every_message_carries_the_senders_drops_and_buffer():
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    endpoint = f"tcp://127.0.0.1:{router.bind_to_random_port('tcp://127.0.0.1')}"
    sender = Sender(endpoint, "n", per_series_limit=2)
    try:
        for i in range(5):
            sender.submit(float(i), "h", "system", "", {"v": float(i)})
        deadline = time.monotonic() + 10
        while not router.poll(10) and time.monotonic() < deadline:
            sender.pump(0.01)
        _identity, payload = router.recv_multipart()
        name, samples, status = wire.decode_report(payload)
        assert [s[1] for s in samples] == [3.0, 4.0]
        assert status == {"dropped": 3, "buffered": 2}
    finally:
        sender.close()
        router.close()


# --- a long replay gives way to a stop ---


def test_the_writer_stops_a_long_replay_between_chunks_and_resumes_it_next_time(tmp_path):
    config = parse_config({"recorder": {"data_dir": str(tmp_path)}})
    start = time.time() - 86400
    journal = Journal(tmp_path / "_journal", clock=Clock(start + 86400))
    journal.append([sample(start + 10 * i, host=f"n{i % 3}") for i in range(25_000)])
    journal.close()
    context = zmq.Context.instance()
    batches_out, batches_in = context.socket(zmq.PUSH), context.socket(zmq.PULL)
    reports_out, reports_in = context.socket(zmq.PUSH), context.socket(zmq.PULL)
    for socket in (batches_out, batches_in, reports_out, reports_in):
        socket.setsockopt(zmq.LINGER, 0)
    batches_out.bind("inproc://batches")
    batches_in.connect("inproc://batches")
    reports_in.bind("inproc://reports")
    reports_out.connect("inproc://reports")
    try:
        batches_out.send(STOP)  # SIGTERM arrived while the writer was replaying
        WriterLoop(config, tmp_path, batches_in, reports_out, os.getppid()).run()
        watermark = Watermark(tmp_path / "_state" / "writer.watermark").load()
        assert watermark[1] == 10_000  # one chunk written, then it stopped
        assert not msgpack.unpackb(reports_in.recv())["ready"]
        WriterLoop(config, tmp_path, batches_in, reports_out, os.getppid())._replay()
        assert Watermark(tmp_path / "_state" / "writer.watermark").load()[1] == 25_000
    finally:
        for socket in (batches_out, batches_in, reports_out, reports_in):
            socket.close()
    last = [rrdtool.lastupdate(str(tmp_path / f"n{h}" / "system.rrd"))["date"] for h in range(3)]
    newest = [max(i for i in range(25_000) if i % 3 == h) for h in range(3)]
    assert [int(d.timestamp()) for d in last] == [int(start + 10 * i) for i in newest]


def test_every_counter_is_present_before_anything_happened():
    # metrics.json is dict(Metrics().counts): a counter whose cause has not
    # happened yet must read 0, not be missing (a reader's KeyError, once).
    counts = dict(Metrics().counts)
    assert {name: counts[name] for name in RECORDER_COUNTERS} == dict.fromkeys(
        RECORDER_COUNTERS, 0.0
    )
    assert all(counts[f"rej_{reason}"] == 0.0 for reason in REJECTION_REASONS)
