"""``[schedule]`` (how often the scheduler plots and builds) and ``[site]`` (the HTML pages)."""

from dataclasses import dataclass
from typing import Any

from affair.config.datasets import Dataset, variable_ref
from affair.config.fields import (
    DURATION,
    HOST_GLOBS,
    check_name_at,
    host_globs,
    interval,
    load_values,
    seconds,
    setting,
    string,
    string_list,
    table_list,
)
from affair.errors import ConfigError


@dataclass(frozen=True)
class ScheduleConfig:
    """Seconds between the scheduler's passes; 0: never."""

    plot: int = setting(60, interval, "a duration like '1min', or 0 for never")
    site: int = setting(30, interval, "a duration like '30s', or 0 for never")


@dataclass(frozen=True)
class Station:
    """One ``[[site.stations]]`` entry: another station whose hosts this index also shows."""

    name: str = setting("", string, "a station name like 'station2'")
    # Its site's status.json: a path, or an http(s) URL (its pages are beside it).
    status: str = setting("", string, "a path or http(s) URL of a status.json")
    pages: str = setting("", string, "the URL of its pages, or '' for the folder of status")
    timeout: float = setting(5, seconds, DURATION)


def station_source(value):
    """A status.json path or an http(s) URL; anything else (ftp:, a bare host) is refused."""
    value = string(value)
    if "://" in value and not value.startswith(("http://", "https://", "file://")):
        raise ValueError
    if not value:
        raise ValueError
    return value


@dataclass(frozen=True)
class SiteConfig:
    out_dir: str = setting("site", string, "a directory path")
    graphs_dir: str = setting("", string, "a directory path, or '' for the plotter's out_dir")
    title: str = setting("affair", string, "a title string")
    # Seconds between page reloads; None: as often as the schedule rebuilds them.
    refresh: int = setting(None, seconds, DURATION)
    # Group name -> tuple of globs, in file order.
    groups: dict[str, tuple[str, ...]] = setting(
        {}, dict, "a table like { ldc = 'ldc*', gdc = ['gdc*', 'evb*'] }"
    )
    # ('dataset', 'variable') pairs.
    key_variables: tuple[tuple[str, str], ...] = setting(
        (), string_list, "a list of 'dataset.variable' names"
    )
    # Station, in file order: other stations shown on this index (affair.outputs.stations).
    stations: tuple[Station, ...] = setting((), table_list, "a list of tables [[site.stations]]")


def load_site(raw: Any, datasets: dict[str, Dataset], schedule: ScheduleConfig, path) -> SiteConfig:
    values = load_values(SiteConfig, raw, path, "site")
    if values["refresh"] is None:  # pages reload as often as they are rebuilt
        values["refresh"] = schedule.site or 60
    groups = {}
    for name, patterns in values["groups"].items():
        key = f"site.groups.{name}"
        check_name_at(path, key, "dataset", name)  # same safe charset: it becomes an anchor
        try:
            groups[name] = host_globs(patterns)
        except (ValueError, TypeError):
            raise ConfigError(path, key, HOST_GLOBS, patterns) from None
    values["groups"] = groups
    values["key_variables"] = tuple(
        variable_ref(ref, datasets, path, "site.key_variables") for ref in values["key_variables"]
    )
    values["stations"] = _stations(values["stations"], path)
    return SiteConfig(**values)


def _stations(tables, path):
    stations = []
    for index, entry in enumerate(tables):
        key = f"site.stations[{index}]"
        values = load_values(Station, entry, path, key)
        try:
            values["status"] = station_source(values["status"])
        except ValueError:
            raise ConfigError(
                path, f"{key}.status", "a path or http(s) URL of a status.json", values["status"]
            ) from None
        if not values["name"]:
            values["name"] = f"station{index + 1}"
        check_name_at(path, f"{key}.name", "host", values["name"])
        stations.append(Station(**values))
    return tuple(stations)
