"""A simulated telescope pipeline publishing its links through :mod:`affair.collectors.client`.

Each telescope ``telNN`` runs ``camera -> r0dl1 -> dl1dl2``; every ``dl1dl2``
sends to both stereo daemons (``stereo01/stereo``, ``stereo02/stereo``), which
send to ``datarec01/recorder``. Every daemon is its own Publisher, as a real
one would be, and reports the links it uses: the source counts what it sent,
the target what it received and each message's latency.

Three links misbehave, so the topology has something to show:

* slow: telescope 2's ``r0dl1 -> dl1dl2``, latencies around 3 s (red by latency);
* lossy: telescope 3's ``dl1dl2 -> stereo01/stereo``, a fifth of the messages
  never arrive (red by sent != received, and the ``sent_received`` criterion);
* dead: telescope 1's ``camera -> r0dl1``: its camera never starts, so the
  link reports nothing and is grey, being expected (:func:`topology_section`).

The simulation ticks once a second half-way between the publishers' interval
boundaries, so a message's sending and its receipt fall in the same interval
at both ends and sent and received compare exactly.
"""

import logging
import math
import random
import threading
import time

import zmq

from affair.collectors.client import Publisher

log = logging.getLogger(__name__)

LEVELS = ("camera", "r0dl1", "dl1dl2", "stereo", "recorder")
STEREO = ("stereo01/stereo", "stereo02/stereo")
DATA_RECORDER = "datarec01/recorder"
LATENCIES_PER_TICK = 25  # latencies measured per link and tick, at most (a sample of them)


def telescope_names(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"tel{number:0{width}d}" for number in range(1, count + 1)]


def pipeline_links(telescopes: int) -> list[tuple[str, str, float]]:
    """``(source, target, messages per second)`` of every link, in a stable order."""
    links = []
    for index, host in enumerate(telescope_names(telescopes)):
        speed = 1 + index % 3  # telescopes differ, so widths differ
        links.append((f"{host}/camera", f"{host}/r0dl1", 200.0 * speed))
        links.append((f"{host}/r0dl1", f"{host}/dl1dl2", 50.0 * speed))
        links += [(f"{host}/dl1dl2", stereo, 5.0 * speed) for stereo in STEREO]
    links += [(stereo, DATA_RECORDER, 2.0 * telescopes) for stereo in STEREO]
    return links


def misbehaving(telescopes: int) -> dict[str, tuple[str, str]]:
    """The slow, lossy and dead links (none with fewer than three telescopes)."""
    if telescopes < 3:
        return {}
    first, second, third = telescope_names(telescopes)[:3]
    return {
        "slow": (f"{second}/r0dl1", f"{second}/dl1dl2"),
        "lossy": (f"{third}/dl1dl2", STEREO[0]),
        "dead": (f"{first}/camera", f"{first}/r0dl1"),
    }


def topology_section(telescopes: int) -> str:
    """The ``[topology]`` keys the demo adds to its config: the expected links and the levels."""
    expected = ",\n  ".join(f'"{a} -> {b}"' for a, b, _ in pipeline_links(telescopes))
    levels = ", ".join(f'"{level}"' for level in LEVELS)
    return f"levels = [{levels}]\nexpected = [\n  {expected}\n]\n"


class Pipeline:
    """The daemons' publishers and the links' traffic; :meth:`tick` advances it by ``seconds``."""

    def __init__(self, endpoint, telescopes, interval, seed=0, context=None):
        self.random = random.Random(seed)
        self.links = pipeline_links(telescopes)
        self.bad = misbehaving(telescopes)
        dead = self.bad.get("dead")
        daemons = sorted({d for a, b, _ in self.links for d in (a, b)} - {dead[0] if dead else ""})
        self.context = context or zmq.Context.instance()
        self.publishers = {}
        for name in daemons:
            host, daemon = name.split("/")
            self.publishers[name] = Publisher(
                daemon,
                endpoint=endpoint,
                host=host,
                interval=interval,
                context=self.context,
            )
        self._owed = {}  # (source, target) -> fraction of a message carried to the next tick

    def tick(self, seconds):
        rnd = self.random
        for source, target, rate in self.links:
            key = (source, target)
            if key == self.bad.get("dead"):
                continue
            wanted = rate * seconds + self._owed.get(key, 0.0)
            sent = int(wanted)
            self._owed[key] = wanted - sent
            size = 4096 * sent
            self.publishers[source].link(target).sent(nbytes=size, messages=sent)
            received = sent
            if key == self.bad.get("lossy"):
                received = sum(1 for _ in range(sent) if rnd.random() >= 0.2)
            inbound = self.publishers[target].link(source)
            inbound.received(nbytes=4096 * received, messages=received)
            median = 3.0 if key == self.bad.get("slow") else 0.004
            for _ in range(min(received, LATENCIES_PER_TICK)):
                inbound.latency(median * math.exp(rnd.gauss(0, 0.4)), inbound=True)

    def close(self):
        """Close every publisher at once: each sends its last, partial interval, so both ends
        of a link end on the same counts (closed one by one, a grid line passing meanwhile
        would end some ends an interval later than their peers)."""
        closing = [
            threading.Thread(target=publisher.close, args=(5.0,), daemon=True)
            for publisher in self.publishers.values()
        ]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join(timeout=10.0)


def run_pipeline(endpoint, telescopes, interval, stop: threading.Event, seed=0):
    """Run the pipeline until ``stop`` is set: a tick a second, half-way between boundaries."""
    pipeline = Pipeline(endpoint, telescopes, interval, seed)
    log.info(
        "pipeline: %d telescopes, %d daemons, %d links; slow %s, lossy %s, dead %s",
        telescopes,
        len(pipeline.publishers),
        len(pipeline.links),
        *(" -> ".join(pipeline.bad.get(k, ("-", "-"))) for k in ("slow", "lossy", "dead")),
    )
    try:
        last = time.time()
        while not stop.is_set():
            now = time.time()
            next_tick = math.floor(now) + 0.5
            if next_tick <= now:
                next_tick += 1
            if stop.wait(next_tick - now):
                break
            now = time.time()
            pipeline.tick(now - last)
            last = now
    finally:
        pipeline.close()
