"""A silent host's last values are shown as what they are: grey ink, "as of" their time."""

import re

from sitedata import drive, site_config

from affair.outputs.site import build_site
from affair.outputs.status import format_clock
from affair.storage.rrd_store import RrdStore

NOW = 1_700_000_000


def test_a_silent_hosts_values_are_marked_as_of_their_time(tmp_path):
    config = site_config()
    store = RrdStore(config, tmp_path / "data")
    drive(store, "ldc01", NOW, cpu=20.0)
    drive(store, "ldc02", NOW, cpu=30.0, silent_for=600)
    out = tmp_path / "site"
    build_site(config, tmp_path / "data", tmp_path / "g", out, clock=lambda: NOW + 5)
    index = (out / "index.html").read_text()
    rows = dict(re.findall(r'<tr class="([^"]+)"><td class="h s-\w+"><a href="host/(\w+)', index))
    assert rows == {"r-green": "ldc01", "r-grey stale": "ldc02"}
    last = format_clock(NOW - 600, NOW)
    assert f'<td data-v="30" title="as of {last}">30 %</td>' in index
    assert '<td data-v="20">20 %</td>' in index  # a live value: no "as of"

    silent = (out / "host" / "ldc02.html").read_text()
    assert f'<table class="latest stale">\n<caption>system <small>as of {last}</small>' in silent
    live = (out / "host" / "ldc01.html").read_text()
    assert '<table class="latest">\n<caption>system <small>at ' in live
