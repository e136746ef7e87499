"""The writer: batching per file, ordering, duplicates and the watermark, on real RRDs."""

import pytest

from affair.config import parse_config
from affair.ingest.selfmetrics import Metrics
from affair.ingest.validate import Sample
from affair.ingest.writer import RrdWriter
from affair.storage.journal import Watermark
from affair.storage.rrd_store import RrdStore

T0 = 1_800_000_000
CONFIG = parse_config({"datasets": {"system": {"variables": {"cpu_user": {}}}}})


class Clock:
    now = float(T0 + 1000)

    def __call__(self):
        return self.now


class CountingStore(RrdStore):
    calls = 0

    def update_many(self, series_file, rows):
        self.calls += 1
        return super().update_many(series_file, rows)


def items(host, start, count, first_id=1):
    return [
        (
            ("2027-01-15", first_id + i),
            Sample(i, T0 + 10 * (start + i), host, "system", "", {"cpu_user": float(start + i)}),
        )
        for i in range(count)
    ]


def fetch_column(store, host, start, end):
    result = store.fetch(store.path(host, "system"), "AVERAGE", start, end)
    return dict(zip(result.times, result.columns["cpu_user"], strict=True))


def test_several_timestamps_of_one_file_go_in_one_call(tmp_path):
    store = CountingStore(CONFIG, tmp_path)
    metrics = Metrics()
    writer = RrdWriter(store, metrics, Watermark(tmp_path / "w"), write_delay=30, clock=Clock())
    writer.add(items("ldc01", 1, 6))
    assert writer.write_due() == 0  # held: the delay has not passed
    writer.clock.now += 30
    assert writer.write_due() == 1
    assert store.calls == 1
    assert metrics.counts["written"] == 6
    column = fetch_column(store, "ldc01", T0, T0 + 60)
    assert [column[T0 + 10 * i] for i in range(1, 7)] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert Watermark(tmp_path / "w").load() == ("2027-01-15", 6)


def test_out_of_order_rows_are_sorted_and_old_ones_counted(tmp_path):
    store = RrdStore(CONFIG, tmp_path)
    metrics = Metrics()
    writer = RrdWriter(store, metrics, clock=Clock())
    batch = items("ldc01", 1, 3)
    writer.add(list(reversed(batch)))
    writer.write_due(force=True)
    assert metrics.counts["written"] == 3
    writer.add(items("ldc01", 2, 1, first_id=10))  # T0+20 again: not after the file's end
    writer.write_due(force=True)
    assert metrics.counts["rej_not_increasing"] == 1
    assert metrics.counts["written"] == 3


def test_replayed_rows_already_written_are_skipped_silently(tmp_path):
    store = RrdStore(CONFIG, tmp_path)
    metrics = Metrics()
    writer = RrdWriter(store, metrics, clock=Clock())
    writer.add(items("ldc01", 1, 3))
    writer.write_due(force=True)
    writer.add(items("ldc01", 1, 5), replayed=True)  # a crash replays rows 1..5; 1..3 are on disk
    writer.write_due(force=True)
    assert metrics.counts["rej_not_increasing"] == 0
    assert metrics.counts["written"] == 5
    column = fetch_column(store, "ldc01", T0, T0 + 50)
    assert [column[T0 + 10 * i] for i in range(1, 6)] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_watermark_stays_before_the_oldest_held_row(tmp_path):
    store = RrdStore(CONFIG, tmp_path)
    clock = Clock()
    writer = RrdWriter(store, Metrics(), Watermark(tmp_path / "w"), write_delay=30, clock=clock)
    writer.add(items("ldc01", 1, 2, first_id=1))
    clock.now += 30
    writer.add(items("gdc01", 1, 2, first_id=3))
    writer.write_due()  # ldc01 is due, gdc01 is held
    assert Watermark(tmp_path / "w").load() == ("2027-01-15", 2)
    clock.now += 30
    writer.write_due()
    assert Watermark(tmp_path / "w").load() == ("2027-01-15", 4)


def test_undeclared_variables_join_the_file(tmp_path):
    store = RrdStore(CONFIG, tmp_path)
    writer = RrdWriter(store, Metrics(), clock=Clock())
    writer.add([(None, Sample(1, T0 + 10, "ldc01", "system", "", {"cpu_user": 1.0}))])
    writer.write_due(force=True)
    writer.add(
        [(None, Sample(2, T0 + 20, "ldc01", "system", "", {"cpu_user": 2.0, "fan_rpm": 900.0}))]
    )
    writer.write_due(force=True)
    path = store.path("ldc01", "system")
    assert store.variables(path) == ["cpu_user", "fan_rpm"]
    result = store.fetch(path, "AVERAGE", T0, T0 + 20)
    assert dict(zip(result.times, result.columns["fan_rpm"], strict=True))[T0 + 20] == 900.0


def test_a_writer_lock_held_too_long_is_a_named_error_naming_the_data_dir(tmp_path):
    import fcntl

    from affair.errors import DataDirLocked
    from affair.ingest.writer_process import _wait_for_lock

    lock_path = tmp_path / "data" / "_state" / "writer.lock"
    lock_path.parent.mkdir(parents=True)
    with open(lock_path, "a") as held, open(lock_path, "a") as wanted:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(DataDirLocked) as caught:
            _wait_for_lock(wanted, lock_path, timeout=0.3)
    assert str(caught.value) == (
        f"an RRD writer of an earlier recorder is using {tmp_path / 'data'}"
    )
