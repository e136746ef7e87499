"""The Sender's bookkeeping: bounded buffer, oldest dropped and counted, resend after timeout."""

import time
from types import MappingProxyType

import pytest
import zmq
from affair.collectors import wire
from affair.collectors.sender import Sender

from tests.conftest import free_endpoint


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_full_buffer_drops_the_oldest_of_that_series_and_counts_it():
    sender = Sender(free_endpoint(), "n", per_series_limit=3)  # nobody listens
    for i in range(5):
        sender.submit(float(i), "h", "system", "", {"v": float(i)})
    sender.submit(0.0, "h", "other", "", {"v": 0.0})
    assert sender.stats.dropped == 2
    assert sender.buffered == 4
    assert [e.ts for e in sender._pending.values() if e.dataset == "system"] == [2.0, 3.0, 4.0]
    sender.close()


@pytest.mark.integration
def test_unacked_samples_are_resent_after_the_timeout_and_forgotten_once_acked():
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    endpoint = f"tcp://127.0.0.1:{router.bind_to_random_port('tcp://127.0.0.1')}"
    clock = Clock()
    sender = Sender(endpoint, "n", resend_timeout=5, clock=clock)
    sender.submit(1.0, "h", "system", "", {"v": 1.0})
    deadline = time.monotonic() + 10
    while not router.poll(10) and time.monotonic() < deadline:
        sender.pump(0.01)
    identity, payload = router.recv_multipart()
    assert wire.decode_report(payload)[1][0][6] == 1  # first attempt
    sender.pump(0.01)
    assert not router.poll(100)  # nothing resent before the timeout
    clock.now += 6
    sender.pump(0.01)
    assert router.poll(2000)
    identity, payload = router.recv_multipart()
    seq, attempt = wire.decode_report(payload)[1][0][0], wire.decode_report(payload)[1][0][6]
    assert attempt == 2
    assert sender.stats.resends == 1
    router.send_multipart([identity, wire.encode_ack([seq])])
    deadline = time.monotonic() + 5
    while sender.buffered and time.monotonic() < deadline:
        sender.pump(0.05)
    assert (sender.buffered, sender.stats.acked) == (0, 1)
    sender.close()
    router.close()


@pytest.mark.integration
def test_refused_samples_are_logged_once_a_minute_per_reason_not_one_line_each(caplog):
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    endpoint = f"tcp://127.0.0.1:{router.bind_to_random_port('tcp://127.0.0.1')}"
    clock = Clock()
    sender = Sender(endpoint, "n", clock=clock)

    def refuse_everything(count):
        """Take ``count`` samples off the wire and refuse each; wait until the sender knows."""
        seqs = []
        deadline = time.monotonic() + 10
        while len(seqs) < count and time.monotonic() < deadline:
            sender.pump(0.01)
            while router.poll(0):
                identity, payload = router.recv_multipart()
                batch = [sample[0] for sample in wire.decode_report(payload)[1]]
                seqs += batch
                refused = [(seq, "host_not_bound") for seq in batch]
                router.send_multipart([identity, wire.encode_ack([], refused)])
        while sender.buffered and time.monotonic() < deadline:
            sender.pump(0.05)
        assert (len(seqs), sender.buffered) == (count, 0)

    try:
        with caplog.at_level("WARNING", logger="affair.collectors.sender"):
            for i in range(5):
                sender.submit(float(i), "node002", "system", "", {"v": 1.0})
            refuse_everything(5)
            lines = [r.getMessage() for r in caplog.records if r.name == "affair.collectors.sender"]
            assert lines == ["the recorder refused a sample (host_not_bound) of node002/system"]
            clock.now += 61  # a minute later, the next refusal says how many went unlogged
            sender.submit(10.0, "node002", "system", "", {"v": 1.0})
            refuse_everything(1)
            lines = [r.getMessage() for r in caplog.records if r.name == "affair.collectors.sender"]
            assert lines[1:] == [
                "4 more 'host_not_bound' refusals in the last minute (not logged one by one)",
                "the recorder refused a sample (host_not_bound) of node002/system",
            ]
        assert sender.stats.rejected == {"host_not_bound": 6}
    finally:
        sender.close()
        router.close()


def test_any_mapping_of_values_is_sent_as_a_map():
    # submit takes a Mapping; msgpack packs dicts only, so a read-only view must not
    # reach the encoder (it would fail there, in pump, long after the call).
    context = zmq.Context.instance()
    endpoint = free_endpoint()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(endpoint)
    sender = Sender(endpoint, "n")
    sender.submit(1.0, "h", "system", "", MappingProxyType({"v": 2.5, "w": None}))
    deadline = time.monotonic() + 10
    while not router.poll(10) and time.monotonic() < deadline:
        sender.pump(0.01)
    _identity, payload = router.recv_multipart(zmq.NOBLOCK)
    assert wire.decode_report(payload).samples == [
        [1, 1.0, "h", "system", "", {"v": 2.5, "w": None}, 1]
    ]
    sender.close()
    router.close()
