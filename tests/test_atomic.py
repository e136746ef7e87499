"""affair.atomic and its users: a replaced file is old or new, never a part; no temp file stays."""

import errno
import json
import os
import stat
import threading
import time

import pytest
from conftest import BASE_CONFIG, write_config

from affair.atomic import atomic_path, sweep_temporaries, write_atomic
from affair.config import load_config
from affair.ingest.recorder import Recorder
from affair.storage.journal import Watermark


def names_in(directory):
    return sorted(path.name for path in directory.iterdir())


def replace_fails(monkeypatch):
    def refuse(source, destination):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr("affair.atomic.os.replace", refuse)


def test_write_atomic_writes_str_and_bytes_and_makes_the_directory(tmp_path):
    target = tmp_path / "new" / "dir" / "page.html"
    write_atomic(target, "grün")
    assert target.read_bytes() == "grün".encode()
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert names_in(target.parent) == ["page.html"]


def test_write_atomic_stamps_the_mtime_before_the_file_appears(tmp_path):
    target = tmp_path / "g" / "a.png"
    write_atomic(target, b"one", mtime=1_600_000_000)
    write_atomic(target, b"two", mtime=1_600_000_010)
    assert target.read_bytes() == b"two"
    assert target.stat().st_mtime == 1_600_000_010
    assert names_in(target.parent) == ["a.png"]


def test_new_files_are_readable_by_others_as_the_umask_says(tmp_path):
    # A web server reads pages and PNGs as another user: not mkstemp's 0600.
    previous = os.umask(0o022)
    try:
        write_atomic(tmp_path / "page.html", "x")
        with atomic_path(tmp_path / "file.root") as temporary:
            temporary.write_bytes(b"y")
    finally:
        os.umask(previous)
    for name in ("page.html", "file.root"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_a_failed_rename_keeps_the_old_file_and_removes_the_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "page.html"
    write_atomic(target, "old")
    replace_fails(monkeypatch)
    with pytest.raises(OSError, match="cross-device"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert names_in(tmp_path) == ["page.html"]


def test_a_full_disk_keeps_the_old_file_and_removes_the_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    write_atomic(target, "old", durable=True)
    real_fdopen = os.fdopen

    class FullDisk:
        """A file that takes the first bytes and then reports the disk full."""

        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            self.handle.write(data[:3])
            self.handle.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr("affair.atomic.os.fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, "a longer new content", durable=True)
    assert target.read_text() == "old"
    assert names_in(tmp_path) == ["metrics.json"]


def test_durable_fsyncs_the_file_and_then_the_directory(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(descriptor):
        kind = "directory" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "file"
        synced.append(kind)
        real_fsync(descriptor)

    monkeypatch.setattr("affair.atomic.os.fsync", recording_fsync)
    write_atomic(tmp_path / "a", "x")
    with atomic_path(tmp_path / "b") as temporary:
        temporary.write_text("y")
    assert synced == []
    write_atomic(tmp_path / "a", "x", durable=True)
    with atomic_path(tmp_path / "b", durable=True) as temporary:
        temporary.write_text("y")
    assert synced == ["file", "directory", "file", "directory"]


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "export.root"
    with atomic_path(target) as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name.startswith(".export.root.") and temporary.name.endswith(".tmp")
        assert temporary.exists()  # created, empty: the name is taken
        assert not target.exists()
        temporary.write_bytes(b"root")
    assert target.read_bytes() == b"root"
    assert names_in(tmp_path) == ["export.root"]


@pytest.mark.parametrize("failure", [RuntimeError("librrd said no"), KeyboardInterrupt()])
def test_atomic_path_removes_the_temp_file_when_the_block_fails(tmp_path, failure):
    target = tmp_path / "system.rrd"
    target.write_bytes(b"old")
    with pytest.raises(type(failure)), atomic_path(target) as temporary:
        temporary.write_bytes(b"half a fi")
        raise failure
    assert target.read_bytes() == b"old"
    assert names_in(tmp_path) == ["system.rrd"]


def test_two_writers_of_one_file_get_their_own_temp_files(tmp_path):
    target = tmp_path / "a.png"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        first.write_bytes(b"first")
        second.write_bytes(b"second")
    assert target.read_bytes() == b"first"  # the outer block ends last and wins
    assert names_in(tmp_path) == ["a.png"]


def test_a_reader_never_sees_a_partial_file(tmp_path):
    target = tmp_path / "status.json"
    versions = [b"a" * 3_000_000, b"b" * 2_000_000 + b"end"]
    write_atomic(target, versions[0])
    seen = set()
    wrong = []
    done = threading.Event()

    def read_until_done():
        while not done.is_set():
            data = target.read_bytes()
            if data in versions:
                seen.add(data[:1])
            else:
                wrong.append(len(data))

    reader = threading.Thread(target=read_until_done)
    reader.start()
    deadline = time.monotonic() + 20
    replaced = 0
    try:
        # Replace until the reader has seen both versions often enough to have raced the
        # writer, for a bounded time.
        while (replaced < 200 or len(seen) < 2) and time.monotonic() < deadline:
            write_atomic(target, versions[replaced % 2])
            replaced += 1
    finally:
        done.set()
        reader.join()
    assert wrong == []
    assert seen == {b"a", b"b"}
    assert names_in(tmp_path) == ["status.json"]


# --- the users that must survive a crash ---


def test_the_watermark_leaves_no_temp_file(tmp_path, monkeypatch):
    watermark = Watermark(tmp_path / "_state" / "writer.watermark")
    watermark.save(("2024-05-01", 41))
    watermark.save(("2024-05-01", 42))
    assert watermark.load() == ("2024-05-01", 42)
    assert names_in(tmp_path / "_state") == ["writer.watermark"]
    replace_fails(monkeypatch)
    with pytest.raises(OSError):
        watermark.save(("2024-05-02", 1))
    assert watermark.load() == ("2024-05-01", 42)
    assert names_in(tmp_path / "_state") == ["writer.watermark"]


def test_the_recorder_metrics_file_leaves_no_temp_file(tmp_path, monkeypatch):
    config = load_config(write_config(tmp_path, BASE_CONFIG)).with_overrides(
        data_dir=str(tmp_path / "data")
    )
    recorder = Recorder(config, clock=lambda: 1_700_000_000.0)
    recorder.metrics.add("accepted", 7)
    recorder._write_metrics_file()
    state = tmp_path / "data" / "_state"
    written = json.loads((state / "metrics.json").read_text())
    assert (written["accepted"], written["time"]) == (7, 1_700_000_000.0)
    assert names_in(state) == ["metrics.json"]
    replace_fails(monkeypatch)
    recorder.metrics.add("accepted", 1)
    with pytest.raises(OSError):
        recorder._write_metrics_file()
    assert json.loads((state / "metrics.json").read_text())["accepted"] == 7
    assert names_in(state) == ["metrics.json"]


# --- what a process killed mid-write leaves behind ---


def test_only_our_stale_temporary_files_are_swept(tmp_path):
    now = 1_700_000_000.0
    stale = tmp_path / "ldc01" / ".system.rrd.0badcafe.tmp"
    young = tmp_path / "ldc01" / ".disks.sda.rrd.12345678.tmp"
    others = [tmp_path / "ldc01" / "system.rrd", tmp_path / "notes.tmp", tmp_path / ".hidden"]
    for path in [stale, young, *others]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (now - 7200, now - 7200))
    os.utime(young, (now - 60, now - 60))  # a write that may still be going on
    assert sweep_temporaries(tmp_path, now) == 1
    assert not stale.exists()
    assert young.exists() and all(path.exists() for path in others)


@pytest.mark.integration
def test_a_recorder_starting_removes_what_a_killed_one_left_half_written(tmp_path, recorder):
    data = tmp_path / "data"
    left = data / "ldc01" / ".system.rrd.0badcafe.tmp"
    left.parent.mkdir(parents=True)
    left.write_bytes(b"half an RRD")
    os.utime(left, (time.time() - 7200, time.time() - 7200))
    started = recorder(data_dir=data)
    assert not left.exists()
    assert "removed 1 temporary files left by an interrupted write" in started.log()
