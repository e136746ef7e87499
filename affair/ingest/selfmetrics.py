"""The recorder's view of itself, recorded like any node's data.

:class:`Metrics` counts what happens and gives the values of the two
built-in datasets on the recorder's own host, ``affair`` and ``delivery``;
their declarations, and what each variable means, are in
:mod:`affair.config.builtin`.
"""

import re
import threading
from collections import defaultdict

from affair.collectors.linkstats import bucket_of, quantile
from affair.config.builtin import RECORDER_COUNTERS
from affair.errors import InvalidName
from affair.ingest.senders import SenderReports
from affair.names import link_instance
from affair.vocab import RECORDER_DAEMON, REJECTION_REASONS

COLLECTOR_DAEMON = "collector"  # a sender named by its host alone is that host's collector


def sender_instance(sender):
    """A sender's name as a safe instance name (dots and the like become '_')."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", sender)[:40].lstrip("_-")
    return cleaned or "unknown"


MAX_REPORTING_SENDERS = 10_000  # sender states kept; a flood of names cannot grow it further


class Metrics:
    """Counters shared by the receiving and writing threads.

    Each counter is only ever incremented by one thread, so plain dict
    arithmetic under the GIL is enough; the lock guards the interval
    statistics that are read and reset together.
    """

    def __init__(self, senders: SenderReports | None = None):
        self.counts = defaultdict(float)
        # Every counter the README names is present from the start, zero or
        # not: a reader of metrics.json must not find a key missing because
        # its cause has not happened yet (or the first interval has not ended).
        for name in (*RECORDER_COUNTERS, *(f"rej_{reason}" for reason in REJECTION_REASONS)):
            self.counts[name] = 0.0
        self._lock = threading.Lock()
        # sender -> [count, total, worst, {latency bucket: count}]
        self._delivery: dict[str, list] = {}
        # each sender's latest status, bounded (affair.ingest.senders)
        self.senders = senders or SenderReports(max_senders=MAX_REPORTING_SENDERS)

    def sender_report(self, sender, status):
        """A sender's own status from a DATA message (receiving thread only)."""
        senders = self.senders
        if not senders.report(sender, status["dropped"], status["buffered"]):
            self.counts["sender_implausible"] = float(senders.implausible)
        self._sync_sender_totals()

    def _sync_sender_totals(self):
        senders = self.senders
        self.counts["sender_dropped"] = float(senders.dropped_total)
        self.counts["sender_buffered"] = float(senders.buffered_total)

    def add(self, name, amount=1):
        self.counts[name] += amount

    def observe_delivery(self, latencies_by_sender):
        """``{sender: [seconds, ...]}`` for the rows just written."""
        with self._lock:
            for sender, latencies in latencies_by_sender.items():
                # as many senders as the reports keep, so a flood of names cannot grow it
                keep = sender and (
                    sender in self._delivery or len(self._delivery) <= MAX_REPORTING_SENDERS
                )
                for key in ("", sender) if keep else ("",):
                    entry = self._delivery.setdefault(key, [0, 0.0, 0.0, {}])
                    entry[0] += len(latencies)
                    entry[1] += sum(latencies)
                    entry[2] = max(entry[2], max(latencies))
                    if key:  # the histogram feeds the sender's link; the overall row needs none
                        buckets = entry[3]
                        for seconds in latencies:
                            bucket = bucket_of(max(0.0, seconds))
                            buckets[bucket] = buckets.get(bucket, 0) + 1

    def merge_delivery(self, delivery):
        """Add another process's ``take_interval()`` result to ours."""
        with self._lock:
            for sender, (count, total, worst, *histogram) in delivery.items():
                entry = self._delivery.setdefault(sender, [0, 0.0, 0.0, {}])
                entry[0] += count
                entry[1] += total
                entry[2] = max(entry[2], worst)
                for bucket, n in (histogram[0] if histogram else {}).items():
                    entry[3][int(bucket)] = entry[3].get(int(bucket), 0) + n

    def take_interval(self):
        """Return and reset the per-interval delivery statistics."""
        with self._lock:
            delivery, self._delivery = self._delivery, {}
        return delivery

    def self_samples(self, queue_depth, write_calls_before, write_seconds_before, interval=10):
        """Values for the ``affair`` and ``delivery`` datasets; see :class:`~affair.ingest.recorder.Recorder`.

        The senders' links of the same interval (``{links instance: values}``) are
        left for :meth:`take_links`; ``interval``: seconds since the last call.
        """
        counts = self.counts
        values = {name: counts[name] for name in RECORDER_COUNTERS}
        for reason in REJECTION_REASONS:
            values[f"rej_{reason}"] = counts[f"rej_{reason}"]
        values["queue_depth"] = float(queue_depth)
        calls = counts["rrd_updates"] - write_calls_before
        seconds = counts["write_seconds"] - write_seconds_before
        values["write_latency"] = seconds / calls if calls else None
        delivery = self.take_interval()
        overall = delivery.pop("", None)
        values["delivery_avg"] = overall[1] / overall[0] if overall else None
        values["delivery_max"] = overall[2] if overall else None
        self.senders.forget_idle(self.senders.clock())
        self._sync_sender_totals()
        values["sender_dropped"] = counts["sender_dropped"]
        values["sender_buffered"] = counts["sender_buffered"]
        # A row per sender whose samples were written in the interval, with its
        # latest own report; a sender heard from but not written (all refused,
        # or all resends) still counts in the totals above.
        per_sender = {}
        links = {}
        for sender, (count, total, worst, buckets) in delivery.items():
            row = {"latency_avg": total / count, "latency_max": worst, "samples": float(count)}
            report = self.senders.get(sender)
            if report is not None:
                row["dropped"], row["buffered"] = (float(n) for n in report)
            per_sender[sender_instance(sender)] = row
            instance = sender_link_instance(sender)
            if instance is not None:
                links[instance] = link_values(count, total, worst, buckets, interval)
        self._links = links
        return values, per_sender

    _links: dict = {}

    def take_links(self):
        """The ``links`` rows of the interval :meth:`self_samples` just closed."""
        links, self._links = self._links, {}
        return links


def sender_link_instance(sender):
    """The recorder's end of the link from ``sender`` to it, or None if its name cannot be a link.

    A sender is named ``host`` (a collector) or ``host.dataset`` (a Publisher, whose
    daemon is named after its dataset unless it says otherwise); a host name with dots
    cannot be part of a link, so such a sender has none.
    """
    host, _, daemon = sender.rpartition(".") if "." in sender else (sender, "", COLLECTOR_DAEMON)
    try:
        return link_instance(RECORDER_DAEMON, "in", host, daemon)
    except InvalidName:  # a host with dots or underscores, names too long: no link
        return None


def link_values(count, total, worst, buckets, interval):
    """The ``links`` values of the samples one sender had written in an interval.

    Latency here is the delivery latency: the sample's own time to its RRD write.
    """
    return {
        "messages": float(count),
        "bytes": None,
        "errors": 0.0,
        "rate": count / interval,
        "lat_count": float(count),
        "lat_mean": total / count,
        "lat_p50": min(worst, quantile(buckets, count, 0.50)),
        "lat_p95": min(worst, quantile(buckets, count, 0.95)),
        "lat_max": worst,
    }
