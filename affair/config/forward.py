"""``[[forward]]``: targets every journaled sample is streamed to, each on its own watermark.

Two kinds, both spoken by VictoriaMetrics (single node or the cluster's
``vminsert``) and by the tools it replaces:

* ``kind = "influx"``: InfluxDB line protocol over HTTP, ``url`` like
  ``http://vm:8428/write``; a sample becomes one line, measurement
  ``<prefix>_<dataset>``, tags ``host`` and ``instance``, one field per
  variable, which VictoriaMetrics names ``<prefix>_<dataset>_<variable>``.
* ``kind = "graphite"``: plaintext over TCP, ``address`` like ``vm:2003``;
  one line per value, ``<prefix>.<host>.<dataset>[.<instance>].<variable>``.

A bad URL or address is an error at load, not a forwarder that retries
forever. What the forwarder does with them: affair.ingest.forward.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from affair.config.fields import (
    DURATION,
    POSITIVE,
    check_name_at,
    load_values,
    one_of,
    positive,
    seconds,
    setting,
    string,
    table_list,
)
from affair.config.graphite import parse_listen
from affair.config.status import StatusConfig, StatusRule
from affair.errors import ConfigError

FORWARD_KINDS = ("influx", "graphite")


def http_url(value):
    """An http(s) URL with a host; anything else would fail only at the first send."""
    value = string(value)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError
    parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    return value


def tcp_address(value):
    """``"HOST:PORT"`` (or ``"[::1]:PORT"``) -> ``(host, port)``; a bare port means loopback."""
    host, port = parse_listen(value)
    if port == 0:
        raise ValueError
    return host, port


def fine_seconds(value):
    """A positive number of seconds (0.5 is allowed) or a duration like '2s'."""
    if isinstance(value, float) and value > 0:
        return value
    return float(seconds(value))


def metric_prefix(value):
    """Empty, or letters, digits and '_' starting with a letter: valid in PromQL and Graphite."""
    value = string(value)
    if value and not (value[0].isascii() and value[0].isalpha()):
        raise ValueError
    if not all(c.isascii() and (c.isalnum() or c == "_") for c in value):
        raise ValueError
    return value


@dataclass(frozen=True)
class ForwardTarget:
    """One ``[[forward]]`` table."""

    # Names its watermark and state files and its instance in the ``forward`` dataset.
    name: str = setting("", string, "a short name like 'vm', unique among the targets")
    kind: str = setting("influx", one_of(*FORWARD_KINDS), "'influx' or 'graphite'")
    url: str = setting("", http_url, "an http(s) URL like 'http://127.0.0.1:8428/write'")
    address: tuple[str, int] | None = setting(
        None, tcp_address, "a 'HOST:PORT' address like '127.0.0.1:2003'"
    )
    prefix: str = setting("affair", metric_prefix, "'' or a name of letters, digits and '_'")
    batch_size: int = setting(5000, positive, POSITIVE)  # samples per request (or TCP write)
    timeout: float = setting(10.0, fine_seconds, DURATION)  # per request
    poll: float = setting(0.5, fine_seconds, DURATION)  # how often an idle forwarder looks for more
    backoff_cap: float = setting(30.0, fine_seconds, DURATION)  # longest wait between retries
    # A target that dies loses what it held in memory (VictoriaMetrics flushes
    # about every second); after a failure what was sent this long before it is
    # sent again. Duplicates are harmless: same series, timestamp and value.
    resend_window: float = setting(30.0, fine_seconds, DURATION)
    # Retention keeps journal days this target has not consumed, up to this many
    # days past recorder.journal_days; then they go, counted as 'skipped'.
    hold_days: int = setting(7, positive, POSITIVE)
    # `affair status` shows the recorder's host yellow, then red, when a target
    # is this far behind (seconds or '5min').
    lag_yellow: float = setting(300.0, fine_seconds, DURATION)
    lag_red: float = setting(1800.0, fine_seconds, DURATION)


def load_forward(raw: Any, path) -> tuple[ForwardTarget, ...]:
    """The ``[[forward]]`` tables: each checked, names unique."""
    try:
        entries = table_list(raw)
    except ValueError:
        raise ConfigError(path, "forward", "a list of [[forward]] tables", raw) from None
    targets = []
    names = set()
    for index, entry in enumerate(entries):
        key = f"forward[{index}]"
        values = load_values(ForwardTarget, entry, path, key)
        if not values["name"]:
            values["name"] = f"{values['kind']}{index}"
        check_name_at(path, f"{key}.name", "instance", values["name"])
        if values["name"] in names:
            raise ConfigError(path, f"{key}.name", "a name no other target has", values["name"])
        names.add(values["name"])
        if values["kind"] == "influx":
            if not values["url"]:
                raise ConfigError(path, f"{key}.url", "an http(s) URL for an 'influx' target")
            if values["address"] is not None:
                raise ConfigError(path, f"{key}.address", "no address for an 'influx' target")
        else:
            if values["address"] is None:
                raise ConfigError(path, f"{key}.address", "a 'HOST:PORT' for a 'graphite' target")
            if values["url"]:
                raise ConfigError(path, f"{key}.url", "no url for a 'graphite' target")
        if values["lag_red"] <= values["lag_yellow"]:
            raise ConfigError(
                path, f"{key}.lag_red", f"more than lag_yellow ({values['lag_yellow']:g} s)"
            )
        targets.append(ForwardTarget(**values))
    return tuple(targets)


def with_forward_rules(status: StatusConfig, targets: tuple[ForwardTarget, ...], self_host: str):
    """``status`` plus one threshold rule on the recorder's ``forward.lag_seconds``.

    Status rules have no instance filter, so the one rule takes the smallest
    limits of all targets: a host turns yellow (red) as soon as any target is
    more than its strictest ``lag_yellow`` (``lag_red``) behind.
    """
    if not targets:
        return status
    rule = StatusRule(
        kind="threshold",
        dataset="forward",
        variable="lag_seconds",
        op=">",
        yellow=min(t.lag_yellow for t in targets),
        red=min(t.lag_red for t in targets),
        steps=6,
        colour="red",
        hosts=(self_host,),
        label="forwarding behind",
    )
    return dataclasses.replace(status, rules=(*status.rules, rule))
