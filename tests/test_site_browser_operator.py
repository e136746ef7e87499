"""What an operator sees at 3 a.m., in a real Chromium (same setup as test_site_browser):
the red application, a silent host's gap growing to now in grey, a sort kept across a reload."""

import functools
import http.server
import threading
import time

import numpy as np
import pytest
from PIL import Image
from sitedata import SITE_CONFIG, grid, site_config, write_rows
from test_site_browser import _QuietHandler, browser, screenshot  # noqa: F401 - the fixture

from affair.outputs.plot.run import run_plot
from affair.outputs.site import build_site
from affair.storage.rrd_store import RrdStore

pytestmark = pytest.mark.browser

RED = "rgb(208, 34, 47)"
MUTED = "rgb(95, 103, 115)"  # --muted, light theme

CONFIG = (
    SITE_CONFIG.split("[status]")[0]
    + """
[datasets.eb]
description = "an event builder's own view"
application = true

[datasets.eb.variables]
buffer_pct = { type = "GAUGE", unit = "%", label = "buffer occupancy", min = 0, max = 100 }

[plot]
node_windows = ["1h"]

[status]
stale_steps = 6

[[status.rules]]
variable = "system.cpu_user"
yellow = 80
red = 95

[[status.rules]]
variable = "eb.buffer_pct"
yellow = 80
red = 95
for = "1min"
label = "event buffer filling"
"""
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("operator-site")
    config = site_config(CONFIG)
    store = RrdStore(config, root / "data")
    now = time.time()
    times = grid(now, 60)
    for host, cpu in [("ldc01", 30.0), ("ldc02", 60.0), ("ldc03", 45.0)]:
        write_rows(store, host, "system", [(ts, {"cpu_user": cpu}) for ts in times])
    write_rows(store, "vm", "system", [(ts, {"cpu_user": 5.0}) for ts in times])
    write_rows(store, "vm", "eb", [(ts, {"buffer_pct": 99.3}) for ts in times], "eb01")
    # the recorder's own host: long labels ("rejected (not increasing) per second")
    own = {f"rej_{reason}": 0.0 for reason in ("not_increasing", "host_not_bound", "undecodable")}
    write_rows(store, "recorder", "affair", [(ts, own) for ts in times])
    silent = grid(now, 60, end_offset=600)  # stopped ten minutes ago
    write_rows(store, "gdc08", "system", [(ts, {"cpu_user": 70.0}) for ts in silent])
    out = root / "site"
    graphs = out / "graphs"
    run_plot(config, root / "data", graphs, now=now)
    build_site(config, root / "data", graphs, out, clock=lambda: now)

    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {
        "url": f"http://127.0.0.1:{server.server_address[1]}/",
        "config": config,
        "root": root,
        "now": now,
    }
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def new_page(browser):  # noqa: F811 - the fixture's value
    return browser.new_page(viewport={"width": 1400, "height": 900}, color_scheme="light")


def test_the_red_application_is_linked_red_from_its_host_and_red_on_its_page(browser, world):  # noqa: F811
    page = new_page(browser)
    page.goto(world["url"] + "host/vm.html")
    link = page.locator(".apps a.app")
    assert link.text_content() == "eb.eb01 · red"
    assert link.evaluate("a => getComputedStyle(a).backgroundColor") == RED
    link.click()
    page.wait_for_url(lambda url: url.endswith("/app/vm%40eb.eb01.html"))
    head = page.locator(".host-head")
    assert head.evaluate("e => getComputedStyle(e).backgroundColor") == RED
    assert page.text_content(".host-head .why").startswith(
        "event buffer filling: eb.eb01.buffer_pct 99.3 % > 95 % for"
    )
    image = "document.querySelector('figure.graph img')"
    page.wait_for_function(f"{image} && {image}.complete && {image}.naturalWidth > 0")
    assert "/graphs/node/vm/eb.eb01.1h.png" in page.evaluate(f"{image}.src")
    screenshot(page, "app-vm-eb01.png")
    page.close()


def test_a_silent_hosts_values_are_grey_and_its_graph_gap_grows_to_now(browser, world):  # noqa: F811
    page = new_page(browser)
    page.goto(world["url"] + "index.html")
    cell = page.locator('#group-gdc tr.stale td[title^="as of"]').first
    assert cell.evaluate("c => getComputedStyle(c).color") == MUTED
    page.goto(world["url"] + "host/gdc08.html")
    assert page.text_content("table.latest caption small").startswith("as of ")
    # the banner's "no sample for" and the "ago" next to it count on together
    ago = page.text_content(".host-head .last i").removesuffix(" ago")
    assert page.text_content(".host-head .why") == f"no sample for {ago}"
    values = page.locator("table.latest.stale td").first
    assert values.evaluate("c => getComputedStyle(c).color") == MUTED

    # Redrawn two minutes later with no new row: the gap after the last line grows.
    config, root, now = world["config"], world["root"], world["now"]
    png = root / "site" / "graphs" / "node" / "gdc08" / "system.1h.png"
    before = _line_right_edge(png)
    run_plot(config, root / "data", root / "site" / "graphs", now=now + 120)
    after = _line_right_edge(png)
    assert after < before - 10  # the line ends further left: two more minutes of nothing
    build_site(config, root / "data", root / "site" / "graphs", root / "site", lambda: now + 120)
    page.reload()
    image = "document.querySelector('figure.graph img')"
    page.wait_for_function(f"{image}.complete && {image}.naturalWidth > 0")
    # built "two minutes later" than the browser's clock: the page's words follow the clock
    ago = page.text_content(".host-head .last i").removesuffix(" ago")
    assert page.text_content(".host-head .why") == f"no sample for {ago}"
    screenshot(page, "host-gdc08-silent.png")
    page.close()


def _line_right_edge(path):
    """The x of the rightmost line pixel (bluish: the first palette colour, antialiased)
    in the first panel's plot area, right of its axis labels."""
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)[40:180, 70:]
    bluish = (pixels[..., 2] - pixels[..., 0] > 50).any(axis=0)
    return 70 + int(np.flatnonzero(bluish).max())


def test_a_column_sort_survives_the_pages_reload(browser, world):  # noqa: F811
    page = new_page(browser)
    page.goto(world["url"] + "index.html")

    def order():
        return page.evaluate(
            """() => Array.from(document.querySelectorAll("#group-ldc tbody tr"),
                 r => r.cells[0].textContent)"""
        )

    assert order() == ["ldc01", "ldc02", "ldc03"]
    header = page.locator('#group-ldc th[title="system.cpu_user"]')
    header.click()
    header.click()  # descending
    assert order() == ["ldc02", "ldc03", "ldc01"]
    page.reload()  # what the 30 s refresh does
    page.wait_for_function("document.querySelector('#group-ldc th[aria-sort]') !== null")
    assert order() == ["ldc02", "ldc03", "ldc01"]
    assert header.get_attribute("aria-sort") == "descending"
    page.close()


def test_no_page_overflows_sideways(browser, world):  # noqa: F811
    for width in (1400, 1000, 600):
        page = browser.new_page(viewport={"width": width, "height": 900})
        for path in (
            "index.html",
            "host/vm.html",
            "app/vm@eb.eb01.html",
            "host/gdc08.html",
            "host/recorder.html",
        ):
            page.goto(world["url"] + path)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} at {width} px overflows by {overflow} px"
        page.close()


def test_graphs_show_at_their_drawn_size_and_take_two_columns_on_a_wide_screen(browser, world):  # noqa: F811
    page = browser.new_page(viewport={"width": 1920, "height": 1000}, color_scheme="light")
    page.goto(world["url"] + "host/gdc08.html")
    image = "document.querySelector('figure.graph img')"
    page.wait_for_function(f"{image}.complete && {image}.naturalWidth > 0")
    natural, shown = page.evaluate(f"[{image}.naturalWidth, {image}.getBoundingClientRect().width]")
    assert shown == natural == world["config"].plot.width  # not stretched: sharp
    columns = page.evaluate(
        "getComputedStyle(document.querySelector('.graph-grid')).gridTemplateColumns.split(' ').length"
    )
    assert columns == 2
    screenshot(page, "host-gdc08-wide.png")
    page.click('button[data-window="6h"]')  # not drawn: the link follows the tab anyway
    assert page.get_attribute("figure.graph a.full", "href") == ""
    page.click('button[data-window="1h"]')
    page.click("figure.graph a.full")  # a graph opens on its own page, full size
    page.wait_for_url(
        lambda url: url.endswith("/view.html#g=graphs%2Fnode%2Fgdc08%2Fsystem.1h.png")
    )
    view = "document.getElementById('view-img')"
    page.wait_for_function(
        f"{view}.complete && {view}.naturalWidth === {world['config'].plot.width}"
    )
    narrow = browser.new_page(viewport={"width": 600, "height": 900}, color_scheme="light")
    narrow.goto(world["url"] + "host/gdc08.html")
    narrow.wait_for_function(f"{image}.complete && {image}.naturalWidth > 0")
    assert narrow.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert narrow.evaluate(f"{image}.getBoundingClientRect().width") < 600
    page.close()
    narrow.close()
