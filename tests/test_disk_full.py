"""A full disk under the data dir, for real: an 8 MB tmpfs that fills up, then has room again."""

import json
import subprocess
import time

import pytest
from affair.collectors.sender import Sender

from affair.config import load_config
from affair.outputs.status import status_report
from affair.storage.journal import read_after
from affair.storage.rrd_store import RrdStore
from tests.conftest import BASE_CONFIG, wait_for

pytestmark = pytest.mark.integration

RULES = """
[[status.rules]]
variable = "affair.disk_full"
op = ">="
red = 1
label = "data disk full"
"""
CONFIG = (
    BASE_CONFIG.replace("step = 10", "step = 1\nself_interval = 1")
    + RULES
    + """
[archive]
ladder = ["1s:3600"]

[export]
enabled = false  # 8 MB is far below the permanent archive's free-space floor (its own tests)
"""
)


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "data"  # the data dir itself: the recorder's log stays outside
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {result.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_up(path):
    """Write ``path`` until the file system refuses another byte; return its size."""
    written = 0
    with open(path, "wb", buffering=0) as handle:
        for block in (1 << 20, 1 << 16, 1 << 12, 1 << 9):
            try:
                while True:
                    written += handle.write(b"\1" * block)
            except OSError:
                pass
    return written


def metrics(data_dir):
    path = data_dir / "_state" / "metrics.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def test_a_full_disk_pauses_acks_and_loses_nothing_once_space_is_back(recorder, small_disk):
    process = recorder(CONFIG, data_dir=small_disk)
    data_dir = process.data_dir
    sender = Sender(process.endpoint, "good", resend_timeout=1, backoff_cap=1)
    base = int(time.time()) - 1800
    submitted = []

    def submit(count):
        for _ in range(count):
            ts = float(base + len(submitted))  # one a step: every row known
            sender.submit(ts, "good", "system", "", {"load1": float(len(submitted))})
            submitted.append(ts)

    filler = small_disk / "filler"  # not a host: hosts are directories
    try:
        submit(5)
        assert sender.flush(timeout=30)
        wait_for(
            lambda: (
                (data_dir / "good" / "system.rrd").exists()
                and (data_dir / "recorder" / "affair.rrd").exists()
            ),
            what="the RRDs",
        )
        fill_up(filler)
        # samples go on arriving; the journal needs pages it cannot have
        deadline = time.monotonic() + 60
        while metrics(data_dir).get("disk_full") != 1 and time.monotonic() < deadline:
            submit(20)
            sender.pump(0.2)
        assert metrics(data_dir).get("disk_full") == 1, process.log()
        # the pages say so: the recorder's own host is red
        config = load_config(process.config_path)

        def own_host_is_red():
            lines, code = status_report(config, data_dir)
            return code == 1 and any(
                line.startswith(f"{config.recorder.self_host} ")
                and "red" in line
                and "data disk full" in line
                for line in lines
            )

        wait_for(own_host_is_red, what="the recorder's host to turn red")
        assert sender.buffered > 0  # not acknowledged: the collector keeps them
        acked_while_full = sender.stats.acked
        submit(10)
        sender.pump(2.0)
        assert sender.stats.acked == acked_while_full
        # no half-written RRD or journal: only whole files, nothing temporary
        leftovers = [
            p.name
            for p in data_dir.rglob("*")
            if p.is_file()
            and p != filler
            and p.suffix not in (".rrd", ".sqlite", ".json", ".lock", ".watermark")
            and not p.name.endswith(("-wal", "-shm"))
        ]
        assert leftovers == [], leftovers
        log = process.log()
        assert log.count("the disk of") == 1, log  # one clear line, not one per attempt

        filler.unlink()
        wait_for(lambda: metrics(data_dir).get("disk_full") == 0, timeout=30, what="resuming")
        assert sender.flush(timeout=60), "the buffered samples were not all acknowledged"
        assert sender.stats.dropped == 0 and sender.stats.rejected == {}
        wait_for(lambda: status_report(config, data_dir)[1] == 0, what="red to clear")
    finally:
        sender.close()
        filler.unlink(missing_ok=True)
    assert process.terminate() == 0
    log = process.log()
    assert "space is back" in log and "Traceback" not in log

    # every sample acknowledged is in the raw archive and in the RRD
    journaled = sorted(
        ts for _, ts, host, *_ in read_after(data_dir / "_journal", None) if host == "good"
    )
    assert journaled == submitted
    store = RrdStore(config, data_dir)
    result = store.fetch(store.path("good", "system"), "AVERAGE", submitted[0] - 1, submitted[-1])
    stored = dict(zip(result.times, result.columns["load1"], strict=True))
    assert [stored.get(int(ts)) for ts in submitted] == [float(i) for i in range(len(submitted))]
