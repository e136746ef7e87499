"""The Sender sleeps while there is nothing to do, and still resends on time (real sockets)."""

import time

import pytest
import zmq
from affair.collectors import wire
from affair.collectors.sender import Sender

pytestmark = pytest.mark.integration  # real sockets, and pumps that wait 1-2 s


def counting_send_due(sender):
    calls = []
    original = sender._send_due

    def wrapped():
        calls.append(time.monotonic())
        original()

    sender._send_due = wrapped
    return calls


def test_an_idle_pump_sleeps_through_its_timeout():
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    sender = Sender(f"tcp://127.0.0.1:{port}", name="idle", context=context)
    try:
        calls = counting_send_due(sender)
        sender.pump(1.0)
        assert len(calls) <= 2  # it used to wake every 50 ms: 20 times
    finally:
        sender.close()
        router.close(linger=0)
        context.term()


def test_an_unanswered_sample_is_resent_on_schedule_while_pumping_long():
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)  # binds, reads, never acks
    port = router.bind_to_random_port("tcp://127.0.0.1")
    sender = Sender(
        f"tcp://127.0.0.1:{port}",
        name="resend",
        resend_timeout=0.3,
        reconnect_after=100,
        context=context,
    )
    try:
        sender.submit(time.time(), "h1", "d", "", {"v": 1.0})
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            sender.pump(deadline - time.monotonic())
        attempts = []
        while router.poll(0):
            _identity, payload = router.recv_multipart()
            _sender, samples, _status = wire.decode_report(payload)
            attempts += [sample[6] for sample in samples]
        assert attempts[:3] == [1, 2, 3]  # first send, then a resend every 0.3 s
        assert sender.stats.resends == len(attempts) - 1
    finally:
        sender.close()
        router.close(linger=0)
        context.term()


def test_a_fresh_connection_is_used_at_once():
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    sender = Sender(f"tcp://127.0.0.1:{port}", name="fresh", context=context)
    try:
        sender.submit(time.time(), "h1", "d", "", {"v": 1.0})
        calls = counting_send_due(sender)
        sender.pump(2.0)
        assert router.poll(0), "not sent within 2 s of connecting"
        # tried at 10, 20, 40... ms while connecting, then quiet until a resend is due:
        # a handful of looks in two seconds, not a busy loop
        assert len(calls) <= 12
    finally:
        sender.close()
        router.close(linger=0)
        context.term()


def test_an_ack_wakes_the_pump_at_once():
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    sender = Sender(f"tcp://127.0.0.1:{port}", name="acked", context=context)
    try:
        seq = sender.submit(time.time(), "h1", "d", "", {"v": 1.0})
        for _ in range(50):  # sent as soon as the connection is up
            sender.pump(0.1)
            if router.poll(0):
                break
        assert router.poll(0), "the sample was never sent"
        identity, _payload = router.recv_multipart()
        router.send_multipart([identity, wire.encode_ack([seq])])
        started = time.monotonic()
        assert sender.flush(5.0)
        assert time.monotonic() - started < 2.0  # not held until a timeout
        assert sender.stats.acked == 1
    finally:
        sender.close()
        router.close(linger=0)
        context.term()
