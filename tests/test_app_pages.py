"""A page per application dataset series, in its own colour, linked from its host's page."""

import re

from sitedata import SITE_CONFIG, draw_node_graph, grid, site_config, write_rows

from affair.outputs.site import build_site
from affair.storage.rrd_store import RrdStore

NOW = 1_700_000_000

APP_CONFIG = (
    SITE_CONFIG.split("[status]")[0]
    + """
[datasets.eb]
description = "an event builder's own view"
application = true

[datasets.eb.variables]
buffer_pct = { type = "GAUGE", unit = "%", label = "buffer occupancy" }

[status]
stale_steps = 6

[[status.rules]]
variable = "eb.buffer_pct"
yellow = 80
red = 95
for = "1min"
label = "event buffer filling"
"""
)


def test_application_series_get_their_own_page_in_their_own_colour(tmp_path):
    config = site_config(APP_CONFIG)
    data, graphs, out = tmp_path / "data", tmp_path / "graphs", tmp_path / "site"
    store = RrdStore(config, data)
    times = grid(NOW, 30)
    write_rows(store, "vm", "system", [(ts, {"cpu_user": 5.0}) for ts in times])
    write_rows(store, "vm", "eb", [(ts, {"buffer_pct": 99.4}) for ts in times], "eb1")
    write_rows(store, "vm", "eb", [(ts, {"buffer_pct": 20.0}) for ts in times], "eb2")
    draw_node_graph(graphs, "vm", "eb", "1h", 300, 100)  # not this instance's: not shown
    path = graphs / "node" / "vm" / "eb.eb1.1h.png"
    draw_node_graph(graphs, "vm", "eb", "1h", 300, 100).replace(path)

    build_site(config, data, graphs, out, clock=lambda: NOW + 5)

    host = (out / "host" / "vm.html").read_text()
    links = re.findall(r'<a class="app s-(\w+)" href="\.\./app/([^"]+)"[^>]*>([^<]+)</a>', host)
    assert links == [
        ("red", "vm%40eb.eb1.html", "eb.eb1 · red"),
        ("green", "vm%40eb.eb2.html", "eb.eb2 · green"),
    ]
    assert links[0][1] < links[1][1]
    # the host itself is red too: the application's rule colours it
    assert '<section class="host-head s-red">' in host

    red = (out / "app" / "vm@eb.eb1.html").read_text()
    assert '<section class="host-head s-red">' in red
    assert "event buffer filling: eb.eb1.buffer_pct 99.4 % &gt; 95 % for 5 min" in red
    assert '› <a href="../host/vm.html">vm</a> › <b>eb.eb1</b>' in red
    assert "an event builder&#39;s own view" in red
    assert re.findall(r'data-w1h="([^"?]+)', red) == ["../../graphs/node/vm/eb.eb1.1h.png"]
    assert '<th title="buffer_pct">buffer occupancy</th><td>99.4 %</td>' in red

    green = (out / "app" / "vm@eb.eb2.html").read_text()
    assert '<section class="host-head s-green">' in green
    assert '<p class="why">all rules pass</p>' in green
    assert "data-w1h" not in green  # no PNG for eb2 yet: a placeholder

    # an application gone from the data is gone from the site at the next pass
    (data / "vm" / "eb.eb2.rrd").unlink()
    build_site(config, data, graphs, out, clock=lambda: NOW + 15)
    assert sorted(p.name for p in (out / "app").iterdir()) == ["vm@eb.eb1.html"]
