"""affair.collectors.client: an application publishes its variables through a real recorder."""

import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from affair.collectors.client import Publisher

from affair.config import parse_config
from affair.errors import InvalidName
from affair.storage.journal import read_after
from affair.storage.rrd_store import RrdStore
from tests.conftest import free_endpoint, wait_for

DAQ_CONFIG = """
[recorder]
step = 1

[archive]
ladder = ["1s:900"]

[datasets.daq.variables]
events     = { type = "DERIVE", unit = "ev/s", min = 0 }
bytes_out  = { type = "DERIVE", unit = "B/s", min = 0 }
event_size = { type = "GAUGE", unit = "B", min = 0 }
"""


def journal_rows(data_dir):
    """Every journaled sample as (position, ts, host, dataset, instance, values), oldest first.

    Empty while the recorder is still creating its day file (no table yet).
    """
    try:
        return list(read_after(data_dir / "_journal", None))
    except sqlite3.OperationalError:
        return []


def journaled(data_dir, host, dataset, instance=""):
    """The raw archive's samples of one series, oldest first: [(ts, values)]."""
    return [
        (ts, values)
        for _position, ts, h, d, i, values in journal_rows(data_dir)
        if (h, d, i) == (host, dataset, instance)
    ]


def rates_between(samples, variable):
    """{row end: rate} that the journaled running totals of ``variable`` imply for 1 s rows.

    The writer updates at whole seconds (a timestamp's fraction is dropped) and refuses a
    second update in the same second; between two updates librrd stores the total's
    increase divided by the seconds between them, in each 1 s row of the interval.
    """
    rates, previous = {}, None
    for ts, values in samples:
        second = int(ts)
        if previous is not None and second <= previous[0]:
            continue  # refused by the writer as not increasing: not in the RRD
        if previous is not None:
            rate = (values[variable] - previous[1]) / (second - previous[0])
            rates.update(dict.fromkeys(range(previous[0] + 1, second + 1), rate))
        previous = (second, values[variable])
    return rates


@pytest.mark.integration
def test_an_application_publishing_from_a_thread_records_the_right_values(recorder):
    process = recorder(DAQ_CONFIG)
    publisher = Publisher("daq", endpoint=process.endpoint, host="eb01", interval=1)
    builder = publisher.series("builder1")
    stop = threading.Event()
    built = []

    def event_builder():  # ~1000 events/s of 2 kB, until three samples are journaled
        count = 0
        while not stop.is_set():
            builder.increment("events", 10)
            builder.increment("bytes_out", 10 * 2048)
            builder.set(event_size=2048.0)
            count += 10
            time.sleep(0.01)
        publisher.set(event_size=512)  # the dataset's own single series too
        built.append(count)

    thread = threading.Thread(target=event_builder)
    thread.start()
    try:
        wait_for(
            lambda: len(journaled(process.data_dir, "eb01", "daq", "builder1")) >= 3,
            what="three samples of the builder",
        )
    finally:
        stop.set()
        thread.join()
    assert publisher.close(timeout=10) is True
    total = built[0]

    # the raw archive holds the exact running totals and levels, the last one sent on close
    samples = journaled(process.data_dir, "eb01", "daq", "builder1")
    assert len(samples) >= 4  # three while building, one more on close
    assert samples[-1][1] == {"events": total, "bytes_out": total * 2048.0, "event_size": 2048.0}
    totals = [values["events"] for _, values in samples]
    assert totals == sorted(totals)
    assert journaled(process.data_dir, "eb01", "daq")[-1][1] == {"event_size": 512.0}

    # the RRD holds rates: the increase of each running total over the seconds between
    # samples, 2048 bytes per event
    config = parse_config(
        {"recorder": {"step": 1}, "archive": {"ladder": ["1s:900"]}, "datasets": {}}
    )
    store = RrdStore(config, process.data_dir)
    path = store.path("eb01", "daq", "builder1")
    events = rates_between(samples, "events")
    wait_for(lambda: path.exists() and store.last_update(path) >= max(events), what="the rows")
    first, last = int(samples[0][0]), max(events)
    result = store.fetch(path, "AVERAGE", first, last)
    rows = {
        t: (events, out)
        for t, events, out in zip(
            result.times, result.columns["events"], result.columns["bytes_out"], strict=True
        )
        if t <= last and events is not None
    }
    assert len(rows) >= 2
    assert {t: rows[t][0] for t in rows} == pytest.approx(
        {t: events.get(t) for t in rows}, rel=1e-9
    )
    assert min(events[t] for t in rows) > 0  # built while these rows were sampled
    for events_per_second, out in rows.values():
        assert out == pytest.approx(events_per_second * 2048, rel=1e-6)
    gauge = store.fetch(path, "AVERAGE", first + 1, last).columns["event_size"]
    assert {value for value in gauge if value is not None} == {2048.0}


@pytest.mark.integration
def test_the_application_never_waits_for_a_missing_recorder(closed_endpoint):
    threads_before = set(threading.enumerate())
    publisher = Publisher("daq", endpoint=closed_endpoint, host="eb01", interval=1)
    publisher.set(event_size=1)
    publisher.increment("events")
    wait_for(lambda: publisher.stats.submitted >= 1, what="a tick with nobody listening")
    for i in range(1000):  # the calls keep returning while nothing is acknowledged
        publisher.set(event_size=i)
        publisher.increment("events")
    assert publisher.series("").snapshot() == {"event_size": 999, "events": 1001}
    assert publisher.close(timeout=0.5) is False  # not acknowledged, and it says so
    # close() gave up after its timeout: the background thread is gone, not left waiting
    assert set(threading.enumerate()) <= threads_before
    assert publisher.stats.submitted >= 2 and publisher.stats.acked == 0


def test_bad_input_is_refused_in_the_callers_thread():
    publisher = Publisher("daq", endpoint=free_endpoint(), host="eb01", interval=1)
    try:
        with pytest.raises(InvalidName, match="variable"):
            publisher.set(**{"bad name": 1})
        with pytest.raises(InvalidName, match="variable"):
            publisher.increment("a_name_longer_than_19_chars")
        with pytest.raises(TypeError, match="event_size: expected a number, got 'big'"):
            publisher.set(event_size="big")
        with pytest.raises(TypeError):
            publisher.increment("events", by="1")
        publisher.set(level=1)
        with pytest.raises(ValueError, match="'level' is a level"):
            publisher.increment("level")
        with pytest.raises(InvalidName, match="instance"):
            publisher.series("../etc")
        publisher.set(unknown=None, running=True)
        assert publisher.series("").snapshot() == {"level": 1, "unknown": None, "running": 1.0}
    finally:
        publisher.close(timeout=0)
    with pytest.raises(InvalidName, match="dataset"):
        Publisher("da.q", endpoint=free_endpoint())
    with pytest.raises(InvalidName, match="host"):
        Publisher("daq", endpoint=free_endpoint(), host="../x")


@pytest.mark.integration
def test_importing_the_client_stays_light():
    heavy = ("rrdtool", "numpy", "matplotlib", "jinja2", "uproot", "psutil", "sqlite3", "asyncio")
    code = (
        f"import sys, affair.collectors.client; print([m for m in {heavy!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
