"""Slurm accounting lines (``sacct --parsable2``) -> job records, as pure functions.

What the accounting tools (XDMoD's SUPReMM, TACC Stats) run, and what
``affair jobs import`` reads first::

    TZ=UTC sacct --allusers --parsable2 --noheader --allocations --duplicates \\
        --format jobid,jobidraw,cluster,partition,qos,account,group,gid,user,uid,submit,\\
eligible,start,end,elapsed,exitcode,state,nnodes,ncpus,reqcpus,reqmem,reqtres,alloctres,\\
timelimit,nodelist,jobname

Why each quirk is handled the way it is:

* ``TZ=UTC``: sacct prints local times with no zone. We read them as UTC, so
  the command must run with ``TZ=UTC`` or the job's window shifts by the offset
  (a standing complaint about the daily tools).
* The job name is free text and may hold ``|``: the *last* field takes the
  rest of the line. ``-p`` (``--parsable``) ends every line with one more
  ``|``; a line with more separators than fields whose last cell is empty is
  read that way.
* A header line (``JobID|JobIDRaw|...``, any order, any subset holding JobID)
  sets the field order for the lines after it.
* ``--duplicates`` prints every run of a requeued job, oldest first: the last
  record of a job id wins, so a file re-imported changes nothing.
* Array jobs are ``123_4`` (one task; JobIDRaw is its own number) or
  ``123_[1-3,5]`` (tasks still pending); both are job ids of their own.
* ``Unknown`` end (or start) of a job still running or pending is None.
* ``None assigned`` is the node list of a job that has none yet.
* ``CANCELLED by 1234`` is state CANCELLED, cancelled by uid 1234.
* Steps (``123.batch``, ``123.0``) are not allocations: skipped, not errors.

A line that cannot be read is reported with its line number and skipped;
the rest are read.
"""

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ClusterShell.NodeSet import RESOLVER_NOGROUP, NodeSet, NodeSetException

from affair.errors import BadSacctLine
from affair.names import is_valid

SACCT_FIELDS = (
    "jobid",
    "jobidraw",
    "cluster",
    "partition",
    "qos",
    "account",
    "group",
    "gid",
    "user",
    "uid",
    "submit",
    "eligible",
    "start",
    "end",
    "elapsed",
    "exitcode",
    "state",
    "nnodes",
    "ncpus",
    "reqcpus",
    "reqmem",
    "reqtres",
    "alloctres",
    "timelimit",
    "nodelist",
    "jobname",
)
SACCT_FORMAT = ",".join(SACCT_FIELDS)

# 123, 123_4, 123_[1-3,5%2], 123+1 (a heterogeneous job's component)
JOB_ID = re.compile(r"\d{1,12}(?:_(?:\d{1,9}|\[[0-9,\-%]{1,200}\]))?(?:\+\d{1,4})?")
_STEP = re.compile(r"\d{1,12}(?:_(?:\d+|\[[^\]]*\]))?(?:\+\d+)?\.\w+")
_DURATION = re.compile(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)")
_USER_UID = re.compile(r"(.*)\((\d+)\)")
_BRACKETS = re.compile(r"\[([^\]]*)\]")
_RANGE = re.compile(r"(\d+)-(\d+)")
MAX_NODES = 100_000  # more than any cluster affair records; a bigger range is an error
NO_NODES = ("None assigned", "", "(null)")
NO_TIME = ("Unknown", "None", "", "N/A")
RUNNING_STATES = ("RUNNING", "PENDING", "REQUEUED", "SUSPENDED", "CONFIGURING", "COMPLETING")


@dataclass(frozen=True)
class JobRecord:
    """One batch job as the jobs table keeps it. Times are Unix seconds (UTC)."""

    jobid: str
    jobid_raw: str = ""
    cluster: str = ""
    partition: str = ""
    qos: str = ""
    account: str = ""
    group: str = ""
    gid: int | None = None
    user: str = ""
    uid: int | None = None
    submit: float | None = None
    eligible: float | None = None
    start: float | None = None
    end: float | None = None
    elapsed: float | None = None
    exit_code: str = ""
    state: str = ""
    cancelled_by: int | None = None
    nnodes: int | None = None
    ncpus: int | None = None
    reqcpus: int | None = None
    reqmem: str = ""
    reqtres: str = ""
    alloctres: str = ""
    timelimit: float | None = None
    nodelist: str = ""
    name: str = ""
    nodes: tuple[str, ...] = field(default=())
    source: str = "sacct"

    @property
    def running(self) -> bool:
        return self.end is None


def check_job_id(text: str) -> str:
    """``text`` if it is a Slurm job id (123, 123_4, 123_[1-3]), else ValueError saying so."""
    if not isinstance(text, str) or not JOB_ID.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a Slurm job id (like 1234, 1234_5 for an array task, "
            "or 1234_[1-3] for pending tasks)"
        )
    return text


@functools.lru_cache(maxsize=8192)
def expand_nodelist(nodelist: str) -> tuple[str, ...]:
    """``c[001-004,010]`` -> ('c001', ..., 'c010'); 'None assigned' -> ().

    Cached: the same lists recur across an accounting file (and a NodeSet
    parse is most of an import's time).
    """
    nodelist = nodelist.strip()
    if nodelist in NO_NODES:
        return ()
    if "[" not in nodelist and "," not in nodelist and " " not in nodelist:
        return (nodelist,)  # one node, the usual single-node job
    if len(nodelist) > 100_000:
        raise ValueError(f"node list of {len(nodelist)} characters")
    # Bound the expansion before it happens: c[1-100000000] would take minutes.
    spans = sum(
        max(0, int(b) - int(a) + 1)
        for inside in _BRACKETS.findall(nodelist)
        for a, b in _RANGE.findall(inside)
    )
    if spans > MAX_NODES:
        raise ValueError(f"node list {nodelist[:60]!r} names over {MAX_NODES} nodes")
    try:
        return tuple(NodeSet(nodelist, resolver=RESOLVER_NOGROUP))
    except (NodeSetException, ValueError, IndexError) as error:
        raise ValueError(f"node list {nodelist!r}: {error}") from None


def host_of_node(
    node: str, host_map: Mapping[str, str], suffix: str = "", short_names: bool = True
) -> str | None:
    """The affair host name of Slurm node ``node``, or None when it cannot be one."""
    host = host_map.get(node)
    if host is None:
        host = node
        if suffix and host.endswith(suffix) and len(host) > len(suffix):
            host = host[: -len(suffix)]
        if short_names:
            host = host.split(".", 1)[0]
    return host if is_valid("host", host) else None


@functools.lru_cache(maxsize=65536)
def parse_time(text: str) -> float | None:
    """sacct's ``2026-12-01T10:00:00`` read as UTC; Unknown/None -> None."""
    text = text.strip()
    if text in NO_TIME:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"time {text!r} (expected like 2026-12-01T10:00:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_elapsed(text: str) -> float | None:
    """``[D-][HH:]MM:SS`` -> seconds; UNLIMITED, Partition_Limit, empty -> None."""
    text = text.strip()
    if not text or text in ("UNLIMITED", "Partition_Limit", "INVALID", "Unknown"):
        return None
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"duration {text!r} (expected like 1-02:03:04)")
    days, hours, minutes, secs = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)


def _int(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"number {text!r}") from None


def parse_state(text: str) -> tuple[str, int | None]:
    """'CANCELLED by 1234' -> ('CANCELLED', 1234); 'COMPLETED' -> ('COMPLETED', None)."""
    words = text.split()
    if len(words) == 3 and words[1] == "by":
        return words[0], _int(words[2])
    if len(words) != 1:
        raise ValueError(f"state {text!r}")
    return words[0], None


def _record(cells: dict[str, str]) -> JobRecord:
    jobid = cells["jobid"].strip()
    check_job_id(jobid)
    state, cancelled_by = parse_state(cells.get("state", "") or "UNKNOWN")
    user, uid = cells.get("user", ""), _int(cells.get("uid", ""))
    named = _USER_UID.fullmatch(user)
    if named:  # sacct -c prints the user as name(uid)
        user, uid = named.group(1), uid if uid is not None else int(named.group(2))
    nodelist = cells.get("nodelist", "").strip()
    record = JobRecord(
        jobid=jobid,
        jobid_raw=cells.get("jobidraw", "").strip(),
        cluster=cells.get("cluster", ""),
        partition=cells.get("partition", ""),
        qos=cells.get("qos", ""),
        account=cells.get("account", ""),
        group=cells.get("group", ""),
        gid=_int(cells.get("gid", "")),
        user=user,
        uid=uid,
        submit=parse_time(cells.get("submit", "")),
        eligible=parse_time(cells.get("eligible", "")),
        start=parse_time(cells.get("start", "")),
        end=parse_time(cells.get("end", "")),
        elapsed=parse_elapsed(cells.get("elapsed", "")),
        exit_code=cells.get("exitcode", ""),
        state=state,
        cancelled_by=cancelled_by,
        nnodes=_int(cells.get("nnodes", "")),
        ncpus=_int(cells.get("ncpus", "")),
        reqcpus=_int(cells.get("reqcpus", "")),
        reqmem=cells.get("reqmem", ""),
        reqtres=cells.get("reqtres", ""),
        alloctres=cells.get("alloctres", ""),
        timelimit=parse_elapsed(cells.get("timelimit", "")),
        nodelist="" if nodelist in NO_NODES else nodelist,
        name=cells.get("jobname", ""),
        nodes=expand_nodelist(nodelist),
    )
    if record.start is not None and record.end is not None and record.end < record.start:
        raise ValueError("end before start")
    return record


def _join_name(cells: list[str], fields: tuple[str, ...]) -> list[str]:
    """Fold the surplus cells of a job name holding ``|`` back into it.

    The job name takes them wherever it is (``sacct -c -P`` prints it third);
    without a name column, the last field takes the rest.
    """
    extra = len(cells) - len(fields)
    if extra <= 0:
        return cells
    at = fields.index("jobname") if "jobname" in fields else len(fields) - 1
    return [*cells[:at], "|".join(cells[at : at + extra + 1]), *cells[at + extra + 1 :]]


def _is_header(cells: list[str]) -> bool:
    names = [cell.strip().lower() for cell in cells if cell.strip()]
    return "jobid" in names and all(name in SACCT_FIELDS for name in names)


def parse_sacct(
    lines: Iterable[str], errors: list[BadSacctLine] | None = None
) -> Iterator[JobRecord]:
    """Job records of sacct ``--parsable2`` (or ``-p``) lines, in file order.

    A line that cannot be read is appended to ``errors`` (when given) and
    skipped. Steps are skipped silently. Repeated job ids (requeues) are all
    yielded: the store keeps the last.
    """
    fields: tuple[str, ...] = SACCT_FIELDS
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        cells = line.split("|")
        if not cells[0][:1].isdigit() and _is_header(cells):  # job ids start with a digit
            if cells[-1] == "" and len(cells) > 1:
                cells = cells[:-1]
            fields = tuple(cell.strip().lower() for cell in cells)
            continue
        count = len(fields)
        if len(cells) > count and cells[-1] == "":
            cells = cells[:-1]  # -p's trailing separator
        if len(cells) < count:
            if errors is not None:
                errors.append(
                    BadSacctLine(number, f"{len(cells)} fields, expected {count} ({line[:80]!r})")
                )
            continue
        cells = _join_name(cells, fields)
        named = dict(zip(fields, cells, strict=True))
        if _STEP.fullmatch(named["jobid"].strip()):
            continue
        try:
            yield _record(named)
        except ValueError as error:
            if errors is not None:
                errors.append(BadSacctLine(number, str(error)))
