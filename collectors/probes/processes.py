"""The ``processes`` dataset: one instance per process selector in the config.

A selector (``[[collector.processes]]``) names processes by their name as
``ps -e`` shows it, by text in their command line, or by a pid file. All
processes a selector matches are summed: ``cpu`` (% of one core since the
last sample), ``rss`` (bytes), ``threads``, ``open_files`` (file
descriptors) and ``count``; ``alive`` is 1 while at least one runs. A
selector that matches nothing is sent as alive 0 and count 0 with the rest
unknown, so a dead daemon shows as red, not as a stale graph.

CPU is computed from each process's own CPU-time counters between two
samples, so the first sample of a newly seen process counts no CPU for it
(rather than a guess); a process whose pid was reused is recognised by its
start time.
"""

import contextlib
import logging
import os
import time

import psutil

log = logging.getLogger(__name__)


def scan_proc(proc_root="/proc", need_cmdline=False):
    """Yield ``(pid, name, command line)`` from a Linux /proc tree.

    Raw os.open/os.read of ``comm`` (and ``cmdline``): much cheaper than
    psutil.process_iter (see benchmarks/RESULTS.md), which matters when it
    runs every interval on every node. Processes that vanish mid-scan are skipped.
    """
    for entry in os.scandir(proc_root):
        if not entry.name.isdigit():
            continue
        try:
            name = (
                _read(f"{proc_root}/{entry.name}/comm", 64).rstrip(b"\n").decode(errors="replace")
            )
            command = ""
            if need_cmdline:
                raw = _read(f"{proc_root}/{entry.name}/cmdline", 8192)
                command = raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        yield int(entry.name), name, command


def _read(path, size):
    handle = os.open(path, os.O_RDONLY)
    try:
        return os.read(handle, size)
    finally:
        os.close(handle)


class ProcessesProbe:
    name = "processes"
    variables = ("alive", "count", "cpu", "rss", "threads", "open_files")

    def __init__(self, selectors=(), psutil_module=psutil, clock=time.monotonic, proc_root="/proc"):
        self.selectors = tuple(selectors)
        self.psutil = psutil_module
        self.proc_root = proc_root
        self.clock = clock
        self._previous = {}  # (pid, create_time) -> (cpu seconds, clock)
        self._unreadable = set()  # pid files reported once

    @classmethod
    def from_config(cls, collector_config):
        return cls(collector_config.processes)

    def sample(self):
        if not self.selectors:
            return {}
        now = self.clock()
        matched = self._match()
        seen = {}
        result = {}
        for selector in self.selectors:
            result[selector.instance] = self._measure(matched[selector.instance], now, seen)
        self._previous = seen  # processes gone since the last sample are forgotten
        return result

    def _match(self):
        """instance -> [psutil.Process], one pass over the process table for all selectors."""
        matched = {selector.instance: [] for selector in self.selectors}
        by_name = [s for s in self.selectors if s.name]
        by_cmdline = [s for s in self.selectors if s.cmdline]
        if by_name or by_cmdline:
            for pid, name, command in self.scan(need_cmdline=bool(by_cmdline)):
                for selector in by_name:
                    if name == selector.name[:15]:  # the kernel keeps 15 characters of a name
                        self._add(matched[selector.instance], pid)
                for selector in by_cmdline:
                    if selector.cmdline in command:
                        self._add(matched[selector.instance], pid)
        for selector in self.selectors:
            if selector.pidfile:
                process = self._from_pidfile(selector.pidfile)
                if process is not None:
                    matched[selector.instance].append(process)
        return matched

    def scan(self, need_cmdline):
        """``(pid, name, command line)`` of every process, as cheaply as the system allows."""
        if os.path.isdir(self.proc_root):
            return scan_proc(self.proc_root, need_cmdline)
        attributes = ["name", "cmdline"] if need_cmdline else ["name"]
        return (
            (p.pid, p.info.get("name") or "", " ".join(p.info.get("cmdline") or ()))
            for p in self.psutil.process_iter(attributes)
        )

    def _add(self, processes, pid):
        with contextlib.suppress(self.psutil.Error):  # gone since the scan
            processes.append(self.psutil.Process(pid))

    def _from_pidfile(self, path):
        try:
            with open(path) as handle:
                pid = int(handle.read().split()[0])
            process = self.psutil.Process(pid)
        except (OSError, ValueError, IndexError, self.psutil.Error) as error:
            if path not in self._unreadable:
                self._unreadable.add(path)
                log.info("processes: %s names no running process (%s)", path, error)
            return None
        self._unreadable.discard(path)
        return process

    def _measure(self, processes, now, seen):
        totals = {"rss": 0.0, "threads": 0.0, "open_files": 0.0}
        cores = 0.0  # CPU seconds per second since the last sample, of processes seen both times
        cpu_known = False
        counted = set()
        fds_known = True
        count = 0
        for process in processes:
            try:
                with process.oneshot():
                    key = (process.pid, process.create_time())
                    if key in counted:  # matched twice (name and pid file): count once
                        continue
                    times = process.cpu_times()
                    memory = process.memory_info()
                    threads = process.num_threads()
                    try:
                        fds = process.num_fds()
                    except (self.psutil.AccessDenied, AttributeError):
                        fds = None
            except self.psutil.Error:  # it exited (or is not ours to read) in the meantime
                continue
            count += 1
            counted.add(key)
            total = times.user + times.system
            seen[key] = (total, now)
            previous = self._previous.get(key)
            if previous is not None and now > previous[1]:
                cores += max(0.0, total - previous[0]) / (now - previous[1])
                cpu_known = True
            totals["rss"] += memory.rss
            totals["threads"] += threads
            if fds is None:
                fds_known = False
            else:
                totals["open_files"] += fds
        if count == 0:
            return {
                "alive": 0.0,
                "count": 0.0,
                "cpu": None,
                "rss": None,
                "threads": None,
                "open_files": None,
            }
        return {
            "alive": 1.0,
            "count": float(count),
            "cpu": 100.0 * cores if cpu_known else None,
            "rss": totals["rss"],
            "threads": totals["threads"],
            "open_files": totals["open_files"] if fds_known else None,
        }
