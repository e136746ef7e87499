"""Graphite clients cannot lock each other out: per-address limits, slow-loris, exact counts."""

import contextlib
import socket
import time

import pytest

from affair.config import parse_config
from affair.ingest.graphite_server import GraphiteListener
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def _listener(**graphite):
    config = parse_config(
        {
            "recorder": {"step": 1, "self_interval": 3600},
            "archive": {"ladder": ["1s:900"]},
            "graphite": {"listen": "127.0.0.1:0", "merge_seconds": 0, **graphite},
        }
    )
    return GraphiteListener(config.graphite, config).start()


def connect(port, source="127.0.0.1"):
    connection = socket.socket()
    connection.settimeout(10)
    connection.bind((source, 0))  # all of 127/8 is loopback on Linux: another client address
    connection.connect(("127.0.0.1", port))
    return connection


def closed_by_peer(connection, timeout=10):
    connection.settimeout(timeout)
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_idle_connections_from_one_address_do_not_refuse_another(caplog):
    # the defaults: 256 connections, 32 per client address
    listener = _listener(allow=["127.0.0.0/8"])
    port = listener.address[1]
    idle = []
    try:
        for _ in range(256):
            idle.append(connect(port))
        wait_for(
            lambda: listener.counts["connections"] + listener.counts["client_limit"] == 256,
            what="256 connections seen",
        )
        assert (listener.counts["connections"], listener.counts["client_limit"]) == (32, 224)
        assert listener.counts["refused"] == 0
        refusals = [r for r in caplog.records if "refused (client_limit)" in r.getMessage()]
        assert len(refusals) == 1  # 224 refusals, a line a minute
        with connect(port, "127.0.0.2") as other:
            other.sendall(f"other.cpu.percent-user 3 {int(time.time()) - 60}\n".encode())
            samples = []

            def arrived():
                samples.extend(listener.take())
                return samples

            wait_for(arrived, what="the other client's sample")
        assert [(s.host, s.values) for s in samples] == [("other", {"percent_user": 3.0})]
    finally:
        for connection in idle:
            connection.close()
        listener.stop()


def test_a_line_not_ended_in_line_timeout_closes_the_connection():
    listener = _listener(line_timeout=1)
    port = listener.address[1]
    try:
        with connect(port) as quiet, connect(port) as loris:
            loris.sendall(b"slow.cpu.percent-user")
            started = time.monotonic()
            for _ in range(3):  # trickling bytes does not earn more time
                time.sleep(0.3)
                with contextlib.suppress(OSError):
                    loris.sendall(b"x")
            assert closed_by_peer(loris)
            assert 0.9 < time.monotonic() - started < 5
            assert listener.counts["slow"] == 1
            # an idle connection holding no begun line is not slow: still open
            assert not closed_by_peer(quiet, timeout=0.5)
            quiet.sendall(f"quiet.cpu.percent-user 1 {int(time.time()) - 60}\n".encode())
            wait_for(lambda: listener.counts["lines"] == 1)
        assert listener.counts["slow"] == 1
    finally:
        listener.stop()


def test_each_over_long_line_is_counted():
    listener = _listener(max_line_bytes=100)
    try:
        with connect(listener.address[1]) as client:
            client.sendall(b"".join([b"a.b.c " + b"9" * 200 + b" 1\n"] * 50))
            client.sendall(f"ok.cpu.percent-user 1 {int(time.time()) - 60}\n".encode())
            wait_for(lambda: listener.counts["lines"] == 1, what="the good line")
        assert listener.counts["bad_too_long"] == 50
    finally:
        listener.stop()
