"""Which graphs exist, which are due, which are a shard's; and the config that defines them."""

from pathlib import Path

import numpy as np
import pytest

from affair.config import parse_config
from affair.errors import ConfigError
from affair.outputs.graph_paths import graph_path, node_graph_path
from affair.outputs.plot.plan import (
    STAGGER_SECONDS,
    eager_jobs,
    in_shard,
    is_stale,
    parse_shard,
    period_offset,
    plan_jobs,
    refresh_period,
    select_hosts,
)

DATASETS = {
    "system": {
        "variables": {
            "cpu_user": {"unit": "%", "min": 0, "max": 100},
            "load1": {},
            "net_in": {"unit": "B/s", "min": 0},
        }
    }
}


def config_with(graphs=None, plot=None):
    raw = {"datasets": DATASETS, "graphs": graphs or {}}
    if plot is not None:
        raw["plot"] = plot
    return parse_config(raw)


class FakeStore:
    """Just the discovery half of RrdStore: hosts and their series."""

    def __init__(self, series):
        self._series = series
        self.data_dir = Path("/nonexistent")

    def hosts(self):
        return sorted(self._series)

    def series(self, host):
        return self._series[host]

    def path(self, host, dataset, instance=""):
        return self.data_dir / host / f"{dataset}.rrd"


# --- config ---


def test_a_graph_of_a_missing_dataset_is_a_config_error_at_load():
    with pytest.raises(ConfigError) as caught:
        config_with({"bad": {"dataset": "nosuch", "variables": ["x"]}})
    assert caught.value.key == "graphs.bad.dataset"
    assert "nosuch" in str(caught.value) and "system" in str(caught.value)


def test_a_graph_of_a_missing_variable_is_a_config_error_at_load():
    with pytest.raises(ConfigError) as caught:
        config_with({"bad": {"dataset": "system", "variables": ["cpu_user", "cpu_idle"]}})
    assert caught.value.key == "graphs.bad.variables"
    assert caught.value.got == "cpu_idle"


def test_an_overlay_takes_exactly_one_variable():
    with pytest.raises(ConfigError) as caught:
        config_with({"o": {"dataset": "system", "mode": "overlay"}})  # default: all three
    assert caught.value.key == "graphs.o.variables"
    assert "exactly one variable" in str(caught.value)


@pytest.mark.parametrize(
    ("plot", "key"),
    [
        ({"node_windows": ["1h", "2h"]}, "plot.node_windows"),
        ({"node_windows": []}, "plot.node_windows"),
        ({"workers": 0}, "plot.workers"),
        ({"refresh": {"1h": "soon"}}, "plot.refresh"),
        ({"refresh": {"5h": "1min"}}, "plot.refresh"),
        ({"widht": 700}, "plot.widht"),
        ({"eager": "some"}, "plot.eager"),
        ({"eager": ["1h", "2h"]}, "plot.eager"),
        ({"eager": "1h"}, "plot.eager"),  # a list of windows, or "all"
    ],
)
def test_plot_section_is_validated(plot, key):
    with pytest.raises(ConfigError) as caught:
        config_with(plot=plot)
    assert caught.value.key == key


def test_the_shipped_config_has_one_graph_of_each_mode():
    from affair.config import load_config

    config = load_config()
    modes = {graph.mode for graph in config.graphs.values()}
    assert modes == {"node", "aggregate", "overlay"}
    assert config.plot.out_dir == "graphs"
    assert config.plot.node_windows == ("1h", "6h", "1d", "1w", "1m", "3m", "1y")


# --- planning ---


def test_select_hosts_globs_lists_and_exclusions():
    hosts = ["gdc01", "gdc02", "ldc01", "ldc02", "ldc10"]
    assert select_hosts(["gdc*"], hosts) == ["gdc01", "gdc02"]
    assert select_hosts(["ldc0[12]", "gdc02"], hosts) == ["gdc02", "ldc01", "ldc02"]
    assert select_hosts(["*", "!ldc*"], hosts) == ["gdc01", "gdc02"]
    assert select_hosts(["nothing*"], hosts) == []
    # Only exclusions: every host but those (it used to select none).
    assert select_hosts(["!ldc*", "!gdc02"], hosts) == ["gdc01"]
    assert select_hosts([], hosts) == []


def test_a_graph_of_every_host_but_one():
    config = config_with(
        {
            "cpu": {
                "dataset": "system",
                "variables": ["cpu_user"],
                "mode": "overlay",
                "hosts": ["!ldc02"],
                "windows": ["1h"],
            },
        },
        plot={"node_windows": ["1h"]},
    )
    store = FakeStore({host: [("system", "")] for host in ("gdc01", "ldc01", "ldc02")})
    overlays = [job.hosts for job in plan_jobs(config, store) if job.mode == "overlay"]
    assert overlays == [("gdc01", "ldc01")]


def test_plan_names_every_graph_by_the_layout_contract():
    config = config_with(
        {
            "net": {"dataset": "system", "variables": ["net_in"], "mode": "aggregate"},
            "cpu": {
                "dataset": "system",
                "variables": ["cpu_user"],
                "mode": "overlay",
                "hosts": ["gdc*"],
                "windows": ["1h"],
            },
            "load": {
                "dataset": "system",
                "variables": ["load1"],
                "mode": "node",
                "hosts": ["ldc01"],
                "windows": ["1d"],
            },
        },
        plot={"node_windows": ["1h", "1w"]},
    )
    store = FakeStore(
        {
            "gdc01": [("system", "")],
            "ldc01": [("system", ""), ("disks", "var")],
            "affair": [("affair", "")],  # no system: in no system graph
        }
    )
    keys = {job.key for job in plan_jobs(config, store)}
    expected = {
        str(node_graph_path(Path(), host, dataset, instance, window))
        for host, dataset, instance in [
            ("gdc01", "system", ""),
            ("ldc01", "system", ""),
            ("ldc01", "disks", "var"),
            ("affair", "affair", ""),
        ]
        for window in ("1h", "1w")
    }
    expected |= {str(graph_path(Path(), "net", "aggregate", w)) for w in ("1h", "6h", "1d", "1w")}
    expected |= {"cpu.overlay.1h.png", "load.node.ldc01.1d.png"}
    assert keys == expected
    assert "node/ldc01/disks.var.1h.png" in keys
    jobs = {job.key: job for job in plan_jobs(config, store)}
    assert jobs["net.aggregate.1h.png"].hosts == ("gdc01", "ldc01")  # not affair: no system.rrd
    assert jobs["cpu.overlay.1h.png"].hosts == ("gdc01",)


def test_graph_path_of_a_node_graph_needs_a_host():
    assert str(graph_path(Path("g"), "load", "node", "1h", host="a.b")) == "g/load.node.a.b.1h.png"
    with pytest.raises(ValueError):
        graph_path(Path("g"), "load", "node", "1h")
    with pytest.raises(ValueError):
        graph_path(Path("g"), "net", "aggregate", "1h", host="x")


def test_shards_partition_the_graphs_without_overlap_or_gap():
    keys = [f"node/host{i:04d}/system.{w}.png" for i in range(500) for w in ("1h", "1d")]
    for count in (1, 2, 3, 7):
        owners = [[i for i in range(count) if in_shard(key, i, count)] for key in keys]
        assert all(len(owner) == 1 for owner in owners)  # exactly one shard each
        sizes = [sum(1 for owner in owners if owner == [i]) for i in range(count)]
        assert sum(sizes) == len(keys)
        assert min(sizes) > len(keys) / count * 0.8  # and roughly even


def test_parse_shard():
    assert parse_shard("0/1") == (0, 1)
    assert parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


# --- refresh policy ---


def test_refresh_period_is_the_archive_step_unless_configured():
    config = config_with()
    periods = {w: refresh_period(config, w) for w in ("1h", "6h", "1d", "1w", "1m", "3m", "1y")}
    assert periods == {
        "1h": 10,
        "6h": 60,
        "1d": 240,
        "1w": 1800,
        "1m": 7200,
        "3m": 21600,
        "1y": 86400,
    }
    slowed = config_with(plot={"refresh": {"1h": "1min"}})
    assert refresh_period(slowed, "1h") == 60 and refresh_period(slowed, "1d") == 240


def test_is_stale():
    day = 86400
    # never drawn, or the config changed since
    assert is_stale(None, 1000, 10, 0, 0, 3600)
    assert is_stale(990, 995, 10, 0, 992, 3600)
    # the same row as when drawn: nothing new to show, whatever the data did
    assert not is_stale(1001, 1009, 10, 1008, 0, 3600)
    # a new row and new data
    assert is_stale(1001, 1010, 10, 1008, 0, 3600)
    # the 1 y graph waits for a new day
    assert not is_stale(10 * day + 5, 10 * day + 80000, day, 10 * day + 79000, 0, 366 * day)
    assert is_stale(10 * day + 5, 11 * day + 1, day, 11 * day, 0, 366 * day)
    # silent data: redrawn at every new row all the same, so its gap grows up to now
    assert is_stale(1000, 1010, 10, 900, 0, 3600)
    assert not is_stale(1000, 1009, 10, 900, 0, 3600)


def test_a_period_starts_at_the_graphs_own_offset():
    # offset 100 in a 240 s period: due at 340, 580, ... not at 240, 480
    assert not is_stale(345, 570, 240, 560, 0, 86400, offset=100)
    assert is_stale(345, 580, 240, 560, 0, 86400, offset=100)
    assert not is_stale(245, 339, 240, 300, 0, 86400, offset=100)


def test_graphs_of_one_window_fall_due_spread_over_its_period():
    keys = [f"node/node{i:04d}/system.1d.png" for i in range(1000)]
    offsets = [period_offset(key, 240) for key in keys]
    assert all(0 <= offset < 240 for offset in offsets)
    assert offsets == [period_offset(key, 240) for key in keys]  # stable from pass to pass
    # a pass a minute finds about a quarter of them due, not all or none
    per_minute = np.bincount(np.array(offsets) // 60, minlength=4)
    assert len(per_minute) == 4 and all(200 <= count <= 300 for count in per_minute)
    # a long period spreads over STAGGER_SECONDS only: the 1 y graphs follow midnight
    assert max(period_offset(key, 86400) for key in keys) < STAGGER_SECONDS


# --- what a pass draws ahead of time ([plot] eager) ---


def test_eager_is_all_unless_set_and_reads_a_list_of_windows():
    assert config_with().plot.eager == "all"
    assert config_with(plot={"eager": ["1h"]}).plot.eager == ("1h",)
    assert config_with(plot={"eager": []}).plot.eager == ()


def test_eager_keeps_shared_graphs_its_windows_for_all_and_every_window_of_problem_hosts():
    config = config_with(
        graphs={
            "load": {"dataset": "system", "variables": ["load1"], "windows": ["1h", "1d"]},
            "net": {"dataset": "system", "variables": ["net_in"], "mode": "aggregate"},
        },
        plot={"node_windows": ["1h", "6h", "1d"]},
    )
    store = FakeStore({"ok1": [("system", "")], "ok2": [("system", "")], "bad": [("system", "")]})
    jobs = plan_jobs(config, store)
    assert eager_jobs(jobs, "all", set()) == jobs
    kept = {job.key for job in eager_jobs(jobs, ("1h",), {"bad"})}
    assert kept == {
        "node/ok1/system.1h.png",
        "node/ok2/system.1h.png",
        "node/bad/system.1h.png",
        "node/bad/system.6h.png",
        "node/bad/system.1d.png",
        "load.node.ok1.1h.png",
        "load.node.ok2.1h.png",
        "load.node.bad.1h.png",
        "load.node.bad.1d.png",
        "net.aggregate.1h.png",
        "net.aggregate.6h.png",
        "net.aggregate.1d.png",
        "net.aggregate.1w.png",
    }
    nothing_per_node = {job.key for job in eager_jobs(jobs, (), set())}
    assert nothing_per_node == {key for key in kept if key.startswith("net.")}


def test_problem_hosts_come_from_a_recent_status_json_else_from_the_rrds(tmp_path):
    import json

    from affair.outputs.plot.run import STATUS_FRESH_SECONDS, problem_hosts

    config = config_with()
    status = tmp_path / "status.json"
    hosts = {"a": {"colour": "green"}, "b": {"colour": "red"}, "c": {"colour": "grey"}}
    status.write_text(json.dumps({"built": 1000, "hosts": hosts}))
    assert problem_hosts(config, tmp_path / "data", 1000 + 60, status) == {"b", "c"}
    # too old, missing or garbled: the RRDs are read (none here)
    assert (
        problem_hosts(config, tmp_path / "data", 1000 + STATUS_FRESH_SECONDS + 1, status) == set()
    )
    assert problem_hosts(config, tmp_path / "data", 1000, tmp_path / "none.json") == set()
    status.write_text("{not json")
    assert problem_hosts(config, tmp_path / "data", 1000, status) == set()


def test_the_eager_flag_overrides_the_config():
    from affair.cli import _with_eager

    config = config_with(plot={"eager": ["1h"]})
    assert _with_eager(config, None) is config
    assert _with_eager(config, "all").plot.eager == "all"
    assert _with_eager(config, "1h, 6h").plot.eager == ("1h", "6h")
    with pytest.raises(SystemExit, match="--eager"):
        _with_eager(config, "1h,2h")
