"""``[collector]`` and the probes' own settings under it (see affair.collectors.probes)."""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from affair.config.fields import (
    DURATION,
    POSITIVE,
    check_name_at,
    endpoint,
    load_section,
    load_values,
    positive,
    seconds,
    setting,
    string,
    string_list,
    subsection,
    table_list,
)
from affair.errors import ConfigError
from affair.names import safe_name


@dataclass(frozen=True)
class DiskSettings:
    """``[collector.disks]``: which mounted file systems the disks probe skips."""

    exclude_fstypes: tuple[str, ...] = setting(
        ("squashfs", "tmpfs", "devtmpfs", "overlay", "iso9660", "nsfs", "autofs"),
        string_list,
        "a list of file system types like 'tmpfs'",
    )
    exclude_mounts: tuple[str, ...] = setting(
        ("/snap/*", "/boot/efi"), string_list, "a list of mount-point globs"
    )


@dataclass(frozen=True)
class NetSettings:
    """``[collector.net]``: which interfaces the net probe skips."""

    exclude: tuple[str, ...] = setting(
        ("lo", "veth*"), string_list, "a list of interface-name globs like 'veth*'"
    )


@dataclass(frozen=True)
class ProcessSelector:
    """One ``[[collector.processes]]`` entry: exactly one of name, cmdline, pidfile."""

    instance: str = setting(
        "", string, "an instance name for the process (default: from name/pidfile)"
    )
    name: str = setting("", string, "a process name as `ps -e` shows it, e.g. 'sshd'")
    cmdline: str = setting("", string, "text the command line contains, e.g. 'affair record'")
    pidfile: str = setting("", string, "the path of a pid file")


def optional_endpoint(value):
    return "" if value == "" else endpoint(value)


@dataclass(frozen=True)
class CollectorConfig:
    recorder: str = setting(
        "tcp://127.0.0.1:5678", endpoint, "a ZeroMQ endpoint like 'tcp://station:5678'"
    )
    host: str = setting("", string, "a host name, or '' for this machine's name")
    # Several stations (affair.collectors.failover): the station `recorder` belongs
    # to, and a recorder to send to while that one does not answer.
    station: str = setting("", string, "a station name like 'station1', or ''")
    fallback: str = setting("", optional_endpoint, "'' or a ZeroMQ endpoint like 'tcp://st2:5678'")
    fallback_after: int = setting(60, seconds, DURATION)  # of silence before the fallback
    home_retry: int = setting(600, seconds, DURATION)  # on the fallback, how often to try home
    interval: int = setting(10, seconds, DURATION)
    probes: tuple[str, ...] = setting(("system",), string_list, "a list of probe names")
    buffer_seconds: int = setting(3600, seconds, DURATION)
    resend_timeout: int = setting(5, seconds, DURATION)
    max_in_flight: int = setting(64, positive, POSITIVE)
    backoff_cap: int = setting(30, seconds, DURATION)
    curve_secret_key_file: str = setting(
        "", string, "a path to this collector's NAME.key_secret, or ''"
    )
    curve_recorder_key_file: str = setting(
        "", string, "a path to the recorder's public NAME.key, or ''"
    )
    disks: DiskSettings = subsection(DiskSettings, "a table [collector.disks]")
    net: NetSettings = subsection(NetSettings, "a table [collector.net]")
    # ProcessSelector, in file order.
    processes: tuple[ProcessSelector, ...] = setting(
        (), table_list, "a list of tables [[collector.processes]]"
    )


def load_collector(raw: Any, path) -> CollectorConfig:
    values = load_values(CollectorConfig, raw, path, "collector")
    values["processes"] = _processes(values["processes"], path)
    return CollectorConfig(**values)


def _processes(tables, path):
    """Each ``[[collector.processes]]`` entry, with its instance name derived if not given."""
    selectors = []
    for index, entry in enumerate(tables):
        key = f"collector.processes[{index}]"
        selector = load_section(ProcessSelector, entry, path, key)
        given = [name for name in ("name", "cmdline", "pidfile") if getattr(selector, name)]
        if len(given) != 1:
            raise ConfigError(path, key, "exactly one of name, cmdline, pidfile", entry)
        if not selector.instance:
            text = getattr(selector, given[0])
            if given[0] == "pidfile":
                text = Path(text).name.removesuffix(".pid")
            selector = replace(selector, instance=safe_name("instance", text) or "")
        check_name_at(path, f"{key}.instance", "instance", selector.instance)
        selectors.append(selector)
    instances = [selector.instance for selector in selectors]
    for instance in instances:
        if instances.count(instance) > 1:
            raise ConfigError(path, "collector.processes", "distinct instance names", instance)
    return tuple(selectors)
