"""The ``net`` dataset: one instance per network interface.

Byte, packet, error and drop counters are sent raw (the config declares
them DERIVE with min 0: rates per second, and an interface that is
re-created with fresh counters is one unknown slot, not a spike), with the
link state and speed. An interface that disappears stops being sent and
its graphs go stale; a new one gets its RRD on first sight.
Interface names become instance names (``eth0.100`` -> ``eth0_100``).
"""

import fnmatch

import psutil

from affair.names import safe_name


def is_excluded(interface, patterns):
    """Whether ``[collector.net] exclude`` leaves ``interface`` out (the system totals too)."""
    return any(fnmatch.fnmatchcase(interface, pattern) for pattern in patterns)


class NetProbe:
    name = "net"
    variables = (
        "bytes_in",
        "bytes_out",
        "packets_in",
        "packets_out",
        "errors_in",
        "errors_out",
        "drops_in",
        "drops_out",
        "up",
        "speed",
    )

    def __init__(self, settings=None, psutil_module=psutil):
        self.exclude = tuple(settings.exclude) if settings else ()
        self.psutil = psutil_module

    @classmethod
    def from_config(cls, collector_config):
        return cls(collector_config.net)

    def sample(self):
        counters = self.psutil.net_io_counters(pernic=True)
        try:
            link = self.psutil.net_if_stats()
        except OSError:
            link = {}
        result = {}
        for interface, io in counters.items():
            if is_excluded(interface, self.exclude):
                continue
            instance = safe_name("instance", interface)
            if instance is None or instance in result:
                continue
            values = {
                "bytes_in": float(io.bytes_recv),
                "bytes_out": float(io.bytes_sent),
                "packets_in": float(io.packets_recv),
                "packets_out": float(io.packets_sent),
                "errors_in": float(io.errin),
                "errors_out": float(io.errout),
                "drops_in": float(io.dropin),
                "drops_out": float(io.dropout),
            }
            state = link.get(interface)
            values["up"] = (1.0 if state.isup else 0.0) if state else None
            values["speed"] = float(state.speed) if state and state.speed > 0 else None
            result[instance] = values
        return result
