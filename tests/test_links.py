"""Links between daemons: names, the latency histogram, and link metrics end to end."""

import json
import math
import random
import subprocess
import sys
import threading

import pytest
from affair.collectors.client import Publisher
from affair.collectors.linkstats import RELATIVE_ERROR, LinkEnd, check_latency, summarise

from affair.config import parse_config
from affair.errors import InvalidName
from affair.ingest.graphite import map_path
from affair.ingest.selfmetrics import sender_link_instance
from affair.names import check_daemon, link_instance, parse_link_instance
from tests.conftest import REPO, free_endpoint, wait_for
from tests.test_client import journaled

LINK_CONFIG = """
[recorder]
step = 1
self_interval = 1

[archive]
ladder = ["1s:900"]
"""


def exact_quantile(values, fraction):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


# --- names ---


def test_a_daemon_is_host_slash_daemon_and_a_link_instance_parses_back():
    assert check_daemon("tel01/r0dl1") == ("tel01", "r0dl1")
    instance = link_instance("r0dl1", "out", "tel01", "dl1dl2")
    assert instance == "r0dl1_out_tel01_dl1dl2"
    assert parse_link_instance(instance) == ("r0dl1", "out", "tel01", "dl1dl2")
    assert parse_link_instance("eth0") is None
    assert parse_link_instance("a_sideways_b_c") is None
    for bad in ("stereo01", "a/b/c", "tel_01/x", "tel.01/x", "/x", "x/", 7, "tel01/../x"):
        with pytest.raises(InvalidName):
            check_daemon(bad)
    with pytest.raises(InvalidName, match="too long"):
        link_instance("d" * 20, "out", "h" * 20, "x")


# --- the histogram ---


def test_link_statistics_match_an_exact_computation():
    rng = random.Random(7)
    latencies = [rng.lognormvariate(-4, 2) for _ in range(5000)] + [0.0]
    values = summarise(latencies, interval=10, messages=5001, nbytes=123456, errors=3)
    assert values["messages"] == 5001 and values["bytes"] == 123456 and values["errors"] == 3
    assert values["rate"] == pytest.approx(500.1)
    assert values["lat_count"] == len(latencies)
    assert values["lat_mean"] == pytest.approx(sum(latencies) / len(latencies), rel=1e-12)
    assert values["lat_max"] == max(latencies)
    for name, fraction in (("lat_p50", 0.5), ("lat_p95", 0.95)):
        exact = exact_quantile(latencies, fraction)
        assert values[name] == pytest.approx(exact, rel=RELATIVE_ERROR)


def test_quantiles_of_one_latency_are_that_latency_and_an_idle_end_sends_zeros():
    assert summarise([0.25], 1)["lat_p95"] == 0.25
    assert summarise([0.25], 1)["lat_p50"] == 0.25
    idle = LinkEnd(threading.Lock())
    assert idle.in_use() is False
    values = idle.take(10)
    assert values["messages"] == 0 and values["rate"] == 0
    assert values["lat_mean"] is None and values["lat_p95"] is None


def test_a_taken_interval_starts_the_next_from_zero():
    end = LinkEnd(threading.Lock())
    end.count(100)
    end.observe(0.5)
    assert end.take(1)["lat_max"] == 0.5
    end.observe(0.1)
    values = end.take(1)
    assert values["lat_max"] == 0.1 and values["messages"] == 0 and values["lat_count"] == 1
    assert end.in_use() is True


@pytest.mark.parametrize("bad", [-0.001, float("nan"), float("inf"), "0.1", None, True])
def test_a_bad_latency_is_refused_in_the_callers_thread(bad):
    end = LinkEnd(threading.Lock())
    with pytest.raises((ValueError, TypeError)):
        end.observe(bad)
    with pytest.raises((ValueError, TypeError)):
        check_latency(bad)
    assert end.lat_count == 0 and end.in_use() is False


def test_bad_counts_are_refused():
    end = LinkEnd(threading.Lock())
    with pytest.raises(ValueError):
        end.count(-1)
    with pytest.raises(TypeError):
        end.count("12")
    with pytest.raises(ValueError):
        end.fail(-2)


# --- end to end: real publishing processes, a real recorder ---


def run_publisher(endpoint, host, daemon, peer, role, seed, count, interval):
    return subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests" / "link_publisher.py"),
            endpoint,
            host,
            daemon,
            peer,
            role,
            str(seed),
            str(count),
            str(interval),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


@pytest.mark.integration
def test_both_ends_of_a_link_are_recorded_with_exact_statistics(recorder):
    process = recorder(LINK_CONFIG)
    # An interval longer than the test: each publisher sends exactly one sample, on
    # close, holding every message, so the stored values can be computed independently.
    source = run_publisher(process.endpoint, "ldc01", "ldc", "gdc01/gdc", "source", 1, 2000, 3600)
    target = run_publisher(process.endpoint, "gdc01", "gdc", "ldc01/ldc", "target", 2, 1990, 3600)
    reports = {}
    for name, child in (("source", source), ("target", target)):
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        reports[name] = json.loads(out)
        assert reports[name]["acked"] is True
    ends = {
        "source": ("ldc01", "ldc_out_gdc01_gdc"),
        "target": ("gdc01", "gdc_in_ldc01_ldc"),
    }
    for role, (host, instance) in ends.items():
        rows = journaled(process.data_dir, host, "links", instance)
        assert len(rows) == 1, rows
        values = rows[0][1]
        sent = reports[role]
        latencies = sent["latencies"]
        assert values["messages"] == len(latencies)
        assert values["bytes"] == sent["bytes"]
        assert values["errors"] == sent["errors"]
        assert values["rate"] == pytest.approx(len(latencies) / 3600)
        assert values["lat_count"] == len(latencies)
        assert values["lat_mean"] == pytest.approx(sum(latencies) / len(latencies), rel=1e-12)
        assert values["lat_max"] == max(latencies)
        assert values["lat_p50"] == pytest.approx(
            exact_quantile(latencies, 0.5), rel=RELATIVE_ERROR
        )
        assert values["lat_p95"] == pytest.approx(
            exact_quantile(latencies, 0.95), rel=RELATIVE_ERROR
        )
    # the reverse ends were never used: no series for them
    assert journaled(process.data_dir, "ldc01", "links", "ldc_in_gdc01_gdc") == []
    # the recorder's own end of each sender's link to it, from the delivery latency
    wait_for(
        lambda: journaled(process.data_dir, "recorder", "links", "recorder_in_ldc01_ldc"),
        what="the recorder's link from ldc01/ldc",
    )
    own = journaled(process.data_dir, "recorder", "links", "recorder_in_ldc01_ldc")[0][1]
    assert own["messages"] >= 1 and own["lat_max"] >= own["lat_p95"] >= own["lat_p50"] > 0
    # and every end reaches its RRD, like any dataset
    wait_for(
        lambda: (process.data_dir / "gdc01" / "links.gdc_in_ldc01_ldc.rrd").exists(),
        what="the target end's RRD",
    )


def test_links_reach_the_graphite_listener_through_one_naming_rule():
    path = "links.tel01.r0dl1.out.tel01.dl1dl2.lat_p95"
    expected = ("tel01", "links", "r0dl1_out_tel01_dl1dl2", "lat_p95")
    assert map_path(parse_config({}).graphite.rules, path) == expected
    own_rules = {
        "graphite": {
            "rules": [{"pattern": r"x\.(?P<host>[^.]+)\.(?P<variable>.+)", "dataset": "d"}]
        }
    }
    rules = parse_config(own_rules).graphite.rules
    assert map_path(rules, path) == expected  # tried after the site's own rules too
    assert map_path(rules, "x.node1.load") == ("node1", "d", "", "load")
    assert parse_link_instance(map_path(rules, path)[2]) == ("r0dl1", "out", "tel01", "dl1dl2")


def test_timed_counts_a_message_and_its_latency_or_an_error(monkeypatch):
    publisher = Publisher("ldc", endpoint=free_endpoint(), host="ldc01", interval=3600)
    try:
        link = publisher.link("gdc01/gdc")
        clock = iter([10.0, 10.25, 11.0])
        monkeypatch.setattr("affair.collectors.client._perf_counter", lambda: next(clock))
        with link.timed(nbytes=100):
            pass
        with pytest.raises(RuntimeError), link.timed(nbytes=100):
            raise RuntimeError("send failed")
        values = link.out.take(1)
        assert (values["messages"], values["bytes"], values["errors"]) == (1, 100, 1)
        assert values["lat_count"] == 1 and values["lat_max"] == 0.25
        with pytest.raises(InvalidName, match="daemon"):
            publisher.link("stereo01")
        with pytest.raises(ValueError):
            link.latency(-1)
        assert link.inbound.in_use() is False
    finally:
        publisher.close(timeout=0)


def test_the_recorder_names_each_senders_link_to_it():
    assert sender_link_instance("node001") == "recorder_in_node001_collector"
    assert sender_link_instance("eb01.daq") == "recorder_in_eb01_daq"
    assert sender_link_instance("node1.cern.ch") is None  # a host with dots makes no link
    assert sender_link_instance("node1.cern.ch.daq") is None
    assert sender_link_instance("x" * 39) is None  # too long for an instance
