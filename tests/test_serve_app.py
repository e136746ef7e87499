"""affair serve's WSGI application in process, with a stand-in render pool: no sockets, no workers.

The layout here is the shipped config's: the site and the graphs directory
side by side (``site/`` and ``graphs/``), so the pages' ``../graphs/...``
links land on ``/graphs/...`` (see serve_routes.graphs_prefix).
"""

import os
import time

import pytest
from servedata import SERVE_CONFIG
from sitedata import drive

from affair.config import load_config
from affair.outputs.render_pool import Outcome
from affair.outputs.serve import SiteServer
from affair.storage.rrd_store import RrdStore


class StandInPool:
    """Answers each render with ``outcome``; on "drawn" writes a PNG, stamped as the server does."""

    def __init__(self, graphs_dir, store, outcome="drawn"):
        self.graphs_dir = graphs_dir
        self.store = store
        self.outcome = outcome
        self.jobs = []
        self.in_flight = 0

    def render(self, job, drawn_meanwhile=lambda: False):
        self.jobs.append(job.key)
        if self.outcome == "drawn":
            path = self.graphs_dir / job.key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\x89PNG drawn " + job.key.encode())
            newest = self.store.last_update(self.store.path(job.hosts[0], job.dataset))
            os.utime(path, (newest, newest))
        return Outcome(self.outcome, "a reason naming /some/file.rrd")


@pytest.fixture
def app(tmp_path):
    config_path = tmp_path / "affair.toml"
    config_path.write_text(SERVE_CONFIG)
    os.utime(config_path, (time.time() - 3600,) * 2)
    config = load_config(config_path)
    store = RrdStore(config, tmp_path / "data")
    drive(store, "ldc01", time.time(), cpu=20.0)
    site, graphs = tmp_path / "site", tmp_path / "graphs"
    site.mkdir()
    (site / "index.html").write_text("<p>index</p>\n")
    graphs.mkdir()
    (graphs / "cpu_all.overlay.1h.png").write_bytes(b"\x89PNG overlay")
    pool = StandInPool(graphs, store)
    return SiteServer(config, tmp_path / "data", graphs, site, pool), pool, graphs


def get(server, raw, method="GET"):
    status, headers, body = server.respond({"REQUEST_METHOD": method, "REQUEST_URI": raw})
    return status, dict(headers), body


def test_pages_and_graphs_side_by_side(app):
    server, pool, graphs = app
    assert get(server, "/")[::2] == (200, b"<p>index</p>\n")
    assert get(server, "/graphs/cpu_all.overlay.1h.png")[::2] == (200, b"\x89PNG overlay")
    status, headers, body = get(server, "/graphs/node/ldc01/system.6h.png?v=17")
    assert (status, headers["Content-Type"], body) == (
        200,
        "image/png",
        b"\x89PNG drawn node/ldc01/system.6h.png",
    )
    assert pool.jobs == ["node/ldc01/system.6h.png"]
    assert get(server, "/graphs/node/ldc01/system.6h.png")[0] == 200
    assert pool.jobs == ["node/ldc01/system.6h.png"]  # current: sent from disk
    assert server.counters["graphs_drawn"] == 1 and server.counters["graphs_current"] == 1


def test_a_full_queue_sends_the_stale_png_or_503(app):
    server, pool, graphs = app
    pool.outcome = "full"
    status, headers, _ = get(server, "/graphs/node/ldc01/system.1h.png")
    assert (status, headers["Retry-After"]) == (503, "5")
    old = graphs / "node" / "ldc01" / "system.1h.png"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"\x89PNG old")
    os.utime(old, (1000, 1000))  # long before the newest row: out of date
    assert get(server, "/graphs/node/ldc01/system.1h.png")[::2] == (200, b"\x89PNG old")
    assert (server.counters["busy"], server.counters["graphs_stale_served"]) == (1, 1)


def test_a_failed_render_is_a_500_that_names_no_file(app):
    server, pool, _ = app
    pool.outcome = "failed"
    status, _, body = get(server, "/graphs/node/ldc01/system.1h.png")
    assert status == 500 and b".rrd" not in body
    assert server.counters["render_failed"] == 1


def test_nothing_is_drawn_for_names_without_an_rrd_and_nothing_but_get_and_head(app):
    server, pool, _ = app
    for raw in ("/graphs/node/ldc02/system.1h.png", "/graphs/node/ldc01/daq.1h.png"):
        assert get(server, raw)[0] == 404
    assert get(server, "/index.html", method="PUT")[0] == 405
    assert pool.jobs == []
