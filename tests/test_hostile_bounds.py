"""Bounds on what a peer can make the recorder keep: pure checks, no sockets or files."""

import msgpack
import pytest
from affair.collectors import wire

from affair.errors import WireError
from affair.ingest.graphite import LineSplitter
from affair.ingest.selfmetrics import Metrics
from affair.ingest.senders import SenderReports
from affair.ingest.validate import HostCap, Sample
from affair.ingest.writer_process import decode_batch, encode_batch

SAMPLE = (1, 1.8e9, "ldc01", "system", "", {"load1": 1.0}, 1)


@pytest.mark.parametrize("sender", ["n", "ldc01.daq", "graphite:::1", "a" * 128, "x@y/z+1"])
def test_a_sender_name_within_the_rule_is_decoded(sender):
    assert wire.decode_report(wire.encode_data(sender, [SAMPLE])).sender == sender


@pytest.mark.parametrize("sender", ["a" * 129, "x" * 100_000, "", ".hidden", "evil\nline", "ü"])
def test_a_sender_name_outside_the_rule_refuses_the_message(sender):
    with pytest.raises(WireError) as caught:
        wire.decode_report(wire.encode_data(sender, [SAMPLE]))
    assert caught.value.reason == "name"
    assert len(str(caught.value)) < 120  # the detail quotes a bounded head of the name


def test_more_samples_than_allowed_refuse_the_message_before_they_are_built():
    payload = wire.encode_data("n", [SAMPLE] * 11)
    assert len(wire.decode_report(payload, max_samples=11).samples) == 11
    with pytest.raises(WireError) as caught:
        wire.decode_report(payload, max_samples=10)
    assert caught.value.reason == "oversized"
    # the default holds a sender's largest batch (max_in_flight 500) many times over
    assert len(wire.decode_report(wire.encode_data("n", [SAMPLE] * 10_000)).samples) == 10_000
    with pytest.raises(WireError):
        wire.decode_report(wire.encode_data("n", [SAMPLE] * 10_001))


def test_an_ack_longer_than_a_message_may_be_is_still_read():
    acked, rejected = wire.decode_ack(wire.encode_ack(range(20_000), [(1, "past")]))
    assert (len(acked), rejected) == (20_000, [(1, "past")])


def test_the_writer_batch_carries_each_sender_once():
    sender = "s" * 128
    items = [
        ((("2026-12-02"), i), Sample(i, 1.8e9 + i, "h", "d", "", {"v": 1.0}, 1, sender))
        for i in range(2000)
    ]
    items.append((("2026-12-02", 2000), Sample(0, 1.8e9, "h", "d", "", {"v": None}, 1, "")))
    payload = encode_batch(items)
    senders, rows = msgpack.unpackb(payload)
    assert senders == [sender, ""]
    assert payload.count(sender.encode()) == 1
    decoded = decode_batch(payload)
    assert [(p, s.ts, s.sender, s.values) for p, s in decoded] == [
        (tuple(p), s.ts, s.sender, s.values) for p, s in items
    ]
    # the decoded samples share one name object, not 2,000 copies
    assert len({id(s.sender) for _, s in decoded[:-1]}) == 1


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_an_implausible_drop_report_is_counted_and_ignored():
    clock = Clock()
    reports = SenderReports(max_rate=100, idle_forget=60, clock=clock)
    assert reports.report("a", 5, 10)
    assert not reports.report("b", 10**18, 0)  # first heard: at most 100/s over 60 s
    assert not reports.report("b", 6001, 0)
    assert reports.report("b", 6000, 0)
    clock.now += 2
    assert not reports.report("a", 5 + 201, 0)  # 2 s at 100/s: 200 more at most
    assert reports.report("a", 5 + 200, 0)
    clock.now += 1
    assert not reports.report("a", 101, 0)  # a restart counts from 0: 101 in 1 s is too many
    assert reports.report("a", 100, 3)  # restarted: its new life's drops add to the old
    assert not reports.report("a", 100, 10**15)  # holds more than it could make in 7 days
    assert (reports.implausible, reports.dropped_total, reports.buffered_total) == (5, 6305, 3)


def test_metrics_sender_dropped_cannot_be_set_by_a_sender():
    metrics = Metrics()
    metrics.sender_report("ldc01", {"dropped": 3, "buffered": 4})
    for _ in range(7):
        metrics.sender_report("evil", {"dropped": 10**18, "buffered": 0})
    assert (metrics.counts["sender_dropped"], metrics.counts["sender_buffered"]) == (3.0, 4.0)
    assert metrics.counts["sender_implausible"] == 7.0


def test_sender_state_is_bounded_in_count_and_forgotten_when_idle():
    clock = Clock()
    reports = SenderReports(max_senders=3, idle_forget=100, clock=clock)
    for name in ("a", "b", "c"):
        assert reports.report(name, 1, 10)
    assert not reports.report("d", 1, 10)  # no room: not kept, still counted as such
    assert (len(reports.states), reports.not_kept) == (3, 1)
    clock.now += 60
    assert reports.report("a", 1, 5)  # heard again: kept longer
    clock.now += 50  # b and c silent for 110 s, a for 50 s
    assert reports.forget_idle(clock()) == 2
    assert list(reports.states) == ["a"]
    # what the forgotten ones held leaves the sums; what they dropped stays counted
    assert (reports.dropped_total, reports.buffered_total) == (3, 5)
    assert reports.report("d", 1, 10)  # room again


def test_hosts_past_max_hosts_are_refused_and_remembered_the_own_host_never():
    cap = HostCap(3, lambda: ["old1", "old2"], own_host="affair")
    assert cap.admit("old1") and cap.admit("new1")
    assert not cap.admit("new2") and not cap.admit("new2") and not cap.admit("new3")
    assert cap.admit("affair")  # the recorder's own health is always recorded
    assert cap.admit("old2")
    assert (cap.refused_count, list(cap.refused)) == (2, ["new2", "new3"])


def test_every_over_long_line_counts_once():
    splitter = LineSplitter(10)
    chunk = b"".join([b"x" * 20 + b"\n"] * 50) + b"ok 1 2\n"
    assert splitter.feed(chunk) == ([b"ok 1 2"], 50)
    # one over-long line across chunks counts once, and its tail is dropped
    assert splitter.feed(b"y" * 30) == ([], 1)
    assert splitter.holds_partial
    assert splitter.feed(b"y" * 30 + b"\nz 1 2\n") == ([b"z 1 2"], 0)
    assert not splitter.holds_partial


def test_the_shipped_config_colours_the_recorders_host_for_a_full_disk_and_refused_hosts():
    from affair.config import load_config

    rules = {f"{rule.dataset}.{rule.variable}": rule for rule in load_config().status.rules}
    assert rules["affair.disk_full"].red == 1
    assert rules["affair.refused_hosts"].yellow == 1


def test_a_sender_cannot_be_made_with_a_name_the_recorder_would_refuse():
    from affair.collectors.sender import Sender

    from affair.errors import InvalidName

    with pytest.raises(InvalidName) as caught:
        Sender("tcp://127.0.0.1:1", "x" * 129)
    assert "1-128" in str(caught.value)
