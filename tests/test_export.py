"""ROOT exports of the raw archive and of the RRDs, read back with uproot."""

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import numpy as np
import pytest
import uproot
from conftest import REPO

from affair.config import parse_config
from affair.errors import ConfigError, ExportError
from affair.ingest.validate import Sample
from affair.outputs.export import branch_names, export_root, run_daily_export
from affair.storage.journal import Journal
from affair.storage.rrd_store import RrdStore

DAY1 = 1_700_006_400 - 86_400  # 2023-11-14 00:00 UTC
DAY2 = 1_700_006_400  # 2023-11-15 00:00 UTC


def make_config(tmp_path, **sections):
    raw = {
        "recorder": {"data_dir": str(tmp_path / "data")},
        "datasets": {
            "system": {
                "description": "the node",
                "variables": {
                    "cpu_user": {"type": "GAUGE", "unit": "%", "label": "CPU user"},
                    "net_in": {"type": "DERIVE", "unit": "B/s", "min": 0},
                },
            }
        },
        **sections,
    }
    return parse_config(raw, tmp_path / "affair.toml")


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def journal_two_days(config):
    """Samples over two receipt days, one of them late; returns them as received."""
    clock = Clock(DAY2 - 60)
    journal = Journal(config.recorder.data_dir + "/_journal", clock=clock)
    first = [
        Sample(0, DAY2 - 7200.5, "gdc01", "system", "", {"cpu_user": 10.5, "net_in": 1e12 + 1}),
        Sample(0, DAY2 - 10.25, "gdc01", "system", "", {"cpu_user": None, "net_in": 3.0}),
        Sample(0, DAY2 - 10.25, "ldc01", "system", "", {"cpu_user": 99.75}),
        Sample(0, DAY2 - 10.0, "ldc01", "disks", "sda", {"used": 0.1}),
    ]
    journal.append(first)
    clock.now = DAY2 + 3600
    second = [
        Sample(0, DAY2 - 5.0, "gdc02", "system", "", {"cpu_user": 1.0, "fan": 1234.0}),  # late
        Sample(0, DAY2 + 3590.125, "gdc01", "system", "", {"net_in": 5.0}),
        Sample(0, DAY2 + 3595.0, "ldc01", "disks", "sdb", {"used": 0.2}),
        Sample(0, DAY2 + 50_000.0, "gdc01", "system", "", {"cpu_user": 7.0}),
    ]
    journal.append(second)
    journal.close()
    return first + second


def read_tree(path, dataset):
    with uproot.open(path) as root:
        hosts = list(root["_affair/hosts"]["name"].array(library="np"))
        instances = list(root["_affair/instances"]["name"].array(library="np"))
        arrays = root[dataset].arrays(library="np")
    rows = {}
    for index in range(len(arrays["time"])):
        key = (hosts[arrays["host"][index]], instances[arrays["instance"][index]])
        values = {
            name: arrays[name][index]
            for name in arrays
            if name not in ("time", "host", "instance") and not np.isnan(arrays[name][index])
        }
        rows[(*key, arrays["time"][index])] = values
    return rows


def test_branch_names_avoid_fixed_branches_digits_and_each_other():
    names = branch_names(["time", "cpu", "1min", "v_time", "host"], ("",))
    assert names == {
        ("time", ""): "v_time",
        ("cpu", ""): "cpu",
        ("1min", ""): "v_1min",
        ("v_time", ""): "v_v_time",
        ("host", ""): "v_host",
    }
    consolidated = branch_names(["cpu", "cpu_min"], ("_min", "_avg"))
    assert consolidated[("cpu", "_min")] == "cpu_min"
    assert consolidated[("cpu_min", "_min")] == "cpu_min_min"
    assert len(set(consolidated.values())) == 4


def test_export_of_a_range_spanning_a_rotation_holds_exactly_its_samples(tmp_path):
    config = make_config(tmp_path)
    samples = journal_two_days(config)
    output = tmp_path / "out" / "range.root"
    summary = export_root(config, output, start=DAY2 - 7200.5, end=DAY2 + 3600, progress=False)
    inside = [s for s in samples if DAY2 - 7200.5 <= s.ts < DAY2 + 3600]
    assert summary.entries == {"disks": 2, "system": 5}
    system = read_tree(output, "system")
    expected = {
        (s.host, s.instance, s.ts): {k: v for k, v in s.values.items() if v is not None}
        for s in inside
        if s.dataset == "system"
    }
    assert system == expected  # exact floats, both days, the late sample included
    disks = read_tree(output, "disks")
    assert disks == {
        ("ldc01", "sda", DAY2 - 10.0): {"used": 0.1},
        ("ldc01", "sdb", DAY2 + 3595.0): {"used": 0.2},
    }
    assert not list(output.parent.glob(".*tmp"))  # the temporary file was renamed


def test_export_metadata_makes_the_file_self_describing(tmp_path):
    config = make_config(tmp_path)
    journal_two_days(config)
    output = tmp_path / "all.root"
    export_root(config, output, hosts=["gdc*"], datasets=["system"], progress=False)
    with uproot.open(output) as root:
        assert set(root.keys(cycle=False)) == {
            "system",
            "_affair",
            "_affair/hosts",
            "_affair/instances",
            "_affair/variables",
            "_affair/metadata",
            "_affair/config",
        }
        tree = root["system"]
        assert tree.title == "the node"
        assert tree.keys() == ["time", "host", "instance", "cpu_user", "net_in", "fan"]
        assert tree["host"].interpretation.from_dtype.str == ">i4"
        assert tree["cpu_user"].interpretation.from_dtype.str == ">f8"
        metadata = json.loads(root["_affair/metadata"])
        variables = root["_affair/variables"].arrays(library="np")
    assert metadata["hosts"] == ["gdc01", "gdc02"]
    assert metadata["resolution"] == "raw" and metadata["step"] == 10
    assert metadata["datasets"]["system"]["entries"] == 5
    assert metadata["datasets"]["system"]["branches"]["net_in"] == {
        "variable": "net_in",
        "type": "DERIVE",
        "unit": "B/s",
        "label": "net_in",
        "consolidation": None,
    }
    assert list(variables["branch"]) == ["cpu_user", "net_in", "fan"]
    assert list(variables["unit"]) == ["%", "B/s", ""]


def test_daily_export_writes_yesterday_including_samples_received_today(tmp_path):
    config = make_config(tmp_path, export={"directory": str(tmp_path / "exports")})
    samples = journal_two_days(config)
    path = run_daily_export(config, now=DAY2 + 3600)
    assert path == tmp_path / "exports" / "affair-2023-11-14.root"
    system = read_tree(path, "system")
    assert sorted(system) == sorted(
        (s.host, s.instance, s.ts) for s in samples if s.dataset == "system" and s.ts < DAY2
    )
    assert ("gdc02", "", DAY2 - 5.0) in system  # received on the 15th, stamped on the 14th


def test_consolidated_export_has_min_avg_max_of_each_interval(tmp_path):
    config = make_config(tmp_path, archive={"ladder": ["10s:360", "1min:360"]})
    store = RrdStore(config)
    start = 1_700_000_000 - 1_700_000_000 % 60
    series = store.open_series("gdc01", "system", "", ["cpu_user"], start)
    rows = [(start + 10 * i, {"cpu_user": float(i % 6), "net_in": None}) for i in range(1, 121)]
    store.update_many(series, rows)
    end = start + 1200
    output = tmp_path / "c.root"
    summary = export_root(config, output, start + 60, end, resolution=60, now=end, progress=False)
    assert summary.entries == {"system": 19}
    with uproot.open(output) as root:
        tree = root["system"].arrays(library="np")
        assert root["system"].keys()[:6] == [
            "time",
            "host",
            "instance",
            "cpu_user_min",
            "cpu_user_avg",
            "cpu_user_max",
        ]
    # each 1 min row consolidates the six 10 s values 0..5 (the minute ending at t holds t-50..t)
    assert list(tree["time"]) == [float(start + 60 * k) for k in range(2, 21)]
    assert set(tree["cpu_user_min"]) == {0.0}
    assert set(tree["cpu_user_max"]) == {5.0}
    assert set(tree["cpu_user_avg"]) == {2.5}
    assert np.isnan(tree["net_in_avg"]).all()


def test_consolidated_export_refuses_a_range_the_archive_no_longer_holds(tmp_path):
    config = make_config(tmp_path)
    now = 1_700_000_000
    with pytest.raises(ExportError, match="10s rows are kept for 1h only"):
        export_root(config, tmp_path / "x.root", now - 7200, now, resolution=10, now=now)
    with pytest.raises(ExportError, match="no archive of 7s rows in the ladder"):
        export_root(config, tmp_path / "x.root", resolution=7, now=now)
    assert not list(tmp_path.glob("*.root")) and not list(tmp_path.glob(".*"))


def test_export_names_an_unknown_dataset(tmp_path):
    config = make_config(tmp_path)
    journal_two_days(config)
    with pytest.raises(
        ExportError,
        match="no dataset 'sytem'.*known: affair, delivery, disks, graphite, links, system",
    ):
        export_root(config, tmp_path / "x.root", datasets=["sytem"], progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no x.root, no temporary


@pytest.mark.parametrize("hosts", [["*", "!gdc01"], ["!gdc01"]])
def test_export_of_every_host_but_one(tmp_path, hosts):
    config = make_config(tmp_path)
    samples = journal_two_days(config)
    output = tmp_path / "raw.root"
    summary = export_root(config, output, hosts=hosts, datasets=["system"], progress=False)
    assert summary.hosts == ["gdc02", "ldc01"]
    assert sorted(read_tree(output, "system")) == sorted(
        (s.host, s.instance, s.ts) for s in samples if s.dataset == "system" and s.host != "gdc01"
    )


def test_consolidated_export_of_every_host_but_one(tmp_path):
    config = make_config(tmp_path, archive={"ladder": ["10s:360", "1min:360"]})
    store = RrdStore(config)
    start = 1_700_000_000 - 1_700_000_000 % 60
    for host in ("gdc01", "gdc02", "ldc01"):
        series = store.open_series(host, "system", "", ["cpu_user"], start)
        store.update_many(series, [(start + 10 * i, {"cpu_user": 1.0}) for i in range(1, 13)])
    end = start + 120
    output = tmp_path / "c.root"
    summary = export_root(
        config, output, start, end, hosts=["!gdc01"], resolution=60, now=end, progress=False
    )
    assert summary.hosts == ["gdc02", "ldc01"]
    assert {host for host, _instance, _time in read_tree(output, "system")} == {"gdc02", "ldc01"}


@pytest.mark.integration
def test_export_command_line(tmp_path):
    config = make_config(tmp_path)
    journal_two_days(config)
    (tmp_path / "affair.toml").write_text("")
    output = tmp_path / "cli.root"
    command = [sys.executable, "-m", "affair", "export", "--config", str(tmp_path / "affair.toml")]
    command += ["--data-dir", str(tmp_path / "data"), "--output", str(output)]
    result = subprocess.run(
        [*command, "--from", "2023-11-14T22:00:00Z", "--to", "2023-11-15", "--hosts", "ldc*,gdc02"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {output}: disks 1, system 2 entries (2 hosts, raw,")
    assert sorted(read_tree(output, "system")) == [
        ("gdc02", "", DAY2 - 5.0),
        ("ldc01", "", DAY2 - 10.25),
    ]
    bad = subprocess.run(
        [*command, "--from", "last tuesday"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert bad.returncode != 0
    assert "not a time: 'last tuesday'" in bad.stderr


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"resolution": "7s"}, "export.resolution: expected 'raw' or a step of the archive ladder"),
        ({"hour": 24}, "export.hour: expected an hour of the day, 0 to 23 (UTC), got 24"),
        ({"enabled": "yes"}, "export.enabled: expected true or false"),
        ({"dir": "x"}, "export.dir: expected a known key"),
    ],
)
def test_export_config_is_checked_at_load(tmp_path, section, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_config(tmp_path, export=section)


def test_export_config_defaults(tmp_path):
    export = make_config(tmp_path).export
    assert (export.enabled, export.directory, export.hour, export.resolution) == (
        True,  # the permanent archive is on by default
        "archive",
        1,
        "raw",
    )
    assert export.min_free == 1_000_000_000
    assert make_config(tmp_path, export={"min_free": "500MB"}).export.min_free == 500_000_000
    assert make_config(tmp_path, export={"resolution": "1min"}).export.resolution == 60


@pytest.mark.integration
def test_a_progress_bar_on_a_terminal_and_none_in_a_pipe(tmp_path):
    config = make_config(tmp_path)
    journal_two_days(config)
    (tmp_path / "affair.toml").write_text("")
    command = [sys.executable, "-m", "affair", "export", "--config", str(tmp_path / "affair.toml")]
    command += ["--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "p.root")]
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    try:
        process = subprocess.Popen(command, stderr=follower, stdout=subprocess.PIPE, cwd=REPO)
        os.close(follower)
        seen = b""
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            seen += data
        assert process.wait(timeout=60) == 0
        process.stdout.close()
    finally:
        os.close(leader)
    assert b"export: 100%" in seen and b"8.00/8.00 [" in seen and b"samples/s]" in seen
    piped = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert piped.returncode == 0 and piped.stderr == ""


def test_an_unwritable_output_is_a_clear_error_and_leaves_no_temporary(tmp_path):
    config = make_config(tmp_path)
    journal_two_days(config)
    with pytest.raises(
        ExportError, match=f"cannot write {re.escape(str(tmp_path))}: Is a directory"
    ):
        export_root(config, tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_decoding_blobs_of_the_output_s_width_equals_the_cell_by_cell_way():
    """The BLOBs joined as the matrix (the usual case) give what filling cell by cell gives."""
    import numpy as np

    from affair.storage.journal_reader import Chunk, decode_values

    rows = [[1.0, np.nan, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0], [9.0, 10.0, 11.0]]
    blobs = [np.array(r, "<f8").tobytes() for r in rows]
    chunk = Chunk(
        series=np.arange(4),
        ts=np.arange(4.0),
        blobs=blobs,
        widths=np.array([len(r) for r in rows]),
    )
    in_order = np.array([0, 1, 2])
    same_width = np.array([0, 1, 3])  # rows of three values only: the joined BLOBs
    joined = decode_values(chunk, same_width, in_order, 3)
    assert not joined.flags.writeable  # a view of the BLOBs, not a copy
    np.testing.assert_array_equal(joined, [rows[0], rows[1], rows[3]])
    # a short row, or positions to other columns (columns[p]: where position p goes),
    # go cell by cell; NaN where nothing is
    np.testing.assert_array_equal(
        decode_values(chunk, np.arange(4), in_order, 3),
        [rows[0], rows[1], [7.0, 8.0, np.nan], rows[3]],
    )
    np.testing.assert_array_equal(
        decode_values(chunk, same_width, np.array([2, 0, -1]), 3),
        [[np.nan, np.nan, 1.0], [5.0, np.nan, 4.0], [10.0, np.nan, 9.0]],
    )
    # a value not exported: BLOBs wider than the output, cell by cell
    np.testing.assert_array_equal(
        decode_values(chunk, same_width, np.array([0, 1, -1]), 2),
        [[1.0, np.nan], [4.0, 5.0], [9.0, 10.0]],
    )
