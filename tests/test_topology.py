"""The topology: links judged by [topology], the tree drawn by dot, its pages."""

import html
import json
import re
import time

import pytest

from affair.config import parse_config
from affair.errors import ConfigError
from affair.outputs.site import SiteBuilder, build_site
from affair.outputs.status import HostSnapshot, SeriesSnapshot, status_report
from affair.outputs.topology import gather
from affair.outputs.topology_draw import HEX, Drawing, branch_width, render_svgs, tree_dot
from affair.outputs.topology_pages import Hrefs, write_topology
from affair.storage.rrd_store import RrdStore
from tests.linkdata import (
    pipeline,
    pipeline_statuses,
    topology_toml,
    write_link,
    write_pipeline,
)
from tests.sitedata import SITE_CONFIG, site_config

NOW = 1_800_000_000
STEP = 10


def end_series(instance, rate=10.0, p95=0.01, last=NOW, rows=12, errors=0.0):
    times = tuple(last // STEP * STEP - STEP * i for i in range(rows - 1, -1, -1))
    columns = {
        "messages": (rate * STEP,) * rows,
        "errors": (errors,) * rows,
        "rate": (rate,) * rows,
        "lat_p50": (p95 / 2,) * rows,
        "lat_p95": (p95,) * rows,
        "lat_max": (p95 * 2,) * rows,
        "lat_mean": (p95 / 2,) * rows,
    }
    return SeriesSnapshot("links", instance, times[-1], STEP, times, columns)


def config_with(topology=""):
    return parse_config(
        {"recorder": {"step": STEP}, "topology": topology}
        if topology
        else {"recorder": {"step": STEP}}
    )


def by_name(topology):
    return {(link.source, link.target): link for link in topology.links}


def test_links_are_judged_by_latency_loss_errors_and_silence():
    snapshots = [
        HostSnapshot(
            "ldc01",
            (
                end_series("ldc_out_gdc01_gdc", rate=100),
                end_series("ldc_out_gdc02_gdc", rate=100),
                end_series("ldc_out_gdc03_gdc", rate=100, p95=0.8),
                end_series("ldc_out_gdc04_gdc", rate=100, last=NOW - 600),
                end_series("ldc_out_gdc05_gdc", rate=100, errors=50),
            ),
        ),
        HostSnapshot("gdc01", (end_series("gdc_in_ldc01_ldc", rate=100),)),
        HostSnapshot("gdc02", (end_series("gdc_in_ldc01_ldc", rate=80),)),  # 20 % lost
        HostSnapshot("gdc03", (end_series("gdc_in_ldc01_ldc", rate=100, p95=3.0),)),
        HostSnapshot("node07", (end_series("eth0"),)),  # not a link's name: ignored
    ]
    config = config_with({"expected": ["ldc01/ldc -> gdc01/gdc", "ldc01/ldc -> gdc09/gdc"]})
    links = by_name(gather(snapshots, config, NOW + 5))
    healthy = links[("ldc01/ldc", "gdc01/gdc")]
    assert (healthy.colour, healthy.reasons, healthy.loss) == ("green", [], 0.0)
    assert healthy.rate == 100 and healthy.expected and not healthy.new
    lossy = links[("ldc01/ldc", "gdc02/gdc")]
    assert lossy.colour == "red" and lossy.loss == pytest.approx(0.2)
    assert lossy.reasons[0].startswith("lost 20.0%")
    assert lossy.new and lossy.reasons[-1] == "new: not in [topology] expected"
    slow = links[("ldc01/ldc", "gdc03/gdc")]
    assert slow.colour == "red" and slow.reasons[0] == "latency p95 3 s > 2 s"
    assert slow.latency["p95"] == 3.0
    silent = links[("ldc01/ldc", "gdc04/gdc")]
    assert silent.colour == "grey" and silent.reasons[0] == "no sample for 10 min"
    failing = links[("ldc01/ldc", "gdc05/gdc")]
    assert failing.colour == "red" and failing.reasons[0].startswith("errors 5.00% of messages")
    dead = links[("ldc01/ldc", "gdc09/gdc")]
    assert (dead.colour, dead.reasons, dead.expected) == ("grey", ["never reported"], True)
    assert len(links) == 6


def test_a_yellow_latency_and_a_link_forgotten_after_its_time():
    snapshots = [
        HostSnapshot(
            "a", (end_series("x_out_b_y", p95=0.7), end_series("x_out_c_y", last=NOW - 99_999))
        ),
    ]
    links = by_name(gather(snapshots, config_with(), NOW))
    assert list(links) == [("a/x", "b/y")]
    assert links[("a/x", "b/y")].colour == "yellow"


def test_a_link_one_end_of_which_went_silent_is_red():
    snapshots = [
        HostSnapshot("a", (end_series("x_out_b_y"),)),
        HostSnapshot("b", (end_series("y_in_a_x", last=NOW - 300),)),
    ]
    link = gather(snapshots, config_with(), NOW).links[0]
    assert link.colour == "red"
    assert link.reasons[0] == "b/y has not reported this link for 5 min"


def test_roots_are_drawn_at_the_top():
    snapshots = [HostSnapshot("a", (end_series("x_out_b_y"), end_series("z_out_b_y")))]
    config = config_with({"roots": ["z", "c/w"]})
    topology = gather(snapshots, config, NOW)
    dot = tree_dot(topology, config.topology, Hrefs(0), False)
    assert '  { rank=min; "a/z" }' in dot.splitlines()


def test_widths_grow_by_decade_of_rate():
    widths = [branch_width(rate) for rate in (0, 1, 10, 100, 1000, 10_000)]
    assert widths == sorted(widths) and widths[0] == 1.0
    assert widths[-1] - widths[-2] == pytest.approx(1.5, abs=0.01)


@pytest.mark.parametrize(
    "topology, key",
    [
        ({"expected": ["a/b c/d"]}, "topology.expected[0]"),
        ({"expected": ["a/b -> c_x/d"]}, "topology.expected[0]"),
        ({"expected": ["a/b -> a/b"]}, "topology.expected[0]"),
        ({"latency_yellow": 2, "latency_red": 1}, "topology.latency_red"),
        ({"loss_tolerance": 2}, "topology.loss_tolerance"),
        ({"levels": "camera"}, "topology.levels"),
        ({"colour": "red"}, "topology.colour"),
        ({"roots": "camera"}, "topology.roots"),
    ],
)
def test_a_bad_topology_section_names_its_key(topology, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        parse_config({"topology": topology})


SLOW = ("tel02/r0dl1", "tel02/dl1dl2")
LOSSY = ("tel03/dl1dl2", "stereo01/stereo")
DEAD = ("tel04/camera", "tel04/r0dl1")


def build_pipeline_site(tmp_path, telescopes, fold_above=60):
    """The pipeline's site; telescope 2's r0dl1 is slow, 3's dl1dl2 lossy, 4's camera dead."""
    links = pipeline(telescopes)
    width = max(2, len(str(telescopes)))

    def renamed(link):
        return tuple(d.replace("tel0", "tel" + "0" * (width - 1)) for d in link)

    config = site_config(SITE_CONFIG + topology_toml(links) + f"fold_above = {fold_above}\n")
    store = RrdStore(config, tmp_path / "data")
    now = time.time()
    write_pipeline(
        store, telescopes, now, slow=renamed(SLOW), lossy=renamed(LOSSY), dead=renamed(DEAD)
    )
    # the clock of the data: however long writing took, nothing has gone stale meanwhile
    summary = build_site(
        config, tmp_path / "data", tmp_path / "graphs", tmp_path / "site", lambda: now + 1
    )
    return config, summary


def edge_colours(svg):
    """{edge id: (stroke colour, stroke width)} of the SVG's branches."""
    found = {}
    svg = html.unescape(svg)
    for match in re.finditer(r'<g id="(link-[^"]+)" class="edge[^"]*">(.*?)</g>', svg, re.S):
        path = re.search(r"<path [^>]*>", match.group(2)).group(0)
        stroke = re.search(r'stroke="([^"]+)"', path).group(1)
        width = re.search(r'stroke-width="([^"]+)"', path)
        found[match.group(1)] = (stroke, float(width.group(1)) if width else 1.0)
    return found


def test_the_topology_page_colours_each_branch_and_links_its_pages(tmp_path):
    _config, summary = build_pipeline_site(tmp_path, 10)
    site = tmp_path / "site"
    page = (site / "topology.html").read_text()
    edges = edge_colours(page)
    assert len(edges) == len(pipeline(10))  # unfolded at 32 daemons
    assert edges["link-tel02_r0dl1__tel02_dl1dl2"][0] == HEX["red"]
    assert edges["link-tel03_dl1dl2__stereo01_stereo"][0] == HEX["red"]
    assert edges["link-tel04_camera__tel04_r0dl1"][0] == HEX["grey"]
    assert edges["link-tel01_camera__tel01_r0dl1"][0] == HEX["green"]
    others = {k for k, v in edges.items() if v[0] != HEX["green"]}
    assert others == {
        "link-tel02_r0dl1__tel02_dl1dl2",
        "link-tel03_dl1dl2__stereo01_stereo",
        "link-tel04_camera__tel04_r0dl1",
    }
    # widths follow the rates (1, 10, 100, 1000 msg/s for the first four links)
    first = [
        edges[f"link-{a.replace('/', '_')}__{b.replace('/', '_')}"][1] for a, b in pipeline(10)[:4]
    ]
    assert first == sorted(first) and len(set(first)) == 4
    assert 'href="link/tel02_r0dl1__tel02_dl1dl2.html"' in page
    assert 'href="daemon/tel01_camera.html"' in page
    link_page = (site / "link" / "tel03_dl1dl2__stereo01_stereo.html").read_text()
    assert "lost 20.0%" in link_page
    assert (site / "daemon" / "stereo01_stereo.html").read_text().count("tel0") >= 10
    status = json.loads((site / "status.json").read_text())
    problems = {(p["source"], p["target"]): p["colour"] for p in status["links"]["problems"]}
    assert problems == {SLOW: "red", LOSSY: "red", DEAD: "grey"}
    host_page = (site / "host" / "tel02.html").read_text()
    assert '<a class="c-red" href="../daemon/tel02_r0dl1.html">tel02/r0dl1</a>' in host_page
    index = (site / "index.html").read_text()
    assert 'href="topology.html"' in index
    assert 'href="link/tel04_camera__tel04_r0dl1.html"' in index


def build_from_memory(out, telescopes, now):
    """The topology pages of a pipeline held in memory (no RRDs): ``(config, result)``."""
    config = site_config(SITE_CONFIG + topology_toml(pipeline(telescopes)))
    tel = "tel{:03d}".format
    statuses = pipeline_statuses(
        telescopes,
        now,
        slow=(f"{tel(2)}/r0dl1", f"{tel(2)}/dl1dl2"),
        lossy=(f"{tel(3)}/dl1dl2", "stereo01/stereo"),
        dead=(f"{tel(4)}/camera", f"{tel(4)}/r0dl1"),
    )
    builder = SiteBuilder(config, out / "data", out / "graphs", out / "site")
    return config, write_topology(builder, statuses, now, builder._common(now, "test"))


def test_a_600_daemon_pipeline_folds_by_host_and_each_host_unfolds_on_its_own_page(tmp_path):
    now = time.time()
    _config, result = build_from_memory(tmp_path, 200, now)
    assert len(result.topology.daemons) == 603 and len(result.topology.links) == 802
    site = tmp_path / "site"
    page = html.unescape((site / "topology.html").read_text())
    assert 'id="host-tel002"' in page and 'href="topology/tel002.html"' in page
    svg = page[page.index('<section class="tree">') : page.rindex("</svg>")]
    assert len(svg.encode()) < 1_000_000
    assert (
        len(re.findall(r'class="node ', svg)) == 200 + 3
    )  # a node per telescope, 2 stereo, recorder
    unfolded = (site / "topology" / "tel002.html").read_text()
    assert edge_colours(unfolded)["link-tel002_r0dl1__tel002_dl1dl2"][0] == HEX["red"]
    assert len(list((site / "link").iterdir())) == 802
    assert len(list((site / "daemon").iterdir())) == 603
    assert result.pages == 1 + 203 + 802 + 603  # the tree, a page per host, link and daemon


def test_each_row_of_the_tree_reads_in_name_order():
    """tel01, tel02, ... left to right, not where dot's crossing minimisation puts them."""
    now = time.time()
    links = pipeline(10)
    config = site_config(SITE_CONFIG + topology_toml(links))
    # as in the demo: every daemon also reports to the recorder, whose long
    # edges are what made dot reorder the rows
    daemons = sorted({d for link in links for d in link})
    to_recorder = [(daemon, "recorder/recorder") for daemon in daemons]
    statuses = pipeline_statuses(10, now, extra=to_recorder)
    topology = gather((s.snapshot for s in statuses), config, now)
    svg = render_svgs([Drawing("", tree_dot(topology, config.topology, Hrefs(0), False))])[""]
    lefts = {
        name: float(left)
        for name, left in re.findall(
            r'<g id="daemon&#45;([^"]+)" class="node[^"]*">\n<title>[^<]*</title>\n<g [^>]*><a [^>]*>\n<path [^>]* d="M([0-9.]+)',
            svg,
        )
    }
    for daemon in ("camera", "r0dl1", "dl1dl2"):
        row = [lefts[f"tel{i:02d}_{daemon}"] for i in range(1, 11)]
        assert row == sorted(row), daemon


def test_the_same_tree_is_drawn_the_same_way_whatever_its_colours(tmp_path):
    """A rebuild does not move nodes: colours and widths are not in what dot places by."""
    now = time.time()
    links = pipeline(4)
    config = site_config(SITE_CONFIG + topology_toml(links))
    calm = pipeline_statuses(4, now)
    upset = pipeline_statuses(4, now, slow=links[1], lossy=links[2], dead=links[5])
    positions = []
    for statuses in (calm, upset):
        topology = gather((s.snapshot for s in statuses), config, now)
        svg = render_svgs([Drawing("", tree_dot(topology, config.topology, Hrefs(0), False))])[""]
        nodes = re.findall(
            r'<g id="daemon&#45;([^"]+)" class="node[^"]*">\n<title>[^<]*</title>\n<g [^>]*><a [^>]*>\n<path [^>]* d="([^"]+)"',
            svg,
            re.S,
        )
        positions.append(dict(nodes))
    assert len(positions[0]) == 4 * 3 + 3
    assert positions[0] == positions[1]


def test_affair_status_prints_red_and_grey_links_and_exits_1_on_a_red_one(tmp_path):
    config = site_config(SITE_CONFIG + topology_toml([("a/x", "b/y"), ("a/x", "c/y")]))
    store = RrdStore(config, tmp_path / "data")
    now = time.time()
    write_link(store, "a/x", "b/y", now, rate=100, loss=0.5)
    # read 5 s after the newest row: the six rows of the loss window, whatever the time
    lines, code = status_report(config, tmp_path / "data", now=int(now) // 10 * 10 + 5)
    assert code == 1
    assert lines[-5:-1] == [
        "LINK       STATUS  WHY",
        "a/x → b/y  red     lost 50.0%: sent 6000, received 3000 in 60 s",
        "a/x → c/y  grey    never reported",
        "2 links: 1 red, 0 yellow, 1 grey, 0 green",
    ]
