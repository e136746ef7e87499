"""Job events: a Slurm hook's environment -> a JOB message -> the recorder's jobs table, acked."""

import os
import subprocess
import sys

import pytest
from affair.collectors import wire
from affair.collectors.job_hook import job_event, send_job_event
from conftest import REPO

from affair.errors import Rejected, WireError
from affair.ingest.job_events import validate_job_event
from affair.storage.jobs import JobStore, jobs_path

SLURMCTLD_ENV = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_USER": "alice",
    "SLURM_JOB_UID": "5001",
    "SLURM_JOB_ACCOUNT": "physics",
    "SLURM_JOB_PARTITION": "compute",
    "SLURM_JOB_NAME": "lattice",
    "SLURM_JOB_NODELIST": "c[001-002]",
}


def test_a_hooks_environment_becomes_an_event():
    assert job_event("start", SLURMCTLD_ENV, 100.0) == {
        "action": "start",
        "jobid": "4242",
        "user": "alice",
        "uid": 5001,
        "account": "physics",
        "partition": "compute",
        "name": "lattice",
        "nodelist": "c[001-002]",
        "start": 100.0,
    }
    slurmd = {
        "SLURM_JOB_ID": "77",
        "SLURM_ARRAY_JOB_ID": "70",
        "SLURM_ARRAY_TASK_ID": "7",
        "SLURM_NODELIST": "n1",
        "SLURM_JOB_EXIT_CODE": "256",
    }
    event = job_event("end", slurmd, 200.0)
    assert (event["jobid"], event["nodelist"], event["end"], event["state"]) == (
        "70_7",
        "n1",
        200.0,
        "FAILED",
    )


def test_validation_keeps_good_events_and_says_why_it_refuses_others():
    seq, record = validate_job_event([3, job_event("start", SLURMCTLD_ENV, 100.0), 1])
    assert seq == 3 and record.nodes == ("c001", "c002") and record.state == "RUNNING"
    assert record.source == "live" and record.start == 100.0 and record.end is None
    for fields, reason, words in [
        ({"action": "start", "jobid": "../x"}, "value", "is not a Slurm job id"),
        ({"action": "stop", "jobid": "1"}, "value", "action 'stop'"),
        ({"action": "start", "jobid": "1", "shell": "rm"}, "structure", "unknown job field"),
        ({"action": "start", "jobid": "1", "uid": "5"}, "structure", "uid must be int"),
        ({"action": "start", "jobid": "1", "user": "a\nb"}, "value", "control characters"),
        ({"action": "end", "jobid": "1"}, "value", "needs its end time"),
        ({"action": "start", "jobid": "1", "nodelist": "c[1-"}, "value", "node list"),
    ]:
        with pytest.raises(Rejected) as refused:
            validate_job_event([1, fields, 1])
        assert refused.value.reason == reason and words in refused.value.detail
    assert wire.is_job_message(wire.encode_job("x", [(1, {"action": "start"}, 1)]))
    assert not wire.is_job_message(wire.encode_data("x", []))
    with pytest.raises(WireError, match="name: sender"):
        wire.decode_job(wire.encode_job("bad name\n", [(1, {"action": "start"}, 1)]))


@pytest.mark.integration
def test_affair_job_start_and_end_reach_the_jobs_table_acknowledged(recorder, tmp_path):
    process = recorder()
    env = {**SLURMCTLD_ENV, "PATH": os.environ.get("PATH", "")}
    command = [sys.executable, "-m", "affair", "job"]
    flags = ["--config", str(process.config_path), "--recorder", process.endpoint, "--strict"]
    started = subprocess.run(
        [*command, "start", *flags], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 0, started.stderr
    assert "job 4242 start: acknowledged" in started.stderr
    with JobStore(jobs_path(process.data_dir)) as store:
        job = store.job("4242")
    assert job.record.user == "alice" and job.record.end is None
    assert job.hosts == {"c001": "c001", "c002": "c002"}
    ended = subprocess.run(
        [*command, "end", *flags],
        env={**env, "SLURM_JOB_EXIT_CODE": "0"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ended.returncode == 0, ended.stderr
    with JobStore(jobs_path(process.data_dir)) as store:
        job = store.job("4242")
    assert job.record.state == "COMPLETED" and job.record.end >= job.record.start
    acked, what = send_job_event(
        process.endpoint, {"action": "start", "jobid": "1", "uid": "x"}, 10
    )
    assert (acked, what) == (False, "job 1: refused by the recorder (structure)")
    refused = subprocess.run(
        [*command, "start", *flags],
        env={**env, "SLURM_JOB_ID": "abc"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "'abc' is not a Slurm job id" in refused.stderr
