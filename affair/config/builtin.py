"""The built-in datasets: what the recorder and its Graphite listener record of themselves.

They are recorded under the recorder's own host (``recorder.self_host``)
like any node's data, so config declares them: graphs, rules and pages can
name them without a ``[datasets]`` entry. The config may still declare one of
them itself; its declaration then applies. What fills them in is
affair.ingest.selfmetrics and affair.ingest.graphite_server.

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
* ``links``: one instance per link between daemons and end of it
  (:func:`affair.names.link_instance`), under the reporting daemon's host:
  what the applications report through ``Publisher.link()`` and what the
  recorder reports of every sender's link to it, per interval.
* ``graphite``: the listener's lines, samples and connections, and its
  refusals by reason.
"""

from affair.config.datasets import Dataset, Variable
from affair.vocab import GRAPHITE_REFUSALS, LINK_DATASET, REJECTION_REASONS

# What the recorder counts (besides rej_<reason> for each rejection reason).
RECORDER_COUNTERS = (
    "messages",
    "received",
    "accepted",
    "duplicates",
    "written",
    "acks",
    "resends",
    "rrd_updates",
    "early_disconnect",  # connections closed before ZeroMQ's greeting ended (probes, exits)
    "sender_implausible",  # sender reports of more drops than it could have made: ignored
)
# What the Graphite listener counts (besides bad_<reason> for each refusal).
GRAPHITE_COUNTER_LABELS = {
    "lines": "lines received per second",
    "samples": "samples passed on per second",
    "connections": "connections accepted per second",
    "refused": "connections refused per second",
    "throttled": "seconds clients waited for credit, per second",
    "client_limit": "connections refused per second: too many from one address",
    "slow": "connections closed per second: a line not ended in line_timeout",
}
GRAPHITE_COUNTERS = tuple(GRAPHITE_COUNTER_LABELS)


def _counter(name, label):
    return Variable(name, "DERIVE", "/s", label, 0.0, None)


def _gauge(name, unit, label):
    return Variable(name, "GAUGE", unit, label, 0.0)


def builtin_datasets() -> dict[str, Dataset]:
    return {
        "affair": recorder_dataset(),
        "delivery": delivery_dataset(),
        "graphite": graphite_dataset(),
        "links": links_dataset(),
    }


def recorder_dataset() -> Dataset:
    variables = {
        name: _counter(name, f"{name.replace('_', ' ')} per second") for name in RECORDER_COUNTERS
    }
    for reason in REJECTION_REASONS:
        name = f"rej_{reason}"
        variables[name] = _counter(name, f"rejected ({reason.replace('_', ' ')}) per second")
    for variable in (
        _gauge("queue_depth", "samples", "samples waiting for the writer"),
        _gauge("write_latency", "s", "seconds per rrdtool update call"),
        _gauge("delivery_avg", "s", "sample time to RRD write, mean"),
        _gauge("delivery_max", "s", "sample time to RRD write, worst"),
        _gauge("sender_dropped", "samples", "samples senders dropped (buffer full), total"),
        _gauge("sender_buffered", "samples", "samples senders hold unacknowledged"),
        _gauge("disk_full", "", "1 while the data dir's disk is full (not acknowledging)"),
        _gauge("refused_hosts", "hosts", "new hosts refused: max_hosts reached"),
        _gauge("journal_bytes", "B", "bytes in the journal"),
        _gauge("journal_free", "B", "free bytes on the journal's file system"),
        _gauge("archive_bytes", "B", "bytes in the permanent archive"),
        _gauge("archive_free", "B", "free bytes on the archive's file system"),
        _gauge("days_unarchived", "days", "finished journal days not archived yet"),
    ):
        variables[variable.name] = variable
    return Dataset("affair", "the recorder's own health", variables)


def delivery_dataset() -> Dataset:
    variables = (
        _gauge("latency_avg", "s", "sample time to RRD write, mean"),
        _gauge("latency_max", "s", "sample time to RRD write, worst"),
        _gauge("samples", "samples", "samples written in the interval"),
        _gauge("dropped", "samples", "samples dropped (buffer full) since it started"),
        _gauge("buffered", "samples", "samples held unacknowledged"),
    )
    return Dataset("delivery", "delivery latency per sender", {v.name: v for v in variables})


def graphite_dataset() -> Dataset:
    """The listener's own ``graphite`` dataset, recorded under the recorder's host name."""
    variables = {name: _counter(name, label) for name, label in GRAPHITE_COUNTER_LABELS.items()}
    variables["open"] = _gauge("open", "", "open connections")
    for reason in GRAPHITE_REFUSALS:
        name = f"bad_{reason}"
        variables[name] = _counter(name, f"refused ({reason.replace('_', ' ')}) per second")
    return Dataset("graphite", "the Graphite plaintext listener", variables)


def links_dataset() -> Dataset:
    """One end of a link, per interval (affair.collectors.linkstats makes the values)."""
    variables = (
        _gauge("messages", "msgs", "messages in the interval"),
        _gauge("bytes", "B", "bytes in the interval"),
        _gauge("errors", "errors", "errors in the interval"),
        _gauge("rate", "msg/s", "messages per second"),
        _gauge("lat_count", "msgs", "latencies measured in the interval"),
        _gauge("lat_mean", "s", "latency, mean"),
        _gauge("lat_p50", "s", "latency, median"),
        _gauge("lat_p95", "s", "latency, 95th percentile"),
        _gauge("lat_max", "s", "latency, worst"),
    )
    return Dataset(LINK_DATASET, "links between daemons, per end", {v.name: v for v in variables})


# What each forwarder counts (affair.ingest.forward), besides its lag.
FORWARD_COUNTER_LABELS = {
    "sent": "samples the target accepted per second",
    "rejected": "samples the target refused (4xx) per second",
    "failures": "failed sends (retried) per second",
    "skipped": "samples retention removed before they were sent, per second",
}


def forward_dataset() -> Dataset:
    """One instance per ``[[forward]]`` target, recorded under the recorder's host name.

    Declared only when the config has a target (see affair.config.parse_config).
    """
    variables = {name: _counter(name, label) for name, label in FORWARD_COUNTER_LABELS.items()}
    variables["lag_seconds"] = _gauge("lag_seconds", "s", "age of the oldest sample not yet sent")
    variables["lag_samples"] = _gauge("lag_samples", "samples", "journaled samples not yet sent")
    return Dataset("forward", "forwarding to each [[forward]] target", variables)
