"""The ``system`` dataset: CPU, load, memory, swap, disk and network totals.

Counters (disk bytes, network bytes and packets) are sent raw; the config
declares them DERIVE with min 0, so librrd stores them as rates per second
and a counter reset (reboot, wrap) is an unknown slot, not a spike.

The network totals are the sum over the interfaces the ``net`` probe
reports: ``[collector.net] exclude`` (default ``lo``, ``veth*``) leaves the
same ones out of both, so a node's total is not its loopback traffic while
every interface shows 0 B/s.
"""

import os

import psutil
from affair.collectors.probes.net import is_excluded


class SystemProbe:
    name = "system"
    variables = (
        "cpu_user",
        "cpu_system",
        "cpu_iowait",
        "load1",
        "load5",
        "load15",
        "mem_used",
        "mem_free",
        "swap_used",
        "disk_read",
        "disk_write",
        "net_in",
        "net_out",
        "net_pkts_in",
        "net_pkts_out",
    )

    def __init__(self, settings=None, psutil_module=psutil):
        self.psutil = psutil_module
        self.exclude = tuple(settings.exclude) if settings else ()
        self.psutil.cpu_times_percent(interval=None)  # the first call only sets the baseline

    @classmethod
    def from_config(cls, collector_config):
        return cls(collector_config.net)

    def sample(self):
        ps = self.psutil
        cpu = ps.cpu_times_percent(interval=None)
        load1, load5, load15 = os.getloadavg()
        memory = ps.virtual_memory()
        swap = ps.swap_memory()
        values = {
            "cpu_user": cpu.user + getattr(cpu, "nice", 0.0),
            "cpu_system": cpu.system + getattr(cpu, "irq", 0.0) + getattr(cpu, "softirq", 0.0),
            "cpu_iowait": getattr(cpu, "iowait", 0.0),
            "load1": load1,
            "load5": load5,
            "load15": load15,
            "mem_used": float(memory.total - memory.available),
            "mem_free": float(memory.available),
            "swap_used": float(swap.used),
        }
        disk = ps.disk_io_counters()
        if disk is not None:
            values["disk_read"] = float(disk.read_bytes)
            values["disk_write"] = float(disk.write_bytes)
        interfaces = ps.net_io_counters(pernic=True)
        if interfaces:
            counted = [io for name, io in interfaces.items() if not is_excluded(name, self.exclude)]
            values["net_in"] = float(sum(io.bytes_recv for io in counted))
            values["net_out"] = float(sum(io.bytes_sent for io in counted))
            values["net_pkts_in"] = float(sum(io.packets_recv for io in counted))
            values["net_pkts_out"] = float(sum(io.packets_sent for io in counted))
        return {"": values}
