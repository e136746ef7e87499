"""The system dataset's network totals leave out what the net probe leaves out (lo, veth*)."""

from collections import namedtuple
from types import SimpleNamespace

from affair.collectors.probes import make_probe
from affair.collectors.probes.net import NetProbe
from affair.collectors.probes.system import SystemProbe

from affair.config import NetSettings, parse_config

Io = namedtuple("Io", "bytes_sent bytes_recv packets_sent packets_recv errin errout dropin dropout")
COUNTERS = {
    "eth0": Io(10, 20, 1, 2, 0, 0, 0, 0),
    "eth1": Io(100, 200, 10, 20, 0, 0, 0, 0),
    "lo": Io(9999, 9999, 99, 99, 0, 0, 0, 0),
    "veth12ab": Io(5000, 5000, 50, 50, 0, 0, 0, 0),
}


def fake_psutil():
    times = SimpleNamespace(user=1.0, nice=0.0, system=1.0, irq=0.0, softirq=0.0, iowait=0.0)
    return SimpleNamespace(
        cpu_times_percent=lambda interval: times,
        virtual_memory=lambda: SimpleNamespace(total=8.0, available=4.0),
        swap_memory=lambda: SimpleNamespace(used=0.0),
        disk_io_counters=lambda: None,
        net_io_counters=lambda pernic=False: COUNTERS,
        net_if_stats=dict,
    )


def test_system_network_totals_are_the_sum_of_the_net_probes_interfaces():
    fake = fake_psutil()
    totals = SystemProbe(NetSettings(), psutil_module=fake).sample()[""]
    per_interface = NetProbe(NetSettings(), psutil_module=fake).sample()
    assert set(per_interface) == {"eth0", "eth1"}
    assert (totals["net_in"], totals["net_out"]) == (220.0, 110.0)
    assert totals["net_in"] == sum(v["bytes_in"] for v in per_interface.values())
    assert (totals["net_pkts_in"], totals["net_pkts_out"]) == (22.0, 11.0)
    everything = SystemProbe(NetSettings(exclude=()), psutil_module=fake).sample()[""]
    assert everything["net_in"] == 220.0 + 9999 + 5000


def test_the_system_probe_takes_the_collectors_net_settings():
    config = parse_config({"collector": {"net": {"exclude": ["eth1"]}}})
    probe = make_probe("system", config.collector)
    assert probe.exclude == ("eth1",)
