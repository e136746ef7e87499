"""``[recorder]``: where it listens and stores, its limits, CURVE keys and rrdcached."""

import ipaddress
from dataclasses import dataclass
from typing import Any

from affair.config.fields import (
    DURATION,
    POSITIVE,
    TRUE_OR_FALSE,
    boolean,
    endpoint,
    host_globs,
    load_values,
    non_negative,
    one_of,
    positive,
    seconds,
    setting,
    string,
    string_list,
    table,
)
from affair.errors import ConfigError, InvalidName
from affair.hosts import EXCLUDE
from affair.names import check_name


def rrdcached_address(value):
    """'' (write files directly), 'unix:<absolute path>', or a loopback 'HOST:PORT'.

    Loopback only: rrdcached has no authentication, and affair reads and
    tunes the same files itself, so the daemon must run on this machine.
    """
    value = string(value).strip()
    if not value:
        return ""
    if value.startswith("unix:"):
        if not value[len("unix:") :].startswith("/"):
            raise ValueError
        return value
    host, colon, port = value.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError
    return value


@dataclass(frozen=True)
class RecorderConfig:
    listen: str = setting("tcp://127.0.0.1:5678", endpoint, "a ZeroMQ endpoint like 'tcp://*:5678'")
    data_dir: str = setting("data", string, "a directory path")
    step: int = setting(10, seconds, DURATION)
    heartbeat: int = setting(None, seconds, DURATION)  # None: twice the step (load_recorder)
    accept_undeclared: bool = setting(True, boolean, TRUE_OR_FALSE)
    max_series_per_host: int = setting(256, positive, POSITIVE)
    max_variables_per_dataset: int = setting(64, positive, POSITIVE)
    max_message_bytes: int = setting(1 << 20, positive, POSITIVE)
    # Hostile-input bounds (README "Hostile input"): samples in one message,
    # hosts the data dir may hold, senders whose state is kept and for how
    # long, and the fastest a sender could plausibly produce (and so drop).
    max_samples_per_message: int = setting(10_000, positive, POSITIVE)
    max_hosts: int = setting(50_000, positive, POSITIVE)
    max_senders: int = setting(10_000, positive, POSITIVE)
    sender_idle_forget: int = setting(86400, seconds, DURATION)
    max_sender_rate: int = setting(100_000, positive, POSITIVE)
    max_future_skew: int = setting(300, seconds, DURATION)
    max_sample_age: int = setting(7 * 86400, seconds, DURATION)
    # Not "affair": a host named like the tool read "affair › other › affair" on its page.
    self_host: str = setting("recorder", string, "a host name for the recorder's own metrics")
    self_interval: int = setting(10, seconds, DURATION)
    write_delay: float = setting(0, non_negative, "a number of seconds >= 0")
    queue_limit: int = setting(200_000, positive, POSITIVE)
    journal_sync: str = setting("normal", one_of("normal", "full"), "'normal' or 'full'")
    journal_days: int = setting(7, positive, POSITIVE)
    # The daemon's address; "" writes the files directly.
    rrdcached: str = setting(
        "",
        rrdcached_address,
        "'' (off), 'unix:<absolute path>' or a loopback 'HOST:PORT' like '127.0.0.1:42217'",
    )
    # Seconds between the writer's flushes through it (see affair.ingest.writer).
    rrdcached_flush: int = setting(300, seconds, DURATION)
    curve_secret_key_file: str = setting(
        "", string, "a path to the recorder's NAME.key_secret, or ''"
    )
    curve_allowed_keys: tuple[str, ...] = setting(
        (), string_list, "a list of public key files or directories"
    )
    # A key may write only its own host name (and its patterns).
    curve_bind_hosts: bool = setting(False, boolean, TRUE_OR_FALSE)
    # Key name -> tuple of host globs.
    curve_key_hosts: dict[str, tuple[str, ...]] = setting(
        {},
        table,
        'a table of key name -> list of host patterns, like { daq-gateway = ["ldc*"] }',
    )


def load_recorder(raw: Any, path) -> RecorderConfig:
    """``[recorder]``, with the heartbeat derived and the CURVE settings checked together."""
    values = load_values(RecorderConfig, raw, path, "recorder")
    if values["heartbeat"] is None:
        values["heartbeat"] = 2 * values["step"]
    if values["heartbeat"] < values["step"]:
        raise ConfigError(
            path,
            "recorder.heartbeat",
            f"at least the step ({values['step']}s)",
            values["heartbeat"],
        )
    if bool(values["curve_secret_key_file"]) != bool(values["curve_allowed_keys"]):
        missing = (
            "curve_allowed_keys" if values["curve_secret_key_file"] else "curve_secret_key_file"
        )
        raise ConfigError(
            path, f"recorder.{missing}", "CURVE needs both a secret key and an allow-list"
        )
    if values["curve_bind_hosts"] and not values["curve_secret_key_file"]:
        raise ConfigError(
            path,
            "recorder.curve_bind_hosts",
            "CURVE keys as well (curve_secret_key_file, curve_allowed_keys): without them "
            "no key names a sender, so binding hosts to keys would protect nothing",
            True,
        )
    values["curve_key_hosts"] = _key_hosts(values["curve_key_hosts"], path)
    try:
        check_name("host", values["self_host"])
    except InvalidName as error:
        raise ConfigError(path, "recorder.self_host", error.reason, values["self_host"]) from None
    return RecorderConfig(**values)


def _key_hosts(table, path):
    """``curve_key_hosts``: key name -> tuple of host globs, each entry checked by name.

    Whether each name is on the allow-list is checked where the key files are
    read (:func:`affair.ingest.auth.recorder_keys`).
    """
    clean = {}
    for name, patterns in table.items():
        key = f"recorder.curve_key_hosts.{name}"
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(path, key, "a key name like 'daq-gateway' (its file's stem)", name)
        try:
            if not isinstance(patterns, list):
                raise TypeError
            clean[name] = host_globs(patterns)
            # An exclusion-only list means "every host but these" (affair.hosts):
            # too broad to grant a key by accident.
            if all(pattern.startswith(EXCLUDE) for pattern in clean[name]):
                raise ValueError
        except (ValueError, TypeError):
            raise ConfigError(
                path,
                key,
                'a non-empty list of host patterns with at least one that is not a "!glob", '
                'like ["ldc*", "!ldc05"]',
                patterns,
            ) from None
    return clean
