"""Each counter of hostile input, against a live recorder: N of its cause, exactly N counted.

One recorder takes every cause in turn (it is the expensive part); its
counters are read from ``metrics.json`` after a clean stop, so nothing is
still in flight.
"""

import json
import socket
import time

import pytest
import zmq
from affair.collectors import wire

from tests.conftest import BASE_CONFIG, wait_for

pytestmark = pytest.mark.integration

MESSAGE_LIMIT = 4096
CONFIG = BASE_CONFIG.replace(
    "step = 10",
    f"""step = 10
self_interval = 1
max_message_bytes = {MESSAGE_LIMIT}
max_samples_per_message = 20
max_hosts = 3""",
)


def metrics(data_dir):
    path = data_dir / "_state" / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {"early_disconnect": 0, "time": 0}


class Peer:
    """A raw DEALER: sends what it is told, and waits for the ACK of a marker."""

    def __init__(self, endpoint):
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.marker = 10**9

    def send(self, payload):
        self.socket.send(payload)

    def sync(self, ts):
        """One connection is read in order: the marker's ack means all before it was taken."""
        self.marker += 1
        self.send(wire.encode_data("peer", [(self.marker, ts, "host1", "marker", "", {"v": 1}, 1)]))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.socket.poll(200) and self.marker in wire.decode_ack(self.socket.recv())[0]:
                return
        raise AssertionError("the recorder did not ack the marker")

    def close(self):
        self.socket.close()


def test_every_hostile_cause_is_counted_exactly(recorder):
    process = recorder(CONFIG, extra_args=["--graphite", "0"])
    port = int(process.endpoint.rsplit(":", 1)[1])
    now = int(time.time()) // 10 * 10 - 100
    peer = Peer(process.endpoint)
    try:
        peer.sync(now)  # host1 and the marker series: 1 accepted

        # early_disconnect: a port probe, a health check, a collector exiting early
        for _ in range(20):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        wait_for(
            lambda: metrics(process.data_dir)["early_disconnect"] == 20,
            what="20 early disconnects counted",
        )

        # oversized: by bytes (under ZeroMQ's 4x ceiling) and by samples
        big = wire.encode_data("peer", [(1, now, "host1", "d", "", {"v": 1.0}, 1)])
        big += b"\0" * (MESSAGE_LIMIT + 1 - len(big))  # trailing bytes: the size decides first
        for _ in range(7):
            peer.send(big)
        many = wire.encode_data(
            "peer", [(i, now, "host1", "d", "", {"v": 1.0}, 1) for i in range(21)]
        )
        for _ in range(3):
            peer.send(many)
        # name: a sender name past the rule, from 129 characters to 100 kB
        for length in (129, 1000, 4000, 100_000):
            name = "x" * length
            payload = wire.encode_data(name, [(1, now, "host1", "d", "", {"v": 1.0}, 1)])
            if len(payload) <= MESSAGE_LIMIT:
                peer.send(payload)
        # sender_implausible: drops no sender could have made
        for _ in range(5):
            peer.send(wire.encode_data("liar", [], {"dropped": 10**18, "buffered": 0}))
        peer.send(wire.encode_data("honest", [], {"dropped": 3, "buffered": 2}))
        # host_cap: max_hosts 3, host1 is one; host2 and host3 fit, host4 and host5 do not
        for index, host in enumerate(("host2", "host3", "host4", "host5", "host4")):
            sample = (100 + index, now, host, "system", "", {"load1": 1.0}, 1)
            peer.send(wire.encode_data("peer", [sample]))
        peer.sync(now + 1)

        # Graphite on, no client: its own health samples are not "accepted"
        first = metrics(process.data_dir)["time"]
        wait_for(
            lambda: metrics(process.data_dir)["time"] >= first + 2,
            what="two more self-sample intervals",
        )
    finally:
        peer.close()
    assert process.terminate() == 0
    counts = metrics(process.data_dir)
    assert counts["early_disconnect"] == 20
    assert counts["rej_handshake"] == 0
    assert counts["rej_oversized"] == 7 + 3
    assert counts["rej_name"] == 3  # (the 100 kB one is not sent: over the message limit)
    assert counts["sender_implausible"] == 5
    assert (counts["sender_dropped"], counts["sender_buffered"]) == (3, 2)
    assert counts["rej_host_cap"] == 3
    assert (counts["refused_hosts"], counts["refused_host_names"]) == (2, ["host4", "host5"])
    # host1 (twice, the markers), host2, host3: peers' samples only
    assert counts["accepted"] == 4
    log = process.log()
    assert "CURVE" not in log and "handshake" not in log
    assert sorted(p.name for p in process.data_dir.iterdir() if not p.name.startswith("_")) == [
        "host1",
        "host2",
        "host3",
        "recorder",
    ]
