"""Whole passes over real RRDs: what is drawn, what is skipped, shards, workers, the CLI,
and a reader that must never see half a PNG."""

import dataclasses
import io
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO
from PIL import Image
from plot_helpers import PLOT_CONFIG, T_END, make_store, plot_config, write_series

from affair.config import parse_config
from affair.outputs.plot.plan import period_offset, plan_jobs
from affair.outputs.plot.run import run_plot

pytestmark = pytest.mark.integration

CONFIG = PLOT_CONFIG.replace('node_windows = ["1h", "6h"]', 'node_windows = ["1h", "6h", "1d"]')
HOSTS = ("h1", "h2", "h3")


def values(ts):
    return {"cpu_user": 20.0 + ts % 60, "net_in": 1000.0 + ts % 700, "net_out": 10.0}


@pytest.fixture
def world(tmp_path):
    config = plot_config(tmp_path, CONFIG)
    os.utime(config.path, (T_END - 3600, T_END - 3600))  # written before the (injected) now
    store = make_store(config, tmp_path / "data")
    for host in HOSTS:
        write_series(store, host, values, T_END - 2 * 3600, T_END)
    return config, store, tmp_path


def png_size(path):
    with Image.open(path) as image:
        image.load()  # decodes every row: a truncated file fails here
        return image.size


def drawn_files(out):
    return {str(path.relative_to(out)) for path in Path(out).rglob("*.png")}


def test_a_pass_draws_everything_then_only_what_is_due(world):
    config, store, tmp_path = world
    out = tmp_path / "graphs"
    keys = {job.key for job in plan_jobs(config, store)}
    assert len(keys) == 3 * 3 + 2 * 2 + 1  # per node x windows, 2 aggregates x 2, 1 overlay

    first = run_plot(config, store.data_dir, out, now=T_END + 5)
    assert (first.drawn, first.skipped, first.failed) == (len(keys), 0, 0)
    assert drawn_files(out) == keys
    for key in keys:
        width, height = png_size(out / key)
        assert width == 720 and height > 200
        assert (out / key).stat().st_mtime == T_END + 5  # stamped with the data's time

    again = run_plot(config, store.data_dir, out, now=T_END + 8)
    assert (again.drawn, again.skipped) == (0, len(keys))  # same 10 s row: nothing new

    for host in HOSTS:  # a minute more data arrives
        write_series(store, host, values, T_END + 10, T_END + 60)
    later = run_plot(config, store.data_dir, out, now=T_END + 65)
    redrawn = {key for key in keys if (out / key).stat().st_mtime == T_END + 65}
    # 1 h and 6 h graphs: a new row each; 1 d graphs (4 min rows): those whose own
    # period, starting at their staggering offset, began between the two passes
    crossed = {
        key
        for key in keys
        if key.endswith("1d.png")
        and (T_END + 65 - period_offset(key, 240)) // 240
        > (T_END + 5 - period_offset(key, 240)) // 240
    }
    assert redrawn == {key for key in keys if key.endswith(("1h.png", "6h.png"))} | crossed
    assert later.drawn == len(redrawn) and later.skipped == len(keys) - len(redrawn)

    for host in HOSTS:  # over a 4 min period after the first pass, every 1 d graph is redrawn
        write_series(store, host, values, T_END + 70, T_END + 250)
    run_plot(config, store.data_dir, out, now=T_END + 255)
    day_graphs = {key for key in keys if key.endswith("1d.png")}
    assert day_graphs and all((out / key).stat().st_mtime > T_END + 5 for key in day_graphs)

    everything = run_plot(config, store.data_dir, out, all_graphs=True, now=T_END + 256)
    assert everything.drawn == len(keys) and everything.skipped == 0


def test_shards_split_the_work_without_overlap_or_gap(world):
    config, store, tmp_path = world
    whole = run_plot(config, store.data_dir, tmp_path / "whole", all_graphs=True, now=T_END + 5)
    parts = []
    for index in range(3):
        out = tmp_path / f"shard{index}"
        summary = run_plot(
            config, store.data_dir, out, all_graphs=True, shard=(index, 3), now=T_END + 5
        )
        parts.append(drawn_files(out))
        assert summary.drawn == len(parts[-1])
    assert sum(len(part) for part in parts) == whole.drawn
    assert set.union(*parts) == drawn_files(tmp_path / "whole")
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_two_workers_draw_the_same_bytes_as_one(world):
    config, store, tmp_path = world
    run_plot(config, store.data_dir, tmp_path / "one", all_graphs=True, workers=1, now=T_END + 5)
    summary = run_plot(
        config, store.data_dir, tmp_path / "two", all_graphs=True, workers=2, now=T_END + 5
    )
    assert summary.drawn == len(drawn_files(tmp_path / "one"))
    for key in drawn_files(tmp_path / "one"):
        assert (tmp_path / "one" / key).read_bytes() == (tmp_path / "two" / key).read_bytes(), key


def test_workers_started_from_a_threaded_caller(world):
    """The site's scheduler calls run_plot from a thread: no fork there (forkserver)."""
    config, store, tmp_path = world
    results = []
    worker = threading.Thread(
        target=lambda: results.append(
            run_plot(
                config, store.data_dir, tmp_path / "t", all_graphs=True, workers=2, now=T_END + 5
            )
        )
    )
    worker.start()
    worker.join(timeout=120)
    assert results and results[0].drawn == 14 and results[0].failed == 0
    assert len(drawn_files(tmp_path / "t")) == 14


def test_an_overlay_of_50_hosts_end_to_end(tmp_path):
    config = plot_config(
        tmp_path, CONFIG.replace('node_windows = ["1h", "6h", "1d"]', 'node_windows = ["1h"]')
    )
    store = make_store(config, tmp_path / "data")
    for index in range(50):
        write_series(
            store,
            f"n{index:02d}",
            lambda ts, i=index: {"cpu_user": float(i + ts % 30)},
            T_END - 3600,
            T_END,
        )
    summary = run_plot(
        config, store.data_dir, tmp_path / "g", all_graphs=True, workers=2, now=T_END + 5
    )
    assert summary.failed == 0
    width, height = png_size(tmp_path / "g" / "cpu_all.overlay.1h.png")
    assert width == 720 and height > 400  # the legend of 50 names below the plot


def run_cli(*arguments, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "affair", "plot", *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_cli_prints_one_line_and_exits_0_then_1_with_the_reason(world):
    config, store, tmp_path = world
    out = tmp_path / "cli"
    result = run_cli("--config", config.path, "--data-dir", str(store.data_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        r"affair plot: drew 14 graphs, skipped 0 up to date in \d+\.\d s\n", result.stdout
    )

    broken = store.data_dir / "hbad"
    broken.mkdir()
    (broken / "system.rrd").write_bytes(b"this is not an RRD" * 100)
    result = run_cli(
        "--config", config.path, "--data-dir", str(store.data_dir), "--out", str(out), "--all"
    )
    assert result.returncode == 1
    assert "3 failed" in result.stdout
    assert "failed: node/hbad/system.1d.png" in result.stderr and "hbad/system.rrd" in result.stderr
    assert png_size(out / "node" / "h1" / "system.1h.png")[0] == 720  # the others were drawn

    for bad in (["--shard", "2/2"], ["--workers", "0"], ["--data-dir", str(tmp_path / "none")]):
        result = run_cli("--config", config.path, "--out", str(out), *bad)
        assert result.returncode == 2 and result.stderr.startswith("affair plot: ")


def test_a_reader_never_sees_a_partial_png(tmp_path):
    text = PLOT_CONFIG[: PLOT_CONFIG.index("[plot]")] + '[plot]\nnode_windows = ["1h"]\n'
    config = plot_config(tmp_path, text)
    store = make_store(config, tmp_path / "data")
    write_series(store, "h1", values, T_END - 3600, T_END)
    out = tmp_path / "live"
    target = out / "node" / "h1" / "system.1h.png"
    writer = textwrap.dedent(
        f"""
        from affair.config import load_config
        from affair.outputs.plot.run import run_plot
        config = load_config({config.path!r})
        for _ in range(30):
            run_plot(config, {str(store.data_dir)!r}, {str(out)!r}, all_graphs=True, now={T_END + 5})
        """
    )
    run_plot(config, store.data_dir, out, all_graphs=True, now=T_END + 5)
    process = subprocess.Popen([sys.executable, "-c", writer], cwd=REPO)
    reads, versions = 0, set()
    deadline = time.monotonic() + 120
    try:
        while process.poll() is None and time.monotonic() < deadline:
            status = os.stat(target)
            versions.add((status.st_ino, status.st_ctime_ns))  # each replacement is a new file
            data = target.read_bytes()
            assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
            with Image.open(io.BytesIO(data)) as image:
                image.load()
            reads += 1
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert process.returncode == 0  # the writer finished its passes by itself
    assert reads > 50 and len(versions) > 5  # we really read while it was being replaced
    assert not [path for path in out.rglob(".*.tmp")]


def test_an_eager_pass_draws_shared_graphs_1h_graphs_and_every_window_of_problem_hosts(world):
    config, store, tmp_path = world
    # h3 CPU is over its red line: all its windows are drawn ahead of time
    config = dataclasses.replace(
        config,
        plot=dataclasses.replace(config.plot, eager=("1h",)),
        status=parse_config(
            {
                "datasets": {"system": {"variables": {"cpu_user": {}}}},
                "status": {"rules": [{"variable": "system.cpu_user", "red": 10, "hosts": "h3"}]},
            }
        ).status,
    )
    out = tmp_path / "graphs"
    summary = run_plot(config, store.data_dir, out, now=T_END + 5)
    assert drawn_files(out) == {
        "node/h1/system.1h.png",
        "node/h2/system.1h.png",
        "node/h3/system.1h.png",
        "node/h3/system.6h.png",
        "node/h3/system.1d.png",
        "net_sum.aggregate.1h.png",
        "net_sum.aggregate.6h.png",
        "net_avg.aggregate.1h.png",
        "net_avg.aggregate.6h.png",
        "cpu_all.overlay.1h.png",
    }
    assert (summary.drawn, summary.on_request) == (10, 4)
    assert summary.line().startswith(
        "drew 10 graphs, skipped 0 up to date, left 4 to draw on request"
    )
    # --all still draws everything
    assert run_plot(config, store.data_dir, out, all_graphs=True, now=T_END + 6).drawn == 14
