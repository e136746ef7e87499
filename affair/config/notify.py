"""``[[notify]]``: who is told when a host changes colour, and how.

Each target is exactly one of ``command`` (run with the change as JSON on
stdin), ``url`` (a webhook: the JSON POSTed) or ``email`` (addresses, sent
through the local ``sendmail``). What each is checked for at load: the
command's program (and sendmail) must be executable, the URL must be an
http(s) URL with a host. affair.outputs.notify sends.
"""

import os
import shutil
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from affair.config.fields import (
    DURATION,
    HOST_GLOBS,
    TRUE_OR_FALSE,
    boolean,
    host_globs,
    interval,
    load_values,
    seconds,
    setting,
    string,
    string_list,
    table_list,
    whole,
)
from affair.errors import ConfigError
from affair.vocab import RULE_COLOURS

KINDS = ("command", "url", "email")


def notify_colours(value):
    colours = string_list([value] if isinstance(value, str) else value)
    if not colours or any(colour not in RULE_COLOURS for colour in colours):
        raise ValueError
    return colours


@dataclass(frozen=True)
class NotifyTarget:
    name: str = setting("", string, "a short name for the logs")
    # The program and its arguments, run with no shell; the change as JSON on stdin.
    command: tuple[str, ...] = setting((), string_list, "a list like ['/usr/local/bin/page', '-v']")
    url: str = setting("", string, "an http:// or https:// URL")
    email: tuple[str, ...] = setting((), string_list, "a list of addresses")
    sendmail: str = setting("/usr/sbin/sendmail", string, "the path of a sendmail program")
    # The colours worth telling about; a change to any other is a 'resolved'.
    colours: tuple[str, ...] = setting(
        ("red",), notify_colours, "a list of 'red', 'yellow', 'grey'"
    )
    hosts: tuple[str, ...] = setting(("*",), host_globs, HOST_GLOBS)
    repeat: int = setting(3600, interval, f"{DURATION}, or 0 for never")
    resolved: bool = setting(True, boolean, TRUE_OR_FALSE)
    timeout: int = setting(10, seconds, DURATION)
    retries: int = setting(3, whole(0), "a whole number of tries after the first")

    @property
    def kind(self):
        return next(kind for kind in KINDS if getattr(self, kind))


def load_notify(raw: Any, path) -> tuple[NotifyTarget, ...]:
    try:
        entries = table_list(raw)
    except ValueError:
        raise ConfigError(path, "notify", "a list of [[notify]] tables", raw) from None
    targets = []
    for index, entry in enumerate(entries):
        key = f"notify[{index}]"
        values = load_values(NotifyTarget, entry, path, key)
        given = [kind for kind in KINDS if values[kind]]
        if len(given) != 1:
            raise ConfigError(path, key, "exactly one of command, url, email", ", ".join(given))
        if values["command"]:
            _check_executable(values["command"][0], path, f"{key}.command")
        if values["url"]:
            parts = urlsplit(values["url"])
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(path, f"{key}.url", "an http:// or https:// URL", values["url"])
        if values["email"]:
            if not all("@" in address for address in values["email"]):
                raise ConfigError(path, f"{key}.email", "addresses like ops@example.org")
            _check_executable(values["sendmail"], path, f"{key}.sendmail")
        values["name"] = values["name"] or f"{given[0]}#{index}"
        targets.append(NotifyTarget(**values))
    return tuple(targets)


def _check_executable(program, path, key):
    found = shutil.which(program) if os.sep not in program else program
    if not found or not os.access(found, os.X_OK) or os.path.isdir(found):
        raise ConfigError(path, key, "an executable program (a path, or a name on PATH)", program)
