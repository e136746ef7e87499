"""The RRD store: one file per (host, dataset[, instance]), one DS per variable.

A small interface over librrd (``create``/``ensure``, ``update_many``,
``fetch``, ``info``) that turns librrd's errors into StoreError with the
path in it, as carbon's database.py does for whisper. Only the recorder's
writer process writes; readers (plot, site, export) only fetch.

With ``[recorder] rrdcached`` set, the writer's updates go to rrdcached and
every read of a file is executed inside the daemon (its FETCHBIN, LAST and
INFO; see :mod:`affair.storage.rrdcached` for why a local read would cost it rows),
so readers see what it holds. The one local operation on an existing file
is the writer's ``tune``, and only once the file is *settled*: flushed, and
read back (by the daemon) holding every row the daemon had. A FLUSH alone is
no such barrier: it returns at once while a write that another client's
flush started is still running. The writer alone sends updates, so a settled
file stays settled while it tunes. Files are always created here (temporary
name, then rename): a new file has nothing in the daemon, whose CREATE would
make it the daemon user's file and need ``-R`` for a new host's directory.

Conventions a reader must know:

* Timestamps are whole seconds in the RRD (librrd's resolution); the raw
  journal keeps the exact ones.
* :meth:`RrdStore.fetch` labels each row with the *end* of its interval,
  as the ``rrdtool fetch`` command prints it: a GAUGE sample sent at t=20
  with a 10 s step is the row labelled 20. (The Python binding itself
  returns the start of the first interval; we convert once, here.)
"""

import logging
import os
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rrdtool

from affair.atomic import atomic_path
from affair.config import Config
from affair.errors import RrdcachedError, StoreError
from affair.names import parse_rrd_file_name, rrd_path
from affair.storage import ladder as archive_maths
from affair.storage.rrdcached import RrdcachedClient

log = logging.getLogger(__name__)

LOCK_RETRY_FIRST = 0.002  # seconds before the first retry of a locked file; doubling...
LOCK_RETRY_LAST = 0.5  # ...up to this wait (the settle loop below)
LOCKED_RETRY_CAP = 0.02  # a locked file is retried at least this often...
LOCKED_GIVE_UP = 10.0  # ...for this long before the call fails
SETTLE_TIMEOUT = 30.0  # seconds a write rrdcached started may take (librrd stalls for seconds)


@dataclass
class SeriesFile:
    """What the writer must know of an open series: its path, DS names and last update."""

    path: Path
    variables: list[str]
    last_update: int
    # COUNTER/DERIVE/ABSOLUTE DS names: librrd wants whole numbers for them
    counters: set[str] = field(default_factory=set)
    _known: set[str] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def known_names(self) -> set[str]:
        """The DS names as a set, rebuilt only when the list grows (the writer asks per batch)."""
        if self._known is None or len(self._known) != len(self.variables):
            self._known = set(self.variables)
        return self._known


@dataclass(frozen=True)
class FetchResult:
    """Rows of one archive: ``times[i]`` ends the interval of ``columns[name][i]``."""

    step: int
    times: list[int]
    names: tuple[str, ...]
    columns: dict[str, list[float | None]]


class RrdStore:
    """The RRDs under ``data_dir`` (default ``[recorder] data_dir``).

    ``daemon`` is an rrdcached address; None takes ``[recorder] rrdcached``
    (so every command built from the config agrees, whatever its data dir),
    "" writes and reads the files directly.
    """

    def __init__(
        self,
        config: Config,
        data_dir: str | os.PathLike[str] | None = None,
        daemon: str | None = None,
    ) -> None:
        self.config = config
        self.data_dir = Path(data_dir or config.recorder.data_dir)
        address = config.recorder.rrdcached if daemon is None else daemon
        self.daemon = RrdcachedClient(address) if address else None
        self._daemon_root = None  # the data dir's real path, once asked
        _ignore_rrdcached_environment()

    # --- paths and discovery ---

    def path(self, host: str, dataset: str, instance: str = "") -> Path:
        return rrd_path(self.data_dir, host, dataset, instance)

    def hosts(self) -> list[str]:
        if not self.data_dir.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.data_dir.iterdir()
            if entry.is_dir() and not entry.name.startswith(("_", "."))
        )

    def series(self, host: str) -> list[tuple[str, str]]:
        """``[(dataset, instance), ...]`` held for ``host``."""
        directory = self.data_dir / host
        if not directory.is_dir():
            return []
        found = (parse_rrd_file_name(entry.name) for entry in directory.iterdir())
        return sorted(item for item in found if item)

    # --- writing ---

    def open_series(
        self,
        host: str,
        dataset: str,
        instance: str,
        variables: Iterable[str],
        first_timestamp: float,
    ) -> SeriesFile:
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
            info = self._settled(path) if self.daemon else self._call("info", rrdtool.info, path)
            present = _ds_names(info)
            missing = [name for name in wanted if name not in present]
            if missing:
                self._tune_add(path, missing)
                present += missing
            series_file = SeriesFile(path, present, int(info["last_update"]))
        series_file.counters = {n for n in series_file.variables if self._is_counter(dataset, n)}
        return series_file

    def _is_counter(self, dataset, name):
        return self.config.variable(dataset, name).type != "GAUGE"

    def add_variables(self, series_file: SeriesFile, names: Sequence[str]) -> None:
        """Add DSes to an open series (an undeclared variable seen for the first time)."""
        if self.daemon:
            self.settle(series_file)
        self._tune_add(series_file.path, names)
        series_file.variables.extend(names)
        dataset = series_file.path.name.split(".")[0]
        series_file.counters.update(n for n in names if self._is_counter(dataset, n))

    def update_many(
        self, series_file: SeriesFile, rows: Sequence[tuple[float, Mapping[str, float | None]]]
    ) -> None:
        """Write ``rows`` = [(timestamp, {variable: value or None}), ...] in one call.

        Rows must be in increasing whole-second order after the file's last
        update; the writer guarantees it. Variables absent from a row are
        unknown for that row.
        """
        names = series_file.variables
        counters = series_file.counters
        lines = []
        for timestamp, values in rows:
            if counters:
                fields = [_format_value(values.get(name), name in counters) for name in names]
            elif (
                len(values) == len(names) and list(values) == names and None not in values.values()
            ):
                # The common row: every variable known, in the file's order. Gauges
                # take any float as written; one join in C, no call a value.
                lines.append(f"{int(timestamp)}:{':'.join(map(repr, values.values()))}")
                continue
            else:
                get = values.get
                fields = ["U" if (value := get(name)) is None else repr(value) for name in names]
            lines.append(f"{int(timestamp)}:{':'.join(fields)}")
        if self.daemon:  # rrdcached takes no template: `names` is the file's DS order
            self.daemon.update(self._daemon_path(series_file.path), lines)
        else:
            self._call(
                "update", rrdtool.update, series_file.path, "--template", ":".join(names), *lines
            )
        series_file.last_update = int(rows[-1][0])

    def settle(self, series_file: SeriesFile) -> int:
        """The file's last update on disk, once it holds every row sent (writer only).

        Without a daemon that is at once. Through rrdcached, flush and read
        back until the file ends at ``series_file.last_update``; if it does
        not within SETTLE_TIMEOUT the daemon dropped rows: RrdcachedError.
        """
        if not self.daemon:
            return int(self._call("last", rrdtool.last, series_file.path))
        on_disk = int(self._settled(series_file.path, series_file.last_update)["last_update"])
        if on_disk < series_file.last_update:
            raise RrdcachedError(
                self.daemon.address,
                "settle",
                f"the file ends at {on_disk}, rows up to {series_file.last_update} were sent",
                series_file.path,
            )
        return on_disk

    def _settled(self, path, sent=None):
        """``info`` (read by the daemon) once the file holds what the daemon had of it.

        ``sent`` is the last row sent, when the caller knows it; else the
        daemon's own newest row (its LAST, rounded down to the file's step).
        """
        target = self._daemon_path(path)
        delay, deadline = LOCK_RETRY_FIRST, time.monotonic() + SETTLE_TIMEOUT
        while True:
            self.daemon.flush(target)
            info = self.daemon.info(target)
            on_disk, step = int(info["last_update"]), int(info["step"])
            if sent is not None:
                settled = on_disk >= sent
            else:
                settled = on_disk - on_disk % step >= self.daemon.last(target)
            if settled or time.monotonic() > deadline:
                return info
            time.sleep(delay)  # a write another client's flush started is still running
            delay = min(2 * delay, LOCK_RETRY_LAST)

    def _create(self, path, variables, start):
        recorder = self.config.recorder
        definitions = self._ds_lines(path, variables)
        rras = archive_maths.rra_definitions(
            self.config.archives, recorder.step, self.config.consolidations, self.config.xff
        )
        # Created under a temporary name and renamed, as collectd does, so no
        # reader ever opens a half-written file. Durable: rows are written into
        # it in place from now on, and an empty file after a crash would refuse them.
        with atomic_path(path, durable=True) as temporary:
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

    def _tune_add(self, path, names):
        # With rrdcached the caller settled the file first: rows the daemon held have the
        # old number of values and would fail after the tune (and be dropped), and its
        # write would fail against our lock.
        self._call("tune", rrdtool.tune, path, *self._ds_lines(path, names))

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

    def variables(self, path: str | os.PathLike[str]) -> list[str]:
        return _ds_names(self.info(path))

    def last_update(self, path: str | os.PathLike[str]) -> int:
        """The file's last update; through rrdcached, rounded down to the step (its LAST)."""
        if self.daemon:
            return self.daemon.last(self._daemon_path(path))
        # `rrdtool last` reads one header field: far cheaper than parsing all of `info`
        # (see benchmarks/RESULTS.md), which matters to the site builder reading every
        # host's files each pass.
        return int(self._call("last", rrdtool.last, path))

    def info(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        if self.daemon:
            target = self._daemon_path(path)
            self.daemon.flush(target)  # INFO reads the file as it is on disk
            return self.daemon.info(target)
        return self._call("info", rrdtool.info, path)

    def fetch(
        self,
        path: str | os.PathLike[str],
        consolidation: str,
        start: float,
        end: float,
        resolution: int | None = None,
    ) -> FetchResult:
        step, first_end, names, values = self.fetch_array(
            path, consolidation, start, end, resolution
        )
        times = [first_end + step * index for index in range(len(values))]
        columns = {
            name: [None if value != value else float(value) for value in values[:, index]]
            for index, name in enumerate(names)
        }
        return FetchResult(step=step, times=times, names=tuple(names), columns=columns)

    def fetch_array(
        self,
        path: str | os.PathLike[str],
        consolidation: str,
        start: float,
        end: float,
        resolution: int | None = None,
    ) -> tuple[int, int, tuple[str, ...], npt.NDArray[np.float64]]:
        """Like :meth:`fetch`, as numpy: ``(step, first_end, names, rows x names array)``.

        Unknown values are NaN; ``first_end`` ends the first row's interval.
        The plotter fetches thousands of series a pass, so it skips the
        per-column Python lists of :meth:`fetch`.
        """
        if self.daemon:
            first, step, names, values = self._daemon_fetch(
                path, consolidation, int(start), int(end), resolution
            )
            return step, first + step, names, values
        arguments = [consolidation, "-s", str(int(start)), "-e", str(int(end))]
        if resolution:
            arguments += ["-r", str(int(resolution))]
        (first, _last, step), names, rows = self._call("fetch", rrdtool.fetch, path, *arguments)
        values = np.array(rows, dtype=float).reshape(len(rows), len(names))  # None -> NaN
        return step, first + step, tuple(names), values

    def _daemon_fetch(self, path, consolidation, start, end, resolution):
        target = self._daemon_path(path)
        first, step, names, values = self.daemon.fetch(target, consolidation, start, end)
        archive = next((a for a in self.config.archives if a.step == resolution), None)
        if archive is None or step >= resolution:
            return first, step, names, values
        # rrdcached's FETCH takes no resolution: it answered from a finer archive that
        # still holds `start`. Ask from where the wanted archive begins (before any finer
        # one reaches), then keep the rows librrd gives for `start`: those after its slot.
        last = self.daemon.last(target)
        begins = archive_maths.align(last, resolution) - archive.span
        first, step, names, values = self.daemon.fetch(
            target, consolidation, min(start, begins), end
        )
        if step == resolution:
            skip = max(0, (start - start % step - first) // step)
            first, values = first + skip * step, values[skip:]
        return first, step, names, values

    # --- plumbing ---

    def _daemon_path(self, path):
        """The name rrdcached knows ``path`` by: under the data dir's real path.

        Every process must send the same name for a file (the daemon's cache
        is keyed by it, and ``-B`` compares it with its base directory), however
        it spelled the data dir; resolved once, the rest is lexical.
        """
        if self._daemon_root is None:
            self._daemon_root = Path(os.path.realpath(self.data_dir))
        try:
            return self._daemon_root / Path(path).relative_to(self.data_dir)
        except ValueError:
            return Path(os.path.realpath(path))

    @staticmethod
    def _call(operation, function, path, *arguments):
        # librrd locks a file for reading too (fetch, info) and does not wait
        # for a lock: an update while a plotter fetches fails at once with
        # "could not lock RRD". Nothing was written then, so wait a little
        # and try again, rather than lose the rows (or the graph) to a reader.
        # The retries are bounded by time, not by count, and come often with a
        # random spread: a reader fetching back to back holds the lock most of
        # the time, and a few widely spaced tries can all land inside its fetches
        # on a loaded machine.
        delay, deadline = LOCK_RETRY_FIRST, time.monotonic() + LOCKED_GIVE_UP
        while True:
            try:
                return function(str(path), *[str(a) for a in arguments])
            except rrdtool.OperationalError as error:
                if "could not lock" not in str(error) or time.monotonic() > deadline:
                    raise StoreError(path, operation, error) from None
            time.sleep(random.uniform(0, delay))
            delay = min(2 * delay, LOCKED_RETRY_CAP)


def _ds_names(info):
    names = []
    for key in info:
        if key.startswith("ds[") and key.endswith("].index"):
            names.append((info[key], key[3:-7]))
    return [name for _, name in sorted(names)]


def _ignore_rrdcached_environment():
    # librrd sends every call made without --daemon to $RRDCACHED_ADDRESS: our local
    # reads, tunes and direct writes would go to a daemon the config does not name.
    address = os.environ.pop("RRDCACHED_ADDRESS", None)
    if address:
        log.warning("ignoring RRDCACHED_ADDRESS=%s: affair uses [recorder] rrdcached only", address)


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
