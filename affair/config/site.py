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
)
from affair.errors import ConfigError


@dataclass(frozen=True)
class ScheduleConfig:
    """Seconds between the scheduler's passes; 0: never."""

    plot: int = setting(60, interval, "a duration like '1min', or 0 for never")
    site: int = setting(30, interval, "a duration like '30s', or 0 for never")


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
    return SiteConfig(**values)
