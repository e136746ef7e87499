"""Validation of job events (``affair job start|end``): pure checks, a reason for every refusal.

A job event is not a sample (see :mod:`affair.collectors.wire`, KIND_JOB):
it names a job, its user and account and its nodes, as text. Each field is
checked for its type and length, the job id must be a Slurm job id, and the
node list must expand (:func:`affair.storage.sacct.expand_nodelist`); a node
that maps to no affair host is kept on the job and flagged on its page, not
refused. Refusals reuse the sample reasons: ``structure`` (not an event of
the known fields and types) and ``value`` (a field's content).
"""

import math
from typing import Any

from affair.collectors.wire import JOB_EVENT_FIELDS
from affair.errors import Rejected
from affair.storage.sacct import JobRecord, check_job_id, expand_nodelist

MAX_TEXT = 256  # user, account, job name...
MAX_NODELIST = 65_536
ACTIONS = ("start", "end")


def validate_job_event(raw: object) -> tuple[int, JobRecord]:
    """``(seq, the job record it carries)``, or raise Rejected."""
    if not isinstance(raw, list) or len(raw) != 3:
        raise Rejected("structure", None, "not a [seq, fields, attempt] job event")
    seq, fields, attempt = raw
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise Rejected("structure", None, f"sequence number {seq!r}")
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise Rejected("structure", seq, f"attempt {attempt!r}")
    if not isinstance(fields, dict):
        raise Rejected("structure", seq, "fields must be a map")
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        kind = JOB_EVENT_FIELDS.get(name) if isinstance(name, str) else None
        if kind is None:
            raise Rejected("structure", seq, f"unknown job field {str(name)[:40]!r}")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise Rejected("structure", seq, f"{name} must be {kind.__name__}")
        if isinstance(value, str):
            limit = MAX_NODELIST if name == "nodelist" else MAX_TEXT
            if len(value) > limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
                raise Rejected(
                    "value", seq, f"{name}: over {limit} characters or control characters"
                )
        if isinstance(value, float) and not (math.isfinite(value) and value > 0):
            raise Rejected("value", seq, f"{name}={value!r}")
        clean[name] = value
    action = clean.get("action")
    if action not in ACTIONS:
        raise Rejected("value", seq, f"action {action!r}: expected start or end")
    try:
        jobid = check_job_id(str(clean.get("jobid", "")))
        nodelist = str(clean.get("nodelist", ""))
        nodes = expand_nodelist(nodelist)
    except ValueError as error:
        raise Rejected("value", seq, str(error)) from None
    start = clean.get("start")
    end = clean.get("end") if action == "end" else None
    if action == "end" and end is None:
        raise Rejected("value", seq, "an end event needs its end time")
    if start is not None and end is not None and end < start:
        raise Rejected("value", seq, "end before start")
    uid = clean.get("uid")
    return seq, JobRecord(
        jobid=jobid,
        user=str(clean.get("user", "")),
        uid=uid if isinstance(uid, int) else None,
        account=str(clean.get("account", "")),
        partition=str(clean.get("partition", "")),
        name=str(clean.get("name", "")),
        nodelist=nodelist,
        nodes=nodes,
        start=float(start) if start is not None else None,
        end=float(end) if end is not None else None,
        # An epilog rarely knows how the job ended; sacct's import says later.
        state=str(clean.get("state") or ("RUNNING" if action == "start" else "ENDED")),
        source="live",
    )
