"""Pages through ``affair serve`` in a real browser: graphs nobody drew yet all appear, a drag
zooms into a range, the custom-range form draws another, a 2x screen gets 2x graphs.

Debian's chromium, headless, driven by playwright, as in test_site_browser.py
(background networking off, every host name but localhost mapped to nowhere,
HOME and XDG dirs in a temp dir). The screenshot lands in test-artifacts/site/.
"""

import io
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import REPO, wait_for
from PIL import Image
from playwright.sync_api import sync_playwright
from servedata import SERVE_CONFIG, ServeProcess, make_station

pytestmark = [pytest.mark.browser, pytest.mark.integration]

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

IMAGES = """() => Array.from(document.querySelectorAll("figure.graph img"))
    .filter(img => !img.hidden)
    .map(img => ({src: img.getAttribute("src"), done: img.complete, width: img.naturalWidth}))"""


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
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, env=env
        )
        yield chromium
        chromium.close()


def loaded_images(page):
    """The visible graphs once each has finished loading: ``[(src, pixel width)]``."""
    images = wait_for(
        lambda: (found := page.evaluate(IMAGES)) and all(i["done"] for i in found) and found,
        timeout=60,
        what="the graphs to load",
    )
    return [(image["src"], image["width"]) for image in images]


def test_a_host_page_through_affair_serve_shows_every_graph_drawn_on_first_view(browser, tmp_path):
    station = make_station(tmp_path, {"ldc01": {"cpu": 20.0, "events": lambda ts: 50 * ts}})
    assert not list(station["graphs"].rglob("*.png"))  # no plot pass: nothing drawn yet
    server = ServeProcess(station, workers=2, queue=8)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, color_scheme="light")
        page.goto(server.url + "host/ldc01.html")
        for window in ("1h", "6h"):
            page.click(f'.tabs button[data-window="{window}"]')
            images = loaded_images(page)
            assert [src for src, _ in images] == [
                f"../graphs/node/ldc01/system.{window}.png",
                f"../graphs/node/ldc01/daq.{window}.png",
            ]
            assert all(width == 720 for _, width in images), images  # every image decoded
            if window == "6h":
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                shot = ARTIFACTS / "serve-host-6h.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
        counters = server.counters()
        assert (counters["graphs_drawn"], counters["render_failed"], counters["busy"]) == (4, 0, 0)
    finally:
        assert server.stop() == 0


VIEW_IMAGE = "document.getElementById('view-img')"
LOADED = f"{VIEW_IMAGE}.complete && {VIEW_IMAGE}.naturalWidth > 0"


def view_state(page):
    return page.evaluate(
        f"""() => {{
        const hash = new URLSearchParams(location.hash.slice(1));
        const src = new URL({VIEW_IMAGE}.currentSrc || {VIEW_IMAGE}.src);
        return {{
            page: location.pathname, graph: hash.get("g"),
            from: Number(hash.get("from")), to: Number(hash.get("to")),
            src: src.pathname, query: src.search, width: {VIEW_IMAGE}.naturalWidth,
        }};
    }}"""
    )


def drag_across(page, figure, start, end):
    """A mouse drag across ``figure``'s image from ``start`` to ``end`` (shares of its width)."""
    box = page.locator(figure + " img").bounding_box()
    y = box["y"] + box["height"] * 0.4
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end, y, steps=8)
    page.mouse.up()


def test_a_drag_on_a_graph_zooms_into_that_range_and_the_form_draws_another(browser, tmp_path):
    # Pages that do not reload themselves in the middle of the test (they do every 30 s).
    quiet = SERVE_CONFIG.replace("refresh = 30", "refresh = 3600")
    assert quiet != SERVE_CONFIG
    station = make_station(
        tmp_path,
        {"ldc01": {"cpu": 20.0, "steps": 120, "events": lambda ts: 50 * ts}},
        config_text=quiet,
    )
    server = ServeProcess(station, workers=2, queue=8)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, color_scheme="light")
        page.goto(server.url + "host/ldc01.html")
        loaded_images(page)
        first = "figure.graph:has(img[src*='system.1h.png'])"
        page.wait_for_selector("body[data-zoom=on]")  # the server said it zooms
        assert page.locator(first + ".zoomable").count() == 1
        assert page.get_attribute(first + " a.full", "href").endswith(
            "/view.html#g=graphs%2Fnode%2Fldc01%2Fsystem.1h.png"
        )
        # a drag over the middle of the last hour: the graph's page, zoomed into what it covered
        drag_across(page, first, 0.45, 0.75)
        page.wait_for_url("**/view.html#g=*from=*")
        page.wait_for_function(LOADED, timeout=60_000)
        zoom = view_state(page)
        assert (zoom["page"], zoom["graph"]) == ("/view.html", "graphs/node/ldc01/system.1h.png")
        assert zoom["query"] == f"?from={zoom['from']}&to={zoom['to']}"
        assert zoom["width"] == 720
        now = time.time()
        # 30 % of a 720 px image over a 644 px plot of 3600 s: about 1,200 s, in the last hour
        assert 1000 < zoom["to"] - zoom["from"] < 1500, zoom
        assert now - 3600 < zoom["from"] < zoom["to"] < now, zoom
        assert page.text_content("#view-title") == "ldc01 · system · 1h"
        assert page.is_visible("#range-reset") and page.is_hidden("#no-zoom")
        shot = ARTIFACTS / "serve-zoom.png"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        (ARTIFACTS / "serve-zoom-graph.png").write_bytes(server.get(zoom["src"] + zoom["query"])[2])
        # the form shows the range in local time; another range typed in is drawn
        wanted = page.evaluate(
            """() => {
            const local = (s) => { const d = new Date(s * 1000 - new Date(s * 1000).getTimezoneOffset() * 60000);
                                   return d.toISOString().slice(0, 16); };
            const to = Math.floor(Date.now() / 60000) * 60 - 120, from = to - 600;
            return {from, to, fromText: local(from), toText: local(to)};
        }"""
        )
        assert page.input_value("input[name=from]") != ""
        page.fill("input[name=from]", wanted["fromText"])
        page.fill("input[name=to]", wanted["toText"])
        page.click("#range-form button[type=submit]")
        page.wait_for_function(
            f"{VIEW_IMAGE}.src.includes('from={wanted['from']}&to={wanted['to']}') && {LOADED}",
            timeout=60_000,
        )
        typed = view_state(page)
        assert (typed["from"], typed["to"], typed["width"]) == (wanted["from"], wanted["to"], 720)
        # from after to: said on the page, nothing asked of the server
        page.fill("input[name=from]", wanted["toText"])
        page.fill("input[name=to]", wanted["fromText"])
        page.click("#range-form button[type=submit]")
        assert page.text_content("#range-error") == "from must be before to"
        # reset: the window again
        page.click("#range-reset")
        page.wait_for_function(f"!{VIEW_IMAGE}.src.includes('from=') && {LOADED}", timeout=60_000)
        assert view_state(page)["query"] == "" and page.is_hidden("#range-reset")
        # a range the server refuses: its reason on the page
        page.goto(server.url + "view.html#g=graphs%2Fnode%2Fldc01%2Fsystem.1h.png&from=100&to=130")
        page.wait_for_selector("#range-error:not([hidden])", timeout=60_000)
        assert page.text_content("#range-error") == (
            "the graph could not be drawn: the range is 30 s: it must be at least 60 s"
        )
        page.close()
        assert server.counters()["render_failed"] == 0
    finally:
        assert server.stop() == 0


def test_a_2x_screen_gets_the_2x_graphs_drawn_on_request(browser, tmp_path):
    station = make_station(tmp_path, {"ldc01": {"cpu": 20.0, "events": lambda ts: 50 * ts}})
    server = ServeProcess(station, workers=2, queue=8)
    try:
        context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, device_scale_factor=2
        )
        page = context.new_page()
        page.goto(server.url + "host/ldc01.html")
        sharp = """() => Array.from(document.querySelectorAll("figure.graph img"))
            .filter(img => !img.hidden)
            .map(img => ({src: img.currentSrc, done: img.complete, width: img.naturalWidth,
                          shown: img.getBoundingClientRect().width}))"""
        images = wait_for(
            lambda: (
                (found := page.evaluate(sharp))
                and all(i["done"] and "scale=2" in i["src"] for i in found)
                and found
            ),
            timeout=60,
            what="the 2x graphs to load",
        )
        # naturalWidth is in CSS pixels (density-corrected): the 2x PNG takes the 1x one's room
        assert [(i["width"], i["shown"]) for i in images] == [(720, 720), (720, 720)]
        for image in images:  # with twice the pixels
            body = server.get(urlsplit(image["src"]).path + "?" + urlsplit(image["src"]).query)[2]
            assert Image.open(io.BytesIO(body)).size[0] == 1440
        assert (station["graphs"] / "node" / "ldc01" / "system.1h@2x.png").is_file()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "serve-host-2x.png"))
        context.close()
    finally:
        assert server.stop() == 0
