"""The demo's simulated event builder: its simulation, and a real run against a recorder."""

import subprocess
import sys
import threading

import pytest
from affair.collectors.client import Series

from affair.demo.eventbuilder import EventBuilder
from affair.demo.simulation import RUN_LENGTH, RUN_PERIOD
from tests.conftest import wait_for
from tests.test_client import DAQ_CONFIG, journal_rows


def test_a_builder_builds_during_runs_only():
    series = Series("eb01", threading.Lock())
    builder = EventBuilder(series, "eb01", rate=1000.0)
    in_run, between_runs = 100 * RUN_PERIOD + 10, 100 * RUN_PERIOD + RUN_LENGTH + 10
    for _ in range(10):
        builder.step(in_run, 0.1)
    builder.publish_level()
    during = series.snapshot()
    assert during["running"] == 1.0 and during["run_number"] == 1100
    assert 700 < during["events"] < 1300  # 1000 events/s for one second
    assert 1.0e6 < during["bytes_out"] / during["events"] < 3.0e6
    assert during["event_size"] == pytest.approx(during["bytes_out"] / during["events"], rel=0.01)
    for _ in range(10):
        builder.step(between_runs, 0.1)
    builder.publish_level()
    after = series.snapshot()
    assert after["running"] == 0.0
    assert after["events"] == during["events"]  # nothing built between runs
    assert after["event_size"] is None


@pytest.mark.integration
def test_the_event_builder_application_records_through_the_client(recorder):
    process = recorder(DAQ_CONFIG)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "affair.demo.eventbuilder",
            "--recorder",
            process.endpoint,
            "--host",
            "gdc01",
            "--builders",
            "2",
            "--interval",
            "1",
            "--seconds",
            "2.5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr  # 0: everything it sent was acknowledged

    def instances():
        return {
            instance: values
            for _, _, host, dataset, instance, values in journal_rows(process.data_dir)
            if (host, dataset) == ("gdc01", "daq")
        }

    last = wait_for(lambda: len(instances()) == 2 and instances())
    assert set(last) == {"eb01", "eb02"}
    for values in last.values():
        assert {"running", "run_number", "buffer_pct", "events", "bytes_out"} <= set(values)
        assert values["events"] > 0 if values["running"] == 1.0 else values["events"] >= 0
    wait_for(lambda: (process.data_dir / "gdc01" / "daq.eb02.rrd").exists())
