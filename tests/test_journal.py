"""The journal: durable, idempotent on resend, rotated by day, read back in order."""

import json
import sqlite3

from affair.journal import Journal, Watermark, read_after
from affair.validate import Sample

DAY1 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
DAY2 = DAY1 + 86400


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def sample(ts, host="ldc01", value=1.0):
    return Sample(1, ts, host, "system", "", {"cpu_user": value, "load1": None})


def test_append_returns_positions_and_recognises_resends(tmp_path):
    journal = Journal(tmp_path, clock=Clock(DAY1))
    first = journal.append([sample(DAY1), sample(DAY1 + 10)])
    assert first == [("2027-01-15", 1), ("2027-01-15", 2)]
    again = journal.append([sample(DAY1 + 10), sample(DAY1 + 20)])
    assert again == [None, ("2027-01-15", 3)]  # the resend is recognised, the new one appended


def test_rotation_and_reading_after_a_watermark(tmp_path):
    clock = Clock(DAY1)
    journal = Journal(tmp_path, clock=clock)
    journal.append([sample(DAY1), sample(DAY1 + 10)])
    clock.now = DAY2
    journal.append([sample(DAY2, value=5.0)])
    journal.close()
    assert [p.name for p in journal.day_files()] == ["2027-01-15.sqlite", "2027-01-16.sqlite"]
    everything = list(read_after(tmp_path, None))
    assert [(row[0], row[1]) for row in everything] == [
        (("2027-01-15", 1), DAY1),
        (("2027-01-15", 2), DAY1 + 10),
        (("2027-01-16", 1), DAY2),
    ]
    assert everything[2][5] == {"cpu_user": 5.0, "load1": None}
    after = list(read_after(tmp_path, ("2027-01-15", 1)))
    assert [row[0] for row in after] == [("2027-01-15", 2), ("2027-01-16", 1)]


def test_values_are_json_for_any_sqlite_client(tmp_path):
    Journal(tmp_path, clock=Clock(DAY1)).append([sample(DAY1, value=2.5)])
    connection = sqlite3.connect(tmp_path / "2027-01-15.sqlite")
    (cpu,) = connection.execute("SELECT json_extract(vals, '$.cpu_user') FROM samples").fetchone()
    assert cpu == 2.5
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_retention_removes_whole_days(tmp_path):
    clock = Clock(DAY1)
    journal = Journal(tmp_path, clock=clock)
    journal.append([sample(DAY1)])
    clock.now = DAY2
    journal.append([sample(DAY2)])
    assert journal.remove_days_before("2027-01-16") == ["2027-01-15"]
    assert [p.name for p in journal.day_files()] == ["2027-01-16.sqlite"]


def test_watermark_survives_and_tolerates_garbage(tmp_path):
    mark = Watermark(tmp_path / "state" / "w")
    assert mark.load() is None
    mark.save(("2027-01-15", 42))
    assert mark.load() == ("2027-01-15", 42)
    assert json.loads((tmp_path / "state" / "w").read_text()) == ["2027-01-15", 42]
    (tmp_path / "state" / "w").write_text("garbage")
    assert mark.load() is None
