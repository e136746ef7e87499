"""``affair query``: read-only SQL over the raw archive, its views, and its refusals."""

import hashlib
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

from affair.config import parse_config
from affair.errors import QueryError
from affair.ingest.validate import Sample
from affair.outputs.query import execute, open_journal, parse_parameters
from affair.storage.journal import Journal

DAY2 = 1_700_006_400  # 2023-11-15 00:00 UTC


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def archive_dir(tmp_path):
    """Two day files: gdc01/gdc02/ldc01 with cpu and a write counter, one late sample."""
    clock = Clock(DAY2 - 100)
    journal = Journal(tmp_path / "data" / "_journal", clock=clock)
    journal.append(
        [
            Sample(0, DAY2 - 3600, "gdc01", "system", "", {"cpu_user": 95.0, "disk_write": 1000.0}),
            Sample(0, DAY2 - 3600, "gdc02", "system", "", {"cpu_user": 50.0, "disk_write": 10.0}),
            Sample(0, DAY2 - 3600, "ldc01", "system", "", {"cpu_user": 99.0, "disk_write": 0.0}),
            Sample(0, DAY2 - 1800, "gdc01", "system", "", {"cpu_user": 91.0, "disk_write": 4000.0}),
            Sample(0, DAY2 - 1800, "ldc01", "disks", "sda", {"used": 0.5}),
        ]
    )
    clock.now = DAY2 + 100
    journal.append(
        [
            Sample(0, DAY2 - 1800, "gdc02", "system", "", {"cpu_user": 92.0, "disk_write": 510.0}),
            Sample(0, DAY2 + 60, "gdc01", "system", "", {"cpu_user": None, "ts": 7.0}),
        ]
    )
    journal.close()
    config = textwrap.dedent(
        f"""
        [recorder]
        data_dir = "{tmp_path / "data"}"

        [datasets.system.variables]
        cpu_user = {{ type = "GAUGE", unit = "%" }}
        disk_write = {{ type = "DERIVE", unit = "B/s" }}

        [datasets.empty.variables]
        nothing = {{ type = "GAUGE" }}

        [queries.written]
        description = "bytes written by matching hosts"
        sql = "SELECT sum(b) AS bytes FROM (SELECT max(disk_write) - min(disk_write) AS b FROM system WHERE host GLOB :hosts GROUP BY host)"
        """
    )
    (tmp_path / "affair.toml").write_text(config)
    return tmp_path


def config_of(directory):
    import tomllib

    path = directory / "affair.toml"
    return parse_config(tomllib.loads(path.read_text()), path)


def rows_of(config, sql, parameters=(), **kwargs):
    journal = open_journal(config)
    try:
        result = execute(journal, sql, parameters, **kwargs)
        return next(result), list(result)
    finally:
        journal.connection.close()


def test_dataset_views_span_every_day_file(archive_dir):
    config = config_of(archive_dir)
    columns, rows = rows_of(
        config, "SELECT ts, host, cpu_user, disk_write FROM system ORDER BY ts, host"
    )
    assert columns == ["ts", "host", "cpu_user", "disk_write"]
    assert rows == [
        (DAY2 - 3600, "gdc01", 95.0, 1000.0),
        (DAY2 - 3600, "gdc02", 50.0, 10.0),
        (DAY2 - 3600, "ldc01", 99.0, 0.0),
        (DAY2 - 1800, "gdc01", 91.0, 4000.0),
        (DAY2 - 1800, "gdc02", 92.0, 510.0),  # the late one, from the second file
        (DAY2 + 60, "gdc01", None, None),
    ]
    # a variable named like a fixed column keeps both
    _, rows = rows_of(config, "SELECT ts, v_ts FROM system WHERE v_ts IS NOT NULL")
    assert rows == [(DAY2 + 60, 7.0)]


def test_the_issues_examples(archive_dir):
    config = config_of(archive_dir)
    hot = f"SELECT count(DISTINCT host) FROM system WHERE cpu_user > 90 AND ts >= {DAY2 - 3600}"
    assert rows_of(config, hot)[1] == [(3,)]
    assert rows_of(config, config.query.named["written"].sql, {"hosts": "gdc*"})[1] == [(3500.0,)]


def test_latest_views(archive_dir):
    config = config_of(archive_dir)
    _, rows = rows_of(config, "SELECT host, ts, cpu_user FROM latest_system ORDER BY host")
    assert rows == [
        ("gdc01", DAY2 + 60, None),
        ("gdc02", DAY2 - 1800, 92.0),
        ("ldc01", DAY2 - 3600, 99.0),
    ]
    _, rows = rows_of(
        config,
        "SELECT host, dataset, instance, variable, value FROM latest"
        " WHERE value IS NOT NULL ORDER BY host, dataset, variable",
    )
    assert rows == [
        ("gdc01", "system", "", "ts", 7.0),  # the variable's own name, not its column's
        ("gdc02", "system", "", "cpu_user", 92.0),
        ("gdc02", "system", "", "disk_write", 510.0),
        ("ldc01", "disks", "sda", "used", 0.5),
        ("ldc01", "system", "", "cpu_user", 99.0),
        ("ldc01", "system", "", "disk_write", 0.0),
    ]


def test_a_declared_dataset_without_data_is_an_empty_view(archive_dir):
    assert rows_of(config_of(archive_dir), "SELECT * FROM empty") == (
        ["ts", "host", "instance", "received", "nothing"],
        [],
    )


def digest(directory):
    """The journal's content: each day file and its WAL (a missing WAL is an empty one).

    The -shm file is SQLite's shared-memory index of the WAL, which any
    reader may create; it holds no data.
    """
    content = {}
    for path in sorted((directory / "data" / "_journal").glob("*.sqlite")):
        wal = path.with_name(path.name + "-wal")
        content[path.name] = (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            hashlib.sha256(wal.read_bytes() if wal.exists() else b"").hexdigest(),
        )
    return content


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM d0.samples", "this DELETE statement would delete from samples"),
        ("UPDATE d1.samples SET ts = 0", "this UPDATE statement would update samples"),
        ("INSERT INTO d0.series (host, dataset) VALUES ('x', 'y')", "would insert into series"),
        ("DROP VIEW system", "this DROP statement would"),
        ("CREATE TABLE t (x)", "this CREATE statement would"),
        ("ATTACH DATABASE 'evil.db' AS evil", "this ATTACH statement would attach evil.db"),
        ("PRAGMA query_only = OFF", "this PRAGMA statement would pragma query_only"),
    ],
)
def test_a_write_is_refused_and_changes_nothing(archive_dir, sql, message):
    config = config_of(archive_dir)
    before = digest(archive_dir)
    with pytest.raises(QueryError, match="refused: affair query only reads the archive") as error:
        rows_of(config, sql)
    assert message in str(error.value)
    assert digest(archive_dir) == before
    assert rows_of(config, "SELECT count(*) FROM system")[1] == [(6,)]
    assert not (archive_dir / "evil.db").exists()


def test_syntax_errors_time_limits_and_unknown_tables_say_so(archive_dir):
    config = config_of(archive_dir)
    before = digest(archive_dir)
    with pytest.raises(QueryError, match='SQL error: near "SELEC": syntax error'):
        rows_of(config, "SELEC * FROM system")
    with pytest.raises(QueryError, match=r"one statement at a time"):
        rows_of(config, "SELECT 1; DELETE FROM d0.samples")
    with pytest.raises(
        QueryError,
        match=r"no such table: sytem \(views: affair, latest_affair, delivery, .*, system, latest_system, latest\)",
    ):
        rows_of(config, "SELECT * FROM sytem")
    forever = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    )
    with pytest.raises(QueryError, match=r"stopped: the query ran past its time limit of 0.3s"):
        rows_of(config, forever, timeout=0.3)
    assert digest(archive_dir) == before
    assert rows_of(config, "SELECT count(*) FROM system")[1] == [(6,)]


def test_parameters_become_numbers_when_they_look_like_numbers():
    assert parse_parameters(["a=90", "b=0.5", "c=gdc*"]) == {"a": 90, "b": 0.5, "c": "gdc*"}
    with pytest.raises(QueryError, match="expected NAME=VALUE"):
        parse_parameters(["novalue"])


def run_cli(directory, *arguments):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "affair",
            "query",
            "--config",
            str(directory / "affair.toml"),
            *arguments,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


@pytest.mark.integration
def test_command_line_table_csv_named_query_and_errors(archive_dir):
    table = run_cli(archive_dir, "SELECT host, cpu_user FROM latest_system ORDER BY host")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines() == [
        "host   cpu_user",
        "-----  --------",
        "gdc01  NULL",
        "gdc02  92",
        "ldc01  99",
        "(3 rows)",
    ]
    csv = run_cli(
        archive_dir,
        "--csv",
        "SELECT ts, host, cpu_user FROM system WHERE host = 'gdc01' ORDER BY ts",
    )
    assert csv.stdout.splitlines() == [
        "ts,host,cpu_user",
        f"{DAY2 - 3600},gdc01,95",
        f"{DAY2 - 1800},gdc01,91",
        f"{DAY2 + 60},gdc01,",
    ]
    named = run_cli(archive_dir, "--csv", "written", "--param", "hosts=ldc*")
    assert named.stdout.splitlines() == ["bytes", "0"]
    listing = run_cli(archive_dir, "--list")
    assert "  written: bytes written by matching hosts" in listing.stdout
    assert "  system: ts, host, instance, received, cpu_user, disk_write, v_ts" in listing.stdout
    refused = run_cli(archive_dir, "DELETE FROM system")
    assert refused.returncode == 2
    assert refused.stderr == (
        "affair query: refused: affair query only reads the archive"
        " (cannot modify system because it is a view)\n"
    )
    ranged = run_cli(
        archive_dir, "--csv", "--from", "2023-11-15T00:00:30", "SELECT count(*) FROM system"
    )
    assert ranged.stdout.splitlines() == ["count(*)", "2"]  # only the second day file is read
    but_gdc02 = run_cli(
        archive_dir,
        "--csv",
        "--hosts",
        "*, !gdc02",
        "SELECT host, count(*) FROM system GROUP BY host ORDER BY host",
    )
    assert but_gdc02.stdout.splitlines() == ["host,count(*)", "gdc01,3", "ldc01,1"]
    latest = run_cli(archive_dir, "--csv", "--hosts", "ldc*", "SELECT DISTINCT host FROM latest")
    assert latest.stdout.splitlines() == ["host", "ldc01"]


def test_job_samples_joins_a_job_to_its_nodes_samples_over_its_run(archive_dir):
    from affair.storage.jobs import JobStore, jobs_path
    from affair.storage.sacct import JobRecord

    config = config_of(archive_dir)
    with JobStore(jobs_path(config.recorder.data_dir)) as store:
        store.merge(
            [
                JobRecord("10", start=DAY2 - 3600, end=DAY2, nodes=("gdc01", "gdc02"), user="u"),
                JobRecord("11", start=DAY2 - 1800, end=None, nodes=("ldc01",)),
            ]
        )
    columns, rows = rows_of(
        config,
        "SELECT jobid, node, avg(cpu_user), count(*) FROM job_samples GROUP BY jobid, node",
    )
    assert columns == ["jobid", "node", "avg(cpu_user)", "count(*)"]
    # ldc01's one system sample is before job 11 started: no rows for it
    assert rows == [("10", "gdc01", 93.0, 2), ("10", "gdc02", 71.0, 2)]
    _, jobs = rows_of(config, "SELECT jobid, user, end_ts FROM jobs ORDER BY jobid")
    assert jobs == [("10", "u", float(DAY2)), ("11", "", None)]
