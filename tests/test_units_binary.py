"""One rule for which units are binary, used by rules, page tables and graph axes alike."""

import pytest
from sitedata import SITE_CONFIG, STEP, site_config

from affair.outputs.plot.chart import Panel
from affair.outputs.plot.render import _binary_axis
from affair.outputs.status import HostSnapshot, SeriesSnapshot, evaluate_host
from affair.units import format_value, prefix_base

NOW = 1_700_000_000


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (2 * 1024**3, "B", "2 GiB"),  # as written in the config: 2_147_483_648 # 2 GiB
        (271e9, "B", "252 GiB"),  # a root file system: df -h says 252G
        (1536, "B", "1.5 KiB"),
        (512, "B", "512 B"),
        (3.14e3, "B/s", "3.14 kB/s"),  # rates stay decimal
        (76.4e6, "B/s", "76.4 MB/s"),
    ],
)
def test_amounts_of_bytes_are_binary_and_rates_decimal(value, unit, shown):
    assert format_value(value, unit, trim=True) == shown
    assert prefix_base(unit) == (1024 if unit == "B" else 1000)


def test_a_threshold_written_in_gib_reads_in_gib():
    head = SITE_CONFIG.split("[status]")[0]
    config = site_config(
        head + '[status]\n[[status.rules]]\nvariable = "system.mem_used"\n'
        'yellow = 1_073_741_824\nred = 2_147_483_648\nlabel = "memory"\n'
    )
    series = SeriesSnapshot("system", "", NOW, STEP, (NOW,), {"mem_used": (2.5 * 1024**3,)})
    status = evaluate_host(HostSnapshot("ldc01", (series,)), config, NOW)
    assert status.summary(NOW) == "memory: system.mem_used 2.5 GiB > 2 GiB"


def test_a_binary_axis_ticks_on_whole_gib():
    bottom, top, ticks, power = _binary_axis(0.0, 3.5 * 1024**3, Panel("B", floor=0.0), 5)
    assert power == 3 and bottom == 0
    assert [tick / 1024**3 for tick in ticks] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert top == 4 * 1024**3
