"""A simulated DAQ event builder that publishes its own variables with :mod:`affair.collectors.client`.

The demo's example of an application recording itself, as AFFAIR's users
had their DAQ software do: each builder thread "builds" events while a run
is on (runs follow :func:`affair.demo.simulation.in_run`), and publishes the
``daq`` dataset, one instance per builder::

    events      counter, running total (the recorder stores events/s)
    bytes_out   counter, bytes recorded (B/s)
    event_size  level, mean event size over the last interval
    buffer_pct  level, occupancy of its output buffer: it fills while a run
                is on (the builders write slower than they build: the demo's
                own application problem, red on its page within about two
                minutes of a run's start) and drains between runs
    run_number  level
    running     level, 1 while data taking

Run ``python -m affair.demo.eventbuilder --help``.
"""

import argparse
import random
import sys
import threading
import time

from affair.collectors.client import Publisher
from affair.daemon import setup_logging, stop_on_signals
from affair.demo.simulation import RUN_PERIOD, in_run

MB = 1024**2
FILL_PER_SECOND = 1.0  # buffer occupancy gained per second of a run, in %
BUFFER_CEILING = 99.5  # where a full buffer sits (the builder throttles just below 100 %)


class EventBuilder:
    """One builder thread's simulation; ``step()`` advances it by ``seconds``."""

    def __init__(self, series, name, rate=400.0, seed=0):
        self.series = series
        self.rate = rate  # events per second while a run is on
        self.random = random.Random(f"{seed}-{name}")
        self.buffer = 20.0
        self._size_sum = 0.0
        self._size_count = 0

    def step(self, now, seconds):
        rnd = self.random
        running = in_run(now)
        self.series.set(running=running, run_number=1000 + int(now // RUN_PERIOD))
        events, size = 0, 0.0
        if running:
            events = max(0, round(rnd.gauss(self.rate * seconds, (self.rate * seconds) ** 0.5)))
            size = max(0.2 * MB, rnd.gauss(2.0 * MB, 0.3 * MB))
            self._size_sum += size * events
            self._size_count += events
            # Filling at about 1 %/s and stuck near full: the disk behind it is too slow.
            step = seconds * FILL_PER_SECOND + rnd.gauss(0, 0.3 * seconds**0.5)
            self.buffer = min(BUFFER_CEILING + rnd.uniform(-0.3, 0.0), max(0.0, self.buffer + step))
        else:
            self.buffer = max(0.0, self.buffer - 10 * seconds)
        # counted between runs too, so the graph shows 0 events/s there, not unknown
        self.series.increment("events", events)
        self.series.increment("bytes_out", round(events * size))
        self.series.set(buffer_pct=round(self.buffer, 1))

    def publish_level(self):
        """The mean event size since the last call (None when nothing was built)."""
        mean = self._size_sum / self._size_count if self._size_count else None
        self.series.set(event_size=mean)
        self._size_sum, self._size_count = 0.0, 0


def run_builders(builders, stop, interval, seconds=None, tick=0.1):
    """Drive ``builders`` (one thread each) until ``stop`` is set or ``seconds`` pass."""
    deadline = None if seconds is None else time.monotonic() + seconds

    def work(builder):
        last_level = time.monotonic()
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            builder.step(time.time(), tick)
            if time.monotonic() - last_level >= interval:
                builder.publish_level()
                last_level = time.monotonic()
            stop.wait(tick)

    threads = [threading.Thread(target=work, args=(b,), daemon=True) for b in builders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m affair.demo.eventbuilder",
        description="Simulate DAQ event builders that publish the 'daq' dataset to a recorder.",
    )
    parser.add_argument("--recorder", required=True, help="recorder endpoint, tcp://HOST:PORT")
    parser.add_argument("--host", default=None, help="host to record under (default: this one)")
    parser.add_argument("--builders", type=int, default=2, help="builder threads (default 2)")
    parser.add_argument("--interval", type=float, default=10, help="seconds between samples")
    parser.add_argument("--seconds", type=float, help="stop after this long (default: on SIGTERM)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    if args.builders < 1:
        print("eventbuilder: --builders must be at least 1", file=sys.stderr)
        return 2
    stop = stop_on_signals("event builder")
    publisher = Publisher("daq", endpoint=args.recorder, host=args.host, interval=args.interval)
    builders = [
        EventBuilder(publisher.series(f"eb{i:02d}"), f"eb{i:02d}", rate=300.0 + 100 * i)
        for i in range(1, args.builders + 1)
    ]
    run_builders(builders, stop, args.interval, args.seconds)
    return 0 if publisher.close(timeout=5) else 1


if __name__ == "__main__":
    sys.exit(main())
