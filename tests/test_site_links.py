"""Every configured graph is linked from the pages it belongs to."""

import re

from sitedata import SITE_CONFIG, draw_png, drive, site_config

from affair.outputs import graph_paths as layout
from affair.outputs.site import build_site
from affair.storage.rrd_store import RrdStore

NOW = 1_700_000_000

LINKED = SITE_CONFIG.replace(
    "[site]",
    """
[graphs.load]
title = "Load, per node"
dataset = "system"
variables = ["load1"]
mode = "node"
hosts = ["ldc*"]
windows = ["1h", "6h"]

[graphs.gdc_cpu]
title = "CPU user, event builders"
dataset = "system"
variables = ["cpu_user"]
hosts = ["gdc*"]
mode = "overlay"

[site]""",
)


def test_host_pages_link_their_node_graphs_and_the_graphs_they_are_part_of(tmp_path):
    config = site_config(LINKED)
    store = RrdStore(config, tmp_path / "data")
    for host in ("ldc01", "gdc01"):
        drive(store, host, NOW, cpu=20.0)
    graphs = tmp_path / "graphs"
    drawn = layout.graph_path(graphs, "load", "node", "1h", host="ldc01")
    draw_png(drawn, "load ldc01", 300, 100, "tab:blue")
    out = tmp_path / "site"
    build_site(config, tmp_path / "data", graphs, out, clock=lambda: NOW + 5)

    ldc = (out / "host" / "ldc01.html").read_text()
    part_of = re.search(r'<nav class="member-of">(.*)</nav>', ldc).group(1)
    assert re.findall(r'href="([^"]+)">([^<]+)<', part_of) == [
        ("../graph/cpu_all.html", "CPU user, all nodes")
    ]
    assert "<h3>Load, per node</h3>" in ldc
    urls = re.findall(r'data-w(\w+)="\.\./\.\./graphs/(load\.node\.ldc01\.\w+\.png)\?v=\d+"', ldc)
    assert urls == [("1h", "load.node.ldc01.1h.png")]  # 6h not drawn yet: a placeholder tab

    gdc = (out / "host" / "gdc01.html").read_text()
    assert re.findall(r'<a href="\.\./graph/(\w+)\.html">', gdc) == ["cpu_all", "gdc_cpu"]
    assert "Load, per node" not in gdc  # not one of its hosts


def test_previous_and_next_follow_the_index_and_next_problem_skips_the_green(tmp_path):
    config = site_config()  # groups: ldc, then gdc; others after
    store = RrdStore(config, tmp_path / "data")
    for host, cpu in [("ldc2", 10.0), ("ldc10", 99.0), ("gdc1", 10.0), ("app1", 85.0)]:
        drive(store, host, NOW, cpu=cpu)
    out = tmp_path / "site"
    build_site(config, tmp_path / "data", tmp_path / "g", out, clock=lambda: NOW + 5)

    def step(host):
        page = (out / "host" / f"{host}.html").read_text()
        nav = re.search(r'<nav class="step">(.*)</nav>', page).group(1)
        prev = re.search(r'href="([\w.]+)\.html" rel="prev"', nav)
        following = re.search(r'href="([\w.]+)\.html" rel="next"', nav)
        problem = re.search(r'class="next-problem" href="([\w.]+)\.html"', nav)
        return tuple(m and m.group(1) for m in (prev, following, problem))

    # the index's order: ldc2, ldc10 (natural), gdc1, then app1 (group "other")
    assert step("ldc2") == (None, "ldc10", "ldc10")
    assert step("ldc10") == ("ldc2", "gdc1", "app1")
    assert step("gdc1") == ("ldc10", "app1", "app1")
    assert step("app1") == ("gdc1", None, "ldc10")  # wraps round


def test_next_problem_wraps_round_and_is_never_the_page_itself():
    from types import SimpleNamespace

    from affair.outputs.site import next_problem

    hosts = [SimpleNamespace(host=f"h{i}", colour=c) for i, c in enumerate("gRgYg")]
    problems = [1, 3]
    assert [next_problem(hosts, problems, i) and next_problem(hosts, problems, i).host
            for i in range(5)] == ["h1", "h3", "h3", "h1", "h1"]  # fmt: skip
    assert next_problem(hosts, [1], 1) is None  # the only problem: no link to itself
    assert next_problem(hosts, [], 0) is None
