"""Simulated batch jobs for the demo: a stream of jobs over the simulated nodes.

A new job every ``EVERY`` seconds from the start of the window, on two to
four of the nodes no other job holds (at most half of them, so the next slot
always finds two free), for 20 to 50 minutes; their kinds cycle so the jobs
pages have each flag to show, the rarer ones first: swapping, idle (a job that
holds nodes and does nothing), imbalanced (one node works, the others wait),
busy, busy. The slots count from the window's start, not from the clock's
quarter hours, so a short backfill shows the same jobs at any time of day. While a node is in a job, the job's
kind shapes its CPU and swap (:meth:`DemoJobs.adjust`). The launcher tells
the recorder each start and end with the same JOB messages the Slurm hooks
send (``affair job start|end``), so the demo shows the live path.
"""

import random
from dataclasses import dataclass

from affair.collectors import wire

EVERY = 15 * 60
KINDS = ("swapping", "idle", "imbalanced", "busy", "busy")
USERS = (("alice", "physics"), ("bob", "bio"), ("carol", "chem"), ("dave", "daq"))
GB = 1024**3
FIRST_ID = 4100


@dataclass(frozen=True)
class DemoJob:
    jobid: str
    kind: str
    nodes: tuple[str, ...]
    start: float
    end: float
    user: str
    account: str

    def event(self, action: str) -> wire.JobEvent:
        event: wire.JobEvent = {
            "action": action,
            "jobid": self.jobid,
            "user": self.user,
            "account": self.account,
            "partition": "demo",
            "name": f"{self.kind}-{self.jobid}",
            "nodelist": ",".join(self.nodes),
            "start": self.start,
        }
        if action == "end":
            event["end"] = self.end
            event["state"] = "COMPLETED"
        return event


class DemoJobs:
    """The jobs of ``[first, last]`` (Unix seconds) over ``hosts``, fixed by ``seed``."""

    def __init__(self, hosts: list[str], first: float, last: float, seed: int = 0) -> None:
        self.jobs: list[DemoJob] = []
        if len(hosts) < 2:
            return
        chooser = random.Random(f"jobs-{seed}")
        start = (int(first) // 60 + 1) * 60  # the next whole minute
        widest = max(2, min(4, len(hosts) // 2))
        number = 0
        while start <= last:
            # Nodes are the job's alone, as Slurm gives them: only those free now.
            busy = {node for job in self.jobs if job.end > start for node in job.nodes}
            free = [host for host in hosts if host not in busy]
            if len(free) >= 2:
                width = chooser.randint(2, min(widest, len(free)))
                at = chooser.randrange(len(free) - width + 1)
                user, account = USERS[number % len(USERS)]
                self.jobs.append(
                    DemoJob(
                        str(FIRST_ID + number),
                        KINDS[number % len(KINDS)],
                        tuple(free[at : at + width]),
                        float(start),
                        float(start + chooser.randint(20, 50) * 60),
                        user,
                        account,
                    )
                )
                number += 1
            start += EVERY

    def running_on(self, host: str, ts: float) -> tuple[DemoJob, int] | None:
        for job in self.jobs:
            if job.start <= ts <= job.end and host in job.nodes:
                return job, job.nodes.index(host)
        return None

    def adjust(self, host: str, ts: float, values: dict[str, float]) -> dict[str, float]:
        """The node's sample shaped by the job it is in (if any)."""
        found = self.running_on(host, ts)
        if found is None:
            return values
        job, place = found
        wobble = random.Random(f"{job.jobid}-{host}-{int(ts)}").uniform(-3, 3)
        if job.kind == "idle" or (job.kind == "imbalanced" and place > 0):
            cpu = 1.0 + abs(wobble) / 3 if job.kind == "idle" else 12.0 + wobble
        else:
            cpu = 88.0 + wobble
        values = dict(values)
        values["cpu_user"] = round(cpu * 0.85, 2)
        values["cpu_system"] = round(cpu * 0.15, 2)
        if job.kind == "swapping":
            values["swap_used"] = float(int(3 * GB + 50_000_000 * ((ts - job.start) / 60)))
        return values

    def events_between(self, after: float, until: float) -> list[tuple[float, DemoJob, str]]:
        """``(when, job, 'start'|'end')`` of the starts and ends in ``(after, until]``, in order."""
        events = []
        for job in self.jobs:
            if after < job.start <= until:
                events.append((job.start, job, "start"))
            if after < job.end <= until:
                events.append((job.end, job, "end"))
        return sorted(events, key=lambda item: (item[0], item[2] == "start"))
