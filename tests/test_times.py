"""Times as typed on the command line: all UTC."""

import pytest

from affair.times import iso_utc, parse_time

NOW = 1_700_050_000.5  # 2023-11-15T12:06:40.5Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("today", 1_700_006_400),
        ("yesterday", 1_700_006_400 - 86_400),
        ("-1h", NOW - 3600),
        ("now-30min", NOW - 1800),
        ("1700000000", 1_700_000_000),
        ("1700000000.25", 1_700_000_000.25),
        ("2023-11-15", 1_700_006_400),
        ("2023-11-15T01:00", 1_700_010_000),
        ("2023-11-15T01:00:00Z", 1_700_010_000),
        ("2023-11-15 03:00:00+02:00", 1_700_010_000),
    ],
)
def test_accepted_forms(text, expected):
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["last tuesday", "-1x", "now-", "2023-13-01", ""])
def test_anything_else_names_the_forms(text):
    with pytest.raises(ValueError, match=r"not a time: .* \(use now, today, yesterday, now-1h"):
        parse_time(text, NOW)


def test_iso_utc():
    assert iso_utc(1_700_010_000.9) == "2023-11-15T01:00:00Z"
