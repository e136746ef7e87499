"""``[graphs.<name>]`` (configured graphs) and ``[plot]`` (where and how often they are drawn)."""

from dataclasses import dataclass
from typing import Any

from affair.config.datasets import Dataset
from affair.config.fields import (
    HOST_GLOBS,
    POSITIVE,
    check_name_at,
    computed,
    host_globs,
    load_values,
    one_of,
    positive,
    seconds,
    setting,
    string,
    string_list,
    whole,
)
from affair.errors import ConfigError
from affair.vocab import CONSOLIDATION_STYLES, WINDOW_NAMES

GRAPH_MODES = ("node", "aggregate", "overlay")


@dataclass(frozen=True)
class Graph:
    """One configured graph (``[graphs.<name>]``); per-node default graphs need none."""

    name: str = computed("its key under [graphs]")
    title: str = setting("", string, "a title string")  # '': the name, spaced
    dataset: str = setting(None, string, "the name of a dataset declared under [datasets]")
    # (): all the dataset's variables
    variables: tuple[str, ...] = setting(
        (), string_list, "a list of variable names of the graph's dataset"
    )
    unit: str = setting("", string, "a unit string (default: the first variable's)")
    label: str = setting("", string, "an axis label (default: the first variable's)")
    hosts: tuple[str, ...] = setting(("*",), host_globs, HOST_GLOBS)
    instance: str = setting("", string, "an instance name, or '' for the dataset's single series")
    mode: str = setting("node", one_of(*GRAPH_MODES), f"one of {', '.join(GRAPH_MODES)}")
    aggregate: str = setting("sum", one_of("sum", "average"), "'sum' or 'average'")
    windows: tuple[str, ...] = setting(
        ("1h", "6h", "1d", "1w"), string_list, f"a list drawn from {', '.join(WINDOW_NAMES)}"
    )
    consolidations: tuple[str, ...] = setting(
        ("AVERAGE", "MAX", "MIN"), string_list, "a list drawn from AVERAGE, MIN, MAX"
    )


def window_list(value):
    windows = string_list(value)
    if not windows or any(window not in WINDOW_NAMES for window in windows):
        raise ValueError
    return windows


def refresh_table(value):
    if not isinstance(value, dict) or any(window not in WINDOW_NAMES for window in value):
        raise ValueError
    return {window: seconds(period) for window, period in value.items()}


EAGER_ALL = "all"
EAGER_EXPECTED = (
    "'all', or a list of windows every host's graphs are drawn in ahead of time, like ['1h']"
)


def eager_windows(value):
    """``"all"``, or the windows drawn for every host (the rest are left to ``affair serve``)."""
    if value == EAGER_ALL:
        return EAGER_ALL
    windows = string_list(value)
    if any(window not in WINDOW_NAMES for window in windows):
        raise ValueError
    return windows


@dataclass(frozen=True)
class PlotConfig:
    """``[plot]``: where graphs go and how often each window is redrawn (see affair.outputs.plot)."""

    out_dir: str = setting("graphs", string, "a directory path for the PNGs")
    workers: int = setting(1, positive, POSITIVE)
    width: int = setting(720, whole(320), "a width in pixels, at least 320")
    node_windows: tuple[str, ...] = setting(
        WINDOW_NAMES, window_list, f"a non-empty list drawn from {', '.join(WINDOW_NAMES)}"
    )
    # Window -> seconds between redraws; a window left out: its archive's step.
    refresh: dict[str, int] = setting(
        {}, refresh_table, "a table of window = duration, like { 1h = '1min', 1y = '1d' }"
    )
    # What a pass draws ahead of time: "all" (a site on a plain web server), or a list of
    # windows drawn for every host, every window of hosts that are not green, and every
    # aggregate and overlay; `affair serve` draws the other per-node graphs when requested.
    eager: str | tuple[str, ...] = setting(EAGER_ALL, eager_windows, EAGER_EXPECTED)


def load_graphs(raw: Any, datasets: dict[str, Dataset], path) -> dict[str, Graph]:
    """Graph definitions; every dataset and variable they name must be declared."""
    if not isinstance(raw, dict):
        raise ConfigError(path, "graphs", "a table of graphs", raw)
    graphs = {}
    for name, entry in raw.items():
        key = f"graphs.{name}"
        check_name_at(path, key, "dataset", name)  # same safe charset: it becomes a file name
        values = load_values(Graph, entry, path, key)
        dataset = datasets.get(values["dataset"])
        if dataset is None:
            raise ConfigError(
                path,
                f"{key}.dataset",
                f"a dataset declared under [datasets] ({', '.join(datasets)})",
                values["dataset"],
            )
        if not values["variables"]:
            values["variables"] = tuple(dataset.variables)
        for variable in values["variables"]:
            if variable not in dataset.variables:
                raise ConfigError(
                    path, f"{key}.variables", f"variables of dataset {dataset.name!r}", variable
                )
        if values["mode"] == "overlay" and len(values["variables"]) != 1:
            raise ConfigError(
                path,
                f"{key}.variables",
                "exactly one variable for an overlay (one line per host)",
                list(values["variables"]),
            )
        for window in values["windows"]:
            if window not in WINDOW_NAMES:
                raise ConfigError(
                    path, f"{key}.windows", f"windows from {', '.join(WINDOW_NAMES)}", window
                )
        for cf in values["consolidations"]:
            if cf not in CONSOLIDATION_STYLES:  # the ones a graph can draw
                raise ConfigError(path, f"{key}.consolidations", "AVERAGE, MIN or MAX", cf)
        if values["instance"]:
            check_name_at(path, f"{key}.instance", "instance", values["instance"])
        first = dataset.variables[values["variables"][0]]
        values["unit"] = values["unit"] or first.unit
        values["label"] = values["label"] or first.title
        values["title"] = values["title"] or name.replace("_", " ")
        graphs[name] = Graph(name=name, **values)
    return graphs
