"""CURVE: `affair keys`, the allow-list, and collectors that cannot get a sample in."""

import json
import shutil
import sqlite3
import stat
import subprocess
import sys
import time

import pytest
import zmq
from affair.collectors import wire
from affair.collectors.keys import collector_keys, load_public_key, load_secret_key
from zmq.utils import z85

from affair.config import load_config
from affair.errors import ConfigError
from affair.ingest.auth import HostBinding, KeyNames, generate_keys, load_key_names, recorder_keys
from tests.conftest import BASE_CONFIG, REPO, wait_for, write_config

CURVE_RECORDER = BASE_CONFIG.replace(
    "step = 10",
    """step = 10
curve_secret_key_file = "keys/recorder.key_secret"
curve_allowed_keys = ["keys/allowed"]""",
)


def affair(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "affair", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


# --- keys and config ---


@pytest.mark.integration
def test_affair_keys_writes_pairs_secret_files_private_and_never_overwrites(tmp_path):
    result = affair("keys", "--out", str(tmp_path / "k"), "recorder", "node01")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "k").iterdir())
    assert names == ["node01.key", "node01.key_secret", "recorder.key", "recorder.key_secret"]
    assert stat.S_IMODE((tmp_path / "k" / "node01.key_secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k" / "node01.key").stat().st_mode) == 0o644
    public_before = (tmp_path / "k" / "recorder.key").read_text()
    assert "secret-key" not in public_before
    again = affair("keys", "--out", str(tmp_path / "k"), "node02", "recorder")
    assert again.returncode == 2
    assert "recorder.key exists; not overwriting a key" in again.stderr
    assert not (tmp_path / "k" / "node02.key").exists()  # all or nothing
    assert (tmp_path / "k" / "recorder.key").read_text() == public_before


def test_the_allow_list_takes_files_and_directories(tmp_path):
    generate_keys(tmp_path / "allowed", ["a", "b"])
    generate_keys(tmp_path, ["c"])
    allowed = load_key_names([tmp_path / "allowed", tmp_path / "c.key"])
    assert len(allowed) == 3
    assert sorted(allowed.values()) == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="a directory holding \\*.key files"):
        load_key_names([tmp_path / "empty"] if (tmp_path / "empty").mkdir() is None else [])
    with pytest.raises(ConfigError, match="an existing key file"):
        load_key_names([tmp_path / "nosuch.key"])


def test_relative_key_paths_are_taken_from_the_config_files_directory(tmp_path):
    generate_keys(tmp_path / "keys", ["recorder"])
    generate_keys(tmp_path / "keys" / "allowed", ["node01"])
    config = load_config(write_config(tmp_path, CURVE_RECORDER))
    secret, allowed = recorder_keys(config)
    assert len(secret) == 40 and len(allowed) == 1
    assert recorder_keys(load_config(write_config(tmp_path, BASE_CONFIG, "plain.toml"))) == (
        None,
        None,
    )


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ('[recorder]\ncurve_secret_key_file = "r.key_secret"\n', "recorder.curve_allowed_keys"),
        ('[recorder]\ncurve_allowed_keys = ["keys"]\n', "recorder.curve_secret_key_file"),
    ],
)
def test_half_a_curve_setup_is_a_config_error(tmp_path, section, key):
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, section))
    assert caught.value.key == key
    assert "CURVE needs both a secret key and an allow-list" in str(caught.value)


def test_a_collector_needs_both_of_its_key_files(tmp_path):
    generate_keys(tmp_path, ["node01", "recorder"])
    text = '[collector]\ncurve_secret_key_file = "node01.key_secret"\n'
    config = load_config(write_config(tmp_path, text))
    with pytest.raises(ConfigError) as caught:
        collector_keys(config)
    assert caught.value.key == "collector.curve_recorder_key_file"
    public, secret, server = collector_keys(config, recorder_key_file=tmp_path / "recorder.key")
    assert (len(public), len(secret), len(server)) == (40, 40, 40)
    with pytest.raises(ConfigError, match="a secret key file"):
        collector_keys(config, tmp_path / "node01.key", tmp_path / "recorder.key")  # public only


@pytest.mark.integration
def test_the_shipped_production_example_uses_keys():
    config = load_config(REPO / "config" / "production.toml")
    assert config.recorder.curve_secret_key_file
    assert config.recorder.curve_allowed_keys
    assert config.collector.curve_secret_key_file and config.collector.curve_recorder_key_file
    result = affair("check-config", "--config", "config/production.toml")
    assert (result.returncode, result.stdout) == (0, "ok\n")


# --- the real thing: a CURVE recorder and real collector processes ---


def start_collector(tmp_path, endpoint, host, key_args):
    config = write_config(tmp_path, "[collector]\nbuffer_seconds = 60\n", f"{host}.toml")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "affair.collectors.main",
            "--config",
            str(config),
            "--recorder",
            endpoint,
            "--host",
            host,
            "--interval",
            "1",
            "--count",
            "3",
            "--stats-file",
            str(tmp_path / f"{host}.json"),
            *key_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / f"{host}.log", "w"),  # noqa: SIM115 - the child owns it
        cwd=REPO,
    )


@pytest.mark.integration
def test_only_a_collector_with_an_allowed_key_gets_samples_recorded(recorder, tmp_path):
    keys = tmp_path / "keys"
    generate_keys(keys, ["recorder", "stranger"])
    generate_keys(keys / "allowed", ["good"])
    process = recorder(CURVE_RECORDER)
    assert "CURVE on: 1 collector key(s) allowed" in process.log()
    recorder_key = ["--recorder-key", str(keys / "recorder.key")]
    cases = {
        "good": ["--secret-key", str(keys / "allowed" / "good.key_secret"), *recorder_key],
        "nokey": [],
        "stranger": ["--secret-key", str(keys / "stranger.key_secret"), *recorder_key],
        "wrongserver": [  # an allowed key, but it trusts the wrong recorder key
            "--secret-key",
            str(keys / "allowed" / "good.key_secret"),
            "--recorder-key",
            str(keys / "stranger.key"),
        ],
    }
    children = {
        host: start_collector(tmp_path, process.endpoint, host, a) for host, a in cases.items()
    }
    for child in children.values():
        assert child.wait(timeout=60) == 0
    stats = {host: json.loads((tmp_path / f"{host}.json").read_text()) for host in cases}
    assert (stats["good"]["acked"], stats["good"]["handshake_failures"]) == (3, 0)
    for host in ("nokey", "stranger", "wrongserver"):
        assert (stats[host]["submitted"], stats[host]["acked"]) == (3, 0), host
        assert stats[host]["buffered"] == 3, host
    # a refused collector says why in its own log
    assert (
        "refused our handshake (authentication refused" in (tmp_path / "stranger.log").read_text()
    )
    assert "it may require CURVE keys" in (tmp_path / "nokey.log").read_text()
    assert process.terminate() == 0
    data = process.data_dir
    hosts = {p.name for p in data.iterdir() if not p.name.startswith("_")}
    assert hosts - {"recorder"} == {"good"}  # (the recorder's own host, if it has sampled yet)
    journaled = set()
    for day in (data / "_journal").glob("*.sqlite"):
        with sqlite3.connect(day) as connection:
            journaled |= {row[0] for row in connection.execute("SELECT DISTINCT host FROM series")}
    assert journaled - {"recorder"} == {"good"}
    counts = json.loads((data / "_state" / "metrics.json").read_text())
    assert counts["rej_auth"] >= 1  # the stranger's key is not on the allow-list
    assert counts["rej_handshake"] >= 2  # no CURVE at all; the wrong recorder key
    assert counts["accepted"] >= 3
    wait_for(lambda: "rejected (auth) from a peer" in process.log(), what="the auth log line")


@pytest.mark.integration
def test_the_collector_does_not_load_the_recorders_authenticator():
    # the ZAP thread pulls in asyncio (~6 MB of RSS on every node) and is the recorder's alone
    code = (
        "import sys, affair.collectors.main; "
        "print([m for m in ('affair.ingest.auth', 'zmq.auth.thread', 'asyncio') "
        "if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


# --- curve_bind_hosts: a key writes only the hosts it is named for ---


def test_a_key_may_write_its_own_name_and_its_patterns_only():
    binding = HostBinding({"daq-gateway": ("ldc*", "gdc0[12]"), "relay": ("*",)})
    assert binding.allows("node001", "node001")
    assert not binding.allows("node001", "node002")
    assert not binding.allows("node001", "node0011")  # a name, not a prefix
    assert binding.allows("daq-gateway", "daq-gateway")
    assert binding.allows("daq-gateway", "ldc01")
    assert binding.allows("daq-gateway", "ldc")
    assert binding.allows("daq-gateway", "gdc02")
    assert not binding.allows("daq-gateway", "gdc03")
    assert not binding.allows("daq-gateway", "xldc01")  # patterns match the whole name
    assert not binding.allows("daq-gateway", "LDC01")  # host names are case-sensitive
    assert binding.allows("relay", "anything.at-all")
    assert not binding.allows(None, "node001")  # a message without a key name writes nothing


def test_a_key_may_write_every_host_but_the_excluded_ones():
    binding = HostBinding({"relay": ("*", "!ldc05"), "gateway": ("!gdc*", "!ldc05")})
    assert binding.allows("relay", "ldc04")
    assert not binding.allows("relay", "ldc05")
    assert binding.allows("gateway", "ldc01")  # only exclusions: every host but those
    assert not binding.allows("gateway", "gdc01")
    assert not binding.allows("gateway", "ldc05")
    assert binding.allows("ldc05", "ldc05")  # a key always writes its own name


def test_the_authenticator_names_a_connection_by_its_key_file(tmp_path):
    generate_keys(tmp_path, ["node001", "node002"])
    names = load_key_names([tmp_path])
    assert sorted(names.values()) == ["node001", "node002"]
    user_id = KeyNames(names)
    for public, name in names.items():
        assert user_id(z85.decode(public)) == name  # ZAP passes the raw 32-byte key
    stranger = bytes(32)
    assert user_id(stranger) == z85.encode(stranger).decode("ascii")  # pyzmq's default


def bind_config(key_hosts="", bind="true"):
    return CURVE_RECORDER.replace(
        'curve_allowed_keys = ["keys/allowed"]',
        f'curve_allowed_keys = ["keys/allowed"]\ncurve_bind_hosts = {bind}\n{key_hosts}',
    )


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (
            "[recorder]\ncurve_bind_hosts = true\n",
            "recorder.curve_bind_hosts",
            "CURVE keys as well",
        ),
        (
            '[recorder]\ncurve_bind_hosts = "yes"\n',
            "recorder.curve_bind_hosts",
            "true or false",
        ),
        (
            '[recorder]\ncurve_key_hosts = ["ldc*"]\n',
            "recorder.curve_key_hosts",
            "a table of key name -> list of host patterns",
        ),
        (
            '[recorder]\ncurve_key_hosts = { gw = "ldc*" }\n',
            "recorder.curve_key_hosts.gw",
            "a non-empty list of host patterns",
        ),
        (
            "[recorder]\ncurve_key_hosts = { gw = [] }\n",
            "recorder.curve_key_hosts.gw",
            "a non-empty list of host patterns",
        ),
        (
            '[recorder]\ncurve_key_hosts = { gw = ["ldc*", 7] }\n',
            "recorder.curve_key_hosts.gw",
            "a non-empty list of host patterns",
        ),
        (
            '[recorder]\ncurve_key_hosts = { gw = ["!ldc05"] }\n',
            "recorder.curve_key_hosts.gw",
            'at least one that is not a "!glob"',
        ),
        (
            '[recorder]\ncurve_key_hosts = { gw = ["ldc*", "!"] }\n',
            "recorder.curve_key_hosts.gw",
            "a non-empty list of host patterns",
        ),
        (
            '[recorder]\ncurve_key_hosts = { "../gw" = ["ldc*"] }\n',
            "recorder.curve_key_hosts.../gw",
            "a key name like 'daq-gateway'",
        ),
    ],
)
def test_bad_host_binding_settings_are_config_errors(tmp_path, text, key, expected):
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, text))
    assert caught.value.key == key
    assert expected in str(caught.value)
    assert str(tmp_path / "affair.toml") in str(caught.value)


def test_binding_settings_load_as_a_table_of_pattern_tuples(tmp_path):
    generate_keys(tmp_path / "keys", ["recorder"])
    generate_keys(tmp_path / "keys" / "allowed", ["node001", "daq-gateway"])
    text = bind_config('curve_key_hosts = { daq-gateway = ["ldc*", "gdc*"] }')
    config = load_config(write_config(tmp_path, text))
    assert config.recorder.curve_bind_hosts is True
    assert config.recorder.curve_key_hosts == {"daq-gateway": ("ldc*", "gdc*")}
    _secret, allowed = recorder_keys(config)
    assert sorted(allowed.values()) == ["daq-gateway", "node001"]
    plain = load_config(write_config(tmp_path, BASE_CONFIG, "plain.toml"))
    assert (plain.recorder.curve_bind_hosts, plain.recorder.curve_key_hosts) == (False, {})


def test_curve_key_hosts_naming_a_key_not_on_the_allow_list_is_a_config_error(tmp_path):
    generate_keys(tmp_path / "keys", ["recorder"])
    generate_keys(tmp_path / "keys" / "allowed", ["node001"])
    text = bind_config('curve_key_hosts = { daq-gatway = ["ldc*"] }')  # misspelt
    with pytest.raises(ConfigError) as caught:
        recorder_keys(load_config(write_config(tmp_path, text)))
    assert caught.value.key == "recorder.curve_key_hosts.daq-gatway"
    assert "a daq-gatway.key in curve_allowed_keys" in str(caught.value)


def test_with_bound_hosts_one_key_under_two_names_is_a_config_error(tmp_path):
    generate_keys(tmp_path / "keys", ["recorder"])
    generate_keys(tmp_path / "keys" / "allowed", ["node001"])
    allowed = tmp_path / "keys" / "allowed"
    shutil.copy(allowed / "node001.key", allowed / "node002.key")
    with pytest.raises(ConfigError, match="node002.key holds the key of 'node001' too"):
        recorder_keys(load_config(write_config(tmp_path, bind_config())))
    # without binding the copy is harmless: the key is allowed once, under its first name
    _secret, allowed_keys = recorder_keys(load_config(write_config(tmp_path, CURVE_RECORDER)))
    assert list(allowed_keys.values()) == ["node001"]


def curve_send(endpoint, keys, name, hosts):
    """Send one sample per host with ``name``'s CURVE key; return the recorder's ACK."""
    public, secret = load_secret_key(keys / "allowed" / f"{name}.key_secret")
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.curve_publickey = public
    socket.curve_secretkey = secret
    socket.curve_serverkey = load_public_key(keys / "recorder.key")
    try:
        socket.connect(endpoint)
        now = time.time()
        samples = [
            (seq, now, host, "system", "", {"load1": float(seq)}, 1)
            for seq, host in enumerate(hosts, start=1)
        ]
        socket.send(wire.encode_data(name, samples))
        assert socket.poll(10_000), f"no ack for {name}"
        acked, rejected = wire.decode_ack(socket.recv())
        return sorted(acked), sorted(tuple(r) for r in rejected)
    finally:
        socket.close()


def journaled_hosts(data_dir):
    hosts = set()
    for day in (data_dir / "_journal").glob("*.sqlite"):
        with sqlite3.connect(day) as connection:
            hosts |= {row[0] for row in connection.execute("SELECT DISTINCT host FROM series")}
    return hosts - {"recorder"}  # the recorder's own


@pytest.mark.integration
def test_a_bound_key_writes_its_own_host_and_its_patterns_nothing_else(recorder, tmp_path):
    keys = tmp_path / "keys"
    generate_keys(keys, ["recorder"])
    generate_keys(keys / "allowed", ["node001", "daq-gateway"])
    process = recorder(bind_config('curve_key_hosts = { daq-gateway = ["ldc*"] }'))
    # node001 may write node001, not node002; the rest of the message is accepted
    assert curve_send(process.endpoint, keys, "node001", ["node001", "node002"]) == (
        [1],
        [(2, "host_not_bound")],
    )
    assert curve_send(
        process.endpoint, keys, "daq-gateway", ["ldc01", "gdc01", "ldc02", "daq-gateway"]
    ) == ([1, 3, 4], [(2, "host_not_bound")])
    wait_for(
        lambda: (
            "rejected (host_not_bound) from node001: key node001 may not write host node002"
            in process.log()
        ),
        what="the host_not_bound log line naming key and host",
    )
    assert "key daq-gateway may not write host gdc01" in process.log()
    assert process.terminate() == 0
    assert journaled_hosts(process.data_dir) == {"node001", "daq-gateway", "ldc01", "ldc02"}
    assert not (process.data_dir / "node002").exists()
    assert not (process.data_dir / "gdc01").exists()
    counts = json.loads((process.data_dir / "_state" / "metrics.json").read_text())
    assert counts["rej_host_not_bound"] == 2
    assert counts["accepted"] >= 4


@pytest.mark.integration
def test_without_curve_bind_hosts_any_allowed_key_writes_any_host(recorder, tmp_path):
    keys = tmp_path / "keys"
    generate_keys(keys, ["recorder"])
    generate_keys(keys / "allowed", ["node001"])
    process = recorder(bind_config(bind="false"))
    assert curve_send(process.endpoint, keys, "node001", ["node001", "node002"]) == ([1, 2], [])
    assert process.terminate() == 0
    assert journaled_hosts(process.data_dir) == {"node001", "node002"}
    counts = json.loads((process.data_dir / "_state" / "metrics.json").read_text())
    assert counts.get("rej_host_not_bound", 0) == 0
