"""affair serve's URL -> graph mapping and freshness rule: pure functions, no files or sockets."""

import os

import pytest
from sitedata import site_config

from affair.errors import RequestError
from affair.outputs.plot.plan import GraphJob
from affair.outputs.serve_routes import (
    GraphQuery,
    GraphTarget,
    RangeLimits,
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


NOW = 1_700_006_400
LIMITS = RangeLimits.of(CONFIG, NOW)
HOUR_AGO = f"from={NOW - 3600}&to={NOW}"


def test_range_limits_follow_the_ladder_and_the_base_step():
    # the default ladder's longest archive: 366 days of 1 d rows
    limits = RangeLimits.of(CONFIG, NOW + 0.7)
    assert (limits.earliest, limits.latest) == (NOW - 366 * 86400, NOW + 86400)
    assert (limits.min_span, limits.max_span) == (60, 366 * 86400)


def test_the_pages_cache_buster_a_range_and_a_scale_are_the_known_queries():
    assert check_query("", LIMITS) == GraphQuery()
    assert check_query("v=1733123456789", LIMITS) == GraphQuery()
    assert check_query("v=0badc0de", LIMITS) == GraphQuery()
    assert check_query(HOUR_AGO, LIMITS) == GraphQuery(NOW - 3600, NOW)
    assert check_query(f"scale=2&{HOUR_AGO}&v=12", LIMITS) == GraphQuery(NOW - 3600, NOW, 2)
    assert check_query("v=12&scale=2", LIMITS) == GraphQuery(scale=2)
    assert check_query("scale=1", LIMITS).plain


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x=1", "unknown query parameter 'x': known are from, to, scale (and v)"),
        ("v=1&x=2", "unknown query parameter 'x'"),
        ("v=", "v must be a version in hex, got ''"),
        ("v=../", "v must be a version in hex, got '../'"),
        ("v", "v must be a version in hex"),
        ("from=-1h&to=0", "from must be whole seconds since 1970 (UTC), got '-1h'"),
        (f"from={NOW}.5&to={NOW + 60}", "from must be whole seconds since 1970 (UTC)"),
        (f"from=%31{NOW}&to=1", "from must be whole seconds"),  # no percent-encoding
        (f"from={NOW - 60}", "from and to come together: a range needs both"),
        (f"to={NOW}", "from and to come together"),
        (f"from=1&from=2&to={NOW}", "from is given twice"),
        ("scale=3", "scale must be 1 or 2, got '3'"),
        (f"from={NOW}&to={NOW}", f"from ({NOW}) must be before to ({NOW})"),
        (f"from={NOW}&to={NOW - 3600}", "must be before to"),
        (f"from={NOW - 59}&to={NOW}", "the range is 59 s: it must be at least 60 s"),
        (
            f"from={NOW - 400 * 86400}&to={NOW}",
            "the range is 400 d: at most 366 d (what the archives keep) can be drawn",
        ),
        (
            f"from={NOW - 367 * 86400}&to={NOW - 300 * 86400}",
            "from (2022-11-13T00:00:00Z) is older than anything the archives keep "
            "(from 2022-11-14T00:00:00Z on)",
        ),
        (
            f"from={NOW}&to={NOW + 86400 + 1}",
            "to (2023-11-16T00:00:01Z) is more than 24 h ahead of now",
        ),
        ("from=1&to=999999999999", "the range is"),
    ],
)
def test_a_bad_query_says_what_was_expected(query, message):
    with pytest.raises(RequestError) as raised:
        check_query(query, LIMITS)
    assert message in str(raised.value)


def test_a_range_or_scale_asks_a_per_node_graph_for_another_job_under_its_own_name():
    parts = split_path("/graphs/node/ldc01/system.1h.png")
    ranged = route(parts, PREFIX, CONFIG, GraphQuery(NOW - 600, NOW))
    assert ranged == GraphTarget(
        GraphJob(
            "_ranges/node~ldc01~system.1h.1700005800-1700006400.png",
            "node",
            "1h",
            "system",
            "",
            ("ldc01",),
            start=NOW - 600,
            end=NOW,
        )
    )
    assert ranged.job.ranged
    sharp = route(parts, PREFIX, CONFIG, GraphQuery(scale=2))
    assert (sharp.key, sharp.job.scale, sharp.job.ranged) == (
        "node/ldc01/system.1h@2x.png",
        2,
        False,
    )
    both = route(
        split_path("/graphs/cpu_ldc.node.ldc07.1d.png"), PREFIX, CONFIG, GraphQuery(1, 90000, 2)
    )
    assert both.key == "_ranges/cpu_ldc.node.ldc07.1d.1-90000@2x.png"
    assert (both.job.graph, both.job.start, both.job.end, both.job.scale) == (
        "cpu_ldc",
        1,
        90000,
        2,
    )
    # a plain query changes nothing
    assert route(parts, PREFIX, CONFIG, GraphQuery()) == resolve("/graphs/node/ldc01/system.1h.png")


def test_ranges_and_scales_are_refused_for_what_is_not_drawn_on_request():
    for raw in ("/graphs/cpu_all.overlay.1h.png", "/host/ldc01.html", "/style.css"):
        with pytest.raises(RequestError, match="from, to and scale are for per-node graphs only"):
            route(split_path(raw), PREFIX, CONFIG, GraphQuery(NOW - 600, NOW))
    # not found stays not found; the range folder is never sent as files
    assert (
        route(split_path("/graphs/node/ldc01/system.1y.png"), PREFIX, CONFIG, GraphQuery(scale=2))
        is None
    )
    assert resolve("/graphs/_ranges/node~ldc01~system.1h.1-2.png") is None


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


def test_a_range_is_final_once_its_data_reached_its_end():
    # a range whose last row ends at 2000, 10 s rows
    args = {"step": STEP, "window_seconds": HOUR, "range_end": 2000}
    # drawn at 2500 with data up to 2495: every row of it was written; nothing redraws it
    assert graph_is_current(2495, 2500, newest_update=9000, now=9000, **args)
    assert graph_is_current(2000, 2001, newest_update=9000, now=9000, **args)
    # drawn while its end was still to come: a new row redraws it, as a window's would
    assert graph_is_current(1995, 1996, newest_update=1999, now=1999, **args)
    assert not graph_is_current(1995, 1996, newest_update=2001, now=2001, **args)
    # a silent host: time passing alone does not move a range's edges
    assert graph_is_current(1500, 1996, newest_update=1500, now=5000, **args)
    assert not graph_is_current(None, None, newest_update=0, now=1009, **args)
    assert not graph_is_current(
        2495, 2500, newest_update=9000, now=9000, config_changed_at=2600, **args
    )


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


def test_the_range_sweep_keeps_the_ones_viewed_last_and_leaves_temp_files(tmp_path):
    from affair.outputs.serve import sweep_ranges

    for index in range(5):
        path = tmp_path / f"r{index}.png"
        path.write_bytes(b"png")
        # viewed at 100 + the index (atime), their data ending long before (mtime)
        os.utime(path, ns=((100 + index) * 10**9, 7 * 10**9))
    os.utime(tmp_path / "r0.png", ns=(200 * 10**9, 7 * 10**9))  # r0 viewed again, last
    (tmp_path / ".r9.png.1234.tmp").write_bytes(b"a render in progress")
    assert sweep_ranges(tmp_path, 3) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".r9.png.1234.tmp",
        "r0.png",
        "r3.png",
        "r4.png",
    ]
    assert sweep_ranges(tmp_path, 3) == 0
    assert sweep_ranges(tmp_path / "none", 3) == 0
