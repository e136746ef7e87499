"""The topology's pages: ``topology.html``, a page per link, per daemon and per folded host.

::

    <out>/topology.html                 the tree (folded by host above [topology] fold_above)
    <out>/topology/<host>.html          one host's daemons unfolded, with their links in and out
    <out>/link/<src>__<dst>.html        a link: health, figures, both ends' graphs by window
    <out>/daemon/<host>_<daemon>.html   a daemon: its links in and out, its host

Called by the site builder (affair.outputs.site) with the statuses it has
read; the model and the drawing are affair.outputs.topology's. Every file is
replaced atomically; pages of links and daemons that are gone are removed.
"""

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from affair.atomic import write_atomic
from affair.outputs import graph_paths
from affair.outputs.criteria import apply_to_links
from affair.outputs.topology import Topology, daemon_slug, gather
from affair.outputs.topology_draw import (
    HEX,
    LEGEND_RATES,
    Drawing,
    branch_width,
    render_svgs,
    should_fold,
    tree_dot,
)
from affair.vocab import LINK_DATASET, SEVERITY, WINDOW_NAMES

FOLDERS = ("topology", "link", "daemon")


class Hrefs:
    """Links of the drawings and pages, relative to a page ``depth`` folders below the root."""

    def __init__(self, depth: int) -> None:
        self.root = "../" * depth

    def link(self, link) -> str:
        return f"{self.root}link/{quote(link.slug)}.html"

    def daemon(self, name: str) -> str:
        return f"{self.root}daemon/{quote(daemon_slug(name))}.html"

    def host(self, host: str) -> str:
        return f"{self.root}topology/{quote(host)}.html"

    def host_page(self, host: str) -> str:
        return f"{self.root}host/{quote(host)}.html"


@dataclass(frozen=True)
class TopologyResult:
    topology: Topology
    pages: int

    def status(self) -> dict:
        """What ``status.json`` carries of the links."""
        return {
            "counts": self.topology.counts(),
            "links": len(self.topology.links),
            "daemons": len(self.topology.daemons),
            "problems": [
                {
                    "source": link.source,
                    "target": link.target,
                    "colour": link.colour,
                    "why": link.why,
                }
                for link in self.topology.problems()
            ],
        }


def write_topology(site, statuses, now, common) -> TopologyResult:
    """Write every topology page for the statuses of this pass; ``site`` is the SiteBuilder."""
    config = site.config
    topology = gather((s.snapshot for s in statuses), config, now)
    apply_to_links(topology, site.criteria)
    settings = config.topology
    out = Path(site.out_dir)
    if not topology.links:  # no link reported or expected: no page (the index links none)
        (out / "topology.html").unlink(missing_ok=True)
        _remove_stale(out, {folder: set() for folder in FOLDERS})
        return TopologyResult(topology, 0)
    fold = should_fold(topology, settings)
    hosts_folded = sorted({d.host for d in topology.daemons.values()}) if fold else []
    drawings = [Drawing("", tree_dot(topology, settings, Hrefs(0), fold))]
    drawings += [
        Drawing(host, tree_dot(topology, settings, Hrefs(1), False, focus_host=host))
        for host in hosts_folded
    ]
    svgs = render_svgs(drawings)
    written: dict[str, set] = {folder: set() for folder in FOLDERS}
    legend = [
        {"rate": rate, "width": branch_width(rate), "text": _rate_text(rate)}
        for rate in LEGEND_RATES
    ]
    page = {
        "root": "",
        "svg": svgs.get(""),
        "legend": legend,
        "hex": HEX,
        "counts": topology.counts(),
        "links_total": len(topology.links),
        "daemons_total": len(topology.daemons),
        "folded": fold,
        "focus": None,
        "problems": [_link_row(link, Hrefs(0)) for link in topology.problems()],
        "expected_total": len(settings.expected),
    }
    write_atomic(out / "topology.html", site.render("topology.html", common, page))
    for host in hosts_folded:
        page = {
            **page,
            "root": "../",
            "svg": svgs.get(host),
            "focus": host,
            "folded": False,
            "problems": [
                _link_row(link, Hrefs(1))
                for link in topology.problems()
                if host in (link.source.partition("/")[0], link.target.partition("/")[0])
            ],
        }
        write_atomic(out / "topology" / f"{host}.html", site.render("topology.html", common, page))
        written["topology"].add(f"{host}.html")
    graphs_dir = Path(site.graphs_dir)
    found_graphs: dict[str, dict] = {}
    for link in topology.links:
        html = site.render("link.html", common, _link_page(link, graphs_dir, out, found_graphs))
        write_atomic(out / "link" / f"{link.slug}.html", html)
        written["link"].add(f"{link.slug}.html")
    for daemon in topology.daemons.values():
        html = site.render("daemon.html", common, _daemon_page(daemon, fold))
        write_atomic(out / "daemon" / f"{daemon_slug(daemon.name)}.html", html)
        written["daemon"].add(f"{daemon_slug(daemon.name)}.html")
    _remove_stale(out, written)
    return TopologyResult(topology, 1 + sum(len(names) for names in written.values()))


def _rate_text(rate):
    if rate is None:
        return "unknown"
    if rate >= 1000:
        return f"{rate / 1000:.3g}k msg/s"
    return f"{rate:.3g} msg/s"


def _ms(value):
    if value is None:
        return "–"
    return f"{value:.3g} s" if value >= 1 else f"{value * 1000:.3g} ms"


def _link_row(link, hrefs):
    return {
        "name": link.name,
        "source": link.source,
        "target": link.target,
        "colour": link.colour,
        "why": link.why,
        "href": hrefs.link(link),
        "new": link.new,
        "rate": _rate_text(link.rate),
        "p95": _ms(link.latency.get("p95")),
    }


def _link_page(link, graphs_dir, out, found_graphs):
    hrefs = Hrefs(1)
    page_dir = out / "link"
    base = _relative_url(graphs_dir, page_dir)
    ends = []
    for end, reading in link.ends():
        if reading.host not in found_graphs:
            found_graphs[reading.host] = discover_node_graphs(graphs_dir, reading.host)
        stem_prefix = f"{LINK_DATASET}.{reading.instance}"
        slots = []
        for stem, windows in sorted(found_graphs[reading.host].items()):
            if stem != stem_prefix and not stem.startswith(stem_prefix + "."):
                continue
            urls = {
                window: f"{base}/node/{quote(reading.host)}/{quote(name)}?v={version}"
                for window, (name, version) in sorted(
                    windows.items(), key=lambda item: WINDOW_NAMES.index(item[0])
                )
            }
            slots.append({"title": stem, "caption": stem[len(stem_prefix) + 1 :], "urls": urls})
        latest = {
            name: reading.series.latest(name)[1]
            for name in ("messages", "bytes", "errors", "rate", "lat_p50", "lat_p95", "lat_max")
        }
        ends.append(
            {
                "end": end,
                "host": reading.host,
                "daemon": link.source if end == "sent" else link.target,
                "slots": slots or [{"title": stem_prefix, "caption": "", "urls": {}}],
                "rate": _rate_text(latest["rate"]),
                "messages": "–" if latest["messages"] is None else f"{latest['messages']:.0f}",
                "errors": "–" if latest["errors"] is None else f"{latest['errors']:.0f}",
                "p50": _ms(latest["lat_p50"]),
                "p95": _ms(latest["lat_p95"]),
                "max": _ms(latest["lat_max"]),
            }
        )
    return {
        "root": "../",
        "link": _link_row(link, hrefs),
        "source_href": hrefs.daemon(link.source),
        "target_href": hrefs.daemon(link.target),
        "reasons": link.reasons,
        "loss": "–" if link.loss is None else f"{link.loss:.2%}",
        "expected": link.expected,
        "ends": ends,
    }


def _daemon_page(daemon, fold):
    hrefs = Hrefs(1)
    return {
        "root": "../",
        "daemon": daemon.name,
        "colour": daemon.colour,
        "host": daemon.host,
        "host_href": hrefs.host_page(daemon.host),
        "unfolded_href": hrefs.host(daemon.host) if fold else None,
        "links_in": [_link_row(link, hrefs) for link in _worst_first(daemon.links_in)],
        "links_out": [_link_row(link, hrefs) for link in _worst_first(daemon.links_out)],
    }


def _worst_first(links):
    return sorted(links, key=lambda link: (-SEVERITY[link.colour], link.source, link.target))


def discover_node_graphs(graphs_dir, host):
    """``{stem: {window: (file name, version)}}`` of the link PNGs under ``node/<host>/``."""
    directory = graph_paths.node_graph_path(graphs_dir, host, LINK_DATASET, "", "1h").parent
    found = {}
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        name = entry.name
        if not name.startswith(LINK_DATASET + ".") or not name.endswith(".png"):
            continue  # other datasets, temp files of a plot in progress
        stem, _, window = name[: -len(".png")].rpartition(".")
        if stem and window in WINDOW_NAMES:
            try:
                version = entry.stat().st_mtime_ns // 1_000_000
            except FileNotFoundError:
                continue
            found.setdefault(stem, {})[window] = (name, version)
    return found


def _relative_url(target, page_dir):
    relative = os.path.relpath(Path(target).resolve(), Path(page_dir).resolve())
    return posixpath.join(*(quote(part) for part in Path(relative).parts))


def _remove_stale(out, written):
    for folder, keep in written.items():
        directory = out / folder
        if not directory.is_dir():
            continue
        for entry in directory.iterdir():
            if entry.suffix == ".html" and entry.name not in keep:
                entry.unlink(missing_ok=True)
