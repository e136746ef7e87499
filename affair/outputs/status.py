"""Status colours: what is red, from the newest rows of each host's RRDs.

Colours, from good to bad: green (every rule passes), grey (a host or a
dataset stopped sending: the node, its collector or the application is
down), yellow (a warning threshold is crossed), red (act now). A host is
grey as a whole when none of its series has had a sample for
``status.stale_steps`` steps; its other rules are then still evaluated on
its last values and shown, but they do not colour it: they describe the
past, and grey says exactly what is known.

Three kinds of rule (``[[status.rules]]``, validated in affair.config):

* ``threshold``: the latest known value of ``dataset.variable`` compared
  with ``yellow`` and ``red`` limits (``op`` is ``>``, ``>=``, ``<``, ``<=``);
* ``stalled``: ``dataset.variable`` did not increase in the last ``steps``
  steps before now (a counter's stored rate stayed at 0 or unknown; a
  gauge holding a running total never grew). Unknown rows count as not
  increasing, so an application that stops publishing is caught too;
* ``stale``: no sample of ``dataset`` for ``steps`` steps.

A rule only judges hosts that match its ``hosts`` globs and hold the
dataset it names; a dataset with instances (``disks.var_log``) is judged
per instance. A threshold whose variable has no known value is
"unknown", shown but not colouring the host.

This module is pure apart from :func:`read_host`/:func:`collect`, which
read RRDs; the clock is always passed in.
"""

import bisect
import logging
import math
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from affair import units
from affair.errors import AffairError, StoreError
from affair.hosts import host_matcher
from affair.names import is_valid, rrd_file_name
from affair.outputs.criteria import apply_to_links, host_violations, run_criteria
from affair.outputs.topology import gather
from affair.storage import archive_health
from affair.storage.rrd_store import RrdStore
from affair.vocab import SEVERITY, STATUS_COLOURS

log = logging.getLogger(__name__)

OTHER_GROUP = "other"
HISTORY_SECONDS = 600  # rows read per series at least: latency accounting and page tables


@dataclass(frozen=True)
class SeriesSnapshot:
    """The newest rows of one RRD: ``times[i]`` ends the interval of ``columns[v][i]``."""

    dataset: str
    instance: str
    last_update: int
    step: int
    times: tuple = ()
    columns: dict = field(default_factory=dict)

    @property
    def label(self):
        return f"{self.dataset}.{self.instance}" if self.instance else self.dataset

    def latest(self, variable):
        """``(time, value)`` of the newest known value of ``variable``, or ``(None, None)``."""
        values = self.columns.get(variable, ())
        for index in range(len(values) - 1, -1, -1):
            if _known(values[index]):
                return self.times[index], values[index]
        return None, None

    def window(self, variable, start, end):
        """Values of rows ending in ``(start, end]``, oldest first (None when unknown)."""
        values = self.columns.get(variable, ())
        return [
            value if _known(value) else None
            for time, value in zip(self.times, values, strict=False)
            if start < time <= end
        ]


@dataclass(frozen=True)
class HostSnapshot:
    host: str
    series: tuple  # of SeriesSnapshot

    @property
    def last_sample(self):
        """When the host last sent anything (the newest last_update of its files), or None."""
        return max((s.last_update for s in self.series), default=None)

    def of_dataset(self, dataset):
        return [s for s in self.series if s.dataset == dataset]


@dataclass(frozen=True)
class RuleResult:
    rule: object  # affair.config.StatusRule
    colour: str  # green, yellow, red, grey, or unknown (no value to judge)
    instance: str = ""
    value: float | None = None
    detail: str = ""

    @property
    def is_problem(self):
        return SEVERITY[self.colour] > 0

    @property
    def text(self):
        """The detail, after the rule's label when it has one: 'swapping: ... > 2 GiB'."""
        return f"{self.rule.label}: {self.detail}" if self.rule.label else self.detail


@dataclass(frozen=True)
class HostStatus:
    host: str
    group: str
    colour: str
    stale: bool
    last_sample: int | None
    results: tuple
    snapshot: HostSnapshot

    @property
    def problems(self):
        """Results that are not green, worst first."""
        found = [r for r in self.results if r.is_problem]
        return sorted(found, key=lambda r: -SEVERITY[r.colour])

    def summary(self, now):
        """One line saying why the host has its colour."""
        if self.stale:
            if self.last_sample is None:
                return "no samples at all"
            return f"no sample for {format_age(now - self.last_sample)}"
        return "; ".join(r.text for r in self.problems) or "all rules pass"


# --- evaluation (pure) ---


def evaluate_host(snapshot, config, now, group=OTHER_GROUP):
    """The HostStatus of one host at time ``now`` under ``config.status``."""
    step = config.recorder.step
    stale_steps = config.status.stale_steps
    last = snapshot.last_sample
    stale = stale_steps > 0 and (last is None or now - last > stale_steps * step)
    results = []
    for rule in config.status.rules:
        if rule_applies(rule, snapshot.host):
            results.extend(evaluate_rule(rule, snapshot, config, now))
    if stale:
        colour = "grey"
    else:
        colour = max((r.colour for r in results), key=SEVERITY.get, default="green")
        colour = "green" if colour == "unknown" else colour
    return HostStatus(snapshot.host, group, colour, stale, last, tuple(results), snapshot)


def rule_applies(rule, host):
    return host_matcher(rule.hosts)(host)


def evaluate_rule(rule, snapshot, config, now):
    """One RuleResult per series of the rule's dataset the host holds (none if it holds none)."""
    series = snapshot.of_dataset(rule.dataset)
    step = config.recorder.step
    if rule.kind == "stale":
        if not series:
            return []
        last = max(s.last_update for s in series)
        age = now - last
        if age > rule.steps * step:
            return [
                RuleResult(
                    rule, rule.colour, detail=f"{rule.dataset}: no sample for {format_age(age)}"
                )
            ]
        return [
            RuleResult(rule, "green", detail=f"{rule.dataset}: last sample {format_age(age)} ago")
        ]
    judge = _threshold if rule.kind == "threshold" else _stalled
    return [judge(rule, one, config, now) for one in series]


def _threshold(rule, series, config, now):
    """The rule's colour from the series' recent rows: hysteresis replayed, then ``for`` held.

    No state is kept between passes: the rows themselves say how long a
    condition has held and which side of a clear level a value came from, so
    a restart (or a second station) judges exactly as a long-running one.
    """
    name = _series_variable(series, rule.variable)
    unit = config.variable(rule.dataset, rule.variable).unit
    rows, gated = _judged_rows(rule, series)
    if not rows:
        if rule.when and series.latest(rule.variable)[1] is not None:
            return RuleResult(rule, "green", series.instance, None, _not_judged(series, rule))
        return RuleResult(rule, "unknown", series.instance, None, f"{name}: no value")
    levels = threshold_levels(rule, [value for _time, value in rows])
    last_time, value = rows[-1]
    held = _held_colour(rule, rows, levels, gated, series.step)
    shown = format_value(value, unit)
    limit = {"red": rule.red, "yellow": rule.yellow}
    if held == "green":
        detail = f"{name} {shown}"
    elif _compare(value, rule.op, limit[held]):
        detail = f"{name} {shown} {rule.op} {format_value(limit[held], unit)}"
    else:  # kept by its clear level
        clear = rule.clear[held] if held in (rule.clear or {}) else rule.clear["yellow"]
        back = _OPPOSITE[rule.op]
        detail = f"{name} {shown}, {held} until {back} {format_value(clear, unit)}"
    if rule.hold and held != "green":
        detail += f" for {format_age(_held_for(levels, rows, held, series.step))}"
    pending = levels[-1]
    if SEVERITY[pending] > SEVERITY[held]:
        detail += f" ({pending} if it holds {format_age(rule.hold)})"
    return RuleResult(rule, held, series.instance, value, detail)


_OPPOSITE = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}


def threshold_levels(rule, values):
    """The colour of each value in turn, each given the colour before it (hysteresis).

    A value past a limit takes that colour; a value between a limit and its
    clear level keeps the colour it had; the first value has no past.
    """
    clear = rule.clear or {}
    levels = []
    previous = "green"
    for value in values:
        level = "green"
        for colour, limit in (("red", rule.red), ("yellow", rule.yellow)):
            crossed = limit is not None and _compare(value, rule.op, limit)
            kept = (
                SEVERITY[previous] >= SEVERITY[colour]
                and colour in clear
                and _compare(value, rule.op, clear[colour])
            )
            if crossed or kept:
                level = colour
                break
        levels.append(level)
        previous = level
    return levels


def _held_colour(rule, rows, levels, gated, step):
    """The worst colour every judged row of the last ``for`` seconds reached.

    A row in that span where ``when`` was 0 breaks the hold (the condition
    stopped applying); unknown rows are passed over, but at least half the
    span's rows must be known, so a host just back from silence is not judged
    on one row.
    """
    if not rule.hold:
        return levels[-1]
    start = rows[-1][0] - rule.hold
    span = [level for (when, _value), level in zip(rows, levels, strict=True) if when > start]
    if any(when > start for when in gated) or len(span) < max(1, rule.hold // step // 2):
        return "green"
    return min(span, key=SEVERITY.get)


def _held_for(levels, rows, colour, step):
    """How long the newest rows have been at least ``colour`` (consecutive, in seconds)."""
    count = 0
    for level in reversed(levels):
        if SEVERITY[level] < SEVERITY[colour]:
            break
        count += 1
    return count * step


def _judged_rows(rule, series):
    """``[(time, value)]`` of the rows with a known value and a non-zero ``when``, and the
    times of the rows left out for their ``when`` (a known value while it was 0).
    """
    values = series.columns.get(rule.variable, ())
    gates = series.columns.get(rule.when, ()) if rule.when else None
    rows, gated = [], []
    for index, value in enumerate(values):
        if not _known(value):
            continue
        if gates is not None and not (index < len(gates) and _known(gates[index]) and gates[index]):
            gated.append(series.times[index])
            continue
        rows.append((series.times[index], value))
    return rows, gated


def _not_judged(series, rule):
    return f"{_series_variable(series, rule.variable)}: not judged, {rule.when} is 0"


def _stalled(rule, series, config, now):
    name = _series_variable(series, rule.variable)
    step = config.recorder.step
    end = now // step * step
    start = end - rule.steps * step
    gauge = config.variable(rule.dataset, rule.variable).type == "GAUGE"
    # A gauge needs the row before the window to see the first one grow.
    values = series.window(rule.variable, start - step if gauge else start, end)
    if rule.when:
        gates = series.window(rule.when, start - step if gauge else start, end)
        if not any(gates[1:] if gauge else gates):
            _time, value = series.latest(rule.variable)
            return RuleResult(rule, "green", series.instance, value, _not_judged(series, rule))
        # Only rows while the gate is on (a gauge: and the row just before one) are judged.
        values = [
            v
            for index, v in enumerate(values)
            if gates[index] or (gauge and index + 1 < len(gates) and gates[index + 1])
        ]
    if gauge:
        # A gauge holding a running total: did any known value exceed the one before it?
        known = [v for v in values if v is not None]
        grew = any(later > earlier for earlier, later in zip(known, known[1:], strict=False))
    else:
        # Counters are stored as rates per second: did any row have a positive rate?
        grew = any(v is not None and v > 0 for v in values)
    _time, value = series.latest(rule.variable)
    if grew:
        return RuleResult(rule, "green", series.instance, value, f"{name} increasing")
    detail = f"{name} not increasing for {format_age(rule.steps * step)}"
    if rule.when:
        detail += f" while {rule.when} is on"
    return RuleResult(rule, rule.colour, series.instance, value, detail)


def _compare(value, op, limit):
    if op == ">":
        return value > limit
    if op == ">=":
        return value >= limit
    if op == "<":
        return value < limit
    return value <= limit


def _series_variable(series, variable):
    return f"{series.label}.{variable}"


def _known(value):
    return value is not None and not math.isnan(value)


def group_of(host, groups):
    """The first ``[site] groups`` entry whose globs match ``host``, else 'other'."""
    for name, patterns in groups.items():
        if host_matcher(patterns)(host):
            return name
    return OTHER_GROUP


def count_colours(statuses):
    counts = dict.fromkeys(STATUS_COLOURS, 0)
    for status in statuses:
        counts[status.colour] += 1
    return counts


# --- formatting (pure) ---


def format_value(value, unit=""):
    """The graphs' convention (:mod:`affair.units`) without trailing zeros: '97 % > 95 %'."""
    return units.format_value(value, unit, trim=True)


def format_age(seconds):
    """'12 s', '5 min', '3 h 10 min', '2 d 4 h'."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


# --- reading the RRDs ---


def history_rows(config):
    """How many base steps of history to read per series: enough for every rule."""
    steps = [config.status.stale_steps, HISTORY_SECONDS // config.recorder.step]
    steps += [rule.steps + 1 for rule in config.status.rules if rule.kind == "stalled"]
    # A held threshold needs its span plus rows before it to replay its hysteresis from.
    steps += [
        (rule.hold + HISTORY_SECONDS) // config.recorder.step
        for rule in config.status.rules
        if rule.kind == "threshold" and rule.hold
    ]
    return max(steps)


def read_host(store, host, now, rows):
    """A HostSnapshot of ``host``: the last ``rows`` steps before ``now`` of every RRD."""
    step = store.config.recorder.step
    end = int(now) // step * step
    snapshots = []
    for dataset, instance in store.series(host):
        try:
            snapshots.append(_read_series(store, host, dataset, instance, end, rows))
        except StoreError as error:  # one unreadable file must not blank the whole site
            log.warning("status: skipping a series: %s", error)
    return HostSnapshot(host, tuple(snapshots))


def _read_series(store, host, dataset, instance, end, rows):
    step = store.config.recorder.step
    # The names came from listing the data dir and passed validation: no need to
    # re-check and resolve them (store.path) for every series of every pass.
    path = store.data_dir / host / rrd_file_name(dataset, instance)
    last = store.last_update(path)
    fetched = store.fetch(path, "AVERAGE", end - rows * step, end, resolution=step)
    if last <= end - rows * step:
        # Silent for longer than the window: read the rows up to its last sample
        # instead, so its page still shows the values it had when it stopped.
        last_row = last // step * step
        fetched = store.fetch(path, "AVERAGE", last_row - rows * step, last_row, step)
    keep = bisect.bisect_right(fetched.times, max(end, last))  # rrdtool adds a row past the end
    return SeriesSnapshot(
        dataset=dataset,
        instance=instance,
        last_update=last,
        step=fetched.step,
        times=tuple(fetched.times[:keep]),
        columns={name: tuple(fetched.columns[name][:keep]) for name in fetched.names},
    )


def collect(config, data_dir=None, now=None):
    """Read every host under the data dir and evaluate it: ``[HostStatus, ...]`` by host name."""
    store = RrdStore(config, data_dir)
    now = time.time() if now is None else now
    rows = history_rows(config)
    statuses = []
    for host in natural_sorted(store.hosts()):
        if not is_valid("host", host):  # a directory someone made by hand; never a page
            log.warning("status: ignoring %r under %s: not a valid host name", host, store.data_dir)
            continue
        snapshot = read_host(store, host, now, rows)
        group = group_of(host, config.site.groups)
        statuses.append(evaluate_host(snapshot, config, now, group))
    return statuses


def by_severity(statuses, group_names=()):
    """Worst colour first (red, yellow, grey, green), then the config's group order
    (groups it does not name last), then the order given (natural host order)."""
    rank = {name: index for index, name in enumerate(group_names)}
    return sorted(statuses, key=lambda s: (-SEVERITY[s.colour], rank.get(s.group, len(rank))))


def natural_sorted(names):
    """ldc2 before ldc10."""

    def key(name):
        return [
            (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)
        ]

    return sorted(names, key=key)


# --- the terminal table (affair status) ---


def status_report(config, data_dir=None, colour=False, problems_only=False, now=None):
    """``affair status``: the table's lines and the exit code (1 when any host is red)."""
    data_dir = Path(data_dir or config.recorder.data_dir)
    if not data_dir.is_dir():  # a typo must not read as "0 hosts, nothing red"
        raise AffairError(f"no data directory at {data_dir}")
    now = time.time() if now is None else now
    statuses = collect(config, data_dir, now)
    criteria = run_criteria(config, data_dir)
    statuses = with_criteria(statuses, criteria)
    lines = render_table(by_severity(statuses, config.site.groups), now, colour, problems_only)
    keeping, keeping_colour = keeping_lines(config, data_dir, now, colour)
    topology = gather((s.snapshot for s in statuses), config, now)
    apply_to_links(topology, criteria)
    failing = [
        f"criterion {r.criterion.name}: {r.summary}" for r in criteria if r.colour != "green"
    ]
    # the host counts stay the last line, for scripts that read it
    lines[-1:-1] = keeping + render_links(topology, colour) + failing
    red = (
        any(s.colour == "red" for s in statuses)
        or keeping_colour == "red"
        or topology.counts()["red"] > 0
    )
    return lines, 1 if red else 0


def with_criteria(statuses, results):
    """The statuses with every ``[[criteria]]`` violation naming a host added as a result.

    A violation colours its host like a failing rule, grey hosts staying grey.
    """
    found = host_violations(results)
    if not found:
        return statuses
    changed = []
    for status in statuses:
        extra = tuple(
            RuleResult(rule, colour, detail=why) for rule, colour, why in found.get(status.host, ())
        )
        if not extra:
            changed.append(status)
            continue
        colour = status.colour
        if not status.stale:
            colour = max((colour, *(r.colour for r in extra)), key=SEVERITY.get)
        changed.append(replace(status, colour=colour, results=status.results + extra))
    return changed


def render_links(topology, colour=False):
    """The red and grey links under the host table (nothing when there are no links)."""
    if not topology.links:
        return []
    problems = topology.problems()
    lines = []
    if problems:
        width = max(len(link.name) for link in problems)
        lines.append(f"{'LINK'.ljust(width)}  STATUS  WHY")
        for link in problems:
            shown = link.colour.ljust(6)
            if colour:
                shown = f"{_ANSI[link.colour]}{shown}{_RESET}"
            lines.append(f"{link.name.ljust(width)}  {shown}  {link.why}")
    counts = topology.counts()
    lines.append(
        f"{len(topology.links)} links: " + ", ".join(f"{counts[c]} {c}" for c in STATUS_COLOURS)
    )
    return lines


def keeping_lines(config, data_dir, now, colour=False):
    """``(lines, colour)``: the journal's and the archive's sizes, free space, days not archived."""
    if not config.export.enabled:
        return [], "green"
    measure = archive_health.measure(config, data_dir, now)
    health = archive_health.judge(measure, config, now)
    shown = f"{_ANSI[health.colour]}{health.colour}{_RESET}" if colour else health.colour
    lines = [
        f"archive: {shown}: {units.format_value(measure.archive_bytes, 'B', trim=True)} in "
        f"{config.export.directory}, journal {units.format_value(measure.journal_bytes, 'B', trim=True)}"
    ]
    lines += [f"  {problem}" for problem in health.problems]
    return lines, health.colour


_ANSI = {"red": "\033[1;31m", "yellow": "\033[1;33m", "grey": "\033[2m", "green": "\033[32m"}
_RESET = "\033[0m"


def render_table(statuses, now, colour=False, problems_only=False):
    """The status table as text lines: one host per line, then the counts."""
    shown = [s for s in statuses if s.colour != "green"] if problems_only else list(statuses)
    header = ("HOST", "GROUP", "STATUS", "LAST SAMPLE", "WHY")
    rows = [
        (
            s.host,
            s.group,
            s.colour,
            f"{format_clock(s.last_sample, now)} ({format_age(now - s.last_sample)} ago)"
            if s.last_sample
            else "never",
            s.summary(now),
        )
        for s in shown
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header[:4], widths, strict=False)) + "  WHY"]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=False)]
        if colour:
            cells[2] = f"{_ANSI[row[2]]}{cells[2]}{_RESET}"
        lines.append("  ".join(cells) + "  " + row[4])
    lines.append(summary_line(statuses))
    return lines


def summary_line(statuses):
    counts = count_colours(statuses)
    parts = ", ".join(f"{counts[c]} {c}" for c in STATUS_COLOURS)
    return f"{len(statuses)} hosts: {parts}"


def format_clock(timestamp, now):
    """'00:41:10' today, '2026-11-21 23:10' on another day (the station's local time)."""
    local = time.localtime(timestamp)
    if time.strftime("%Y-%m-%d", local) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d %H:%M", local)


def percentile(values, percent):
    """The nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(percent / 100 * len(ordered)) - 1))]
