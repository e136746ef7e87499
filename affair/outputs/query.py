"""``affair query``: read-only SQL over the raw archive.

The journal's day files are attached read-only to an in-memory database,
and temporary views make them convenient (every view spans all the
attached days):

    <dataset>          ts, host, instance, received, one column per variable
    latest_<dataset>   the newest sample of each (host, instance) of the dataset
    latest             host, dataset, instance, ts, variable, value: the newest
                       value of every variable of every series
    jobs, job_nodes    the jobs table (affair.storage.jobs), when there is one
    job_samples        jobid, node, then the [jobs] dataset's columns: each job's
                       nodes' samples over its run
    link_ends          the links dataset with each end's link spelled out: source,
                       target, side ('out' or 'in'), and the link variables
                       (affair.config.criteria defines it)

e.g. ``SELECT count(DISTINCT host) FROM system WHERE cpu_user > 90 AND
ts > unixepoch('now', '-1 hour')``. Times are Unix seconds (UTC);
``datetime(ts, 'unixepoch')`` prints one. Counters are raw, as the
collectors send them.

Nothing can be written, three ways over: the files are opened with
``mode=ro``, the connection is ``query_only``, and an authorizer allows
only reading (SELECT, reads, functions, recursive CTEs, a few informational
pragmas), so a write statement is refused before it runs, with the action
named. A progress handler stops a query that runs past the time limit.

SQLite attaches at most 10 databases, so one query sees at most 10 day
files: all of them when they are that few, else the newest 10 (said on
stderr), or those holding the ``--from``/``--to`` range.
"""

import csv
import math
import re
import sqlite3
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from affair.config.criteria import LINK_COLUMNS, link_ends_view, link_part
from affair.errors import QueryError
from affair.hosts import HostMatcher
from affair.names import view_columns
from affair.storage.jobs import jobs_path
from affair.storage.journal import DayCatalog, open_day_readonly
from affair.storage.journal_reader import day_spans
from affair.times import parse_duration, parse_time
from affair.vocab import LINK_DATASET

_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
_ALLOWED.add(getattr(sqlite3, "SQLITE_RECURSIVE", 33))
_INFO_PRAGMAS = {"table_info", "table_xinfo", "table_list", "function_list", "database_list"}
_ACTIONS = {
    getattr(sqlite3, f"SQLITE_{name}"): {"DELETE": "delete from", "INSERT": "insert into"}.get(
        name, name.replace("_", " ")
    )
    for name in [
        "CREATE_INDEX",
        "CREATE_TABLE",
        "CREATE_TEMP_INDEX",
        "CREATE_TEMP_TABLE",
        "CREATE_TEMP_TRIGGER",
        "CREATE_TEMP_VIEW",
        "CREATE_TRIGGER",
        "CREATE_VIEW",
        "DELETE",
        "DROP_INDEX",
        "DROP_TABLE",
        "DROP_TEMP_INDEX",
        "DROP_TEMP_TABLE",
        "DROP_TEMP_TRIGGER",
        "DROP_TEMP_VIEW",
        "DROP_TRIGGER",
        "DROP_VIEW",
        "INSERT",
        "PRAGMA",
        "TRANSACTION",
        "UPDATE",
        "ATTACH",
        "DETACH",
        "ALTER_TABLE",
        "REINDEX",
        "ANALYZE",
        "CREATE_VTABLE",
        "DROP_VTABLE",
        "SAVEPOINT",
    ]
    if hasattr(sqlite3, f"SQLITE_{name}")
}
_F64 = struct.Struct("<d")


def value_at(blob, position):
    """The variable at ``position`` of a journal values BLOB; NULL when unknown or absent."""
    offset = 8 * position
    if blob is None or offset + 8 > len(blob):
        return None
    value = _F64.unpack_from(blob, offset)[0]
    return None if math.isnan(value) else value


def _identifier(name):
    return '"' + name.replace('"', '""') + '"'


def _literal(text):
    return "'" + text.replace("'", "''") + "'"


@dataclass
class JournalViews:
    """The journal's day files attached read-only, with a view per dataset."""

    connection: sqlite3.Connection
    days: list  # the attached day files' names
    views: dict = field(default_factory=dict)  # view name -> [columns]
    notes: list = field(default_factory=list)  # said on stderr before the result


def open_journal(config, start=None, end=None, hosts=()):
    """Attach the day files (those holding ``[start, end)`` when given) and build the views.

    ``hosts``: globs (``!`` excludes, as everywhere): every view then holds
    only those hosts' rows; empty, every host.
    """
    journal = Path(config.recorder.data_dir) / "_journal"
    spans = day_spans(journal, start, end) if journal.is_dir() else []
    connection = sqlite3.connect("file::memory:", uri=True, check_same_thread=False)
    limit = connection.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED)
    jobs_file = jobs_path(config.recorder.data_dir)
    if jobs_file.exists():
        limit -= 1  # the jobs table takes one attachment
    notes = []
    if len(spans) > limit:
        if start is not None or end is not None:
            connection.close()
            raise QueryError(
                f"the range holds {len(spans)} day files; SQLite attaches at most {limit} "
                "at once: narrow --from/--to"
            )
        spans = sorted(spans, key=lambda span: span.day)[-limit:]
        notes.append(
            f"the archive holds more than {limit} day files; querying the newest {limit} "
            f"(from {spans[0].day}); use --from/--to for others"
        )
    connection.create_function("value_at", 2, value_at, deterministic=True)
    connection.create_function("link_part", 2, link_part, deterministic=True)
    connection.create_function("host_selected", 1, HostMatcher(hosts or ["*"]), deterministic=True)
    files = []  # (schema name, catalog)
    for index, span in enumerate(spans):
        schema = f"d{index}"
        reader = open_day_readonly(span.path)
        try:
            catalog = DayCatalog(reader, span.path)
        finally:
            reader.close()
        connection.execute(f"ATTACH DATABASE ? AS {schema}", (f"file:{span.path}?mode=ro",))
        files.append((schema, catalog))
    journal = JournalViews(connection, [span.day for span in spans], notes=notes)
    _create_views(journal, config, files)
    if jobs_file.exists():
        connection.execute(f"ATTACH DATABASE ? AS {JOBS_SCHEMA}", (f"file:{jobs_file}?mode=ro",))
        _create_job_views(journal, config)
    connection.execute("PRAGMA query_only = ON")
    return journal


def _create_views(journal, config, files):
    datasets = {name: list(dataset.variables) for name, dataset in config.datasets.items()}
    for _, catalog in files:
        for _host, dataset, _instance in catalog.series.values():
            datasets.setdefault(dataset, [])
        for dataset, names in catalog.variables.items():
            known = datasets.setdefault(dataset, [])
            known += [name for name in names if name not in known]
    latest_arms = []
    for dataset in sorted(datasets):
        columns = view_columns(datasets[dataset])
        arms, latest = [], []
        for schema, catalog in files:
            positions = {n: p for p, n in enumerate(catalog.variables.get(dataset, []))}
            cells = ", ".join(
                (f"value_at(x.vals, {positions[v]})" if v in positions else "NULL")
                + f" AS {_identifier(c)}"
                for v, c in columns.items()
            )
            cells = f", {cells}" if cells else ""
            head = (
                "SELECT x.ts AS ts, s.host AS host, s.instance AS instance, x.received AS received"
            )
            arms.append(
                f"{head}{cells} FROM {schema}.samples AS x JOIN {schema}.series AS s"
                f" ON s.id = x.series WHERE s.dataset = {_literal(dataset)}"
                " AND host_selected(s.host)"
            )
            latest.append(
                f"{head}{cells} FROM {schema}.series AS s JOIN {schema}.samples AS x"
                f" ON x.series = s.id AND x.ts = (SELECT max(ts) FROM {schema}.samples"
                f" WHERE series = s.id) WHERE s.dataset = {_literal(dataset)}"
                " AND host_selected(s.host)"
            )
        if not arms:  # declared but never recorded: an empty view, so queries still run
            cells = "".join(f", NULL AS {_identifier(c)}" for c in columns.values())
            empty = f"SELECT NULL AS ts, NULL AS host, NULL AS instance, NULL AS received{cells} WHERE 0"
            arms, latest = [empty], [empty]
        names = ["ts", "host", "instance", "received", *columns.values()]
        bare = ", ".join(_identifier(c) for c in ["received", *columns.values()])
        if _create_view(journal, dataset, " UNION ALL ".join(arms), names):
            latest_view = f"latest_{dataset}"
            body = (
                f"SELECT host, instance, max(ts) AS ts, {bare}"
                f" FROM ({' UNION ALL '.join(latest)}) GROUP BY host, instance"
            )
            if _create_view(
                journal,
                latest_view,
                body,
                ["host", "instance", "ts", "received", *columns.values()],
            ):
                latest_arms += [
                    f"SELECT host, {_literal(dataset)} AS dataset, instance, ts,"
                    f" {_literal(variable)} AS variable, {_identifier(column)} AS value"
                    f" FROM {_identifier(latest_view)}"
                    for variable, column in columns.items()
                ]
            if dataset == LINK_DATASET:
                ends = ["ts", "host", "instance", "received", "source", "target", "side"]
                _create_view(journal, "link_ends", link_ends_view(), ends + list(LINK_COLUMNS))
    if latest_arms:
        _create_view(
            journal,
            "latest",
            " UNION ALL ".join(latest_arms),
            ["host", "dataset", "instance", "ts", "variable", "value"],
        )


JOBS_SCHEMA = "jobsdb"


def _create_job_views(journal, config):
    """``jobs``, ``job_nodes`` and ``job_samples``: a job joined to its nodes' samples over its run.

    ``job_samples`` has the job's id and Slurm node name in front of the
    columns of ``[jobs] dataset``'s view, for every sample of the job's hosts
    from its start to its end (now, while it runs): "mean CPU of job X per
    node" is ``SELECT node, avg(cpu_user) FROM job_samples WHERE jobid = 'X'
    GROUP BY node``.
    """
    columns = [
        row[1] for row in journal.connection.execute(f"PRAGMA {JOBS_SCHEMA}.table_info(jobs)")
    ]
    _create_view(journal, "jobs", f"SELECT * FROM {JOBS_SCHEMA}.jobs", columns)
    _create_view(
        journal,
        "job_nodes",
        f"SELECT jobid, node, host FROM {JOBS_SCHEMA}.job_nodes",
        ["jobid", "node", "host"],
    )
    dataset = config.jobs.dataset
    if dataset not in journal.views:
        journal.notes.append(f"no view job_samples: no view of [jobs] dataset {dataset!r}")
        return
    _create_view(
        journal,
        "job_samples",
        f"SELECT j.jobid AS jobid, n.node AS node, d.* FROM {JOBS_SCHEMA}.jobs AS j"
        f" JOIN {JOBS_SCHEMA}.job_nodes AS n ON n.jobid = j.jobid"
        f" JOIN {_identifier(dataset)} AS d ON d.host = n.host"
        " AND d.ts >= j.start_ts AND d.ts <= coalesce(j.end_ts, 9e18)"
        " WHERE j.start_ts IS NOT NULL",
        ["jobid", "node", *journal.views[dataset]],
    )


def _create_view(journal, name, body, columns):
    if name.lower() in (view.lower() for view in journal.views):
        journal.notes.append(f"no view {name!r}: a dataset's view has that name already")
        return False
    journal.connection.execute(f"CREATE TEMP VIEW {_identifier(name)} AS {body}")
    journal.views[name] = columns
    return True


def execute(journal, sql, parameters=(), timeout=30.0, clock=time.monotonic):
    """Run one read-only statement; yield the column names, then the rows.

    Every failure becomes a QueryError that says what happened: a refused
    write, an SQL error, or the time limit.
    """
    connection = journal.connection
    refused = []
    deadline = clock() + timeout

    def authorize(action, first, _second, database, _trigger):
        if action in _ALLOWED or (action == sqlite3.SQLITE_PRAGMA and first in _INFO_PRAGMAS):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_UPDATE and first == "sqlite_master" and database == "main":
            # asked while a pragma table-valued function (pragma_table_info) is set
            # up; main is the empty in-memory database, and query_only holds anyway
            return sqlite3.SQLITE_OK
        refused.append((_ACTIONS.get(action, f"action {action}"), first or ""))
        return sqlite3.SQLITE_DENY

    connection.set_authorizer(authorize)
    connection.set_progress_handler(lambda: 1 if clock() > deadline else 0, 10_000)
    try:
        cursor = connection.execute(sql, parameters)
        yield [item[0] for item in cursor.description or ()]
        while rows := cursor.fetchmany(1000):
            yield from rows
    except (sqlite3.Error, ValueError, OverflowError) as error:
        raise _explain(error, refused, timeout, journal, sql) from None
    finally:
        connection.set_progress_handler(None, 0)
        connection.set_authorizer(None)


def _explain(error, refused, timeout, journal, sql):
    text = str(error)
    if refused:
        # The statement's own action, rather than the schema bookkeeping it implies.
        action, target = refused[0]
        keyword = re.match(r"(?:\s|--[^\n]*\n|/\*.*?\*/)*(\w*)", sql, re.DOTALL).group(1)
        return QueryError(
            f"refused: affair query only reads the archive, and this {keyword.upper()} "
            f"statement would {action.lower()} {target}".rstrip().replace("  ", " ")
        )
    if "cannot modify" in text or "readonly database" in text:
        return QueryError(f"refused: affair query only reads the archive ({text})")
    if text == "interrupted":
        return QueryError(
            f"stopped: the query ran past its time limit of {timeout:g}s "
            "(--timeout, or [query] timeout in the config)"
        )
    if isinstance(error, sqlite3.ProgrammingError) and "one statement" in text:
        return QueryError("one statement at a time: remove everything after the first ';'")
    if text.startswith("no such table"):
        views = ", ".join(journal.views) or "none: the archive is empty"
        return QueryError(f"SQL error: {text} (views: {views})")
    return QueryError(f"SQL error: {text}")


def parse_parameters(items):
    """``["name=value", ...]`` -> {name: value}; numbers become numbers, so they compare as such."""
    parameters = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise QueryError(f"--param {item!r}: expected NAME=VALUE")
        for convert in (int, float):
            try:
                value = convert(value)
                break
            except ValueError:
                continue
        parameters[name] = value
    return parameters


# --- printing ---


def format_cell(value, null="NULL"):
    if value is None:
        return null
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def print_table(rows_iter, max_rows, out):
    columns = next(rows_iter)
    rows = []
    more = False
    for row in rows_iter:
        if len(rows) == max_rows:
            more = True
            break
        rows.append([format_cell(value) for value in row])
    widths = [len(c) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out
        )
    tail = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    if more:
        tail += f" shown; more not shown ([query] max_rows = {max_rows}; --csv prints all)"
    print(f"({tail})", file=out)


def print_csv(rows_iter, out):
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(next(rows_iter))
    for row in rows_iter:
        writer.writerow([format_cell(value, null="") for value in row])


def print_catalog(config, journal, out):
    print("named queries ([queries.<name>] in the config):", file=out)
    for name, named in config.query.named.items():
        print(f"  {name}: {named.description or named.sql}", file=out)
    if not config.query.named:
        print("  (none)", file=out)
    days = f"{journal.days[0]} to {journal.days[-1]}" if journal.days else "no day files"
    print(f"views ({days}):", file=out)
    for name, columns in journal.views.items():
        print(f"  {name}: {', '.join(columns)}", file=out)


def main(config, args, out=None):
    """``affair query``'s body: resolve the query, open the archive, print the result."""
    out = out or sys.stdout
    now = time.time()
    try:
        start = parse_time(args.start, now) if args.start else None
        end = parse_time(args.end, now) if args.end else None
        timeout = parse_duration(args.timeout) if args.timeout else config.query.timeout
    except ValueError as error:
        raise QueryError(str(error)) from None
    if not args.list and not args.sql:
        raise QueryError("give an SQL query or the name of one in [queries] (--list shows them)")
    named = config.query.named.get(args.sql) if args.sql else None
    sql = named.sql if named else args.sql
    parameters = parse_parameters(args.param)
    journal = open_journal(config, start, end, args.hosts)
    try:
        for note in journal.notes:
            print(f"affair query: {note}", file=sys.stderr)
        if args.list:
            print_catalog(config, journal, out)
            return 0
        rows = execute(journal, sql, parameters, timeout)
        if args.csv:
            print_csv(rows, out)
        else:
            print_table(rows, config.query.max_rows, out)
    finally:
        journal.connection.close()
    return 0
