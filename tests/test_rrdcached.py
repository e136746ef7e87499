"""rrdcached in the data path: a real daemon on a unix socket, started and killed per test.

The daemon runs with ``-w 3600`` so it writes nothing by itself during a
test: a row is on disk only when something flushed it, which is what lets
these tests tell "held by the daemon" from "in the file".
"""

import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import rrdtool
from affair.collectors.sender import Sender

from affair.config import load_config, parse_config
from affair.errors import StoreError
from affair.outputs.graph_paths import node_graph_path
from affair.outputs.plot.chart import build_chart
from affair.outputs.plot.plan import GraphJob
from affair.outputs.plot.run import run_plot
from affair.storage.rrd_store import RrdStore
from tests.conftest import BASE_CONFIG, REPO, wait_for, write_config

pytestmark = pytest.mark.integration

RRDCACHED = shutil.which("rrdcached") or "/usr/bin/rrdcached"


class Rrdcached:
    """``rrdcached -g`` on a unix socket, restricted (-B) to one data dir."""

    def __init__(self, data_dir, run_dir, journal=True, tcp=False):
        self.data_dir = Path(os.path.realpath(data_dir))  # -b must be free of symlinks
        self.run_dir = Path(run_dir)  # short: a unix socket path has 108 bytes at most
        self.journal = journal
        self.socket_path = self.run_dir / "rrdcached.sock"
        self.address = f"127.0.0.1:{free_port()}" if tcp else f"unix:{self.socket_path}"
        self.process = None
        self._log = None

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        journal = ["-j", str(self.run_dir / "journal")] if self.journal else []
        (self.run_dir / "journal").mkdir(exist_ok=True)
        self._log = open(self.run_dir / "rrdcached.log", "a")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [RRDCACHED, "-g", "-l", self.address, "-b", str(self.data_dir), "-B", *journal]
            + ["-w", "3600", "-z", "1800", "-f", "7200", "-p", str(self.run_dir / "pid")],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._answers, timeout=10, what="rrdcached to listen")
        return self

    def _answers(self):
        assert self.process.poll() is None, (self.run_dir / "rrdcached.log").read_text()
        unix = self.address.startswith("unix:")
        with socket.socket(socket.AF_UNIX if unix else socket.AF_INET) as probe:
            try:
                host, _, port = self.address.rpartition(":")
                probe.connect(str(self.socket_path) if unix else (host, int(port)))
            except OSError:
                return False
        return True

    def kill(self):
        """SIGKILL: whatever it holds in memory, and its journal's stdio buffer, are gone."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()


@pytest.fixture
def rrdcached(tmp_path):
    """A factory: ``rrdcached(data_dir, journal=True)`` starts one; all are stopped at teardown."""
    started = []
    run_dir = tempfile.mkdtemp(prefix="rrdc-", dir="/tmp")

    def start(data_dir, journal=True, tcp=False):
        daemon = Rrdcached(data_dir, run_dir, journal, tcp)
        started.append(daemon)
        return daemon.start()

    try:
        yield start
    finally:
        for daemon in started:
            daemon.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cached_config(address):
    text = BASE_CONFIG.replace(
        "step = 10", f'step = 10\nrrdcached = "{address}"\nrrdcached_flush = 3600'
    )
    return text + '\n[plot]\nnode_windows = ["1h"]\n'


def recent_base():
    """A recent minute: the samples after it are within the recorder's accepted age."""
    return int(time.time() - 900) // 60 * 60


def send(endpoint, samples):
    sender = Sender(endpoint, name="test-sender", resend_timeout=2)
    for sample in samples:
        sender.submit(*sample)
    assert sender.flush(timeout=20), f"{sender.buffered} samples not acknowledged"
    sender.close()
    return sender.stats


def samples(host, base, first, last, values):
    """Samples ``first..last`` of ``host``, 10 s apart after ``base``."""
    return [(float(base + 10 * i), host, "system", "", values(i)) for i in range(first, last + 1)]


def cpu(i):
    return {"cpu_user": float(i), "load1": i / 10}


def store_of(process):
    config = load_config(process.config_path).with_overrides(data_dir=str(process.data_dir))
    return RrdStore(config)


def daemon_last(store, path):
    """The daemon's LAST (no flush), or 0 while the file does not exist."""
    try:
        return store.last_update(path)
    except StoreError:
        return 0


def rows_of(store, path, base, count, variable):
    """``{i: value}`` of rows 1..count through the store (and so the daemon), None unknown."""
    result = store.fetch(path, "AVERAGE", base, base + 10 * count, resolution=10)
    by_time = dict(zip(result.times, result.columns[variable], strict=True))
    return {i: by_time.get(base + 10 * i) for i in range(1, count + 1)}


def last_on_disk(path):
    # A local read of a file the daemon holds rows of: safe here only because it
    # writes nothing by itself (-w 3600) and nothing else flushes meanwhile.
    return int(rrdtool.last(str(path)))


def test_rows_wait_in_the_daemon_and_every_reader_sees_them(recorder, rrdcached, tmp_path):
    daemon = rrdcached(tmp_path / "data")
    process = recorder(cached_config(daemon.address))
    store = store_of(process)
    path = process.data_dir / "ldc01" / "system.rrd"
    base = recent_base()

    send(process.endpoint, samples("ldc01", base, 1, 6, cpu))
    wait_for(lambda: daemon_last(store, path) >= base + 60, what="rows 1-6 in the daemon")
    assert last_on_disk(path) < base + 10  # the file has none of them: they are in the cache
    assert rows_of(store, path, base, 6, "cpu_user") == {i: float(i) for i in range(1, 7)}
    assert last_on_disk(path) == base + 60  # the fetch went through the daemon, which flushed

    # Newer rows, again only in the daemon: the plotter's pass sees them and draws them.
    send(process.endpoint, samples("ldc01", base, 7, 12, cpu))
    wait_for(lambda: daemon_last(store, path) >= base + 120, what="rows 7-12 in the daemon")
    assert last_on_disk(path) == base + 60
    os.utime(process.config_path, (base, base))  # the config is older than every pass below
    out = tmp_path / "graphs"
    png = out / node_graph_path(Path(), "ldc01", "system", "", "1h")
    now = base + 125
    summary = run_plot(store.config, out_dir=out, now=now)
    assert (summary.failed, png.stat().st_mtime) == (0, now)
    job = GraphJob(png.name, "node", "1h", "system", "", ("ldc01",))
    chart = build_chart(job, store.config, store, now)
    drawn = chart.panels[0].lines[0].values  # cpu_user, AVERAGE, one per 10 s row
    assert list(drawn[-12:]) == [float(i) for i in range(1, 13)]
    assert store.last_update(path) == base + 120

    # The file on disk stays old while the daemon holds a newer row: its LAST makes it due.
    os.utime(path, (base, base))
    send(process.endpoint, samples("ldc01", base, 13, 13, cpu))
    wait_for(lambda: daemon_last(store, path) >= base + 130, what="row 13 in the daemon")
    assert run_plot(store.config, out_dir=out, now=now + 1).failed == 0
    assert png.stat().st_mtime == now  # the same 10 s row: not due
    assert run_plot(store.config, out_dir=out, now=base + 135).failed == 0
    assert png.stat().st_mtime == base + 135  # redrawn: its data moved, in the daemon only
    drawn = build_chart(job, store.config, store, base + 135).panels[0].lines[0].values
    assert list(drawn[-13:]) == [float(i) for i in range(1, 14)]


def test_an_undeclared_variable_is_added_while_the_daemon_holds_rows(recorder, rrdcached, tmp_path):
    daemon = rrdcached(tmp_path / "data")
    process = recorder(cached_config(daemon.address))
    store = store_of(process)
    path = process.data_dir / "ldc01" / "system.rrd"
    base = recent_base()
    send(process.endpoint, samples("ldc01", base, 1, 6, cpu))
    wait_for(lambda: daemon_last(store, path) >= base + 60, what="rows 1-6 in the daemon")
    assert last_on_disk(path) < base + 10  # held: a tune now, without a flush, would lose them

    send(process.endpoint, samples("ldc01", base, 7, 12, lambda i: {**cpu(i), "fan": 100.0 + i}))
    wait_for(lambda: daemon_last(store, path) >= base + 120, what="rows 7-12 in the daemon")
    assert "fan" in store.variables(path)
    assert rows_of(store, path, base, 12, "cpu_user") == {i: float(i) for i in range(1, 13)}
    assert rows_of(store, path, base, 12, "fan") == {
        i: (100.0 + i if i >= 7 else None) for i in range(1, 13)
    }


def writer_of(process):
    """The recorder's writer child (not multiprocessing's resource tracker)."""
    children = psutil.Process(process.process.pid).children()
    (writer,) = [child for child in children if "spawn_main" in " ".join(child.cmdline())]
    return writer


def test_a_variable_added_to_the_config_after_both_processes_were_killed(
    recorder, rrdcached, tmp_path
):
    daemon = rrdcached(tmp_path / "data")
    first = recorder(cached_config(daemon.address))
    store = store_of(first)
    path = first.data_dir / "ldc01" / "system.rrd"
    base = recent_base()
    send(first.endpoint, samples("ldc01", base, 1, 6, cpu))
    wait_for(lambda: daemon_last(store, path) >= base + 60, what="rows 1-6 in the daemon")
    writer = writer_of(first)
    writer.send_signal(signal.SIGKILL)  # no checkpoint: the watermark is before rows 1-6
    writer.wait(10)
    first.kill()
    assert last_on_disk(path) < base + 10  # and the file has none of them

    declared = cached_config(daemon.address).replace(
        'load1 = { type = "GAUGE" }', 'load1 = { type = "GAUGE" }\ntemperature = { unit = "°C" }'
    )
    second = recorder(declared, data_dir=first.data_dir)
    send(second.endpoint, samples("ldc01", base, 7, 9, lambda i: {**cpu(i), "temperature": 40.0}))
    wait_for(lambda: daemon_last(store, path) >= base + 90, what="rows 7-9 in the daemon")
    assert store.variables(path) == ["cpu_user", "load1", "net_in", "temperature"]
    assert rows_of(store, path, base, 9, "cpu_user") == {i: float(i) for i in range(1, 10)}
    assert rows_of(store, path, base, 9, "temperature") == {
        i: (40.0 if i >= 7 else None) for i in range(1, 10)
    }
    for failure in ("cannot open", "update failed", "rrdcached at"):  # the replay skipped rows
        assert failure not in second.log()  # 1-6 by timestamp: the daemon held them


@pytest.mark.parametrize("journal", [True, False], ids=["with -j", "without -j"])
def test_a_killed_daemon_loses_nothing_that_was_acknowledged(
    recorder, rrdcached, tmp_path, journal
):
    daemon = rrdcached(tmp_path / "data", journal=journal)
    process = recorder(cached_config(daemon.address))
    store = store_of(process)
    path = process.data_dir / "ldc01" / "system.rrd"
    base = recent_base()
    send(process.endpoint, samples("ldc01", base, 1, 6, cpu))
    wait_for(lambda: daemon_last(store, path) >= base + 60, what="rows 1-6 in the daemon")
    daemon.kill()  # rows 1-6 were only in its memory (and at best its journal's buffer)

    stats = send(process.endpoint, samples("ldc01", base, 7, 12, cpu))
    assert stats.acked == 6  # receiving goes on while the daemon is down: the journal has them
    wait_for(  # the writer meets the dead daemon and starts waiting for it
        lambda: "replaying the journal once the daemon answers" in process.log(),
        what="the writer to find the daemon gone",
    )
    daemon.start()
    send(process.endpoint, samples("ldc01", base, 13, 15, cpu))

    def all_rows():
        try:
            return rows_of(store, path, base, 15, "cpu_user") == {i: float(i) for i in range(1, 16)}
        except StoreError:
            return False

    wait_for(all_rows, timeout=30, what="every row through the restarted daemon")
    assert "replaying the journal once the daemon answers" in process.log()
    assert process.terminate() == 0
    (_, _, _), _, rows = rrdtool.fetch(str(path), "AVERAGE", "-s", str(base), "-e", str(base + 150))
    assert [row[0] for row in rows[:15]] == [float(i) for i in range(1, 16)]  # on disk at stop


def test_a_stopping_recorder_leaves_every_row_in_the_files(recorder, rrdcached, tmp_path):
    daemon = rrdcached(tmp_path / "data")
    process = recorder(cached_config(daemon.address))
    store = store_of(process)
    path = process.data_dir / "ldc01" / "system.rrd"
    base = recent_base()
    send(process.endpoint, samples("ldc01", base, 1, 6, cpu))
    wait_for(lambda: daemon_last(store, path) >= base + 60, what="rows 1-6 in the daemon")
    assert last_on_disk(path) < base + 10
    assert process.terminate() == 0  # the writer's last checkpoint flushes what it sent
    assert last_on_disk(path) == base + 60
    daemon.kill()  # nothing of ours was left in it
    fetched = RrdStore(store.config, daemon="").fetch(path, "AVERAGE", base, base + 60)
    assert fetched.columns["cpu_user"][:6] == [float(i) for i in range(1, 7)]


# --- the store against the daemon, without a recorder ---


def direct_and_cached(tmp_path, daemon):
    config = parse_config(
        {
            "recorder": {"rrdcached": daemon.address},
            "datasets": {"bench": {"variables": {f"v{i}": {} for i in range(10)}}},
        }
    )
    return RrdStore(config, tmp_path / "data", daemon=""), RrdStore(config, tmp_path / "data")


T0 = 1_800_000_000


@pytest.mark.parametrize("tcp", [False, True], ids=["unix socket", "loopback TCP"])
def test_a_batch_longer_than_the_daemons_line_limit_arrives_whole(rrdcached, tmp_path, tcp):
    # librrd's own `update --daemon` drops such a batch whole and reports success.
    daemon = rrdcached(tmp_path / "data", tcp=tcp)
    direct, cached = direct_and_cached(tmp_path, daemon)
    series = cached.open_series("h1", "bench", "", [], T0)
    rows = [(T0 + 10 * i, {f"v{j}": i + j / 3 for j in range(10)}) for i in range(1, 121)]
    cached.update_many(series, rows)  # about 25 KB of values: 7 UPDATE commands
    assert cached.settle(series) == T0 + 1200
    fetched = direct.fetch(series.path, "AVERAGE", T0, T0 + 1200)
    assert fetched.columns["v3"][:120] == pytest.approx([i + 1 for i in range(1, 121)])


def test_a_daemon_fetch_at_a_coarser_resolution_equals_librrds(rrdcached, tmp_path):
    # rrdcached's FETCH takes no resolution; the store starts the fetch where the
    # wanted archive begins and keeps the rows librrd itself returns.
    daemon = rrdcached(tmp_path / "data")
    direct, cached = direct_and_cached(tmp_path, daemon)
    series = cached.open_series("h1", "bench", "", [], T0)
    cached.update_many(series, [(T0 + 10 * i, {"v1": float(i % 17)}) for i in range(1, 721)])
    for start, end, resolution in ((T0 + 3600, T0 + 7200, 60), (T0 + 6000, T0 + 7200, 240)):
        through = cached.fetch(series.path, "MAX", start, end, resolution)
        local = direct.fetch(series.path, "MAX", start, end, resolution)
        assert (through.step, through.times) == (local.step, local.times)
        assert through.columns == local.columns
        assert through.step == resolution


def read_nonstop(config_path, data_dir, path, started, stop):
    store = RrdStore(load_config(config_path), data_dir)
    while not stop.is_set():
        with contextlib.suppress(StoreError):
            store.last_update(path)
            store.fetch(path, "AVERAGE", T0, T0 + 3600, resolution=10)
            store.variables(path)
        started.set()  # reading nonstop from here on


def test_readers_reading_nonstop_never_cost_the_daemon_a_row(rrdcached, tmp_path):
    # A local read locks the file; the daemon's write of it then fails and its
    # values are dropped (80% of rows in this test when reads were local).
    daemon = rrdcached(tmp_path / "data")
    config_path = write_config(
        tmp_path,
        f'[recorder]\nrrdcached = "{daemon.address}"\n[datasets.bench.variables]\nv0 = {{}}\n',
    )
    store = RrdStore(load_config(config_path), tmp_path / "data")
    series = store.open_series("h1", "bench", "", ["v0"], T0)
    spawn = multiprocessing.get_context("spawn")
    started, stop = spawn.Event(), spawn.Event()
    readers = [
        spawn.Process(
            target=read_nonstop,
            args=(config_path, tmp_path / "data", series.path, started, stop),
        )
        for _ in range(2)
    ]
    for reader in readers:
        reader.start()
    try:
        assert started.wait(30)
        for i in range(1, 301):  # every row written by the daemon at once: a flush each
            store.update_many(series, [(T0 + 10 * i, {"v0": float(i)})])
            assert store.settle(series) == T0 + 10 * i
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=30)
    fetched = store.fetch(series.path, "AVERAGE", T0, T0 + 3000, resolution=10)
    assert fetched.columns["v0"][:300] == [float(i) for i in range(1, 301)]


def test_an_unreachable_daemon_is_one_line_naming_it(tmp_path):
    config = parse_config({"recorder": {"rrdcached": f"unix:{tmp_path}/none.sock"}})
    store = RrdStore(config, tmp_path)
    with pytest.raises(StoreError) as caught:
        store.last_update(tmp_path / "h1" / "system.rrd")
    assert str(caught.value) == (
        f"{tmp_path}/h1/system.rrd: rrdcached at unix:{tmp_path}/none.sock: last: "
        "[Errno 2] No such file or directory"
    )


def test_check_config_names_a_bad_rrdcached_address(tmp_path):
    path = write_config(tmp_path, "[recorder]\nrrdcached = '192.168.1.4:42217'\n")
    result = subprocess.run(
        [sys.executable, "-m", "affair", "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"affair check-config: {path}: recorder.rrdcached: expected '' (off), "
        "'unix:<absolute path>' or a loopback 'HOST:PORT' like '127.0.0.1:42217', "
        "got '192.168.1.4:42217'"
    )
