"""The topology: daemons and the links between them, each link's health, and the tree's drawing.

Links are read from the ``links`` series the status pass already holds (one
per link and end: :func:`affair.names.parse_link_instance`), joined with
``[topology] expected``, judged by the ``[topology]`` thresholds and drawn
by Graphviz's ``dot`` (a real layout engine: ranks top to bottom by
``levels``, crossings minimised) into an SVG whose branches are coloured by
health and as wide as their message rate on a log scale.

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
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import graphviz

from affair.errors import AffairError
from affair.names import parse_link_instance
from affair.vocab import LINK_DATASET, RECORDER_DAEMON, SEVERITY

# The pages' status colours (web_static/style.css), for the SVG, which has no CSS variables
HEX = {"green": "#23854a", "yellow": "#f0b400", "red": "#d0222f", "grey": "#7b838f"}
# Widths of a branch: 1 px at no traffic, +1.5 px per decade of messages per second
LEGEND_RATES = (0, 1, 10, 100, 1_000, 10_000)


def branch_width(rate: float | None) -> float:
    """Pen width in points for a message rate (log scale: 10 and 10,000 msg/s both visible)."""
    return round(1.0 + 1.5 * math.log10(1.0 + max(0.0, rate or 0.0)), 2)


@dataclass(frozen=True)
class EndReading:
    """One end of a link as stored: the host whose directory holds it and its rows."""

    host: str
    instance: str
    series: Any  # affair.outputs.status.SeriesSnapshot


@dataclass
class Link:
    source: str  # 'host/daemon'
    target: str
    out: EndReading | None = None  # the source's own report
    inbound: EndReading | None = None  # the target's
    expected: bool = False
    new: bool = False  # seen, while [topology] expected lists others
    reporting: bool = False  # a sender's link to the recorder itself (its delivery)
    colour: str = "green"
    reasons: list = field(default_factory=list)
    rate: float | None = None
    latency: dict = field(default_factory=dict)  # p50, p95, max, mean: the worst end's latest
    loss: float | None = None  # fraction of the sent messages not received
    last_update: int | None = None

    @property
    def slug(self) -> str:
        """A file name stem: 'tel01_r0dl1__tel01_dl1dl2' (link names hold no '_')."""
        return f"{daemon_slug(self.source)}__{daemon_slug(self.target)}"

    @property
    def name(self) -> str:
        return f"{self.source} → {self.target}"

    @property
    def why(self) -> str:
        return "; ".join(self.reasons) or "healthy"

    def ends(self) -> list[tuple[str, EndReading]]:
        return [(end, r) for end, r in (("sent", self.out), ("received", self.inbound)) if r]


def _severity(colour: str) -> int:
    return SEVERITY[colour]


def daemon_slug(daemon: str) -> str:
    return daemon.replace("/", "_")


@dataclass
class Daemon:
    name: str  # 'host/daemon'
    links_in: list = field(default_factory=list)
    links_out: list = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.name.partition("/")[0]

    @property
    def short(self) -> str:
        return self.name.partition("/")[2]

    @property
    def colour(self) -> str:
        """Grey when every link is dead, else the worst colour of its links."""
        links = self.links_in + self.links_out
        if not links:
            return "grey"
        if all(link.colour == "grey" for link in links):
            return "grey"
        return max((link.colour for link in links if link.colour != "grey"), key=_severity)


@dataclass
class Topology:
    daemons: dict  # name -> Daemon, sorted by name
    links: list  # Link, sorted by (source, target)
    built: float

    def problems(self) -> list[Link]:
        """Red and grey links, worst first."""
        bad = [link for link in self.links if link.colour in ("red", "grey")]
        return sorted(bad, key=lambda link: (-SEVERITY[link.colour], link.source, link.target))

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(HEX, 0)
        for link in self.links:
            counts[link.colour] += 1
        return counts


# --- gathering and judging (pure) ---


def gather(snapshots: Iterable, config, now: float) -> Topology:
    """The topology at ``now`` from HostSnapshots (affair.outputs.status) and ``[topology]``."""
    settings = config.topology
    step = config.recorder.step
    links: dict[tuple[str, str], Link] = {}
    for snapshot in snapshots:
        for series in snapshot.of_dataset(LINK_DATASET):
            parsed = parse_link_instance(series.instance)
            if parsed is None:
                continue  # a links series named some other way (a hashed Graphite name)
            daemon, end, peer_host, peer_daemon = parsed
            here, peer = f"{snapshot.host}/{daemon}", f"{peer_host}/{peer_daemon}"
            key = (here, peer) if end == "out" else (peer, here)
            link = links.setdefault(key, Link(*key))
            reading = EndReading(snapshot.host, series.instance, series)
            if end == "out":
                link.out = reading
            else:
                link.inbound = reading
    forget_before = now - settings.forget_steps * step
    for key in list(links):
        if key not in settings.expected and (_last_update(links[key]) or 0) < forget_before:
            del links[key]
    for key in settings.expected:
        links.setdefault(key, Link(*key)).expected = True
    recorder = f"{config.recorder.self_host}/{RECORDER_DAEMON}"
    for link in links.values():
        link.reporting = link.target == recorder
        link.new = bool(settings.expected) and not link.expected and not link.reporting
        judge(link, settings, step, now)
    daemons: dict[str, Daemon] = {}
    for key in sorted(links):
        link = links[key]
        daemons.setdefault(link.source, Daemon(link.source)).links_out.append(link)
        daemons.setdefault(link.target, Daemon(link.target)).links_in.append(link)
    return Topology(
        daemons=dict(sorted(daemons.items())), links=[links[k] for k in sorted(links)], built=now
    )


def _last_update(link):
    return max((r.series.last_update for _, r in link.ends()), default=None)


def judge(link: Link, settings, step: int, now: float) -> None:
    """Fill in the link's figures, colour and reasons (see affair.config.topology)."""
    link.last_update = _last_update(link)
    reasons: list[tuple[str, str]] = []
    if link.last_update is None:
        reasons.append(("grey", "never reported"))
    elif now - link.last_update > settings.stale_steps * step:
        reasons.append(("grey", f"no sample for {_age(now - link.last_update)}"))
    ends = link.ends()
    if link.out and link.inbound and not reasons:
        # One end fresh, the other silent: a daemon died (or hangs) while its peer goes on
        # sending into the void, or receiving from nowhere.
        for daemon, reading in ((link.source, link.out), (link.target, link.inbound)):
            age = now - reading.series.last_update
            if age > settings.stale_steps * step:
                reasons.append(("red", f"{daemon} has not reported this link for {_age(age)}"))
    for _, reading in ends:
        _when, rate = reading.series.latest("rate")
        if rate is not None:
            link.rate = rate
            break  # the source's own count first: it is what was offered
    worst_p95 = None
    for _, reading in ends:
        p95 = reading.series.latest("lat_p95")[1]
        if p95 is not None and (worst_p95 is None or p95 > worst_p95):
            worst_p95 = p95
            link.latency = {
                name: reading.series.latest(f"lat_{name}")[1]
                for name in ("p50", "p95", "max", "mean")
            }
    if worst_p95 is not None:
        if worst_p95 > settings.latency_red:
            reasons.append(
                ("red", f"latency p95 {_seconds(worst_p95)} > {_seconds(settings.latency_red)}")
            )
        elif worst_p95 > settings.latency_yellow:
            reasons.append(
                (
                    "yellow",
                    f"latency p95 {_seconds(worst_p95)} > {_seconds(settings.latency_yellow)}",
                )
            )
    window_end = now // step * step
    window_start = window_end - settings.loss_steps * step
    if link.out and link.inbound:
        sent, received = _paired_sums(
            link.out.series, link.inbound.series, window_start, window_end
        )
        if sent > 0:
            link.loss = (sent - received) / sent
            if link.loss > settings.loss_tolerance:
                reasons.append(
                    (
                        "red",
                        f"lost {link.loss:.1%}: sent {sent * step:.0f}, "
                        f"received {received * step:.0f} in {_age(settings.loss_steps * step)}",
                    )
                )
    messages = errors = 0.0
    for _, reading in ends:
        messages += sum(v for v in reading.series.window("messages", window_start, window_end) if v)
        errors += sum(v for v in reading.series.window("errors", window_start, window_end) if v)
    if errors and messages:
        ratio = errors / messages
        for colour, limit in (("red", settings.error_red), ("yellow", settings.error_yellow)):
            if ratio > limit:
                reasons.append((colour, f"errors {ratio:.2%} of messages > {limit:.2%}"))
                break
    if any(colour == "grey" for colour, _ in reasons):
        link.colour = "grey"  # dead: what it said before describes the past
    else:
        link.colour = max((c for c, _ in reasons), key=_severity, default="green")
    if link.new:
        reasons.append(("green", "new: not in [topology] expected"))
    link.reasons = [text for _, text in sorted(reasons, key=lambda r: -SEVERITY[r[0]])]


def _paired_sums(out, inbound, start, end):
    """Rates summed over the rows in (start, end] where both ends have a known value."""
    sent_rows = dict(zip(out.times, out.columns.get("rate", ()), strict=False))
    sent = received = 0.0
    for when, value in zip(inbound.times, inbound.columns.get("rate", ()), strict=False):
        other = sent_rows.get(when)
        if start < when <= end and _known(value) and _known(other):
            sent += other
            received += value
    return sent, received


def _known(value):
    return value is not None and not math.isnan(value)


def _seconds(value):
    if value >= 1:
        return f"{value:.3g} s"
    return f"{value * 1000:.3g} ms"


def _age(seconds):
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


# --- drawing (pure: DOT text) ---


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
        if folded_hosts and len(ranks[level]) > 1:
            # A column of a hundred hosts reads in name order, not where crossings put it.
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
    return max((link.colour for link in links), key=_severity, default="green")


def _fill(colour):
    return {"green": "#e8f4ec", "yellow": "#fdf3d0", "red": "#f9dcde", "grey": "#e4e6e9"}[colour]


# --- layout (runs dot) ---

_SVG_START = re.compile(rb"<\?xml|<svg\b")


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
