"""``affair job start|end``: tell the recorder a batch job started or ended, from a Slurm hook.

Run as a Slurm prolog/epilog (slurmd's ``Prolog``/``Epilog`` or slurmctld's
``PrologSlurmctld``/``EpilogSlurmctld``). Slurm gives a hook only ``SLURM_*``
variables and no PATH, so the hook calls affair by its absolute path. What
it reads: the job id (an array task's ``<array id>_<task>``), user, uid,
account, partition, name and node list (``SLURM_JOB_NODELIST`` in the
slurmctld hooks, ``SLURM_NODELIST`` in slurmd's), and the times when Slurm
gives them (else now).

The event goes to the recorder as a JOB message (:mod:`affair.collectors.wire`)
over the collector's endpoint and CURVE keys, and is resent until the
recorder acknowledges it (it is in the jobs table then) or ``timeout``
passes. A hook that fails can drain a node in Slurm, so the command exits
non-zero only when told (``--strict``); it always says what happened on stderr.
"""

import socket as sockets
import time
from collections.abc import Callable, Mapping

import zmq
from affair.collectors import wire

from affair.errors import WireError

RESEND_AFTER = 1.0  # seconds without an ack before the event is sent again


def job_event(action: str, env: Mapping[str, str], now: float) -> wire.JobEvent:
    """The event a hook's environment describes (``action``: 'start' or 'end')."""
    array_job, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    jobid = f"{array_job}_{task}" if array_job and task else env.get("SLURM_JOB_ID", "")
    jobid = jobid or env.get("SLURM_JOBID", "")
    event: wire.JobEvent = {"action": action, "jobid": jobid}
    for field, names in (
        ("user", ("SLURM_JOB_USER",)),
        ("account", ("SLURM_JOB_ACCOUNT",)),
        ("partition", ("SLURM_JOB_PARTITION",)),
        ("name", ("SLURM_JOB_NAME",)),
        ("nodelist", ("SLURM_JOB_NODELIST", "SLURM_NODELIST")),
    ):
        value = next((env[name] for name in names if env.get(name)), None)
        if value is not None:
            event[field] = value
    if env.get("SLURM_JOB_UID", "").isdigit():
        event["uid"] = int(env["SLURM_JOB_UID"])
    started = env.get("SLURM_JOB_START_TIME", "")
    if started.isdigit() and int(started) > 0:
        event["start"] = float(started)
    elif action == "start":
        event["start"] = now
    if action == "end":
        event["end"] = now
        exit_code = env.get("SLURM_JOB_EXIT_CODE", "")
        if exit_code.isdigit():
            event["state"] = "COMPLETED" if int(exit_code) == 0 else "FAILED"
    return event


def send_job_event(
    endpoint: str,
    event: wire.JobEvent,
    timeout: float = 10.0,
    curve: tuple[bytes, bytes, bytes] | None = None,
    context: zmq.Context | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[bool, str]:
    """Send ``event`` until acknowledged; ``(acked, what happened)``."""
    context = context or zmq.Context.instance()
    sender = f"job-hook@{sockets.gethostname().split('.')[0]}"
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        socket.curve_publickey, socket.curve_secretkey, socket.curve_serverkey = curve
    socket.connect(endpoint)
    deadline = clock() + timeout
    attempt = 0
    try:
        while clock() < deadline:
            attempt += 1
            socket.send(wire.encode_job(sender, [(1, event, attempt)]))
            wait_until = min(deadline, clock() + RESEND_AFTER)
            while (left := wait_until - clock()) > 0:
                if not socket.poll(int(left * 1000) + 1):
                    continue
                try:
                    acked, rejected = wire.decode_ack(socket.recv())
                except WireError:
                    continue
                if 1 in acked:
                    return True, f"job {event.get('jobid')} {event['action']}: acknowledged"
                for seq, reason in rejected:
                    if seq == 1:
                        return (
                            False,
                            f"job {event.get('jobid')}: refused by the recorder ({reason})",
                        )
        return False, f"no acknowledgement from the recorder at {endpoint} in {timeout:g}s"
    finally:
        socket.close(linger=0)
