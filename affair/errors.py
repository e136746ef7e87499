"""Our own exceptions, each carrying the context a person needs to act on it."""


class AffairError(Exception):
    """Base of every error affair raises on purpose."""


class ConfigError(AffairError):
    """A config value is missing, unknown or of the wrong shape.

    The message always names the file, the dotted key and what was expected,
    so one line is enough to fix it.
    """

    def __init__(self, path, key, expected, got=None):
        self.path = str(path)
        self.key = key
        self.expected = expected
        self.got = got
        message = f"{self.path}: {key}: expected {expected}"
        if got is not None:
            message += f", got {got!r}"
        super().__init__(message)


class InvalidName(AffairError):
    """A host, dataset, instance or variable name that cannot become a path or a DS."""

    def __init__(self, kind, name, reason):
        self.kind = kind
        self.name = name
        self.reason = reason
        super().__init__(f"invalid {kind} name {_short_repr(name)}: {reason}")


class WireError(AffairError):
    """A message that cannot be decoded; ``reason`` is a short counter name."""

    def __init__(self, reason, detail=""):
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class StoreError(AffairError):
    """librrd refused an operation on a file; carries the file's path."""

    def __init__(self, path, operation, cause):
        self.path = str(path)
        self.operation = operation
        super().__init__(f"{self.path}: rrdtool {operation} failed: {cause}")


class RrdcachedError(StoreError):
    """rrdcached could not be reached, or lost rows it had accepted.

    Either way what it held may be gone: the writer replays the journal
    from its last flush (see affair.ingest.writer), readers fail the one read.
    """

    def __init__(self, address, operation, cause, path=""):
        self.address = address
        self.path = str(path)
        self.operation = operation
        where = f"{self.path}: " if self.path else ""
        AffairError.__init__(self, f"{where}rrdcached at {address}: {operation}: {cause}")


class ListenError(AffairError):
    """The recorder could not listen where the config says (busy port, bad address)."""

    def __init__(self, endpoint, cause):
        self.endpoint = endpoint
        hint = " (is another recorder running?)" if "in use" in str(cause) else ""
        super().__init__(f"cannot listen on {endpoint}: {cause}{hint}")


class PlotError(AffairError):
    """A graph could not be planned or drawn; the message names the graph or file."""


class ResolutionMismatch(PlotError):
    """librrd answered at another step than the grid's (a file made with another ladder)."""

    def __init__(self, path, wanted, got):
        self.path = str(path)
        super().__init__(f"{path}: rows of {got}s where the graph needs {wanted}s")


class ServeError(AffairError):
    """``affair serve`` cannot start: a bad --listen, a busy port, no site directory."""


class RequestError(AffairError):
    """A URL ``affair serve`` cannot read or will not follow (answered 400, nothing opened)."""


class JournalError(AffairError):
    """A journal day file that cannot be used; carries its path."""

    def __init__(self, path, problem):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")


class QueryError(AffairError):
    """A query that was refused, failed or stopped; the message says which and why."""


class ExportError(AffairError):
    """An export that cannot be made as asked; the message says what to ask instead."""


class JobsError(AffairError):
    """The jobs table or a job's input cannot be used; carries the path or the job id."""

    def __init__(self, where, problem):
        self.where = str(where)
        super().__init__(f"{self.where}: {problem}")


class BadSacctLine(AffairError):  # noqa: N818 - it names the outcome, like Rejected
    """One Slurm accounting line that cannot be read; carries its line number."""

    def __init__(self, number, problem):
        self.number = number
        self.problem = problem
        super().__init__(f"line {number}: {problem}")


class ArchiveError(AffairError):
    """The permanent archive cannot be written at all (its directory); the message says why."""


class JournalRowsDiffer(AffairError):
    """A damaged archive file cannot be rebuilt: the journal's rows for it are not the ones it held."""


class Rejected(AffairError):  # noqa: N818 - it names the outcome, like StopIteration
    """A sample the recorder refuses; ``reason`` is a short counter name (affair.vocab.REJECTION_REASONS)."""

    def __init__(self, reason, seq=None, detail=""):
        self.reason = reason
        self.seq = seq
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class BadLine(AffairError):  # noqa: N818 - it names the outcome, like Rejected
    """A Graphite plaintext line that cannot become a sample; ``reason`` is a counter name."""

    def __init__(self, reason, detail=""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class DataDirLocked(AffairError):
    """Another recorder holds the data directory's lock (one recorder per data dir)."""

    def __init__(self, data_dir, holder=None, who="another recorder"):
        self.data_dir = str(data_dir)
        self.holder = holder
        if holder:
            who = f"{who} (pid {holder})"
        super().__init__(f"{who} is using {self.data_dir}")


class WriterFailed(AffairError):
    """The recorder's RRD writer process exited before it was ready."""

    def __init__(self, exit_code):
        self.exit_code = exit_code
        super().__init__(f"the RRD writer exited at start (code {exit_code})")


class ForwardError(AffairError):
    """A forward target could not take a batch now (down, slow, 5xx): the forwarder retries."""

    def __init__(self, target, cause):
        self.target = target
        super().__init__(f"forward target {target}: {cause}")


def _short_repr(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DiskFull(AffairError):
    """The data dir's file system is full: nothing more can be written until space is freed.

    Not a fault of the data: the recorder stops acknowledging and the writer
    waits and replays, so nothing that was acknowledged is lost.
    """

    def __init__(self, path, cause):
        self.path = str(path)
        super().__init__(f"the disk holding {path} is full ({cause})")


class NotifyError(AffairError):
    """A notification could not be delivered to a ``[[notify]]`` target (kept for a retry)."""
