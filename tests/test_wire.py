"""The wire format: round trips and envelope errors with their counter names."""

import msgpack
import pytest
from affair.collectors import wire

from affair.errors import WireError


def test_data_round_trip():
    samples = [(1, 1700000000.5, "ldc01", "system", "", {"cpu_user": 12.5, "load1": None}, 1)]
    sender, raw, status = wire.decode_report(wire.encode_data("ldc01", samples))
    assert sender == "ldc01"
    assert raw == [[1, 1700000000.5, "ldc01", "system", "", {"cpu_user": 12.5, "load1": None}, 1]]
    assert status is None


def test_ack_round_trip():
    acked, rejected = wire.decode_ack(wire.encode_ack([1, 2, 3], [(4, "name")]))
    assert acked == [1, 2, 3]
    assert rejected == [(4, "name")]


def test_a_sample_is_compact():
    payload = wire.encode_data(
        "n", [(1, 1.7e9, "ldc01", "system", "", {f"v{i}": 1.5 for i in range(10)}, 1)]
    )
    assert len(payload) <= 160  # 10 float64 values with their names, envelope included


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xc1garbage", "undecodable"),
        (b"", "undecodable"),
        (msgpack.packb([1, 1, "s", []])[:-1], "undecodable"),  # truncated
        (msgpack.packb({"version": 1}), "structure"),
        (msgpack.packb([2, 1, "s", []]), "version"),
        (msgpack.packb([1, 2, [], []]), "structure"),  # an ACK sent to the recorder
        (msgpack.packb([1, 1, 5, []]), "structure"),
        (msgpack.packb([1, 1, "s", {}]), "structure"),
        (b"\x81\x91\x01\x01", "undecodable"),  # a map keyed by a list
    ],
)
def test_bad_envelopes(payload, reason):
    with pytest.raises(WireError) as caught:
        wire.decode_report(payload)
    assert caught.value.reason == reason


def test_oversized():
    payload = wire.encode_data("s", [(1, 1.0, "h", "d", "", {"v": 1.0}, 1)] * 100)
    with pytest.raises(WireError) as caught:
        wire.decode_report(payload, max_bytes=100)
    assert caught.value.reason == "oversized"
