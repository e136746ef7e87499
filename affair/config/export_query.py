"""``[export]`` (the permanent ROOT archive) and ``[query]``/``[queries.<name>]`` (SQL on the journal).

``[export]`` was the daily ROOT export of the previous day, off by default;
it is now the permanent archive (:mod:`affair.outputs.archive`), on by
default, with its keys kept: ``enabled``, ``directory`` (where the archive
lives), ``hour`` (when the scheduler's daily pass runs) and ``resolution``
(``raw``: the archive alone; a ladder step: the scheduler also writes the
old consolidated daily file beside it, as before).
"""

import re
from dataclasses import dataclass
from typing import Any

from affair.config.archive import Archive
from affair.config.fields import (
    DURATION,
    TRUE_OR_FALSE,
    boolean,
    check_name_at,
    computed,
    load_section,
    load_values,
    number,
    seconds,
    setting,
    string,
    whole,
)
from affair.errors import ConfigError


def hour_of_day(value):
    value = whole(0)(value)
    if value > 23:
        raise ValueError
    return value


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(|B|KB|MB|GB|TB)\s*", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}


def byte_size(value):
    """Bytes from a whole number or a string like '500MB', '2GB' (powers of 1000)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def share_of_a_core(value):
    """A fraction of one core, above 0 and at most 1."""
    value = number(value)
    if not 0 < value <= 1:
        raise ValueError
    return value


def raw_or_seconds(value):
    return "raw" if value == "raw" else seconds(value)


@dataclass(frozen=True)
class ExportConfig:
    """``[export]``: the permanent archive of every sample in ROOT files, a file per UTC day."""

    enabled: bool = setting(True, boolean, TRUE_OR_FALSE)
    directory: str = setting("archive", string, "a directory path for the archive's ROOT files")
    hour: int = setting(1, hour_of_day, "an hour of the day, 0 to 23 (UTC)")
    # "raw" or seconds.
    resolution: str | int = setting(
        "raw", raw_or_seconds, "'raw' or a resolution of the ladder like '1min'"
    )
    # Below this much free space the archive writes nothing (it retries at the next pass).
    min_free: int = setting(
        1_000_000_000, byte_size, "a size in bytes or like '500MB', '2GB' (free space kept)"
    )
    # The share of one core an archive pass may take, in 0.1 s slices (RESULTS.md, "archive").
    cpu_share: float = setting(
        0.25, share_of_a_core, "a fraction of one core, above 0 and at most 1"
    )


@dataclass(frozen=True)
class NamedQuery:
    name: str = computed("its key under [queries]")
    sql: str = setting("", string, "an SQL SELECT statement")
    description: str = setting("", string, "a one-line description")


@dataclass(frozen=True)
class QueryConfig:
    """``[query]`` limits and the ``[queries.<name>]`` saved queries."""

    timeout: int = setting(30, seconds, DURATION)
    max_rows: int = setting(1000, whole(1), "a positive whole number of rows to print as a table")
    named: dict[str, NamedQuery] = computed("the [queries] tables", default_factory=dict)


def load_export(raw: Any, archives: tuple[Archive, ...], path) -> ExportConfig:
    export = load_section(ExportConfig, raw, path, "export")
    steps = [archive.step for archive in archives]
    if export.resolution != "raw" and export.resolution not in steps:
        raise ConfigError(
            path,
            "export.resolution",
            f"'raw' or a step of the archive ladder ({', '.join(f'{s}s' for s in steps)})",
            raw.get("resolution"),
        )
    return export


def load_query(query_raw: Any, queries_raw: Any, path) -> QueryConfig:
    limits = load_values(QueryConfig, query_raw, path, "query")
    if not isinstance(queries_raw, dict):
        raise ConfigError(path, "queries", "a table of named queries", queries_raw)
    named = {}
    for name, entry in queries_raw.items():
        key = f"queries.{name}"
        check_name_at(path, key, "dataset", name)  # same safe charset: typed on command lines
        values = load_values(NamedQuery, entry, path, key)
        if not values["sql"].strip():
            raise ConfigError(path, f"{key}.sql", "an SQL SELECT statement", values["sql"])
        named[name] = NamedQuery(name=name, **values)
    return QueryConfig(**limits, named=named)
