"""Rows at the window's resolution from real RRDs, and aggregates checked by hand."""

import dataclasses

import numpy as np
import pytest
from plot_helpers import PLOT_CONFIG, STEP, T_END, make_store, plot_config, write_series

from affair.errors import PlotError
from affair.outputs.plot.chart import build_chart
from affair.outputs.plot.data import Grid, aggregate, fetch_rows
from affair.outputs.plot.plan import plan_jobs

NAN = np.nan
START = T_END - 7 * 3600
H3_SILENT = (T_END - 1800, T_END - 1200)  # h3 sends unknowns for these 10 minutes
ALL_SILENT = (T_END - 600, T_END - 540)  # nobody knows this minute


def h1(ts):
    return 1000.0 + (ts // STEP) % 7 * 100


def h2(ts):
    return 5000.0 + (ts // STEP) % 5 * 10


def h3(ts):
    return None if H3_SILENT[0] < ts <= H3_SILENT[1] else 300.0


def h4(ts):
    return 7.0 if ts <= T_END - 30 else None


HOSTS = {"h1": h1, "h2": h2, "h3": h3}


def known(function, ts):
    if ALL_SILENT[0] < ts <= ALL_SILENT[1]:
        return None
    return function(ts)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    directory = tmp_path_factory.mktemp("plotdata")
    config = plot_config(directory)
    store = make_store(config, directory / "data")
    for host, function in HOSTS.items():
        write_series(
            store,
            host,
            lambda ts, f=function: {"net_in": known(f, ts), "net_out": 1.0, "cpu_user": 50.0},
            START,
            T_END,
        )
    # h4 stopped 30 s before the end: its last update is older than "now".
    write_series(store, "h4", lambda ts: {"net_in": known(h4, ts)}, START, T_END - 30)
    return config, store


def by_hand(grid, how, rows_per_point=1, reduce=np.mean, hosts=("h1", "h2", "h3", "h4")):
    """The aggregate computed from the written values, row by row."""
    functions = dict(HOSTS, h4=h4)
    expected = []
    for end in grid.row_ends():
        end = int(end)
        per_host = []
        for host in hosts:
            if end > (T_END - 30 if host == "h4" else T_END):
                continue  # the file has not reached this row: librrd has not consolidated it
            samples = [
                known(functions[host], ts)
                for ts in range(end - (rows_per_point - 1) * STEP, end + 1, STEP)
            ]
            samples = [value for value in samples if value is not None]
            if len(samples) * 2 >= rows_per_point:  # xff 0.5: half may be unknown
                per_host.append(reduce(samples))
        if not per_host:
            expected.append(NAN)
        else:
            expected.append(sum(per_host) if how == "sum" else sum(per_host) / len(per_host))
    return np.array(expected)


def job_named(config, store, key):
    return next(job for job in plan_jobs(config, store) if job.key == key)


def test_aggregate_sum_and_average_leave_missing_hosts_out():
    stack = np.array(
        [
            [1.0, 2.0, NAN, NAN],
            [10.0, NAN, 30.0, NAN],
            [100.0, 200.0, 300.0, NAN],
        ]
    )
    total, reporting = aggregate(stack, "sum")
    np.testing.assert_array_equal(total, [111.0, 202.0, 330.0, NAN])
    np.testing.assert_array_equal(reporting, [3, 2, 2, 0])
    mean, _ = aggregate(stack, "average")
    np.testing.assert_array_equal(mean, [37.0, 101.0, 165.0, NAN])  # not (1+0+100)/3
    with pytest.raises(ValueError):
        aggregate(stack, "median")


def test_fetch_rows_at_10s_even_when_the_file_lags_behind_now(world):
    config, store = world
    grid = Grid.for_window(T_END + 5, 3600, 10)
    rows = fetch_rows(store, store.path("h4", "system"), ["AVERAGE"], grid, 3600)
    column = rows.values["AVERAGE"][:, rows.names.index("net_in")]
    assert grid.count == 360 and len(column) == 360
    # librrd would have answered at 1 min for the full hour up to now; we asked for 10 s
    assert np.isnan(column[-3:]).all()  # the last 30 s: not written yet, a gap
    assert (column[:-4][np.isfinite(column[:-4])] == 7.0).all()
    assert np.isfinite(column[:-4]).sum() == 356 - 6  # all but the minute nobody knew


def test_fetch_rows_at_10s_when_the_file_is_ahead_of_now(world):
    config, store = world
    grid = Grid.for_window(T_END - 120, 3600, 10)  # the file's last row is 2 minutes later
    rows = fetch_rows(store, store.path("h1", "system"), ["AVERAGE"], grid, 3600)
    column = rows.values["AVERAGE"][:, rows.names.index("net_in")]
    # the 10 s archive no longer holds the grid's first 2 minutes: gaps, still at 10 s
    assert np.isnan(column[:12]).all()
    expected = [known(h1, int(t)) for t in grid.row_ends()[12:]]
    np.testing.assert_array_equal(column[12:], np.array(expected, dtype=float))


def test_the_1h_aggregate_equals_the_sum_by_hand(world):
    config, store = world
    for name, how in (("net_sum", "sum"), ("net_avg", "average")):
        chart = build_chart(
            job_named(config, store, f"{name}.aggregate.1h.png"), config, store, T_END + 5
        )
        (line,) = chart.panels[0].lines  # at 10 s, MIN = MAX = AVERAGE: one line
        expected = by_hand(chart.grid, how)
        np.testing.assert_allclose(line.values, expected, rtol=1e-12)
        assert np.isnan(line.values).sum() == 6  # the silent minute is a gap, not a zero
        h3_gap = (chart.grid.row_ends() > H3_SILENT[0]) & (chart.grid.row_ends() <= H3_SILENT[1])
        if how == "sum":  # h3 missing lowers the sum, and nothing else
            np.testing.assert_allclose(
                line.values[h3_gap], [h1(t) + h2(t) + 7.0 for t in chart.grid.row_ends()[h3_gap]]
            )


def test_the_6h_aggregate_uses_librrds_1min_rows_min_avg_max(world):
    config, store = world
    chart = build_chart(
        job_named(config, store, "net_sum.aggregate.6h.png"), config, store, T_END + 5
    )
    assert chart.grid.step == 60 and chart.grid.count == 360
    lines = {line.style: line.values for line in chart.panels[0].lines}
    for style, reduce in (("solid", np.mean), ("dashed", max), ("dotted", min)):
        expected = by_hand(chart.grid, "sum", rows_per_point=6, reduce=reduce)
        np.testing.assert_allclose(lines[style], expected, rtol=1e-9)
    (band,) = chart.panels[0].bands
    np.testing.assert_array_equal(band.lower, lines["dotted"])
    np.testing.assert_array_equal(band.upper, lines["dashed"])
    assert chart.band and chart.styles == ("AVERAGE", "MAX", "MIN")


def test_node_graph_groups_variables_by_unit_and_keeps_gaps(world):
    config, store = world
    chart = build_chart(job_named(config, store, "node/h3/system.1h.png"), config, store, T_END + 5)
    units = [panel.unit for panel in chart.panels]
    assert units == ["%", "B/s"]
    assert [entry.label for entry in chart.panels[1].legend] == ["network in", "network out"]
    net_in = chart.panels[1].lines[0].values
    silent = (chart.grid.row_ends() > H3_SILENT[0]) & (chart.grid.row_ends() <= H3_SILENT[1])
    assert np.isnan(net_in[silent]).all() and silent.sum() == 60
    assert (net_in[~silent & np.isfinite(net_in)] == 300.0).all()
    assert chart.panels[1].legend[0].values == ("300 B/s", "300 B/s", "300 B/s", "300 B/s")
    assert chart.title == "h3 · system"


def test_overlay_has_a_line_per_host_with_stable_colours(world):
    config, store = world
    chart = build_chart(
        job_named(config, store, "cpu_all.overlay.1h.png"), config, store, T_END + 5
    )
    panel = chart.panels[0]
    assert [entry.label for entry in panel.legend] == ["h1", "h2", "h3", "h4"]
    assert len({entry.color for entry in panel.legend}) == 4
    assert panel.legend[0].values == ("50.0 %",)
    assert np.isnan(panel.lines[3].values).all()  # h4 never sent cpu_user: all gap


def test_an_overlay_legend_of_many_hosts_ends_with_and_n_more(tmp_path):
    text = PLOT_CONFIG.replace('hosts = ["*"]', 'hosts = ["n*"]')
    config = plot_config(tmp_path, text)
    store = make_store(config, tmp_path / "data")
    for index in range(75):
        write_series(
            store, f"n{index:02d}", lambda ts: {"cpu_user": 10.0}, T_END - 600, T_END, ("cpu_user",)
        )
    job = job_named(config, store, "cpu_all.overlay.1h.png")
    panel = build_chart(job, config, store, T_END + 5).panels[0]
    assert len(panel.lines) == 75  # every host drawn
    assert len(panel.legend) == 60 and panel.legend[-1].label == "and 16 more"
    assert panel.legend[58].label == "n58"


def test_a_new_variable_appears_in_the_default_graph_without_config(tmp_path):
    config = plot_config(tmp_path)  # declares cpu_user, net_in, net_out only
    store = make_store(config, tmp_path / "data")
    write_series(
        store,
        "hx",
        lambda ts: {"cpu_user": 5.0, "fan_rpm": 2400.0},
        T_END - 600,
        T_END,
        ("cpu_user", "fan_rpm"),
    )
    job = job_named(config, store, "node/hx/system.1h.png")
    chart = build_chart(job, config, store, T_END + 5)
    panels = {panel.unit: panel for panel in chart.panels}
    assert set(panels) == {"%", "B/s", ""}  # the undeclared variable gets a panel of its own
    assert [entry.label for entry in panels[""].legend] == ["fan_rpm"]
    assert panels[""].legend[0].values[0] == "2.40 k"


def test_a_unit_with_many_variables_is_cut_into_panels_of_distinct_colours():
    from affair.config import parse_config
    from affair.outputs.plot.chart import PALETTE, _unit_groups

    variables = {f"v{i:02d}": {"unit": "/s"} for i in range(20)}
    variables["load"] = {}
    config = parse_config({"datasets": {"d": {"variables": variables}}})
    groups = _unit_groups(config, "d", list(variables))
    assert [(unit, len(names)) for unit, _label, names in groups] == [
        ("/s", 8),
        ("/s", 8),
        ("/s", 4),
        ("", 1),
    ]
    assert groups[1][2][0] == "v08" and len(PALETTE) >= 8


def test_a_custom_range_is_drawn_from_the_archive_librrd_would_read_it_from(world):
    config, store = world
    window_job = job_named(config, store, "node/h1/system.1h.png")
    now = T_END + 5
    # five minutes ending 4 min ago: the 10 s rows, h1's own values
    recent = dataclasses.replace(window_job, start=T_END - 540, end=T_END - 240)
    chart = build_chart(recent, config, store, now)
    assert (chart.grid.step, chart.grid.start, chart.grid.end) == (10, T_END - 540, T_END - 240)
    net_in = chart.panels[1].lines[0].values
    assert list(net_in) == [h1(ts) for ts in chart.grid.row_ends()]
    assert chart.latest == "last" and chart.ticks.unit == "minute"
    assert chart.subtitle.endswith(" · 10 s rows")
    # ended before now: the legend's first column is the range's last row, not now
    assert chart.panels[1].legend[0].values[0] == f"{h1(T_END - 240) / 1000:.2f} kB/s"
    # ten minutes three hours ago: librrd's 1 min rows, whole rows around odd edges
    old = dataclasses.replace(window_job, start=T_END - 3 * 3600 - 590, end=T_END - 3 * 3600 - 5)
    chart = build_chart(old, config, store, now)
    grid = chart.grid
    assert (grid.step, grid.start, grid.end, grid.count) == (
        60,
        T_END - 3 * 3600 - 600,
        T_END - 3 * 3600,
        10,
    )
    path = store.path("h1", "system", "")
    _step, first_end, names, rows = store.fetch_array(path, "AVERAGE", grid.start, grid.end, 60)
    skip = (grid.start + 60 - first_end) // 60  # librrd's rows from the one ending at first_end
    expected = rows[skip : skip + 10, list(names).index("net_in")]
    np.testing.assert_array_equal(chart.panels[1].lines[0].values, expected)
    # a range reaching now is like a window: "now" is the newest value
    live = dataclasses.replace(window_job, start=T_END - 1200, end=T_END + 600)
    assert build_chart(live, config, store, now).latest == "now"


def test_a_custom_range_of_an_aggregate_is_the_plotters_to_draw(world):
    config, store = world
    job = job_named(config, store, "net_sum.aggregate.1h.png")
    ranged = dataclasses.replace(job, start=T_END - 600, end=T_END)
    with pytest.raises(PlotError, match="only per-node graphs are drawn for a custom range"):
        build_chart(ranged, config, store, T_END + 5)


def test_a_grid_for_a_range_covers_it_in_whole_rows():
    assert Grid.for_range(1000, 2000, 10) == Grid(10, 2000, 100)
    assert Grid.for_range(1005, 1995, 10) == Grid(10, 2000, 100)
    assert Grid.for_range(1005, 1995, 60) == Grid(60, 2040, 18)
    assert Grid.for_range(1000, 1001, 60) == Grid(60, 1020, 1)
    assert Grid.for_range(960, 2040, 60).start == 960
