"""topology.html in a real Chromium: colours, widths, a click through to a link's graphs.

Same browser set-up as test_site_browser (Debian's chromium, nothing leaves the
machine); screenshots land in test-artifacts/site/.
"""

import functools
import http.server
import threading
import time

import pytest
from linkdata import pipeline, topology_toml, write_pipeline
from sitedata import SITE_CONFIG, draw_png, site_config
from test_site_browser import _QuietHandler, browser, screenshot  # noqa: F401 - a fixture
from test_topology import build_from_memory

from affair.outputs import graph_paths
from affair.outputs.site import build_site
from affair.storage.rrd_store import RrdStore

pytestmark = pytest.mark.browser

RGB = {"red": "rgb(208, 34, 47)", "grey": "rgb(123, 131, 143)", "green": "rgb(35, 133, 74)"}


def serve(directory):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """Two pipelines: 10 telescopes (slow, lossy and dead links) and 100 (folded)."""
    root = tmp_path_factory.mktemp("topology-site")
    now = time.time()
    config = site_config(SITE_CONFIG + topology_toml(pipeline(10)))
    store = RrdStore(config, root / "small" / "data")
    write_pipeline(
        store,
        10,
        now,
        slow=("tel02/r0dl1", "tel02/dl1dl2"),
        lossy=("tel03/dl1dl2", "stereo01/stereo"),
        dead=("tel04/camera", "tel04/r0dl1"),
    )
    graphs = root / "small" / "site" / "graphs"
    for window in ("1h", "6h"):  # what the plotter draws for the slow link's source end
        path = graph_paths.node_graph_path(
            graphs, "tel02", "links", "r0dl1_out_tel02_dl1dl2", window
        )
        draw_png(path, f"r0dl1 -> dl1dl2 {window}", 600, 200, "tab:red")
    build_site(config, root / "small" / "data", graphs, root / "small" / "site", lambda: now + 1)
    build_from_memory(root / "large", 200, now)  # 603 daemons, 802 links, no RRDs
    server, thread, url = serve(root)
    yield url
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def branches(page):
    """{edge id: (stroke colour, stroke width)} as the browser computes them."""
    return page.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll("g.edge"), edge => {
             const path = edge.querySelector("path"), style = getComputedStyle(path);
             return [edge.id, [style.stroke, parseFloat(style.strokeWidth)]];
           }))"""
    )


def test_the_tree_shows_red_and_grey_branches_and_a_click_opens_the_links_graphs(browser, sites):  # noqa: F811
    page = browser.new_page(viewport={"width": 1600, "height": 1000}, color_scheme="light")
    page.goto(sites + "small/site/topology.html")
    found = branches(page)
    assert len(found) == len(pipeline(10))
    assert found["link-tel02_r0dl1__tel02_dl1dl2"][0] == RGB["red"]
    assert found["link-tel03_dl1dl2__stereo01_stereo"][0] == RGB["red"]
    assert found["link-tel04_camera__tel04_r0dl1"][0] == RGB["grey"]
    assert {colour for colour, _ in found.values()} == set(RGB.values())
    # the first four links carry 1, 10, 100 and 1000 msg/s: widths in that order
    widths = [
        found[f"link-{a.replace('/', '_')}__{b.replace('/', '_')}"][1] for a, b in pipeline(10)[:4]
    ]
    assert widths == sorted(widths) and widths[0] < widths[-1]
    screenshot(page, "topology.png")
    page.click("#link-tel02_r0dl1__tel02_dl1dl2 path", force=True)
    page.wait_for_url("**/link/tel02_r0dl1__tel02_dl1dl2.html")
    assert "latency p95 5 s > 2 s" in page.text_content(".why")
    image = page.locator("figure.graph img").first
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    assert image.evaluate("img => img.naturalWidth") == 600
    screenshot(page, "link.png")
    page.close()


def test_a_600_daemon_topology_loads_folded_and_unfolds_a_host(browser, sites):  # noqa: F811
    page = browser.new_page(viewport={"width": 1600, "height": 1000}, color_scheme="light")
    started = time.monotonic()
    page.goto(sites + "large/site/topology.html", wait_until="load")
    loaded = time.monotonic() - started
    assert page.locator("g.node").count() == 200 + 3  # a node per telescope, 2 stereo, recorder
    assert loaded < 10  # the benchmark records the figure; here only a bound
    screenshot(page, "topology-large.png")
    page.click("#host-tel002 polygon, #host-tel002 path", force=True)
    page.wait_for_url("**/topology/tel002.html")
    assert branches(page)["link-tel002_r0dl1__tel002_dl1dl2"][0] == RGB["red"]
    page.close()
