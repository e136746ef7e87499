"""The recorder's view of itself, recorded like any node's data.

Two built-in datasets on the recorder's own host (``recorder.self_host``):

* ``affair``: counters of everything that happened (stored as DERIVE, so
  graphs show rates per second and a restart is a gap, not a spike), the
  writer's queue depth and write latency, and the delivery latency from a
  sample's own timestamp to its RRD write.
* ``delivery``: one instance per sender, with that sender's delivery latency
  and what it reports of itself with every message: the samples it dropped
  because its buffer was full (cumulative since it started) and the samples
  it holds unacknowledged. ``affair`` carries their sums over the senders
  heard from since the recorder started (``sender_dropped``, ``sender_buffered``),
  so a collector's losses show on the recorder's own graphs.

The config may declare these datasets itself; otherwise these definitions apply.
"""

import re
import threading
from collections import defaultdict

from affair.config import Dataset, Variable
from affair.ingest.graphite import graphite_dataset
from affair.ingest.validate import REASONS

COUNTERS = (
    "messages",
    "received",
    "accepted",
    "duplicates",
    "written",
    "acks",
    "resends",
    "rrd_updates",
)


def _counter(name, label):
    return Variable(name, "DERIVE", "/s", label, 0.0, None)


def builtin_datasets():
    variables = {name: _counter(name, f"{name.replace('_', ' ')} per second") for name in COUNTERS}
    for reason in REASONS:
        name = f"rej_{reason}"
        variables[name] = _counter(name, f"rejected ({reason.replace('_', ' ')}) per second")
    variables["queue_depth"] = Variable(
        "queue_depth", "GAUGE", "samples", "samples waiting for the writer", 0.0
    )
    variables["write_latency"] = Variable(
        "write_latency", "GAUGE", "s", "seconds per rrdtool update call", 0.0
    )
    variables["delivery_avg"] = Variable(
        "delivery_avg", "GAUGE", "s", "sample time to RRD write, mean", 0.0
    )
    variables["delivery_max"] = Variable(
        "delivery_max", "GAUGE", "s", "sample time to RRD write, worst", 0.0
    )
    variables["sender_dropped"] = Variable(
        "sender_dropped", "GAUGE", "samples", "samples senders dropped (buffer full), total", 0.0
    )
    variables["sender_buffered"] = Variable(
        "sender_buffered", "GAUGE", "samples", "samples senders hold unacknowledged", 0.0
    )
    delivery = {
        "latency_avg": Variable("latency_avg", "GAUGE", "s", "sample time to RRD write, mean", 0.0),
        "latency_max": Variable(
            "latency_max", "GAUGE", "s", "sample time to RRD write, worst", 0.0
        ),
        "samples": Variable("samples", "GAUGE", "samples", "samples written in the interval", 0.0),
        "dropped": Variable(
            "dropped", "GAUGE", "samples", "samples dropped (buffer full) since it started", 0.0
        ),
        "buffered": Variable("buffered", "GAUGE", "samples", "samples held unacknowledged", 0.0),
    }
    return {
        "affair": Dataset("affair", "the recorder's own health", variables),
        "delivery": Dataset("delivery", "delivery latency per sender", delivery),
        "graphite": graphite_dataset(),
    }


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

    def __init__(self):
        self.counts = defaultdict(float)
        # Every counter the README names is present from the start, zero or
        # not: a reader of metrics.json must not find a key missing because
        # its cause has not happened yet (or the first interval has not ended).
        for name in (*COUNTERS, *(f"rej_{reason}" for reason in REASONS)):
            self.counts[name] = 0.0
        self._lock = threading.Lock()
        self._delivery = {}  # sender -> [count, total, worst]
        self._reports = {}  # sender -> (dropped, buffered), its latest status

    def sender_report(self, sender, status):
        """A sender's own status from a DATA message (receiving thread only)."""
        if sender not in self._reports and len(self._reports) >= MAX_REPORTING_SENDERS:
            return
        old_dropped, old_buffered = self._reports.get(sender, (0, 0))
        dropped, buffered = status["dropped"], status["buffered"]
        self._reports[sender] = (dropped, buffered)
        self.counts["sender_dropped"] += dropped - old_dropped
        self.counts["sender_buffered"] += buffered - old_buffered

    def add(self, name, amount=1):
        self.counts[name] += amount

    def observe_delivery(self, latencies_by_sender):
        """``{sender: [seconds, ...]}`` for the rows just written."""
        with self._lock:
            for sender, latencies in latencies_by_sender.items():
                for key in ("", sender) if sender else ("",):
                    entry = self._delivery.setdefault(key, [0, 0.0, 0.0])
                    entry[0] += len(latencies)
                    entry[1] += sum(latencies)
                    entry[2] = max(entry[2], max(latencies))

    def merge_delivery(self, delivery):
        """Add another process's ``take_interval()`` result to ours."""
        with self._lock:
            for sender, (count, total, worst) in delivery.items():
                entry = self._delivery.setdefault(sender, [0, 0.0, 0.0])
                entry[0] += count
                entry[1] += total
                entry[2] = max(entry[2], worst)

    def take_interval(self):
        """Return and reset the per-interval delivery statistics."""
        with self._lock:
            delivery, self._delivery = self._delivery, {}
        return delivery

    def self_samples(self, queue_depth, write_calls_before, write_seconds_before):
        """Values for the ``affair`` and ``delivery`` datasets; see :class:`~affair.ingest.recorder.Recorder`."""
        counts = self.counts
        values = {name: counts[name] for name in COUNTERS}
        for reason in REASONS:
            values[f"rej_{reason}"] = counts[f"rej_{reason}"]
        values["queue_depth"] = float(queue_depth)
        calls = counts["rrd_updates"] - write_calls_before
        seconds = counts["write_seconds"] - write_seconds_before
        values["write_latency"] = seconds / calls if calls else None
        delivery = self.take_interval()
        overall = delivery.pop("", None)
        values["delivery_avg"] = overall[1] / overall[0] if overall else None
        values["delivery_max"] = overall[2] if overall else None
        values["sender_dropped"] = counts["sender_dropped"]
        values["sender_buffered"] = counts["sender_buffered"]
        # A row per sender whose samples were written in the interval, with its
        # latest own report; a sender heard from but not written (all refused,
        # or all resends) still counts in the totals above.
        per_sender = {}
        for sender, (count, total, worst) in delivery.items():
            row = {"latency_avg": total / count, "latency_max": worst, "samples": float(count)}
            if sender in self._reports:
                row["dropped"], row["buffered"] = (float(n) for n in self._reports[sender])
            per_sender[sender_instance(sender)] = row
        return values, per_sender
