"""A silent host's graphs tell the truth: redrawn as time passes, a gap growing up to now."""

import os

import numpy as np
import pytest
from plot_helpers import PLOT_CONFIG, T_END, make_store, plot_config, write_series

from affair.outputs.plot.chart import build_chart
from affair.outputs.plot.plan import plan_jobs
from affair.outputs.plot.run import run_plot
from affair.outputs.plot.timeaxis import describe_end

pytestmark = pytest.mark.integration


def test_a_silent_hosts_graph_is_redrawn_to_now_with_its_gap_growing(tmp_path):
    config = plot_config(tmp_path)
    os.utime(config.path, (T_END - 3600, T_END - 3600))
    store = make_store(config, tmp_path / "data")
    write_series(store, "h1", lambda ts: {"cpu_user": 40.0, "net_in": 1.0, "net_out": 1.0},
                 T_END - 3600, T_END)  # fmt: skip
    out = tmp_path / "graphs"
    run_plot(config, store.data_dir, out, now=T_END + 5)
    one_hour = out / "node" / "h1" / "system.1h.png"
    assert one_hour.stat().st_mtime == T_END + 5

    # Four minutes of silence: no new row, yet the 1 h graph is redrawn, ending now.
    later = run_plot(config, store.data_dir, out, now=T_END + 245)
    assert one_hour.stat().st_mtime == T_END + 245
    assert later.drawn >= 1
    job = next(j for j in plan_jobs(config, store) if j.key == "node/h1/system.1h.png")
    chart = build_chart(job, config, store, T_END + 245)
    assert chart.grid.end == T_END + 240
    assert chart.subtitle.endswith(f"to {describe_end(T_END + 240)}")
    line = chart.panels[0].lines[0].values
    assert np.isnan(line[-24:]).all() and np.isfinite(line[-25])  # 240 s of gap, then data
    assert chart.panels[0].legend[0].stale  # its "now" is old news: grey ink
    fresh = build_chart(job, config, store, T_END + 5)
    assert not fresh.panels[0].legend[0].stale


def test_a_long_windows_legend_says_now_not_its_last_consolidated_row(tmp_path):
    config = plot_config(tmp_path)
    store = make_store(config, tmp_path / "data")

    def values(ts):
        level = 55.0 if ts > T_END - 20 else 20.0  # the host got busy in the last 20 s
        return {"cpu_user": level, "net_in": level, "net_out": 1.0}

    write_series(store, "h1", values, T_END - 7200, T_END)
    write_series(store, "h2", values, T_END - 7200, T_END)
    jobs = {j.key: j for j in plan_jobs(config, store)}
    six_hours = build_chart(jobs["node/h1/system.6h.png"], config, store, T_END + 5)
    assert six_hours.grid.step == 60
    cpu = six_hours.panels[0]
    assert np.nanmax(cpu.lines[0].values[-1:]) < 40  # the last 1 min row mixes 20 and 55
    assert cpu.legend[0].values[0] == "55.0 %"  # now
    overlay = build_chart(jobs["cpu_all.overlay.1h.png"], config, store, T_END + 5)
    assert [entry.values[0] for entry in overlay.panels[0].legend] == ["55.0 %", "55.0 %"]
    total = build_chart(jobs["net_sum.aggregate.6h.png"], config, store, T_END + 5)
    assert total.panels[0].legend[0].values[0] == "110 B/s"  # the sum of the hosts' nows


def test_min_and_max_are_a_light_band_under_the_average_at_long_windows(tmp_path):
    from affair.outputs.plot.render import Renderer

    config = plot_config(tmp_path, PLOT_CONFIG.replace('["1h", "6h"]', '["1h", "1d"]', 1))
    store = make_store(config, tmp_path / "data")
    write_series(store, "h1", lambda ts: {"cpu_user": 20.0 + ts % 600 / 10, "net_in": 1.0,
                 "net_out": 1.0}, T_END - 6 * 3600, T_END)  # fmt: skip
    jobs = {j.key: j for j in plan_jobs(config, store)}
    day = build_chart(jobs["node/h1/system.1d.png"], config, store, T_END + 5)
    cpu = day.panels[0]
    assert len(cpu.bands) == 1 and [line.style for line in cpu.lines] == ["solid"]
    assert np.nanmax(cpu.bands[0].upper) > np.nanmax(cpu.lines[0].values)
    assert day.band and day.styles == ()
    (tmp_path / "day.png").write_bytes(Renderer(width=720).png(day))
    hour = build_chart(jobs["node/h1/system.1h.png"], config, store, T_END + 5)
    assert not hour.band and not hour.panels[0].bands  # one sample per row: no band
