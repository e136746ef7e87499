"""``affair export``: samples to a self-describing ROOT file, for analysis in ROOT.

Two sources, one file layout:

* ``raw`` (the default): every sample of the raw archive (the journal), as
  recorded, with its own timestamp; nothing consolidated away.
* a resolution of the archive ladder (``10s``, ``1min``, ...): the RRDs'
  consolidated rows, one ``<variable>_min``/``_avg``/``_max`` branch per
  consolidation the config keeps, ``time`` being the *end* of each interval
  (rrdtool's label, see :mod:`affair.storage.rrd_store`). Rows that are unknown for
  every variable (before a host existed, during an outage) are left out.

The file holds one TTree per dataset, named like the dataset, with branches

    time      Double_t   Unix seconds, UTC
    host      Int_t      index into _affair/hosts
    instance  Int_t      index into _affair/instances (0 is '', no instance)
    <var>...  Double_t   one per variable (NaN: unknown)

Hosts are integers because TTree::Draw cuts on numbers, not on strings
(``system->Draw("cpu_user", "host==3")``); the names are in the
``_affair/hosts`` tree (``index``, ``name``) and in the metadata. Values
stay float64 so counters of 10^12 bytes and timestamps to the microsecond
read back exactly. A variable whose name would not make a usable branch
(``time``, ``host``, ``instance``, or a leading digit) becomes ``v_<name>``.

``_affair/`` (no dataset may start with ``_``) makes the file
self-describing: ``hosts`` and ``instances`` trees, a ``variables`` tree
(dataset, variable, branch, type, unit, label, consolidation), and two
TObjStrings: ``metadata`` (JSON: range, resolution, step, per-branch units
and labels, host list) and ``config`` (the source config file, verbatim).

Memory stays flat as the range grows: the journal is read a chunk at a
time (:mod:`affair.storage.journal_reader`) and each TTree is extended whenever the buffered
rows pass a fixed budget. The file is written under a temporary name and
renamed at the end, so a half-written export never looks like a finished one.
"""

import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import uproot

from affair.atomic import atomic_path
from affair.errors import ExportError
from affair.hosts import HostMatcher
from affair.storage.journal import day_name, day_start
from affair.storage.journal_reader import DayReader, day_spans, decode_values
from affair.times import iso_utc

log = logging.getLogger(__name__)

RESERVED_BRANCHES = ("time", "host", "instance")
SUFFIXES = {"MIN": "_min", "AVERAGE": "_avg", "MAX": "_max", "LAST": "_last"}
FORMAT = "affair-export-1"
BUFFER_CELLS = 4_000_000  # values buffered across all trees before they are written (32 MB)


@dataclass
class ExportSummary:
    path: Path
    resolution: object  # "raw" or seconds
    start: float | None
    end: float | None
    hosts: list
    entries: dict = field(default_factory=dict)  # dataset -> entries written

    def describe(self):
        parts = [f"{name} {count}" for name, count in self.entries.items()] or ["no datasets"]
        span = ""
        if self.start is not None and self.end is not None:
            span = f", {iso_utc(self.start)} to {iso_utc(self.end)}"
        return (
            f"wrote {self.path}: {', '.join(parts)} entries ({len(self.hosts)} hosts, "
            f"{'raw' if self.resolution == 'raw' else f'{self.resolution}s'}{span})"
        )


def branch_names(variables, suffixes=("",)):
    """``{(variable, suffix): branch}``: unique, not reserved, not starting with a digit."""
    taken = set(RESERVED_BRANCHES)
    mapping = {}
    for variable in variables:
        for suffix in suffixes:
            branch = f"{variable}{suffix}"
            while branch in taken or branch[0].isdigit():
                branch = f"v_{branch}"
            taken.add(branch)
            mapping[(variable, suffix)] = branch
    return mapping


class _Tree:
    """One dataset's TTree: its branches and the rows waiting to be written."""

    def __init__(self, dataset, variables, suffixes, description):
        self.dataset = dataset
        self.variables = list(variables)
        self.suffixes = suffixes
        self.description = description
        self.branches = branch_names(self.variables, suffixes)
        self.columns = list(self.branches.values())  # value branches, in matrix column order
        self.column_of = {variable: i for i, variable in enumerate(self.variables)}
        self.parts = []
        self.buffered = 0
        self.entries = 0

    @property
    def width(self):
        return len(self.columns)

    def create(self, sink):
        types = {"time": np.float64, "host": np.int32, "instance": np.int32}
        types.update({branch: np.float64 for branch in self.columns})
        sink.mktree(self.dataset, types, title=self.description or self.dataset)

    def add(self, times, hosts, instances, matrix):
        self.parts.append((times, hosts, instances, matrix))
        self.buffered += len(times)

    def flush(self, sink):
        if not self.parts:
            return
        times, hosts, instances, matrices = zip(*self.parts, strict=True)
        arrays = {
            "time": _joined(times, ">f8"),
            "host": _joined(hosts, ">i4"),
            "instance": _joined(instances, ">i4"),
        }
        for index, branch in enumerate(self.columns):
            arrays[branch] = _joined([matrix[:, index] for matrix in matrices], ">f8")
        sink[self.dataset].extend(arrays)
        self.entries += len(arrays["time"])
        self.parts = []
        self.buffered = 0


def _joined(parts, dtype):
    """The arrays end to end as one, in ROOT's big-endian ``dtype``.

    One copy each: a column gathered from the buffered matrices straight
    into the byte order uproot writes, which it then takes as it is (it
    would otherwise convert a native copy again; two copies fewer a value).
    """
    return np.concatenate(parts, out=np.empty(sum(map(len, parts)), dtype), casting="unsafe")


class _Names:
    """Host or instance names, each with a stable integer index."""

    def __init__(self, names=()):
        self.names = []
        self.index = {}
        for name in names:
            self.get(name)

    def get(self, name):
        position = self.index.get(name)
        if position is None:
            position = self.index[name] = len(self.names)
            self.names.append(name)
        return position


class _Export:
    """The trees of one output file, written with a bounded buffer."""

    def __init__(self, sink, trees):
        self.sink = sink
        self.trees = trees  # dataset -> _Tree
        for tree in trees.values():
            tree.create(sink)

    def add(self, tree, times, hosts, instances, matrix):
        tree.add(times, hosts, instances, matrix)
        if sum(t.buffered * (t.width + 3) for t in self.trees.values()) >= BUFFER_CELLS:
            self.flush()

    def flush(self):
        for tree in self.trees.values():
            tree.flush(self.sink)


def export_root(
    config,
    output,
    start=None,
    end=None,
    hosts=(),
    datasets=(),
    resolution="raw",
    now=None,
    progress=None,
    raw_source=None,
):
    """Write the samples of ``[start, end)`` to the ROOT file ``output``; return a summary.

    ``hosts`` are shell globs (any may match), ``datasets`` names (empty:
    all); ``resolution`` is ``"raw"`` or seconds of an archive of the
    ladder. ``progress`` shows a bar on stderr (default: when it is a tty).
    ``raw_source(config, start, end)`` makes the raw rows' source (default:
    the journal alone; :mod:`affair.outputs.archive_read` adds the archive).
    """
    now = time.time() if now is None else now
    output = Path(output)
    if start is not None and end is not None and start >= end:
        raise ExportError(
            f"the range is empty: --from {iso_utc(start)} is not before --to {iso_utc(end)}"
        )
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        with (
            atomic_path(output, durable=True) as temporary,
            uproot.recreate(temporary, compression=uproot.ZSTD(1)) as sink,
        ):
            if resolution == "raw":
                source = (raw_source or _RawSamples)(config, start, end)
            else:
                source = _ConsolidatedRows(config, start, end, int(resolution), now)
            summary = _export(sink, config, source, hosts, datasets, progress)
            summary.path = output
    except OSError as error:
        raise ExportError(f"cannot write {output}: {error.strerror or error}") from None
    return summary


def run_daily_export(config, now=None):
    """Export yesterday (UTC) to ``[export] directory``; return the file.

    Written as ``affair-YYYY-MM-DD.root`` at ``[export] resolution``,
    replacing an earlier export of the same day. The caller decides whether
    and when to run it (``[export] enabled`` and ``hour``, UTC): samples of
    the day that arrive after the run (a collector back from a long outage)
    are only in a later export of that day, if one is made.
    """
    now = time.time() if now is None else now
    day = day_name(now - 86400)
    start = day_start(day)
    output = Path(config.export.directory) / f"affair-{day}.root"
    summary = export_root(
        config,
        output,
        start,
        start + 86400,
        resolution=config.export.resolution,
        now=now,
        progress=False,
    )
    log.info("daily export: %s", summary.describe())
    return output


# --- one skeleton, two row sources ---


@dataclass
class _Found:
    """What a first pass over a source found, so every branch is known before any row."""

    variables: dict = field(default_factory=dict)  # dataset -> variable names, first seen first
    hosts: set = field(default_factory=set)
    instances: set = field(default_factory=set)
    present: set = field(default_factory=set)  # every dataset seen, wanted or not

    def add_variables(self, dataset, names):
        known = self.variables.setdefault(dataset, [])
        known += [name for name in names if name not in known]

    def add_series(self, host, dataset, instance, matches=None, wanted=()):
        """Note one series of a journal day: kept when its host matches and its dataset is wanted."""
        self.present.add(dataset)
        if (matches is None or matches(host)) and (not wanted or dataset in wanted):
            self.hosts.add(host)
            self.instances.add(instance)
            self.variables.setdefault(dataset, [])

    def add_day_variables(self, catalog):
        """A journal day's variable names, for the datasets kept so far."""
        for dataset, names in catalog.variables.items():
            if dataset in self.variables:
                self.add_variables(dataset, names)


def _export(sink, config, source, host_globs, wanted, progress):
    """Plan the trees from what ``source`` holds, copy its rows into them, then the catalog."""
    matches = HostMatcher(host_globs or ["*"])  # no --hosts: every host
    found = source.survey(matches, wanted)
    trees = _plan_trees(config, found.variables, wanted, source.suffixes, found.present)
    export = _Export(sink, trees)
    hosts = _Names(sorted(found.hosts))
    instances = _Names(["", *sorted(found.instances - {""})])
    bar = _progress_bar(progress, source.total() if progress else None, source.unit)
    try:
        source.copy(export, trees, matches, hosts, instances, bar)
    finally:
        bar.close()
    export.flush()
    _write_catalog(sink, config, trees, hosts, instances, source)
    return ExportSummary(
        None,
        source.resolution,
        source.start,
        source.end,
        hosts.names,
        {name: tree.entries for name, tree in trees.items()},
    )


# --- raw: the journal's samples ---


class RawRowSource:
    """What every source of raw samples (journal, archive files, one day's pieces) says of itself."""

    resolution = "raw"
    suffixes = ("",)
    consolidations = ()
    unit = "samples"


class _RawSamples(RawRowSource):
    """Every sample of the journal in ``[start, end)``, as recorded."""

    def __init__(self, config, start, end):
        self.step = config.recorder.step
        self.start, self.end = start, end
        journal = Path(config.recorder.data_dir) / "_journal"
        self.spans = day_spans(journal, start, end) if journal.is_dir() else []

    def survey(self, matches, wanted):
        found = _Found()
        for span in self.spans:
            with DayReader(span.path) as reader:
                for host, dataset, instance in reader.catalog.series.values():
                    found.add_series(host, dataset, instance, matches, wanted)
                found.add_day_variables(reader.catalog)
        return found

    def total(self):
        total = 0
        for span in self.spans:
            with DayReader(span.path) as reader:
                total += reader.count(self.start, self.end)
        return total

    def copy(self, export, trees, matches, hosts, instances, bar):
        for span in self.spans:
            with DayReader(span.path) as reader:
                _read_day(
                    reader, export, trees, matches, hosts, instances, self.start, self.end, bar
                )


def _read_day(reader, export, trees, matches, hosts, instances, start, end, bar, rows=None):
    """Copy one day file's rows into the trees; ``rows(series ids or None)`` picks other rows."""
    catalog = reader.catalog
    size = max(catalog.series, default=-1) + 1
    tree_of = np.full(size, -1, np.int64)
    host_of = np.zeros(size, np.int32)
    instance_of = np.zeros(size, np.int32)
    order = list(trees.values())
    selected = []
    for series_id, (host, dataset, instance) in catalog.series.items():
        tree = trees.get(dataset)
        if tree is None or not matches(host):
            continue
        tree_of[series_id] = order.index(tree)
        host_of[series_id] = hosts.get(host)
        instance_of[series_id] = instances.get(instance)
        selected.append(series_id)
    if not selected:
        return
    columns = []
    for tree in order:
        names = catalog.variables.get(tree.dataset, [])
        unknown = [name for name in names if name not in tree.column_of]
        if unknown:  # first seen after the export began: there is no branch for it
            log.warning(
                "%s: variables %s appeared during the export; left out", tree.dataset, unknown
            )
        columns.append(np.array([tree.column_of.get(name, -1) for name in names], np.int64))
    every_series = len(selected) == len(catalog.series)
    chosen = None if every_series else selected
    chunks = reader.chunks(chosen, start, end) if rows is None else rows(chosen)
    for chunk in chunks:
        tree_index = tree_of[chunk.series]
        for index in np.unique(tree_index):
            rows = np.flatnonzero(tree_index == index)
            tree = order[index]
            series = chunk.series[rows]
            matrix = decode_values(chunk, rows, columns[index], tree.width)
            export.add(tree, chunk.ts[rows], host_of[series], instance_of[series], matrix)
        bar.update(len(chunk))


# --- consolidated: the RRDs' rows ---


class _ConsolidatedRows:
    """The RRDs' rows of one archive of the ladder, one branch per consolidation kept."""

    unit = "series"

    def __init__(self, config, start, end, step, now):
        from affair.storage.rrd_store import RrdStore  # noqa: PLC0415 - librrd only when asked for

        archive = next((a for a in config.archives if a.step == step), None)
        if archive is None:
            steps = ", ".join(_duration(a.step) for a in config.archives)
            raise ExportError(
                f"no archive of {_duration(step)} rows in the ladder; use raw or one of: {steps}"
            )
        oldest = now - archive.span
        start = math.ceil(oldest / step) * step if start is None else start
        end = now if end is None else end
        if start < oldest:
            raise ExportError(
                f"{_duration(step)} rows are kept for {_duration(archive.span)} only, so the RRDs "
                f"have none from {iso_utc(start)}; use a coarser resolution or raw (from "
                f"{iso_utc(oldest)})"
            )
        self.resolution = self.step = step
        self.start, self.end = start, end
        self.store = RrdStore(config)
        self.consolidations = [
            cf for cf in ("MIN", "AVERAGE", "MAX", "LAST") if cf in config.consolidations
        ]
        self.suffixes = tuple(SUFFIXES[cf] for cf in self.consolidations)
        self.series = []  # (host, dataset, instance, path), filled by survey()

    def survey(self, matches, wanted):
        store = self.store
        found = _Found()
        for host in store.hosts():
            if not matches(host):
                continue
            for dataset, instance in store.series(host):
                found.present.add(dataset)
                if wanted and dataset not in wanted:
                    continue
                path = store.path(host, dataset, instance)
                found.add_variables(dataset, store.variables(path))
                found.hosts.add(host)
                found.instances.add(instance)
                self.series.append((host, dataset, instance, path))
        return found

    def total(self):
        return len(self.series)

    def copy(self, export, trees, _matches, hosts, instances, bar):  # survey() chose the hosts
        for host, dataset, instance, path in self.series:
            tree = trees[dataset]
            times, matrix = _fetch_series(
                self.store, path, tree, self.consolidations, self.start, self.end, self.step
            )
            if len(times):
                count = len(times)
                export.add(
                    tree,
                    times,
                    np.full(count, hosts.get(host), np.int32),
                    np.full(count, instances.get(instance), np.int32),
                    matrix,
                )
            bar.update(1)


def _fetch_series(store, path, tree, consolidations, start, end, step):
    """Rows whose whole interval lies in [start, end]: (times, matrix), all-unknown rows dropped."""
    times, matrix = None, None
    for cf_index, cf in enumerate(consolidations):
        result = store.fetch(path, cf, start, end, resolution=step)
        if result.step != step:
            raise ExportError(
                f"{path}: the RRD has no {_duration(step)} rows for this range (it offers "
                f"{_duration(result.step)}); use a coarser resolution or raw"
            )
        fetched = np.array(result.times, np.float64)
        keep = (fetched - step >= start) & (fetched <= end)
        if times is None:
            times = fetched[keep]
            matrix = np.full((len(times), tree.width), np.nan)
        for name in result.names:
            column = tree.column_of[name] * len(consolidations) + cf_index
            matrix[:, column] = np.array(result.columns[name], np.float64)[keep]
    known = ~np.isnan(matrix).all(axis=1)
    return times[known], matrix[known]


# --- shared ---


def _plan_trees(config, found_variables, wanted, suffixes, present=()):
    """One _Tree per dataset found (or explicitly wanted): declared variables first."""
    for name in wanted:
        if name not in present and name not in config.datasets:
            known = sorted(set(present) | set(config.datasets))
            raise ExportError(
                f"no dataset {name!r} in the config or the data (known: {', '.join(known)})"
            )
    names = list(wanted) if wanted else sorted(found_variables)
    trees = {}
    for dataset in names:
        declared = config.datasets.get(dataset)
        variables = list(declared.variables) if declared else []
        variables += [v for v in found_variables.get(dataset, []) if v not in variables]
        trees[dataset] = _Tree(
            dataset, variables, suffixes, declared.description if declared else ""
        )
    return trees


def _write_catalog(sink, config, trees, hosts, instances, source):
    """The _affair/ directory: names behind the integer branches, and the metadata."""
    _write_names(sink, hosts, instances)
    rows, datasets = _describe_branches(config, trees)
    sink.mktree(
        "_affair/variables", {key: "string" for key in rows}, title="what each branch holds"
    )
    if rows["branch"]:
        sink["_affair/variables"].extend({key: _strings(values) for key, values in rows.items()})
    metadata = _metadata(config, source, hosts, instances, datasets)
    sink["_affair/metadata"] = json.dumps(metadata, indent=1)
    try:
        sink["_affair/config"] = Path(config.path).read_text()
    except OSError:
        sink["_affair/config"] = ""  # a config built in memory (tests) has no file


def _write_names(sink, hosts, instances):
    sink.mktree("_affair/hosts", {"index": np.int32, "name": "string"}, title="host names")
    sink.mktree("_affair/instances", {"index": np.int32, "name": "string"}, title="instance names")
    for tree_name, names in (
        ("_affair/hosts", hosts.names),
        ("_affair/instances", instances.names),
    ):
        if names:
            sink[tree_name].extend(
                {"index": np.arange(len(names), dtype=np.int32), "name": _strings(names)}
            )


def _describe_branches(config, trees):
    """The variables tree's columns, and per dataset its branches for the metadata."""
    rows = {
        key: []
        for key in ("dataset", "variable", "branch", "type", "unit", "label", "consolidation")
    }
    datasets = {}
    for tree in trees.values():
        described = {}
        for (variable, suffix), branch in tree.branches.items():
            definition = config.variable(tree.dataset, variable)
            consolidation = (
                next((cf for cf, s in SUFFIXES.items() if s == suffix), "") if suffix else ""
            )
            entry = {
                "variable": variable,
                "type": definition.type,
                "unit": definition.unit,
                "label": definition.title,
                "consolidation": consolidation or None,
            }
            described[branch] = entry
            for key, value in (("dataset", tree.dataset), ("branch", branch), *entry.items()):
                rows[key].append(value or "")
        datasets[tree.dataset] = {
            "description": tree.description,
            "entries": tree.entries,
            "branches": described,
        }
    return rows, datasets


def _metadata(config, source, hosts, instances, datasets):
    raw = source.resolution == "raw"
    start, end = source.start, source.end
    return {
        "format": FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "resolution": "raw" if raw else f"{source.resolution}s",
        "step": source.step,
        "consolidations": list(source.consolidations),
        "time": "the sample's own timestamp, Unix seconds UTC"
        if raw
        else "the end of each consolidated interval, Unix seconds UTC",
        "range": {
            "from": start,
            "to": end,
            "from_utc": iso_utc(start) if start is not None else None,
            "to_utc": iso_utc(end) if end is not None else None,
        },
        "hosts": hosts.names,
        "instances": instances.names,
        "datasets": datasets,
        "source": {"config": config.path, "data_dir": str(config.recorder.data_dir)},
    }


def _strings(values):
    import awkward  # uproot's own dependency; strings need it

    return awkward.Array([str(v) for v in values])


def _duration(seconds):
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class _NoBar:
    def update(self, _count):
        pass

    def close(self):
        pass


def _progress_bar(enabled, total, unit):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit=f" {unit}", unit_scale=True, file=sys.stderr, desc="export")
