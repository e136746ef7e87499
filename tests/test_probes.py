"""Probes: disks (canned mount table, real statvfs), net (canned counters), processes (real children)."""

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections import namedtuple
from types import SimpleNamespace

import psutil
import pytest
from affair.collectors.probes import make_probe, probe_class
from affair.collectors.probes.disks import DisksProbe, disk_values, mount_instance
from affair.collectors.probes.net import NetProbe
from affair.collectors.probes.processes import ProcessesProbe, scan_proc

from affair.config import DiskSettings, NetSettings, ProcessSelector, parse_config
from affair.errors import ConfigError
from tests.conftest import wait_for

Partition = namedtuple("Partition", "device mountpoint fstype opts")


# --- disks ---


@pytest.mark.parametrize(
    ("mountpoint", "instance"),
    [
        ("/", "root"),
        ("/var/log", "var_log"),
        ("/home", "home"),
        ("/mnt/data disk", "mnt_data_disk"),
        ("/media/usb.stick-1", "media_usb_stick-1"),
    ],
)
def test_mount_points_become_instance_names(mountpoint, instance):
    assert mount_instance(mountpoint) == instance


def test_odd_mount_points_still_get_valid_distinct_names():
    names = {mount_instance(p) for p in ("/---", "/a" * 40, "/a" * 41, "/ü")}
    assert len(names) == 4
    assert all(name and len(name) <= 40 for name in names)


def test_disk_values_are_computed_like_df():
    stats = os.statvfs_result((4096, 4096, 1000, 300, 250, 500, 100, 90, 0, 255))
    assert disk_values(stats) == {
        "used": 700 * 4096.0,
        "free": 250 * 4096.0,
        "size": 1000 * 4096.0,
        "used_pct": pytest.approx(100 * 700 / 950),
        "inodes_used": 400.0,
        "inodes_free": 90.0,
        "inodes_pct": pytest.approx(100 * 400 / 490),
    }
    no_inodes = os.statvfs_result((4096, 4096, 10, 5, 5, 0, 0, 0, 0, 255))
    assert disk_values(no_inodes)["inodes_pct"] is None


def test_disks_follow_the_mount_table(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text("")
    table = [
        Partition("/dev/sda1", str(data), "ext4", "rw"),
        Partition("tmpfs", "/run", "tmpfs", "rw"),  # excluded type
        Partition("/dev/loop0", "/snap/core/1", "squashfs", "ro"),  # excluded type and mount
        Partition("/dev/sda1", str(hosts_file), "ext4", "rw"),  # a file bind-mounted
        Partition("/dev/sdz", str(tmp_path / "gone"), "ext4", "rw"),  # statvfs fails
    ]
    probe = DisksProbe(DiskSettings(), partitions=lambda: table)
    instance = mount_instance(str(data))
    sample = probe.sample()
    assert list(sample) == [instance]
    expected = disk_values(os.statvfs(data))
    assert sample[instance]["size"] == expected["size"]
    assert 0 <= sample[instance]["used_pct"] <= 100
    # a disk mounted later appears; an unmounted one is no longer sent
    second = tmp_path / "second"
    second.mkdir()
    table.append(Partition("/dev/sdb1", str(second), "xfs", "rw"))
    assert set(probe.sample()) == {instance, mount_instance(str(second))}
    del table[0]
    assert set(probe.sample()) == {mount_instance(str(second))}


# --- net ---


def test_net_sends_raw_counters_per_interface():
    Io = namedtuple(
        "Io", "bytes_sent bytes_recv packets_sent packets_recv errin errout dropin dropout"
    )
    Link = namedtuple("Link", "isup duplex speed mtu")
    fake = SimpleNamespace(
        net_io_counters=lambda pernic: {
            "eth0": Io(10, 20, 1, 2, 0, 1, 3, 0),
            "eth0.100": Io(5, 6, 7, 8, 0, 0, 0, 0),
            "lo": Io(99, 99, 9, 9, 0, 0, 0, 0),
            "veth12ab": Io(1, 1, 1, 1, 0, 0, 0, 0),
        },
        net_if_stats=lambda: {
            "eth0": Link(True, 2, 1000, 1500),
            "eth0.100": Link(False, 0, 0, 1500),
        },
    )
    sample = NetProbe(NetSettings(), psutil_module=fake).sample()
    assert set(sample) == {"eth0", "eth0_100"}
    assert sample["eth0"] == {
        "bytes_in": 20.0,
        "bytes_out": 10.0,
        "packets_in": 2.0,
        "packets_out": 1.0,
        "errors_in": 0.0,
        "errors_out": 1.0,
        "drops_in": 3.0,
        "drops_out": 0.0,
        "up": 1.0,
        "speed": 1000.0,
    }
    assert sample["eth0_100"]["up"] == 0.0 and sample["eth0_100"]["speed"] is None


def test_net_on_this_machine_returns_valid_instances():
    sample = NetProbe(NetSettings(exclude=())).sample()
    assert sample  # at least the loopback interface
    assert all(values["bytes_in"] >= 0 for values in sample.values())


# --- processes ---


@pytest.fixture
def sleeper(tmp_path):
    """A real child process with a recognisable command line and a pid file."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time, sys; x = bytearray(30 << 20); time.sleep(60)",
            "tag-7f3a",
        ]
    )
    pidfile = tmp_path / "sleeper.pid"
    pidfile.write_text(f"{child.pid}\n")
    yield child, pidfile
    child.kill()
    child.wait()


@pytest.mark.integration
def test_processes_by_pidfile_and_cmdline(sleeper, tmp_path):
    child, pidfile = sleeper
    wait_for(lambda: psutil.Process(child.pid).memory_info().rss > 30 << 20, what="its 30 MB")
    probe = ProcessesProbe(
        [
            ProcessSelector("bypid", pidfile=str(pidfile)),
            ProcessSelector("bycmd", cmdline="tag-7f3a"),
            ProcessSelector("missing", pidfile=str(tmp_path / "none.pid")),
            ProcessSelector("nobody", name="no-such-process-name"),
        ]
    )
    first = probe.sample()
    for instance in ("bypid", "bycmd"):
        values = first[instance]
        assert values["alive"] == 1.0 and values["count"] == 1.0
        assert values["rss"] > 30 * 2**20
        assert values["threads"] >= 1 and values["open_files"] >= 3
        assert values["cpu"] is None  # first sight: no CPU figure yet, not a guess
    assert (
        first["missing"]
        == first["nobody"]
        == {
            "alive": 0.0,
            "count": 0.0,
            "cpu": None,
            "rss": None,
            "threads": None,
            "open_files": None,
        }
    )
    time.sleep(0.2)
    second = probe.sample()
    assert 0.0 <= second["bypid"]["cpu"] < 50.0  # it sleeps
    child.kill()
    child.wait()
    assert probe.sample()["bypid"]["alive"] == 0.0


def test_scan_proc_reads_a_canned_proc_tree(tmp_path):
    for pid, comm, cmdline in (
        (1, b"init\n", b"/sbin/init\0"),
        (42, b"affair\n", b"python\0-m\0affair\0record\0"),
    ):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "comm").write_bytes(comm)
        (tmp_path / str(pid) / "cmdline").write_bytes(cmdline)
    (tmp_path / "77").mkdir()  # vanished mid-scan: no files
    (tmp_path / "self").mkdir()
    found = sorted(scan_proc(str(tmp_path), need_cmdline=True))
    assert found == [(1, "init", "/sbin/init"), (42, "affair", "python -m affair record")]
    assert sorted(scan_proc(str(tmp_path))) == [(1, "init", ""), (42, "affair", "")]


@pytest.mark.integration
def test_processes_by_name_sum_every_match(tmp_path):
    program = tmp_path / "affsleep7f"  # a name no other process has
    shutil.copy("/bin/sleep", program)
    children = [subprocess.Popen([str(program), "30"]) for _ in range(2)]
    try:
        probe = ProcessesProbe([ProcessSelector("sleepers", name="affsleep7f")])
        # until both have exec'd, a child still bears its parent's name
        values = wait_for(
            lambda: (lambda v: v if v["count"] == 2.0 else None)(probe.sample()["sleepers"]),
            timeout=10,
            what="both children",
        )
        assert values["alive"] == 1.0
        assert values["threads"] == 2.0
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_process_selectors_are_validated_in_config():
    config = parse_config(
        {
            "collector": {
                "processes": [
                    {"name": "sshd"},
                    {"pidfile": "/run/nginx.pid"},
                    {"instance": "rec", "cmdline": "affair record"},
                ]
            }
        }
    )
    assert [p.instance for p in config.collector.processes] == ["sshd", "nginx", "rec"]
    for entry, key in (
        ({"name": "a", "pidfile": "/b"}, "collector.processes[0]"),
        ({}, "collector.processes[0]"),
        ({"name": "a", "instance": "../x"}, "collector.processes[0].instance"),
        ({"name": "a", "colour": "red"}, "collector.processes[0].colour"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_config({"collector": {"processes": [entry]}})
        assert caught.value.key == key
    with pytest.raises(ConfigError, match="distinct instance names"):
        parse_config({"collector": {"processes": [{"name": "a"}, {"cmdline": "a"}]}})
    with pytest.raises(ConfigError) as caught:
        parse_config({"collector": {"disks": {"exclude_fstypes": "tmpfs"}}})
    assert caught.value.key == "collector.disks.exclude_fstypes"


# --- adding a probe ---


def test_a_probe_of_your_own_is_loaded_from_the_config(tmp_path, monkeypatch):
    (tmp_path / "siteprobes.py").write_text(
        textwrap.dedent(
            """
            class Temperature:
                name = "temperature"
                variables = ("cpu",)

                def sample(self):
                    return {"": {"cpu": 42.0}}

            class Broken:
                name = "bad name"
                variables = ("x",)

                def sample(self):
                    return {}

            class NoVariables:
                name = "novars"
                def sample(self):
                    return {}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = make_probe("siteprobes:Temperature", parse_config({}).collector)
    assert (probe.name, probe.sample()) == ("temperature", {"": {"cpu": 42.0}})
    with pytest.raises(ValueError, match="'name' must be a valid dataset name"):
        probe_class("siteprobes:Broken")
    with pytest.raises(ValueError, match="'variables' must be"):
        probe_class("siteprobes:NoVariables")
    with pytest.raises(ValueError, match="cannot load it"):
        probe_class("siteprobes:Missing")
    with pytest.raises(ValueError, match="unknown probe 'sytem'"):
        probe_class("sytem")


@pytest.mark.integration
def test_collector_lists_its_probes():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "affair.collectors.main",
            "--probes",
            "system,disks,net,processes",
            "--list-probes",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["system", "disks", "net", "processes"]
    assert lines[3] == "processes: alive, count, cpu, rss, threads, open_files"
