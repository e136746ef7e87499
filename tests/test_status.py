"""Status rules: each kind, staleness, config validation, formatting, and real RRD reads."""

import subprocess
import sys

import pytest
from sitedata import SITE_CONFIG, STEP, drive, site_config

from affair.config import parse_config
from affair.errors import ConfigError
from affair.outputs.status import (
    HostSnapshot,
    SeriesSnapshot,
    collect,
    evaluate_host,
    format_age,
    format_value,
    group_of,
    natural_sorted,
    percentile,
    read_host,
    render_table,
)
from affair.storage.rrd_store import RrdStore

NOW = 1_700_000_000  # on the 10 s grid, in the past


def series(dataset="system", instance="", last=NOW, rows=None, **columns):
    """A snapshot whose rows end at ``last``; each column a list of values, oldest first."""
    length = len(next(iter(columns.values()))) if columns else 0
    times = tuple(last - STEP * i for i in range(length - 1, -1, -1))
    return SeriesSnapshot(
        dataset, instance, last, STEP, times, {k: tuple(v) for k, v in columns.items()}
    )


def host(*snapshots, name="ldc01"):
    return HostSnapshot(name, tuple(snapshots))


def config_with(rules, stale_steps=6, extra=""):
    return site_config(
        SITE_CONFIG.split("[status]")[0]
        + f"\n[status]\nstale_steps = {stale_steps}\n{rules}\n{extra}"
    )


THRESHOLD = """
[[status.rules]]
variable = "system.cpu_user"
op = ">"
yellow = 80
red = 95
"""


# --- threshold ---


@pytest.mark.parametrize(
    ("value", "colour"),
    [(10.0, "green"), (80.0, "green"), (80.5, "yellow"), (95.0, "yellow"), (95.1, "red")],
)
def test_threshold_colours_by_latest_value(value, colour):
    config = config_with(THRESHOLD)
    status = evaluate_host(host(series(cpu_user=[99.0, 99.0, value])), config, NOW)
    assert status.colour == colour
    assert status.results[0].value == value


def test_threshold_uses_the_newest_known_value_and_unknown_rows_are_skipped():
    config = config_with(THRESHOLD)
    status = evaluate_host(host(series(cpu_user=[50.0, 97.0, None, None])), config, NOW)
    assert status.colour == "red"
    assert status.results[0].detail == "system.cpu_user 97 % > 95 %"


def test_threshold_with_no_value_is_unknown_and_does_not_colour_the_host():
    config = config_with(THRESHOLD)
    status = evaluate_host(host(series(cpu_user=[None, None], load1=[1.0, 1.0])), config, NOW)
    assert status.results[0].colour == "unknown"
    assert status.results[0].detail == "system.cpu_user: no value"
    assert status.colour == "green"


def test_threshold_below_with_only_red():
    rules = """
[[status.rules]]
variable = "system.load1"
op = "<="
red = 0.5
label = "idle node"
"""
    config = config_with(rules)
    assert evaluate_host(host(series(load1=[0.5])), config, NOW).colour == "red"
    assert evaluate_host(host(series(load1=[0.6])), config, NOW).colour == "green"
    red = evaluate_host(host(series(load1=[0.2])), config, NOW)
    assert red.summary(NOW) == "idle node: system.load1 0.2 <= 0.5"


def test_rules_judge_only_matching_hosts_holding_the_dataset():
    rules = THRESHOLD.replace('op = ">"', 'op = ">"\nhosts = ["gdc*"]')
    config = config_with(rules)
    hot = series(cpu_user=[99.0])
    assert evaluate_host(host(hot, name="ldc01"), config, NOW).colour == "green"
    assert evaluate_host(host(hot, name="gdc01"), config, NOW).colour == "red"
    other = series(dataset="daq", events=[1.0])
    assert evaluate_host(host(other, name="gdc01"), config, NOW).results == ()


@pytest.mark.parametrize("hosts", ['["*", "!ldc05"]', '["!ldc05"]'])
def test_a_rule_for_every_host_but_one(hosts):
    config = config_with(THRESHOLD.replace('op = ">"', f'op = ">"\nhosts = {hosts}'))
    hot = series(cpu_user=[99.0])
    assert evaluate_host(host(hot, name="ldc05"), config, NOW).results == ()
    for name in ("ldc01", "gdc01"):
        assert evaluate_host(host(hot, name=name), config, NOW).colour == "red"


def test_a_dataset_with_instances_is_judged_per_instance():
    config = config_with(THRESHOLD)
    status = evaluate_host(
        host(
            series(instance="a", cpu_user=[10.0]),
            series(instance="b", cpu_user=[85.0]),
        ),
        config,
        NOW,
    )
    assert [(r.instance, r.colour) for r in status.results] == [("a", "green"), ("b", "yellow")]
    assert status.colour == "yellow"
    assert status.summary(NOW) == "system.b.cpu_user 85 % > 80 %"


# --- stalled ---

STALLED = """
[[status.rules]]
kind = "stalled"
variable = "daq.events"
steps = 3
"""


@pytest.mark.parametrize(
    ("rates", "colour"),
    [
        ([5.0, 5.0, 5.0, 5.0], "green"),
        ([5.0, 0.0, 0.0, 2.0], "green"),  # moved in the last 3 steps
        ([5.0, 0.0, 0.0, 0.0], "red"),  # a counter's rate stayed at 0
        ([5.0, None, None, None], "red"),  # stopped publishing: unknown is not increasing
        ([5.0, 0.0, None, 0.0], "red"),
    ],
)
def test_stalled_counter(rates, colour):
    config = config_with(STALLED)
    status = evaluate_host(host(series(dataset="daq", events=rates)), config, NOW)
    assert status.results[0].colour == colour
    assert status.colour == colour


@pytest.mark.parametrize(
    ("totals", "colour"),
    [
        ([10.0, 11.0, 12.0, 13.0], "green"),
        ([10.0, 11.0, 11.0, 11.0], "green"),  # grew from the row before the window
        ([11.0, 11.0, 11.0, 11.0], "red"),
        ([12.0, 11.0, 10.0, 9.0], "red"),  # a total going down is not incrementing
    ],
)
def test_stalled_gauge_holding_a_running_total(totals, colour):
    rules = STALLED.replace("daq.events", "daq.total").replace(
        "steps = 3", "steps = 3\ncolour = 'yellow'"
    )
    config = config_with(rules)
    expected = "yellow" if colour == "red" else colour
    status = evaluate_host(host(series(dataset="daq", total=totals)), config, NOW)
    assert status.results[0].colour == expected


def test_stalled_looks_back_from_now_so_a_silent_series_is_caught():
    config = config_with(STALLED, stale_steps=0)
    # Rows increasing, but they end 5 steps ago: nothing moved in the last 3 steps.
    old = series(dataset="daq", last=NOW - 5 * STEP, events=[5.0, 5.0, 5.0])
    status = evaluate_host(host(old), config, NOW)
    assert status.colour == "red"
    assert status.results[0].detail == "daq.events not increasing for 30 s"


# --- staleness ---


def test_a_host_silent_for_more_than_stale_steps_is_grey_whatever_its_rules_say():
    config = config_with(THRESHOLD, stale_steps=6)
    fresh = evaluate_host(host(series(last=NOW - 60, cpu_user=[99.0])), config, NOW)
    assert fresh.colour == "red" and not fresh.stale
    stale = evaluate_host(host(series(last=NOW - 61, cpu_user=[99.0])), config, NOW)
    assert stale.colour == "grey" and stale.stale
    assert stale.summary(NOW) == "no sample for 61 s"
    assert stale.results[0].colour == "red"  # still shown on its page, as of its last sample


def test_staleness_follows_the_newest_series_and_can_be_turned_off():
    config = config_with(THRESHOLD, stale_steps=6)
    snapshot = host(series(last=NOW - 3600, cpu_user=[1.0]), series(dataset="daq", events=[1.0]))
    assert evaluate_host(snapshot, config, NOW).colour == "green"
    never = config_with(THRESHOLD, stale_steps=0)
    assert evaluate_host(host(series(last=0, cpu_user=[1.0])), never, NOW).colour == "green"


def test_a_host_without_any_series_is_grey():
    status = evaluate_host(host(), config_with(THRESHOLD), NOW)
    assert status.colour == "grey"
    assert status.summary(NOW) == "no samples at all"


def test_stale_rule_watches_one_dataset():
    rules = """
[[status.rules]]
kind = "stale"
dataset = "daq"
steps = 3
"""
    config = config_with(rules)
    quiet_daq = host(series(cpu_user=[1.0]), series(dataset="daq", last=NOW - 31, events=[1.0]))
    status = evaluate_host(quiet_daq, config, NOW)
    assert status.colour == "grey" and not status.stale
    assert status.summary(NOW) == "daq: no sample for 31 s"
    red_rules = rules + 'colour = "red"\n'
    assert evaluate_host(quiet_daq, config_with(red_rules), NOW).colour == "red"
    recent = host(series(cpu_user=[1.0]), series(dataset="daq", last=NOW - 30, events=[1.0]))
    assert evaluate_host(recent, config, NOW).colour == "green"


def test_worst_rule_wins_red_over_yellow_over_grey():
    rules = THRESHOLD + '\n[[status.rules]]\nkind = "stale"\ndataset = "daq"\nsteps = 1\n'
    config = config_with(rules)
    snapshot = host(series(cpu_user=[85.0]), series(dataset="daq", last=NOW - 100, events=[1.0]))
    status = evaluate_host(snapshot, config, NOW)
    assert status.colour == "yellow"
    assert [r.colour for r in status.problems] == ["yellow", "grey"]


# --- config validation ---


def _rules_config(rule_text):
    return config_with(rule_text)


@pytest.mark.parametrize(
    ("rule", "key", "expected"),
    [
        (
            'variable = "system.nope"\nred = 1',
            "status.rules[0].variable",
            "a variable of dataset 'system'",
        ),
        (
            'variable = "disk.used_pct"\nred = 1',
            "status.rules[0].variable",
            "with a dataset declared",
        ),
        ('variable = "cpu_user"\nred = 1', "status.rules[0].variable", "with a dataset declared"),
        ('variable = "system.cpu_user"', "status.rules[0].red", "a 'yellow' or 'red' threshold"),
        (
            'variable = "system.cpu_user"\nyellow = 90\nred = 80',
            "status.rules[0].red",
            "above yellow",
        ),
        (
            'variable = "system.cpu_user"\nop = "<"\nyellow = 10\nred = 20',
            "status.rules[0].red",
            "below yellow",
        ),
        (
            'variable = "system.cpu_user"\nop = "=>"\nred = 1',
            "status.rules[0].op",
            "one of > >= < <=",
        ),
        (
            'variable = "system.cpu_user"\nred = 1\nsteps = 3',
            "status.rules[0].steps",
            "no 'steps' in a 'threshold' rule",
        ),
        (
            'kind = "stalled"\nvariable = "daq.events"\nred = 3',
            "status.rules[0].red",
            "no 'red' in a 'stalled' rule",
        ),
        ('kind = "stale"\ndataset = "nope"', "status.rules[0].dataset", "a dataset declared"),
        (
            'kind = "stale"\nvariable = "daq.events"',
            "status.rules[0].variable",
            "no 'variable' in a 'stale'",
        ),
        ('kind = "flaky"', "status.rules[0].kind", "one of threshold, stalled, stale"),
        (
            'variable = "system.cpu_user"\nred = 1\ncolor = "red"',
            "status.rules[0].color",
            "a known key",
        ),
        (
            'kind = "stalled"\nvariable = "daq.events"\ncolour = "green"',
            "status.rules[0].colour",
            "'yellow', 'red' or 'grey'",
        ),
    ],
)
def test_bad_rules_are_config_errors_at_load(rule, key, expected):
    with pytest.raises(ConfigError) as caught:
        config_with("[[status.rules]]\n" + rule)
    assert caught.value.key == key
    assert expected in caught.value.expected
    assert str(caught.value).startswith("site-test.toml: ")


def test_rule_defaults_and_names():
    config = config_with(
        THRESHOLD + STALLED + '\n[[status.rules]]\nkind = "stale"\ndataset = "daq"\n'
    )
    threshold, stalled, stale = config.status.rules
    assert (threshold.dataset, threshold.variable, threshold.hosts) == (
        "system",
        "cpu_user",
        ("*",),
    )
    assert threshold.name == "system.cpu_user > 80 / 95"
    assert (stalled.colour, stalled.steps) == ("red", 3)
    assert stalled.name == "daq.events not increasing for 3 steps"
    assert (stale.colour, stale.steps, stale.variable) == ("grey", 6, "")
    assert stale.name == "daq: no sample for 6 steps"


def test_site_config_groups_key_variables_refresh_and_schedule():
    config = site_config()
    assert config.site.groups == {"ldc": ("ldc*",), "gdc": ("gdc*",)}
    assert config.site.key_variables[0] == ("system", "cpu_user")
    assert config.site.refresh == 30
    assert (config.schedule.plot, config.schedule.site) == (60, 30)
    derived = site_config(
        SITE_CONFIG.replace("refresh = 30", "") + '\n[schedule]\nsite = "45s"\nplot = 0\n'
    )
    assert derived.site.refresh == 45 and derived.schedule.plot == 0


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[site]\nkey_variables = ["system.nope"]', "site.key_variables"),
        ("[site]\ngroups = { ldc = 3 }", "site.groups.ldc"),
        ('[site]\ngroups = { "../x" = "x*" }', "site.groups.../x"),
        ("[site]\nrefresh = 0", "site.refresh"),
        ('[schedule]\nsite = "soon"', "schedule.site"),
        ("[status]\nstale_steps = -1", "status.stale_steps"),
        ("[status]\nrules = 3", "status.rules"),
        ("[site]\ncolour = 1", "site.colour"),
    ],
)
def test_bad_site_config(text, key):
    raw = "[datasets.system.variables]\ncpu_user = { type = 'GAUGE' }\n" + text
    import tomllib

    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(raw), "x.toml")
    assert caught.value.key == key


@pytest.mark.integration
def test_shipped_config_has_valid_site_status_and_schedule():
    result = subprocess.run(
        [sys.executable, "-m", "affair", "check-config"], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr


# --- helpers ---


def test_groups_first_match_wins_else_other():
    groups = {"ldc": ("ldc*",), "big": ("gdc0*", "ldc1*")}
    assert group_of("ldc12", groups) == "ldc"
    assert group_of("gdc05", groups) == "big"
    assert group_of("vm", groups) == "other"


def test_groups_with_exclusions():
    groups = {"compute": ("*", "!ldc05", "!gdc*"), "gdc": ("gdc*",), "spare": ("!ldc01",)}
    assert group_of("ldc01", groups) == "compute"
    assert group_of("gdc02", groups) == "gdc"
    assert group_of("ldc05", groups) == "spare"  # only exclusions: every host but ldc01
    assert group_of("ldc05", {"compute": ("*", "!ldc05")}) == "other"


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (2.04 * 1024**3, "B", "2.04 GiB"),  # binary, as df and a limit written in GiB say it
        (2.5e9, "B/s", "2.5 GB/s"),  # rates stay decimal
        (0.0, "B", "0 B"),
        (1234567, "B/s", "1.23 MB/s"),
        (87.43, "%", "87.4 %"),
        (3100, "pkt/s", "3.1 kpkt/s"),
        (1500, "", "1.5 k"),
        (12.345, "", "12.3"),
        (250, "", "250"),
        (None, "%", "–"),
        (float("nan"), "%", "–"),
    ],
)
def test_format_value(value, unit, text):
    assert format_value(value, unit) == text


def test_format_age_and_natural_sort_and_percentile():
    assert [format_age(s) for s in (5, 119, 120, 7199, 7200, 3 * 86400 + 3600)] == [
        "5 s",
        "119 s",
        "2 min",
        "119 min",
        "2 h",
        "3 d 1 h",
    ]
    assert natural_sorted(["ldc10", "ldc2", "gdc1", "ldc1"]) == ["gdc1", "ldc1", "ldc2", "ldc10"]
    assert percentile([], 95) is None
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([3.0], 50) == 3.0


def test_render_table_plain_and_coloured():
    config = config_with(THRESHOLD)
    statuses = [
        evaluate_host(host(series(cpu_user=[99.0]), name="ldc01"), config, NOW, "ldc"),
        evaluate_host(host(series(cpu_user=[10.0]), name="ldc02"), config, NOW, "ldc"),
    ]
    lines = render_table(statuses, NOW + 5)
    assert lines[0].split() == ["HOST", "GROUP", "STATUS", "LAST", "SAMPLE", "WHY"]
    assert lines[1].split()[:3] == ["ldc01", "ldc", "red"]
    assert lines[1].endswith("(5 s ago)  system.cpu_user 99 % > 95 %")
    assert lines[-1] == "2 hosts: 1 red, 0 yellow, 0 grey, 1 green"
    assert "\033[1;31mred" in render_table(statuses, NOW, colour=True)[1]
    assert len(render_table(statuses, NOW, problems_only=True)) == 3


# --- real RRDs ---


def test_read_host_and_collect_from_real_rrds(tmp_path):
    config = site_config()
    store = RrdStore(config, tmp_path / "data")
    now = NOW + 3
    drive(store, "ldc01", now, cpu=20.0, events=lambda ts: 100 * ts)
    drive(store, "ldc02", now, cpu=85.0, events=lambda ts: 7)  # counter stuck
    drive(store, "gdc01", now, cpu=97.0)
    drive(store, "gdc02", now, cpu=10.0, silent_for=600)
    (tmp_path / "data" / "<img src=x onerror=alert(1)>").mkdir()  # never a page, never a status

    snapshot = read_host(store, "ldc01", now, rows=10)
    system = next(s for s in snapshot.series if s.dataset == "system")
    assert system.last_update == NOW
    assert system.times[-1] == NOW and len(system.times) == 10
    assert system.latest("cpu_user") == (NOW, 20.0)
    daq = next(s for s in snapshot.series if s.dataset == "daq")
    assert daq.latest("events")[1] == pytest.approx(100.0)  # a counter, stored per second

    statuses = {s.host: s for s in collect(config, tmp_path / "data", now)}
    assert sorted(statuses) == ["gdc01", "gdc02", "ldc01", "ldc02"]
    assert {h: s.colour for h, s in statuses.items()} == {
        "ldc01": "green",
        "ldc02": "red",  # 'daq.events' stalled outranks its yellow CPU
        "gdc01": "red",
        "gdc02": "grey",
    }
    assert statuses["ldc02"].summary(now) == (
        "daq.events not increasing for 60 s; system.cpu_user 85 % > 80 %"
    )
    assert statuses["gdc02"].group == "gdc"
    # A host silent for longer than the rows read still shows its last values.
    silent = statuses["gdc02"].snapshot.series[0]
    assert silent.latest("cpu_user") == (NOW - 600, 10.0)


@pytest.mark.integration
def test_affair_status_command_exit_code_and_table(tmp_path):
    config_path = tmp_path / "affair.toml"
    config_path.write_text(SITE_CONFIG)
    config = site_config()
    store = RrdStore(config, tmp_path / "data")
    import time

    now = time.time()
    drive(store, "ldc01", now, cpu=20.0, events=lambda ts: 100 * ts)
    command = [sys.executable, "-m", "affair", "status", "--config", str(config_path)]
    command += ["--data-dir", str(tmp_path / "data")]
    green = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert green.returncode == 0, green.stderr
    assert green.stdout.splitlines()[-1] == "1 hosts: 0 red, 0 yellow, 0 grey, 1 green"
    assert "\033[" not in green.stdout  # not a terminal: no colour codes

    drive(store, "gdc01", now, cpu=99.0)
    red = subprocess.run([*command, "--problems"], capture_output=True, text=True, timeout=60)
    assert red.returncode == 1
    lines = red.stdout.splitlines()
    assert [line.split()[:3] for line in lines[1:-1]] == [["gdc01", "gdc", "red"]]
    assert lines[-1] == "2 hosts: 1 red, 0 yellow, 0 grey, 1 green"

    bad = config_path.read_text().replace(
        'variable = "system.cpu_user"', 'variable = "system.idle"'
    )
    config_path.write_text(bad)
    broken = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 2
    assert broken.stdout == ""
    assert broken.stderr.strip() == (
        f"affair status: {config_path}: status.rules[0].variable: expected a variable of "
        "dataset 'system' (cpu_user, load1, mem_used), got 'system.idle'"
    )


@pytest.mark.integration
def test_affair_status_without_a_data_dir_is_an_error_not_all_clear(tmp_path):
    config_path = tmp_path / "affair.toml"
    config_path.write_text(SITE_CONFIG)
    missing = tmp_path / "nope"
    result = subprocess.run(
        [sys.executable, "-m", "affair", "status", "--config", str(config_path)]
        + ["--data-dir", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"affair status: no data directory at {missing}"
