"""A host page through ``affair serve`` in a real browser: graphs nobody drew yet all appear.

Debian's chromium, headless, driven by playwright, as in test_site_browser.py
(background networking off, every host name but localhost mapped to nowhere,
HOME and XDG dirs in a temp dir). The screenshot lands in test-artifacts/site/.
"""

import os
from pathlib import Path

import pytest
from conftest import REPO, wait_for
from playwright.sync_api import sync_playwright
from servedata import ServeProcess, make_station

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
