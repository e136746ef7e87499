"""A log line per event, the first few of each kind a minute, then a count.

A fuzzer, a broken sender or a node whose every sample is refused can make
a million events; the log must stay readable at 3 a.m. Used by the recorder
(rejected samples) and by the sender (samples the recorder refused), so it
imports nothing heavy: collectors load it.
"""

import time


class RateLimitedLog:
    """``log(kind, *args)``: ``line % (kind, *args)`` for the first ``per_minute`` of each
    kind in a minute; once the minute is over, one line with how many were not logged.

    The count comes with the next event after the minute (nothing runs in between).
    """

    def __init__(self, logger, line, per_minute=5, clock=time.monotonic, noun="events"):
        self.logger = logger
        self.line = line
        self.per_minute = per_minute
        self.clock = clock
        self.noun = noun
        self._window_start = clock()
        self._seen = {}

    def __call__(self, kind, *args):
        now = self.clock()
        if now - self._window_start >= 60:
            for name, count in self._seen.items():
                if count > self.per_minute:
                    self.logger.warning(
                        "%d more '%s' %s in the last minute (not logged one by one)",
                        count - self.per_minute,
                        name,
                        self.noun,
                    )
            self._seen = {}
            self._window_start = now
        count = self._seen.get(kind, 0) + 1
        self._seen[kind] = count
        if count <= self.per_minute:
            self.logger.warning(self.line, kind, *args)
