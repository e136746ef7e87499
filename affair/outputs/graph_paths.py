"""Where the stages put their files: the contract between plot, site and export.

The files on disk are the interfaces between processes (a plotter on one
machine, the site builder on another), so their names are decided here,
once, and every stage asks this module instead of building paths itself.
Graph windows are a fixed vocabulary (affair.vocab.WINDOWS).
"""

from pathlib import Path

from affair.names import rrd_file_name


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
