"""A forward target that falls behind shows: yellow then red in `affair status` (the
recorder's own host) and on the index page; a forwarder that stopped reporting is grey."""

import json

import pytest

from affair.config import parse_config
from affair.outputs.forward_status import forward_rows
from affair.outputs.site import SiteBuilder
from affair.outputs.status import HostSnapshot, SeriesSnapshot, evaluate_host

NOW = 1_700_000_000
TARGET = {
    "name": "vm",
    "url": "http://127.0.0.1:8428/write",
    "lag_yellow": "5min",
    "lag_red": "30min",
}


def config(tmp_path):
    return parse_config({"recorder": {"data_dir": str(tmp_path)}, "forward": [TARGET]})


@pytest.mark.parametrize(("lag", "colour"), [(10.0, "green"), (600.0, "yellow"), (3600.0, "red")])
def test_the_recorders_host_turns_yellow_then_red_as_a_target_falls_behind(tmp_path, lag, colour):
    times = tuple(NOW - 10 * i for i in range(2, -1, -1))
    series = SeriesSnapshot("forward", "vm", NOW, 10, times, {"lag_seconds": (0.0, 5.0, lag)})
    cfg = config(tmp_path)  # the rule judges the recorder's own host, by its configured name
    status = evaluate_host(HostSnapshot(cfg.recorder.self_host, (series,)), cfg, NOW)
    assert status.colour == colour
    if colour != "green":
        assert status.summary(NOW).startswith("forwarding behind: forward.vm.lag_seconds")


def write_state(tmp_path, **state):
    (tmp_path / "_state").mkdir(exist_ok=True)
    (tmp_path / "_state" / "forward-vm.json").write_text(json.dumps(state))


def test_index_rows_colour_each_target_by_its_lag_and_say_why(tmp_path):
    cfg = config(tmp_path)
    assert forward_rows(cfg, tmp_path, NOW)[0]["colour"] == "grey"  # no state yet
    base = {"sent": 90, "rejected": 2, "failures": 3, "lag_samples": 5000, "time": NOW - 1}
    write_state(tmp_path, lag_seconds=700.0, last_error="forward target vm: refused", **base)
    row = forward_rows(cfg, tmp_path, NOW)[0]
    assert (row["colour"], row["lag_text"], row["lag_samples"]) == ("yellow", "11 min", 5000)
    assert row["why"] == "forward target vm: refused" and row["where"] == TARGET["url"]
    write_state(tmp_path, lag_seconds=1.0, last_error="", **{**base, "time": NOW - 3600})
    row = forward_rows(cfg, tmp_path, NOW)[0]
    assert row["colour"] == "grey" and "no report for 60 min" in row["why"]


def test_the_index_page_has_a_forwarding_table(tmp_path):
    cfg = config(tmp_path)
    write_state(tmp_path, sent=7, rejected=0, failures=0, lag_samples=3, lag_seconds=2.0, time=NOW)
    page = SiteBuilder(cfg, tmp_path, tmp_path, tmp_path / "site", clock=lambda: NOW).render_index(
        [], NOW
    )
    assert "<h2>Forwarding</h2>" in page
    assert (
        '<td class="h s-green">vm</td><td>influx http://127.0.0.1:8428/write</td><td>2 s</td><td>3</td><td>7</td>'
        in page
    )
    no_targets = parse_config({"recorder": {"data_dir": str(tmp_path)}})
    assert "Forwarding" not in SiteBuilder(
        no_targets, tmp_path, tmp_path, tmp_path / "s"
    ).render_index([], NOW)
