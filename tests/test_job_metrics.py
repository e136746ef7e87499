"""Per-job metrics from the raw archive: values, reasons, flags, counters across chunks."""

import textwrap

import numpy as np
import pytest

from affair.config import parse_config
from affair.ingest.validate import Sample
from affair.outputs.jobs.metrics import Columns, NodeAccumulator, compute_job_metrics, fold
from affair.storage.jobs import JobStore
from affair.storage.journal import Journal
from affair.storage.sacct import JobRecord, host_of_node

T0 = 1_800_000_000.0


def config_for(data_dir, extra=""):
    import tomllib

    text = textwrap.dedent(
        f"""
        [recorder]
        data_dir = "{data_dir}"
        step = 10
        [datasets.system.variables]
        cpu_user = {{ type = "GAUGE" }}
        cpu_system = {{ type = "GAUGE" }}
        mem_used = {{ type = "GAUGE" }}
        swap_used = {{ type = "GAUGE" }}
        net_in = {{ type = "DERIVE" }}
        net_out = {{ type = "DERIVE" }}
        disk_read = {{ type = "DERIVE" }}
        disk_write = {{ type = "DERIVE" }}
        [jobs]
        idle_cpu = 5
        idle_fraction = 0.8
        imbalance = 1.5
        swap_bytes = 1000
        """
    )
    return parse_config(tomllib.loads(text + extra), "test.toml")


@pytest.fixture
def archive(tmp_path):
    """busy01 at 90% CPU, idle01 at 1%, swap01 swapping; counters rising 100 B per sample."""
    data = tmp_path / "data"
    clock = lambda: T0 + 3600  # noqa: E731
    journal = Journal(data / "_journal", clock=clock)
    samples = []
    for i in range(60):  # 10 minutes at 10 s
        ts = T0 + 10 * i
        for host, cpu, swap in (("busy01", 90.0, 0.0), ("idle01", 1.0, 0.0), ("swap01", 40.0, 5e6)):
            counter = 100.0 * i if not (host == "busy01" and i == 30) else 0.0  # one reset
            samples.append(
                Sample(
                    0,
                    ts,
                    host,
                    "system",
                    "",
                    {
                        "cpu_user": cpu - 1,
                        "cpu_system": 1.0,
                        "mem_used": 1e9 + i,
                        "swap_used": swap,
                        "net_in": counter,
                        "net_out": counter,
                        "disk_read": 0.0,
                        "disk_write": counter,
                    },
                )
            )
    journal.append(samples)
    journal.close()
    for host in ("busy01", "idle01", "swap01"):
        (data / host).mkdir()
    return data


def job_in(data, nodes, start, end, jobid="1"):
    store = JobStore(data / "_journal" / "jobs.sqlite", lambda n: host_of_node(n, {}))
    store.merge([JobRecord(jobid, start=start, end=end, nodes=tuple(nodes), user="u")])
    job = store.job(jobid)
    store.close()
    return job


def test_figures_reasons_and_flags(archive):
    config = config_for(archive)
    job = job_in(archive, ["busy01", "idle01", "swap01", "ghost01", "bad/x"], T0, T0 + 590)
    summary = compute_job_metrics(job, config, now=T0 + 3600)
    assert summary["final"] is True
    metrics, nodes = summary["metrics"], summary["nodes"]
    assert nodes["busy01"]["cpu"] == pytest.approx(90.0)
    assert nodes["idle01"]["idle"] is True and nodes["busy01"]["idle"] is False
    assert nodes["busy01"]["samples"] == 60
    assert metrics["cpu"]["value"] == pytest.approx((90 + 1 + 40) / 3)
    assert metrics["imbalance"]["value"] == pytest.approx(90 / ((90 + 1 + 40) / 3))
    assert metrics["idle_nodes"]["value"] == 1 and metrics["idle_nodes"]["nodes"] == ["idle01"]
    assert metrics["memory"]["value"] == 1e9 + 59
    assert metrics["swap"]["value"] == 5e6
    # 59 steps of 100 B per counter; busy01's counter reset to 0 once: the drop adds
    # nothing, the step after it adds all 3100 from zero
    per_node_normal = 5900.0
    busy = 2900.0 + 3100.0 + 100.0 * 28
    assert nodes["idle01"]["network"] == 2 * per_node_normal
    assert nodes["busy01"]["network"] == 2 * busy
    assert metrics["disk"]["value"] == 2 * per_node_normal + busy
    assert nodes["ghost01"]["reason"] == "node ghost01 (host ghost01) is unknown to affair"
    assert nodes["bad/x"]["reason"] == "node bad/x cannot be an affair host name"
    assert metrics["cpu"]["note"] == " (2 of 5 nodes without samples)"
    assert sorted(summary["flags"]) == ["idle", "imbalanced", "swapping", "unknown_nodes"]


def test_a_short_job_and_a_silent_node_say_why(archive):
    config = config_for(archive)
    short = compute_job_metrics(job_in(archive, ["busy01"], T0, T0 + 30), config, T0 + 3600)
    assert short["metrics"]["cpu"] == {"value": None, "reason": "job shorter than 6 steps (60s)"}
    assert short["flags"] == ["short"]
    later = compute_job_metrics(
        job_in(archive, ["busy01"], T0 + 2000, T0 + 2600, "2"), config, T0 + 3600
    )
    assert later["nodes"]["busy01"]["reason"] == "no samples from busy01 during the run"
    assert later["metrics"]["cpu"]["reason"] == "no samples from any of its nodes during the run"


def test_a_running_job_is_provisional(archive):
    config = config_for(archive)
    running = compute_job_metrics(job_in(archive, ["busy01"], T0 + 100, None), config, T0 + 300)
    assert running["final"] is False and running["window"] == [T0 + 100, T0 + 300]
    assert running["nodes"]["busy01"]["samples"] == 21  # 100..300 inclusive


def test_fold_joins_counters_across_chunks():
    nodes = [NodeAccumulator(), NodeAccumulator()]
    columns = Columns(cpu=[0], memory=1, swap=2, network=[3], disk=[])
    for start in (0, 3):
        ts = np.array([start, start, start + 1, start + 1, start + 2, start + 2], float)
        index = np.array([0, 1, 0, 1, 0, 1])
        counter = ts * 10
        values = np.column_stack([np.full(6, 50.0), ts, ts, counter])
        fold(nodes, index, ts, values, columns, idle_cpu=5)
    assert [node.counter_sum["network0"] for node in nodes] == [50.0, 50.0]
    assert [node.samples for node in nodes] == [6, 6]
    assert nodes[0].mem_max == 5


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        ({"imbalance": 0.5}, "jobs.imbalance: expected a ratio >= 1, got 0.5"),
        ({"cpu": ["cpu_nice"]}, "jobs.cpu: expected variables of dataset 'system', got 'cpu_nice'"),
        ({"dataset": "nope"}, "jobs.dataset: expected a dataset declared under [datasets]"),
        ({"idle_fraction": 2}, "jobs.idle_fraction: expected a fraction of the run (0 to 1)"),
        ({"sacct": "sacct -P"}, "jobs.sacct: expected a command as a list of strings, or []"),
        ({"idle": 5}, "jobs.idle: expected a known key"),
    ],
)
def test_jobs_config_errors_name_the_key(jobs, message):
    from affair.errors import ConfigError

    raw = {
        "datasets": {"system": {"variables": {"cpu_user": {"type": "GAUGE"}}}},
        "jobs": jobs,
    }
    with pytest.raises(ConfigError) as error:
        parse_config(raw, "test.toml")
    assert message in str(error.value)
