"""Words several stages share, kept in one place so they cannot drift apart.

Config validates against them; plot, site, status, validation and the
recorder's own metrics use them. Pure data: this module imports nothing.
"""

# Graph windows and the seconds each shows. "1m" is a month here (a graph
# window), while in durations (``archive.ladder``) "1min" is a minute.
WINDOWS = {
    "1h": 3600,
    "6h": 6 * 3600,
    "1d": 86400,
    "1w": 7 * 86400,
    "1m": 31 * 86400,
    "3m": 92 * 86400,
    "1y": 366 * 86400,
}
WINDOW_NAMES = tuple(WINDOWS)

# Status colours, worst first: the order counts and summaries list them in.
STATUS_COLOURS = ("red", "yellow", "grey", "green")
# How bad each colour is; "unknown" (a rule with no value to judge) weighs like green.
SEVERITY = {"green": 0, "unknown": 0, "grey": 1, "yellow": 2, "red": 3}
# What a failing rule may turn a host: green is what passing means.
RULE_COLOURS = ("yellow", "red", "grey")

# librrd's consolidation functions and data source types.
CONSOLIDATIONS = ("AVERAGE", "MIN", "MAX", "LAST")
VARIABLE_TYPES = ("GAUGE", "COUNTER", "DERIVE", "ABSOLUTE")
# How a graph draws the consolidations it can show, in the order its key explains them.
CONSOLIDATION_STYLES = {"AVERAGE": "solid", "MAX": "dashed", "MIN": "dotted"}

# Why the recorder refuses a sample (``rej_<reason>`` counters, the reason in
# an ACK); affair.ingest.validate says when each applies.
REJECTION_REASONS = (
    "undecodable",
    "version",
    "structure",
    "oversized",
    "name",
    "value",
    "future",
    "past",
    "undeclared",
    "var_cap",
    "series_cap",
    "not_increasing",
    "write_error",
    "auth",
    "handshake",
    "host_not_bound",
    "host_cap",
)

# Why the Graphite listener refuses a line (``bad_<reason>`` counters):
GRAPHITE_LINE_REASONS = (
    "encoding",  # not UTF-8
    "fields",  # not exactly three fields
    "value",  # not a number, or infinite
    "timestamp",  # not a number
    "too_long",  # longer than max_line_bytes
    "unmatched",  # no rule matches the path
    "name",  # the mapped host (or another name) is not usable
)
# ... parsing and mapping, then the recorder's own validation of the sample.
GRAPHITE_REFUSALS = (*GRAPHITE_LINE_REASONS, "future", "past", "undeclared", "var_cap")

# Links between daemons (``host/daemon`` -> ``host/daemon``): the dataset each
# end is stored in (one RRD per link and end, under the reporting daemon's
# host), the two ends, and the recorder's own name as a daemon.
LINK_DATASET = "links"
LINK_ENDS = ("out", "in")  # out: the source's view (sent), in: the target's (received)
RECORDER_DAEMON = "recorder"  # affair record as a daemon: <recorder.self_host>/recorder
