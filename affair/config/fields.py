"""How a config key is declared, once, and how a section of keys is loaded.

A section of the file (``[recorder]``, a ``[[status.rules]]`` entry, ...) is a
frozen dataclass, and each of its keys is a field made with :func:`setting`:
the default, the converter and the words of the error in one place. The one
loader, :func:`load_values`, reads a table against such a class: a key that
is not a field is an error (ganglia once lost a setting to a typo), and a
value the converter refuses becomes a one-line ConfigError naming the file,
the dotted key and the expectation. Fields the file does not set directly
(a dataset's name, what a derivation fills in) are made with :func:`computed`.

A converter takes the value as TOML gave it and returns the clean value or
raises ValueError/TypeError; the loader supplies the words.
"""

import copy
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from affair.errors import ConfigError, InvalidName
from affair.hosts import EXCLUDE
from affair.names import check_name
from affair.times import parse_duration

Converter = Callable[[Any], Any]

POSITIVE = "a positive whole number"
DURATION = "a duration in seconds or like '10s', '5min', '1h'"
TRUE_OR_FALSE = "true or false"


def setting(default: Any, convert: Converter, expected: str) -> Any:
    """A config key: its default (already clean), its converter and what it expects.

    A mutable default (a table, a list) is copied for each instance.
    """
    metadata = {"convert": convert, "expected": expected}
    if isinstance(default, dict | list | set):
        return dataclasses.field(default_factory=lambda: copy.copy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def subsection(cls: type, expected: str) -> Any:
    """A key holding a table of its own, loaded as ``cls`` under the dotted key."""
    metadata = {"convert": table, "expected": expected, "section": cls}
    return dataclasses.field(default_factory=cls, metadata=metadata)


def computed(why: str, **default: Any) -> Any:
    """A field that is not a key of its table; ``why`` says where its value comes from.

    Takes ``default=`` or ``default_factory=`` like :func:`dataclasses.field`.
    """
    return dataclasses.field(metadata={"computed": why}, **default)


def settings_of(cls: type) -> dict[str, dataclasses.Field]:
    """The fields of ``cls`` that are keys of its table, in declaration order."""
    return {f.name: f for f in dataclasses.fields(cls) if "convert" in f.metadata}


def load_values(cls: type, raw: Any, path: Any, prefix: str) -> dict[str, Any]:
    """The clean value of every key of ``cls`` from the table ``raw`` at ``prefix``.

    Keys left out take their default; a nested section is loaded as its own
    class. Computed fields are the caller's to add.
    """
    if not isinstance(raw, dict):
        raise ConfigError(path, prefix, "a table", raw)
    keys = settings_of(cls)
    reject_unknown(raw, keys, path, prefix)
    values = {}
    for name, spec in keys.items():
        if name not in raw:
            values[name] = _default(spec)
            continue
        dotted = f"{prefix}.{name}"
        try:
            value = spec.metadata["convert"](raw[name])
        except (ValueError, TypeError):
            raise ConfigError(path, dotted, spec.metadata["expected"], raw[name]) from None
        section = spec.metadata.get("section")
        values[name] = load_section(section, value, path, dotted) if section else value
    return values


def load_section(cls: type, raw: Any, path: Any, prefix: str) -> Any:
    """An instance of ``cls`` from the table ``raw``, for a class whose fields are all keys."""
    return cls(**load_values(cls, raw, path, prefix))


def reject_unknown(raw: dict, allowed: Iterable[str], path: Any, prefix: str) -> None:
    allowed = set(allowed)
    for key in raw:
        if key not in allowed:
            dotted = f"{prefix}.{key}" if prefix else key
            raise ConfigError(
                path, dotted, f"a known key (one of: {', '.join(sorted(allowed))})", key
            )


def check_name_at(path: Any, key: str, kind: str, name: Any) -> None:
    """A ConfigError at ``key`` unless ``name`` is a valid ``kind`` name (see affair.names)."""
    try:
        check_name(kind, name)
    except InvalidName as error:
        raise ConfigError(path, key, f"a valid {kind} name ({error.reason})", name) from None


def _default(spec: dataclasses.Field) -> Any:
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return spec.default


# --- converters ---


def whole(minimum: int) -> Converter:
    """Whole numbers from ``minimum`` up (TOML's true is no number)."""

    def convert(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError
        return value

    return convert


positive = whole(1)


def number(value):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError
    return float(value)


def optional_number(value):
    """A number, or rrdtool's ``'U'`` (unknown) for None."""
    return None if value == "U" else number(value)


def non_negative(value):
    value = number(value)
    if value < 0:
        raise ValueError
    return value


def seconds(value):
    return parse_duration(value)


def interval(value):
    """A duration, or 0 (or "off") for a job that never runs."""
    if value == 0 or value == "off":
        return 0
    return seconds(value)


def boolean(value):
    if not isinstance(value, bool):
        raise ValueError
    return value


def string(value):
    if not isinstance(value, str):
        raise ValueError
    return value


def string_list(value):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError
    return tuple(value)


HOST_GLOBS = "a host glob or a non-empty list of them, like 'gdc*' or ['*', '!ldc05']"


def host_globs(value):
    """One host glob or a non-empty list of them, as a tuple (how they match: affair.hosts).

    An empty list or a bare "!" would silently match nothing: refused here.
    """
    patterns = string_list([value] if isinstance(value, str) else value)
    if not patterns or any(pattern in ("", EXCLUDE) for pattern in patterns):
        raise ValueError
    return patterns


def endpoint(value):
    value = string(value)
    if not value.startswith(("tcp://", "ipc://", "inproc://")):
        raise ValueError
    return value


def table(value):
    if not isinstance(value, dict):
        raise ValueError
    return value


def table_list(value):
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError
    return tuple(value)


def one_of(*choices: Any) -> Converter:
    def convert(value):
        if value not in choices:
            raise ValueError
        return value

    return convert
