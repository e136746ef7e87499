"""Value axes: SI prefixes, nice ticks, legend numbers, and local-time ticks."""

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from affair.outputs.plot.scale import (
    finite_range,
    format_value,
    nice_step,
    prefix_power,
    prefixed_unit,
    tick_labels,
    value_axis,
)
from affair.outputs.plot.timeaxis import (
    SPAN_RULES,
    SPAN_TICKS,
    TickRule,
    describe_end,
    describe_range,
    rule_for_span,
    time_ticks,
)

ZURICH = ZoneInfo("Europe/Zurich")


@pytest.mark.parametrize(
    ("magnitude", "unit", "power", "shown"),
    [
        (3.4e6, "B/s", 2, "MB/s"),
        (999.0, "B/s", 0, "B/s"),
        (1000.0, "B/s", 1, "kB/s"),
        (2.5e9, "B", 3, "GiB"),  # amounts of bytes: binary, as df says them
        (0.004, "s", -1, "ms"),
        (0.004, "B/s", 0, "B/s"),  # no millibytes
        (5e6, "%", 0, "%"),  # never a prefix on a percentage
        (12000.0, "", 1, "k"),
        (12000.0, "samples", 1, "k samples"),
        (12000.0, "pkt/s", 1, "kpkt/s"),
        (0.0, "B/s", 0, "B/s"),
    ],
)
def test_prefix_power_and_unit(magnitude, unit, power, shown):
    assert prefix_power(magnitude, unit) == power
    assert prefixed_unit(power, unit) == shown


def test_nice_step_picks_1_2_2_5_5():
    assert nice_step(100, 5) == 20
    assert nice_step(97, 5) == 20
    assert nice_step(10, 4) == 2.5
    assert nice_step(3.2e8, 5) == 1e8
    assert nice_step(0, 5) == 1.0


def test_value_axis_starts_at_zero_or_the_declared_floor_and_covers_the_data():
    assert value_axis(13.0, 88.0, floor=0.0) == (0.0, 100.0, [0.0, 20.0, 40.0, 60.0, 80.0, 100.0])
    bottom, top, ticks = value_axis(1.2e8, 3.1e8, floor=None)
    assert bottom == 0.0 and top == 4e8 and ticks[1] == 1e8
    bottom, top, ticks = value_axis(-3.0, 7.0, floor=None)  # negative data keep their sign
    assert bottom == -5.0 and top == 7.5 and 0.0 in ticks


def test_value_axis_leaves_headroom_but_not_past_a_declared_ceiling():
    assert value_axis(0.0, 50.0, floor=0.0)[1] == 60.0  # a line at 50 is not in the frame
    assert value_axis(0.0, 97.0, floor=0.0, ceiling=100.0)[:2] == (0.0, 100.0)
    assert value_axis(0.0, 140.0, floor=0.0, ceiling=100.0)[1] == 150.0  # data win


def test_value_axis_without_data_or_with_a_constant():
    assert value_axis(None, None, floor=0.0)[:2] == (0.0, 1.0)
    bottom, top, _ = value_axis(0.0, 0.0, floor=0.0)
    assert (bottom, top) == (0.0, 1.0)
    bottom, top, _ = value_axis(5.0, 5.0, floor=None)
    assert bottom == 0.0 and top >= 5.0


def test_tick_labels_use_the_decimals_the_step_needs():
    assert tick_labels([0.0, 1e8, 2e8, 3e8], 1e6) == ["0", "100", "200", "300"]
    assert tick_labels([0.0, 2.5, 5.0, 7.5], 1.0) == ["0.0", "2.5", "5.0", "7.5"]
    assert tick_labels([0.0, 0.2, 0.4], 1.0) == ["0.0", "0.2", "0.4"]


def test_format_value_three_significant_digits_and_a_prefix():
    assert format_value(3.123e8, "B/s") == "312 MB/s"
    assert format_value(45.23, "%") == "45.2 %"
    assert format_value(2.5, "") == "2.50"
    assert format_value(0.0, "B") == "0 B"
    assert format_value(None, "B") == "–"
    assert format_value(float("nan"), "B") == "–"


def test_finite_range_ignores_nan_and_empty():
    nan = np.nan
    assert finite_range(np.array([nan, 2.0, 5.0]), np.array([nan, nan]), None) == (2.0, 5.0)
    assert finite_range(np.array([nan])) == (None, None)


def test_time_ticks_fall_on_round_local_times():
    end = datetime(2026, 11, 22, 14, 33, tzinfo=ZURICH).timestamp()
    ticks = time_ticks(end - 3600, end, "1h", tz=ZURICH)
    assert [label for _, label in ticks] == ["13:40", "13:50", "14:00", "14:10", "14:20", "14:30"]
    assert all(datetime.fromtimestamp(t, ZURICH).minute % 10 == 0 for t, _ in ticks)
    day = time_ticks(end - 86400, end, "1d", tz=ZURICH)
    assert [label for _, label in day][:3] == ["15:00", "18:00", "21:00"]
    assert ("Sun 22" in [label for _, label in day]) is True  # midnight says the day


def test_time_ticks_step_in_local_time_across_daylight_saving():
    # Europe/Zurich left summer time at 03:00 on 25 Oct 2026: that day has 25 hours.
    end = datetime(2026, 10, 25, 12, 0, tzinfo=ZURICH).timestamp()
    ticks = time_ticks(end - 86400, end, "1d", tz=ZURICH)
    labels = [label for _, label in ticks]
    assert labels == ["15:00", "18:00", "21:00", "Sun 25", "03:00", "06:00", "09:00", "12:00"]
    midnight, three = ticks[3][0], ticks[4][0]
    assert three - midnight == 4 * 3600  # wall-clock 00:00 -> 03:00 took four hours that night


def test_time_ticks_of_long_windows():
    end = datetime(2026, 11, 22, 14, 0, tzinfo=ZURICH).timestamp()
    week = [label for _, label in time_ticks(end - 7 * 86400, end, "1w", tz=ZURICH)]
    assert week == ["Mon 16", "Tue 17", "Wed 18", "Thu 19", "Fri 20", "Sat 21", "Sun 22"]
    year = [label for _, label in time_ticks(end - 366 * 86400, end, "1y", tz=ZURICH)]
    assert year[0] == "Dec" and year[1] == "Jan 2026" and year[-1] == "Nov" and len(year) == 12
    month = [label for _, label in time_ticks(end - 31 * 86400, end, "1m", tz=ZURICH)]
    assert month == ["25 Oct", "1 Nov", "5 Nov", "9 Nov", "13 Nov", "17 Nov", "21 Nov"]
    assert describe_end(end, tz=ZURICH) == "Sun 22 Nov 14:00"


def test_a_custom_range_gets_the_finest_ticks_that_stay_readable():
    def labels(minutes):
        end = datetime(2026, 11, 22, 14, 0, tzinfo=ZURICH).timestamp()
        rule = rule_for_span(minutes * 60)
        return rule, [label for _, label in time_ticks(end - minutes * 60, end, rule, tz=ZURICH)]

    assert labels(5) == (SPAN_RULES[0], ["13:56", "13:57", "13:58", "13:59", "14:00"])
    assert labels(60)[1] == ["13:10", "13:20", "13:30", "13:40", "13:50", "14:00"]
    assert labels(120)[1] == [
        "12:15",
        "12:30",
        "12:45",
        "13:00",
        "13:15",
        "13:30",
        "13:45",
        "14:00",
    ]
    rule, twelve_hours = labels(12 * 60)
    assert (rule.unit, rule.every, twelve_hours[0], twelve_hours[-1]) == (
        "hour",
        3,
        "03:00",
        "12:00",
    )
    assert labels(10 * 86400 // 60)[0] == TickRule("day", 2, "%a %-d")
    assert labels(366 * 86400 // 60)[0].unit == "month"
    for minutes in (1, 7, 90, 600, 3000, 20000, 100000, 527040):
        assert 1 <= len(labels(minutes)[1]) <= SPAN_TICKS, minutes


def test_a_custom_range_in_words():
    start = datetime(2026, 11, 22, 14, 0, tzinfo=ZURICH).timestamp()
    assert describe_range(start, start + 3600, tz=ZURICH) == "Sun 22 Nov 14:00 to 15:00"
    assert describe_range(start, start + 86400, tz=ZURICH) == "Sun 22 Nov 14:00 to Mon 23 Nov 14:00"
    new_year = datetime(2027, 1, 2, 0, 0, tzinfo=ZURICH).timestamp()
    assert describe_range(start, new_year, tz=ZURICH) == "22 Nov 2026 14:00 to 2 Jan 2027 00:00"
