"""Test data for the status, site and browser tests: real RRDs and PNGs at the layout's paths."""

import textwrap

from affair.config import parse_config
from affair.outputs import graph_paths as layout

STEP = 10

# A small ladder keeps a thousand RRDs at ~10 MB; the rules cover every kind.
SITE_CONFIG = """
[recorder]
step = 10

[archive]
ladder = ["10s:120", "1min:60"]
consolidations = ["AVERAGE"]

[datasets.system.variables]
cpu_user = { type = "GAUGE", unit = "%", label = "CPU user", min = 0, max = 100 }
load1 = { type = "GAUGE", label = "load, 1 min" }
mem_used = { type = "GAUGE", unit = "B", label = "memory used" }

[datasets.daq.variables]
events = { type = "COUNTER", unit = "ev/s" }
total = { type = "GAUGE", label = "events so far" }

[graphs.cpu_all]
title = "CPU user, all nodes"
dataset = "system"
variables = ["cpu_user"]
mode = "overlay"
windows = ["1h", "6h"]

[site]
groups = { ldc = "ldc*", gdc = ["gdc*"] }
key_variables = ["system.cpu_user", "system.load1", "system.mem_used"]
refresh = 30

[status]
stale_steps = 6

[export]
enabled = false  # pages and colours of hosts here; tests/test_archive.py has the archive's

[[status.rules]]
variable = "system.cpu_user"
yellow = 80
red = 95

[[status.rules]]
kind = "stalled"
variable = "daq.events"
steps = 6
hosts = ["ldc*"]
"""


def site_config(text=SITE_CONFIG):
    import tomllib

    return parse_config(tomllib.loads(textwrap.dedent(text)), "site-test.toml")


def grid(now, steps, end_offset=0):
    """``steps`` timestamps on the step grid, the last ``end_offset`` s before ``now``."""
    last = (int(now) - end_offset) // STEP * STEP
    return [last - STEP * i for i in range(steps - 1, -1, -1)]


def write_rows(store, host, dataset, rows, instance=""):
    """Write ``[(ts, {variable: value})]`` to a real RRD through RrdStore."""
    variables = sorted({name for _, values in rows for name in values})
    series = store.open_series(host, dataset, instance, variables, rows[0][0])
    store.update_many(series, rows)


def drive(store, host, now, cpu, steps=30, silent_for=0, load=1.0, events=None):
    """Give ``host`` a 'system' series with cpu_user = ``cpu``; ``events`` adds a daq counter.

    ``silent_for`` seconds before ``now`` the host stopped sending (grey).
    """
    times = grid(now, steps, silent_for)
    rows = [(ts, {"cpu_user": cpu, "load1": load, "mem_used": 2.5 * 1024**3}) for ts in times]
    write_rows(store, host, "system", rows)
    if events is not None:
        write_rows(store, host, "daq", [(ts, {"events": events(ts)}) for ts in times])


def draw_png(path, text, width, height, colour):
    """A PNG of exactly ``width`` x ``height`` pixels at ``path`` (written via a rename)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.08, 0.15, 0.9, 0.75))
    axes.plot([0, 1, 2, 3, 4], [1, 3, 2, 4, 3], color=colour, linewidth=2)
    axes.set_title(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    figure.savefig(temporary, dpi=100, format="png")
    temporary.replace(path)
    return path


def draw_node_graph(graphs_dir, host, dataset, window, width, height, colour="tab:blue"):
    path = layout.node_graph_path(graphs_dir, host, dataset, "", window)
    return draw_png(path, f"{host} {dataset} {window}", width, height, colour)
