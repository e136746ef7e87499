"""Slurm accounting lines -> job records: the 26-field format and its quirks."""

import pytest
from conftest import REPO

from affair.storage.sacct import (
    SACCT_FIELDS,
    BadSacctLine,
    check_job_id,
    expand_nodelist,
    host_of_node,
    parse_elapsed,
    parse_sacct,
)

FIXTURE = REPO / "tests" / "data" / "sacct" / "allocations.txt"


def records(text, errors=None):
    return list(parse_sacct(text.splitlines(), errors))


def test_the_26_field_format_with_arrays_requeues_and_cancellations():
    errors = []
    jobs = list(parse_sacct(FIXTURE.read_text().splitlines(), errors))
    assert errors == []
    assert [job.jobid for job in jobs] == [
        "1837137",
        "1837140_[5-7,9]",
        "1837140_1",
        "1837140_2",
        "1837150",
        "1837160",
        "1837160",
    ]
    first = jobs[0]
    assert first.nodes == ("c001", "c002", "c003", "c004", "c010", "c011", "c012", "c013")
    assert (first.start, first.end) == (1796112005.0, 1796184005.0)  # read as UTC
    assert first.elapsed == 72000 and first.timelimit == 86400
    assert (first.user, first.uid, first.account, first.ncpus) == ("alice", 5001, "physics", 256)
    pending = jobs[1]
    assert pending.nodes == () and pending.nodelist == "" and pending.start is None
    assert pending.name == "array|with|pipes"  # the last field takes the rest
    assert jobs[3].nodes == ("c420-024", "c420-073", "c421-051", "c421-052")
    assert jobs[3].end is None and jobs[3].running
    assert (jobs[4].state, jobs[4].cancelled_by, jobs[4].timelimit) == ("CANCELLED", 5003, None)


def test_header_lines_set_the_order_and_p_output_loses_its_trailing_separator():
    text = (
        "JobID|NodeList|Start|End|State|JobName|\n"
        "42|n[1-2]|2026-12-01T00:00:00|Unknown|RUNNING|a|b|\n"
        "43|n3|2026-12-01T00:00:00|2026-12-01T01:00:00|COMPLETED||\n"
    )
    jobs = records(text)
    assert [(j.jobid, j.nodes, j.name, j.end is None) for j in jobs] == [
        ("42", ("n1", "n2"), "a|b", True),
        ("43", ("n3",), "", False),
    ]


def test_a_malformed_line_is_reported_with_its_number_and_the_rest_are_read():
    good = FIXTURE.read_text().splitlines()[0]
    lines = [
        good,
        "not|enough|fields",
        good.replace("1837137|1837137", "abc|abc", 1),
        good.replace("2026-12-02T04:00:05", "yesterday"),
        good.replace("c[001-004,010-013]", "c[001-"),
        good.replace("1837137|1837137", "1837137.batch|1837137.batch", 1),  # a step: skipped
        good.replace("1837137|1837137", "99|99", 1),
    ]
    errors = []
    jobs = list(parse_sacct(lines, errors))
    assert [job.jobid for job in jobs] == ["1837137", "99"]
    assert [error.number for error in errors] == [2, 3, 4, 5]
    assert all(isinstance(error, BadSacctLine) for error in errors)
    assert "3 fields, expected 26" in str(errors[0])
    assert "'abc' is not a Slurm job id" in str(errors[1])
    assert "time 'yesterday'" in str(errors[2])
    assert str(errors[3]).startswith("line 5: node list 'c[001-'")


def test_job_ids():
    for good in ("1234", "1234_5", "1234_[1-3,5]", "1234_[1-100%4]", "77+1"):
        assert check_job_id(good) == good
    for bad in ("", "abc", "12.batch", "1234_", "../etc", "1234 5", "-1"):
        with pytest.raises(ValueError, match="is not a Slurm job id"):
            check_job_id(bad)


def test_node_lists_and_host_names():
    assert expand_nodelist("c[001-004,010]") == ("c001", "c002", "c003", "c004", "c010")
    assert expand_nodelist("None assigned") == ()
    with pytest.raises(ValueError, match="over 100000 nodes"):
        expand_nodelist("c[1-100000000]")
    assert host_of_node("n001.cluster.example", {}) == "n001"
    assert host_of_node("n001-ib", {}, suffix="-ib") == "n001"
    assert host_of_node("login", {"login": "gw01"}) == "gw01"
    assert host_of_node("a.b", {}, short_names=False) == "a.b"
    assert host_of_node("bad/name", {}) is None


def test_durations():
    assert parse_elapsed("1-02:03:04") == 93784
    assert parse_elapsed("02:03") == 123
    assert parse_elapsed("UNLIMITED") is None
    assert len(SACCT_FIELDS) == 26


def test_what_sacct_c_prints_without_a_database():
    # jobcomp/filetxt through `sacct -c -P` (Slurm 22.05): its own header order, the
    # job name third, the user as name(uid); and with the 26-field --format
    default = (
        "JobID|UID|JobName|Partition|NNodes|NodeList|State|End\n"
        "1|0|probe|x|debug|1|vm|COMPLETED|2026-12-02T06:27:56\n"
    )
    (job,) = records(default)
    assert (job.jobid, job.uid, job.name, job.partition, job.nodes) == (
        "1",
        0,
        "probe|x",
        "debug",
        ("vm",),
    )
    assert job.start is None and job.end is not None  # no start column: kept, not dropped
    formatted = (
        "JobID|JobIDRaw|Cluster|Partition|QOS|Account|Group|GID|User|UID|Submit|Eligible|Start|"
        "End|Elapsed|ExitCode|State|NNodes|NCPUS|ReqCPUS|ReqMem|ReqTRES|AllocTRES|Timelimit|"
        "NodeList|JobName\n"
        "1|1|unknown|debug|||root|0|root(0)|0|2026-12-02T06:27:54|2026-12-02T06:27:51|"
        "2026-12-02T06:27:54|2026-12-02T06:27:56|00:00:02|0:0|COMPLETED|1|1|||||UNLIMITED|vm|probe|x\n"
    )
    (job,) = records(formatted)
    assert (job.user, job.uid, job.name, job.elapsed, job.reqcpus) == (
        "root",
        0,
        "probe|x",
        2,
        None,
    )


def test_real_sacct_c_output_of_this_slurm_is_read_whole():
    """Captured from Slurm 22.05's `sacct -c -P` (jobcomp/filetxt) here: an array of 3
    (jobcomp names its tasks by their raw ids), a failing job, one cancelled while running."""
    for name in ("jobcomp-26-fields.txt", "jobcomp-default.txt"):
        errors = []
        jobs = list(parse_sacct((FIXTURE.parent / name).read_text().splitlines(), errors))
        assert errors == []
        assert [(job.jobid, job.state, job.nodes) for job in jobs] == [
            ("4", "COMPLETED", ("vm",)),
            ("5", "COMPLETED", ("vm",)),
            ("2", "FAILED", ("vm",)),
            ("3", "CANCELLED", ("vm",)),
            ("1", "COMPLETED", ("vm",)),
        ]
        assert jobs[0].name == "array|job" and jobs[0].uid == 0
