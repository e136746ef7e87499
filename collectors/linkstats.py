"""What one end of a link counts in an interval: messages, bytes, errors, latencies.

Pure and node-side (no I/O, no clock): :mod:`affair.collectors.client` calls
:meth:`LinkEnd.count`, :meth:`LinkEnd.fail` and :meth:`LinkEnd.observe` from the
application's threads and :meth:`LinkEnd.take` once an interval from its own.

Latency quantiles come from a fixed-resolution logarithmic histogram, not
from keeping every latency: a call costs one ``log2`` and a dict update, and
the memory per link end is bounded by the spread of its latencies (eight
buckets per doubling, so from 1 ns to 1000 s at most ~320 buckets). A quantile
is the geometric middle of the bucket holding the nearest-rank element,
clipped to the smallest and largest latency seen, so it is within
``2**(1/16) - 1`` (4.4 %) of the exact nearest-rank quantile; the count, the
mean and the maximum are exact.
"""

import math
import threading
from typing import Any

BUCKETS_PER_DOUBLING = 8
# log2 of the bucket holding the smallest latency that is not counted as zero
_OFFSET = 1024  # keeps bucket numbers positive so int() floors them
_TINY = 1e-9  # seconds: anything shorter is a zero latency (bucket 0)
RELATIVE_ERROR = 2 ** (1 / (2 * BUCKETS_PER_DOUBLING)) - 1
LINK_VARIABLES = (
    "messages",
    "bytes",
    "errors",
    "rate",
    "lat_count",
    "lat_mean",
    "lat_p50",
    "lat_p95",
    "lat_max",
)
_INF = math.inf
_log2 = math.log2


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a latency (0 for anything under a nanosecond)."""
    if seconds < _TINY:
        return 0
    return int(math.log2(seconds) * BUCKETS_PER_DOUBLING + _OFFSET)


def bucket_value(bucket: int) -> float:
    """The geometric middle of a bucket: the value a quantile in it reads as."""
    if bucket == 0:
        return 0.0
    return 2 ** ((bucket - _OFFSET + 0.5) / BUCKETS_PER_DOUBLING)


def quantile(buckets: dict[int, int], count: int, fraction: float) -> float:
    """The nearest-rank ``fraction`` quantile of the latencies counted in ``buckets``."""
    rank = max(1, math.ceil(fraction * count))
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= rank:
            return bucket_value(bucket)
    raise ValueError("rank beyond the count")  # count did not match the buckets


def check_latency(seconds: Any) -> float:
    """A latency as a float, or ValueError/TypeError for a negative, infinite or non-number."""
    if seconds.__class__ is not float:
        if isinstance(seconds, str | bytes | bool) or not hasattr(seconds, "__float__"):
            raise TypeError(f"latency: expected a number of seconds, got {seconds!r}")
        seconds = float(seconds)
    if not 0.0 <= seconds < _INF:  # NaN fails this too
        raise ValueError(f"latency: expected a finite number of seconds >= 0, got {seconds!r}")
    return seconds


class LinkEnd:
    """One end of one link, counting for the current interval under the publisher's lock.

    The hot paths (:meth:`count`, :meth:`observe`) only add; whether the end was
    ever used is worked out when the interval is taken (:meth:`in_use`).
    """

    __slots__ = (
        "_lock",
        "inbound_end",
        "used",
        "messages",
        "bytes",
        "errors",
        "buckets",
        "lat_count",
        "lat_sum",
        "lat_max",
    )

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        # Where observe(..., inbound=True) goes: the other end of the same link, for the
        # out end (so Link.latency can be this end's observe itself); itself otherwise.
        self.inbound_end: LinkEnd = self
        # False until the end has counted something: an end never used sends nothing, so
        # a daemon that only sends to a peer does not make a reverse link appear
        self.used = False
        self._reset()

    def _reset(self):
        self.messages = 0
        self.bytes = 0
        self.errors = 0
        self.buckets = {}  # latency bucket -> count
        self.lat_count = 0
        self.lat_sum = 0.0
        self.lat_max = 0.0

    def in_use(self) -> bool:
        """Whether this end has ever counted anything (call with the lock held)."""
        if not self.used:
            self.used = bool(self.messages or self.errors or self.lat_count)
        return self.used

    def count(self, nbytes: int = 0, messages: int = 1) -> None:
        """``messages`` messages of ``nbytes`` bytes in all went through this end."""
        if nbytes.__class__ is not int or messages.__class__ is not int:
            nbytes, messages = _whole(nbytes, "nbytes"), _whole(messages, "messages")
        if nbytes < 0 or messages < 0:
            raise ValueError(f"link counts must be >= 0, got nbytes={nbytes} messages={messages}")
        with self._lock:
            self.messages += messages
            self.bytes += nbytes

    def fail(self, errors: int = 1) -> None:
        errors = _whole(errors, "errors")
        if errors < 0:
            raise ValueError(f"errors must be >= 0, got {errors}")
        with self._lock:
            self.errors += errors

    def observe(self, seconds: float, inbound: bool = False) -> None:
        """One message's latency, in seconds (the hot path: a log2 and a few additions)."""
        if inbound:
            self.inbound_end.observe(seconds)
            return
        if seconds.__class__ is not float or not 0.0 <= seconds < _INF:
            seconds = check_latency(seconds)
        bucket = int(_log2(seconds) * BUCKETS_PER_DOUBLING + _OFFSET) if seconds >= _TINY else 0
        with self._lock:
            buckets = self.buckets
            buckets[bucket] = buckets.get(bucket, 0) + 1
            self.lat_count += 1
            self.lat_sum += seconds
            if seconds > self.lat_max:
                self.lat_max = seconds

    def take(self, interval: float) -> dict[str, float | None]:
        """The interval's values (see LINK_VARIABLES), and a fresh start for the next one.

        Call with the publisher's lock held. ``rate`` is messages per second of
        the nominal ``interval``. The quantiles are clipped to the largest latency
        (and, for the smallest bucket, to its lower edge), so one latency reads as
        itself within the histogram's resolution.
        """
        self.in_use()  # remembered before the counts go
        count = self.lat_count
        values: dict[str, float | None] = {
            "messages": float(self.messages),
            "bytes": float(self.bytes),
            "errors": float(self.errors),
            "rate": self.messages / interval,
            "lat_count": float(count),
            "lat_mean": None,
            "lat_p50": None,
            "lat_p95": None,
            "lat_max": None,
        }
        if count:
            high = self.lat_max
            values["lat_mean"] = self.lat_sum / count
            values["lat_p50"] = min(high, quantile(self.buckets, count, 0.50))
            values["lat_p95"] = min(high, quantile(self.buckets, count, 0.95))
            values["lat_max"] = high
        self._reset()
        return values


def _whole(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"{name}: expected a whole number, got {value!r}")
    return value


def summarise(
    latencies: list[float], interval: float, messages: int = 0, nbytes: int = 0, errors: int = 0
) -> dict[str, float | None]:
    """The values :meth:`LinkEnd.take` gives for these latencies and counts (tests, the recorder)."""
    end = LinkEnd(threading.Lock())
    end.count(nbytes, messages)
    end.fail(errors)
    for seconds in latencies:
        end.observe(seconds)
    return end.take(interval)
