"""``[graphite]``: the plaintext listener's address and limits, and its mapping rules.

A Graphite path is one string; a rule (``[[graphite.rules]]``) maps it to
affair's host, dataset, instance and variable. A rule is a regular
expression with named groups, matched against the whole path, and four
templates that use the groups as ``{name}``. The default rule reads
collectd's ``host.plugin[-plugin_instance].type[-type_instance][.ds]``.
Rules are compiled at load, so a bad regex stops the load rather than the
listener; the protocol itself is affair.ingest.graphite's.
"""

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from affair.config.fields import (
    DURATION,
    POSITIVE,
    load_values,
    non_negative,
    positive,
    seconds,
    setting,
    string,
    string_list,
    table_list,
)
from affair.errors import ConfigError

FIELDS = ("host", "dataset", "instance", "variable")

# collectd's write_graphite naming (SeparateInstances false, the default):
# host.plugin[-plugin_instance].type[-type_instance][.ds_name]
COLLECTD_PATTERN = (
    r"(?P<host>[^.]+)"
    r"\.(?P<plugin>[^.-]+)(?:-(?P<plugin_instance>[^.]+))?"
    r"\.(?P<type>[^.-]+)(?:-(?P<type_instance>[^.]+))?"
    r"(?:\.(?P<ds>[^.]+))?"
)
COLLECTD_RULE = {
    "pattern": COLLECTD_PATTERN,
    "host": "{host}",
    "dataset": "{plugin}",
    "instance": "{plugin_instance}",
    "variable": "{type}_{type_instance}_{ds}",
}

# Links between daemons (the ``links`` dataset, see affair.names.link_instance):
# links.<host>.<daemon>.<out|in>.<peer host>.<peer daemon>.<variable>, e.g.
# links.tel01.r0dl1.out.tel01.dl1dl2.lat_p95 0.012 1733100000. Always tried, after the
# configured rules (or the collectd one), so every agent can report links one way.
LINKS_RULE = {
    "pattern": (
        r"links\.(?P<host>[^.]+)\.(?P<daemon>[^._]+)\.(?P<end>out|in)"
        r"\.(?P<peer_host>[^._]+)\.(?P<peer_daemon>[^._]+)\.(?P<variable>[^.]+)"
    ),
    "host": "{host}",
    "dataset": "links",
    "instance": "{daemon}_{end}_{peer_host}_{peer_daemon}",
    "variable": "{variable}",
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_listen(value, default_host="127.0.0.1"):
    """``2003``, ``"2003"``, ``"0.0.0.0:2003"`` or ``"[::1]:2003"`` -> ``(host, port)``.

    A bare port listens on loopback only: the protocol has no authentication,
    so opening it to the network must be a deliberate choice.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a port: {value!r}")
    if isinstance(value, int):
        host, port_text = default_host, str(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            if not rest.startswith(":"):
                raise ValueError(f"expected '[HOST]:PORT', got {value!r}")
            port_text = rest[1:]
        elif ":" in text:
            host, _, port_text = text.rpartition(":")
        else:
            host, port_text = default_host, text
    else:
        raise ValueError(f"not a port: {value!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"not a port number: {port_text!r}")
    if not host:
        raise ValueError(f"no host before ':' in {value!r}")
    return host, int(port_text)


@dataclass(frozen=True)
class GraphiteRule:
    """A ``[[graphite.rules]]`` entry, compiled by :func:`compile_rule`: a regex and four templates.

    The loader reads each key as text; a template left out is filled in by
    :func:`compile_rule`.
    """

    pattern: re.Pattern = setting(None, string, "a regular expression with named groups")
    host: str = setting(None, string, "a template like '{host}'")
    dataset: str = setting(None, string, "a template like '{plugin}'")
    instance: str = setting(None, string, "a template like '{plugin_instance}', or ''")
    variable: str = setting(None, string, "a template like '{type}_{type_instance}'")

    def apply(self, path):
        """``(host, dataset, instance, variable)`` as raw text, or None if the path does not match."""
        match = self.pattern.fullmatch(path)
        if match is None:
            return None
        groups = {name: value or "" for name, value in match.groupdict().items()}
        return tuple(
            _PLACEHOLDER.sub(lambda m: groups[m.group(1)], getattr(self, field)) for field in FIELDS
        )


def compile_rule(pattern, host=None, dataset=None, instance=None, variable=None):
    """Build a rule, raising ValueError(text) naming what is wrong.

    A template left out defaults to the group of the same name
    (``{host}``...); ``instance`` defaults to none when the pattern has no
    ``instance`` group.
    """
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"pattern: not a regular expression ({error})") from None
    groups = set(compiled.groupindex)
    templates = {"host": host, "dataset": dataset, "instance": instance, "variable": variable}
    for field, template in templates.items():
        if template is None:
            if field in groups:
                template = "{" + field + "}"
            elif field == "instance":
                template = ""
            else:
                raise ValueError(
                    f"{field}: give a template like '{{{field}}}' or a pattern group (?P<{field}>...)"
                )
        for name in _PLACEHOLDER.findall(template):
            if name not in groups:
                raise ValueError(
                    f"{field}: {{{name}}} is not a named group of the pattern "
                    f"(groups: {', '.join(sorted(groups)) or 'none'})"
                )
        if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
            raise ValueError(f"{field}: stray brace in {template!r}; use {{group}} only")
        templates[field] = template
    return GraphiteRule(compiled, **templates)


def default_rules():
    return (compile_rule(**COLLECTD_RULE), compile_rule(**LINKS_RULE))


def listen_address(value):
    return None if value in ("", None) else parse_listen(value)


def networks(value):
    return tuple(ipaddress.ip_network(item, strict=False) for item in string_list(value))


@dataclass(frozen=True)
class GraphiteConfig:
    listen: tuple[str, int] | None = setting(  # None: off
        None, listen_address, "'' (off), a port like 2003, or 'HOST:PORT'"
    )
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = setting(
        networks(["127.0.0.1/32", "::1/128"]),
        networks,
        "a list of client networks like '10.0.0.0/8'",
    )
    max_connections: int = setting(256, positive, POSITIVE)
    # One client address may hold no more than this many of them, so idle
    # connections from one address cannot lock the others out.
    max_connections_per_client: int = setting(32, positive, POSITIVE)
    # A line begun must end (its newline) within this: a client trickling
    # bytes without one (slow-loris) is closed instead of holding its slot.
    line_timeout: int = setting(10, seconds, DURATION)
    max_line_bytes: int = setting(1024, positive, POSITIVE)
    lines_per_second: int = setting(20_000, positive, POSITIVE)
    merge_seconds: float = setting(
        30.0, non_negative, "the longest a reading waits for more of its lines"
    )
    # GraphiteRule, tried in order; the collectd rule when none is configured.
    rules: tuple[GraphiteRule, ...] = setting((), table_list, "a list of tables [[graphite.rules]]")


def load_graphite(raw: Any, path) -> GraphiteConfig:
    """``[graphite]``, with its rules compiled."""
    values = load_values(GraphiteConfig, raw, path, "graphite")
    rules = []
    for index, entry in enumerate(values["rules"]):
        key = f"graphite.rules[{index}]"
        rule = load_values(GraphiteRule, entry, path, key)
        if rule["pattern"] is None:
            raise ConfigError(path, f"{key}.pattern", "a regular expression with named groups")
        try:
            rules.append(compile_rule(**rule))
        except ValueError as error:
            raise ConfigError(path, key, str(error), rule["pattern"]) from None
    values["rules"] = (*rules, compile_rule(**LINKS_RULE)) if rules else default_rules()
    return GraphiteConfig(**values)
