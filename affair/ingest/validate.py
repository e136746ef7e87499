"""Validation of incoming samples: pure checks, a reason for every refusal.

Each refusal carries a short reason that becomes a counter of the recorder
(``rej_<reason>``) and the reason sent back in the ACK, so a sender learns
why and stops resending. The reasons (all listed in
affair.vocab.REJECTION_REASONS):

  structure   a sample that is not [seq, ts, host, dataset, instance, values, attempt]
  name        a host/dataset/instance/variable name outside the safe charset
  value       a value that is not a finite number (NaN is fine: it means unknown)
  future      a timestamp beyond ``max_future_skew`` ahead of the recorder's clock
  past        a timestamp older than ``max_sample_age``
  undeclared  a dataset or variable not in the config, with accept_undeclared off
  var_cap     more variables in one dataset than ``max_variables_per_dataset``

The recorder adds its own: undecodable, version, oversized (whole messages),
series_cap, not_increasing and write_error (at the store), auth (a CURVE key
not on the allow-list) and handshake (a peer that failed the CURVE handshake:
no keys, or the wrong recorder key); these two count connection attempts.
host_not_bound is a sample for a host its CURVE key may not write
(``curve_bind_hosts``, see :class:`affair.ingest.auth.HostBinding`).
host_cap is a sample for a new host when the data dir holds ``max_hosts``
already (:class:`HostCap`).
"""

import math
from dataclasses import dataclass

from affair.collectors.wire import SampleValues
from affair.config import Config
from affair.errors import Rejected
from affair.names import is_valid


# Not frozen: a frozen dataclass is built through object.__setattr__ field by
# field, 1.2 us against 0.2 us, paid per sample in the recorder and again in
# the writer. Treat it as read-only all the same.
@dataclass(slots=True)
class Sample:
    seq: int
    ts: float
    host: str
    dataset: str
    instance: str
    values: SampleValues
    attempt: int = 1
    sender: str = ""  # who delivered it, for per-collector latency; not journaled

    @property
    def series(self) -> tuple[str, str, str]:
        return self.host, self.dataset, self.instance


def validate_sample(raw: object, config: Config, now: float, sender: str = "") -> Sample:
    """Turn one raw wire sample (anything a sender sent) into a Sample, or raise Rejected."""
    if not isinstance(raw, list) or len(raw) != 7:
        raise Rejected("structure", None, "not a 7-element sample")
    seq, ts, host, dataset, instance, values, attempt = raw
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise Rejected("structure", None, f"sequence number {seq!r}")
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise Rejected("structure", seq, f"attempt {attempt!r}")
    for kind, name in (("host", host), ("dataset", dataset)):
        if not is_valid(kind, name):
            raise Rejected("name", seq, f"{kind} {name!r}")
    if instance != "" and not is_valid("instance", instance):
        raise Rejected("name", seq, f"instance {instance!r}")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise Rejected("value", seq, f"timestamp {ts!r}")
    recorder = config.recorder
    if ts > now + recorder.max_future_skew:
        raise Rejected("future", seq, f"timestamp {ts:.0f} is {ts - now:.0f}s ahead")
    if ts < now - recorder.max_sample_age:
        raise Rejected("past", seq, f"timestamp {ts:.0f} is {now - ts:.0f}s old")
    if not isinstance(values, dict) or not values:
        raise Rejected("structure", seq, "values must be a non-empty map")
    if len(values) > recorder.max_variables_per_dataset:
        raise Rejected("var_cap", seq, f"{len(values)} variables")
    if _all_finite_floats(values) and _names_known(config, dataset, values):
        # The usual sample: names seen before, every value a finite float. It
        # is kept as decoded (msgpack made the dict for us alone), not copied.
        return Sample(seq, float(ts), host, dataset, instance, values, attempt, sender)
    clean: SampleValues = {}
    for name, value in values.items():
        if not is_valid("variable", name):
            raise Rejected("name", seq, f"variable {name!r}")
        if value is None:
            clean[name] = None
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise Rejected("value", seq, f"{name}={value!r}")
        elif math.isnan(value):
            clean[name] = None  # NaN means unknown, stored as rrdtool's U
        elif math.isinf(value):
            raise Rejected("value", seq, f"{name}={value!r}")
        else:
            clean[name] = float(value)
    if not recorder.accept_undeclared:
        if not config.is_declared(dataset):
            raise Rejected("undeclared", seq, f"dataset {dataset!r}")
        for name in clean:
            if not config.is_declared(dataset, name):
                raise Rejected("undeclared", seq, f"variable {dataset}.{name}")
    _remember_names(config, dataset, clean)
    return Sample(seq, float(ts), host, dataset, instance, clean, attempt, sender)


# Per config: the (dataset, variable names in order) of samples that passed
# every name and declaration check, so the next sample with the same names
# skips them. A collector sends the same names each time, so this stays as
# small as the number of distinct datasets (and instance layouts) in use; it
# is bounded all the same, against a peer inventing names. Keyed by id() and
# holding the config itself, so an id is never reused while it is here.
_KNOWN_NAMES: dict[int, tuple[Config, set[tuple[str, tuple[str, ...]]]]] = {}
_KNOWN_NAMES_LIMIT = 20_000  # variable names held in all, so about 2 MB at most
_known_names_held = 0
_CONFIGS_REMEMBERED = 8  # a recorder has one; tests make many


def _names_known(config, dataset, values):
    entry = _KNOWN_NAMES.get(id(config))
    return entry is not None and (dataset, tuple(values)) in entry[1]


def _remember_names(config, dataset, values):
    global _known_names_held
    entry = _KNOWN_NAMES.get(id(config))
    if entry is None:
        if len(_KNOWN_NAMES) >= _CONFIGS_REMEMBERED:
            _KNOWN_NAMES.clear()
            _known_names_held = 0
        entry = _KNOWN_NAMES[id(config)] = (config, set())
    if _known_names_held + len(values) <= _KNOWN_NAMES_LIMIT:
        key = (dataset, tuple(values))
        if key not in entry[1]:
            entry[1].add(key)
            _known_names_held += len(values)


_FLOAT_ONLY = {float}


def _all_finite_floats(values):
    """Every value a float (not an int, None or NaN) and finite, checked in C.

    A sum of floats is finite only if every term is (an infinity or a NaN
    stays one); a sum that overflows is not finite either, and such a sample
    simply takes the slow path, which checks value by value.
    """
    cells = values.values()
    return set(map(type, cells)) == _FLOAT_ONLY and math.isfinite(sum(cells))


class SeriesCap:
    """Holds each host to ``limit`` series (RRD files), counting those on disk."""

    def __init__(self, limit, existing_series):
        self.limit = limit
        self._existing_series = existing_series  # host -> iterable of (dataset, instance)
        self._known = {}

    def admit(self, host, dataset, instance):
        known = self._known.get(host)
        if known is None:
            known = self._known[host] = set(self._existing_series(host))
        key = (dataset, instance)
        if key in known:
            return True
        if len(known) >= self.limit:
            return False
        known.add(key)
        return True


class HostCap:
    """Holds the data dir to ``limit`` hosts (directories), counting those on disk.

    The recorder's own host is always admitted: its health must still be
    recorded when peers have filled the data dir with hosts. The hosts
    refused are remembered, up to ``REMEMBERED`` names (under 1 MB), for
    the pages; past that each refusal of a name not remembered counts anew.
    """

    REMEMBERED = 10_000

    def __init__(self, limit, existing_hosts, own_host=""):
        self.limit = limit
        self._existing_hosts = existing_hosts  # () -> iterable of host names on disk
        self.own_host = own_host
        self._known = None
        self.refused = {}  # host -> None: the first REMEMBERED hosts refused, in order
        self.refused_count = 0  # distinct hosts refused (see above)

    def admit(self, host):
        if host == self.own_host:
            return True  # not counted: max_hosts is the peers' hosts
        known = self._known
        if known is None:
            known = self._known = set(self._existing_hosts()) - {self.own_host}
        if host in known:
            return True
        if len(known) >= self.limit:
            if host not in self.refused:
                self.refused_count += 1
                if len(self.refused) < self.REMEMBERED:
                    self.refused[host] = None
            return False
        known.add(host)
        return True
