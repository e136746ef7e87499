"""Through a real recorder: instances that come and go, and counters that reset."""

import subprocess
import sys
import textwrap
import threading
import time
from collections import namedtuple

import pytest
from affair.collectors.collector import Collector
from affair.collectors.probes.disks import DisksProbe, mount_instance
from affair.collectors.sender import Sender

from affair.config import DiskSettings, parse_config
from affair.storage.rrd_store import RrdStore
from tests.conftest import wait_for
from tests.test_client import journal_rows

pytestmark = pytest.mark.integration

Partition = namedtuple("Partition", "device mountpoint fstype opts")

CONFIG = """
[recorder]
step = 1

[archive]
ladder = ["1s:900"]

[datasets.disks.variables]
used     = { type = "GAUGE", min = 0 }
free     = { type = "GAUGE", min = 0 }
size     = { type = "GAUGE", min = 0 }
used_pct = { type = "GAUGE", min = 0, max = 100 }

[datasets.ctr.variables]
derived = { type = "DERIVE", min = 0 }
counted = { type = "COUNTER", max = 1000000 }
wild    = { type = "COUNTER" }
"""


def store_for(data_dir):
    return RrdStore(
        parse_config({"recorder": {"step": 1}, "archive": {"ladder": ["1s:900"]}}), data_dir
    )


def test_a_disk_appearing_mid_run_gets_its_rrd_and_one_leaving_goes_stale(recorder, tmp_path):
    process = recorder(CONFIG)
    first, second = tmp_path / "disk1", tmp_path / "disk2"
    first.mkdir()
    second.mkdir()
    table = [Partition("/dev/sda1", str(first), "ext4", "rw")]
    probe = DisksProbe(DiskSettings(), partitions=lambda: list(table))
    sender = Sender(process.endpoint, name="node07", resend_timeout=1)
    collector = Collector(sender, [probe], "node07", interval=1)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,))
    thread.start()
    store = store_for(process.data_dir)
    first_rrd = store.path("node07", "disks", mount_instance(str(first)))
    second_rrd = store.path("node07", "disks", mount_instance(str(second)))
    try:
        wait_for(first_rrd.exists, what="the first disk's RRD")
        assert not second_rrd.exists()
        table.append(Partition("/dev/sdb1", str(second), "xfs", "rw"))  # mounted mid-run
        wait_for(second_rrd.exists, what="the new disk's RRD")
        table.pop(0)  # the first is unmounted
        ticks = collector.ticks
        wait_for(lambda: collector.ticks >= ticks + 3, what="three more ticks")
    finally:
        stop.set()
        thread.join(15)
        sender.close()
    wait_for(lambda: store.last_update(second_rrd) >= int(time.time()) - 2, what="the last write")
    # the unmounted disk's file stays, no longer updated: stale, not an error
    assert store.last_update(first_rrd) <= store.last_update(second_rrd) - 2
    end = store.last_update(second_rrd)
    rows = store.fetch(second_rrd, "AVERAGE", end - 3, end)
    assert set(rows.columns["size"][:3]) == {
        float(probe.sample()[mount_instance(str(second))]["size"])
    }
    assert collector.sender.stats.rejected_total == 0
    assert "ERROR" not in process.log() and "Traceback" not in process.log()


def test_a_counter_reset_is_an_unknown_slot_not_a_spike(recorder):
    process = recorder(CONFIG)
    base = int(time.time()) - 120
    sender = Sender(process.endpoint, name="node08")
    counter = 10**9  # a counter that has run a while: the reset drops it far
    for t in range(base, base + 12):
        if t == base + 6:
            counter = 0  # the application restarted (or a 32-bit counter wrapped)
        values = {"derived": counter, "counted": counter, "wild": counter}
        sender.submit(float(t), "node08", "ctr", "", values)
        counter += 1000  # 1000 per second
    assert sender.flush(10)
    sender.close()
    store = store_for(process.data_dir)
    path = store.path("node08", "ctr")
    wait_for(lambda: path.exists() and store.last_update(path) == base + 11, what="all rows")
    rows = store.fetch(path, "AVERAGE", base, base + 11)
    assert rows.times[:11] == list(range(base + 1, base + 12))
    # DERIVE, min 0: the slot of the reset is unknown, its neighbours the true rate
    assert rows.columns["derived"][:11] == [1000.0] * 5 + [None] + [1000.0] * 5
    # COUNTER with a max: the "wrap" it assumes is beyond the max, so also unknown
    assert rows.columns["counted"][:11] == [1000.0] * 5 + [None] + [1000.0] * 5
    # COUNTER without a max: the spike the config's advice is there to prevent
    assert rows.columns["wild"][5] > 1e9


def test_the_collector_process_sends_every_probe(recorder, tmp_path):
    config = CONFIG + textwrap.dedent(
        """
        [collector]
        probes = ["system", "disks", "net", "processes"]

        [collector.net]
        exclude = []

        [[collector.processes]]
        instance = "recorder"
        cmdline = "affair record"
        """
    )
    process = recorder(config)
    config_path = process.config_path
    result = subprocess.run(
        [sys.executable, "-m", "affair.collectors.main", "--config", str(config_path)]
        + ["--recorder", process.endpoint, "--host", "node09", "--interval", "1", "--count", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    series = {}
    for _, _, host, dataset, instance, values in journal_rows(process.data_dir):
        if host == "node09":
            series.setdefault(dataset, {})[instance] = values
    # a container whose only file systems are overlays has no disk to report
    has_disks = bool(DisksProbe(DiskSettings()).sample())
    assert set(series) == {"system", "net", "processes"} | ({"disks"} if has_disks else set())
    assert "lo" in series["net"] and series["net"]["lo"]["bytes_in"] >= 0
    assert all(v["size"] > 0 for v in series.get("disks", {}).values())
    recorder_values = series["processes"]["recorder"]
    assert recorder_values["alive"] == 1.0 and recorder_values["rss"] > 10 * 2**20
    assert "ERROR" not in result.stderr
