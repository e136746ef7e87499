"""From a job to a :class:`Chart`: what to draw, in data terms. The renderer does pixels.

Looks, decided once for every graph:

* consolidations: AVERAGE a full line, MAX dashed, MIN dotted, in the
  variable's colour; a per-node graph with all three draws MIN to MAX as a
  light band under the AVERAGE line instead (three lines of one hue read as
  hatching); at the finest archive (one sample per row, where the three
  are equal) only the AVERAGE is fetched and drawn;
* a default per-node graph has one panel per meaning and unit (CPU % in
  one, disk B/s in another, network B/s in a third: a variable's ``panel``
  in the config), since variables of different units cannot share an axis
  and a busy disk must not hide behind a busy network, all in one PNG so
  the site's contract stays one file per series and window; a unit with
  more than 8 variables gets more panels; 0/1 flags and identifiers (a run
  number) get small panels of their own, identifiers printed whole;
* an aggregate shades the band between its MIN and MAX lines; for a sum,
  the MAX line is the sum of each host's maximum, an upper bound of the
  total's peak within a row (hosts need not peak together), and MIN the
  matching lower bound;
* an overlay draws one line per host of the graph's first consolidation,
  colours fixed by the host's place in the sorted selection, so a host
  keeps its colour across windows; its legend, in columns, names up to 60
  hosts (then "and N more"), so the PNG stays a sensible size;
* legends give now / min / avg / max over the window (overlays: now), "now"
  being the newest known value at the finest step, not a long window's last
  consolidated row.
"""

from dataclasses import dataclass, field

import numpy as np

from affair.errors import AffairError, PlotError
from affair.outputs.plot.data import Grid, aggregate, fetch_rows, latest_values
from affair.outputs.plot.scale import format_value
from affair.outputs.plot.timeaxis import TickRule, describe_end, describe_range, rule_for_span
from affair.storage.ladder import archive_for_range, archive_for_window
from affair.vocab import CONSOLIDATION_STYLES, WINDOWS

# Tableau 10: muted enough for a wall of graphs, distinct for the first few lines.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#b07aa1",
    "#76b7b2",
    "#9c755f",
    "#ff9da7",
    "#edc948",
    "#bab0ac",
)
# Overlays of many hosts: Tableau 20 (each hue dark then light).
HOST_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#b07aa1",
    "#76b7b2",
    "#9c755f",
    "#d37295",
    "#b6992d",
    "#79706e",
    "#a0cbe8",
    "#ffbe7d",
    "#8cd17d",
    "#ff9d9a",
    "#d4a6c8",
    "#86bcb6",
    "#d7b5a6",
    "#fabfd2",
    "#f1ce63",
    "#bab0ac",
)
PANEL_VARIABLES = 8  # most variables in one panel of a default per-node graph
OVERLAY_LEGEND_MAX = 60  # entries; past that the legend ends with "and N more"
WINDOW_WORDS = {
    "1h": "last hour",
    "6h": "last 6 hours",
    "1d": "last day",
    "1w": "last week",
    "1m": "last month",
    "3m": "last 3 months",
    "1y": "last year",
}


@dataclass
class Line:
    values: np.ndarray  # one per grid row; NaN draws nothing (a gap)
    color: str
    style: str = "solid"  # "solid", "dashed" or "dotted"


@dataclass
class Band:
    lower: np.ndarray
    upper: np.ndarray
    color: str


@dataclass
class LegendEntry:
    label: str
    color: str
    style: str = "solid"
    values: tuple = ()  # formatted numbers, one per stat column (or one for a compact legend)
    stale: bool = False  # its newest value is old (a silent host): drawn in grey ink


@dataclass
class Panel:
    unit: str
    label: str = ""  # what the axis measures, shown with the unit above the axis
    lines: list = field(default_factory=list)
    bands: list = field(default_factory=list)
    legend: list = field(default_factory=list)
    compact_legend: bool = False  # overlays: many short entries in columns
    floor: float | None = None  # declared minimum: the axis starts there when data allow
    ceiling: float | None = None  # declared maximum: the axis stops there when data allow
    note: str = ""  # said in the middle of an empty plot, e.g. "no data"
    small: bool = False  # flags and identifiers: a low panel, their values matter, not shape
    integer: bool = False  # identifiers: axis and legend in whole numbers, no SI prefix


@dataclass
class Chart:
    title: str
    subtitle: str
    window: str
    grid: Grid
    panels: list
    styles: tuple = ()  # consolidations drawn, for the key of line styles under the graph
    band: bool = False  # whether a shaded min-max band is drawn (said in the key)
    footnote: str = ""  # e.g. hosts that could not be read
    ticks: TickRule | None = None  # a custom range's time-axis rule (a window has its own)
    latest: str = "now"  # the legend's first column: "last" for a range that ended before now


def graph_grid(job, config, now):
    """``(archive, grid)`` of a job: its window up to ``now``, or its custom range.

    A range is read from the archive librrd's fetch would choose for it
    (:func:`affair.storage.ladder.archive_for_range`), in whole rows.
    """
    if job.ranged:
        archive = archive_for_range(config.archives, job.start, job.end, now)
        return archive, Grid.for_range(job.start, job.end, archive.step)
    window_seconds = WINDOWS[job.window]
    archive = archive_for_window(config.archives, window_seconds)
    return archive, Grid.for_window(now, window_seconds, archive.step)


def build_chart(job, config, store, now):
    """Fetch what ``job`` needs and describe its graph. StoreError etc. propagate."""
    archive, grid = graph_grid(job, config, now)
    graph = config.graphs.get(job.graph) if job.graph else None
    wanted = graph.consolidations if graph else tuple(CONSOLIDATION_STYLES)
    cfs = _consolidations(wanted, config, archive)
    if job.mode == "node":
        chart = _node_chart(job, config, store, graph, grid, archive.span, cfs, now)
        if job.ranged:
            chart.subtitle = f"{describe_range(grid.start, grid.end)} · {_row_words(grid.step)}"
            chart.ticks = rule_for_span(grid.end - grid.start)
        return chart
    if job.ranged:  # each of every host's files while a viewer waits: the plotter's to draw
        raise PlotError(f"{job.key}: only per-node graphs are drawn for a custom range")
    if job.mode == "aggregate":
        return _aggregate_chart(job, config, store, graph, grid, archive.span, cfs)
    return _overlay_chart(job, config, store, graph, grid, archive.span, cfs)


def _consolidations(wanted, config, archive):
    """The CFs to fetch, in drawing order (AVERAGE last, on top), kept by the RRDs."""
    kept = [cf for cf in ("MIN", "MAX", "AVERAGE") if cf in wanted and cf in config.consolidations]
    if archive.step == config.recorder.step and len(kept) > 1:
        # One sample per row: MIN = MAX = AVERAGE. Fetch and draw one of them.
        kept = ["AVERAGE"] if "AVERAGE" in kept else kept[:1]
    if not kept:
        raise PlotError(f"none of {list(wanted)} is kept by [archive] consolidations")
    return kept


# --- per node ---


def _node_chart(job, config, store, graph, grid, span, cfs, now):
    host = job.hosts[0]
    path = store.path(host, job.dataset, job.instance)
    rows = fetch_rows(store, path, cfs, grid, span)
    series = _series_name(job.dataset, job.instance)
    if graph:
        names = [name for name in graph.variables if name in rows.names]
        groups = [(graph.unit, graph.label, names)] if names else []
        title = f"{host} · {graph.title}"
    else:
        groups = _unit_groups(config, job.dataset, rows.names)
        title = f"{host} · {series}"
    panels = []
    # A range that ended before now: its legend's first column is its own last row, not now.
    latest = "last" if job.ranged and grid.end < now else "now"
    nows = _nows(store, path, config, grid, rows.last_update) if latest == "now" else {}
    silent = _is_silent(rows.last_update, config, grid)
    # With MIN, MAX and AVERAGE of a variable, three lines of one hue read as hatching.
    band = {"MIN", "MAX", "AVERAGE"} <= set(cfs)
    for unit, label, names in groups:
        meaning = {config.variable(job.dataset, name).panel_name for name in names}
        panel = Panel(unit, label, **_bounds(config, job.dataset, names))
        panel.small = bool(meaning & {"flags", "identifiers"}) and not graph
        panel.integer = all(config.variable(job.dataset, name).identifier for name in names)
        for index, name in enumerate(names):
            column = rows.names.index(name)
            color = PALETTE[index % len(PALETTE)]
            by_cf = {cf: rows.values[cf][:, column] for cf in cfs}
            if band:  # min to max as a light band under the average, not lines like hatching
                panel.bands.append(Band(by_cf["MIN"], by_cf["MAX"], color))
            for cf in cfs if not band else [cf for cf in cfs if cf not in ("MIN", "MAX")]:
                panel.lines.append(Line(by_cf[cf], color, CONSOLIDATION_STYLES[cf]))
            panel.legend.append(
                LegendEntry(
                    config.variable(job.dataset, name).title,
                    color,
                    values=_stats(by_cf, unit, panel.integer, nows.get(name)),
                    stale=silent,
                )
            )
        if not _has_data(panel):
            panel.note = f"no data in this {'range' if job.ranged else 'window'}"
        panels.append(panel)
    if not panels:
        panels.append(Panel(unit="", note="no variables"))
    subtitle = _subtitle(job.window, grid)
    if band:
        return Chart(title, subtitle, job.window, grid, panels, band=True, latest=latest)
    return Chart(title, subtitle, job.window, grid, panels, _styles(cfs), latest=latest)


def _unit_groups(config, dataset, names):
    """``[(unit, label, [names])]``: variables grouped by panel and unit, in the file's order.

    A variable's panel is its meaning (:attr:`Variable.panel_name`: its
    ``panel``, or flags and identifiers apart), the label above the axis. A
    group with more variables than the palette has colours is cut into
    several panels, so no two lines of a panel share a colour.
    """
    by_panel = {}
    for name in names:
        variable = config.variable(dataset, name)
        by_panel.setdefault((variable.panel_name, variable.unit), []).append(name)
    groups = []
    for (panel, unit), members in by_panel.items():
        for first in range(0, len(members), PANEL_VARIABLES):
            groups.append((unit, panel, members[first : first + PANEL_VARIABLES]))
    return groups


# --- across hosts ---


def _gather(job, store, grid, span, cfs, variables):
    """``{cf: hosts x rows x variables}`` for the hosts that could be read, and notes."""
    stacks = {cf: [] for cf in cfs}
    hosts, problems = [], []
    for host in job.hosts:
        path = store.path(host, job.dataset, job.instance)
        try:
            rows = fetch_rows(store, path, cfs, grid, span)
        except AffairError as error:
            problems.append(f"{host}: {error}")
            continue
        columns = [rows.names.index(v) if v in rows.names else None for v in variables]
        for cf in cfs:
            values = rows.values[cf]
            picked = np.full((grid.count, len(variables)), np.nan)
            for target, column in enumerate(columns):
                if column is not None:
                    picked[:, target] = values[:, column]
            stacks[cf].append(picked)
        hosts.append(host)
    if hosts:
        stacks = {cf: np.stack(stack) for cf, stack in stacks.items()}
    else:
        stacks = {cf: np.full((0, grid.count, len(variables)), np.nan) for cf in cfs}
    return hosts, stacks, problems


def _aggregate_chart(job, config, store, graph, grid, span, cfs):
    variables = list(graph.variables)
    hosts, stacks, problems = _gather(job, store, grid, span, cfs, variables)
    combined, reporting = {}, None
    for cf in cfs:
        combined[cf], counts = aggregate(stacks[cf], graph.aggregate)
        if cf == "AVERAGE" or reporting is None:
            reporting = counts
    panel = Panel(graph.unit, graph.label, **_bounds(config, job.dataset, variables))
    host_nows = [
        _nows(store, store.path(host, job.dataset, job.instance), config, grid) for host in hosts
    ]
    for index, name in enumerate(variables):
        color = PALETTE[index % len(PALETTE)]
        by_cf = {cf: combined[cf][:, index] for cf in cfs}
        known = [now[name] for now in host_nows if name in now]
        now = None
        if known:
            now = sum(known) if graph.aggregate == "sum" else sum(known) / len(known)
        if "MIN" in by_cf and "MAX" in by_cf:
            panel.bands.append(Band(by_cf["MIN"], by_cf["MAX"], color))
        for cf in cfs:
            panel.lines.append(Line(by_cf[cf], color, CONSOLIDATION_STYLES[cf]))
        label = config.variable(job.dataset, name).title
        panel.legend.append(LegendEntry(label, color, values=_stats(by_cf, graph.unit, now=now)))
    if not _has_data(panel):
        panel.note = "no hosts match" if not job.hosts else "no data in this window"
    now_reporting = _last_count(reporting)
    how = "sum" if graph.aggregate == "sum" else "average"
    subtitle = f"{how} of {_hosts_word(len(job.hosts))}"
    if job.hosts and now_reporting is not None and now_reporting < len(job.hosts):
        subtitle += f" ({now_reporting} reporting)"
    return Chart(
        graph.title,
        f"{subtitle} · {_subtitle(job.window, grid)}",
        job.window,
        grid,
        [panel],
        _styles(cfs),
        band=bool(panel.bands),
        footnote=_problems(problems),
    )


def _overlay_chart(job, config, store, graph, grid, span, cfs):
    variable = graph.variables[0]
    cf = "AVERAGE" if "AVERAGE" in cfs else cfs[-1]
    hosts, stacks, problems = _gather(job, store, grid, span, [cf], [variable])
    panel = Panel(
        graph.unit, graph.label, compact_legend=True, **_bounds(config, job.dataset, [variable])
    )
    colors = {host: HOST_PALETTE[i % len(HOST_PALETTE)] for i, host in enumerate(job.hosts)}
    styles = ("solid", "dashed", "dotted")
    positions = {host: position for position, host in enumerate(job.hosts)}
    for index, host in enumerate(hosts):
        values = stacks[cf][index, :, 0]
        style = styles[(positions[host] // len(HOST_PALETTE)) % len(styles)]
        panel.lines.append(Line(values, colors[host], style))
        if len(panel.legend) < OVERLAY_LEGEND_MAX - 1 or len(hosts) == OVERLAY_LEGEND_MAX:
            now = _nows(store, store.path(host, job.dataset, job.instance), config, grid)
            value = (format_value(now.get(variable, _last(values)), graph.unit),)
            silent = _is_silent(_last_time(values, grid), config, grid)
            panel.legend.append(LegendEntry(host, colors[host], style, value, silent))
    if len(hosts) > len(panel.legend):
        more = len(hosts) - len(panel.legend)
        panel.legend.append(LegendEntry(f"and {more} more", "#ffffff", values=("",)))
    if not _has_data(panel):
        panel.note = "no hosts match" if not job.hosts else "no data in this window"
    cf_word = {"AVERAGE": "averages", "MAX": "maxima", "MIN": "minima"}[cf]
    subtitle = f"{_hosts_word(len(job.hosts))}, {cf_word}"
    return Chart(
        graph.title,
        f"{subtitle} · {_subtitle(job.window, grid)}",
        job.window,
        grid,
        [panel],
        footnote=_problems(problems),
    )


# --- small pieces ---


def _is_silent(last_time, config, grid):
    """Whether a series' newest data is older than a host may be silent before it is grey."""
    stale_after = config.status.stale_steps * config.recorder.step
    if not stale_after or last_time is None:
        return last_time is None
    return grid.end - last_time > max(stale_after, grid.step)


def _last_time(values, grid):
    """When the last known row of ``values`` (on ``grid``) ends, or None."""
    known = np.flatnonzero(np.isfinite(values))
    return int(grid.start + grid.step * (known[-1] + 1)) if len(known) else None


def _nows(store, path, config, grid, last_update=None):
    """The newest base-step values ("now") when the grid is coarser than the base step.

    At the base step the last row is already now: nothing more is read.
    """
    if grid.step == config.recorder.step:
        return {}
    if last_update is None:
        try:
            last_update = store.last_update(path)
        except AffairError:
            return {}
    return latest_values(store, path, config.recorder.step, last_update)


def _stats(by_cf, unit, integer=False, now=None):
    """Formatted now, min, avg and max of one variable over the window (whole: identifiers).

    ``now`` is the newest value at the finest step when the caller read it;
    else the window's last known row is.
    """
    average = by_cf.get("AVERAGE")
    main = average if average is not None else next(iter(by_cf.values()))
    low = by_cf.get("MIN", main)
    high = by_cf.get("MAX", main)
    latest = now if now is not None else _last(main)
    values = (latest, _known(np.fmin.reduce(low)), _mean(main), _known(np.fmax.reduce(high)))
    if integer:
        return tuple("" if value is None else f"{value:.0f}" for value in values)
    return tuple(format_value(value, unit) for value in values)


# fmin/fmax skip NaNs and give NaN only when all are, faster than nanmin (see
# benchmarks/RESULTS.md), which counts at thousands of graphs a pass.
def _known(value):
    return None if np.isnan(value) else float(value)


def _mean(values):
    known = values[np.isfinite(values)]
    return float(known.mean()) if known.size else None


def _last(values):
    known = np.flatnonzero(np.isfinite(values))
    return float(values[known[-1]]) if len(known) else None


def _last_count(reporting):
    """Hosts reporting in the last row any host reported in (rows x variables counts)."""
    if reporting is None or not len(reporting):
        return None
    if reporting.ndim > 1:
        reporting = reporting.max(axis=tuple(range(1, reporting.ndim)))
    known = np.flatnonzero(reporting > 0)
    return int(reporting[known[-1]]) if len(known) else 0


def _has_data(panel):
    return any(np.isfinite(line.values).any() for line in panel.lines)


def _bounds(config, dataset, names):
    """The lowest declared minimum and highest declared maximum, None where one is open."""
    variables = [config.variable(dataset, name) for name in names]
    minimums = [variable.min for variable in variables]
    maximums = [variable.max for variable in variables]
    return {
        "floor": None if not names or None in minimums else min(minimums),
        "ceiling": None if not names or None in maximums else max(maximums),
    }


def _series_name(dataset, instance):
    return f"{dataset}.{instance}" if instance else dataset


def _subtitle(window, grid):
    return f"{WINDOW_WORDS[window]} to {describe_end(grid.end)}"


def _row_words(step):
    """``"10 s rows"``, ``"30 min rows"``: a zoom says how fine what it shows is."""
    for unit, seconds in (("d", 86400), ("h", 3600), ("min", 60)):
        if step % seconds == 0:
            return f"{step // seconds} {unit} rows"
    return f"{step} s rows"


def _hosts_word(count):
    return f"{count} host" if count == 1 else f"{count} hosts"


def _styles(cfs):
    """Consolidations in key order, when there is more than one line style to explain."""
    return tuple(cf for cf in CONSOLIDATION_STYLES if cf in cfs) if len(cfs) > 1 else ()


def _problems(problems):
    if not problems:
        return ""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"not shown: {problems[0]}{more}"
