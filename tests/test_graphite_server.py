"""The Graphite listener for real: TCP on loopback, a recorder process, RRD files."""

import contextlib
import socket
import subprocess
import sys
import threading
import time

import pytest

from affair.config import parse_config
from affair.ingest.graphite_server import GraphiteListener
from affair.storage.rrd_store import RrdStore
from tests.conftest import wait_for, write_config

pytestmark = pytest.mark.integration

FAST_CONFIG = """
[recorder]
step = 1
self_interval = 1

[archive]
ladder = ["1s:900"]

[graphite]
merge_seconds = 1
"""


def send_lines(port, lines):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))


def fetch(config, data_dir, host, dataset, instance, first, last):
    """Rows labelled ``first`` to ``last`` (interval ends) as {time: (values...)}."""
    store = RrdStore(config, data_dir)
    result = store.fetch(store.path(host, dataset, instance), "AVERAGE", first - 1, last)
    rows = zip(*(result.columns[name] for name in result.names), strict=True)
    return {t: row for t, row in zip(result.times, rows, strict=True) if first <= t <= last}


def test_a_graphite_stream_lands_in_the_right_rrds(recorder, tmp_path):
    process = recorder(FAST_CONFIG, extra_args=["--graphite", "0"])
    port = process.graphite_port()
    base = int(time.time()) - 60
    good, bad = [], []
    for i in range(6):
        t = base + i
        good += [
            f"node01.cpu.percent-user {10 + i} {t}",
            f"node01.cpu.percent-system {20 + i} {t}",
            f"node01.memory.memory-used {1000000 + i} {t}",
            f"node02.interface-eth0.if_octets.rx {500 + i} {t}",
        ]
    bad = [
        "garbage",  # one field
        "node01.cpu.percent-user twelve 1700000000",  # value
        "node01.cpu.percent-user 1 yesterday",  # timestamp
        "node01.cpu.percent-user inf " + str(base),  # value
        "../../etc.passwd 1 " + str(base),  # unmatched (empty segments)
        "_state.cpu.percent-user 1 " + str(base),  # our own directory
        "%2F%2Fetc.cpu.percent-user 1 " + str(base),  # name: % is no host character
        "x" * 2000 + " 1 1",  # too long
        "node01.cpu.percent-user 1 " + str(base + 10**6),  # future
    ]
    stream = []
    for index, line in enumerate(good):  # bad lines scattered through the good ones
        stream.append(line)
        if index % 3 == 0 and bad:
            stream.append(bad.pop())
    stream += bad
    # two connections: lines of one series and timestamp may come on either
    send_lines(port, stream[: len(stream) // 2])
    send_lines(port, stream[len(stream) // 2 :])

    data_dir = process.data_dir
    cpu_rrd = data_dir / "node01" / "cpu.rrd"
    wait_for(lambda: cpu_rrd.exists() and (data_dir / "node02" / "interface.eth0.rrd").exists())
    config = parse_config({"recorder": {"step": 1}, "archive": {"ladder": ["1s:900"]}})

    series = [("node01", "cpu", ""), ("node01", "memory", ""), ("node02", "interface", "eth0")]

    def last_row(host, dataset, instance):
        if not RrdStore(config, data_dir).path(host, dataset, instance).exists():
            return None
        rows = fetch(config, data_dir, host, dataset, instance, base, base + 5)
        return rows.get(base + 5, (None,))[0]

    def last_rows_written():  # each series is a file of its own, written on its own
        return all(last_row(*each) is not None for each in series)

    wait_for(last_rows_written, what="the last row of every series")
    cpu = fetch(config, data_dir, "node01", "cpu", "", base, base + 5)
    assert cpu == {base + i: (10.0 + i, 20.0 + i) for i in range(6)}
    memory = fetch(config, data_dir, "node01", "memory", "", base, base + 5)
    assert memory == {base + i: (1000000.0 + i,) for i in range(6)}
    rx = fetch(config, data_dir, "node02", "interface", "eth0", base, base + 5)
    assert rx == {base + i: (500.0 + i,) for i in range(6)}

    # nothing escaped the data directory, and nothing but our hosts was created
    assert not (tmp_path / "etc").exists()
    hosts = sorted(p.name for p in data_dir.iterdir() if not p.name.startswith("_"))
    assert hosts == ["node01", "node02", "recorder"]
    assert sorted(p.name for p in (data_dir / "node01").iterdir()) == ["cpu.rrd", "memory.rrd"]

    # every bad line was counted and logged with its reason; the recorder is still serving
    log = wait_for(lambda: "graphite future" in process.log() and process.log())
    for reason, count in (
        ("fields", 1),
        ("value", 2),
        ("timestamp", 1),
        ("unmatched", 1),
        ("name", 2),
        ("too_long", 1),
        ("future", 1),
    ):
        assert log.count(f"rejected (graphite {reason})") == count, reason
    assert process.process.poll() is None
    send_lines(port, [f"node03.cpu.percent-user 42 {base}"])
    wait_for(lambda: (data_dir / "node03" / "cpu.rrd").exists(), what="a later connection served")
    assert process.terminate() == 0


@pytest.mark.parametrize("busy", ["graphite", "recorder"])
def test_a_port_in_use_is_a_one_line_error(busy, tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    if busy == "graphite":
        listen, extra, where = (
            "tcp://127.0.0.1:*",  # any free port: ZeroMQ picks one as it binds
            ["--graphite", str(port)],
            f"graphite 127.0.0.1:{port}",
        )
    else:
        listen, extra, where = f"tcp://127.0.0.1:{port}", [], f"tcp://127.0.0.1:{port}"
    try:
        config_path = write_config(tmp_path, FAST_CONFIG)
        result = subprocess.run(
            [sys.executable, "-m", "affair", "record", "--config", str(config_path)]
            + ["--listen", listen, "--data-dir", str(tmp_path / "data"), *extra],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        holder.close()
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"affair record: cannot listen on {where}: Address already in use"
        " (is another recorder running?)"
    )
    assert "Traceback" not in result.stderr


def _listener(**graphite):
    config = parse_config(
        {
            "recorder": {"step": 1, "self_interval": 3600},
            "archive": {"ladder": ["1s:900"]},
            "graphite": {"listen": "127.0.0.1:0", **graphite},
        }
    )
    return GraphiteListener(config.graphite, config).start()


def test_a_fast_client_is_slowed_and_does_not_stall_another():
    rate = 2000
    listener = _listener(lines_per_second=rate, merge_seconds=0)
    port = listener.address[1]
    base = int(time.time()) - 3600
    total = 200_000  # 100 s worth at the allowed rate, more than the kernel buffers hold
    flood = "".join(f"flood.cpu.percent-user {i % 100} {base + i}\n" for i in range(total))

    def fast_client():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
                connection.sendall(flood.encode())
        except OSError:
            pass  # the listener was stopped first: expected

    flooder = threading.Thread(target=fast_client, daemon=True)
    started = time.monotonic()
    flooder.start()
    samples = []
    try:
        wait_for(lambda: listener.counts["lines"] > rate, what="the flood to start")
        send_lines(port, [f"quiet.memory.memory-used 7 {base}"])

        def quiet_arrived():
            samples.extend(listener.take())
            return any(s.host == "quiet" for s in samples)

        wait_for(quiet_arrived, timeout=5, what="the quiet client's sample")
        elapsed = time.monotonic() - started
        lines_so_far = listener.counts["lines"]
        assert lines_so_far < total, "the flood went through unthrottled"
        # one second of credit, plus what one read can hold (64 KiB of ~40-byte lines)
        assert lines_so_far <= rate * (elapsed + 1) + 2000, (lines_so_far, elapsed)
        assert listener.counts["throttled"] > 0
        quiet = next(s for s in samples if s.host == "quiet")
        assert (quiet.dataset, quiet.values) == ("memory", {"memory_used": 7.0})
    finally:
        listener.stop()
    flooder.join(5)


def test_clients_outside_allow_are_refused():
    listener = _listener(allow=["10.0.0.0/8"])
    try:
        with socket.create_connection(("127.0.0.1", listener.address[1]), timeout=5) as c:
            c.sendall(b"n1.cpu.percent-user 1 N\n")
            with contextlib.suppress(ConnectionResetError):  # reset: it had unread data
                assert c.recv(10) == b""  # closed without a word
        wait_for(lambda: listener.counts["refused"] == 1)
        assert listener.counts["lines"] == 0
    finally:
        listener.stop()
    assert listener.take() == []


def test_stop_passes_on_what_is_held():
    listener = _listener(merge_seconds=3600)
    try:
        send_lines(listener.address[1], ["n1.cpu.percent-user 5 N", "n1.cpu.percent-idle 95 N"])
        wait_for(lambda: listener.counts["lines"] == 2)
        assert listener.take() == []  # held for merging
    finally:
        listener.stop()
    (sample,) = listener.take()
    assert sample.values == {"percent_user": 5.0, "percent_idle": 95.0}
