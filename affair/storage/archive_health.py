"""How the station keeps its samples: archive and journal sizes, free space, days not archived.

Read by the recorder (its own metrics), ``affair status`` and the index
page, so it lives in storage, beside the catalog. Pure apart from
:func:`measure`, which looks at the disk; :func:`judge` turns a measure
into a colour, with the clock passed in.

Colours: a journal day (or a sample day that failed) not archived a day
after it ended is yellow, and red after ``journal_days``: by then the
recorder would have deleted it, and only the guard keeps it. A file system
below ``[export] min_free`` is yellow (the archive stops writing there),
below half of it red. An archive directory that cannot be written is red,
and so is a damaged archive file that the journal no longer holds the rows
to rebuild (those samples are lost), whatever its age.
"""

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from affair.storage.archive_catalog import ArchiveCatalog, archive_file_name
from affair.storage.journal import DAY_FILE_GLOB, day_name, day_start

DAY = 86400


@dataclass(frozen=True)
class Measure:
    journal_bytes: int
    journal_free: int | None  # None: the file system cannot be asked
    archive_bytes: int
    archive_free: int | None
    archive_writable: bool
    unarchived: tuple[str, ...]  # finished journal days not (yet) archived and verified
    failed: tuple[tuple[str, str], ...]  # (sample day, problem) the archive could not write
    catalog_problem: str = ""  # the catalog could not be read
    lost: tuple[tuple[str, str], ...] = ()  # (sample day, why) damaged files not rebuildable


@dataclass(frozen=True)
class Health:
    colour: str  # green, yellow, red
    problems: list[str] = field(default_factory=list)


def _free(path):
    for candidate in (path, *path.parents):  # the directory may not exist yet
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def _size(paths):
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):  # deleted by retention meanwhile
            total += path.stat().st_size
    return total


def measure(config, data_dir=None, now=None) -> Measure:
    """Sizes and free space of the journal and the archive, and the days not archived."""
    journal = Path(data_dir or config.recorder.data_dir) / "_journal"
    directory = Path(config.export.directory)
    catalog = ArchiveCatalog(directory)
    today = day_name(now) if now is not None else None
    try:
        archived = catalog.archived_journal_days()
        archive_bytes = catalog.total_bytes()
        lost = tuple(
            (
                r.day,
                f"{archive_file_name(r.day, r.part)} is damaged and cannot be rebuilt: {r.problem}",
            )
            for r in catalog.rebuilds()
            if r.pending and r.problem
        )
        lost_days = {day for day, _ in lost}
        failed = tuple((f.day, f.problem) for f in catalog.failures() if f.day not in lost_days)
        catalog_problem = ""
    except sqlite3.Error as error:
        archived, archive_bytes, failed, lost = set(), 0, (), ()
        catalog_problem = f"the archive catalog {catalog.path} cannot be read: {error}"
    days = sorted(p.stem for p in journal.glob(DAY_FILE_GLOB)) if journal.is_dir() else []
    files = sorted(journal.glob("????-??-??.sqlite*")) if journal.is_dir() else []
    return Measure(
        journal_bytes=_size(files),
        journal_free=_free(journal),
        archive_bytes=archive_bytes,
        archive_free=_free(directory),
        archive_writable=archive_writable(directory),
        unarchived=tuple(d for d in days if d not in archived and (today is None or d < today)),
        failed=failed,
        catalog_problem=catalog_problem,
        lost=lost,
    )


def archive_writable(directory: Path) -> bool:
    """Can the archive write in ``directory``, or make it?"""
    if directory.exists():
        return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)
    for parent in directory.parents:  # the archive pass would make it
        if parent.exists():
            return parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)
    return False


def judge(measure: Measure, config, now: float) -> Health:
    """The station's colour for keeping its samples, and why."""
    if not config.export.enabled:
        return Health("green")
    problems = []
    worst = "green"

    def flag(colour, text):
        nonlocal worst
        problems.append(f"{colour}: {text}")
        if colour == "red" or worst == "green":
            worst = colour

    red_after = config.recorder.journal_days * DAY
    if measure.catalog_problem:
        flag("red", measure.catalog_problem)
    if not measure.archive_writable:
        flag("red", f"the archive directory {config.export.directory} is not writable")
    for day, text in measure.lost:  # no age makes this better: the samples are gone
        flag("red", f"{day}: {text}")
    late = [(day, f"journal day {day} not archived") for day in measure.unarchived]
    late += [(day, f"{day} failed to archive ({problem})") for day, problem in measure.failed]
    for day, text in late:
        age = now - day_start(day) - DAY  # since the day ended
        if age > red_after:
            flag("red", f"{text}, {age / DAY:.1f} days after it ended")
        elif age > DAY:
            flag("yellow", f"{text}, {age / DAY:.1f} days after it ended")
    floor = config.export.min_free
    for what, free in (("archive", measure.archive_free), ("journal", measure.journal_free)):
        if free is None:
            continue
        if free < floor / 2:
            flag("red", f"{what} file system: {free} bytes free, below half of min_free")
        elif free < floor:
            flag("yellow", f"{what} file system: {free} bytes free, below min_free ({floor})")
    return Health(worst, problems)


def self_values(measure: Measure) -> dict[str, float | None]:
    """The recorder's own gauges of it (the ``affair`` dataset)."""
    return {
        "journal_bytes": float(measure.journal_bytes),
        "journal_free": None if measure.journal_free is None else float(measure.journal_free),
        "archive_bytes": float(measure.archive_bytes),
        "archive_free": None if measure.archive_free is None else float(measure.archive_free),
        "days_unarchived": float(len(measure.unarchived)),
    }
