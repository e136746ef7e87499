"""Delivery end to end: a recorder killed with SIGKILL loses nothing; a full buffer is reported.

Real recorder and collector processes on loopback, real RRDs; what the
collectors say they took is compared with the journal (the raw archive,
one row per sample) and with the RRD rows at the finest resolution.
"""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest
import rrdtool

from tests.conftest import REPO, HeldPort, wait_for, write_config

pytestmark = pytest.mark.integration

# How long the recorder stays dead: with one-second rows, 8 rows per host to resend
# and fill, and several reconnect attempts at the collectors' backoff cap of 2 s.
OUTAGE = 8

# One-second rows, so an outage of OUTAGE s is OUTAGE rows to fill; heartbeat 2 s.
ONE_SECOND = """
[recorder]
step = 1
heartbeat = 2
self_interval = 1

[archive]
ladder = ["1s:600", "1min:60"]

[collector]
interval = 1
resend_timeout = 1
backoff_cap = 2
buffer_seconds = {buffer_seconds}

[datasets.system.variables]
cpu_user = {{ type = "GAUGE", unit = "%", min = 0, max = 100 }}
load1 = {{ type = "GAUGE" }}
mem_free = {{ type = "GAUGE" }}
"""


def start_collector(config_path, endpoint, host, workdir):
    log = open(workdir / f"{host}.log", "w")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "affair.collectors.main",
            "--config",
            str(config_path),
            "--recorder",
            endpoint,
            "--host",
            host,
            "--interval",
            "1",
            "--stats-file",
            str(workdir / f"{host}.json"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


def stop_collectors(children):
    """SIGTERM (they flush and write their stats), then exit codes; none is left running."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    codes = []
    for child in children:
        try:
            codes.append(child.wait(timeout=30))
        except subprocess.TimeoutExpired:
            child.kill()
            codes.append(child.wait())
    return codes


def journal_rows(data_dir, host):
    """``[ts, ...]`` of every journaled sample of ``host``'s system dataset."""
    stamps = []
    for day in sorted((data_dir / "_journal").glob("*.sqlite")):
        with sqlite3.connect(day) as connection:
            stamps += [
                row[0]
                for row in connection.execute(
                    "SELECT samples.ts FROM samples JOIN series ON samples.series = series.id"
                    " WHERE series.host = ? AND series.dataset = 'system' ORDER BY samples.ts",
                    (host,),
                )
            ]
    return stamps


def last_update(path):
    try:
        return rrdtool.lastupdate(str(path))["date"].timestamp()
    except (rrdtool.OperationalError, FileNotFoundError):
        return 0


def written_and_held_back(data_dir, host, path, written=5):
    """True when ``host``'s first ``written`` seconds are in its RRD and newer samples are
    journaled (so acknowledged) but not yet written: held back for batching."""
    try:
        stamps = journal_rows(data_dir, host)
    except sqlite3.OperationalError:  # the day file is still being created
        return False
    last = last_update(path)  # whole seconds: the writer drops a timestamp's fraction
    return bool(stamps) and stamps[0] + written <= last < int(stamps[-1])


def rrd_max(path, variable, seconds=30):
    """The largest ``variable`` of ``path`` in the last ``seconds`` (MAX rows), or None."""
    end = int(time.time())
    try:
        (_, _, _), names, rows = rrdtool.fetch(
            str(path), "MAX", "-s", str(end - seconds), "-e", str(end)
        )
    except rrdtool.OperationalError:  # not created yet
        return None
    known = [row[names.index(variable)] for row in rows if row[names.index(variable)] is not None]
    return max(known, default=None)


def test_a_sigkilled_recorder_loses_no_sample_and_writes_none_twice(recorder, tmp_path):
    hosts = [f"node{i:02d}" for i in range(1, 6)]
    # RRD writes are held back 2 s for batching: at the kill, the last seconds
    # are acknowledged and journaled but not in the RRDs; the restart replays them.
    text = ONE_SECOND.format(buffer_seconds=600).replace(
        "self_interval = 1", "self_interval = 1\nwrite_delay = 2"
    )
    config_path = write_config(tmp_path, text, "affair.collectors.toml")
    data_dir = tmp_path / "data"
    first = recorder(text, data_dir=data_dir)
    endpoint = first.endpoint
    children = [start_collector(config_path, endpoint, host, tmp_path) for host in hosts]
    try:
        rrds = [data_dir / host / "system.rrd" for host in hosts]
        started = time.time()
        wait_for(
            lambda: all(last_update(p) > started + 2 for p in rrds),
            timeout=40,
            what="every collector's first rows",
        )
        wait_for(  # rows written, and more acked and held for batching when the kill comes
            lambda: all(
                written_and_held_back(data_dir, h, p) for h, p in zip(hosts, rrds, strict=True)
            ),
            what="rows written and acknowledged rows held back from the RRDs",
        )
        # SIGKILL to the recorder and its RRD writer child at once, as systemd's
        # KillMode=control-group or the OOM killer would: no flush, no goodbye.
        helpers = psutil.Process(first.process.pid).children(recursive=True)
        assert helpers  # the RRD writer (and multiprocessing's helper)
        for pid in [first.process.pid, *(h.pid for h in helpers)]:
            with contextlib.suppress(ProcessLookupError):  # a helper may go with its parent
                os.kill(pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        psutil.wait_procs(helpers, timeout=10)
        killed = time.time()
        port = HeldPort(endpoint)  # refused meanwhile, and nobody else takes it
        time.sleep(OUTAGE)  # the outage itself: the collectors buffer and retry
        port.release()
        restarted = time.time()
        second = recorder(text, data_dir=data_dir, endpoint=endpoint)
        wait_for(
            lambda: all(last_update(p) > restarted + 2 for p in rrds),
            timeout=60,
            what="the collectors to resend the outage and catch up",
        )
    finally:
        exit_codes = stop_collectors(children)
    assert exit_codes == [0] * len(hosts)
    assert second.terminate() == 0

    # rrdtool itself reads every file back (none was left corrupt by the SIGKILL)
    for path in sorted(data_dir.rglob("*.rrd")):
        check = subprocess.run(["rrdtool", "info", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, (path, check.stderr)

    outage = range(int(killed) + 1, int(restarted) + 1)
    assert len(outage) >= OUTAGE
    assert "replayed" in second.log()  # the held-back rows came from the journal
    for host, path in zip(hosts, rrds, strict=True):
        sent = json.loads((tmp_path / f"{host}.json").read_text())
        # every sample the collector took was acknowledged: none dropped, refused or left
        assert (sent["dropped"], sent["rejected"], sent["buffered"]) == (0, {}, 0), sent
        assert sent["acked"] == sent["submitted"], sent
        # ...and the raw archive holds each exactly once
        stamps = journal_rows(data_dir, host)
        assert len(stamps) == len(set(stamps)) == sent["submitted"], host
        # every second has its row at the finest resolution: before the kill
        # (held back, then replayed), during the outage (resent) and after
        seconds = range(int(stamps[0]) + 2, int(stamps[-1]))
        assert seconds[0] < outage[0] - 5 and seconds[-1] > outage[-1]
        (first_row, _, step), names, rows = rrdtool.fetch(
            str(path), "AVERAGE", "-r", "1", "-s", str(seconds[0] - 1), "-e", str(seconds[-1])
        )
        assert step == 1
        by_time = {first_row + step * (i + 1): row for i, row in enumerate(rows)}
        column = names.index("load1")
        missing = [t for t in seconds if by_time.get(t, (None,) * len(names))[column] is None]
        assert missing == [], f"{host}: no row for {len(missing)} seconds: {missing[:5]}"

    counts = json.loads((data_dir / "_state" / "metrics.json").read_text())
    # a sample reaching the writer twice would be refused there as not increasing
    assert counts.get("rej_not_increasing", 0) == 0
    assert counts["accepted"] >= 5 * OUTAGE  # the outage, resent by five collectors


def test_a_collector_past_its_buffer_drops_the_oldest_and_the_recorder_hears_of_it(
    recorder, tmp_path
):
    # A 3-sample buffer and a recorder that is away for about 8 seconds.
    text = ONE_SECOND.format(buffer_seconds=3)
    config_path = write_config(tmp_path, text, "affair.collectors.toml")
    port = HeldPort()  # refused until the recorder starts, and nobody else takes it
    endpoint = port.endpoint
    child = start_collector(config_path, endpoint, "node01", tmp_path)
    try:
        time.sleep(8)  # the recorder is away: the collector takes ~8 samples, keeps 3
        port.release()
        process = recorder(text, endpoint=endpoint)
        wait_for(
            lambda: last_update(process.data_dir / "node01" / "system.rrd") > time.time() - 2,
            timeout=30,
            what="the collector to deliver",
        )
    finally:
        assert stop_collectors([child]) == [0]  # it flushes, then writes its final counts
    sent = json.loads((tmp_path / "node01.json").read_text())
    assert sent["dropped"] >= 4  # ~8 samples taken while away, 3 kept
    assert sent["acked"] == sent["submitted"] - sent["dropped"]
    # the raw archive holds every sample the collector sent, each once: the acked ones,
    # and one it let go while in flight, when a tick came before the first acks after the
    # reconnect found its 3-sample buffer still full (the recorder had it all the same).
    # On a loaded machine an ack can take longer than the 1 s resend timeout: the
    # resent copies are in "sent" and are journaled once.
    journaled = journal_rows(process.data_dir, "node01")
    distinct_sent = sent["sent"] - sent["resends"]
    assert len(journaled) == len(set(journaled)) == distinct_sent >= sent["acked"]
    log = (tmp_path / "node01.log").read_text()
    assert "dropped the oldest unacknowledged sample" in log
    assert f"{sent['dropped']} dropped" in log  # the collector's stop line

    # the recorder's own metrics carry the collector's final count, and so do its own
    # samples (RRDs): the total in `affair`, and per sender in `delivery`
    metrics_file = process.data_dir / "_state" / "metrics.json"
    affair_rrd = process.data_dir / "recorder" / "affair.rrd"
    delivery_rrd = process.data_dir / "recorder" / "delivery.node01.rrd"

    def final_count_recorded():
        if not metrics_file.exists():  # written at the first self sample (then replaced)
            return False
        heard = json.loads(metrics_file.read_text())["sender_dropped"]
        return (
            heard
            == rrd_max(affair_rrd, "sender_dropped")
            == rrd_max(delivery_rrd, "dropped")
            == sent["dropped"]
        )

    wait_for(final_count_recorded, what="the recorder's samples of the final drop count")
    assert process.terminate() == 0
    counts = json.loads(metrics_file.read_text())
    assert counts["sender_dropped"] == sent["dropped"]
    assert rrd_max(affair_rrd, "sender_dropped") == sent["dropped"]
    assert rrd_max(delivery_rrd, "dropped") == sent["dropped"]
