"""Config loading: defaults, derivations and one-line errors naming file and key."""

import subprocess
import sys

import pytest

from affair.config import DEFAULT_CONFIG, load_config, parse_config
from affair.errors import ConfigError
from tests.conftest import REPO, write_config


def test_shipped_config_loads_with_affair_ladder():
    config = load_config(DEFAULT_CONFIG)
    assert config.recorder.step == 10
    assert config.recorder.heartbeat == 20  # derived: twice the step
    assert [(a.step, a.rows) for a in config.archives] == [
        (10, 360),
        (60, 360),
        (240, 360),
        (1800, 336),
        (7200, 372),
        (21600, 368),
        (86400, 366),
    ]
    assert config.consolidations == ("AVERAGE", "MIN", "MAX")
    system = config.datasets["system"]
    assert system.variables["cpu_user"].type == "GAUGE"
    assert system.variables["cpu_user"].max == 100.0
    assert system.variables["net_in"].type == "DERIVE"
    assert system.variables["net_in"].min == 0.0
    assert "affair" in config.datasets  # the recorder's own health, built in


def test_undeclared_variable_defaults_to_gauge():
    config = parse_config({})
    variable = config.variable("nosuch", "thing")
    assert (variable.type, variable.min, variable.max) == ("GAUGE", None, None)
    assert not config.is_declared("nosuch")


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("[recorder]\nstep = 'ten'\n", "recorder.step", "a duration"),
        ("[recorder]\nstpe = 10\n", "recorder.stpe", "a known key"),
        ("[recorder]\nheartbeat = 5\n", "recorder.heartbeat", "at least the step"),
        ("[recorder]\naccept_undeclared = 'yes'\n", "recorder.accept_undeclared", "true or false"),
        ("[recorder]\nlisten = 'http://x'\n", "recorder.listen", "ZeroMQ endpoint"),
        (
            "[archive]\nladder = ['10s:360', '1min:30']\n",
            "archive.ladder",
            "no more than the finer",
        ),
        ("[archive]\nladder = ['1min:360']\n", "archive.ladder", "base step"),
        ("[archive]\nconsolidations = ['MEDIAN']\n", "archive.consolidations", "names from"),
        ("[archive]\nxff = 1.5\n", "archive.xff", "fraction"),
        (
            "[datasets.system.variables]\ncpu = { type = 'GAGE' }\n",
            "datasets.system.variables.cpu.type",
            "GAUGE",
        ),
        (
            "[datasets.system.variables]\ncpu = { tpye = 'GAUGE' }\n",
            "datasets.system.variables.cpu.tpye",
            "known key",
        ),
        (
            "[datasets.system.variables]\na_name_far_too_long_for_rrd = {}\n",
            "datasets.system.variables.a_name_far_too_long_for_rrd",
            "valid variable name",
        ),
        ("[datasets.'../etc']\n", "datasets.../etc", "valid dataset name"),
        (
            "[datasets.x.variables]\nv = { min = 5, max = 1 }\n",
            "datasets.x.variables.v.max",
            "more than min",
        ),
        ("[graphs.g]\ndataset = 'nosuch'\n", "graphs.g.dataset", "declared under [datasets]"),
        (
            "[datasets.x.variables]\nv = {}\n[graphs.g]\ndataset = 'x'\nvariables = ['w']\n",
            "graphs.g.variables",
            "variables of dataset",
        ),
        (
            "[datasets.x.variables]\nv = {}\n[graphs.g]\ndataset = 'x'\nwindows = ['2h']\n",
            "graphs.g.windows",
            "windows from",
        ),
        (
            "[recorder]\nrrdcached = '/run/rrdcached.sock'\n",
            "recorder.rrdcached",
            "'unix:<absolute path>'",
        ),
        (
            "[recorder]\nrrdcached = 'unix:run/rrdcached.sock'\n",
            "recorder.rrdcached",
            "'unix:<absolute path>'",
        ),
        (
            "[recorder]\nrrdcached = '10.0.0.5:42217'\n",
            "recorder.rrdcached",
            "a loopback 'HOST:PORT'",
        ),
        ("[recorder]\nrrdcached = '127.0.0.1'\n", "recorder.rrdcached", "a loopback 'HOST:PORT'"),
        (
            "[recorder]\nrrdcached = 'localhost:99999'\n",
            "recorder.rrdcached",
            "a loopback 'HOST:PORT'",
        ),
        ("[recorder]\nrrdcached = 42217\n", "recorder.rrdcached", "'' (off)"),
        ("[recorder]\nrrdcached_flush = 'often'\n", "recorder.rrdcached_flush", "a duration"),
        (
            "[[status.rules]]\nvariable = 'system.cpu_user'\nred = 9\nhosts = []\n",
            "status.rules[0].hosts",
            "a host glob or a non-empty list",
        ),
        (
            "[[status.rules]]\nvariable = 'system.cpu_user'\nred = 9\nhosts = ['*', '!']\n",
            "status.rules[0].hosts",
            "'!ldc05'",
        ),
        ("[site]\ngroups = { ldc = [] }\n", "site.groups.ldc", "a host glob or a non-empty list"),
        (
            "[graphs.g]\ndataset = 'system'\nhosts = ['!']\n",
            "graphs.g.hosts",
            "a host glob or a non-empty list",
        ),
        ("[bogus]\n", "bogus", "a known key"),
        ("[recorder\n", "(syntax)", "valid TOML"),
    ],
)
def test_bad_config_names_file_key_and_expectation(tmp_path, text, key, expected):
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: expected ")
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="an existing TOML file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.integration
def test_check_config_command(tmp_path):
    good = subprocess.run(
        [sys.executable, "-m", "affair", "check-config"], capture_output=True, text=True, cwd=REPO
    )
    assert (good.returncode, good.stdout) == (0, "ok\n")
    bad_path = write_config(tmp_path, "[recorder]\nstep = -1\n")
    bad = subprocess.run(
        [sys.executable, "-m", "affair", "check-config", "--config", str(bad_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"affair check-config: {bad_path}: recorder.step: expected a duration in seconds "
        "or like '10s', '5min', '1h', got -1"
    )


def test_overrides_replace_only_given_values():
    config = parse_config({}).with_overrides(data_dir="/x", listen=None)
    assert config.recorder.data_dir == "/x"
    assert config.recorder.listen == "tcp://127.0.0.1:5678"


@pytest.mark.parametrize(
    "address",
    [
        "",
        "unix:/run/rrdcached.sock",
        "127.0.0.1:42217",
        "127.0.0.2:1",
        "localhost:42217",
        "[::1]:42217",
    ],
)
def test_rrdcached_takes_a_unix_socket_or_a_loopback_port(address):
    recorder = parse_config({"recorder": {"rrdcached": address}}).recorder
    assert recorder.rrdcached == address
    assert recorder.rrdcached_flush == 300


def test_rrdcached_is_off_by_default_and_its_flush_interval_takes_a_duration():
    assert parse_config({}).recorder.rrdcached == ""
    assert parse_config({"recorder": {"rrdcached_flush": "2min"}}).recorder.rrdcached_flush == 120


def test_bad_rrdcached_address_is_one_line_with_file_key_and_value(tmp_path):
    path = write_config(tmp_path, "[recorder]\nrrdcached = 'tcp://10.1.2.3:42217'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: recorder.rrdcached: expected '' (off), 'unix:<absolute path>' or a loopback "
        "'HOST:PORT' like '127.0.0.1:42217', got 'tcp://10.1.2.3:42217'"
    )
