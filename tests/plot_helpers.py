"""Real RRDs with known contents for the plotter's tests (librrd through RrdStore)."""

from conftest import write_config

from affair.config import load_config
from affair.storage.rrd_store import RrdStore

# Divisible by every archive step up to 4 min, so the 1 h, 6 h and 1 d grids end here.
T_END = 1_700_006_400
STEP = 10

PLOT_CONFIG = """
[recorder]
step = 10

[datasets.system.variables]
cpu_user = { type = "GAUGE", unit = "%", label = "CPU user", min = 0, max = 100 }
net_in = { type = "GAUGE", unit = "B/s", label = "network in", min = 0 }
net_out = { type = "GAUGE", unit = "B/s", label = "network out", min = 0 }

[plot]
node_windows = ["1h", "6h"]

[graphs.net_sum]
title = "Network in, sum"
dataset = "system"
variables = ["net_in"]
hosts = ["h*"]
mode = "aggregate"
aggregate = "sum"
windows = ["1h", "6h"]

[graphs.net_avg]
title = "Network in, average"
dataset = "system"
variables = ["net_in"]
hosts = ["h*"]
mode = "aggregate"
aggregate = "average"
windows = ["1h", "6h"]

[graphs.cpu_all]
title = "CPU user, all hosts"
dataset = "system"
variables = ["cpu_user"]
hosts = ["*"]
mode = "overlay"
windows = ["1h"]
"""


def plot_config(directory, text=PLOT_CONFIG):
    return load_config(write_config(directory, text, name="plot.toml"))


def write_series(store, host, values_at, start, end, variables=("cpu_user", "net_in", "net_out")):
    """Write ``values_at(ts) -> {variable: value or None}`` every 10 s in ``[start, end]``."""
    series = store.open_series(host, "system", "", list(variables), start)
    rows = [(ts, values_at(ts)) for ts in range(start, end + 1, STEP)]
    for first in range(0, len(rows), 720):
        store.update_many(series, rows[first : first + 720])
    return store.path(host, "system")


def make_store(config, data_dir):
    return RrdStore(config, data_dir)
