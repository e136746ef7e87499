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


@dataclass(frozen=True, slots=True)
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
    return Sample(seq, float(ts), host, dataset, instance, clean, attempt, sender)


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
