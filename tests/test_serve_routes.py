"""affair serve's URL -> graph mapping and freshness rule: pure functions, no files or sockets."""

import pytest
from sitedata import site_config

from affair.errors import RequestError
from affair.outputs.plot.plan import GraphJob
from affair.outputs.serve_routes import (
    GraphTarget,
    StaticTarget,
    check_query,
    graph_is_current,
    graphs_prefix,
    route,
    split_path,
)

CONFIG = site_config(
    """
[recorder]
step = 10

[datasets.system.variables]
cpu_user = { type = "GAUGE", unit = "%" }

[graphs.cpu_ldc]
dataset = "system"
hosts = ["ldc*"]
mode = "node"
windows = ["1h", "1d"]

[graphs.cpu_all]
dataset = "system"
mode = "overlay"

[plot]
node_windows = ["1h", "6h", "1d"]
"""
)
PREFIX = ("graphs",)


def resolve(raw):
    return route(split_path(raw), PREFIX, CONFIG)


def test_a_node_graph_url_maps_to_the_plotters_job_for_it():
    assert resolve("/graphs/node/ldc01/system.6h.png") == GraphTarget(
        GraphJob("node/ldc01/system.6h.png", "node", "6h", "system", "", ("ldc01",))
    )
    target = resolve("/graphs/node/ldc01/disks.var_log.1h.png")
    assert (target.job.dataset, target.job.instance, target.key) == (
        "disks",
        "var_log",
        "node/ldc01/disks.var_log.1h.png",
    )


def test_a_configured_node_graph_maps_only_for_its_hosts_and_windows():
    assert resolve("/graphs/cpu_ldc.node.ldc07.1d.png") == GraphTarget(
        GraphJob("cpu_ldc.node.ldc07.1d.png", "node", "1d", "system", "", ("ldc07",), "cpu_ldc")
    )
    # another host glob, another window, an unknown graph: sent as a file if one exists
    for raw in ("/graphs/cpu_ldc.node.gdc01.1d.png", "/graphs/cpu_ldc.node.ldc07.6h.png"):
        assert isinstance(resolve(raw), StaticTarget)
    assert resolve("/graphs/cpu_all.overlay.1h.png") == StaticTarget(
        "graphs", ("cpu_all.overlay.1h.png",)
    )


def test_names_that_map_to_no_host_dataset_or_window_are_not_found():
    for raw in (
        "/graphs/node/ldc01/system.1y.png",  # a window [plot] does not draw
        "/graphs/node/ldc01/system.9h.png",  # no such window
        "/graphs/node/ldc01/system.png",
        "/graphs/node/ldc01/a.b.c.1h.png",  # not a dataset[.instance]
        "/graphs/node/-bad/system.1h.png",  # not a host name
        "/graphs/node/ldc01/system.1h.png/x",
        "/graphs/node/ldc01",
        "/graphs/node/ldc01/",
        "/host/",
        "//etc/passwd",
        "/host/ldc01.rrd",  # not a type the server sends
        "/graphs",
    ):
        assert resolve(raw) is None, raw


def test_site_files_and_the_index():
    assert resolve("/") == StaticTarget("site", ("index.html",))
    assert resolve("/host/ldc01.html") == StaticTarget("site", ("host", "ldc01.html"))
    assert resolve("/style.css") == StaticTarget("site", ("style.css",))
    assert resolve("/host%20x.html") == StaticTarget("site", ("host x.html",))


def test_traversal_and_malformed_paths_are_refused_before_any_lookup():
    for raw in (
        "/../etc/passwd",
        "/graphs/../../etc/passwd",
        "/graphs/node/%2e%2e/system.1h.png",
        "/graphs/node/ldc01%2F..%2F..%2Fx/system.1h.png",  # an encoded slash joins nothing
        "/graphs/node/ldc01%5csystem.1h.png",
        "/host/%00.html",
        "/.hidden.png",
        "/graphs/node/ldc01/.system.1h.png.1234.tmp",  # a plot in progress
        "relative/path",
        "/%ff.html",  # not UTF-8
        "/" + "a" * 2000,
    ):
        with pytest.raises(RequestError):
            split_path(raw)


def test_only_the_pages_cache_buster_is_a_known_query():
    check_query("")
    check_query("v=1733123456789")
    check_query("v=0badc0de")
    for query in ("x=1", "v=1&x=2", "v=", "v=../", "from=-1h"):
        with pytest.raises(RequestError):
            check_query(query)


def test_the_graphs_url_is_where_the_pages_relative_links_land(tmp_path):
    site = tmp_path / "www" / "site"
    assert graphs_prefix(site, site / "graphs") == ("graphs",)
    assert graphs_prefix(site, tmp_path / "www" / "graphs") == ("graphs",)  # ../graphs, clamped
    assert graphs_prefix(site, tmp_path / "var" / "png") == ("var", "png")
    assert graphs_prefix(site, site) == ()


STEP = 10
HOUR = 3600


def test_a_graph_is_current_until_its_archive_has_a_row_it_lacks():
    # drawn with data up to 1005 (rows up to 1000), at wall time 1007
    args = {"step": STEP, "window_seconds": HOUR}
    assert graph_is_current(1005, 1007, newest_update=1005, now=1009, **args)
    assert graph_is_current(1005, 1007, newest_update=1009, now=1009, **args)  # row 1010 not done
    assert not graph_is_current(1005, 1007, newest_update=1010, now=1011, **args)  # row 1010
    # a sample from the future is not a row the graph can show yet
    assert graph_is_current(1005, 1007, newest_update=1100, now=1009, **args)
    assert not graph_is_current(None, None, newest_update=0, now=1009, **args)  # no PNG


def test_a_coarser_window_waits_for_its_own_archives_row():
    args = {"step": 240, "window_seconds": 86400}
    assert graph_is_current(1000, 1000, newest_update=1190, now=1190, **args)
    assert not graph_is_current(1000, 1000, newest_update=1201, now=1201, **args)  # row 1200


def test_a_silent_hosts_graph_is_redrawn_at_the_next_row_of_its_window():
    # no new data, yet the window moved on: its gap grows up to now (the plotter's rule)
    args = {"step": STEP, "window_seconds": HOUR}
    last_row_end = (1000 // STEP + 1) * STEP - 1  # still the row it was rendered in
    assert graph_is_current(500, 1000, newest_update=500, now=last_row_end, **args)
    assert not graph_is_current(500, 1000, newest_update=500, now=last_row_end + 1, **args)


def test_a_config_change_after_the_render_makes_it_out_of_date():
    args = {"step": STEP, "window_seconds": HOUR, "newest_update": 1000, "now": 1001}
    assert graph_is_current(1000, 1000, config_changed_at=999, **args)
    assert not graph_is_current(1000, 1000, config_changed_at=1000.5, **args)


def test_listen_addresses():
    from affair.outputs.serve import parse_listen

    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for text in ("8080", "127.0.0.1", "127.0.0.1:http", ":8080", "127.0.0.1:70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(text)
