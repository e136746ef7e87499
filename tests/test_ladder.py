"""The archive ladder's maths (config.archive and storage.ladder), tested without files."""

import pytest

from affair.config.archive import AFFAIR_LADDER, Archive, parse_archive, validate_ladder
from affair.storage.ladder import (
    align,
    archive_for_range,
    archive_for_window,
    ds_definition,
    rra_definitions,
)
from affair.times import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10),
        ("10", 10),
        (10, 10),
        ("1min", 60),
        ("4m", 240),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "0s", "-5s", "5 parsecs", "1.5h", True])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_parse_archive_rows_or_span():
    assert parse_archive("10s:360") == Archive(10, 360)
    assert parse_archive("1min:6h") == Archive(60, 360)
    with pytest.raises(ValueError, match="whole number of steps"):
        parse_archive("7s:1min")
    with pytest.raises(ValueError, match="STEP:ROWS"):
        parse_archive("10s")


def test_affair_ladder_spans_the_graph_windows():
    ladder = [parse_archive(spec) for spec in AFFAIR_LADDER]
    validate_ladder(ladder, 10)
    spans = [archive.span for archive in ladder]
    assert spans == [3600, 6 * 3600, 86400, 7 * 86400, 31 * 86400, 92 * 86400, 366 * 86400]


def test_affair_ladder_rra_lines():
    ladder = [parse_archive(spec) for spec in AFFAIR_LADDER]
    lines = rra_definitions(ladder, 10)
    assert len(lines) == 21
    assert lines[:3] == ["RRA:AVERAGE:0.5:1:360", "RRA:MIN:0.5:1:360", "RRA:MAX:0.5:1:360"]
    assert "RRA:MAX:0.5:24:360" in lines  # 4 min = 24 PDPs of 10 s
    assert lines[-1] == "RRA:MAX:0.5:8640:366"  # 1 day = 8640 PDPs


@pytest.mark.parametrize(
    ("ladder", "message"),
    [
        ([], "at least one"),
        ([Archive(60, 10)], "must equal the base step"),
        ([Archive(10, 360), Archive(10, 720)], "steps must grow"),
        ([Archive(10, 360), Archive(15, 720)], "multiple of the base step"),
        ([Archive(10, 360), Archive(60, 60)], "no more than the finer"),
    ],
)
def test_impossible_ladders(ladder, message):
    with pytest.raises(ValueError, match=message):
        validate_ladder(ladder, 10)


def test_ds_definition():
    assert ds_definition("cpu", "GAUGE", 20, 0, 100) == "DS:cpu:GAUGE:20:0:100"
    assert ds_definition("bytes", "DERIVE", 20, 0.0, None) == "DS:bytes:DERIVE:20:0:U"
    assert ds_definition("t", "GAUGE", 20, -20.5, None) == "DS:t:GAUGE:20:-20.5:U"


def test_archive_for_window_picks_the_finest_that_covers():
    ladder = [parse_archive(spec) for spec in AFFAIR_LADDER]
    assert archive_for_window(ladder, 3600).step == 10
    assert archive_for_window(ladder, 3601).step == 60
    assert archive_for_window(ladder, 86400).step == 240
    assert (
        archive_for_window(ladder, 10 * 366 * 86400).step == 86400
    )  # longer than kept: the longest


def test_archive_for_range_is_the_finest_that_holds_it_back_from_now_as_librrd_fetch_picks():
    ladder = [parse_archive(spec) for spec in AFFAIR_LADDER]  # 10s:360, 1min:360, 4min:360, ...
    now = 1_700_006_400
    assert archive_for_range(ladder, now - 600, now - 300, now).step == 10  # in the last hour
    # ten minutes, but five hours ago: the 10 s rows are gone, the 1 min ones hold it
    assert archive_for_range(ladder, now - 5 * 3600, now - 5 * 3600 + 600, now).step == 60
    assert archive_for_range(ladder, now - 3 * 86400, now - 2 * 86400, now).step == 1800
    # ending ahead of now: no more rows than the archive has (no 8,000 rows of 10 s)
    assert archive_for_range(ladder, now - 1800, now + 80000, now).step == 240
    assert archive_for_range(ladder, now - 2 * 366 * 86400, now, now).step == 86400  # the longest


def test_align():
    assert align(21, 10) == 20
    assert align(20, 10) == 20
    assert align(19.999, 10) == 10
