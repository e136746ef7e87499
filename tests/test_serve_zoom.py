"""affair serve's zoom and 2x graphs as a real process over real RRDs: a custom range drawn on
request under its own name, cached, final once its data are, at most --range-cache of them kept;
a bad range is a 400 that says what was expected."""

import io
import json
import time

import pytest
from PIL import Image
from servedata import ServeProcess, make_station
from sitedata import write_rows

from affair.outputs.plot.png import read_text
from affair.outputs.plot.render import PLOT_AREA_KEY
from affair.outputs.site import discover_node_graphs

pytestmark = pytest.mark.integration

RANGE_CACHE = 3
COUNTERS = ("graphs_drawn", "graphs_current", "render_failed", "bad_request", "not_found")


def changed(before, after):
    return {key: after[key] - before[key] for key in COUNTERS if after[key] != before[key]}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    # The site tests' ladder: 20 min of 10 s rows, an hour of 1 min rows.
    station = make_station(
        tmp_path_factory.mktemp("zoom"),
        {
            "ldc01": {"cpu": 20.0, "steps": 120, "events": lambda ts: 50 * ts},
            "ldc02": {"cpu": 30.0, "steps": 90, "silent_for": 300},  # rows end 5 min ago
        },
    )
    server = ServeProcess(station, extra=("--range-cache", str(RANGE_CACHE)))
    yield server
    assert server.stop() == 0
    assert "Traceback" not in server.log()


def png_of(served, path, expect=200):
    status, headers, body = served.get(path)
    assert status == expect, body
    assert headers["Content-Type"] == "image/png"
    return body, Image.open(io.BytesIO(body)).size, json.loads(read_text(body)[PLOT_AREA_KEY])


def rows_ago(seconds):
    return int(time.time()) // 10 * 10 - seconds


def test_the_server_says_what_it_can_zoom(served):
    status, headers, body = served.get("/_affair/features")
    features = json.loads(body)
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert features["scales"] == [1, 2]
    ranges = features["ranges"]
    assert (ranges["min_span"], ranges["max_span"]) == (60, 3600)  # 2 steps < 60 s; 1 h kept
    assert abs(ranges["earliest"] - (time.time() - 3600)) < 30
    assert abs(ranges["latest"] - (time.time() + 86400)) < 30


def test_a_range_is_drawn_on_request_under_its_own_name_and_then_sent_from_disk(served):
    graphs = served.station["graphs"]
    window, window_size, window_area = png_of(served, "/graphs/node/ldc01/system.1h.png")
    window_file = graphs / "node" / "ldc01" / "system.1h.png"
    start, end = rows_ago(900), rows_ago(300)
    before = served.counters()
    body, size, area = png_of(served, f"/graphs/node/ldc01/system.1h.png?from={start}&to={end}")
    assert changed(before, served.counters()) == {"graphs_drawn": 1}
    assert size == window_size == (720, size[1])  # the window graph's layout
    assert (area["start"], area["end"], area["x0"], area["x1"]) == (start, end, 62, 706)
    assert window_area["end"] - window_area["start"] == 3600
    cached = graphs / "_ranges" / f"node~ldc01~system.1h.{start}-{end}.png"
    assert cached.read_bytes() == body
    assert window_file.read_bytes() == window  # the plotter's name is never a range's
    # the same range again: from disk
    middle = served.counters()
    again, _, _ = png_of(served, f"/graphs/node/ldc01/system.1h.png?v=12&to={end}&from={start}")
    assert again == body
    assert changed(middle, served.counters()) == {"graphs_current": 1}
    # whole rows around odd edges, and the 1 min archive for what the 10 s one no longer holds
    _, _, odd = png_of(served, f"/graphs/node/ldc01/system.1h.png?from={start + 3}&to={end - 3}")
    assert (odd["start"], odd["end"]) == (start, end)
    _, _, old = png_of(served, f"/graphs/node/ldc01/system.1h.png?from={rows_ago(1800)}&to={end}")
    assert old["start"] % 60 == 0 and old["end"] % 60 == 0 and old["end"] >= end


def test_a_range_that_ended_is_final_and_one_reaching_now_follows_new_rows(served):
    ended = f"/graphs/node/ldc02/system.1h.png?from={rows_ago(1200)}&to={rows_ago(600)}"
    live = f"/graphs/node/ldc02/system.1h.png?from={rows_ago(900)}&to={rows_ago(-600)}"
    for path in (ended, live):
        png_of(served, path)
    # ldc02 speaks again, a minute after its last row: a new row of the live range's 1 min rows
    store = served.station["store"]
    new_row = int(store.last_update(store.path("ldc02", "system", ""))) + 60
    assert new_row < time.time()
    write_rows(store, "ldc02", "system", [(new_row, {"cpu_user": 90.0})])
    before = served.counters()
    png_of(served, ended)
    assert changed(before, served.counters()) == {"graphs_current": 1}  # its rows were all written
    middle = served.counters()
    png_of(served, live)
    assert changed(middle, served.counters()) == {"graphs_drawn": 1}


def test_at_most_range_cache_ranged_graphs_are_kept_the_least_recently_viewed_go_first(served):
    ranges = served.station["graphs"] / "_ranges"
    spans = [(rows_ago(600 + 60 * i), rows_ago(60 * i)) for i in range(5)]
    paths = [f"/graphs/node/ldc01/daq.1h.png?from={start}&to={end}" for start, end in spans]
    names = [f"node~ldc01~daq.1h.{start}-{end}.png" for start, end in spans]
    for path in paths[:3]:
        png_of(served, path)
    png_of(served, paths[0])  # viewed again: now the most recent of the three
    png_of(served, paths[3])
    png_of(served, paths[4])
    assert sorted(p.name for p in ranges.glob("*.png")) == sorted([names[0], names[3], names[4]])
    before = served.counters()
    png_of(served, paths[1])  # swept: drawn again
    assert changed(before, served.counters()) == {"graphs_drawn": 1}
    assert len(list(ranges.glob("*.png"))) == RANGE_CACHE


def test_a_2x_graph_is_drawn_on_request_beside_the_plotters_and_never_listed_as_a_window(served):
    graphs = served.station["graphs"]
    before = served.counters()
    _, size, area = png_of(served, "/graphs/node/ldc01/daq.6h.png?v=1&scale=2")
    assert size[0] == 1440 and (area["width"], area["x0"], area["x1"]) == (1440, 124, 1412)
    assert (graphs / "node" / "ldc01" / "daq.6h@2x.png").is_file()
    assert not (graphs / "node" / "ldc01" / "daq.6h.png").exists()  # the 1x is the plotter's
    _, one_size, _ = png_of(served, "/graphs/node/ldc01/daq.6h.png")
    assert size == (2 * one_size[0], 2 * one_size[1])
    png_of(served, "/graphs/node/ldc01/daq.6h.png?scale=2")
    assert changed(before, served.counters()) == {"graphs_drawn": 2, "graphs_current": 1}
    start, end = rows_ago(600), rows_ago(0)
    _, ranged_size, _ = png_of(
        served, f"/graphs/node/ldc01/daq.6h.png?from={start}&to={end}&scale=2"
    )
    assert ranged_size[0] == 1440
    assert (graphs / "_ranges" / f"node~ldc01~daq.6h.{start}-{end}@2x.png").is_file()
    assert set(discover_node_graphs(graphs, "ldc01")["daq"]) == {"6h"}  # the site's listing


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("from=abc&to=1", "from must be whole seconds since 1970 (UTC), got 'abc'"),
        ("from={end}&to={start}", "must be before to"),
        ("from={start}&to={start}", "must be before to"),
        ("from={start}", "from and to come together"),
        ("from={start}&to={short}", "it must be at least 60 s"),
        ("from={long}&to={end}", "at most 60 min (what the archives keep) can be drawn"),
        ("from={gone}&to={gone_end}", "is older than anything the archives keep"),
        ("from={ahead}&to={ahead_end}", "is more than 24 h ahead of now"),
        ("scale=3", "scale must be 1 or 2"),
        ("zoom=2", "unknown query parameter 'zoom'"),
    ],
)
def test_a_bad_range_is_a_400_that_says_what_was_expected(served, query, says):
    now = int(time.time())
    times = {
        "start": now - 1200,
        "end": now - 600,
        "short": now - 1200 + 30,
        "long": now - 7200 - 600,
        "gone": now - 3 * 3600,
        "gone_end": now - 3 * 3600 + 600,
        "ahead": now + 86400,
        "ahead_end": now + 86400 + 600,
    }
    before = served.counters()
    status, headers, body = served.get(f"/graphs/node/ldc01/system.1h.png?{query.format(**times)}")
    assert (status, headers["Content-Type"]) == (400, "text/plain; charset=utf-8")
    assert says in body.decode()
    assert changed(before, served.counters()) == {"bad_request": 1}


def test_only_per_node_graphs_are_drawn_for_a_range(served):
    start, end = rows_ago(900), rows_ago(300)
    for path in ("/graphs/cpu_all.overlay.1h.png", "/host/ldc01.html", "/style.css"):
        status, _, body = served.get(f"{path}?from={start}&to={end}")
        assert status == 400 and body == b"from, to and scale are for per-node graphs only\n"
    # no such host: still not found; the range folder is not served as files
    assert served.get(f"/graphs/node/nohost/system.1h.png?from={start}&to={end}")[0] == 404
    assert served.get("/graphs/_ranges/x.png")[0] == 404
