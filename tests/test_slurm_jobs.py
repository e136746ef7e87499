"""Real Slurm (one node, started for the session): prolog/epilog -> affair job start/end ->
the jobs table -> pages with metrics and flags; and `sacct -c` accounting imported.

The job CPU figures here come from the collector's processes probe (the
jobs' own processes, matched by their command line) rather than the whole
node's CPU: this machine is shared, and a node-wide figure would call the
sleeper busy whenever someone else's build runs.
"""

import re
import subprocess
import sys

import pytest
from conftest import REPO
from slurm_cluster import SlurmCluster, slurm_available, wait_until

from affair.config import load_config
from affair.outputs.jobs.commands import cmd_import
from affair.outputs.site import build_site
from affair.storage.jobs import JobStore, jobs_path
from affair.storage.journal_reader import day_spans
from affair.storage.sacct import SACCT_FORMAT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not slurm_available(), reason="needs root and Debian's slurm + munge"),
]

CONFIG = """
[recorder]
step = 10

[collector]
interval = 1
probes = ["processes"]

[[collector.processes]]
instance = "work"
cmdline = "affair-work"

[datasets.processes.variables]
alive      = { type = "GAUGE" }
count      = { type = "GAUGE" }
cpu        = { type = "GAUGE", unit = "%" }
rss        = { type = "GAUGE", unit = "B" }
threads    = { type = "GAUGE" }
open_files = { type = "GAUGE" }

[jobs]
dataset = "processes"
cpu = ["cpu"]
memory = "rss"
swap = ""
network = []
disk = []
short_steps = 1
idle_cpu = 5
idle_fraction = 0.6
"""
WORK = "#!/bin/sh\nexec {python} -c '{code}' affair-work\n"
BURN = "import time; t = time.time(); any(time.time() - t > {seconds} for _ in iter(int, 1))"
SLEEP = "import time; time.sleep({seconds})"
RUN_SECONDS = 12  # over one recorder step: short_steps = 1 is the shortest "not short"


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    base = tmp_path_factory.mktemp("slurm")
    hooks = {}
    for action in ("start", "end"):
        # The hook forwards to a script each test writes (it knows its recorder); Slurm
        # gives hooks no PATH, so everything is called by absolute path.
        script = base / f"{action}.sh"
        script.write_text(f"#!/bin/sh\n[ -x {base}/hook ] && {base}/hook {action}\nexit 0\n")
        script.chmod(0o755)
        hooks[action] = str(script)
    cluster = SlurmCluster(base, prolog=hooks["start"], epilog=hooks["end"])
    try:
        cluster.start()
    except BaseException:
        cluster.kill()
        raise
    yield cluster
    cluster.stop()


def test_jobs_from_a_real_slurm(slurm, recorder, tmp_path):
    process = recorder(CONFIG)
    config_path = process.config_path
    hook = slurm.base / "hook"
    hook.write_text(
        f'#!/bin/sh\nexec {sys.executable} -m affair job "$1" --config {config_path}'
        f" --recorder {process.endpoint} >> {tmp_path}/hook.log 2>&1\n"
    )
    hook.chmod(0o755)
    collector_log = open(tmp_path / "collector.log", "w")  # noqa: SIM115 - closed below
    collector = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "affair.collectors.main",
            "--config",
            str(config_path),
            "--recorder",
            process.endpoint,
            "--host",
            slurm.node,
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=collector_log,
    )
    try:
        config = load_config(config_path)
        path = jobs_path(process.data_dir)

        def ended(jobid):
            if not path.exists():
                return False
            with JobStore(path) as store:
                job = store.job(jobid)
            return job is not None and job.record.end is not None and job

        # One after the other (the processes probe sees the node's "affair-work"
        # processes, whichever job runs them); a --dependency would wait for
        # slurmctld's periodic pass, up to a minute.
        burner = slurm.submit(
            WORK.format(python=sys.executable, code=BURN.format(seconds=RUN_SECONDS)),
            "-J",
            "burner|x",
        )
        wait_until(lambda: ended(burner), 60, "the burner's epilog")
        sleeper = slurm.submit(
            WORK.format(python=sys.executable, code=SLEEP.format(seconds=RUN_SECONDS)),
            "-J",
            "sleeper",
        )

        wait_until(lambda: ended(sleeper), 60, "the sleeper's epilog")
        last_end = ended(sleeper).record.end
        wait_until(
            lambda: max(span.last for span in day_spans(process.data_dir / "_journal")) > last_end,
            30,
            "the collector's samples past the sleeper's end",
        )
    finally:
        collector.terminate()
        collector.wait(timeout=30)
        collector_log.close()
    hook_log = tmp_path / "hook.log"
    wait_until(lambda: hook_log.read_text().count("acknowledged") == 4, 30, "the hooks' lines")
    job = ended(burner)
    assert job.record.source == "live" and job.record.name == "burner|x"
    assert job.hosts == {slurm.node: slurm.node} and job.record.user == "root"

    out = tmp_path / "site"
    build_site(
        config.with_overrides(data_dir=str(process.data_dir)),
        process.data_dir,
        tmp_path / "graphs",
        out,
    )
    burn_page = (out / "jobs" / f"{burner}.html").read_text()
    sleep_page = (out / "jobs" / f"{sleeper}.html").read_text()
    cpu = re.search(r"<th>CPU use \(mean over nodes and run\)</th><td>([\d.]+)%", burn_page)
    assert cpu and float(cpu.group(1)) > 5, burn_page
    assert "idle nodes" not in re.search(r'<p class="flags">(.*?)</p>', burn_page).group(1)
    assert "idle nodes" in re.search(r'<p class="flags">(.*?)</p>', sleep_page).group(1)
    assert (out / "jobs" / burner / "cpu.png").stat().st_size > 1000

    # Accounting without a database: what this Slurm's `sacct -c -P` prints, both ways
    for argv in (["sacct", "-c", "-P"], ["sacct", "-c", "-P", "--format", SACCT_FORMAT]):
        lines = subprocess.run(
            [*argv, "--allusers", "--starttime=2000-01-01T00:00:00"],
            env=slurm.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        listing = tmp_path / "sacct.txt"
        listing.write_text(lines)
        with (
            open(tmp_path / "import.out", "w") as printed,
            open(tmp_path / "import.err", "w") as err,
        ):
            code = cmd_import(
                config.with_overrides(data_dir=str(process.data_dir)), str(listing), printed, err
            )
        assert code == 0, (tmp_path / "import.err").read_text()
    with JobStore(path) as store:
        imported = store.job(sleeper).record
    assert (imported.state, imported.source, imported.user, imported.name) == (
        "COMPLETED",
        "sacct",
        "root",
        "sleeper",
    )
