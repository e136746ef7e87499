"""A one-node Slurm (Debian's slurmctld, slurmd, munge) in a temp dir, for the jobs tests.

What was found to work here, as root on a small VM (see issue 13):

* munged on its own socket (``AuthInfo=socket=...``), whose directory must
  be mode 0755, with a key generated for the session;
* ``ProctrackType=proctrack/linuxproc`` and ``TaskPlugin=task/none``: no
  cgroups needed; the node is idle about a second after start;
* no database: ``JobCompType=jobcomp/filetxt`` and ``sacct -c`` read it;
* hooks get only ``SLURM_*`` variables and no PATH: they call affair by
  absolute path;
* teardown: cancel every job and wait for ``squeue`` to be empty before
  stopping slurmd, slurmctld and munged, or an orphaned slurmstepd survives.

Every daemon runs in the foreground as our child, so a finalizer can always
kill exactly what was started, by pid.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sacct", "sbatch", "squeue", "scancel", "scontrol")


def slurm_available():
    return os.geteuid() == 0 and all(shutil.which(name) for name in DAEMONS)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class SlurmCluster:
    def __init__(self, base: Path, prolog: str = "", epilog: str = "") -> None:
        self.base = base
        self.node = socket.gethostname().split(".")[0]
        self.processes: list[subprocess.Popen] = []
        self.prolog, self.epilog = prolog, epilog
        self.env = {**os.environ, "SLURM_CONF": str(base / "slurm.conf"), "TZ": "UTC"}

    # --- life cycle ---

    def start(self) -> "SlurmCluster":
        base = self.base
        for name in ("state", "spool", "munge", "log"):
            (base / name).mkdir(parents=True, exist_ok=True)
        (base / "munge").chmod(0o755)  # munged refuses a socket dir others may write
        key = base / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.munge_socket = base / "munge" / "munge.socket"
        self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={self.munge_socket}",
                f"--pid-file={base / 'munge' / 'munged.pid'}",
                f"--log-file={base / 'log' / 'munged.log'}",
                f"--seed-file={base / 'munge' / 'munged.seed'}",
            ],
        )
        wait_until(self.munge_socket.exists, 20, "munged's socket")
        (base / "slurm.conf").write_text(self._slurm_conf())
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(base / "slurm.conf")])
        wait_until(
            lambda: self._run(["scontrol", "ping"], check=False).returncode == 0,
            30,
            "slurmctld to answer",
        )
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(base / "slurm.conf")])
        wait_until(self._node_idle, 60, "the node to be idle")
        return self

    def _slurm_conf(self) -> str:
        base = self.base
        hooks = ""
        if self.prolog:
            hooks += f"PrologSlurmctld={self.prolog}\n"
        if self.epilog:
            hooks += f"EpilogSlurmctld={self.epilog}\n"
        return (
            f"ClusterName=affairtest\n"
            f"SlurmctldHost={self.node}(127.0.0.1)\n"
            f"SlurmctldPort={free_port()}\n"
            f"SlurmdPort={free_port()}\n"
            f"SlurmUser=root\nSlurmdUser=root\n"
            f"AuthType=auth/munge\nCredType=cred/munge\n"
            f"AuthInfo=socket={self.munge_socket}\n"
            f"StateSaveLocation={base / 'state'}\n"
            f"SlurmdSpoolDir={base / 'spool'}\n"
            f"SlurmctldPidFile={base / 'slurmctld.pid'}\n"
            f"SlurmdPidFile={base / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={base / 'log' / 'slurmctld.log'}\n"
            f"SlurmdLogFile={base / 'log' / 'slurmd.log'}\n"
            f"ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
            f"JobCompType=jobcomp/filetxt\nJobCompLoc={base / 'jobcomp.txt'}\n"
            f"AccountingStorageType=accounting_storage/none\n"
            f"JobAcctGatherType=jobacct_gather/none\n"
            f"SchedulerType=sched/builtin\nSelectType=select/cons_tres\n"
            f"SelectTypeParameters=CR_Core\nMpiDefault=none\nReturnToService=2\n"
            f"SlurmctldParameters=enable_configless\n"
            f"{hooks}"
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n"
            f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP\n"
        )

    def _spawn(self, name, argv):
        log = open(self.base / "log" / f"{name}.out", "ab")  # noqa: SIM115 - the child owns it
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        log.close()
        self.processes.append(process)
        return process

    def _node_idle(self):
        done = self._run(["sinfo", "-h", "-n", self.node, "-o", "%t"], check=False)
        return done.stdout.strip() == "idle"

    def stop(self) -> None:
        """Cancel every job, wait for the queue to empty, then stop the daemons in reverse."""
        try:
            self._run(["scancel", "--full", "--user=root"], check=False)
            wait_until(lambda: not self.queue(), 30, "the queue to empty")
        except (AssertionError, OSError, subprocess.SubprocessError):
            pass  # the daemons go anyway
        self.kill()

    def kill(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        self.processes.clear()

    # --- using it ---

    def _run(self, argv, check=True, **kwargs):
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=30, check=check, **kwargs
        )

    def submit(self, script: str, *options: str) -> str:
        # The job's stdout goes to the cluster's own folder, not into the
        # directory pytest runs in (sbatch's default is ./slurm-<id>.out).
        output = f"--output={self.base / 'log' / 'job-%A_%a.out'}"
        done = self._run(["sbatch", "--parsable", output, *options], input=script)
        return done.stdout.strip().split(";")[0]

    def queue(self) -> list[str]:
        return self._run(["squeue", "-h", "-o", "%i"], check=False).stdout.split()

    def state(self, jobid: str) -> str:
        return self._run(["scontrol", "show", "job", jobid], check=False).stdout

    def sacct_completion(self) -> str:
        """What this Slurm's ``sacct -c -P`` prints (jobcomp/filetxt, no database)."""
        return self._run(
            ["sacct", "-c", "-P", "--allusers", "--starttime=2000-01-01T00:00:00"]
        ).stdout

    def log(self, name: str) -> str:
        path = self.base / "log" / name
        return path.read_text(errors="replace") if path.exists() else ""
