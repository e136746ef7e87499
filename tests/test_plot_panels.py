"""Panels grouped by meaning: disk apart from network, flags and identifiers in small panels."""

import numpy as np
import pytest
from plot_helpers import T_END

from affair.config import load_config
from affair.outputs.plot.chart import _unit_groups, build_chart
from affair.outputs.plot.plan import GraphJob
from affair.outputs.plot.render import SMALL_PLOT_HEIGHT, Renderer, shape_of
from affair.storage.rrd_store import RrdStore


def test_the_shipped_system_and_daq_graphs_group_by_meaning():
    config = load_config()
    system = list(config.datasets["system"].variables)
    assert [
        (unit, label, names) for unit, label, names in _unit_groups(config, "system", system)
    ] == [
        ("%", "", ["cpu_user", "cpu_system", "cpu_iowait"]),
        ("", "", ["load1", "load5", "load15"]),
        ("B", "", ["mem_used", "mem_free", "swap_used"]),
        ("B/s", "disk", ["disk_read", "disk_write"]),
        ("B/s", "network", ["net_in", "net_out"]),
        ("pkt/s", "network", ["net_pkts_in", "net_pkts_out"]),
    ]
    daq = list(config.datasets["daq"].variables)
    assert _unit_groups(config, "daq", daq) == [
        ("ev/s", "", ["events"]),
        ("B/s", "", ["bytes_out"]),
        ("B", "", ["event_size"]),
        ("%", "", ["buffer_pct"]),
        ("", "identifiers", ["run_number"]),
        ("", "flags", ["running"]),
    ]


@pytest.mark.integration
def test_a_run_number_is_printed_whole_in_a_small_panel(tmp_path):
    config = load_config()
    store = RrdStore(config, tmp_path / "data")
    variables = list(config.datasets["daq"].variables)
    series = store.open_series("vm", "daq", "eb01", variables, T_END - 600)
    rows = [
        (
            ts,
            {
                "events": ts * 100,
                "bytes_out": ts,
                "event_size": 2e6,
                "buffer_pct": 50.0,
                "run_number": 375123,
                "running": 1,
            },
        )  # fmt: skip
        for ts in range(T_END - 590, T_END + 1, 10)
    ]
    store.update_many(series, rows)
    job = GraphJob("node/vm/daq.eb01.1h.png", "node", "1h", "daq", "eb01", ("vm",))
    chart = build_chart(job, config, store, T_END + 5)
    run = next(p for p in chart.panels if p.label == "identifiers")
    assert run.integer and run.small
    assert run.legend[0].values[0] == "375123"
    flags = next(p for p in chart.panels if p.label == "flags")
    assert flags.small and not flags.integer
    assert np.nanmax(flags.lines[0].values) == 1.0
    shape = shape_of(chart, 720)
    heights = [p.plot_height for p in shape.panels]
    assert heights[-2:] == [SMALL_PLOT_HEIGHT, SMALL_PLOT_HEIGHT] and heights[0] > SMALL_PLOT_HEIGHT
    png = Renderer(width=720).png(chart)
    (tmp_path / "daq.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
