"""Forwarding into a real VictoriaMetrics: every sample, exact, through kills of either side.

A real recorder process forwards (``[[forward]]``, both kinds) to Debian's
``victoria-metrics`` on loopback; samples go in through the collectors'
own Sender (acked, resent) and are read back through VictoriaMetrics'
``/api/v1/export``: every value at its millisecond, none missing, none
twice once VictoriaMetrics has deduplicated.
"""

import contextlib
import json
import os
import re
import signal
import threading
import time
import urllib.parse
import urllib.request

import psutil
import pytest
from affair.collectors.sender import Sender

from tests.conftest import REPO, wait_for
from tests.victoria import BINARY, VictoriaMetrics

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(BINARY), reason="victoria-metrics is not installed"),
]

# Outage of VictoriaMetrics, as the issue asks; the stream goes on meanwhile.
VM_OUTAGE = 20

CONFIG = """
[recorder]
step = 10
self_interval = 1

[datasets.system.variables]
cpu_user = {{ type = "GAUGE", unit = "%", min = 0, max = 100 }}
load1 = {{ type = "GAUGE" }}
net_in = {{ type = "DERIVE", unit = "B/s", min = 0 }}

[[forward]]
name = "vm"
kind = "influx"
url = "{write_url}"
prefix = "{prefix}"
batch_size = 400
poll = 0.2
backoff_cap = 1
timeout = 5

[[forward]]
name = "carbon"
kind = "graphite"
address = "{graphite}"
prefix = "{prefix}"
batch_size = 400
poll = 0.2
backoff_cap = 1
timeout = 5
"""


@pytest.fixture(scope="module")
def victoria(tmp_path_factory):
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria")).start()
    yield server
    server.stop()


def values_of(host_index, k):
    """Exact binary fractions, so any change in transit shows."""
    return {"cpu_user": (k * 7 + host_index) % 100 + 0.25, "load1": k / 8, "net_in": k * 1000.0}


class Stream(threading.Thread):
    """One sample per host every ``period`` s, timestamps ``base + k``, through an acked Sender."""

    def __init__(self, endpoint, hosts, base, period=0.02):
        super().__init__(daemon=True)
        self.endpoint, self.hosts, self.base, self.period = endpoint, hosts, base, period
        self.submitted = 0  # timestamps submitted per host
        self.stop = threading.Event()
        self.all_acked = False
        self.error = None

    def run(self):
        sender = Sender(
            self.endpoint, "vmtest", resend_timeout=1, backoff_cap=1, per_series_limit=100_000
        )
        try:
            next_at = time.monotonic()
            while not self.stop.is_set():
                if time.monotonic() >= next_at:
                    for index, host in enumerate(self.hosts):
                        sender.submit(
                            self.base + self.submitted,
                            host,
                            "system",
                            "",
                            values_of(index, self.submitted),
                        )
                    self.submitted += 1
                    next_at += self.period
                sender.pump(0.005)
            self.all_acked = sender.flush(timeout=60)
        except Exception as error:  # noqa: BLE001 - reported by the test
            self.error = error
        finally:
            sender.close()

    def finish(self):
        self.stop.set()
        self.join(timeout=90)
        assert self.error is None, self.error
        assert self.all_acked, "the recorder did not acknowledge every sample"
        return self.submitted


def forward_state(data_dir, name):
    path = data_dir / "_state" / f"forward-{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def caught_up(data_dir, names=("vm", "carbon")):
    states = [forward_state(data_dir, name) for name in names]
    return all(s and s["lag_samples"] == 0 for s in states)


def expected_points(base, count, host_index, variable):
    return [(int((base + k) * 1000), values_of(host_index, k)[variable]) for k in range(count)]


def check_in_victoria(victoria, prefix, hosts, base, count):
    """Every sample, exact and once, under both kinds' names; polls while VM makes them visible."""
    wanted = {}
    for index, host in enumerate(hosts):
        for variable in ("cpu_user", "load1", "net_in"):
            points = expected_points(base, count, index, variable)
            wanted[(f"{prefix}_system_{variable}", (("host", host),))] = points
            wanted[(f"{prefix}.{host}.system.{variable}", ())] = points

    def read():
        got = victoria.export(f'{{__name__=~"{prefix}[._].*"}}')
        got = {key: points for key, points in got.items() if "affair" not in key[0]}
        return got if all(len(got.get(key, ())) >= len(p) for key, p in wanted.items()) else None

    try:
        got = wait_for(read, timeout=30, interval=0.5, what="VictoriaMetrics to show every sample")
    except AssertionError:
        got = victoria.export(f'{{__name__=~"{prefix}[._].*"}}')
    for key, points in wanted.items():
        have = got.get(key, [])
        stamps = [ms for ms, _ in have]
        assert len(stamps) == len(set(stamps)), f"{key}: a timestamp twice after dedup"
        missing = sorted(set(points) - set(have))
        extra = sorted(set(have) - set(points))
        assert missing == [] and extra == [], (key, missing[:5], extra[:5], len(have), len(points))


def config_for(victoria, prefix):
    return CONFIG.format(
        write_url=victoria.write_url, graphite=victoria.graphite_address, prefix=prefix
    )


def test_every_sample_reaches_victoriametrics_exactly_under_both_kinds(
    recorder, tmp_path, victoria
):
    hosts = ["n01", "n02", "n03.example.org"]
    data_dir = tmp_path / "data"
    process = recorder(config_for(victoria, "fsteady"), data_dir=data_dir)
    base = int(time.time()) - 3000
    stream = Stream(process.endpoint, hosts, base, period=0.005)
    stream.start()
    wait_for(lambda: stream.submitted >= 300, what="300 samples per host submitted")
    count = stream.finish()
    wait_for(lambda: caught_up(data_dir), timeout=30, what="both forwarders to catch up")
    # Graphite paths carry the FQDN with '_' for '.': one level per host.
    check_in_victoria(victoria, "fsteady", ["n01", "n02", "n03_example_org"][:2], base, count)
    got = victoria.export('{__name__="fsteady.n03_example_org.system.load1"}')
    assert [v for _, v in next(iter(got.values()))] == [k / 8 for k in range(count)]
    got = victoria.export('{__name__="fsteady_system_load1",host="n03.example.org"}')
    assert [v for _, v in next(iter(got.values()))] == [k / 8 for k in range(count)]
    state = forward_state(data_dir, "vm")
    assert state["failures"] == 0 and state["rejected"] == 0
    assert state["sent"] >= 3 * count  # and the recorder's own samples
    metrics = json.loads((data_dir / "_state" / "metrics.json").read_text())
    assert metrics["forward_vm_lag_samples"] >= 0 and "forward_carbon_sent" in metrics
    check_grafana_queries(victoria, "fsteady", base + count - 1)


def check_grafana_queries(victoria, prefix, at):
    """docs/grafana-affair.json's PromQL answers from the forwarded samples (prefix swapped in)."""
    dashboard = json.loads((REPO / "docs" / "grafana-affair.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$host", ".*").replace("affair_", f"{prefix}_")
            query = urllib.parse.urlencode({"query": expr, "time": at})
            with urllib.request.urlopen(f"{victoria.url}/api/v1/query?{query}") as response:
                answer = json.loads(response.read())
            assert answer["status"] == "success", (expr, answer)
            sent = re.search(r"system_(cpu_user|load1|net_in)\b", expr)
            if sent and "gdc" not in expr:
                assert answer["data"]["result"], f"{expr}: no series"


def test_a_victoriametrics_killed_for_20s_mid_stream_loses_nothing(recorder, tmp_path, victoria):
    hosts = ["k01", "k02"]
    data_dir = tmp_path / "data"
    process = recorder(config_for(victoria, "fvmkill"), data_dir=data_dir)
    base = int(time.time()) - 3000
    stream = Stream(process.endpoint, hosts, base, period=0.02)
    stream.start()
    try:
        wait_for(
            lambda: forward_state(data_dir, "vm").get("sent", 0) > 200,
            what="forwarding under way",
        )
        victoria.kill()  # mid-stream: whatever it had not flushed is gone
        time.sleep(VM_OUTAGE)  # the outage itself: the recorder keeps receiving
        assert forward_state(data_dir, "vm")["failures"] > 0
        assert forward_state(data_dir, "vm")["lag_samples"] > 0
        victoria.start()
        wait_for(lambda: stream.submitted > 0, what="more samples")
        time.sleep(1)
    finally:
        count = stream.finish()
    assert count > VM_OUTAGE * 20  # samples kept coming through the outage
    wait_for(lambda: caught_up(data_dir), timeout=90, what="both forwarders to catch up")
    check_in_victoria(victoria, "fvmkill", hosts, base, count)


def test_a_recorder_killed_mid_stream_forwards_everything_after_its_restart(
    recorder, tmp_path, victoria
):
    hosts = ["r01", "r02"]
    data_dir = tmp_path / "data"
    text = config_for(victoria, "freckill")
    first = recorder(text, data_dir=data_dir)
    base = int(time.time()) - 3000
    stream = Stream(first.endpoint, hosts, base, period=0.02)
    stream.start()
    try:
        wait_for(
            lambda: forward_state(data_dir, "vm").get("sent", 0) > 200,
            what="forwarding under way",
        )
        # SIGKILL to the recorder and its children at once: writer and forwarders too.
        helpers = psutil.Process(first.process.pid).children(recursive=True)
        for pid in [first.process.pid, *(h.pid for h in helpers)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        psutil.wait_procs(helpers, timeout=10)
        recorder(text, data_dir=data_dir, endpoint=first.endpoint)
        time.sleep(2)  # the stream resends what was not acked, and goes on
    finally:
        count = stream.finish()
    wait_for(lambda: caught_up(data_dir), timeout=90, what="both forwarders to catch up")
    check_in_victoria(victoria, "freckill", hosts, base, count)
