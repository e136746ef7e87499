"""The writer process takes a burst of batches before writing, bounded in time."""

import threading
import time

import zmq

from affair.ingest import writer_process
from affair.ingest.writer_process import STOP, WriterLoop


class Taker:
    """Stands in for a WriterLoop: its batches socket, and what it took."""

    def __init__(self, batches):
        self.batches = batches
        self.taken = []

    def _take_batches(self):
        while True:
            try:
                payload = self.batches.recv(zmq.NOBLOCK)
            except zmq.Again:
                return False
            if payload == STOP:
                return True
            self.taken.append(payload)

    take_burst = WriterLoop._take_burst


def sockets(name):
    context = zmq.Context.instance()
    pull = context.socket(zmq.PULL)
    pull.bind(f"inproc://{name}")
    push = context.socket(zmq.PUSH)
    push.connect(f"inproc://{name}")
    return push, pull


def test_batches_waiting_are_all_taken_then_a_pause_ends_the_burst():
    push, pull = sockets("burst-all")
    try:
        for i in range(5):
            push.send(b"batch %d" % i)
        taker = Taker(pull)
        started = time.monotonic()
        assert taker.take_burst() is False
        waited = time.monotonic() - started
        assert taker.taken == [b"batch %d" % i for i in range(5)]
        assert waited >= writer_process.BURST_GAP * 0.9  # it looked for more before writing
    finally:
        push.close(linger=0)
        pull.close(linger=0)


def test_stop_ends_a_burst_at_once():
    push, pull = sockets("burst-stop")
    try:
        push.send(b"batch")
        push.send(STOP)
        taker = Taker(pull)
        assert taker.take_burst() is True
        assert taker.taken == [b"batch"]
    finally:
        push.close(linger=0)
        pull.close(linger=0)


def test_a_burst_that_never_pauses_is_written_after_burst_hold(monkeypatch):
    monkeypatch.setattr(writer_process, "BURST_HOLD", 0.2)
    push, pull = sockets("burst-hold")
    done = threading.Event()

    def flood():
        while not done.is_set():
            push.send(b"batch")
            time.sleep(0.002)

    flooder = threading.Thread(target=flood)
    flooder.start()
    try:
        taker = Taker(pull)
        pull.poll(5000)
        started = time.monotonic()
        assert taker.take_burst() is False
        took = time.monotonic() - started
        assert taker.taken  # it took some
        # Bounded by BURST_HOLD plus one poll, not by the flood (which goes on
        # for as long as this test waits); a generous margin for a loaded machine.
        assert took < 0.2 + 1.5
    finally:
        done.set()
        flooder.join()
        push.close(linger=0)
        pull.close(linger=0)
