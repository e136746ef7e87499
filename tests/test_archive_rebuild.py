"""A verified archive file found damaged later: written again from the journal, or red.

Real journal files (a recorder with a fake clock, as in test_archive), real
ROOT files damaged on disk, ``affair archive verify`` and a pass run as the
scheduler would.
"""

from collections import Counter
from dataclasses import replace

import pytest
import uproot
from test_archive import NAMES, Station, archived_rows, as_rows, day, exported, make_config, rows_in

from affair.ingest.validate import Sample
from affair.outputs.archive import run_archive, verify_archive
from affair.outputs.site import SiteBuilder
from affair.outputs.status import keeping_lines
from affair.storage.archive_catalog import ArchiveCatalog
from affair.storage.archive_health import judge, measure

FIRST = "2023/affair-2023-11-14.root"
REBUILT = "2023/affair-2023-11-14.1.root"


@pytest.fixture
def archive_station(tmp_path):
    """``(config, archive directory, its catalog, a Station from day 0)``; closed after."""
    config = make_config(tmp_path)
    directory = tmp_path / "archive"
    station = Station(config, day(0))
    yield config, directory, ArchiveCatalog(directory), station
    station.close()


def damage(path, how):
    data = bytearray(path.read_bytes())
    if how == "truncated":  # what is cut is past the trees: the file still reads back
        data = data[: len(data) * 2 // 3]
    else:  # the end of a basket of values flipped: the file opens, its values do not
        with uproot.open(path) as root:
            branch = root["system"]["cpu_user"]
            end = int(branch.member("fBasketSeek")[0] + branch.member("fBasketBytes")[0])
        data[end - 16 : end] = bytes(b ^ 0xFF for b in data[end - 16 : end])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_a_damaged_file_is_written_again_from_the_journal(archive_station, tmp_path, how):
    config, directory, catalog, station = archive_station
    station.day_of_samples(0)
    station.day_of_samples(1)
    assert [f.file for f in run_archive(config, now=day(1) + 3600).written] == [FIRST]
    first_day = Counter(as_rows([s for s in station.sent if s.ts < day(1)]))

    damage(directory / FIRST, how)
    lines, code = verify_archive(config, now=day(1) + 4000)
    assert code == 1
    assert lines[0].startswith(f"{FIRST}: BAD: ")
    assert lines[0].endswith("; to be written again from the journal at the next pass")
    assert lines[-1] == "0 files verified, 1 bad"

    # Day 0's journal is past journal_days and was archived, but its file went
    # bad: retention keeps it, before and after a pass that rebuilds nothing else.
    station.day_of_samples(2)
    station.retention(day(2) + 7200)
    assert NAMES[0] in station.journal_days()

    summary = run_archive(config, now=day(2) + 7300)
    assert sorted(f.file for f in summary.written) == [REBUILT, "2023/affair-2023-11-15.root"]
    assert not summary.failed
    assert not (directory / FIRST).exists()  # never chained as affair-*.root again
    assert (directory / f"{FIRST}.rejected").is_file()  # the evidence, as it was found
    assert Counter(rows_in(directory / REBUILT)) == first_day
    (old, new) = catalog.files(NAMES[0])
    assert old.verified is None and new.verified is not None
    assert new.samples == old.samples == sum(first_day.values())
    assert new.expected["counts"] == old.expected["counts"]
    assert new.expected["checksums"] == old.expected["checksums"]
    assert new.expected["replaces"] == FIRST
    assert catalog.failures() == []

    lines, code = verify_archive(config, now=day(2) + 7400)
    assert code == 0
    assert lines[0].startswith(f"{FIRST}: damaged (")
    assert lines[0].endswith(f"; replaced by {REBUILT}")
    assert lines[1:] == [
        f"{REBUILT}: ok ({new.samples} samples)",
        "2023/affair-2023-11-15.root: ok (144 samples)",
        "2 files verified, 0 bad",
    ]

    # Rebuilt and verified: now the journal day may go; every sample in one file.
    station.retention(day(2) + 7500)
    assert NAMES[0] not in station.journal_days()
    assert archived_rows(directory) == Counter(as_rows([s for s in station.sent if s.ts < day(2)]))
    assert exported(config, tmp_path) == Counter(as_rows(station.sent))
    health = judge(measure(config, now=day(2) + 7600), config, day(2) + 7600)
    assert health.colour == "green", health.problems


def test_a_damaged_file_whose_journal_is_gone_turns_the_day_red(archive_station, tmp_path):
    config, directory, catalog, station = archive_station
    station.day_of_samples(0)
    # stamped a second before midnight, received after: day 0's file has two sources
    station.receive([Sample(0, day(1) - 1.0, "gdc01", "system", "", {"cpu_user": 7.0})], day(1) + 1)
    station.day_of_samples(1)
    run_archive(config, now=day(1) + 3600)
    assert catalog.files(NAMES[0])[0].expected["sources"] == [NAMES[0], NAMES[1]]
    station.day_of_samples(2)
    station.retention(day(2) + 7200)
    assert NAMES[0] not in station.journal_days()  # archived and verified: deleted

    damage(directory / FIRST, "truncated")
    assert verify_archive(config, now=day(2) + 7300)[1] == 1
    summary = run_archive(config, now=day(2) + 7400)
    assert summary.failed[NAMES[0]].endswith(
        "cannot be rebuilt: journal day 2023-11-14 is gone: nothing to rebuild from"
    )
    assert [f.file for f in summary.written] == ["2023/affair-2023-11-15.root"]
    assert (directory / f"{FIRST}.rejected").is_file()
    (rebuild,) = catalog.rebuilds()
    assert rebuild.pending and "is gone" in rebuild.problem

    now = day(2) + 7500  # a day found bad today is red at once: nothing can bring it back
    health = judge(measure(config, now=now), config, now)
    assert health.colour == "red"
    assert [p for p in health.problems if NAMES[0] in p] == [
        f"red: {NAMES[0]}: {FIRST} is damaged and cannot be rebuilt: "
        "journal day 2023-11-14 is gone: nothing to rebuild from"
    ]
    reason = (
        f"red: {NAMES[0]}: {FIRST} is damaged and cannot be rebuilt: "
        "journal day 2023-11-14 is gone: nothing to rebuild from"
    )
    lines, colour = keeping_lines(config, None, now)  # affair status
    assert colour == "red" and f"  {reason}" in lines
    html = SiteBuilder(config, tmp_path / "data").render_index([], now)  # the index page
    assert f"<li>{reason}</li>" in html
    lines, code = verify_archive(config, now=now)
    assert code == 1
    assert lines[0].endswith(
        "; cannot be rebuilt: journal day 2023-11-14 is gone: nothing to rebuild from"
    )

    # Later passes do not try again, and write nothing in its place; what the
    # journal still holds of the file (day 1's file, its late sample) is kept.
    assert run_archive(config, now=day(2) + 7600).written == []
    assert [f.file for f in catalog.files(NAMES[0])] == [FIRST]
    assert catalog.archived_journal_days() == set()
    station.retention(day(3) + 3600)
    assert NAMES[1] in station.journal_days()


def test_a_day_s_only_file_cataloged_without_its_rows_is_rebuilt_from_the_coverage(archive_station):
    """Files cataloged before they noted their journal rows: a day's only file had them all."""
    config, directory, catalog, station = archive_station
    station.day_of_samples(0)
    run_archive(config, now=day(1) + 3600)
    (entry,) = catalog.files(NAMES[0])
    assert entry.expected["rows"] == {NAMES[0]: [0, 144]}
    older = {key: value for key, value in entry.expected.items() if key != "rows"}
    catalog.add_file(replace(entry, expected=older))

    damage(directory / FIRST, "flipped")
    assert verify_archive(config, now=day(1) + 4000)[1] == 1
    summary = run_archive(config, now=day(1) + 4100)
    assert [f.file for f in summary.written] == [REBUILT]
    assert Counter(rows_in(directory / REBUILT)) == Counter(as_rows(station.sent))
