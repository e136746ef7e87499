"""The topology: daemons and the links between them, and each link's health.

Links are read from the ``links`` series the status pass already holds (one
per link and end: :func:`affair.names.parse_link_instance`), joined with
``[topology] expected`` and judged by the ``[topology]`` thresholds
(affair.config.topology says what each means). Pure: the snapshots and the
clock are passed in. affair.outputs.topology_draw draws the result.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from affair.names import parse_link_instance
from affair.vocab import LINK_DATASET, RECORDER_DAEMON, SEVERITY, STATUS_COLOURS


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


def worst_colour(colours: Iterable[str]) -> str:
    """The worst of ``colours`` (green when there are none)."""
    return max(colours, key=_severity, default="green")


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
        counts = dict.fromkeys(STATUS_COLOURS, 0)
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
