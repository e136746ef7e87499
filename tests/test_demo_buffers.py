"""The demo's own application problem: the event builders' buffers fill during a run, and
the shipped config's rules turn that red on the builders' application page."""

import threading

from affair.collectors.client import Series

from affair.config import load_config
from affair.demo.eventbuilder import EventBuilder
from affair.demo.simulation import RUN_LENGTH, RUN_PERIOD
from affair.outputs.status import HostSnapshot, SeriesSnapshot, evaluate_host


def published(start, seconds, step=10):
    """``[(time, buffer_pct, running)]`` every ``step`` s of a builder from ``start``."""
    series = Series("eb01", threading.Lock())
    builder = EventBuilder(series, "eb01", seed=3)
    rows = []
    for tick in range(int(seconds * 10)):
        now = start + tick / 10
        builder.step(now, 0.1)
        if tick % (step * 10) == step * 10 - 1:
            values = series.snapshot()
            rows.append((int(now) + 1, values["buffer_pct"], values["running"]))
    return rows


def test_buffers_fill_during_a_run_and_the_shipped_rules_turn_them_red():
    run_start = 100 * RUN_PERIOD
    rows = published(run_start, 300)
    levels = [level for _t, level, _running in rows]
    assert levels[0] < 50 and all(98.5 <= level <= 99.5 for level in levels[12:])

    config = load_config()
    step = config.recorder.step
    times = tuple(t // step * step for t, _level, _running in rows)
    snapshot = SeriesSnapshot(
        "daq", "eb01", times[-1], step, times,
        {"buffer_pct": tuple(levels), "running": tuple(r for *_x, r in rows),
         "events": (5.0,) * len(rows)},
    )  # fmt: skip
    status = evaluate_host(HostSnapshot("vm", (snapshot,)), config, times[-1])
    red = [r for r in status.results if r.colour == "red"]
    assert [r.rule.label for r in red] == ["event buffer filling"]
    assert red[0].detail.startswith("daq.eb01.buffer_pct 99.")
    assert status.colour == "red"

    drained = published(run_start + RUN_LENGTH, 120)
    assert drained[-1][1] == 0.0 and drained[-1][2] == 0.0  # between runs: empty, not running
