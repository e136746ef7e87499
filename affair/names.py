"""Names that become paths and RRD data sources.

Every host, dataset, instance and variable name arrives from the network, so
each is checked against a strict pattern before it touches the file system.
Host names may hold dots (FQDNs); dataset and instance names may not, because
the dot separates them in a file name (``disks.var_log.rrd``). No name may
start with anything but a letter or digit, so ``.``, ``..`` and hidden files
are impossible, and our own directories under the data dir start with ``_``.
"""

import hashlib
import os
import re
from pathlib import Path

from affair.errors import InvalidName
from affair.vocab import LINK_ENDS

_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_DATASET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
_INSTANCE = _DATASET
# rrdtool's own rule for data-source names: 1 to 19 of [a-zA-Z0-9_].
_VARIABLE = re.compile(r"[A-Za-z0-9_]{1,19}")
# A sender names itself in every message (a collector its host, an application
# "host.dataset", Graphite "graphite:<address>"); it reaches logs, memory and,
# cleaned, an instance name, so it is bounded like the names above.
_SENDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}")

_PATTERNS = {
    "host": (_HOST, "1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit"),
    "dataset": (_DATASET, "1-40 of A-Z a-z 0-9 _ -, starting with a letter or digit"),
    "instance": (_INSTANCE, "1-40 of A-Z a-z 0-9 _ -, starting with a letter or digit"),
    "variable": (_VARIABLE, "1-19 of A-Z a-z 0-9 _ (rrdtool's data-source rule)"),
    "sender": (_SENDER, "1-128 of A-Z a-z 0-9 . _ : @ / + -, starting with a letter or digit"),
}


def check_name(kind, name):
    """Return ``name`` if it is a valid ``kind`` name, else raise InvalidName."""
    pattern, rule = _PATTERNS[kind]
    if not isinstance(name, str):
        raise InvalidName(kind, name, "not a string")
    if not pattern.fullmatch(name):
        raise InvalidName(kind, name, f"must be {rule}")
    return name


_VALID_CACHE: dict[
    tuple[str, str], bool
] = {}  # (kind, name) -> True; the same few names arrive in every sample
_VALID_CACHE_LIMIT = 100_000  # a flood of fresh names cannot grow it without bound


def is_valid(kind, name):
    if not isinstance(name, str):  # first: a list or a map from the wire cannot be a dict key
        return False
    if (kind, name) in _VALID_CACHE:
        return True
    pattern, _ = _PATTERNS[kind]
    valid = pattern.fullmatch(name) is not None
    if valid and len(_VALID_CACHE) < _VALID_CACHE_LIMIT:
        _VALID_CACHE[(kind, name)] = True
    return valid


def rrd_file_name(dataset, instance=""):
    """``system.rrd`` or ``disks.var_log.rrd``."""
    return f"{dataset}.{instance}.rrd" if instance else f"{dataset}.rrd"


def parse_rrd_file_name(file_name):
    """Inverse of :func:`rrd_file_name`: ``(dataset, instance)`` or None."""
    if not file_name.endswith(".rrd"):
        return None
    parts = file_name[:-4].split(".")
    if len(parts) == 1 and is_valid("dataset", parts[0]):
        return parts[0], ""
    if len(parts) == 2 and is_valid("dataset", parts[0]) and is_valid("instance", parts[1]):
        return parts[0], parts[1]
    return None


def rrd_path(data_dir, host, dataset, instance=""):
    """The RRD of one series, after checking every name that forms it.

    The normalised path is compared with the data dir as a second fence, so
    a future change to the patterns cannot silently open an escape. The
    check is lexical (no syscalls: the plotter asks for thousands of paths a
    pass); a host directory that is a symlink, placed there by whoever owns
    the data directory, is followed as the operator meant.
    """
    check_name("host", host)
    check_name("dataset", dataset)
    if instance:
        check_name("instance", instance)
    root = os.path.normpath(os.path.abspath(data_dir))
    path = os.path.normpath(os.path.join(root, host, rrd_file_name(dataset, instance)))
    if os.path.dirname(os.path.dirname(path)) != root:
        raise InvalidName("host", host, "resolves outside the data directory")
    return Path(path)


_UNSAFE = {
    "dataset": re.compile(r"[^A-Za-z0-9_-]+"),
    "instance": re.compile(r"[^A-Za-z0-9_-]+"),
    "variable": re.compile(r"[^A-Za-z0-9_]+"),
}
_LIMITS = {"dataset": 40, "instance": 40, "variable": 19}


def safe_name(kind, text):
    """Make a valid ``kind`` name out of foreign text, or return None if nothing is left.

    For names we do not choose: mount points, interface names, Graphite
    paths. Every run of unsafe characters becomes one ``_``, leading and
    trailing ``_``/``-`` go, and a name over the length limit keeps its head
    and gets 4 hex digits of a hash of the whole text, so two long names
    that share a head stay apart (``/var/log`` -> ``var_log``).
    """
    cleaned = _UNSAFE[kind].sub("_", str(text)).strip("_-")
    cleaned = re.sub(r"_{2,}", "_", cleaned)
    if not cleaned:
        return None
    limit = _LIMITS[kind]
    if len(cleaned) > limit:
        digest = hashlib.sha1(str(text).encode("utf-8", "surrogatepass")).hexdigest()[:4]
        cleaned = f"{cleaned[: limit - 5].rstrip('_-')}_{digest}"
    return cleaned if is_valid(kind, cleaned) else None


# --- daemons and links ---
#
# A daemon is ``host/daemon``; a link is (source daemon, target daemon), and
# each end of it is one series of the ``links`` dataset under the reporting
# daemon's host, instance ``<daemon>_<out|in>_<peer host>_<peer daemon>``. The
# instance must parse back into the link exactly, so the parts a link names
# use a narrower charset than hosts do: no ``_`` (the separator) and no ``.``
# (instances cannot hold one). The whole instance is still an instance name:
# at most 40 characters.
_LINK_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}")
_LINK_PART_RULE = "1-40 of A-Z a-z 0-9 -, starting with a letter or digit"


def check_daemon(name):
    """``'host/daemon'`` -> ``('host', 'daemon')``, or InvalidName saying why."""
    if not isinstance(name, str):
        raise InvalidName("daemon", name, "not a string")
    host, slash, daemon = name.partition("/")
    if not slash:
        raise InvalidName("daemon", name, "must be 'host/daemon'")
    for part in (host, daemon):
        if not _LINK_PART.fullmatch(part):
            raise InvalidName("daemon", name, f"each of host and daemon must be {_LINK_PART_RULE}")
    return host, daemon


def link_instance(daemon, end, peer_host, peer_daemon):
    """The instance of one end of a link, as the daemon ``daemon`` on its host stores it.

    ``end`` is "out" (this daemon is the source) or "in" (it is the target).
    """
    if end not in LINK_ENDS:
        raise InvalidName("instance", end, "a link end must be 'out' or 'in'")
    for part in (daemon, peer_host, peer_daemon):
        if not isinstance(part, str) or not _LINK_PART.fullmatch(part):
            raise InvalidName("daemon", part, f"must be {_LINK_PART_RULE}")
    instance = f"{daemon}_{end}_{peer_host}_{peer_daemon}"
    if len(instance) > 40:
        raise InvalidName(
            "instance", instance, "a link's names are too long: daemon + peer over 32 characters"
        )
    return instance


def parse_link_instance(instance):
    """Inverse of :func:`link_instance`: ``(daemon, end, peer_host, peer_daemon)`` or None."""
    parts = instance.split("_") if isinstance(instance, str) else ()
    if len(parts) != 4 or parts[1] not in LINK_ENDS:
        return None
    if not all(_LINK_PART.fullmatch(parts[i]) for i in (0, 2, 3)):
        return None
    return parts[0], parts[1], parts[2], parts[3]


# --- columns of the SQL views over the journal (affair.outputs.query) ---

VIEW_FIXED_COLUMNS = ("ts", "host", "instance", "received")  # every dataset view has these


def view_columns(variables):
    """``{variable: column}``: a variable named like a fixed column gets ``v_`` in front."""
    taken = set(VIEW_FIXED_COLUMNS)
    mapping = {}
    for variable in variables:
        column = variable
        while column in taken:
            column = f"v_{column}"
        taken.add(column)
        mapping[variable] = column
    return mapping
