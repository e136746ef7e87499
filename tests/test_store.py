"""The RRD store against real librrd files."""

import subprocess

import pytest
import rrdtool

from affair.config import parse_config
from affair.errors import StoreError
from affair.storage.rrd_store import RrdStore

T0 = 1_800_000_000  # a multiple of 10 and of 60

CONFIG = parse_config(
    {
        "datasets": {
            "system": {
                "variables": {
                    "cpu_user": {"type": "GAUGE", "min": 0, "max": 100},
                    "net_in": {"type": "DERIVE", "min": 0},
                }
            }
        }
    }
)


@pytest.fixture
def store(tmp_path):
    return RrdStore(CONFIG, tmp_path)


def test_create_has_declared_and_extra_variables_and_the_full_ladder(store):
    series = store.open_series("ldc01", "system", "", ["extra"], T0)
    assert series.variables == ["cpu_user", "net_in", "extra"]
    assert series.counters == {"net_in"}
    info = rrdtool.info(str(series.path))
    assert info["step"] == 10
    assert info["ds[cpu_user].max"] == 100.0
    assert info["ds[net_in].type"] == "DERIVE"
    assert info["ds[extra].type"] == "GAUGE"
    rras = sorted({(info[f"rra[{i}].pdp_per_row"], info[f"rra[{i}].rows"]) for i in range(21)})
    assert rras == [(1, 360), (6, 360), (24, 360), (180, 336), (720, 372), (2160, 368), (8640, 366)]
    assert {info[f"rra[{i}].cf"] for i in range(21)} == {"AVERAGE", "MIN", "MAX"}
    assert not list(series.path.parent.glob(".*creating"))  # no temporary left behind


def test_rows_read_back_at_10s_labelled_by_interval_end(store):
    series = store.open_series("ldc01", "system", "", [], T0)
    rows = [(T0 + 10 * i, {"cpu_user": float(i)}) for i in range(1, 7)]
    store.update_many(series, rows)
    fetched = store.fetch(series.path, "AVERAGE", T0, T0 + 60)
    assert fetched.step == 10
    by_time = dict(zip(fetched.times, fetched.columns["cpu_user"], strict=True))
    assert [by_time[T0 + 10 * i] for i in range(1, 7)] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert by_time[T0 + 10] == 1.0  # the sample sent at T0+10 is the row labelled T0+10
    assert series.last_update == T0 + 60


def test_consolidated_min_avg_max(store):
    series = store.open_series("ldc01", "system", "", [], T0)
    values = [3.0, 9.0, 6.0, 1.0, 7.0, 4.0, 5.0]  # six fill the minute T0..T0+60, one closes it
    store.update_many(series, [(T0 + 10 * (i + 1), {"cpu_user": v}) for i, v in enumerate(values)])
    results = {
        cf: store.fetch(series.path, cf, T0, T0 + 60, resolution=60)
        for cf in ("AVERAGE", "MIN", "MAX")
    }
    for cf, expected in (("AVERAGE", 5.0), ("MIN", 1.0), ("MAX", 9.0)):
        result = results[cf]
        assert result.step == 60
        row = dict(zip(result.times, result.columns["cpu_user"], strict=True))
        assert row[T0 + 60] == expected, cf


def test_unknown_values_and_absent_variables_are_gaps(store):
    series = store.open_series("ldc01", "system", "", [], T0)
    store.update_many(
        series, [(T0 + 10, {"cpu_user": 1.0}), (T0 + 20, {"cpu_user": None}), (T0 + 30, {})]
    )
    fetched = store.fetch(series.path, "AVERAGE", T0, T0 + 30)
    row = dict(zip(fetched.times, fetched.columns["cpu_user"], strict=True))
    assert (row[T0 + 10], row[T0 + 20], row[T0 + 30]) == (1.0, None, None)


def test_gauge_rows_land_in_their_columns_in_any_order_with_gaps(store):
    # Rows in the file's own order take the writer's one-join path; the others
    # (another order, an unknown value, a variable missing) the general one.
    series = store.open_series("ldc01", "gauges", "", ["a", "b", "c"], T0)
    assert series.variables == ["a", "b", "c"] and not series.counters
    rows = [
        (T0 + 10, {"a": 1.5, "b": 2.5, "c": 3.5}),
        (T0 + 20, {"c": 30.0, "a": 10.0, "b": 20.0}),
        (T0 + 30, {"a": 4.0, "b": None, "c": 6.0}),
        (T0 + 40, {"a": 7.0, "c": 9.0}),
    ]
    store.update_many(series, rows)
    fetched = store.fetch(series.path, "AVERAGE", T0, T0 + 40)
    got = {name: dict(zip(fetched.times, fetched.columns[name], strict=True)) for name in "abc"}
    assert [got["a"][T0 + 10 * i] for i in range(1, 5)] == [1.5, 10.0, 4.0, 7.0]
    assert [got["b"][T0 + 10 * i] for i in range(1, 5)] == [2.5, 20.0, None, None]
    assert [got["c"][T0 + 10 * i] for i in range(1, 5)] == [3.5, 30.0, 6.0, 9.0]


def test_derive_stores_a_rate(store):
    series = store.open_series("ldc01", "system", "", [], T0)
    store.update_many(series, [(T0 + 10 * i, {"net_in": 1000.0 * i}) for i in range(1, 5)])
    fetched = store.fetch(series.path, "AVERAGE", T0, T0 + 40)
    row = dict(zip(fetched.times, fetched.columns["net_in"], strict=True))
    assert row[T0 + 30] == pytest.approx(100.0)  # 1000 per 10 s


def test_a_variable_added_to_the_config_is_tuned_in_with_history_kept(tmp_path):
    old = RrdStore(CONFIG, tmp_path)
    series = old.open_series("ldc01", "system", "", [], T0)
    old.update_many(series, [(T0 + 10 * i, {"cpu_user": float(i)}) for i in range(1, 4)])
    wider = parse_config(
        {
            "datasets": {
                "system": {
                    "variables": {
                        "cpu_user": {"min": 0, "max": 100},
                        "net_in": {"type": "DERIVE", "min": 0},
                        "temperature": {},
                    }
                }
            }
        }
    )
    new = RrdStore(wider, tmp_path)
    reopened = new.open_series("ldc01", "system", "", [], T0 + 40)
    assert reopened.variables == ["cpu_user", "net_in", "temperature"]
    assert reopened.last_update == T0 + 30
    new.update_many(reopened, [(T0 + 40, {"cpu_user": 4.0, "temperature": 41.5})])
    fetched = new.fetch(reopened.path, "AVERAGE", T0, T0 + 40)
    row = dict(zip(fetched.times, fetched.columns["cpu_user"], strict=True))
    assert [row[T0 + 10 * i] for i in range(1, 5)] == [1.0, 2.0, 3.0, 4.0]  # history kept
    assert dict(zip(fetched.times, fetched.columns["temperature"], strict=True))[T0 + 40] == 41.5


def test_store_errors_carry_the_path(store):
    series = store.open_series("ldc01", "system", "", [], T0)
    store.update_many(series, [(T0 + 10, {"cpu_user": 1.0})])
    with pytest.raises(StoreError) as caught:
        store.update_many(series, [(T0 + 10, {"cpu_user": 1.0})])
    assert str(series.path) in str(caught.value)
    assert "update" in str(caught.value)


@pytest.mark.integration
def test_the_rrdtool_cli_reads_our_files(store):
    series = store.open_series("ldc01", "system", "", [], T0)
    store.update_many(series, [(T0 + 10, {"cpu_user": 42.0})])
    output = subprocess.run(
        ["rrdtool", "fetch", str(series.path), "AVERAGE", "-s", str(T0), "-e", str(T0 + 10)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"{T0 + 10}: 4.2000000000e+01" in output


def test_discovery(store):
    store.open_series("ldc01", "system", "", [], T0)
    store.open_series("ldc01", "disks", "var_log", ["used"], T0)
    store.open_series("gdc01", "system", "", [], T0)
    assert store.hosts() == ["gdc01", "ldc01"]
    assert store.series("ldc01") == [("disks", "var_log"), ("system", "")]
