"""Raw samples wherever they live: the archive's verified files and the journal, each once.

``affair export --from/--to`` asks for a range; the analyst does not care
whether it is still in the journal (kept ``journal_days``) or only in the
permanent archive (:mod:`affair.outputs.archive`). The catalog says, per
journal file and sample day, up to which row the rows are in verified
archive files, so a sample is taken from the archive when it is covered
there and from the journal when not, never from both: supplements are
merged in, and days archived but still journaled are not doubled.
"""

import json
import logging
from contextlib import closing
from pathlib import Path

import numpy as np
import uproot

from affair.outputs.export import RawRowSource, _Found, _read_day, export_root
from affair.storage.archive_catalog import ArchiveCatalog
from affair.storage.journal import DAY_FILE_GLOB, day_start, open_day_readonly
from affair.storage.journal_reader import DayReader

log = logging.getLogger(__name__)

DAY = 86400
READ_STEP = "64 MB"


def export_everywhere(config, output, start=None, end=None, hosts=(), datasets=(), **options):
    """:func:`export_root` of raw samples from the archive and the journal together."""

    def source(config, start, end):
        return ArchivedSamples(config, start, end)

    return export_root(
        config, output, start, end, hosts, datasets, "raw", raw_source=source, **options
    )


def _overlaps(day, start, end):
    first = day_start(day)
    return (start is None or first + DAY > start) and (end is None or first < end)


class ArchivedSamples(RawRowSource):
    """A row source of :func:`affair.outputs.export._export`: archive files, then the journal."""

    def __init__(self, config, start, end):
        self.step = config.recorder.step
        self.start, self.end = start, end
        directory = Path(config.export.directory)
        catalog = ArchiveCatalog(directory)
        usable = [e for e in catalog.files() if e.verified and _overlaps(e.day, start, end)]
        self.files = [directory / entry.file for entry in usable]
        self.samples = sum(entry.samples for entry in usable)
        coverage = catalog.coverage()
        journal = Path(config.recorder.data_dir) / "_journal"
        self.pieces = []  # (path, where, parameters): the journal rows not in the archive
        for path in sorted(journal.glob(DAY_FILE_GLOB)) if journal.is_dir() else []:
            cover = coverage.get(path.stem)
            where, parameters = _not_covered(cover.days if cover else {}, start, end)
            self.pieces.append((path, where, parameters))

    def survey(self, matches, wanted):
        found = _Found()
        for path in self.files:
            with uproot.open(path) as root:
                metadata = json.loads(root["_affair/metadata"])
            for dataset, described in metadata["datasets"].items():
                found.present.add(dataset)
                if wanted and dataset not in wanted:
                    continue
                variables = [entry["variable"] for entry in described["branches"].values()]
                found.add_variables(dataset, variables)
            hosts = [h for h in metadata["hosts"] if matches(h)]
            found.hosts.update(hosts)
            found.instances.update(metadata["instances"])
        for path, where, parameters in self.pieces:
            with DayReader(path) as reader:
                counts = reader.count_by_series(where, parameters)
                for series_id in counts:
                    host, dataset, instance = reader.catalog.series_of(series_id)
                    found.add_series(host, dataset, instance, matches, wanted)
                found.add_day_variables(reader.catalog)
        return found

    def total(self):
        total = self.samples
        for path, where, parameters in self.pieces:
            with closing(open_day_readonly(path)) as connection:
                total += connection.execute(
                    f"SELECT count(*) FROM samples{where}", parameters
                ).fetchone()[0]
        return total

    def copy(self, export, trees, matches, hosts, instances, bar):
        for path in self.files:
            _copy_file(path, export, trees, matches, hosts, instances, self.start, self.end, bar)
        for path, where, parameters in self.pieces:
            with DayReader(path) as reader:

                def rows(chosen, reader=reader, where=where, parameters=parameters):
                    return reader.select(where, parameters, series_ids=chosen)

                _read_day(reader, export, trees, matches, hosts, instances, None, None, bar, rows)


def _not_covered(days, start, end):
    """A WHERE clause for the rows in [start, end) that no verified archive file holds."""
    clauses, parameters = [], []
    if start is not None:
        clauses.append("ts >= ?")
        parameters.append(float(start))
    if end is not None:
        clauses.append("ts < ?")
        parameters.append(float(end))
    for sample_day, rowid in sorted(days.items()):
        if rowid > 0:
            first = day_start(sample_day)
            clauses.append("NOT (ts >= ? AND ts < ? AND id <= ?)")
            parameters += [first, first + DAY, rowid]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(parameters)


def _copy_file(path, export, trees, matches, hosts, instances, start, end, bar):
    """One archive file's rows in [start, end) of the wanted hosts, into the export's trees."""
    with uproot.open(path) as root:
        metadata = json.loads(root["_affair/metadata"])
        file_hosts = metadata["hosts"]
        host_index = np.array([hosts.get(h) if matches(h) else -1 for h in file_hosts], np.int64)
        instance_index = np.array([instances.get(i) for i in metadata["instances"]], np.int64)
        for dataset, described in metadata["datasets"].items():
            tree = trees.get(dataset)
            if tree is None or not file_hosts:
                continue
            branches = {b: entry["variable"] for b, entry in described["branches"].items()}
            for arrays in root[dataset].iterate(
                ["time", "host", "instance", *branches], step_size=READ_STEP, library="np"
            ):
                times = arrays["time"]
                host = host_index[arrays["host"]]
                keep = host >= 0
                if start is not None:
                    keep &= times >= start
                if end is not None:
                    keep &= times < end
                if not keep.any():
                    continue
                matrix = np.full((int(keep.sum()), tree.width), np.nan)
                for branch, variable in branches.items():
                    column = tree.column_of.get(variable)
                    if column is not None:
                        matrix[:, column] = arrays[branch][keep]
                export.add(
                    tree,
                    times[keep],
                    host[keep].astype(np.int32),
                    instance_index[arrays["instance"][keep]].astype(np.int32),
                    matrix,
                )
                bar.update(int(keep.sum()))
