"""Simulated cluster nodes with believable, varied load, for the demo and benchmarks.

The hosts are named like an ALICE DAQ farm: ``ldcNN`` (local data
concentrators, reading detectors and writing to disk) and ``gdcNN`` (global
data collectors, building events from the network). Load follows the data
taking: runs of an hour with 20-minute pauses, a daily swell, per-host
character and noise, and a few hosts with a habit (one runs hot, one swaps)
so status colours have something to show. Counters (bytes, packets) only
grow, as real ones do, and are sent raw like the real collector's.
"""

import math
import random

RUN_PERIOD = 80 * 60  # a run of 60 min, then 20 min between runs
RUN_LENGTH = 60 * 60
GB = 1024**3
MB = 1024**2


def host_names(count):
    """``ldc01..`` for 60% of the nodes, ``gdc01..`` for the rest."""
    local = max(1, round(count * 0.6)) if count > 1 else count
    names = [f"ldc{i:02d}" for i in range(1, local + 1)]
    names += [f"gdc{i:02d}" for i in range(1, count - local + 1)]
    return names


def in_run(ts):
    return (ts % RUN_PERIOD) < RUN_LENGTH


class SimulatedNode:
    """One node's ``system`` dataset as a function of time (plus its counters)."""

    def __init__(self, name, seed=0):
        self.name = name
        self.random = random.Random(f"{seed}-{name}")
        self.is_gdc = name.startswith("gdc")
        self.phase = self.random.uniform(0, 2 * math.pi)
        self.busy = self.random.uniform(0.6, 1.2)
        self.memory_total = 64 * GB if self.is_gdc else 32 * GB
        self.hot = name in ("ldc03", "gdc02")  # runs close to its limits
        self.swapper = name == "ldc05"
        counters = ("disk_read", "disk_write", "net_in", "net_out", "net_pkts_in", "net_pkts_out")
        self.counters = {name: self.random.uniform(1e9, 1e12) for name in counters}
        self.last_ts = None

    def sample(self, ts):
        rnd = self.random
        daily = 0.5 + 0.5 * math.sin(2 * math.pi * ts / 86400 + self.phase)
        running = in_run(ts)
        activity = (0.55 + 0.35 * daily) * self.busy if running else 0.08 + 0.05 * daily
        if self.hot:
            activity = min(1.0, activity * 1.45 + 0.1)
        activity = max(0.0, min(1.0, activity + rnd.gauss(0, 0.04)))
        cpu_user = min(97.0, 85 * activity + rnd.uniform(0, 3))
        cpu_system = min(100 - cpu_user, 0.25 * cpu_user + rnd.uniform(0, 2))
        cpu_iowait = max(0.0, rnd.gauss(2 if running else 0.5, 1.0)) + (
            15 if rnd.random() < 0.01 else 0
        )
        memory_used = self.memory_total * min(
            0.97, 0.35 + 0.45 * activity + (0.2 if self.hot else 0)
        )
        swap = (2 * GB + 1 * GB * daily) if self.swapper else 0.0
        # rates, bytes/s
        if self.is_gdc:
            net_in = (400 * MB * activity if running else 2 * MB) * rnd.uniform(0.9, 1.1)
            net_out = net_in * 0.05
            disk_write = net_in * 0.95 if running else 0.5 * MB
            disk_read = 1 * MB * rnd.uniform(0, 2)
        else:
            disk_read = (120 * MB * activity if running else 0.2 * MB) * rnd.uniform(0.9, 1.1)
            disk_write = disk_read * 0.2
            net_out = disk_read * 0.98
            net_in = net_out * 0.02
        rates = {
            "disk_read": disk_read,
            "disk_write": disk_write,
            "net_in": net_in,
            "net_out": net_out,
            "net_pkts_in": net_in / 1400 + 50,
            "net_pkts_out": net_out / 1400 + 50,
        }
        elapsed = 10.0 if self.last_ts is None else max(0.0, ts - self.last_ts)
        self.last_ts = ts
        for key, rate in rates.items():
            self.counters[key] += rate * elapsed
        cores = 32 if self.is_gdc else 16
        load = cores * (cpu_user + cpu_system) / 100
        values = {
            "cpu_user": round(cpu_user, 2),
            "cpu_system": round(cpu_system, 2),
            "cpu_iowait": round(cpu_iowait, 2),
            "load1": round(load * rnd.uniform(0.9, 1.1), 2),
            "load5": round(load, 2),
            "load15": round(load * 0.95, 2),
            "mem_used": float(int(memory_used)),
            "mem_free": float(int(self.memory_total - memory_used)),
            "swap_used": float(int(swap)),
        }
        values.update({key: float(int(value)) for key, value in self.counters.items()})
        return values
