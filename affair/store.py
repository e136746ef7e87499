"""The RRD store: one file per (host, dataset[, instance]), one DS per variable.

A small interface over librrd (``create``/``ensure``, ``update_many``,
``fetch``, ``info``) that turns librrd's errors into StoreError with the
path in it, as carbon's database.py does for whisper. Only the recorder's
writer process writes; readers (plot, site, export) only fetch.

Conventions a reader must know:

* Timestamps are whole seconds in the RRD (librrd's resolution); the raw
  journal keeps the exact ones.
* :meth:`RrdStore.fetch` labels each row with the *end* of its interval,
  as the ``rrdtool fetch`` command prints it: a GAUGE sample sent at t=20
  with a 10 s step is the row labelled 20. (The Python binding itself
  returns the start of the first interval; we convert once, here.)
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rrdtool

from affair import archive as archive_maths
from affair.errors import StoreError
from affair.names import parse_rrd_file_name, rrd_path

LOCK_RETRY_FIRST = 0.002  # seconds before the first retry of a locked file; doubling...
LOCK_RETRY_LAST = 0.5  # ...up to this wait: about a second in all before giving up


@dataclass
class SeriesFile:
    """What the writer must know of an open series: its path, DS names and last update."""

    path: Path
    variables: list
    last_update: int
    counters: set = None  # COUNTER/DERIVE/ABSOLUTE DS names: librrd wants whole numbers for them

    def __post_init__(self):
        if self.counters is None:
            self.counters = set()

    @property
    def known_names(self):
        """The DS names as a set, rebuilt only when the list grows (the writer asks per batch)."""
        if getattr(self, "_known", None) is None or len(self._known) != len(self.variables):
            self._known = set(self.variables)
        return self._known


@dataclass(frozen=True)
class FetchResult:
    """Rows of one archive: ``times[i]`` ends the interval of ``columns[name][i]``."""

    step: int
    times: list
    names: tuple
    columns: dict


class RrdStore:
    def __init__(self, config, data_dir=None, daemon=None):
        self.config = config
        self.data_dir = Path(data_dir or config.recorder.data_dir)
        self.daemon = daemon  # rrdcached address, or None for direct writes

    # --- paths and discovery ---

    def path(self, host, dataset, instance=""):
        return rrd_path(self.data_dir, host, dataset, instance)

    def hosts(self):
        if not self.data_dir.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.data_dir.iterdir()
            if entry.is_dir() and not entry.name.startswith(("_", "."))
        )

    def series(self, host):
        """``[(dataset, instance), ...]`` held for ``host``."""
        directory = self.data_dir / host
        if not directory.is_dir():
            return []
        found = (parse_rrd_file_name(entry.name) for entry in directory.iterdir())
        return sorted(item for item in found if item)

    # --- writing ---

    def open_series(self, host, dataset, instance, variables, first_timestamp):
        """Return the SeriesFile for a series, creating or extending its RRD.

        A new file gets every variable the config declares for the dataset
        plus ``variables``; an existing file missing some of them gets them
        added with ``rrdtool tune``, its history kept.
        """
        path = self.path(host, dataset, instance)
        wanted = self._wanted_variables(dataset, variables)
        if not path.exists():
            start = _slot_start(int(first_timestamp), self.config.recorder.step)
            self._create(path, wanted, start)
            series_file = SeriesFile(path, wanted, start)
        else:
            present = self.variables(path)
            missing = [name for name in wanted if name not in present]
            if missing:
                self._tune_add(path, missing)
                present += missing
            series_file = SeriesFile(path, present, self.last_update(path))
        series_file.counters = {n for n in series_file.variables if self._is_counter(dataset, n)}
        return series_file

    def _is_counter(self, dataset, name):
        return self.config.variable(dataset, name).type != "GAUGE"

    def add_variables(self, series_file, names):
        """Add DSes to an open series (an undeclared variable seen for the first time)."""
        self._tune_add(series_file.path, names)
        series_file.variables.extend(names)
        dataset = series_file.path.name.split(".")[0]
        series_file.counters.update(n for n in names if self._is_counter(dataset, n))

    def update_many(self, series_file, rows):
        """Write ``rows`` = [(timestamp, {variable: value or None}), ...] in one call.

        Rows must be in increasing whole-second order after the file's last
        update; the writer guarantees it. Variables absent from a row are
        unknown for that row.
        """
        names = series_file.variables
        counters = series_file.counters
        arguments = ["--template", ":".join(names)]
        for timestamp, values in rows:
            fields = [_format_value(values.get(name), name in counters) for name in names]
            arguments.append(f"{int(timestamp)}:{':'.join(fields)}")
        self._call("update", rrdtool.update, series_file.path, *self._daemon_args(), *arguments)
        series_file.last_update = int(rows[-1][0])

    def _create(self, path, variables, start):
        recorder = self.config.recorder
        definitions = self._ds_lines(path, variables)
        rras = archive_maths.rra_definitions(
            self.config.archives, recorder.step, self.config.consolidations, self.config.xff
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created under a temporary name and renamed, as collectd does, so no
        # reader ever opens a half-written file; removed again on failure.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.creating")
        try:
            self._call(
                "create",
                rrdtool.create,
                temporary,
                "--start",
                str(start),
                "--step",
                str(recorder.step),
                *definitions,
                *rras,
            )
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    def _tune_add(self, path, names):
        definitions = self._ds_lines(path, names)
        if self.daemon:  # the daemon must not hold a cached copy while the file changes shape
            self._call("flushcached", rrdtool.flushcached, "--daemon", self.daemon, path)
        self._call("tune", rrdtool.tune, path, *definitions)

    def _ds_lines(self, path, names):
        dataset = path.name.split(".")[0]
        lines = []
        for name in names:
            variable = self.config.variable(dataset, name)
            lines.append(
                archive_maths.ds_definition(
                    name, variable.type, self.config.recorder.heartbeat, variable.min, variable.max
                )
            )
        return lines

    def _wanted_variables(self, dataset, variables):
        declared = self.config.datasets.get(dataset)
        wanted = list(declared.variables) if declared else []
        wanted += [name for name in variables if name not in wanted]
        return wanted

    # --- reading ---

    def variables(self, path):
        info = self.info(path)
        names = []
        for key in info:
            if key.startswith("ds[") and key.endswith("].index"):
                names.append((info[key], key[3:-7]))
        return [name for _, name in sorted(names)]

    def last_update(self, path):
        # `rrdtool last` reads one header field: ~25x cheaper than parsing all of `info`,
        # which matters to the site builder reading every host's files each pass.
        return int(self._call("last", rrdtool.last, path, *self._daemon_args()))

    def info(self, path):
        return self._call("info", rrdtool.info, path, *self._daemon_args())

    def fetch(self, path, consolidation, start, end, resolution=None):
        arguments = [consolidation, "-s", str(int(start)), "-e", str(int(end))]
        if resolution:
            arguments += ["-r", str(int(resolution))]
        (first, _last, step), names, rows = self._call(
            "fetch", rrdtool.fetch, path, *arguments, *self._daemon_args()
        )
        times = [first + step * (index + 1) for index in range(len(rows))]
        columns = {name: [row[index] for row in rows] for index, name in enumerate(names)}
        return FetchResult(step=step, times=times, names=tuple(names), columns=columns)

    def fetch_array(self, path, consolidation, start, end, resolution=None):
        """Like :meth:`fetch`, as numpy: ``(step, first_end, names, rows x names array)``.

        Unknown values are NaN; ``first_end`` ends the first row's interval.
        The plotter fetches thousands of series a pass, so it skips the
        per-column Python lists of :meth:`fetch`.
        """
        arguments = [consolidation, "-s", str(int(start)), "-e", str(int(end))]
        if resolution:
            arguments += ["-r", str(int(resolution))]
        (first, _last, step), names, rows = self._call(
            "fetch", rrdtool.fetch, path, *arguments, *self._daemon_args()
        )
        values = np.array(rows, dtype=float).reshape(len(rows), len(names))  # None -> NaN
        return step, first + step, tuple(names), values

    # --- plumbing ---

    def _daemon_args(self):
        return ["--daemon", self.daemon] if self.daemon else []

    @staticmethod
    def _call(operation, function, path, *arguments):
        # librrd locks a file for reading too (fetch, info) and does not wait
        # for a lock: an update while a plotter fetches fails at once with
        # "could not lock RRD". Nothing was written then, so wait a little
        # and try again, rather than lose the rows (or the graph) to a reader.
        delay = LOCK_RETRY_FIRST
        while True:
            try:
                return function(str(path), *[str(a) for a in arguments])
            except rrdtool.OperationalError as error:
                if "could not lock" not in str(error) or delay > LOCK_RETRY_LAST:
                    raise StoreError(path, operation, error) from None
            time.sleep(delay)
            delay *= 2


def _slot_start(second, step):
    """Where a new file starts so its first sample fills its whole slot.

    A sample at ``second`` closes the slot ``(second - step, second]`` when
    on the grid, else the slot it falls in; librrd applies a GAUGE value to
    the time since the last update, so starting the file at the slot's
    start makes the first row known instead of a sliver of one.
    """
    return -(-second // step) * step - step


def _format_value(value, whole):
    if value is None:
        return "U"
    if whole or float(value).is_integer():
        return str(round(value))  # counters must be integers for librrd
    return repr(float(value))
