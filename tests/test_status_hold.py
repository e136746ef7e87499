"""Rules that do not flap: ``for`` (a duration held), ``clear`` (hysteresis), ``when`` (a gate),
and the severity order of ``affair status``; all judged from the rows alone, no state."""

import pytest
from sitedata import SITE_CONFIG, STEP, site_config

from affair.errors import ConfigError
from affair.outputs.status import (
    HostSnapshot,
    SeriesSnapshot,
    by_severity,
    evaluate_host,
    render_table,
)

NOW = 1_700_000_000

DAQ = """
[datasets.app.variables]
buffer_pct = { type = "GAUGE", unit = "%" }
events = { type = "COUNTER", unit = "ev/s" }
running = { type = "GAUGE", min = 0, max = 1 }
"""


def config_with(rules):
    head, _ = SITE_CONFIG.split("[status]")
    return site_config(head + DAQ + "\n[status]\nstale_steps = 6\n" + rules)


def series(dataset="system", **columns):
    length = len(next(iter(columns.values())))
    times = tuple(NOW - STEP * i for i in range(length - 1, -1, -1))
    return SeriesSnapshot(dataset, "", NOW, STEP, times, {k: tuple(v) for k, v in columns.items()})


def colour(config, snapshot):
    status = evaluate_host(HostSnapshot("vm", (snapshot,)), config, NOW)
    return status.colour, status.results[0].detail


HELD = """
[[status.rules]]
variable = "system.cpu_user"
yellow = 80
red = 95
for = "1min"
"""


def test_a_held_rule_changes_colour_only_once_the_condition_held_for_its_duration():
    config = config_with(HELD)
    assert config.status.rules[0].hold == 60
    assert config.status.rules[0].name == "system.cpu_user > 80 / 95 for 1 min"
    # Five rows (50 s) above red: not yet; the page says what is coming.
    assert colour(config, series(cpu_user=[10.0] * 10 + [99.0] * 5)) == (
        "green",
        "system.cpu_user 99 % (red if it holds 60 s)",
    )
    # Six rows (60 s): red, and for how long.
    assert colour(config, series(cpu_user=[10.0] * 10 + [99.0] * 6)) == (
        "red",
        "system.cpu_user 99 % > 95 % for 60 s",
    )
    # Red for 50 s after a minute of yellow: yellow held, red pending.
    assert colour(config, series(cpu_user=[85.0] * 6 + [99.0] * 5))[0] == "yellow"


def test_a_single_spike_over_the_limit_does_not_colour_a_held_rule():
    config = config_with(HELD)
    flapping = [79.0, 80.2, 79.5, 81.0, 79.9, 80.5, 79.0, 80.1]
    assert colour(config, series(cpu_user=flapping))[0] == "green"


def test_a_held_rule_tolerates_a_lost_row_but_not_a_host_just_back_from_silence():
    config = config_with(HELD)
    assert colour(config, series(cpu_user=[99.0, 99.0, 99.0, None, 99.0, 99.0, 99.0]))[0] == "red"
    assert colour(config, series(cpu_user=[None] * 20 + [99.0, 99.0]))[0] == "green"


CLEARED = """
[[status.rules]]
variable = "system.cpu_user"
yellow = 80
red = 95
clear = { yellow = 75, red = 90 }
"""


@pytest.mark.parametrize(
    ("values", "expected", "detail"),
    [
        ([81.0, 79.0], "yellow", "system.cpu_user 79 %, yellow until <= 75 %"),
        ([81.0, 79.0, 74.0], "green", "system.cpu_user 74 %"),
        ([70.0, 79.0], "green", "system.cpu_user 79 %"),  # never crossed: nothing to keep
        ([96.0, 92.0], "red", "system.cpu_user 92 %, red until <= 90 %"),
        ([96.0, 89.0], "yellow", "system.cpu_user 89 % > 80 %"),
        ([96.0, 89.0, 78.0], "yellow", "system.cpu_user 78 %, yellow until <= 75 %"),
    ],
)
def test_clear_levels_keep_a_colour_until_the_value_is_back_past_them(values, expected, detail):
    assert colour(config_with(CLEARED), series(cpu_user=values)) == (expected, detail)


def test_a_bare_clear_level_belongs_to_the_lower_colour_and_works_downwards():
    config = config_with(
        '[[status.rules]]\nvariable = "system.load1"\nop = "<"\nred = 0.5\nclear = 1\n'
    )
    assert config.status.rules[0].clear == {"red": 1.0}
    assert colour(config, series(load1=[0.4, 0.9]))[0] == "red"
    assert colour(config, series(load1=[0.4, 0.9, 1.0]))[0] == "green"


GATED = """
[[status.rules]]
kind = "stalled"
variable = "app.events"
steps = 3
when = "app.running"

[[status.rules]]
variable = "app.buffer_pct"
red = 95
for = "30s"
when = "app.running"
"""


def test_a_gated_rule_judges_only_rows_while_its_gate_is_on():
    config = config_with(GATED)
    idle = series("app", events=[0.0] * 6, running=[0.0] * 6, buffer_pct=[99.0] * 6)
    status = evaluate_host(HostSnapshot("vm", (idle,)), config, NOW)
    assert [r.colour for r in status.results] == ["green", "green"]
    assert status.results[0].detail == "app.events: not judged, running is 0"
    taking = series("app", events=[5.0, 5.0, 0.0, 0.0, 0.0, 0.0], running=[1.0] * 6,
                    buffer_pct=[99.0] * 6)  # fmt: skip
    status = evaluate_host(HostSnapshot("vm", (taking,)), config, NOW)
    assert [r.colour for r in status.results] == ["red", "red"]
    assert status.results[0].detail == "app.events not increasing for 30 s while running is on"
    # The run ended 10 s ago: buffer rows while stopped break the hold; events are not judged
    # for the rows after the run ended.
    ended = series("app", events=[5.0, 5.0, 5.0, 5.0, 5.0, 0.0], running=[1.0] * 5 + [0.0],
                   buffer_pct=[99.0] * 6)  # fmt: skip
    status = evaluate_host(HostSnapshot("vm", (ended,)), config, NOW)
    assert [r.colour for r in status.results] == ["green", "green"]


@pytest.mark.parametrize(
    ("rule", "key", "expected"),
    [
        ('variable = "system.cpu_user"\nred = 9\nfor = "soon"', "for", "a duration"),
        ('variable = "system.cpu_user"\nred = 9\nfor = 0', "for", "a duration"),
        ('variable = "system.cpu_user"\nred = 9\nclear = 10', "clear.red", "a level below red"),
        (
            'variable = "system.cpu_user"\nred = 9\nclear = { yellow = 1 }',
            "clear.yellow",
            "a 'yellow' limit",
        ),  # fmt: skip
        ('variable = "system.cpu_user"\nred = 9\nclear = { green = 1 }', "clear", "a number, or"),
        ('variable = "system.cpu_user"\nred = 9\nwhen = "daq.total"', "when", "own dataset"),
        ('kind = "stalled"\nvariable = "daq.events"\nfor = "1min"', "for", "no 'for'"),
    ],
)
def test_bad_held_rules_are_config_errors_at_load(rule, key, expected):
    with pytest.raises(ConfigError) as caught:
        config_with("[[status.rules]]\n" + rule)
    assert caught.value.key == f"status.rules[0].{key}"
    assert expected in caught.value.expected


def test_affair_status_lists_the_worst_first_then_by_group_order():
    config = config_with('[[status.rules]]\nvariable = "system.cpu_user"\nyellow = 80\nred = 95\n')
    made = []
    for name, group, value in [
        ("gdc01", "gdc", 10.0),
        ("gdc02", "gdc", 99.0),
        ("ldc01", "ldc", 85.0),
        ("ldc02", "ldc", 99.0),
        ("x1", "other", 99.0),
    ]:
        snapshot = HostSnapshot(name, (series(cpu_user=[value]),))
        made.append(evaluate_host(snapshot, config, NOW, group))
    ordered = by_severity(made, config.site.groups)
    assert [s.host for s in ordered] == ["ldc02", "gdc02", "x1", "ldc01", "gdc01"]
    lines = render_table(ordered, NOW)
    assert [line.split()[0] for line in lines[1:-1]] == ["ldc02", "gdc02", "x1", "ldc01", "gdc01"]
