"""The generated site in a real browser: Debian's chromium, headless, driven by playwright.

The site is served from a local HTTP server on 127.0.0.1; chromium runs with
its background networking off and every host name but localhost mapped to
nowhere, with HOME and XDG dirs in a temp dir, so nothing leaves the machine.
Screenshots land in test-artifacts/site/ (look at them).
"""

import functools
import http.server
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO
from playwright.sync_api import sync_playwright
from sitedata import draw_node_graph, drive, site_config

from affair.outputs.site import SiteBuilder, build_site
from affair.outputs.status import HostSnapshot, HostStatus
from affair.storage.rrd_store import RrdStore

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
ARTIFACTS = REPO / "test-artifacts" / "site"
# The light theme's status colours (web_static/style.css).
RGB = {
    "green": "rgb(35, 133, 74)",
    "yellow": "rgb(240, 180, 0)",
    "red": "rgb(208, 34, 47)",
    "grey": "rgb(123, 131, 143)",
}
EXPECTED = {"ldc01": "green", "ldc02": "yellow", "ldc03": "red", "gdc01": "red", "gdc02": "grey"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Hosts driven to each colour through real RRDs, PNGs for ldc01, the site built once."""
    root = tmp_path_factory.mktemp("browser-site")
    config = site_config()
    store = RrdStore(config, root / "data")
    now = time.time()
    drive(store, "ldc01", now, cpu=20.0, events=lambda ts: 50 * ts)
    drive(store, "ldc02", now, cpu=85.0, events=lambda ts: 50 * ts)
    drive(store, "ldc03", now, cpu=20.0, events=lambda ts: 1000)  # events stuck: red
    drive(store, "gdc01", now, cpu=97.0)
    drive(store, "gdc02", now, cpu=10.0, silent_for=900)  # collector down: grey
    out = root / "site"
    graphs = out / "graphs"
    draw_node_graph(graphs, "ldc01", "system", "1h", 600, 200, "tab:blue")
    draw_node_graph(graphs, "ldc01", "system", "6h", 640, 220, "tab:orange")
    summary = build_site(config, root / "data", graphs, out)
    assert summary.counts == {"red": 2, "yellow": 1, "grey": 1, "green": 1}

    # A page rendered for a hostile host name (the recorder would have refused it).
    hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    builder = SiteBuilder(config, root / "data", graphs, out)
    status = HostStatus(hostile, "ldc", "red", False, int(now), (), HostSnapshot(hostile, ()))
    (out / "hostile.html").write_text(builder.render_index([status], now))

    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/", "out": out, "hostile": hostile}
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/bootstrap --test"
    home = tmp_path_factory.mktemp("chromium-home")
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "data"),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, env=env
        )
        yield chromium
        chromium.close()


def screenshot(page, name):
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.is_file() and path.stat().st_size > 10_000, f"no screenshot at {path}"
    return path


def host_colours(page):
    return page.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll("td.h"),
             cell => [cell.textContent, getComputedStyle(cell).backgroundColor]))"""
    )


def visible_hosts(page):
    return page.evaluate(
        """() => Array.from(document.querySelectorAll("tbody tr"))
             .filter(row => row.offsetParent !== null).map(row => row.cells[0].textContent)"""
    )


def test_index_colours_counts_filter_and_sort(browser, site):
    page = browser.new_page(viewport={"width": 1400, "height": 900}, color_scheme="light")
    page.goto(site["url"] + "index.html")
    assert host_colours(page) == {host: RGB[colour] for host, colour in EXPECTED.items()}
    counts = {colour: page.text_content(f'.count[data-colour="{colour}"] b') for colour in RGB}
    assert counts == {"green": "1", "yellow": "1", "red": "2", "grey": "1"}
    assert page.is_hidden("#stale-page")  # just built
    screenshot(page, "index.png")

    page.fill("#filter", "gdc*")
    assert visible_hosts(page) == ["gdc01", "gdc02"]
    assert page.is_hidden("#group-ldc")
    page.fill("#filter", "")
    page.click('.count[data-colour="red"]')
    assert visible_hosts(page) == ["ldc03", "gdc01"]
    page.click('.count[data-colour="red"]')
    assert len(visible_hosts(page)) == 5

    # sortable: CPU user ascending, then descending, in the ldc table
    header = page.locator('#group-ldc th[title="system.cpu_user"]')
    header.click()
    header.click()
    order = page.evaluate(
        """() => Array.from(document.querySelectorAll("#group-ldc tbody tr"), r => r.cells[0].textContent)"""
    )
    assert order[0] == "ldc02"  # 85 % first when descending
    page.close()


def test_window_tabs_switch_graphs_without_a_reload(browser, site):
    page = browser.new_page(viewport={"width": 1400, "height": 900}, color_scheme="light")
    page.goto(site["url"] + "host/ldc01.html")
    image = "document.querySelector('figure.graph img')"
    page.wait_for_function(f"{image}.complete && {image}.naturalWidth === 600")
    assert "/graphs/node/ldc01/system.1h.png?v=" in page.evaluate(f"{image}.src")
    page.evaluate("window.notReloaded = true")

    page.click('button[data-window="6h"]')
    page.wait_for_function(f"{image}.complete && {image}.naturalWidth === 640")
    assert "/graphs/node/ldc01/system.6h.png?v=" in page.evaluate(f"{image}.src")
    assert page.evaluate("window.notReloaded") is True  # switched in place
    assert page.get_attribute('button[data-window="6h"]', "aria-selected") == "true"
    assert page.get_attribute('button[data-window="1h"]', "aria-selected") == "false"
    assert page.url.endswith("#6h")
    screenshot(page, "host-ldc01-6h.png")

    # a window the plotter has not drawn: a placeholder says so
    page.click('button[data-window="1w"]')
    assert page.is_hidden("figure.graph img")
    assert page.is_visible("figure.graph .placeholder")
    assert page.text_content("figure.graph .placeholder .window") == "1w"

    # the chosen window survives a reload (the page refreshes itself)
    page.click('button[data-window="6h"]')
    page.reload()
    page.wait_for_function(f"{image}.complete && {image}.naturalWidth === 640")
    page.close()

    other = browser.new_page(viewport={"width": 1400, "height": 900}, color_scheme="dark")
    other.goto(site["url"] + "host/ldc03.html")
    assert other.text_content(".host-head .why") == "daq.events not increasing for 60 s"
    screenshot(other, "host-ldc03-dark.png")
    other.goto(site["url"] + "index.html")
    screenshot(other, "index-dark.png")
    other.close()


def test_the_site_works_from_a_file_url(browser, site):
    page = browser.new_page()
    page.goto((site["out"] / "host" / "ldc01.html").as_uri())
    image = "document.querySelector('figure.graph img')"
    page.wait_for_function(f"{image}.complete && {image}.naturalWidth > 0")
    page.goto((site["out"] / "index.html").as_uri())
    assert host_colours(page)["gdc02"] == RGB["grey"]
    page.close()


def test_a_hostile_host_name_is_inert_text(browser, site):
    page = browser.new_page()
    page.goto(site["url"] + "hostile.html")
    assert page.evaluate("window.pwned") is None
    assert page.text_content("td.h") == site["hostile"]
    assert page.evaluate("document.querySelectorAll('td.h img, td.h script').length") == 0
    page.close()


def test_without_affair_serve_the_zoom_stays_away_and_the_graph_page_says_why(browser, site):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(site["url"] + "host/ldc01.html")
    image = "document.querySelector('figure.graph img')"
    page.wait_for_function(f"{image}.complete && {image}.naturalWidth === 600")
    # the full-size link goes to the graph's page; no 2x, no crosshair, a drag does nothing
    link = page.get_attribute("figure.graph a.full", "href")
    assert link.endswith("/view.html#g=graphs%2Fnode%2Fldc01%2Fsystem.1h.png")
    page.wait_for_selector("body[data-zoom=off]")  # the server was asked: plain files, a 404
    assert page.evaluate(f"{image}.getAttribute('srcset')") is None
    assert page.locator("figure.graph.zoomable").count() == 0
    box = page.locator("figure.graph img").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + 60)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + 60, steps=5)
    page.mouse.up()
    assert "from=" not in page.url  # (a zoom is asked for as soon as the button is released)
    page.goto(link)
    page.wait_for_selector("#no-zoom:not([hidden])")
    assert page.is_hidden("#range-form")
    assert "drawn by affair serve" in page.text_content("#no-zoom")
    page.wait_for_function("document.getElementById('view-img').naturalWidth === 600")
    assert page.text_content("#view-title") == "ldc01 · system · 1h"
    screenshot(page, "view-without-serve.png")
