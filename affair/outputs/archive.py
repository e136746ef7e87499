"""``affair archive``: every sample kept for good, in ROOT files read back before they count.

The journal keeps raw samples for ``[recorder] journal_days``; the archive
keeps them for good. Each completed UTC day (by the sample's own time) is
written in the format of ``affair export`` (a TTree per dataset, ``_affair/``
metadata and the source config) to ``<[export] directory>/YYYY/affair-YYYY-MM-DD.root``.
Samples of a day that arrive after its file was written (a collector
catching up after an outage) go to a supplement, ``affair-YYYY-MM-DD.1.root``,
then ``.2.root``: a file once verified is never rewritten.

A file counts only once it is *verified*: read back with uproot, its
entries per dataset, host and instance equal what the journal holds for it
(counted by SQL, apart from the copy), and a checksum of every known value
with its time, host, instance and variable equals the one taken while
writing. The result goes into the catalog (:mod:`affair.storage.archive_catalog`),
and the recorder deletes a journal day only once every row of it is in a
verified file. A day that cannot be archived (no space, a failed check) is
recorded as a failure, shown by ``affair status`` and the index page, and
retried at the next pass; its journal rows stay.

A pass archives every day it finds missing, not only yesterday, so a
station that was down (or a scheduler that was stopped) catches up. Only one
pass runs at a time (a lock file in the archive directory).
"""

import contextlib
import ctypes
import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import uproot

from affair.atomic import atomic_path
from affair.daemon import setup_logging
from affair.errors import ArchiveError, ExportError, JournalRowsDiffer
from affair.hosts import HostMatcher
from affair.outputs.export import RawRowSource, _export, _Found, _read_day
from affair.storage.archive_catalog import (
    ArchiveCatalog,
    ArchiveFile,
    Coverage,
    archive_file_name,
)
from affair.storage.journal import DAY_FILE_GLOB, day_name, day_start, open_day_readonly
from affair.storage.journal_reader import DayReader
from affair.times import iso_utc

log = logging.getLogger(__name__)

DAY = 86400
# A journal file counts as finished this long after its day ended: the recorder
# stamps a row with its clock just before committing it, so a pass right at
# midnight could otherwise call a file finished that is still taking its last burst.
FINISH_GRACE = 300
# A day is archived once it has been over this long: samples stamped just before
# midnight that arrive a few minutes late (a collector's resends after a short cut)
# then go into the day's file, not into a supplement of one sample.
SETTLE = 600
# What a sample costs in a ROOT file, at most, to leave room for before writing:
# float64 per value and time, int32 host and instance, before ZSTD's compression.
BYTES_PER_VALUE = 8
READ_BACK_STEP = "64 MB"  # per chunk of a tree read back: memory stays flat
_MASK = (1 << 64) - 1
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
# mallopt(3) parameters of glibc, and the values the pass sets (see _keep_freed_memory).
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
HEAP_SETTINGS = ((M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 256 << 20), (M_TOP_PAD, 64 << 20))


def archive_directory(config) -> Path:
    return Path(config.export.directory)


def check_writable(directory: Path) -> None:
    """Make ``directory`` if needed; raise ArchiveError when files cannot be written in it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ArchiveError(
            f"the archive directory {directory} cannot be made: {error.strerror or error}"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ArchiveError(f"the archive directory {directory} is not writable by this user")


# --- planning: which journal rows go to which day's file ---


@dataclass(frozen=True)
class Piece:
    """Rows of one journal file for one sample day: ``after < id <= upto``, the time in the day."""

    journal_day: str
    path: Path
    sample_day: str
    after: int  # 0: from the file's first row
    upto: int  # the (journal day, sample day) pair is covered to this row id once written

    @property
    def parameters(self):
        start = day_start(self.sample_day)
        if self.after == 0:
            return (start, start + DAY, self.upto)
        return (self.after, self.upto, start, start + DAY)

    @property
    def where(self):
        if self.after == 0:  # the ts index finds the day's rows
            return " WHERE ts >= ? AND ts < ? AND +id <= ?"
        return " WHERE id > ? AND id <= ? AND +ts >= ? AND +ts < ?"  # rows added since

    @property
    def order(self):
        return "ts" if self.after == 0 else "id"

    @property
    def count_where(self):
        """The same rows, for counting by series (the same parameters)."""
        if self.after == 0:
            # Counted off the (series, ts) index alone, which holds every
            # column asked: a third of the CPU of the ts index's walk through
            # the rows and their BLOBs (0.65 s against 2-3 s for 8.64 M rows).
            return " WHERE +ts >= ? AND +ts < ? AND +id <= ?"
        return self.where


def plan_pass(journal_dir, coverage, today, finished_before):
    """``({sample day: [Piece]}, {journal day: Coverage}, finished)``: rows not archived yet.

    ``coverage`` is the catalog's; the Coverage returned has the files'
    ``scanned`` ids and newly seen sample days (rowid 0) added, nothing
    marked archived. Days from ``today`` on are not complete and wait.
    ``finished``: the journal days before ``finished_before``, whose files take no more rows.
    """
    pieces = defaultdict(list)
    scanned = {}
    finished = set()
    for path in sorted(Path(journal_dir).glob(DAY_FILE_GLOB)):
        journal_day = path.stem
        old = coverage.get(journal_day, Coverage())
        if old.complete:
            continue
        cover = Coverage(old.scanned, False, dict(old.days))
        with closing(open_day_readonly(path)) as connection:
            last = connection.execute("SELECT max(id) FROM samples").fetchone()[0] or 0
            if last > cover.scanned:
                for sample_day in _sample_days(connection, cover.scanned, last):
                    cover.days.setdefault(sample_day, 0)
                cover.scanned = last
        if journal_day < finished_before:
            finished.add(journal_day)
        scanned[journal_day] = cover
        for sample_day, rowid in sorted(cover.days.items()):
            if sample_day >= today or rowid >= cover.scanned:
                continue
            pieces[sample_day].append(Piece(journal_day, path, sample_day, rowid, cover.scanned))
    return dict(sorted(pieces.items())), scanned, finished


def _sample_days(connection, after, upto):
    """UTC days of the samples with ``after < id <= upto`` (a few seeks when after is 0)."""
    if after == 0:
        first = connection.execute("SELECT min(ts) FROM samples").fetchone()[0]
        last = connection.execute("SELECT max(ts) FROM samples").fetchone()[0]
        if first is None:
            return []
        days = []
        start = first - first % DAY
        while start <= last:
            row = connection.execute(
                "SELECT 1 FROM samples WHERE ts >= ? AND ts < ? AND +id <= ? LIMIT 1",
                (start, start + DAY, upto),
            ).fetchone()
            if row:
                days.append(day_name(start))
            start += DAY
        return days
    rows = connection.execute(
        "SELECT DISTINCT CAST(ts / 86400 AS INTEGER) FROM samples WHERE id > ? AND id <= ?",
        (after, upto),
    )
    return sorted(day_name(number * DAY) for (number,) in rows)


# --- checksums: the same sum from the rows written and from the file read back ---


def name_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def _mix(x):
    """splitmix64's finaliser on uint64 arrays: every input bit moves every output bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def value_checksum(times, host_keys, instance_keys, columns):
    """A sum over every known value, of a hash of (time, host, instance, variable, value bits).

    ``columns`` is ``[(variable key, float64 array)]``. A sum, so the order
    of rows and of columns does not matter; unknown values (NaN) are left
    out, so a branch that is all NaN in the file adds nothing. Mod 2**64.
    """
    with np.errstate(over="ignore"):
        row = _mix(np.ascontiguousarray(times, np.float64).view(np.uint64))
        row = _mix(row ^ _mix(np.asarray(host_keys, np.uint64)))
        row = _mix(row ^ _mix(np.asarray(instance_keys, np.uint64) + np.uint64(1)))
        total = 0
        for key, values in columns:
            values = np.ascontiguousarray(values, np.float64)
            known = ~np.isnan(values)
            cells = _mix(_mix(row ^ np.uint64(key)) ^ values.view(np.uint64))
            total += int(cells[known].sum(dtype=np.uint64))
    return total & _MASK


class _Keys:
    """Hash keys of the names behind integer indices (hosts, instances), kept as they grow."""

    def __init__(self, names):
        self.names = names  # the export's _Names.names list, appended to as rows come
        self.keys = np.zeros(0, np.uint64)

    def of(self, indices):
        if len(self.keys) < len(self.names):
            self.keys = np.array([name_key(n) for n in self.names], np.uint64)
        return self.keys[indices]


class _Checksumming:
    """Stands in for the export's tree writer: sums each row on its way into the file."""

    def __init__(self, export, hosts, instances, sums):
        self.export = export
        self.hosts = _Keys(hosts.names)
        self.instances = _Keys(instances.names)
        self.sums = sums  # dataset -> checksum

    def add(self, tree, times, hosts, instances, matrix):
        columns = [
            (name_key(variable), matrix[:, tree.column_of[variable]]) for variable in tree.variables
        ]
        checksum = value_checksum(
            times, self.hosts.of(hosts), self.instances.of(instances), columns
        )
        self.sums[tree.dataset] = (self.sums.get(tree.dataset, 0) + checksum) & _MASK
        self.export.add(tree, times, hosts, instances, matrix)


# --- one day's file: the journal's pieces as an export source ---


class _Pieces(RawRowSource):
    """The rows of ``pieces`` (one sample day), as a row source of :func:`export._export`."""

    def __init__(self, config, day, pieces):
        self.step = config.recorder.step
        self.start = day_start(day)
        self.end = self.start + DAY
        self.pieces = pieces
        self.counts = defaultdict(int)  # (dataset, host, instance) -> rows, counted by SQL
        self.checksums = {}  # dataset -> value_checksum of the rows copied
        self.widest = 0  # variables of the widest dataset
        self._found = None

    def survey(self, matches, wanted):
        """What the pieces hold, counted by SQL once (every host, every dataset)."""
        if self._found is None:
            self._found = self._survey()
        return self._found

    def _survey(self):
        found = _Found()
        for piece in self.pieces:
            with DayReader(piece.path) as reader:
                counts = reader.count_by_series(piece.count_where, piece.parameters)
                for series_id, count in counts.items():
                    host, dataset, instance = reader.catalog.series_of(series_id)
                    self.counts[(dataset, host, instance)] += count
                    found.add_series(host, dataset, instance)
                found.add_day_variables(reader.catalog)
        self.widest = max(map(len, found.variables.values()), default=0)
        return found

    def total(self):
        return sum(self.counts.values())

    def copy(self, export, trees, matches, hosts, instances, bar):
        summing = _Checksumming(export, hosts, instances, self.checksums)
        for piece in self.pieces:
            with DayReader(piece.path) as reader:

                def rows(chosen, reader=reader, piece=piece):
                    return reader.select(piece.where, piece.parameters, piece.order, chosen)

                _read_day(reader, summing, trees, matches, hosts, instances, None, None, bar, rows)


def expected_of(source):
    """What a file of ``source`` must hold: entries per dataset, host and instance; checksums."""
    counts = defaultdict(dict)
    for (dataset, host, instance), count in sorted(source.counts.items()):
        counts[dataset][f"{host}\t{instance}"] = count
    return {
        "counts": dict(counts),
        "checksums": {dataset: str(value) for dataset, value in sorted(source.checksums.items())},
    }


def read_back(path):
    """The counts and checksums of an archive file, from the file alone (uproot)."""
    counts = {}
    checksums = {}
    with uproot.open(path) as root:
        metadata = json.loads(root["_affair/metadata"])
        hosts = list(root["_affair/hosts"]["name"].array(library="np"))
        instances = list(root["_affair/instances"]["name"].array(library="np"))
        host_keys = np.array([name_key(str(h)) for h in hosts], np.uint64)
        instance_keys = np.array([name_key(str(i)) for i in instances], np.uint64)
        for dataset, described in metadata["datasets"].items():
            tree = root[dataset]
            branches = {b: entry["variable"] for b, entry in described["branches"].items()}
            per_series = defaultdict(int)
            total = 0
            for arrays in tree.iterate(
                ["time", "host", "instance", *branches], step_size=READ_BACK_STEP, library="np"
            ):
                host, instance = arrays["host"], arrays["instance"]
                pairs, pair_counts = np.unique(
                    host.astype(np.int64) * len(instances) + instance, return_counts=True
                )
                for pair, count in zip(pairs.tolist(), pair_counts.tolist(), strict=True):
                    name = f"{hosts[pair // len(instances)]}\t{instances[pair % len(instances)]}"
                    per_series[name] += count
                columns = [(name_key(variable), arrays[b]) for b, variable in branches.items()]
                total += value_checksum(
                    arrays["time"], host_keys[host], instance_keys[instance], columns
                )
            if per_series:
                counts[dataset] = dict(per_series)
                checksums[dataset] = str(total & _MASK)
    return {"counts": counts, "checksums": checksums}


def verify_file(path, expected):
    """None if the file at ``path`` holds exactly ``expected``; else what is wrong."""
    try:
        found = read_back(path)
    except FileNotFoundError:
        return "the file is missing"
    except Exception as error:  # noqa: BLE001 - a damaged file fails in many ways; each is a failed check
        said = " ".join(str(error).split())  # some of uproot's messages span lines
        return f"cannot be read back: {type(error).__name__}: {said}"[:300]
    for dataset in sorted(set(expected["counts"]) | set(found["counts"])):
        want = expected["counts"].get(dataset, {})
        got = found["counts"].get(dataset, {})
        if want != got:
            series = sorted(
                name for name in set(want) | set(got) if want.get(name) != got.get(name)
            )
            host, instance = series[0].split("\t")
            where = f"{dataset} {host}{'/' + instance if instance else ''}"
            return (
                f"{where}: {got.get(series[0], 0)} entries in the file, "
                f"{want.get(series[0], 0)} in the journal"
            )
        if expected["checksums"].get(dataset) != found["checksums"].get(dataset):
            return f"{dataset}: the values' checksum differs from the journal's"
    return None


# --- the pass ---


@dataclass
class ArchiveSummary:
    written: list = field(default_factory=list)  # ArchiveFile, verified
    failed: dict = field(default_factory=dict)  # sample day -> problem
    skipped: bool = False  # another pass was running

    def describe(self):
        if self.skipped:
            return "another archive pass is running; nothing done"
        parts = [f"{len(self.written)} files written and verified"]
        if self.written:
            samples = sum(f.samples for f in self.written)
            parts.append(f"{samples} samples, {sum(f.bytes for f in self.written)} bytes")
        if self.failed:
            days = ", ".join(f"{d} ({p})" for d, p in self.failed.items())
            parts.append(f"{len(self.failed)} days failed: {days}")
        return "; ".join(parts)


@contextmanager
def _one_pass_at_a_time(directory):
    path = directory / ".archive.lock"
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def run_archive(config, now=None):
    """Archive every completed day not archived yet; return an ArchiveSummary.

    Raises ArchiveError when the archive directory cannot be written at all.
    A day that fails is recorded in the catalog and retried at the next pass.
    """
    now = time.time() if now is None else now
    directory = archive_directory(config)
    check_writable(directory)
    summary = ArchiveSummary()
    with _one_pass_at_a_time(directory) as alone:
        if not alone:
            summary.skipped = True
            return summary
        catalog = ArchiveCatalog(directory)
        journal_dir = Path(config.recorder.data_dir) / "_journal"
        today = day_name(now - SETTLE)  # the first day not archived yet
        pieces, coverage, finished = plan_pass(
            journal_dir, catalog.coverage(), today, day_name(now - FINISH_GRACE)
        )
        for journal_day, cover in coverage.items():  # the days seen so far, nothing archived
            catalog.set_coverage(journal_day, Coverage(cover.scanned, False, cover.days))
        for day, day_pieces in pieces.items():
            problem = _archive_day(config, catalog, directory, day, day_pieces, now, summary)
            if problem is None:
                for piece in day_pieces:
                    coverage[piece.journal_day].days[day] = piece.upto
            else:
                summary.failed[day] = problem
                catalog.record_failure(day, problem, now)
                log.error("archive of %s failed: %s (its journal rows are kept)", day, problem)
        held = _rebuild_damaged(config, catalog, directory, journal_dir, now, summary)
        for journal_day, cover in coverage.items():
            cover.complete = (
                journal_day in finished
                and journal_day not in held
                and all(rowid >= cover.scanned for rowid in cover.days.values())
            )
            catalog.set_coverage(journal_day, cover)
    return summary


# --- files found damaged by verify: written again from the journal ---


def _rebuild_damaged(config, catalog, directory, journal_dir, now, summary):
    """Write again every file ``verify`` found damaged; the journal days still needed.

    A journal day that fed a damaged file not rebuilt yet is returned, and
    so not complete: retention keeps it until its rows are in a good file.
    """
    held = set()
    files = {(entry.day, entry.part): entry for entry in catalog.files()}
    for rebuild in catalog.rebuilds():
        entry = files.get((rebuild.day, rebuild.part))
        if entry is None or not rebuild.pending:
            continue
        if rebuild.problem:  # known not to be possible: what the journal still has of it stays
            held.update(entry.expected.get("sources", []))
            continue
        problem = _rebuild(config, catalog, directory, journal_dir, entry, now, summary)
        if problem is not None:
            held.update(entry.expected.get("sources", []))
            summary.failed[entry.day] = problem
            catalog.record_failure(entry.day, f"{entry.file}: {problem}", now)
            log.error("rebuilding the damaged %s failed: %s", entry.file, problem)
    return held


def _rebuild(config, catalog, directory, journal_dir, entry, now, summary):
    """The damaged file ``entry`` put aside and its rows written to a new file; None, or why not."""
    _reject(directory / entry.file)  # kept to look at, out of the way of affair-*.root
    ranges = _rows_of(catalog, entry)
    if ranges is None:
        return _cannot_rebuild(
            catalog, entry, "the catalog does not say which journal rows it held"
        )
    gone = sorted(j for j in ranges if not (journal_dir / f"{j}.sqlite").exists())
    if gone:
        reason = f"journal day {', '.join(gone)} is gone: nothing to rebuild from"
        return _cannot_rebuild(catalog, entry, reason)
    pieces = [
        Piece(journal_day, journal_dir / f"{journal_day}.sqlite", entry.day, after, upto)
        for journal_day, (after, upto) in sorted(ranges.items())
    ]
    source = _Pieces(config, entry.day, pieces)
    source.survey(HostMatcher(["*"]), ())
    if expected_of(source)["counts"] != entry.expected["counts"]:
        reason = (
            f"the journal holds {source.total()} of its {entry.samples} samples: "
            "nothing to rebuild it from"
        )
        return _cannot_rebuild(catalog, entry, reason)
    part = next_part(catalog, entry.day)
    try:
        problem = _write_verified(
            config, catalog, directory, entry.day, part, source, pieces, now, summary, entry
        )
    except JournalRowsDiffer as error:
        return _cannot_rebuild(catalog, entry, str(error))
    if problem is None:
        catalog.set_rebuild(entry.day, entry.part, "", archive_file_name(entry.day, part))
        log.info("rebuilt the damaged %s as %s", entry.file, archive_file_name(entry.day, part))
    return problem


def _cannot_rebuild(catalog, entry, reason):
    catalog.set_rebuild(entry.day, entry.part, reason, None)
    return f"damaged ({entry.problem}) and cannot be rebuilt: {reason}"


def _rows_of(catalog, entry):
    """``{journal day: (after, upto)}``: the journal rows file ``entry`` holds; None if unknown."""
    rows = entry.expected.get("rows")
    if rows is not None:
        return {journal_day: tuple(span) for journal_day, span in rows.items()}
    # A file written before files noted their rows: a day's only file holds every
    # row of the day its sources are covered to.
    if entry.part != 0 or len(catalog.files(entry.day)) != 1:
        return None
    coverage = catalog.coverage()
    return {
        journal_day: (0, coverage[journal_day].days[entry.day])
        for journal_day in entry.expected.get("sources", [])
        if entry.day in coverage.get(journal_day, Coverage()).days
    }


def _reject(path):
    """Rename a file that failed its check to ``*.rejected`` (``.rejected.1``... if taken)."""
    target = path.with_name(f"{path.name}.rejected")
    for number in range(1, 1000):
        if not target.exists():
            break
        target = path.with_name(f"{path.name}.rejected.{number}")
    with contextlib.suppress(OSError):  # missing already: nothing to keep
        path.replace(target)


def next_part(catalog, day):
    """The next free part of ``day``: past every verified file and every damaged one."""
    taken = {f.part for f in catalog.files(day) if f.verified}
    taken |= {r.part for r in catalog.rebuilds() if r.day == day}
    return 1 + max(taken, default=-1)


def run_archive_politely(config, now=None):
    """:func:`run_archive` in a child process, at idle priority and a bounded share of a core.

    For the scheduler and ``affair archive``: the recorder's receiving path
    must not wait for the archive (a pass is about 13 s of a core for a day
    of 1,000 hosts). The child runs under SCHED_IDLE, so it gets only CPU
    time no other task asks for; and, since on a machine of few cores even a
    busy loop at idle priority on the other core raised a loaded recorder's
    median ack latency by half (RESULTS.md, "archive"), it runs at most
    ``[export] cpu_share`` of each 0.1 s and is stopped for the rest. A
    process, not a thread: a thread at idle priority holding the GIL would
    stall the scheduler's plot and site passes behind it, and the memory of a
    day's pass goes back to the system when the process ends.
    """
    return in_idle_process(run_archive, (config, now), config.export.cpu_share)


def in_idle_process(function, args, cpu_share=1.0):
    """``function(*args)`` in a fresh idle-priority process, paced to ``cpu_share``; its result.

    Its exception, if it raises one, is raised here.
    """
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    spawn = multiprocessing.get_context("spawn")  # no copy of the caller's threads and sockets
    with ProcessPoolExecutor(1, spawn, _become_idle, (level,)) as pool:
        if cpu_share >= 1:
            return pool.submit(function, *args).result()
        with Pacer(pool.submit(os.getpid).result(), cpu_share):
            return pool.submit(function, *args).result()


def _become_idle(log_level):
    setup_logging(log_level)  # the child logs its lines as the parent would
    # Killed with its parent: a parent gone while its Pacer had it stopped
    # would leave it stopped for good, holding the archive's lock.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _keep_freed_memory()
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):  # not Linux: the lowest nice value instead
        with contextlib.suppress(OSError):
            os.nice(19)


def _keep_freed_memory():
    """Have glibc keep the pass's freed arrays for the next chunk instead of unmapping them.

    A pass allocates and frees arrays of a few MB per chunk of rows (8-32 MB
    columns). By default glibc maps each from the kernel and unmaps it when
    freed, so every chunk page-faults its memory in again: 600,000 faults
    and 1.2 s of a day's 13 s of CPU. From the heap, kept up to 256 MB,
    they are reused; the peak memory stays the same (measured, RESULTS.md).
    Only in the pass's own process; a libc without mallopt is left as it is.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        for parameter, value in HEAP_SETTINGS:
            libc.mallopt(parameter, value)


class Pacer:
    """Lets process ``pid`` run ``share`` of every ``slice_seconds`` and stops it for the rest.

    SIGSTOP and SIGCONT (psutil's suspend and resume), from a thread of the
    parent: the pacing holds in SQLite's and the compressor's C loops, which
    a check in our own code between chunks would not reach. The process is
    always left running when the pacer ends.
    """

    def __init__(self, pid, share, slice_seconds=0.1):
        self.process = psutil.Process(pid)
        self.running = slice_seconds * share
        self.stopped = slice_seconds - self.running
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._pace, name="affair-archive-pacer", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()

    def _pace(self):
        with contextlib.suppress(psutil.NoSuchProcess):
            while not self.done.wait(self.running):
                self.process.suspend()
                try:
                    self.done.wait(self.stopped)
                finally:
                    self.process.resume()


def _archive_day(config, catalog, directory, day, pieces, now, summary):
    """Write, verify and catalog one day's file (or supplement); None, or the problem."""
    source = _Pieces(config, day, pieces)
    source.survey(HostMatcher(["*"]), ())  # counts by SQL, before anything is written
    if source.total() == 0:
        return None  # the rows past the old mark were other days': nothing to add
    part = next_part(catalog, day)
    return _write_verified(config, catalog, directory, day, part, source, pieces, now, summary)


def _write_verified(
    config, catalog, directory, day, part, source, pieces, now, summary, replacing=None
):
    """Write ``source`` (surveyed) as file ``part`` of ``day``, read it back, catalog it.

    ``replacing``: the damaged file whose rows these are; the rows copied
    must have its counts and checksums, else JournalRowsDiffer.
    """
    samples = source.total()
    name = archive_file_name(day, part)
    path = directory / name
    needed = samples * BYTES_PER_VALUE * (3 + source.widest)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(path.parent).free
    except OSError as error:
        return f"cannot use {path.parent}: {error.strerror or error}"
    floor = config.export.min_free
    if free - needed < floor:
        return (
            f"not written: {free} bytes free, {needed} needed and {floor} to be kept free "
            "([export] min_free); retried at the next pass"
        )
    try:
        _write(config, path, source)
    except ExportError as error:
        return str(error)
    expected = expected_of(source)
    if replacing is not None and expected["checksums"] != replacing.expected["checksums"]:
        _reject(path)
        raise JournalRowsDiffer("the journal's values differ from the ones the file held")
    expected["sources"] = sorted({piece.journal_day for piece in pieces})
    expected["rows"] = {piece.journal_day: [piece.after, piece.upto] for piece in pieces}
    if replacing is not None:
        expected["replaces"] = replacing.file
    problem = verify_file(path, expected)
    size = path.stat().st_size if path.exists() else 0
    if problem:  # out of the way of anyone chaining affair-*.root; kept to look at
        _reject(path)
    entry = ArchiveFile(
        day,
        part,
        name,
        size,
        samples,
        expected,
        now,
        None if problem else time.time(),
        problem or "",
    )
    catalog.add_file(entry)
    if problem is None:
        catalog.clear_failure(day)
        summary.written.append(entry)
        log.info("archived %s: %s, %d samples, verified", day, name, samples)
    return problem


def _write(config, path, source):
    """The day's file under a temporary name, renamed when whole (never a partial file)."""
    try:
        with (
            atomic_path(path, durable=True) as temporary,
            uproot.recreate(temporary, compression=uproot.ZSTD(1)) as sink,
        ):
            _export(sink, config, source, (), (), False)
    except OSError as error:
        raise ExportError(f"cannot write {path}: {error.strerror or error}") from None


# --- looking at it: affair archive list / verify ---


def list_archive(config):
    """Lines for ``affair archive list``: every file, failures, and the space left."""
    directory = archive_directory(config)
    catalog = ArchiveCatalog(directory)
    files = catalog.files()
    rebuilds = {(r.day, r.part): r for r in catalog.rebuilds()}
    lines = [f"archive {directory}: {len(files)} files, {sum(f.bytes for f in files)} bytes"]
    for entry in files:
        if entry.verified:
            state = f"verified {iso_utc(entry.verified)}"
        else:
            state = f"NOT VERIFIED: {entry.problem}{_rebuild_state(rebuilds, entry)}"
        kind = "supplement" if entry.part else "day"
        lines.append(
            f"{entry.day}  {kind:<10} {entry.file}  {entry.samples} samples  "
            f"{entry.bytes} bytes  {state}"
        )
    for failure in catalog.failures():
        lines.append(
            f"{failure.day}  FAILED {failure.attempts}x since {iso_utc(failure.first)}: "
            f"{failure.problem}"
        )
    try:
        free = shutil.disk_usage(directory).free
        lines.append(f"free space: {free} bytes (floor {config.export.min_free})")
    except OSError:
        lines.append(f"free space: unknown ({directory} does not exist yet)")
    return lines


def _size_problem(path, size):
    """A file cut short past its trees still reads back whole: its size says it is not."""
    try:
        found = path.stat().st_size
    except OSError as error:
        return f"cannot be looked at: {error.strerror or error}"
    if found != size:
        return f"{found} bytes, {size} when it was written and verified"
    return None


def _rebuild_state(rebuilds, entry):
    """What becomes of a damaged file, for the lines of list and verify."""
    rebuild = rebuilds.get((entry.day, entry.part))
    if rebuild is None:
        return ""
    if rebuild.rebuilt:
        return f"; replaced by {rebuild.rebuilt}"
    if rebuild.problem:
        return f"; cannot be rebuilt: {rebuild.problem}"
    return "; to be written again from the journal at the next pass"


def verify_archive(config, now=None):
    """Read every cataloged file back again; ``(lines, exit code)``.

    A file that no longer matches loses its verified mark and is marked to
    be rebuilt: the journal days it came from (if still there) are no
    longer deleted, and the next pass writes its rows again from them to a
    new file (the damaged one renamed ``*.rejected``). A file so replaced
    is no longer counted bad.
    """
    now = time.time() if now is None else now
    catalog = ArchiveCatalog(archive_directory(config))
    rebuilds = {(r.day, r.part): r for r in catalog.rebuilds()}
    lines, bad, replaced = [], 0, 0
    for entry in catalog.files():
        if not entry.verified:  # failed when written (or at an earlier verify): known bad
            state = _rebuild_state(rebuilds, entry)
            rebuild = rebuilds.get((entry.day, entry.part))
            if rebuild is not None and rebuild.rebuilt:
                replaced += 1
                lines.append(f"{entry.file}: damaged ({entry.problem}){state}")
                continue
            bad += 1
            lines.append(f"{entry.file}: NOT VERIFIED: {entry.problem}{state}")
            continue
        path = archive_directory(config) / entry.file
        problem = verify_file(path, entry.expected) or _size_problem(path, entry.bytes)
        if problem:
            bad += 1
            catalog.set_verified(entry.day, entry.part, None, problem)
            catalog.unverify_journal(set(entry.expected.get("sources", [])))
            catalog.record_failure(entry.day, f"{entry.file}: {problem}", now)
            catalog.mark_rebuild(entry.day, entry.part, now)
            lines.append(
                f"{entry.file}: BAD: {problem}; to be written again from the journal at the next pass"
            )
        else:
            catalog.set_verified(entry.day, entry.part, now, "")
            lines.append(f"{entry.file}: ok ({entry.samples} samples)")
    lines.append(f"{len(lines) - bad - replaced} files verified, {bad} bad")
    return lines, 1 if bad else 0
