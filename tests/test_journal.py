"""The journal as the raw archive: storage format, idempotence, rotation, replay reading."""

import json
import sqlite3

import pytest

from affair.errors import JournalError
from affair.ingest.validate import Sample
from affair.outputs.query import value_at
from affair.storage.journal import (
    ABSENT_BYTES,
    DayCatalog,
    Journal,
    Watermark,
    day_name,
    open_day_readonly,
    pack_values,
    read_after,
    unpack_values,
)

DAY1 = 1_700_006_400 - 86_400  # 2023-11-14 00:00 UTC
DAY2 = 1_700_006_400  # 2023-11-15 00:00 UTC


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def sample(ts, host="h1", values=None, dataset="system", instance=""):
    return Sample(0, ts, host, dataset, instance, values if values is not None else {"a": 1.0})


def test_values_round_trip_keeps_unknown_apart_from_absent():
    positions = {"a": 0, "b": 1, "c": 2, "d": 3}
    blob = pack_values({"c": 1e12 + 0.5, "a": None}, positions)
    assert len(blob) == 3 * 8  # up to the last position present; d is never reached
    assert blob[8:16] == ABSENT_BYTES
    assert unpack_values(blob, ["a", "b", "c", "d"]) == {"a": None, "c": 1e12 + 0.5}
    assert unpack_values(pack_values({}, positions), ["a"]) == {}


def test_append_then_read_after_gives_back_exactly_what_was_journaled(tmp_path):
    journal = Journal(tmp_path, clock=Clock(DAY1 + 100))
    samples = [
        sample(DAY1 + 10.25, "h1", {"cpu": 0.1, "mem": None}),
        sample(DAY1 + 10.25, "h2", {"mem": 2.0**53, "cpu": -3.5}),
        sample(DAY1 + 20.0, "h1", {"new": 7.0}, instance="sda"),
        sample(DAY1 + 20.0, "h1", {"x": 1.0}, dataset="other"),
    ]
    positions = journal.append(samples)
    assert positions == [("2023-11-14", 1), ("2023-11-14", 2), ("2023-11-14", 3), ("2023-11-14", 4)]
    rows = list(read_after(tmp_path, None))
    assert [(r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
        (s.ts, s.host, s.dataset, s.instance, s.values) for s in samples
    ]
    assert [r[0] for r in rows] == positions
    assert [r[0] for r in read_after(tmp_path, ("2023-11-14", 2))] == positions[2:]
    journal.close()


def test_a_resend_is_recognised_and_not_written_twice(tmp_path):
    journal = Journal(tmp_path, clock=Clock(DAY1 + 100))
    first = journal.append([sample(DAY1 + 10), sample(DAY1 + 20)])
    again = journal.append([sample(DAY1 + 20, values={"a": 99.0}), sample(DAY1 + 30)])
    assert first == [("2023-11-14", 1), ("2023-11-14", 2)]
    assert again == [None, ("2023-11-14", 3)]
    values = [r[5]["a"] for r in read_after(tmp_path, None)]
    assert values == [1.0, 1.0, 1.0]  # the first copy is kept
    journal.close()


def test_files_rotate_by_day_of_receipt_and_a_resend_across_midnight_is_still_recognised(
    tmp_path,
):
    clock = Clock(DAY2 - 5)
    journal = Journal(tmp_path, clock=clock, lookback=300)  # samples may be 300 s ahead
    journal.append([sample(DAY2 - 10), sample(DAY2 + 200)])  # the second is stamped ahead
    clock.now = DAY2 + 5
    positions = journal.append(
        [
            sample(DAY2 - 10),  # resend of a sample journaled yesterday
            sample(DAY2 + 200),  # resend of the one stamped ahead, within the lookback
            sample(DAY2 - 3600, "late"),  # a late sample: stays in today's file
            sample(DAY2 + 1),
        ]
    )
    assert positions == [None, None, ("2023-11-15", 1), ("2023-11-15", 2)]
    assert [p.name for p in journal.day_files()] == ["2023-11-14.sqlite", "2023-11-15.sqlite"]
    rows = list(read_after(tmp_path, None))
    assert [(r[0][0], r[1], r[2]) for r in rows] == [
        ("2023-11-14", DAY2 - 10, "h1"),
        ("2023-11-14", DAY2 + 200, "h1"),
        ("2023-11-15", DAY2 - 3600, "late"),
        ("2023-11-15", DAY2 + 1, "h1"),
    ]
    journal.close()


def test_retention_removes_whole_old_days_and_forgets_them_for_resends(tmp_path):
    clock = Clock(DAY1 + 10)
    journal = Journal(tmp_path, clock=clock)
    journal.append([sample(DAY1 + 1)])
    clock.now = DAY2 + 10
    journal.append([sample(DAY2 + 1)])
    assert journal.remove_days_before(day_name(DAY2)) == ["2023-11-14"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("2023-11-14")] == []
    # no file left to ask
    assert journal.append([sample(DAY1 + 1)]) == [("2023-11-15", 2)]
    journal.close()


def test_a_failed_transaction_leaves_nothing_and_the_next_one_works(tmp_path):
    journal = Journal(tmp_path, clock=Clock(DAY1 + 10))
    journal.append([sample(DAY1 + 1)])
    broken = Sample(0, DAY1 + 2, "new-host", "system", "", {"fresh": object()})
    with pytest.raises(Exception):  # noqa: B017 - struct.error; what matters is what follows
        journal.append([sample(DAY1 + 3, "other", {"b": 2.0}), broken])
    # the rolled-back series and variable must not be remembered by id
    assert journal.append([sample(DAY1 + 3, "other", {"b": 2.0})]) == [("2023-11-14", 2)]
    rows = list(read_after(tmp_path, None))
    assert [(r[2], r[5]) for r in rows] == [("h1", {"a": 1.0}), ("other", {"b": 2.0})]
    journal.close()


def test_a_variable_added_mid_day_widens_later_rows_only(tmp_path):
    journal = Journal(tmp_path, clock=Clock(DAY1 + 10))
    journal.append([sample(DAY1 + 1, values={"a": 1.0})])
    journal.append([sample(DAY1 + 2, values={"a": 2.0, "b": 3.0})])
    connection = open_day_readonly(journal.day_files()[0])
    catalog = DayCatalog(connection)
    assert catalog.variables == {"system": ["a", "b"]}
    widths = [length for (length,) in connection.execute("SELECT length(vals) FROM samples")]
    assert widths == [8, 16]
    connection.close()
    journal.close()


def test_a_file_of_another_format_is_refused_with_its_path(tmp_path):
    path = tmp_path / "2023-11-14.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE samples (id INTEGER PRIMARY KEY, vals TEXT)")
    old.commit()
    old.close()
    journal = Journal(tmp_path, clock=Clock(DAY1 + 10))
    with pytest.raises(JournalError, match=r"2023-11-14.sqlite: journal format 0"):
        journal.append([sample(DAY1 + 1)])
    with pytest.raises(JournalError, match="journal format 0"):
        list(read_after(tmp_path, None))


def test_rotation_and_reading_after_a_watermark(tmp_path):
    clock = Clock(DAY1 + 100)
    journal = Journal(tmp_path, clock=clock)
    journal.append([sample(DAY1 + 10), sample(DAY1 + 20)])
    clock.now = DAY2 + 100
    journal.append([sample(DAY2 + 10, values={"a": 5.0, "b": None})])
    journal.close()
    assert [p.name for p in journal.day_files()] == ["2023-11-14.sqlite", "2023-11-15.sqlite"]
    everything = list(read_after(tmp_path, None))
    assert [(row[0], row[1]) for row in everything] == [
        (("2023-11-14", 1), DAY1 + 10),
        (("2023-11-14", 2), DAY1 + 20),
        (("2023-11-15", 1), DAY2 + 10),
    ]
    assert everything[2][5] == {"a": 5.0, "b": None}
    after = list(read_after(tmp_path, ("2023-11-14", 1)))
    assert [row[0] for row in after] == [("2023-11-14", 2), ("2023-11-15", 1)]


def test_values_are_plain_sql_for_affair_query_and_the_file_is_wal(tmp_path):
    journal = Journal(tmp_path, clock=Clock(DAY1 + 10))
    journal.append([sample(DAY1 + 1, values={"cpu_user": 2.5, "load1": None})])
    journal.close()
    connection = sqlite3.connect(tmp_path / "2023-11-14.sqlite")
    connection.create_function("value_at", 2, value_at)
    row = connection.execute(
        "SELECT host, ts, value_at(vals, 0), value_at(vals, 1), value_at(vals, 2)"
        " FROM samples JOIN series ON series.id = samples.series"
    ).fetchone()
    assert row == ("h1", DAY1 + 1, 2.5, None, None)
    positions = connection.execute("SELECT name, position FROM variables").fetchall()
    assert sorted(positions) == [("cpu_user", 0), ("load1", 1)]
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def test_watermark_survives_and_tolerates_garbage(tmp_path):
    mark = Watermark(tmp_path / "state" / "w")
    assert mark.load() is None
    mark.save(("2027-01-15", 42))
    assert mark.load() == ("2027-01-15", 42)
    assert json.loads((tmp_path / "state" / "w").read_text()) == ["2027-01-15", 42]
    (tmp_path / "state" / "w").write_text("garbage")
    assert mark.load() is None


def test_a_batch_mixing_resends_and_new_samples_gets_each_its_own_answer(tmp_path):
    journal = Journal(tmp_path, clock=Clock(DAY1 + 100))
    journal.append([sample(DAY1 + 10)])
    positions = journal.append(
        [
            sample(DAY1 + 20, "new-host", {"fresh": 1.0}),  # a new series and variable...
            sample(DAY1 + 10),  # ...in the batch with a resend: the slow path redoes them
            sample(DAY1 + 30),
        ]
    )
    assert positions == [("2023-11-14", 2), None, ("2023-11-14", 3)]
    rows = [(r[0], r[2], r[5]) for r in read_after(tmp_path, None)]
    assert rows == [
        (("2023-11-14", 1), "h1", {"a": 1.0}),
        (("2023-11-14", 2), "new-host", {"fresh": 1.0}),
        (("2023-11-14", 3), "h1", {"a": 1.0}),
    ]
    journal.close()


def test_day_name_is_right_across_midnight_and_back():
    from datetime import UTC, datetime

    from affair.storage.journal import day_name

    midnight = 1_800_057_600.0  # 00:00 UTC
    for ts in (
        midnight - 0.001,
        midnight,
        midnight + 86399.999,
        midnight + 86400,
        midnight - 86400 * 400,
        midnight,
    ):
        assert day_name(ts) == datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d"), ts
