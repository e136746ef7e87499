"""A daemon publishing link metrics, run as its own process by tests/test_links.py.

    python tests/link_publisher.py ENDPOINT HOST DAEMON PEER ROLE SEED COUNT INTERVAL

ROLE ``source`` sends COUNT messages to PEER, ``target`` receives COUNT from it;
each message has a seeded random size and latency, one in ten is an error. It
prints what it reported as JSON (the latencies, counts, bytes, errors) and exits
once close() says everything was acknowledged.
"""

import json
import random
import sys

from affair.collectors.client import Publisher


def main(endpoint, host, daemon, peer, role, seed, count, interval):
    rng = random.Random(int(seed))
    publisher = Publisher(daemon, endpoint=endpoint, host=host, interval=float(interval))
    link = publisher.link(peer)
    latencies, nbytes, errors = [], 0, 0
    for index in range(int(count)):
        size = rng.randrange(100, 10_000)
        seconds = rng.lognormvariate(-5, 1.5)  # ~7 ms median, a long tail
        if role == "source":
            link.sent(nbytes=size)
        else:
            link.received(nbytes=size)
        link.latency(seconds, inbound=role == "target")
        if index % 10 == 0:
            link.error(inbound=role == "target")
            errors += 1
        latencies.append(seconds)
        nbytes += size
    acked = publisher.close(timeout=20)
    print(json.dumps({"acked": acked, "latencies": latencies, "bytes": nbytes, "errors": errors}))


if __name__ == "__main__":
    main(*sys.argv[1:])
