"""What the recorder keeps of each sender: its own latest report, bounded and forgotten.

Every DATA message may carry the sender's ``{"dropped": n, "buffered": n}``
(:mod:`affair.collectors.wire`); their sums become the recorder's
``sender_dropped`` and ``sender_buffered``. Anyone who can connect chooses
those figures and the sender's name, so what is kept is bounded three ways:

* in count: at most ``max_senders`` senders; a report from one more is not
  kept (its samples are still taken);
* in bytes: a sender name is at most 128 characters (checked at decode), so
  the whole table is a few MB at most;
* in time: a sender silent for ``sender_idle_forget`` is forgotten; what it
  held (``buffered``) leaves the sums, what it dropped stays counted.

A report is *plausible* when a sender could have produced it: its drops grow
by no more than ``max_sender_rate`` samples per second since its last
report, counting from 0 again if it restarted (the first report of a sender
by no more than that rate over ``sender_idle_forget``), and it holds no more samples than it
could have made within ``max_sample_age`` (older ones would be refused
anyway). An implausible report is counted (``sender_implausible``) and
ignored, so no sender can set the recorder's own figures to 1e18.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class SenderState:
    dropped: int  # the latest plausible figures it reported
    buffered: int
    heard: float  # clock time of its latest report


class SenderReports:
    """Senders' own reports, bounded in count and time, each checked for plausibility."""

    def __init__(
        self,
        max_senders: int = 10_000,
        idle_forget: float = 86400.0,
        max_rate: float = 100_000.0,
        max_sample_age: float = 7 * 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_senders = max_senders
        self.idle_forget = idle_forget
        self.max_rate = max_rate
        self.max_sample_age = max_sample_age
        self.clock = clock
        self.states: dict[str, SenderState] = {}  # insertion order: oldest report first
        self.dropped_total = 0  # sum of the dropped figures, forgotten senders' included
        self.buffered_total = 0  # sum of the buffered figures of the senders kept
        self.implausible = 0  # reports ignored as impossible
        self.not_kept = 0  # reports from senders past max_senders

    def report(self, sender: str, dropped: int, buffered: int) -> bool:
        """Take one report; False if it was ignored (implausible, or no room)."""
        now = self.clock()
        self.forget_idle(now)
        state = self.states.pop(sender, None)  # re-inserted below: newest last
        if state is None and len(self.states) >= self.max_senders:
            self.not_kept += 1
            return False
        if not self.plausible(state, dropped, buffered, now):
            self.implausible += 1
            if state is not None:
                self.states[sender] = state
            return False
        if state is None:
            state = SenderState(0, 0, now)
        # A sender that restarted reports fewer drops than before: its new
        # life's drops are added to what its old one dropped.
        grown = dropped - state.dropped if dropped >= state.dropped else dropped
        self.dropped_total += grown
        self.buffered_total += buffered - state.buffered
        state.dropped, state.buffered, state.heard = dropped, buffered, now
        self.states[sender] = state
        return True

    def plausible(self, state: SenderState | None, dropped: int, buffered: int, now: float) -> bool:
        if not (dropped >= 0 and 0 <= buffered <= self.max_rate * self.max_sample_age):
            return False
        if state is None:  # first heard: it may have dropped before we knew it
            return dropped <= self.max_rate * self.idle_forget
        # Since its last report it made at most max_rate samples a second, so
        # dropped no more, whether it restarted meanwhile (counting from 0) or not.
        grown = dropped - state.dropped if dropped >= state.dropped else dropped
        return grown <= self.max_rate * max(1.0, now - state.heard)

    def forget_idle(self, now: float) -> int:
        """Forget senders silent for ``idle_forget``; return how many."""
        forgotten = 0
        for sender, state in list(self.states.items()):
            if now - state.heard < self.idle_forget:
                break  # kept in report order, so the rest are newer
            del self.states[sender]
            self.buffered_total -= state.buffered
            forgotten += 1
        return forgotten

    def get(self, sender: str) -> tuple[int, int] | None:
        state = self.states.get(sender)
        return None if state is None else (state.dropped, state.buffered)
