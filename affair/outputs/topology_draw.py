"""The topology's drawing: DOT text for Graphviz's ``dot``, and one run of ``dot`` for all.

A real layout engine places the daemons: ranks top to bottom by ``[topology]
roots`` and ``levels``, crossings minimised. Branches are coloured by the
link's health and as wide as its message rate on a log scale (the legend's
widths come from :func:`branch_width` too).

Stable layout: the DOT text lists daemons and links sorted by name and
carries nothing that changes from one pass to the next in what ``dot``
uses to place things (colours, widths and links do not move nodes), so
the same tree is drawn the same way at every rebuild.

Readable at hundreds of daemons: above ``fold_above`` daemons, each host's
daemons become one node coloured by the worst of its own links, and links
between hosts are merged (their rates added, the worst colour kept); each
folded host gets its own drawing, unfolded.

Everything here is pure except :func:`render_svgs`, which runs ``dot``
(several graphs in one call: a process start costs more than a small layout).
"""

import math
from dataclasses import dataclass

import graphviz

from affair.errors import AffairError
from affair.outputs.topology import Link, Topology, daemon_slug, worst_colour

# The pages' status colours (web_static/style.css), for the SVG, which has no CSS variables
HEX = {"green": "#23854a", "yellow": "#f0b400", "red": "#d0222f", "grey": "#7b838f"}
# Widths of a branch: 1 px at no traffic, +1.5 px per decade of messages per second
LEGEND_RATES = (0, 1, 10, 100, 1_000, 10_000)


def branch_width(rate: float | None) -> float:
    """Pen width in points for a message rate (log scale: 10 and 10,000 msg/s both visible)."""
    return round(1.0 + 1.5 * math.log10(1.0 + max(0.0, rate or 0.0)), 2)


@dataclass(frozen=True)
class Drawing:
    """One graph to lay out: its DOT text and the page it goes on."""

    name: str
    dot: str


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attrs(**values):
    return "[" + ", ".join(f"{k}={_quote(v)}" for k, v in values.items() if v is not None) + "]"


def level_of(daemon: str, levels: tuple[str, ...]) -> int | None:
    short = daemon.partition("/")[2]
    return levels.index(short) if short in levels else None


def should_fold(topology: Topology, settings) -> bool:
    return len(topology.daemons) > settings.fold_above


def tree_dot(topology: Topology, settings, hrefs, fold: bool, focus_host: str | None = None) -> str:
    """The DOT text of the whole tree (folded by host when ``fold``) or of one host's part.

    ``hrefs`` gives the links of the drawing: ``hrefs.link(link)``,
    ``hrefs.daemon(name)`` and ``hrefs.host(host)`` (a folded host's page).
    With ``focus_host``, only that host's daemons and their links (in and out)
    are drawn, unfolded.
    """
    links = topology.links
    if focus_host is not None:
        links = [
            link
            for link in links
            if link.source.partition("/")[0] == focus_host
            or link.target.partition("/")[0] == focus_host
        ]
        fold = False
    folded_hosts = set()
    if fold:
        per_host: dict[str, int] = {}
        for name in topology.daemons:
            host = name.partition("/")[0]
            per_host[host] = per_host.get(host, 0) + 1
        folded_hosts = {host for host, count in per_host.items() if count > 1}

    def node_of(daemon):
        host = daemon.partition("/")[0]
        return f"host:{host}" if host in folded_hosts else daemon

    nodes: dict[str, dict] = {}
    ranks: dict[int, set] = {}
    for link in links:
        for daemon in (link.source, link.target):
            node = node_of(daemon)
            level = level_of(daemon, settings.levels)
            if node not in nodes:
                nodes[node] = {"daemons": [], "level": level}
            nodes[node]["daemons"].append(daemon)
            if level is not None and (nodes[node]["level"] is None or level < nodes[node]["level"]):
                nodes[node]["level"] = level
    edges: dict[tuple[str, str], list[Link]] = {}
    internal: dict[str, list[Link]] = {}
    for link in links:
        a, b = node_of(link.source), node_of(link.target)
        if a == b:
            internal.setdefault(a, []).append(link)
        else:
            edges.setdefault((a, b), []).append(link)
    # Folded, a level holds a node per host (a hundred telescopes): stacked top to bottom
    # and read down the page, instead of a row ten screens wide.
    direction = "LR" if folded_hosts else "TB"
    lines = [
        "digraph topology {",
        f'  graph [rankdir="{direction}", nodesep="0.12", ranksep="{2.5 if folded_hosts else 0.6}", '
        'splines="true", '
        'bgcolor="transparent", fontname="DejaVu Sans"];',
        '  node [shape="box", style="rounded,filled", fontname="DejaVu Sans", fontsize="10", '
        'height="0.3", margin="0.08,0.03"];',
        '  edge [arrowsize="0.5"];',
    ]
    for node in sorted(nodes):
        info = nodes[node]
        if node.startswith("host:"):
            host = node[5:]
            own = internal.get(node, [])
            daemons = sorted(
                {d for link in own for d in (link.source, link.target)} | set(info["daemons"])
            )
            colour = _worst(own) if own else "green"
            label = f"{host} · {len(set(daemons))} daemons"
            attrs = _attrs(
                id=f"host-{host}",
                label=label,
                href=hrefs.host(host),
                target="_top",
                tooltip=f"{host}: " + ", ".join(d.partition("/")[2] for d in sorted(set(daemons))),
                fillcolor=_fill(colour),
                color=HEX[colour],
                penwidth="2",
                **{"class": f"daemon folded {colour}"},
            )
        else:
            daemon = topology.daemons.get(node)
            colour = daemon.colour if daemon else "grey"
            attrs = _attrs(
                id=f"daemon-{daemon_slug(node)}",
                label=node.replace("/", "\n", 1) if focus_host is None else node,
                href=hrefs.daemon(node),
                target="_top",
                tooltip=node,
                fillcolor=_fill(colour),
                color=HEX[colour],
                **{"class": f"daemon {colour}"},
            )
        lines.append(f"  {_quote(node)} {attrs};")
        if info["level"] is not None:
            ranks.setdefault(info["level"], set()).add(node)
    roots = sorted(
        node
        for node, info in nodes.items()
        if any(
            d in settings.roots or d.partition("/")[2] in settings.roots for d in info["daemons"]
        )
    )
    if roots:
        lines.append(f"  {{ rank=min; {' '.join(_quote(n) for n in roots)} }}")
        ranks = {level: members - set(roots) for level, members in ranks.items()}
        ranks = {level: members for level, members in ranks.items() if members}
    for level in sorted(ranks):
        members = " ".join(_quote(n) for n in sorted(ranks[level]))
        lines.append(f"  {{ rank=same; {members} }}")
        if len(ranks[level]) > 1:
            # A row reads in name order (tel01, tel02, ...), not where dot's crossing
            # minimisation puts it: invisible edges along the rank fix the order.
            chain = " -> ".join(_quote(n) for n in sorted(ranks[level]))
            lines.append(f'  {chain} [style="invis"];')
    for a, b in sorted(edges):
        group = edges[(a, b)]
        colour = _worst(group)
        rate = sum(link.rate or 0.0 for link in group)
        if len(group) == 1:
            link = group[0]
            href, tip, ident = hrefs.link(link), f"{link.name}: {link.why}", f"link-{link.slug}"
        else:
            host = (a if a.startswith("host:") else b)[5:]
            href = hrefs.host(host)
            tip = f"{len(group)} links, worst: " + next(
                (f"{x.name}: {x.why}" for x in group if x.colour == colour), ""
            )
            ident = f"links-{a.replace(':', '-').replace('/', '_')}--{b.replace(':', '-').replace('/', '_')}"
        new = any(link.new for link in group)
        # Every sender's link to the recorder is drawn light and left out of the layout's
        # ranking, so the pipeline's own tree stays readable; a sick one is drawn in full.
        reporting = all(link.reporting for link in group)
        faint = reporting and colour == "green"
        lines.append(
            f"  {_quote(a)} -> {_quote(b)} "
            + _attrs(
                id=ident,
                href=href,
                target="_top",
                tooltip=f"{tip} ({rate:.3g} msg/s)",
                color=HEX[colour] + ("40" if faint else ""),
                penwidth=0.8 if faint else branch_width(rate),
                constraint="false" if reporting else None,
                style="dashed" if new or colour == "grey" else None,
                **{
                    "class": f"link {colour}"
                    + (" new" if new else "")
                    + (" reporting" if reporting else "")
                },
            )
            + ";"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _worst(links):
    return worst_colour(link.colour for link in links)


def _fill(colour):
    return {"green": "#e8f4ec", "yellow": "#fdf3d0", "red": "#f9dcde", "grey": "#e4e6e9"}[colour]


# --- layout (runs dot) ---


def render_svgs(drawings: list[Drawing]) -> dict[str, str]:
    """Lay out every drawing with one run of ``dot``: ``{name: svg text}`` (no XML prologue).

    ``dot`` reads several graphs from one input and writes one SVG document
    per graph, in order.
    """
    if not drawings:
        return {}
    source = "".join(drawing.dot for drawing in drawings).encode()
    try:
        output = graphviz.pipe("dot", "svg", source, quiet=True)
    except graphviz.ExecutableNotFound:
        raise AffairError("the topology needs Graphviz's dot (Debian package 'graphviz')") from None
    except graphviz.CalledProcessError as error:
        raise AffairError(f"dot failed: {error.stderr.decode(errors='replace')[:500]}") from None
    documents = [doc for doc in output.split(b"</svg>") if b"<svg" in doc]
    if len(documents) != len(drawings):
        raise AffairError(f"dot gave {len(documents)} drawings for {len(drawings)} graphs")
    svgs = {}
    for drawing, document in zip(drawings, documents, strict=True):
        start = document.index(b"<svg")
        svgs[drawing.name] = document[start:].decode() + "</svg>"
    return svgs
