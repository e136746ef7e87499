"""Where the stages put their files: the contract between plot, site and export.

The files on disk are the interfaces between processes (a plotter on one
machine, the site builder on another), so their names are decided here,
once, and every stage asks this module instead of building paths itself.
Graph windows are a fixed vocabulary (affair.vocab.WINDOWS).
"""

from pathlib import Path

from affair.names import rrd_file_name

# affair serve's graphs of custom ranges, in one flat folder it keeps bounded (serve.py);
# a leading "_" starts no host or graph name, so it can be no graph's folder or file.
RANGES_DIR = "_ranges"


def node_graph_path(out_dir, host, dataset, instance, window):
    """The default per-node graph of one series: ``node/<host>/<dataset>[.<instance>].<window>.png``."""
    stem = rrd_file_name(dataset, instance)[: -len(".rrd")]
    return Path(out_dir) / "node" / host / f"{stem}.{window}.png"


def graph_path(out_dir, name, mode, window, host=None):
    """A configured graph: ``<name>.<mode>.<window>.png`` (name, mode and window in the file name).

    A ``node``-mode graph is drawn once per host, so it carries the host too:
    ``<name>.node.<host>.<window>.png``. Names and windows hold no dots, so
    the name is everything before the first dot and the window everything
    after the last, even for a host name with dots in it.
    """
    if mode == "node":
        if not host:
            raise ValueError(f"graph {name!r} is a node graph: it needs a host")
        return Path(out_dir) / f"{name}.node.{host}.{window}.png"
    if host:
        raise ValueError(f"graph {name!r} is a {mode} graph: it takes no host")
    return Path(out_dir) / f"{name}.{mode}.{window}.png"


def scaled_graph_key(key, scale):
    """A graph's HiDPI twin, beside it: ``node/h/system.1h.png`` at scale 2 is ``...1h@2x.png``.

    Drawn by affair serve only; the site's listings take no ``@`` file for a window's.
    """
    if scale == 1:
        return key
    return f"{key.removesuffix('.png')}@{scale}x.png"


def ranged_graph_key(key, start, end, scale=1):
    """Where affair serve keeps a graph drawn for a custom range: never the plotter's file.

    ``node/h/system.1h.png`` from 1000 to 4600 is ``_ranges/node~h~system.1h.1000-4600.png``:
    flat (one folder to sweep), and unique, since ``~`` is in no name.
    """
    flat = key.removesuffix(".png").replace("/", "~")
    return scaled_graph_key(f"{RANGES_DIR}/{flat}.{start}-{end}.png", scale)
