"""A collector's fallback station: where its samples go while its own station does not answer.

A site split over several stations gives each collector its station's
recorder (``[collector] recorder``, named by ``station``) and optionally a
``fallback`` recorder. When the station has not answered for
``fallback_after`` seconds, the Sender switches to the fallback and resends
everything unacknowledged there; the fallback records, acks and forwards
like any station. Every ``home_retry`` seconds on the fallback the collector
tries its own station again, and stays there if it answers (or goes back to
the fallback after another ``fallback_after`` of silence). Nothing is lost
either way: samples wait in the Sender's buffer while no station answers.
"""

import logging
import time
from collections.abc import Callable

from affair.collectors.sender import Sender

log = logging.getLogger(__name__)


class Failover:
    """Watches a Sender's silence and moves it between the home station and the fallback."""

    def __init__(
        self,
        sender: Sender,
        station: str,
        home: str,
        fallback: str,
        after: float,
        home_retry: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sender = sender
        self.station = station or home
        self.home = home
        self.fallback = fallback
        self.after = after
        self.home_retry = home_retry
        self.clock = clock
        self._left_home_at: float | None = None  # when we moved to the fallback
        # acks and refusals seen so far: any change is an answer
        self._answers = sender.stats.acked + sender.stats.rejected_total
        self._answered_at = clock()  # or when we last had nothing waiting for one

    def silent_for(self) -> float:
        """Seconds the recorder in use has left samples unanswered.

        Counted from the last ack or refusal, or from when nothing was waiting:
        a station that is down from the start never connects, so the Sender's
        own resend timeouts never begin; this sees it all the same.
        """
        now = self.clock()
        stats = self.sender.stats
        answers = stats.acked + stats.rejected_total
        if answers != self._answers or self.sender.buffered == 0:
            self._answers = answers
            self._answered_at = now
        return now - self._answered_at

    @property
    def on_fallback(self) -> bool:
        return self.sender.endpoint == self.fallback

    def check(self) -> None:
        """Call between pumps: switch when the recorder in use has been silent too long."""
        silent = self.silent_for()
        if not self.on_fallback:
            if silent >= self.after:
                log.warning(
                    "station %s (%s) silent for %.0f s: sending to the fallback %s "
                    "(%d samples buffered)",
                    self.station,
                    self.home,
                    silent,
                    self.fallback,
                    self.sender.buffered,
                )
                self._switch(self.fallback)
                self._left_home_at = self.clock()
            return
        if silent >= self.after or (
            self._left_home_at is not None and self.clock() - self._left_home_at >= self.home_retry
        ):
            log.info("trying station %s (%s) again", self.station, self.home)
            self._switch(self.home)
            self._left_home_at = None

    def _switch(self, endpoint):
        self.sender.switch_endpoint(endpoint)
        self._answered_at = self.clock()  # the other recorder's silence is timed afresh
