"""The recorder's side of forwarding: the forwarder processes, their reports, and retention.

:mod:`affair.ingest.forward` is one forwarder; this starts one per
``[[forward]]`` target beside the recorder, restarts one that dies, reads
what they report (``_state/forward-<name>.json``) into the recorder's own
metrics, and tells journal retention which days a forwarder still needs.
"""

import json
import logging
import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

from affair.config import Config
from affair.errors import JournalError
from affair.ingest.forward import (
    FORWARD_COUNTERS,
    forward_main,
    state_path,
    watermark_path,
)
from affair.storage.journal import DAY_FILE_GLOB, JournalPosition, Watermark, open_day_readonly

log = logging.getLogger(__name__)


# --- retention: the journal keeps what a forwarder has not consumed, up to a cap ---


def forward_keep_from(
    keep_from: str, positions: dict[str, JournalPosition | None], hold_from: dict[str, str]
) -> str:
    """The oldest day retention must keep for the forwarders: a pure function.

    ``keep_from``: the first day retention would keep anyway ('YYYY-MM-DD');
    ``positions``: each target's watermark (None: it has consumed nothing);
    ``hold_from``: each target's cap, the oldest day kept for it however far
    behind it is. A target holds back the day of its watermark (the rest of
    that day is unsent), never before its cap.
    """
    oldest = keep_from
    for name, position in positions.items():
        wanted = position[0] if position and position[0] else ""
        wanted = max(wanted, hold_from[name])
        oldest = min(oldest, wanted)
    return oldest


def unsent_in_day(journal_day_rows: int, position: JournalPosition | None, day: str) -> int:
    """How many of a day's ``journal_day_rows`` rows a target at ``position`` has not sent."""
    if position is None or position[0] < day:
        return journal_day_rows
    if position[0] == day:
        return max(0, journal_day_rows - position[1])
    return 0


class ForwarderProcesses:
    """The recorder's side: one forwarder process per target, their states, retention's floor.

    Kept apart from :mod:`affair.ingest.recorder` so the receiving path has
    four calls to make: ``start``, ``check``, ``stop`` and reading what the
    forwarders report (``self_samples``, ``metrics``, ``keep_from``).
    """

    RESTART_AFTER = 1.0  # seconds between a forwarder's death and its restart

    def __init__(self, config: Config, log_level: str = "INFO", clock=time.time) -> None:
        self.config = config
        self.targets = config.forward
        self.log_level = log_level
        self.clock = clock
        data_dir = Path(config.recorder.data_dir)
        self.journal_dir = data_dir / "_journal"
        self.state_dir = data_dir / "_state"
        self.processes: dict[str, multiprocessing.process.BaseProcess] = {}
        self.skipped = dict.fromkeys((t.name for t in self.targets), 0)
        self._dead_since: dict[str, float] = {}

    def start(self) -> None:
        for target in self.targets:
            self._start(target.name)

    def _start(self, name):
        process = multiprocessing.get_context("spawn").Process(
            target=forward_main,
            name=f"affair-forward-{name}",
            args=(self.config, name, os.getpid(), self.log_level),
        )
        process.start()
        self.processes[name] = process

    def check(self) -> None:
        """Restart a forwarder that died (its watermark says where to go on)."""
        now = time.monotonic()
        for name, process in self.processes.items():
            if process.is_alive():
                continue
            since = self._dead_since.setdefault(name, now)
            if now - since < self.RESTART_AFTER:
                continue
            log.error(
                "the forwarder to %s died (exit code %s); starting a new one",
                name,
                process.exitcode,
            )
            process.join()
            del self._dead_since[name]
            self._start(name)

    def stop(self, timeout: float = 10.0) -> None:
        for process in self.processes.values():
            if process.is_alive():
                process.terminate()  # SIGTERM: it stops between batches
        deadline = time.monotonic() + timeout
        for name, process in self.processes.items():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("the forwarder to %s did not stop in %gs; killing it", name, timeout)
                process.kill()
                process.join()

    def states(self) -> dict[str, dict]:
        """Each target's latest state file (an empty dict until its forwarder wrote one)."""
        states = {}
        for target in self.targets:
            try:
                states[target.name] = json.loads(
                    state_path(self.state_dir, target.name).read_text()
                )
            except (OSError, ValueError):
                states[target.name] = {}
        return states

    def self_samples(self) -> dict[str, dict[str, float | None]]:
        """``{target name: values of the forward dataset}`` for the recorder's own host."""
        samples = {}
        for name, state in self.states().items():
            values: dict[str, float | None] = {
                key: float(state[key]) if key in state else None
                for key in (*FORWARD_COUNTERS, "lag_seconds", "lag_samples")
            }
            values["skipped"] = float(self.skipped[name])
            samples[name] = values
        return samples

    def metrics(self) -> dict[str, float]:
        """Flat ``forward_<name>_<key>`` numbers for metrics.json."""
        flat = {}
        for name, values in self.self_samples().items():
            for key, value in values.items():
                flat[f"forward_{name}_{key}"] = value if value is not None else 0.0
        return flat

    def keep_from(self, keep_from: str, now: float) -> str:
        """The oldest journal day to keep for the forwarders (see :func:`forward_keep_from`).

        Days older than that are about to go; what a target had not sent of
        them is logged loudly and counted as ``skipped``.
        """
        if not self.targets:
            return keep_from
        days = self.config.recorder.journal_days
        positions = {
            t.name: Watermark(watermark_path(self.state_dir, t.name)).load() for t in self.targets
        }
        hold_from = {
            t.name: time.strftime("%Y-%m-%d", time.gmtime(now - 86400 * (days + t.hold_days)))
            for t in self.targets
        }
        oldest = forward_keep_from(keep_from, positions, hold_from)
        for path in sorted(self.journal_dir.glob(DAY_FILE_GLOB)):
            if path.stem >= oldest:
                break
            rows = _rows_in(path)
            for name, position in positions.items():
                lost = unsent_in_day(rows, position, path.stem)
                if lost:
                    self.skipped[name] += lost
                    log.error(
                        "forward to %s: journal day %s goes before %d of its samples were sent "
                        "(the target is more than %d+%d days behind); they are skipped",
                        name,
                        path.stem,
                        lost,
                        days,
                        next(t.hold_days for t in self.targets if t.name == name),
                    )
        return oldest


def _rows_in(path):
    try:
        connection = open_day_readonly(path)
    except (sqlite3.Error, JournalError, OSError):  # unreadable: nothing to count
        return 0
    try:
        (newest,) = connection.execute("SELECT max(id) FROM samples").fetchone()
        return newest or 0
    finally:
        connection.close()
