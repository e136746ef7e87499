"""A collector's fallback station: when it switches, and back (no sockets: a fake Sender)."""

from affair.collectors.failover import Failover
from affair.collectors.sender import SenderStats


class FakeSender:
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.stats = SenderStats()
        self.buffered = 0
        self.switches = []

    def switch_endpoint(self, endpoint):
        self.endpoint = endpoint
        self.switches.append(endpoint)


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def failover():
    clock = Clock()
    sender = FakeSender("tcp://home:1")
    return Failover(sender, "st1", "tcp://home:1", "tcp://spare:2", 30, 600, clock), sender, clock


def test_a_station_answering_keeps_its_collectors():
    f, sender, clock = failover()
    for _ in range(10):
        sender.buffered = 5
        sender.stats.acked += 5  # answered each time
        clock.now += 20
        f.check()
    assert sender.switches == []


def test_nothing_waiting_is_no_silence():
    f, sender, clock = failover()
    clock.now += 3600
    f.check()
    assert sender.switches == [] and f.silent_for() == 0


def test_silence_with_samples_waiting_moves_to_the_fallback_then_home_again():
    f, sender, clock = failover()
    sender.buffered = 7
    f.check()
    clock.now += 29
    f.check()
    assert sender.switches == []
    clock.now += 1
    f.check()
    assert sender.switches == ["tcp://spare:2"] and f.on_fallback
    sender.stats.acked += 7  # the fallback answers: stay there...
    clock.now += 300
    f.check()
    assert sender.switches == ["tcp://spare:2"]
    sender.stats.acked += 1
    clock.now += 300  # ...until home_retry: try home again
    f.check()
    assert sender.switches == ["tcp://spare:2", "tcp://home:1"]
    clock.now += 30  # home still silent: back to the fallback
    f.check()
    assert sender.switches == ["tcp://spare:2", "tcp://home:1", "tcp://spare:2"]


def test_a_silent_fallback_sends_the_collector_home():
    f, sender, clock = failover()
    sender.buffered = 1
    clock.now += 30
    f.check()
    clock.now += 30  # the fallback does not answer either
    f.check()
    assert sender.switches == ["tcp://spare:2", "tcp://home:1"]
