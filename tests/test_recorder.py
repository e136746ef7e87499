"""The recorder as a real process, fed over real ZeroMQ sockets on loopback."""

import json
import subprocess
import sys
import time

import msgpack
import pytest
import rrdtool
import zmq
from affair.collectors import wire
from affair.collectors.sender import Sender

from tests.conftest import BASE_CONFIG, REPO, wait_for

pytestmark = pytest.mark.integration


def grid_start(seconds_ago=900, step=60):
    """A recent multiple of ``step``: within the recorder's accepted age, before now."""
    return int(time.time() - seconds_ago) // step * step


def send(endpoint, samples, name="test-sender"):
    sender = Sender(endpoint, name=name, resend_timeout=2)
    for sample in samples:
        sender.submit(*sample)
    assert sender.flush(timeout=20), f"{sender.buffered} samples not acknowledged"
    sender.close()
    return sender.stats


def fetch(path, cf, start, end, resolution=None):
    args = [str(path), cf, "-s", str(start), "-e", str(end)]
    if resolution:
        args += ["-r", str(resolution)]
    (first, _, step), names, rows = rrdtool.fetch(*args)
    return step, {
        first + step * (i + 1): dict(zip(names, row, strict=True)) for i, row in enumerate(rows)
    }


def metrics(data_dir):
    return json.loads((data_dir / "_state" / "metrics.json").read_text())


def test_min_avg_max_rows_equal_what_was_sent(recorder):
    process = recorder()
    base = grid_start()
    values = {
        "ldc01": [3, 9, 6, 1, 7, 4, 5, 8, 2, 6, 6, 0],
        "gdc01": [50, 60, 70, 80, 90, 100, 0, 10, 20, 30, 40, 50],
    }
    samples = [
        (float(base + 10 * (i + 1)), host, "system", "", {"cpu_user": float(v)})
        for i in range(12)
        for host, series in values.items()
        for v in [series[i]]
    ]
    stats = send(process.endpoint, samples)
    assert (stats.acked, stats.rejected_total, stats.dropped) == (24, 0, 0)
    assert process.terminate() == 0  # SIGTERM flushes every pending row
    for host, series in values.items():
        path = process.data_dir / host / "system.rrd"
        for cf in ("AVERAGE", "MIN", "MAX"):
            step, rows = fetch(path, cf, base, base + 120)
            assert step == 10
            assert [rows[base + 10 * (i + 1)]["cpu_user"] for i in range(12)] == [
                float(v) for v in series
            ]
        for minute, chunk in ((base + 60, series[:6]), (base + 120, series[6:])):
            expected = {"AVERAGE": sum(chunk) / 6, "MIN": min(chunk), "MAX": max(chunk)}
            for cf, value in expected.items():
                step, rows = fetch(path, cf, base, base + 120, resolution=60)
                assert step == 60
                assert rows[minute]["cpu_user"] == pytest.approx(value), (host, cf, minute)
    counts = metrics(process.data_dir)
    assert counts["accepted"] == 24
    assert counts["written"] >= 24  # plus the recorder's own samples


def test_sigterm_flushes_rows_held_for_batching(recorder):
    process = recorder(BASE_CONFIG.replace("step = 10", "step = 10\nwrite_delay = 3600"))
    base = grid_start()
    send(
        process.endpoint,
        [(float(base + 10 * i), "ldc01", "system", "", {"load1": float(i)}) for i in range(1, 7)],
    )
    # held for an hour, flushed at SIGTERM: a recorder that waited for the delay instead
    # would outlast terminate()'s 15 s wait (TimeoutExpired), one that dropped them
    # would leave the rows unknown
    assert process.terminate() == 0
    _, rows = fetch(process.data_dir / "ldc01" / "system.rrd", "AVERAGE", base, base + 60)
    assert [rows[base + 10 * i]["load1"] for i in range(1, 7)] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_bad_input_is_rejected_counted_and_the_recorder_keeps_serving(recorder):
    process = recorder()
    context = zmq.Context.instance()
    raw = context.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(process.endpoint)
    raw.send(b"\x00\xffgarbage that is not msgpack")
    raw.send(msgpack.packb([99, 1, "future-sender", []]))
    now = time.time()
    bad = [
        (1, now, "../../etc", "system", "", {"cpu_user": 1.0}, 1),
        (2, now, "ldc01", "system", "", {"cpu_user": float("inf")}, 1),
        (3, now, "ldc01", "system", "", {"cpu_user": "12"}, 1),
        (4, now + 86400, "ldc01", "system", "", {"cpu_user": 1.0}, 1),
        (5, now, "ldc\x1b[31m", "system", "", {"cpu_user": 1.0}, 1),
    ]
    raw.send(wire.encode_data("hostile", bad))
    assert raw.poll(10_000), "no ack for the hostile batch"
    acked, rejected = wire.decode_ack(raw.recv())
    assert acked == []
    assert sorted(rejected) == [(1, "name"), (2, "value"), (3, "value"), (4, "future"), (5, "name")]
    raw.close()
    # ...and a well-behaved sender is still served, NaN stored as unknown.
    base = grid_start()
    stats = send(
        process.endpoint,
        [
            (float(base + 10), "ldc02", "system", "", {"cpu_user": 5.0, "load1": float("nan")}),
            (float(base + 20), "ldc02", "system", "", {"cpu_user": 6.0, "load1": 1.0}),
        ],
    )
    assert stats.acked == 2
    assert process.process.poll() is None
    assert process.terminate() == 0
    counts = metrics(process.data_dir)
    assert counts["rej_undecodable"] == 1
    assert counts["rej_version"] == 1
    assert counts["rej_name"] == 2
    assert counts["rej_value"] == 2
    assert counts["rej_future"] == 1
    assert not (process.data_dir.parent / "etc").exists()
    hosts = {p.name for p in process.data_dir.iterdir() if not p.name.startswith("_")}
    assert hosts - {"recorder"} == {
        "ldc02"
    }  # the recorder's own dir appears once it has sampled itself
    _, rows = fetch(process.data_dir / "ldc02" / "system.rrd", "AVERAGE", base, base + 20)
    assert (rows[base + 10]["cpu_user"], rows[base + 10]["load1"]) == (5.0, None)
    log = process.log()
    assert "rejected (undecodable) from" in log
    assert "rejected (name) from hostile: host '../../etc'" in log


def test_undeclared_data_follows_the_config_switch(recorder, tmp_path):
    base = grid_start()
    sample = [(float(base + 10), "ldc01", "daq", "", {"events": 10.0})]
    accepting = recorder()
    assert send(accepting.endpoint, sample).acked == 1
    accepting.terminate()
    info = rrdtool.info(str(accepting.data_dir / "ldc01" / "daq.rrd"))
    assert info["ds[events].type"] == "GAUGE"

    strict = recorder(
        BASE_CONFIG.replace("step = 10", "step = 10\naccept_undeclared = false"),
        data_dir=tmp_path / "strict",
    )
    stats = send(
        strict.endpoint, sample + [(float(base + 10), "ldc01", "system", "", {"nosuch": 1.0})]
    )
    assert stats.rejected == {"undeclared": 2}
    strict.terminate()
    assert metrics(strict.data_dir)["rej_undeclared"] == 2
    assert not (strict.data_dir / "ldc01").exists()


def test_per_host_series_cap(recorder):
    process = recorder(BASE_CONFIG.replace("step = 10", "step = 10\nmax_series_per_host = 3"))
    base = grid_start()
    samples = [(float(base + 10), "ldc01", "disks", f"d{i}", {"used": 1.0}) for i in range(5)]
    stats = send(process.endpoint, samples)
    assert (stats.acked, stats.rejected) == (3, {"series_cap": 2})
    process.terminate()
    assert len(list((process.data_dir / "ldc01").glob("*.rrd"))) == 3
    assert metrics(process.data_dir)["rej_series_cap"] == 2


def test_a_resent_sample_is_acked_again_and_written_once(recorder):
    process = recorder()
    base = grid_start()
    sample = (float(base + 10), "ldc01", "system", "", {"cpu_user": 1.0})
    assert send(process.endpoint, [sample]).acked == 1
    assert send(process.endpoint, [sample], name="again").acked == 1
    process.terminate()
    counts = metrics(process.data_dir)
    assert (counts["accepted"], counts["duplicates"], counts.get("rej_not_increasing", 0)) == (
        1,
        1,
        0,
    )


def test_a_second_recorder_on_the_same_data_dir_refuses(recorder):
    first = recorder()
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "affair",
            "record",
            "--config",
            str(first.config_path),
            "--data-dir",
            str(first.data_dir),
            "--listen",
            "tcp://127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    # One line, as for any of our errors; the first recorder carries on.
    assert second.returncode == 2
    assert second.stderr.splitlines() == [
        f"affair record: another recorder (pid {first.process.pid}) is using {first.data_dir}"
    ]
    assert first.process.poll() is None


def test_the_recorder_records_its_own_health(recorder):
    process = recorder(BASE_CONFIG.replace("step = 10", "step = 10\nself_interval = 1"))
    base = grid_start()
    send(
        process.endpoint,
        [(float(base + 10 * i), "ldc01", "system", "", {"cpu_user": 1.0}) for i in range(1, 4)],
    )
    path = process.data_dir / "recorder" / "affair.rrd"
    wait_for(path.exists, what="the recorder's own RRD")
    wait_for(
        lambda: (process.data_dir / "recorder" / "delivery.test-sender.rrd").exists(),
        what="the per-sender delivery RRD",
    )
    process.terminate()
    info = rrdtool.info(str(path))
    for name in (
        "received",
        "written",
        "acks",
        "resends",
        "queue_depth",
        "write_latency",
        "delivery_avg",
        "rej_name",
        "rej_future",
        "rej_series_cap",
    ):
        assert f"ds[{name}].type" in info, name
    assert info["ds[received].type"] == "DERIVE"
    last = rrdtool.lastupdate(str(process.data_dir / "recorder" / "delivery.test-sender.rrd"))["ds"]
    assert last["samples"] == 3.0
    assert last["latency_avg"] > 60  # the samples were stamped minutes ago
