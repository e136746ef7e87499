"""A reader (plotter, site, export) fetching an RRD never costs the writer a row.

librrd locks a file for fetch and info as well as for update, and does not
wait: without a retry, an update during a fetch fails at once.
"""

import contextlib
import multiprocessing

import pytest
import rrdtool

from affair.config import parse_config
from affair.storage.rrd_store import RrdStore

pytestmark = pytest.mark.integration

T0 = 1_800_000_000


def fetch_forever(path, started, stop):
    while not stop.is_set():
        # the reader's own lock can lose too; the reader is not under test
        with contextlib.suppress(rrdtool.OperationalError):
            rrdtool.fetch(path, "AVERAGE", "-s", str(T0), "-e", str(T0 + 3600))
        started.set()  # reading nonstop from here on


def test_updates_survive_a_reader_fetching_the_same_file_nonstop(tmp_path):
    config = parse_config({"datasets": {"system": {"variables": {"load1": {}}}}})
    store = RrdStore(config, tmp_path)
    series = store.open_series("ldc01", "system", "", ["load1"], T0)
    spawn = multiprocessing.get_context("spawn")
    started, stop = spawn.Event(), spawn.Event()
    reader = spawn.Process(target=fetch_forever, args=(str(series.path), started, stop))
    reader.start()
    try:
        assert started.wait(30)
        for i in range(1, 301):  # one call per row, as a lightly loaded writer makes them
            store.update_many(series, [(T0 + 10 * i, {"load1": float(i)})])
    finally:
        stop.set()
        reader.join(timeout=30)
    result = store.fetch(series.path, "AVERAGE", T0, T0 + 3000)
    rows = dict(zip(result.times, result.columns["load1"], strict=True))
    assert [rows[T0 + 10 * i] for i in range(1, 301)] == [float(i) for i in range(1, 301)]
