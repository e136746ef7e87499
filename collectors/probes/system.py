"""The ``system`` dataset: CPU, load, memory, swap, disk and network totals.

Counters (disk bytes, network bytes and packets) are sent raw; the config
declares them DERIVE with min 0, so librrd stores them as rates per second
and a counter reset (reboot, wrap) is an unknown slot, not a spike.
"""

import os

import psutil


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

    def __init__(self, psutil_module=psutil):
        self.psutil = psutil_module
        self.psutil.cpu_times_percent(interval=None)  # the first call only sets the baseline

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
        net = ps.net_io_counters()
        if net is not None:
            values["net_in"] = float(net.bytes_recv)
            values["net_out"] = float(net.bytes_sent)
            values["net_pkts_in"] = float(net.packets_recv)
            values["net_pkts_out"] = float(net.packets_sent)
        return {"": values}
