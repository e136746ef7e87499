"""The Graphite plaintext protocol as pure functions: lines, rules, names, merging."""

import ipaddress

import pytest

from affair.config import parse_config
from affair.config.graphite import compile_rule, default_rules, parse_listen
from affair.errors import BadLine, ConfigError
from affair.ingest.graphite import (
    LineSplitter,
    SampleMerger,
    is_allowed,
    map_path,
    parse_line,
)
from affair.names import is_valid, safe_name

NOW = 1_700_000_000.0


# --- lines ---


def test_parse_line_reads_path_value_and_timestamp():
    assert parse_line(b"node01.cpu.percent-user 3.5 1700000000", NOW) == (
        "node01.cpu.percent-user",
        3.5,
        1_700_000_000.0,
    )
    assert parse_line(b"a.b.c 7 1700000001.25\r", NOW) == ("a.b.c", 7.0, 1_700_000_001.25)


def test_parse_line_minus_one_or_n_means_now_and_nan_means_unknown():
    assert parse_line(b"a.b.c 1 -1", NOW) == ("a.b.c", 1.0, NOW)
    assert parse_line(b"a.b.c 1 N", NOW) == ("a.b.c", 1.0, NOW)
    assert parse_line(b"a.b.c nan 5", NOW) == ("a.b.c", None, 5.0)


def test_blank_line_is_skipped_not_bad():
    assert parse_line(b"", NOW) is None
    assert parse_line(b"   \r", NOW) is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"garbage", "fields"),
        (b"a.b.c 1", "fields"),
        (b"a.b.c 1 2 3", "fields"),
        (b"a.b.c one 1700000000", "value"),
        (b"a.b.c inf 1700000000", "value"),
        (b"a.b.c -inf 1700000000", "value"),
        (b"a.b.c 1 yesterday", "timestamp"),
        (b"a.b.c 1 nan", "timestamp"),
        (b"a.b.\xff\xfe 1 1700000000", "encoding"),
    ],
)
def test_bad_lines_name_their_reason(line, reason):
    with pytest.raises(BadLine) as caught:
        parse_line(line, NOW)
    assert caught.value.reason == reason


def test_line_splitter_keeps_partial_lines_across_chunks():
    splitter = LineSplitter(max_line_bytes=100)
    assert splitter.feed(b"a 1 2\nb 3") == ([b"a 1 2"], 0)
    assert splitter.feed(b" 4\nc 5 6\n") == ([b"b 3 4", b"c 5 6"], 0)
    assert splitter.feed(b"") == ([], 0)


def test_line_splitter_drops_an_overlong_line_and_holds_no_more_than_the_limit():
    splitter = LineSplitter(max_line_bytes=10)
    assert splitter.feed(b"ok 1 2\n" + b"x" * 25) == ([b"ok 1 2"], 1)
    assert len(splitter._partial) <= 10  # the endless line is not buffered
    assert splitter.feed(b"y" * 50) == ([], 0)  # still the same line: not counted again
    assert splitter.feed(b"zz\nnext 1 2\n") == ([b"next 1 2"], 0)
    assert splitter.feed(b"w" * 11 + b"\nfine 1 2\n") == ([b"fine 1 2"], 1)


# --- listen addresses and clients ---


def test_parse_listen_defaults_to_loopback():
    assert parse_listen(2003) == ("127.0.0.1", 2003)
    assert parse_listen("2003") == ("127.0.0.1", 2003)
    assert parse_listen("0.0.0.0:2003") == ("0.0.0.0", 2003)
    assert parse_listen("[::1]:2003") == ("::1", 2003)
    for bad in ("", "host:", "host:port", ":2003", "70000", True, 3.5, "[::1]2003"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def test_is_allowed_checks_networks_including_v4_mapped_addresses():
    networks = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32"))
    assert is_allowed("10.1.2.3", networks)
    assert is_allowed("::ffff:127.0.0.1", networks)
    assert not is_allowed("192.168.1.1", networks)
    assert not is_allowed("not an address", networks)


# --- names and rules ---


def test_collectd_names_map_to_datasets_instances_and_variables():
    rules = default_rules()
    assert map_path(rules, "node01.cpu.percent-user") == ("node01", "cpu", "", "percent_user")
    assert map_path(rules, "node01.cpu-0.cpu-idle") == ("node01", "cpu", "0", "cpu_idle")
    assert map_path(rules, "node01.memory.memory-used") == ("node01", "memory", "", "memory_used")
    assert map_path(rules, "gdc_cern_ch.interface-eth0.if_octets.rx") == (
        "gdc_cern_ch",
        "interface",
        "eth0",
        "if_octets_rx",
    )
    assert map_path(rules, "n1.df-var-log.df_complex-used") == (
        "n1",
        "df",
        "var-log",
        "df_complex_used",
    )
    assert map_path(rules, "n1.load.load.shortterm") == ("n1", "load", "", "load_shortterm")


def test_long_names_are_shortened_but_kept_apart():
    rules = default_rules()
    _, _, _, first = map_path(rules, "n1.df-root.percent_bytes-reserved")
    _, _, _, second = map_path(rules, "n1.df-root.percent_bytes-reserved_more")
    assert is_valid("variable", first) and is_valid("variable", second)
    assert first != second
    assert first.startswith("percent_bytes")


@pytest.mark.parametrize(
    "path",
    [
        "../../etc.passwd.x",  # empty segments: no rule matches
        "..",
        "node01",
        "a.b",
    ],
)
def test_paths_no_rule_matches_are_unmatched(path):
    with pytest.raises(BadLine) as caught:
        map_path(default_rules(), path)
    assert caught.value.reason == "unmatched"


@pytest.mark.parametrize(
    "path",
    [
        "-rf.cpu.percent-user",  # a host must start with a letter or digit
        "_state.cpu.percent-user",  # our own directories start with _
        "ev/il.cpu.percent-user",
        "h\x00st.cpu.percent-user",
        ("x" * 64) + ".cpu.percent-user",
        "node01.cpu-///.percent-user",  # nothing left of the instance
    ],
)
def test_hostile_names_are_refused_as_names(path):
    with pytest.raises(BadLine) as caught:
        map_path(default_rules(), path)
    assert caught.value.reason == "name"


def test_hostile_characters_in_other_names_are_made_safe():
    host, dataset, instance, variable = map_path(default_rules(), "n1.df-/etc/$(rm).x`z`-y;z")
    assert (host, dataset, instance, variable) == ("n1", "df", "etc_rm", "x_z_y_z")


def test_safe_name_rules():
    assert safe_name("instance", "var/log") == "var_log"
    assert safe_name("instance", "///") is None
    assert safe_name("variable", "percent-user") == "percent_user"
    assert safe_name("dataset", "a..b") == "a_b"
    long = safe_name("instance", "a" * 100)
    assert len(long) == 40 and is_valid("instance", long)
    assert safe_name("instance", "a" * 100) != safe_name("instance", "a" * 101)


def test_a_custom_rule_uses_templates_and_literals():
    rule = compile_rule(
        r"telegraf\.(?P<host>[^.]+)\.(?P<m>[^.]+)\.(?P<f>[^.]+)",
        dataset="tg_{m}",
        variable="{f}",
    )
    assert map_path((rule,), "telegraf.n7.mem.used_percent") == ("n7", "tg_mem", "", "used_percent")
    with pytest.raises(BadLine):
        map_path((rule,), "n7.mem.used_percent.extra.x")


def test_rules_are_tried_in_order():
    first = compile_rule(r"special\.(?P<host>[^.]+)\.(?P<variable>\w+)", dataset="special")
    rules = (first, *default_rules())
    assert map_path(rules, "special.n1.temp") == ("n1", "special", "", "temp")
    assert map_path(rules, "n1.cpu.percent-user") == ("n1", "cpu", "", "percent_user")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern": "(?P<host>[^.]+"}, "not a regular expression"),
        ({"pattern": r"(?P<host>\w+)\.(?P<variable>\w+)"}, "dataset: give a template"),
        ({"pattern": r"(?P<host>\w+)", "dataset": "{nope}", "variable": "v"}, "{nope} is not"),
        ({"pattern": r"(?P<host>\w+)", "dataset": "a{", "variable": "v"}, "stray brace"),
    ],
)
def test_bad_rules_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("(", r"\(")):
        compile_rule(**kwargs)


def test_config_rejects_a_bad_rule_with_its_key():
    raw = {"graphite": {"rules": [{"pattern": "(?P<host>[^.]+", "dataset": "x"}]}}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "site.toml")
    assert caught.value.key == "graphite.rules[0]"
    assert "site.toml: graphite.rules[0]: expected pattern: not a regular expression" in str(
        caught.value
    )


def test_config_graphite_section():
    config = parse_config(
        {"graphite": {"listen": "0.0.0.0:2004", "allow": ["10.0.0.0/8"], "lines_per_second": 5}}
    )
    assert config.graphite.listen == ("0.0.0.0", 2004)
    assert config.graphite.allow == (ipaddress.ip_network("10.0.0.0/8"),)
    assert config.graphite.rules == default_rules()
    assert parse_config({}).graphite.listen is None
    for raw, key in (
        ({"listen": "nope:x"}, "graphite.listen"),
        ({"allow": ["10.0.0.300/8"]}, "graphite.allow"),
        ({"lines_per_second": 0}, "graphite.lines_per_second"),
        ({"bogus": 1}, "graphite.bogus"),
        ({"rules": [{"host": "{host}"}]}, "graphite.rules[0].pattern"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_config({"graphite": raw})
        assert caught.value.key == key


# --- merging ---


def test_merger_gathers_one_series_and_timestamp_into_one_sample():
    merger = SampleMerger(hold_seconds=30)
    cpu, memory = ("n1", "cpu", ""), ("n1", "memory", "")
    assert merger.add(cpu, 100.0, "user", 1.0, now=0.0) == []
    assert merger.add(memory, 100.0, "used", 5.0, now=0.1) == []
    assert merger.add(cpu, 100.0, "system", 2.0, now=2.5) == []  # a later flush: still merged
    # the series' next reading completes the previous one at once
    assert merger.add(cpu, 110.0, "user", 3.0, now=10.0) == [
        (100.0, cpu, {"user": 1.0, "system": 2.0}, "")
    ]
    assert merger.due(now=29.0) == []
    assert merger.due(now=30.1) == [(100.0, memory, {"used": 5.0}, "")]  # no next reading came
    assert merger.due(now=30.1, force=True) == [(110.0, cpu, {"user": 3.0}, "")]
    assert len(merger) == 0 and merger._newest == {}


def test_merger_keeps_late_lines_of_an_older_reading_apart():
    merger = SampleMerger(hold_seconds=30)
    cpu = ("n1", "cpu", "")
    merger.add(cpu, 110.0, "user", 3.0, now=0)
    assert merger.add(cpu, 100.0, "user", 1.0, now=0) == []  # older: held on its own
    assert merger.add(cpu, 110.0, "system", 4.0, now=0) == []
    assert merger.due(now=0, force=True) == [
        (110.0, cpu, {"user": 3.0, "system": 4.0}, ""),
        (100.0, cpu, {"user": 1.0}, ""),
    ]


def test_merger_lets_the_oldest_go_when_too_many_are_open():
    merger = SampleMerger(hold_seconds=60, max_open=2)
    merger.add(("a", "d", ""), 1.0, "v", 1.0, now=0)
    merger.add(("b", "d", ""), 1.0, "v", 2.0, now=0)
    assert merger.add(("c", "d", ""), 1.0, "v", 3.0, now=0) == [
        (1.0, ("a", "d", ""), {"v": 1.0}, "")
    ]
    assert len(merger) == 2
