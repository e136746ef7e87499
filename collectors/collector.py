"""The collector loop: sample the probes on a fixed grid, hand samples to the Sender.

Ticks are scheduled on the monotonic clock (a wall-clock jump neither
bunches nor skips samples) but aligned to the wall-clock grid of the
interval, so a 10 s sample is stamped just after :00, :10, :20... and fills
exactly its RRD slot. A tick missed because the machine stalled is skipped,
not made up with a burst.
"""

import logging
import time

log = logging.getLogger(__name__)

TICK_OFFSET = 0.05  # seconds after the grid line, so a timestamp never falls just before it


class Collector:
    def __init__(
        self,
        sender,
        probes,
        host,
        interval,
        wall=time.time,
        monotonic=time.monotonic,
        failover=None,
    ):
        self.sender = sender
        self.failover = failover  # an affair.collectors.failover.Failover, or None
        self.probes = probes
        self.host = host
        self.interval = interval
        self.wall = wall
        self.monotonic = monotonic
        self.ticks = 0

    def next_tick_delay(self):
        """Seconds from now to the next grid line (plus the offset)."""
        now = self.wall()
        next_line = (now // self.interval + 1) * self.interval
        return next_line + TICK_OFFSET - now

    def sample_once(self):
        timestamp = round(self.wall(), 3)
        for probe in self.probes:
            try:
                instances = probe.sample()
            except Exception as error:  # one broken probe must not stop the others
                log.error("probe %s failed: %s", probe.name, error)
                continue
            for instance, values in instances.items():
                self.sender.submit(timestamp, self.host, probe.name, instance, values)
        self.ticks += 1

    def run(self, stop, count=None, flush_timeout=5.0):
        """Sample until ``stop`` is set (or ``count`` ticks), then flush what is buffered."""
        next_tick = self.monotonic() + self.next_tick_delay()
        while not stop.is_set() and (count is None or self.ticks < count):
            now = self.monotonic()
            if now >= next_tick:
                self.sample_once()
                next_tick += self.interval
                if next_tick <= self.monotonic():  # stalled past a whole tick: skip, realign
                    skipped = int((self.monotonic() - next_tick) // self.interval) + 1
                    log.warning("collector fell %d tick(s) behind; skipping them", skipped)
                    next_tick = self.monotonic() + self.next_tick_delay()
            # at most a second between looks at `stop`; the Sender sleeps until then
            self.sender.pump(max(0.0, min(next_tick - self.monotonic(), 1.0)))
            if self.failover is not None:
                self.failover.check()
        all_acked = self.sender.flush(flush_timeout)
        stats = self.sender.stats
        log.info(
            "collector stopping: %d samples taken, %d acked, %d rejected, %d dropped, %d still buffered%s",
            stats.submitted,
            stats.acked,
            stats.rejected_total,
            stats.dropped,
            self.sender.buffered,
            "" if all_acked else " (unacknowledged samples are lost with this process)",
        )
        return stats
