"""``affair serve`` as a real process on loopback: pages, graphs drawn on request, the fences."""

import html
import os
import re
import signal
import threading
import time
from urllib.parse import urljoin, urlsplit

import psutil
import pytest
from conftest import wait_for
from servedata import ServeProcess, make_station
from sitedata import write_rows

from affair.outputs.graph_paths import node_graph_path

pytestmark = pytest.mark.integration

GRAPH_COUNTERS = ("graphs_drawn", "graphs_joined", "graphs_current", "graphs_stale_served", "busy")


def changed(before, after, keys=GRAPH_COUNTERS + ("render_failed", "not_found", "bad_request")):
    return {key: after[key] - before[key] for key in keys if after[key] != before[key]}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    station = make_station(
        root,
        {
            "ldc01": {"cpu": 20.0, "events": lambda ts: 50 * ts},
            "ldc02": {"cpu": 30.0, "silent_for": 300},  # rows end 5 min ago: room for a new one
            "gdc01": {"cpu": 97.0},
        },
    )
    (root / "secret.txt").write_text("outside the served directories\n")
    (station["site"] / "escape.html").symlink_to(root / "secret.txt")
    # A file librrd cannot read: created after the site pass, as a disk error would.
    (station["data"] / "bad01").mkdir()
    (station["data"] / "bad01" / "system.rrd").write_bytes(b"not an rrd" * 100)
    server = ServeProcess(station, workers=1, queue=4)
    yield server
    assert server.stop() == 0
    assert "Traceback" not in server.log()


def page_graph_paths(page_html, page_path):
    """Every graph URL path a page links (each window's), without the cache buster."""
    urls = re.findall(r'data-w\w+="([^"]+\.png[^"]*)"', page_html)
    return sorted({urlsplit(urljoin(page_path, html.unescape(url))).path for url in urls})


def test_a_host_pages_graphs_are_drawn_on_first_view_and_sent_from_disk_after(served):
    status, headers, page = served.get("/host/ldc01.html")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    graphs = page_graph_paths(page.decode(), "/host/ldc01.html")
    # eager = ["1h"]: the page links every window's PNG by the plotter's name, drawn or not
    assert graphs == [
        "/graphs/node/ldc01/daq.1h.png",
        "/graphs/node/ldc01/daq.6h.png",
        "/graphs/node/ldc01/system.1h.png",
        "/graphs/node/ldc01/system.6h.png",
    ]
    before = served.counters()
    first = {}
    for path in graphs:
        status, headers, body = served.get(path)
        assert (status, headers["Content-Type"]) == (200, "image/png")
        assert body.startswith(b"\x89PNG\r\n\x1a\n")
        first[path] = body
        on_disk = served.station["graphs"] / path.removeprefix("/graphs/")
        assert on_disk.read_bytes() == body  # cached under the plotter's name
    middle = served.counters()
    assert changed(before, middle) == {"graphs_drawn": 4}
    for path in graphs:
        assert served.get(path + "?v=123")[2] == first[path]
    assert changed(middle, served.counters()) == {"graphs_current": 4}


def test_a_new_row_makes_the_graph_out_of_date_and_the_next_request_redraws_it(served):
    path = "/graphs/node/ldc02/system.1h.png"
    png = served.station["graphs"] / "node" / "ldc02" / "system.1h.png"
    before = served.counters()
    assert served.get(path)[0] == 200
    drawn_at = png.stat().st_mtime
    assert served.get(path)[0] == 200
    assert changed(before, served.counters()) == {"graphs_drawn": 1, "graphs_current": 1}

    # the 1 h graph is drawn from the 1 min archive: a row 2 min on is one it lacks
    store = served.station["store"]
    new_row = int(drawn_at) // 60 * 60 + 120
    assert new_row < time.time()
    write_rows(store, "ldc02", "system", [(new_row, {"cpu_user": 90.0, "load1": 2.0})])
    middle = served.counters()
    assert served.get(path)[0] == 200
    assert changed(middle, served.counters()) == {"graphs_drawn": 1}
    assert png.stat().st_mtime == new_row  # stamped with where its data end


def test_twenty_concurrent_requests_for_one_graph_render_it_once(served):
    path = "/graphs/node/gdc01/system.6h.png"
    before = served.counters()
    start = threading.Barrier(20)
    answers = [None] * 20

    def fetch(index):
        start.wait()
        answers[index] = served.get(path)

    threads = [threading.Thread(target=fetch, args=(index,)) for index in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert {status for status, _, _ in answers} == {200}
    assert len({body for _, _, body in answers}) == 1
    counts = changed(before, served.counters())
    assert counts["graphs_drawn"] == 1
    assert counts.get("graphs_joined", 0) + counts.get("graphs_current", 0) == 19


def test_traversal_attempts_and_unknown_names_are_refused_and_touch_nothing(served):
    graphs = served.station["graphs"]
    listing = sorted(str(p.relative_to(graphs)) for p in graphs.rglob("*"))
    hosts = sorted(p.name for p in served.station["data"].iterdir())
    before = served.counters()
    refused = {
        "/../secret.txt": 400,
        "/graphs/../../secret.txt": 400,
        "/graphs/node/..%2F..%2F..%2Fsecret.txt/system.1h.png": 400,
        "/graphs/node/%2e%2e/system.1h.png": 400,
        "/graphs%2fnode%2fldc01%2fsystem.1h.png": 400,
        "/%2Fetc%2Fpasswd": 400,
        "//etc/passwd": 404,
        "/etc/passwd": 404,
        "/escape.html": 404,  # a symlink out of the site
        "/graphs/node/nohost/system.1h.png": 404,  # a host that does not exist
        "/graphs/node/ldc01/nodataset.1h.png": 404,
        "/graphs/node/ldc01/system.1y.png": 404,  # a window [plot] does not draw
        "/graphs/node/ldc01/system.1h.png.tmp": 404,
        "/host/": 404,
        "/host/ldc01.html?x=1": 400,  # a query the server does not know
        "/host/ldc01.html?v=1;rm": 400,
        "http://example.com/index.html": 400,
    }
    for raw, expected in refused.items():
        status, _, body = served.get(raw)
        assert (raw, status) == (raw, expected)
        assert b"outside" not in body and b"root:" not in body
    assert served.get("/index.html", method="POST")[0] == 405
    counts = changed(before, served.counters())
    assert not {key for key in counts if key in GRAPH_COUNTERS}  # nothing drawn
    assert counts == {"bad_request": 9, "not_found": 8}
    assert sorted(str(p.relative_to(graphs)) for p in graphs.rglob("*")) == listing
    assert sorted(p.name for p in served.station["data"].iterdir()) == hosts


def test_a_graph_that_fails_to_draw_is_a_500_with_one_line_of_reason(served):
    before = served.counters()
    status, _, body = served.get("/graphs/node/bad01/system.1h.png")
    assert status == 500 and b"could not be drawn" in body and b"bad01" not in body
    assert changed(before, served.counters()) == {"render_failed": 1}
    lines = [line for line in served.log().splitlines() if "node/bad01/system.1h.png" in line]
    assert len(lines) == 1 and "WARNING" in lines[0]
    # and it keeps serving, graphs included
    assert served.get("/")[0] == 200
    assert served.get("/graphs/node/ldc01/system.1h.png")[0] == 200


def test_pages_and_status_json_are_sent_as_they_are_on_disk(served):
    site = served.station["site"]
    for raw, name, kind in (
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/status.json", "status.json", "application/json"),
        ("/style.css?v=0badc0de", "style.css", "text/css; charset=utf-8"),
    ):
        status, headers, body = served.get(raw)
        assert (status, headers["Content-Type"], body) == (200, kind, (site / name).read_bytes())
    status, headers, body = served.get("/status.json", method="HEAD")
    assert (status, body) == (200, b"")


def test_a_reloading_page_gets_304_for_a_graph_not_redrawn_since(served):
    path = "/graphs/node/gdc01/system.1h.png"
    status, headers, body = served.get(path)
    assert status == 200 and body
    before = served.counters()
    since = {"If-Modified-Since": headers["Last-Modified"]}
    assert served.get(path + "?v=1", headers=since)[:3:2] == (304, b"")
    assert (
        served.get(path, headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})[0] == 200
    )
    after = served.counters()
    assert changed(before, after) == {"graphs_current": 2}
    assert after["not_modified"] - before["not_modified"] == 1


def worker_processes(server):
    """The render pool's processes (spawned: their command line runs multiprocessing's spawn_main)."""
    children = psutil.Process(server.process.pid).children(recursive=True)
    return [
        child
        for child in children
        if "spawn_main" in " ".join(child.cmdline())
        and "resource_tracker" not in " ".join(child.cmdline())
    ]


def test_a_full_render_queue_answers_the_stale_png_or_503(tmp_path):
    station = make_station(tmp_path, {host: {"cpu": 10.0} for host in ("ldc01", "ldc02", "ldc03")})
    stale = node_graph_path(station["graphs"], "ldc03", "system", "", "6h")
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"\x89PNG an old graph")
    os.utime(stale, (1000, 1000))  # long before its newest row
    server = ServeProcess(station, workers=1, queue=1)
    try:
        workers = wait_for(lambda: worker_processes(server), what="the render worker")
        for worker in workers:
            worker.send_signal(signal.SIGSTOP)  # a render that takes as long as we like
        waiting = {}
        first = threading.Thread(
            target=lambda: waiting.setdefault(
                "answer", server.get("/graphs/node/ldc01/system.6h.png")
            )
        )
        first.start()
        try:
            wait_for(lambda: server.counters()["renders_in_flight"] == 1, what="a render queued")
            status, headers, _ = server.get("/graphs/node/ldc02/system.6h.png")
            assert (status, headers["Retry-After"]) == (503, "5")
            status, _, body = server.get("/graphs/node/ldc03/system.6h.png")
            assert (status, body) == (200, b"\x89PNG an old graph")
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGCONT)
            first.join(timeout=120)
        assert waiting["answer"][0] == 200
        counters = server.counters()
        assert (counters["busy"], counters["graphs_stale_served"], counters["graphs_drawn"]) == (
            1,
            1,
            1,
        )
        # once the queue drains, the stale one is drawn on its next request
        assert server.get("/graphs/node/ldc03/system.6h.png")[2].startswith(b"\x89PNG\r\n")
    finally:
        assert server.stop() == 0


def test_a_render_worker_that_dies_costs_its_request_a_500_and_the_next_one_is_drawn(tmp_path):
    station = make_station(tmp_path, {"ldc01": {"cpu": 10.0}})
    server = ServeProcess(station, workers=1, queue=2)
    try:
        workers = wait_for(lambda: worker_processes(server), what="the render worker")
        for worker in workers:
            worker.send_signal(signal.SIGSTOP)
        answer = {}
        first = threading.Thread(
            target=lambda: answer.setdefault(
                "first", server.get("/graphs/node/ldc01/system.6h.png")
            )
        )
        first.start()
        wait_for(lambda: server.counters()["renders_in_flight"] == 1, what="a render queued")
        for worker in workers:
            worker.kill()  # as librrd crashing on a broken file would
        first.join(timeout=120)
        status, _, body = answer["first"]
        assert (status, body) == (500, b"the graph could not be drawn; the server's log says why\n")
        status, _, body = server.get("/graphs/node/ldc01/system.6h.png")
        assert status == 200 and body.startswith(b"\x89PNG\r\n")
        log = server.log()
        assert "a render worker died; starting a new pool" in log
        assert "graph node/ldc01/system.6h.png: a render worker died" in log
    finally:
        assert server.stop() == 0
