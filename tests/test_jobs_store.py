"""The jobs table: merging sacct and live records, requeues, idempotent re-imports."""

import dataclasses

from conftest import REPO

from affair.storage.jobs import JobStore, merge_record
from affair.storage.sacct import JobRecord, host_of_node, parse_sacct

FIXTURE = REPO / "tests" / "data" / "sacct" / "allocations.txt"


def store_at(tmp_path):
    return JobStore(
        tmp_path / "jobs.sqlite", lambda node: host_of_node(node, {}), clock=lambda: 5.0
    )


def test_import_twice_changes_nothing_and_the_last_run_of_a_requeued_job_wins(tmp_path):
    lines = FIXTURE.read_text().splitlines()
    with store_at(tmp_path) as store:
        first = store.merge(parse_sacct(lines))
        assert (first.new, first.changed, first.unchanged) == (6, 0, 0)
        before = store.connection.execute("SELECT * FROM jobs ORDER BY jobid").fetchall()
        again = store.merge(parse_sacct(lines))
        assert (again.new, again.changed, again.unchanged) == (0, 0, 6)
        assert store.connection.execute("SELECT * FROM jobs ORDER BY jobid").fetchall() == before
        requeued = store.job("1837160")
        assert requeued.record.state == "RUNNING" and requeued.hosts == {"c006": "c006"}
        # the earlier run alone, later: older than what is held, ignored
        older = store.merge(parse_sacct(lines[5:6]))
        assert older.older == 1 and store.job("1837160").record.nodes == ("c006",)
        assert store.count() == 6
        assert [job.record.jobid for job in store.jobs()] == [
            "1837160",  # running, newest start first
            "1837140_2",
            "1837137",  # then finished, newest end first
            "1837150",
            "1837140_1",
        ]
        assert [job.record.jobid for job in store.jobs(host="c420-024")] == [
            "1837140_2",
            "1837140_1",
        ]


def test_a_live_end_fills_in_and_a_stale_running_line_does_not_undo_it(tmp_path):
    live = JobRecord("7", user="u", nodes=("n1", "bad/name"), start=100.0, source="live")
    with store_at(tmp_path) as store:
        store.merge([live])
        assert store.job("7").hosts == {"n1": "n1", "bad/name": None}
        store.merge([dataclasses.replace(live, end=200.0, state="COMPLETED")])
        store.merge([JobRecord("7", start=100.0, account="acct", state="RUNNING", source="sacct")])
        job = store.job("7").record
        assert (job.end, job.account, job.user, job.source) == (200.0, "acct", "u", "sacct")
        assert job.state == "COMPLETED"  # a line from while it ran does not reopen it


def test_merge_record_rules():
    old = JobRecord("1", start=10.0, end=20.0, user="a")
    assert merge_record(None, old) is old
    assert merge_record(old, JobRecord("1", start=5.0)) is None
    assert merge_record(old, JobRecord("1", start=30.0)) == JobRecord("1", start=30.0)
    assert merge_record(old, JobRecord("1", start=10.0, end=None, user="")) == old
