"""The permanent archive: verified day files, supplements, and a journal that waits for them.

A recorder with a fake clock lives through several UTC days with
``journal_days = 1``; its journal is fed directly (the receiving path has
its own tests) and the archive pass runs at chosen moments, as the
scheduler would. No processes or sockets: all of it runs in the test.
"""

import json
from collections import Counter

import numpy as np
import pytest
import uproot

from affair.config import parse_config
from affair.errors import ArchiveError
from affair.ingest.recorder import Recorder
from affair.ingest.validate import Sample
from affair.outputs import archive
from affair.outputs.archive import (
    read_back,
    run_archive,
    value_checksum,
    verify_file,
)
from affair.outputs.archive_read import export_everywhere
from affair.storage.archive_catalog import ArchiveCatalog, archive_file_name, archived_guard
from affair.storage.journal import Watermark

DAY1 = 1_700_006_400 - 86_400  # 2023-11-14 00:00 UTC
NAMES = ["2023-11-14", "2023-11-15", "2023-11-16", "2023-11-17", "2023-11-18", "2023-11-19"]


def day(n):
    """00:00 UTC of the n-th day of the scenario (0: 2023-11-14)."""
    return DAY1 + n * 86_400


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def make_config(tmp_path, journal_days=1, **export):
    raw = {
        "recorder": {"data_dir": str(tmp_path / "data"), "journal_days": journal_days},
        "datasets": {
            "system": {"variables": {"cpu_user": {"type": "GAUGE"}, "load1": {"type": "GAUGE"}}},
            "disks": {"variables": {"used": {"type": "GAUGE"}}},
        },
        "export": {"directory": str(tmp_path / "archive"), **export},
    }
    return parse_config(raw, tmp_path / "affair.toml")


class Station:
    """A recorder (fake clock) whose journal takes samples directly; remembers what it sent."""

    def __init__(self, config, start):
        self.clock = Clock(start)
        self.recorder = Recorder(config, clock=self.clock)
        self.config = config
        self.sent = []

    def receive(self, samples, at):
        self.clock.now = at
        positions = self.recorder.journal.append(samples)
        assert all(p is not None for p in positions)
        self.sent += samples
        # the RRD writer keeps up: its watermark is the last row journaled
        Watermark(self.recorder.data_dir / "_state" / "writer.watermark").save(positions[-1])

    def day_of_samples(self, n, every=1800):
        """Samples of day n, each received half a second after its time."""
        for offset in range(0, 86_400, every):
            ts = day(n) + offset + 0.25
            batch = [
                Sample(0, ts, "gdc01", "system", "", {"cpu_user": n + offset / 1e5, "load1": None}),
                Sample(0, ts, "ldc01", "system", "", {"cpu_user": 2.5 * n}),
                Sample(0, ts, "ldc01", "disks", "sda", {"used": offset / 86_400}),
            ]
            self.receive(batch, ts + 0.5)

    def journal_days(self):
        return [p.stem for p in self.recorder.journal.day_files()]

    def retention(self, at):
        self.clock.now = at
        self.recorder._apply_retention(at)

    def close(self):
        self.recorder.journal.close()


def rows_in(path):
    """Every sample of an archive file as (ts, host, dataset, instance, sorted known values)."""
    rows = []
    with uproot.open(path) as root:
        metadata = json.loads(root["_affair/metadata"])
        hosts = list(root["_affair/hosts"]["name"].array(library="np"))
        instances = list(root["_affair/instances"]["name"].array(library="np"))
        for dataset, described in metadata["datasets"].items():
            arrays = root[dataset].arrays(library="np")
            for i in range(len(arrays["time"])):
                values = tuple(
                    sorted(
                        (entry["variable"], float(arrays[branch][i]))
                        for branch, entry in described["branches"].items()
                        if not np.isnan(arrays[branch][i])
                    )
                )
                rows.append(
                    (
                        float(arrays["time"][i]),
                        str(hosts[arrays["host"][i]]),
                        dataset,
                        str(instances[arrays["instance"][i]]),
                        values,
                    )
                )
    return rows


def as_rows(samples):
    return [
        (
            s.ts,
            s.host,
            s.dataset,
            s.instance,
            tuple(sorted((k, v) for k, v in s.values.items() if v is not None)),
        )
        for s in samples
    ]


def archived_rows(directory):
    found = Counter()
    for path in sorted(directory.glob("*/affair-*.root")):
        found.update(rows_in(path))
    return found


def exported(config, tmp_path, start=None, end=None, hosts=()):
    output = tmp_path / "exported.root"
    export_everywhere(config, output, start, end, hosts, progress=False)
    return Counter(rows_in(output))


def truncate_after_writing(monkeypatch):
    real_write = archive._write

    def write_then_truncate(config, path, source):
        real_write(config, path, source)
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.truncate(size // 2)

    monkeypatch.setattr(archive, "_write", write_then_truncate)


def test_days_are_archived_verified_and_the_journal_waits_for_them(tmp_path, monkeypatch):
    config = make_config(tmp_path)
    directory = tmp_path / "archive"
    station = Station(config, day(0))
    catalog = ArchiveCatalog(directory)
    try:
        station.day_of_samples(0)
        # stamped a second before midnight, received just after: in day 1's journal file
        late_by_a_second = Sample(0, day(1) - 1.0, "gdc01", "system", "", {"cpu_user": 7.0})
        station.receive([late_by_a_second], day(1) + 1.0)
        station.day_of_samples(1)

        # After midnight: day 0 is archived from both journal files, and verified.
        summary = run_archive(config, now=day(1) + 3600)
        assert [f.file for f in summary.written] == [archive_file_name(NAMES[0])]
        assert (directory / "2023" / "affair-2023-11-14.root").is_file()
        (entry,) = catalog.files(NAMES[0])
        assert entry.samples == 3 * 48 + 1 and entry.verified is not None and not entry.problem
        assert entry.expected["counts"]["disks"] == {"ldc01\tsda": 48}
        assert entry.expected["sources"] == [NAMES[0], NAMES[1]]
        assert Counter(rows_in(directory / entry.file)) == Counter(
            as_rows([s for s in station.sent if s.ts < day(1)])
        )
        assert catalog.archived_journal_days() == {NAMES[0]}  # day 1's file still grows
        # day 0 from its archive file, day 1 from the journal: each sample once
        assert exported(config, tmp_path) == Counter(as_rows(station.sent))

        # Day 2: journal_days = 1, so day 0's journal file may go, and does (archived).
        station.day_of_samples(2)
        station.retention(day(2) + 7200)
        assert station.journal_days() == [NAMES[1], NAMES[2]]
        assert station.recorder.metrics.counts["journal_days_held"] == 0

        # A collector back from an outage sends old samples of day 0: a supplement.
        old = [Sample(0, day(0) + 500.0, "gdc02", "system", "", {"cpu_user": 1.0})]
        station.receive(old, day(2) + 7300)
        summary = run_archive(config, now=day(2) + 7400)
        assert sorted(f.file for f in summary.written) == [
            "2023/affair-2023-11-14.1.root",
            "2023/affair-2023-11-15.root",
        ]
        assert rows_in(directory / "2023/affair-2023-11-14.1.root") == as_rows(old)
        assert catalog.archived_journal_days() == {NAMES[0], NAMES[1]}

        # Day 2's file comes out damaged: the check catches it, the day is flagged and kept.
        station.day_of_samples(3)
        truncate_after_writing(monkeypatch)
        summary = run_archive(config, now=day(3) + 3600)
        assert list(summary.failed) == [NAMES[2]] and not summary.written
        (failure,) = catalog.failures()
        assert failure.day == NAMES[2] and failure.attempts == 1
        assert catalog.files(NAMES[2])[0].verified is None
        assert not (directory / "2023/affair-2023-11-16.root").exists()  # never looks archived
        assert (directory / "2023/affair-2023-11-16.root.rejected").is_file()
        station.retention(day(4) + 3600)
        assert station.journal_days() == [NAMES[2], NAMES[3]]  # 2 is old, but not archived
        assert station.recorder.metrics.counts["journal_days_held"] == 1

        # The next pass (a good disk again) writes it whole, over the bad file.
        monkeypatch.undo()
        summary = run_archive(config, now=day(4) + 3600)
        assert sorted(f.file for f in summary.written) == [
            "2023/affair-2023-11-16.root",
            "2023/affair-2023-11-17.root",
        ]
        assert catalog.failures() == []
        station.retention(day(4) + 3700)
        assert station.journal_days() == [NAMES[3]]
        assert station.recorder.metrics.counts["journal_days_held"] == 0

        # Every sample sent is in exactly one archive file, supplements included.
        expected = Counter(as_rows([s for s in station.sent if s.ts < day(4)]))
        assert archived_rows(directory) == expected
        # `affair export` over a range whose journal is gone: the archive, supplements merged
        assert station.journal_days() == [NAMES[3]]
        assert exported(config, tmp_path) == Counter(as_rows(station.sent))
        wanted = [s for s in station.sent if day(0) + 400 <= s.ts < day(1) and s.host != "ldc01"]
        assert len(wanted) == 49 and any(s.host == "gdc02" for s in wanted)
        assert exported(config, tmp_path, day(0) + 400, day(1), ["gdc*"]) == Counter(
            as_rows(wanted)
        )
    finally:
        station.close()


def test_a_second_pass_with_nothing_new_writes_nothing(tmp_path):
    config = make_config(tmp_path)
    station = Station(config, day(0))
    try:
        station.day_of_samples(0, every=7200)
        assert run_archive(config, now=day(1) + 590).written == []  # day 0 is settling
        first = run_archive(config, now=day(1) + 600)
        again = run_archive(config, now=day(1) + 700)
    finally:
        station.close()
    assert len(first.written) == 1 and first.written[0].samples == 36
    assert again.written == [] and again.failed == {}
    assert [f.part for f in ArchiveCatalog(tmp_path / "archive").files()] == [0]


def test_the_pass_catches_up_every_missing_day(tmp_path):
    config = make_config(tmp_path)
    station = Station(config, day(0))
    try:
        for n in range(4):
            station.day_of_samples(n, every=21_600)
        summary = run_archive(config, now=day(4) + 3600)
    finally:
        station.close()
    assert [f.day for f in summary.written] == NAMES[:4]
    assert ArchiveCatalog(tmp_path / "archive").archived_journal_days() == set(NAMES[:4])
    assert archived_rows(tmp_path / "archive") == Counter(as_rows(station.sent))


def test_an_unwritable_archive_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "archive"
    blocker.write_text("a file where the directory should be")
    config = make_config(tmp_path)
    with pytest.raises(ArchiveError, match="archive directory .*archive cannot be made"):
        run_archive(config, now=day(1))


def test_below_the_free_space_floor_nothing_is_written(tmp_path):
    config = make_config(tmp_path, min_free="1000TB")
    station = Station(config, day(0))
    try:
        station.day_of_samples(0, every=7200)
        summary = run_archive(config, now=day(1) + 600)
    finally:
        station.close()
    assert "[export] min_free" in summary.failed[NAMES[0]]
    assert list((tmp_path / "archive").glob("*/*.root")) == []
    assert archived_guard(tmp_path / "archive")(NAMES[0]) is False


def test_verification_names_the_series_that_differs(tmp_path):
    config = make_config(tmp_path)
    station = Station(config, day(0))
    try:
        station.day_of_samples(0, every=7200)
        run_archive(config, now=day(1) + 600)
    finally:
        station.close()
    (entry,) = ArchiveCatalog(tmp_path / "archive").files()
    path = tmp_path / "archive" / entry.file
    assert verify_file(path, entry.expected) is None
    assert read_back(path) == {k: entry.expected[k] for k in ("counts", "checksums")}
    wrong = json.loads(json.dumps(entry.expected))
    wrong["counts"]["system"]["gdc01\t"] = 13
    assert verify_file(path, wrong) == "system gdc01: 12 entries in the file, 13 in the journal"
    wrong = json.loads(json.dumps(entry.expected))
    wrong["checksums"]["disks"] = "1"
    assert verify_file(path, wrong) == "disks: the values' checksum differs from the journal's"
    assert verify_file(tmp_path / "nope.root", entry.expected) == "the file is missing"


def test_the_checksum_ignores_order_and_unknown_values_and_sees_any_change():
    times = np.array([1.0, 2.0, 3.0])
    hosts = np.array([1, 2, 1], np.uint64)
    instances = np.array([0, 0, 5], np.uint64)
    values = np.array([0.5, np.nan, 7.25])
    base = value_checksum(times, hosts, instances, [(11, values)])
    order = [2, 0, 1]
    assert value_checksum(times[order], hosts[order], instances[order], [(11, values[order])]) == (
        base
    )
    assert value_checksum(times, hosts, instances, [(11, values), (12, np.full(3, np.nan))]) == (
        base
    )
    changed = values.copy()
    changed[2] = 7.250000000000001
    assert value_checksum(times, hosts, instances, [(11, changed)]) != base
    assert value_checksum(times, hosts[[1, 0, 2]], instances, [(11, values)]) != base
    assert value_checksum(times, hosts, instances, [(13, values)]) != base


def test_the_scheduler_archives_hourly_and_refuses_an_unwritable_directory(tmp_path):
    from affair.outputs.schedule import default_jobs

    config = make_config(tmp_path, resolution="30min")
    jobs = default_jobs(config, str(tmp_path / "data"), tmp_path / "g", tmp_path / "s")
    assert [(j.name, j.interval, j.run_at_start) for j in jobs[-2:]] == [
        ("archive", 3600, True),
        ("export", 86400, True),  # a consolidated resolution keeps its daily file too
    ]
    assert (tmp_path / "archive").is_dir()
    (tmp_path / "blocked").write_text("")
    blocked = make_config(tmp_path, directory=str(tmp_path / "blocked" / "archive"))
    with pytest.raises(ArchiveError, match="blocked/archive cannot be made"):
        default_jobs(blocked, str(tmp_path / "data"), tmp_path / "g", tmp_path / "s")


def test_affair_archive_runs_lists_and_verifies(tmp_path, capsys, monkeypatch):
    from affair.cli import main

    config = make_config(tmp_path)
    station = Station(config, day(0))
    try:
        station.day_of_samples(0, every=7200)
    finally:
        station.close()
    config_file = tmp_path / "affair.toml"
    config_file.write_text(
        f'[recorder]\ndata_dir = "{tmp_path / "data"}"\njournal_days = 1\n'
        f'[export]\ndirectory = "{tmp_path / "archive"}"\n'
    )
    assert main(["archive", "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("affair archive: 1 files written and verified; 36 samples, ")
    assert main(["archive", "list", "--config", str(config_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"archive {tmp_path / 'archive'}: 1 files, ")
    assert lines[1].startswith("2023-11-14  day        2023/affair-2023-11-14.root  36 samples  ")
    assert "verified 20" in lines[1]
    assert lines[-1].startswith("free space: ")
    assert main(["archive", "verify", "--config", str(config_file)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2023/affair-2023-11-14.root: ok (36 samples)",
        "1 files verified, 0 bad",
    ]
    path = tmp_path / "archive" / "2023" / "affair-2023-11-14.root"
    path.write_bytes(path.read_bytes()[:1000])
    assert main(["archive", "verify", "--config", str(config_file)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2023/affair-2023-11-14.root: BAD: cannot be read back: ")
    assert lines[1] == "0 files verified, 1 bad"
    assert main(["archive", "verify", "--config", str(config_file)]) == 1
    assert (
        capsys.readouterr()
        .out.splitlines()[0]
        .startswith("2023/affair-2023-11-14.root: NOT VERIFIED: cannot be read back: ")
    )
    catalog = ArchiveCatalog(tmp_path / "archive")
    assert catalog.archived_journal_days() == set()
    assert catalog.failures()[0].day == NAMES[0]


def keeping(**changes):
    from affair.storage.archive_health import Measure

    values = {
        "journal_bytes": 10,
        "journal_free": 10**12,
        "archive_bytes": 20,
        "archive_free": 10**12,
        "archive_writable": True,
        "unarchived": (),
        "failed": (),
    }
    return Measure(**{**values, **changes})


def test_days_not_archived_turn_the_station_yellow_then_red(tmp_path):
    from affair.storage.archive_health import judge

    config = make_config(tmp_path, journal_days=2)  # min_free 1 GB
    now = day(3) + 3600
    assert judge(keeping(), config, now).colour == "green"
    assert judge(keeping(unarchived=(NAMES[2],)), config, now).colour == "green"  # just ended
    health = judge(keeping(unarchived=(NAMES[1],)), config, now)
    assert (health.colour, health.problems) == (
        "yellow",
        ["yellow: journal day 2023-11-15 not archived, 1.0 days after it ended"],
    )
    health = judge(keeping(failed=((NAMES[0], "no space"),)), config, now)
    assert health.problems == [
        "red: 2023-11-14 failed to archive (no space), 2.0 days after it ended"
    ]
    health = judge(keeping(failed=((NAMES[1], "no space"),)), config, now)
    assert health.problems == [
        "yellow: 2023-11-15 failed to archive (no space), 1.0 days after it ended"
    ]
    assert judge(keeping(archive_free=600_000_000), config, now).colour == "yellow"
    assert judge(keeping(journal_free=400_000_000), config, now).colour == "red"
    assert judge(keeping(archive_writable=False), config, now).problems == [
        f"red: the archive directory {tmp_path / 'archive'} is not writable"
    ]
    off = make_config(tmp_path, enabled=False)
    assert judge(keeping(archive_writable=False), off, now).colour == "green"


def test_status_and_the_recorder_report_what_is_kept(tmp_path):
    from affair.outputs.site import keeping_summary
    from affair.outputs.status import keeping_lines

    config = make_config(tmp_path, min_free="1000TB")
    station = Station(config, day(0))
    try:
        station.day_of_samples(0, every=7200)
        run_archive(config, now=day(1) + 600)  # refused: below the floor
        values = station.recorder._keeping_values(day(2) + 3600)
    finally:
        station.close()
    assert values["days_unarchived"] == 1.0
    assert values["journal_bytes"] > 0 and values["archive_bytes"] == 0.0
    assert values["archive_free"] > 0 and values["journal_free"] > 0
    lines, colour = keeping_lines(config, None, day(2) + 3600)
    assert colour == "red"
    assert (
        lines[0]
        == f"archive: red: 0 B in {tmp_path / 'archive'}, journal "
        + (lines[0].rsplit("journal ", 1)[1])
    )
    assert "  red: journal day 2023-11-14 not archived, 1.0 days after it ended" in lines
    summary = keeping_summary(config, config.recorder.data_dir, day(2) + 3600)
    assert summary["colour"] == "red" and summary["archive"] == "0 B"
    assert any("below half of min_free" in p for p in summary["problems"])


def test_a_damaged_catalog_keeps_every_journal_day_and_is_red(tmp_path, caplog):
    from affair.storage.archive_health import judge, measure

    config = make_config(tmp_path)
    station = Station(config, day(0))
    try:
        station.day_of_samples(0, every=21_600)
        station.day_of_samples(1, every=21_600)
        run_archive(config, now=day(2) + 3600)
        (tmp_path / "archive" / "catalog.sqlite").write_bytes(b"not a database" * 100)
        station.retention(day(3) + 60)  # day 0 is old and archived, but nothing says so now
        assert station.journal_days() == [NAMES[0], NAMES[1]]
        assert "unreadable" in caplog.text
        health = judge(measure(config, now=day(3) + 60), config, day(3) + 60)
        assert health.colour == "red"
        assert health.problems[0].startswith("red: the archive catalog ")
    finally:
        station.close()


def test_the_recorder_says_at_start_when_the_archive_cannot_be_written(tmp_path, caplog):
    (tmp_path / "blocked").write_text("")
    config = make_config(tmp_path, directory=str(tmp_path / "blocked" / "archive"))
    Recorder(config, clock=Clock(day(0)))._check_archive_directory()
    assert f"the archive directory {tmp_path / 'blocked' / 'archive'} is not writable" in (
        caplog.text
    )


def test_the_index_page_shows_what_is_kept_and_why_not(tmp_path):
    from affair.outputs.site import SiteBuilder

    config = make_config(tmp_path, journal_days=3)
    ArchiveCatalog(tmp_path / "archive").record_failure(NAMES[0], "no room", day(0))
    builder = SiteBuilder(config, tmp_path / "data", tmp_path / "g", tmp_path / "site")
    html = builder.render_index([], day(2) + 3600)
    assert '<section class="keeping k-yellow" aria-label="samples kept">' in html
    assert f"archive <b>0 B</b> in <code>{tmp_path / 'archive'}</code>" in html
    assert (
        "<li>yellow: 2023-11-14 failed to archive (no room), 1.0 days after it ended</li>" in html
    )
    off = SiteBuilder(make_config(tmp_path, enabled=False), tmp_path / "data")
    assert "samples kept" not in off.render_index([], day(2))


def test_the_pass_runs_in_a_child_process_at_idle_priority_and_its_errors_reach_the_caller(
    tmp_path,
):
    import os

    assert archive.in_idle_process(os.getpid, ()) != os.getpid()
    assert archive.in_idle_process(os.sched_getscheduler, (0,)) == os.SCHED_IDLE
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller keeps its own
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    with pytest.raises(ArchiveError, match="cannot be made"):
        archive.in_idle_process(archive.check_writable, (a_file / "archive",))


def _cpu_and_wall(seconds):
    """Spin for ``seconds`` of wall time; the CPU time it got."""
    import time

    started_cpu, end = time.process_time(), time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return time.process_time() - started_cpu


def test_a_paced_pass_gets_about_its_share_of_a_core_and_is_left_running():
    spun = archive.in_idle_process(_cpu_and_wall, (3.0,), cpu_share=0.25)
    # 0.75 s of CPU at most in 3 s (stopped for 0.075 s of every 0.1 s); on a
    # loaded machine it may get less, never more than a little over its share.
    assert 0 < spun < 0.75 * 1.25
