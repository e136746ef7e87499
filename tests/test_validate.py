"""Sample validation: each refusal has its reason; NaN means unknown."""

import math

import pytest

from affair.config import parse_config
from affair.errors import Rejected
from affair.ingest.validate import SeriesCap, validate_sample

NOW = 1_800_000_000.0
CONFIG = parse_config({"datasets": {"system": {"variables": {"cpu_user": {}}}}})
STRICT = parse_config(
    {
        "recorder": {"accept_undeclared": False},
        "datasets": {"system": {"variables": {"cpu_user": {}}}},
    }
)


def raw(**changes):
    sample = {
        "seq": 7,
        "ts": NOW,
        "host": "ldc01",
        "dataset": "system",
        "instance": "",
        "values": {"cpu_user": 12.5},
        "attempt": 1,
    }
    sample.update(changes)
    return list(sample.values())


def test_good_sample():
    sample = validate_sample(raw(), CONFIG, NOW, sender="ldc01")
    assert (sample.seq, sample.ts, sample.host, sample.values, sample.sender) == (
        7,
        NOW,
        "ldc01",
        {"cpu_user": 12.5},
        "ldc01",
    )


def test_nan_is_unknown_and_ints_become_floats():
    sample = validate_sample(raw(values={"a": math.nan, "b": 3, "c": None}), CONFIG, NOW)
    assert sample.values == {"a": None, "b": 3.0, "c": None}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"host": "../../etc"}, "name"),
        ({"host": "<script>alert(1)</script>"}, "name"),
        ({"host": "ldc\x0001"}, "name"),
        ({"dataset": "sys/tem"}, "name"),
        ({"instance": ".."}, "name"),
        ({"values": {"bad-name": 1.0}}, "name"),
        ({"values": {"cpu_user": math.inf}}, "value"),
        ({"values": {"cpu_user": -math.inf}}, "value"),
        ({"values": {"cpu_user": "12"}}, "value"),
        ({"values": {"cpu_user": True}}, "value"),
        ({"values": {"cpu_user": [1]}}, "value"),
        ({"ts": "now"}, "value"),
        ({"ts": math.nan}, "value"),
        ({"ts": NOW + 301}, "future"),
        ({"ts": NOW - 8 * 86400}, "past"),
        ({"values": {}}, "structure"),
        ({"values": {f"v{i}": 1.0 for i in range(65)}}, "var_cap"),
        ({"attempt": "1"}, "structure"),
    ],
)
def test_rejections(changes, reason):
    with pytest.raises(Rejected) as caught:
        validate_sample(raw(**changes), CONFIG, NOW)
    assert caught.value.reason == reason
    assert caught.value.seq == 7


def test_structure_without_a_usable_seq():
    with pytest.raises(Rejected) as caught:
        validate_sample(["x"] * 7, CONFIG, NOW)
    assert (caught.value.reason, caught.value.seq) == ("structure", None)
    with pytest.raises(Rejected):
        validate_sample("not a list", CONFIG, NOW)


def test_undeclared_follows_the_switch():
    assert validate_sample(raw(dataset="daq", values={"events": 1.0}), CONFIG, NOW).dataset == "daq"
    for changes in ({"dataset": "daq"}, {"values": {"cpu_user": 1.0, "other": 2.0}}):
        with pytest.raises(Rejected) as caught:
            validate_sample(raw(**changes), STRICT, NOW)
        assert caught.value.reason == "undeclared"


def test_series_cap_counts_existing_files():
    existing = {"ldc01": [("system", ""), ("disks", "root")]}
    cap = SeriesCap(3, lambda host: existing.get(host, []))
    assert cap.admit("ldc01", "system", "")  # already on disk
    assert cap.admit("ldc01", "net", "eth0")  # the third
    assert not cap.admit("ldc01", "net", "eth1")  # the fourth is refused
    assert cap.admit("ldc01", "net", "eth0")  # known ones stay welcome
    assert cap.admit("ldc02", "net", "eth1")  # another host has its own cap
