"""``affair site``: static HTML pages with status colours, rebuilt on a schedule.

Reads the newest rows of every host's RRDs (affair.outputs.status), finds the PNGs
the plotter drew (names from affair.outputs.graph_paths only), and renders with jinja2
from ``web_static/``:

    <out>/index.html           counts per colour, what needs attention, every host by group
    <out>/host/<host>.html     one per host: rules, graphs with window tabs, latest values
    <out>/graph/<name>.html    one per configured aggregate or overlay graph
    <out>/app/<host>@<dataset>[.<instance>].html   one per application dataset series
                               (affair.outputs.app_pages), linked from its host's page
    <out>/status.json          the same status for other tooling
    <out>/notify-state.json    what [[notify]] targets were last told (affair.outputs.notify)
    <out>/style.css, site.js   copied from web_static/

Every file is replaced atomically (temp file + rename), so a browser or a
web server never sees half a page. Names are never markup: autoescape is
on for every template, and a directory under the data dir whose name is not
a valid host name is skipped. Pages link graphs by relative path, so the
site works from any web server that serves both directories, or file://.

Latency: each pass reads the previous pass's status.json, and every sample
newer than a host's last sample then is one the pages now show for the
first time; its latency is the time the pages were written minus its
timestamp. Samples are on the step grid, so a row's time is its sample's.
"""

import bisect
import json
import logging
import math
import os
import posixpath
import time
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import jinja2

from affair import units
from affair.atomic import write_atomic
from affair.hosts import host_matcher
from affair.outputs import graph_paths as layout
from affair.outputs.app_pages import APP_FOLDER, application_series
from affair.outputs.criteria import run_criteria
from affair.outputs.forward_status import forward_rows
from affair.outputs.jobs.pages import JobPages, jobs_exist, recent_jobs_by_host
from affair.outputs.notify import Notifier
from affair.outputs.stations import station_views
from affair.outputs.status import (
    HostSnapshot,
    by_severity,
    collect,
    count_colours,
    format_age,
    format_clock,
    format_value,
    percentile,
    with_criteria,
)
from affair.outputs.topology_pages import Hrefs, write_topology
from affair.storage import archive_health
from affair.vocab import SEVERITY, STATUS_COLOURS, WINDOW_NAMES

log = logging.getLogger(__name__)

# The top-level web_static/ folder, installed as package data of this name.
WEB_STATIC = "affair.outputs.web_static"
ASSETS = ("style.css", "site.js")
HOST_JOBS = 20  # recent jobs listed on a host page
PAGE_GRAPH_MODES = ("aggregate", "overlay")  # configured graphs that get a page of their own
VIEW_PAGE = "view.html"  # one graph, full size: zoom and custom ranges under affair serve
ATTENTION_LIMIT = (
    24  # problem hosts listed at the top of the index (worst first); the rest by filter
)


@dataclass(frozen=True)
class SiteSummary:
    hosts: int
    pages: int
    seconds: float
    counts: dict
    latencies: tuple = ()  # seconds from a sample's time to the pass that first showed it
    links: dict | None = None  # links per colour, when there are links
    failing: tuple = ()  # names of the [[criteria]] that failed or could not run

    def latency(self, percent):
        """The given percentile of this pass's latencies, or None when there were none."""
        return percentile(self.latencies, percent)

    def describe(self):
        text = f"{self.hosts} hosts, {self.pages} pages in {self.seconds:.2f} s; " + ", ".join(
            f"{self.counts[c]} {c}" for c in STATUS_COLOURS
        )
        if self.links:
            text += f"; {sum(self.links.values())} links, " + ", ".join(
                f"{self.links[c]} {c}" for c in ("red", "grey") if self.links.get(c)
            )
            text = text.rstrip(", ")
        if self.failing:
            text += f"; criteria failing: {', '.join(self.failing)}"
        if self.latencies:
            text += (
                f"; sample->page latency p50 {self.latency(50):.1f} s, "
                f"p95 {self.latency(95):.1f} s, max {max(self.latencies):.1f} s "
                f"({len(self.latencies)} samples)"
            )
        return text


def graphs_dir_of(config):
    """Where the plotter draws: ``[site] graphs_dir``, else ``[plot] out_dir``, else 'graphs'."""
    if config.site.graphs_dir:
        return config.site.graphs_dir
    plot = getattr(config, "plot", None)  # the plotter's section, when it is configured
    return getattr(plot, "out_dir", None) or "graphs"


def keeping_summary(config, data_dir, now):
    """The index's line on the journal and the permanent archive (None: archive off)."""
    if not config.export.enabled:
        return None
    measure = archive_health.measure(config, data_dir, now)
    health = archive_health.judge(measure, config, now)
    return {
        "colour": health.colour,
        "problems": health.problems,
        "archive": f"{units.format_value(measure.archive_bytes, 'B', trim=True)}",
        "archive_free": _free_text(measure.archive_free),
        "journal": f"{units.format_value(measure.journal_bytes, 'B', trim=True)}",
        "journal_free": _free_text(measure.journal_free),
        "directory": config.export.directory,
    }


def _free_text(free):
    return "unknown" if free is None else units.format_value(free, "B", trim=True)


def build_site(config, data_dir=None, graphs_dir=None, out_dir=None, clock=time.time):
    """Render the whole site once; return a SiteSummary."""
    return SiteBuilder(config, data_dir, graphs_dir, out_dir, clock).build()


class SiteBuilder:
    def __init__(self, config, data_dir=None, graphs_dir=None, out_dir=None, clock=time.time):
        self.config = config
        self.data_dir = Path(data_dir or config.recorder.data_dir)
        self.graphs_dir = Path(graphs_dir or graphs_dir_of(config))
        self.out_dir = Path(out_dir or config.site.out_dir)
        self.clock = clock
        self.environment = make_environment()
        self._graphs_urls = {}
        self._host_jobs = {}  # host -> the jobs that ran on it recently (affair.outputs.jobs)
        self.topology = None  # this pass's TopologyResult, once written
        self.criteria = []  # this pass's [[criteria]] results (CriterionResult)
        self._matchers = {}

    def build(self):
        """One pass: read the RRDs, write every page, return a SiteSummary."""
        started = time.monotonic()
        now = self.clock()
        statuses = collect(self.config, self.data_dir, now)
        self.criteria = run_criteria(self.config, self.data_dir)
        statuses = with_criteria(statuses, self.criteria)
        previous = self._previous_last_samples()
        written = self.write_pages(statuses, now)
        pages_written_at = self.clock()
        latencies = _latencies(statuses, previous, pages_written_at)
        counts = count_colours(statuses)
        document = _status_json(statuses, counts, now, latencies, self.topology, self.criteria)
        write_atomic(self.out_dir / "status.json", document)
        # After the pages: a slow or dead notify target never holds them back.
        Notifier(self.config, self.out_dir).notify(statuses, now)
        return SiteSummary(
            hosts=len(statuses),
            pages=written,
            seconds=time.monotonic() - started,
            counts=counts,
            latencies=tuple(latencies),
            links=self.topology.topology.counts()
            if self.topology and self.topology.pages
            else None,
            failing=tuple(r.criterion.name for r in self.criteria if r.colour != "green"),
        )

    def write_pages(self, statuses, now):
        """Write the index, the host and graph pages and the assets; return the page count."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        common = self._common(now, self._write_assets())
        jobs_pages = 0
        if jobs_exist(self.config):
            self._host_jobs = recent_jobs_by_host(self.config, now - self.config.jobs.host_recent)
            jobs_pages = (
                JobPages(self.config, self.out_dir, lambda t, p: self.render(t, common, p))
                .write(now)
                .pages
            )
        written = {"host": set(), "graph": set(), APP_FOLDER: set()}
        self.topology = write_topology(self, statuses, now, common)  # host pages list daemons
        statuses = index_order(statuses, self.config.site.groups)  # previous/next as listed
        problems = [i for i, status in enumerate(statuses) if status.colour != "green"]
        for index, status in enumerate(statuses):
            neighbours = (
                statuses[index - 1] if index > 0 else None,
                statuses[index + 1] if index + 1 < len(statuses) else None,
            )
            apps = application_series(status, self.config, now)
            page = self._host_page(status, neighbours, now)
            problem = next_problem(statuses, problems, index)
            page["next_problem"] = problem and {
                "host": problem.host,
                "file": page_href(problem.host),
                "colour": problem.colour,
            }
            html = self.render("host.html", common, {**page, "applications": apps})
            write_atomic(self.out_dir / "host" / page_file(status.host), html)
            written["host"].add(page_file(status.host))
            for app in apps:
                html = self.render("app.html", common, self._app_page(status, app, now))
                write_atomic(self.out_dir / APP_FOLDER / app.file, html)
                written[APP_FOLDER].add(app.file)
        for graph in self.config.graphs.values():
            if graph.mode in PAGE_GRAPH_MODES:
                html = self.render("graph.html", common, self._graph_page(graph))
                write_atomic(self.out_dir / "graph" / page_file(graph.name), html)
                written["graph"].add(page_file(graph.name))
        html = self.render("index.html", common, self._index(statuses, now))
        write_atomic(self.out_dir / "index.html", html)
        # One page shows any graph full size (named in its URL's #fragment, so one file
        # serves them all); with affair serve, its zoom and custom ranges (site.js).
        write_atomic(self.out_dir / VIEW_PAGE, self.render("view.html", common, {"root": ""}))
        self._remove_stale_pages(written)
        pages = 2 + jobs_pages + sum(len(names) for names in written.values())
        return pages + self.topology.pages

    def render_index(self, statuses, now):
        """The index page as a string (what write_pages writes)."""
        return self.render("index.html", self._common(now, 0), self._index(statuses, now))

    def render_host(self, status, now):
        page = self._host_page(status, (None, None), now)
        apps = application_series(status, self.config, now)
        page.update(applications=apps, next_problem=None)
        return self.render("host.html", self._common(now, 0), page)

    def _app_page(self, status, app, now):
        """An application series' page: its colour, its rules, its graphs, its latest values."""
        series = next(
            s
            for s in status.snapshot.series
            if (s.dataset, s.instance) == (app.dataset, app.instance)
        )
        sections = self._node_graph_sections(
            status.host, HostSnapshot(status.host, (series,)), self.out_dir / APP_FOLDER
        )
        dataset = self.config.datasets[app.dataset]
        return {
            "root": "../",
            "host": status.host,
            "host_file": page_href(status.host),
            "group": status.group,
            "app": app,
            "description": dataset.description,
            "age": format_age(now - app.last_update) if app.last_update else "",
            "clock": format_clock(app.last_update, now) if app.last_update else "never",
            "rules": [
                {"colour": r.colour, "name": _rule_name(r), "detail": r.detail}
                for r in sorted(app.results, key=lambda r: -SEVERITY[r.colour])
            ],
            "graph_sections": [s for s in sections if s["label"] == app.label],
            "values": [self._latest_values(series, now)],
        }

    # --- page models ---

    def _common(self, now, asset_version):
        refresh = self.config.site.refresh
        return {
            "site_title": self.config.site.title,
            "built": int(now),
            "built_text": format_clock(now, now),
            "refresh": refresh,
            "refresh_text": format_age(refresh),
            "asset_version": asset_version,
            "colours": STATUS_COLOURS,
            "windows": WINDOW_NAMES,
            "default_window": "1h",
        }

    def _index(self, statuses, now):
        key_columns = [
            {
                "name": f"{dataset}.{variable}",
                "label": self.config.variable(dataset, variable).title,
                "unit": self.config.variable(dataset, variable).unit,
                "dataset": dataset,
                "variable": variable,
            }
            for dataset, variable in self.config.site.key_variables
        ]
        groups = {name: [] for name in self.config.site.groups}
        for status in statuses:
            groups.setdefault(status.group, []).append(self._host_row(status, key_columns, now))
        # statuses come in natural host order; the sort is stable
        problems = by_severity([s for s in statuses if s.colour != "green"], groups)
        link_problems = self.topology.status()["problems"] if self.topology else []
        return {
            "root": "",
            "data_dir": str(self.data_dir),
            "counts": count_colours(statuses),
            "hosts_total": len(statuses),
            "attention": [
                {
                    "host": s.host,
                    "file": page_href(s.host),
                    "colour": s.colour,
                    "why": s.summary(now),
                }
                for s in problems[:ATTENTION_LIMIT]
            ],
            "attention_more": max(0, len(problems) - ATTENTION_LIMIT),
            # Every host silent at once is rarely every node: say what it more likely is.
            "all_silent": len(statuses) > 1 and all(s.stale for s in statuses),
            "key_columns": key_columns,
            "groups": [
                {"name": name, "hosts": rows, "counts": _row_counts(rows)}
                for name, rows in groups.items()
                if rows
            ],
            "jobs_link": (self.out_dir / "jobs" / "index.html").exists(),
            "graphs": [
                {"title": graph.title, "file": page_href(graph.name)}
                for graph in self.config.graphs.values()
                if graph.mode in PAGE_GRAPH_MODES
            ],
            # red and grey links of the topology (affair.outputs.topology_pages)
            "link_problems": link_problems[:ATTENTION_LIMIT],
            "link_problems_more": max(0, len(link_problems) - ATTENTION_LIMIT),
            "links_total": len(self.topology.topology.links) if self.topology else 0,
            "criteria": [
                {
                    "name": r.criterion.name,
                    "description": r.criterion.description,
                    "colour": r.colour,
                    "summary": r.summary,
                }
                for r in self.criteria
            ],
            "forwarding": forward_rows(self.config, self.data_dir, now),
            "stations": station_views(self.config.site.stations, now),
            "keeping": keeping_summary(self.config, self.data_dir, now),
        }

    def _host_row(self, status, key_columns, now):
        values = []
        for column in key_columns:
            value = _key_value(status.snapshot, column["dataset"], column["variable"])
            values.append(
                {
                    "raw": "" if value is None else f"{value:.6g}",
                    "text": format_value(value, column["unit"]),
                }
            )
        return {
            "host": status.host,
            "file": page_href(status.host),
            "colour": status.colour,
            "severity": SEVERITY[status.colour],
            "last_sample": status.last_sample,
            "clock": format_clock(status.last_sample, now) if status.last_sample else "never",
            "age": format_age(now - status.last_sample) if status.last_sample else "",
            "cells": values,
            "stale": status.stale,  # its values are its last ones: grey ink, "as of"
            "why": "" if status.colour == "green" else status.summary(now),
        }

    def _host_page(self, status, neighbours, now):
        snapshot = self._in_config_order(status.snapshot)
        page_dir = self.out_dir / "host"
        previous, following = neighbours
        return {
            "root": "../",
            "host": status.host,
            "group": status.group,
            "colour": status.colour,
            "stale": status.stale,
            "why": status.summary(now),
            "last_sample": status.last_sample,
            "clock": format_clock(status.last_sample, now) if status.last_sample else "never",
            "age": format_age(now - status.last_sample) if status.last_sample else "",
            "previous": previous and {"host": previous.host, "file": page_href(previous.host)},
            "next": following and {"host": following.host, "file": page_href(following.host)},
            "rules": [
                {"colour": r.colour, "name": _rule_name(r), "detail": r.detail}
                for r in sorted(status.results, key=lambda r: -SEVERITY[r.colour])
            ],
            "graph_sections": self._node_graph_sections(status.host, snapshot, page_dir)
            + self._configured_node_sections(status.host, snapshot, page_dir),
            "member_of": self._member_of(status.host, snapshot),
            # its daemons in the topology (links reported from or to this host)
            "daemons": [
                {"name": d.name, "colour": d.colour, "href": Hrefs(1).daemon(d.name)}
                for d in (self.topology.topology.daemons.values() if self.topology else ())
                if d.host == status.host
            ],
            "values": [self._latest_values(series, now) for series in snapshot.series],
            "jobs": self._host_jobs.get(status.host, [])[:HOST_JOBS],
        }

    def _configured_node_sections(self, host, snapshot, page_dir):
        """``[graphs.<name>] mode = "node"`` graphs drawn for this host, one section each."""
        held = {(s.dataset, s.instance) for s in snapshot.series}
        base = self._graphs_url(page_dir)
        sections = []
        for graph in self.config.graphs.values():
            if graph.mode != "node" or (graph.dataset, graph.instance) not in held:
                continue
            if not self._matcher(graph.hosts)(host):
                continue
            urls = {}
            for window in graph.windows:
                path = layout.graph_path(self.graphs_dir, graph.name, "node", window, host=host)
                try:
                    version = path.stat().st_mtime_ns // 1_000_000
                except FileNotFoundError:
                    continue
                urls[window] = f"{base}/{quote(path.name)}?v={version}"
            slot = {"title": graph.title, "caption": "", "urls": urls}
            sections.append({"label": graph.name, "title": graph.title, "slots": [slot]})
        return sections

    def _member_of(self, host, snapshot):
        """The aggregate and overlay graphs that draw this host: linked from its page."""
        held = {(s.dataset, s.instance) for s in snapshot.series}
        return [
            {"title": graph.title, "file": page_href(graph.name)}
            for graph in self.config.graphs.values()
            if graph.mode in PAGE_GRAPH_MODES
            and (graph.dataset, graph.instance) in held
            and self._matcher(graph.hosts)(host)
        ]

    def _matcher(self, patterns):
        """One compiled host matcher per graph's globs, not one per host page."""
        if patterns not in self._matchers:
            self._matchers[patterns] = host_matcher(patterns)
        return self._matchers[patterns]

    def _in_config_order(self, snapshot):
        """Series in the order the config declares their datasets (undeclared ones last)."""
        order = {name: index for index, name in enumerate(self.config.datasets)}
        ranked = sorted(
            snapshot.series, key=lambda s: (order.get(s.dataset, len(order)), s.dataset, s.instance)
        )
        return HostSnapshot(snapshot.host, tuple(ranked))

    def _latest_values(self, series, now):
        rows = []
        newest = None
        for name in series.columns:
            variable = self.config.variable(series.dataset, name)
            when, value = series.latest(name)
            newest = max(newest or 0, when or 0) or None
            rows.append(
                {"name": name, "label": variable.title, "text": format_value(value, variable.unit)}
            )
        stale_after = self.config.status.stale_steps * self.config.recorder.step
        return {
            "label": series.label,
            "time_text": format_clock(newest, now) if newest else "",
            "stale": bool(stale_after) and now - series.last_update > stale_after,
            "rows": rows,
        }

    def _node_graph_sections(self, host, snapshot, page_dir):
        """Graph slots grouped by series: every PNG the plotter drew for the host, by window.

        The plotter may draw one PNG per series or several (split by unit), so
        the files are discovered rather than assumed; a series with none yet
        gets one placeholder slot.
        """
        found = discover_node_graphs(self.graphs_dir, host)
        if _drawn_on_request(self.config):
            add_on_request_graphs(found, host, snapshot, self.config.plot.node_windows)
        base = self._graphs_url(page_dir)
        labels = sorted((s.label for s in snapshot.series), key=len, reverse=True)
        sections = {s.label: [] for s in snapshot.series}
        for stem in sorted(found):
            owner = next((lb for lb in labels if stem == lb or stem.startswith(lb + ".")), stem)
            urls = {
                window: f"{base}/node/{quote(host)}/{quote(file_name)}"
                + ("" if version is None else f"?v={version}")
                for window, (file_name, version) in sorted(
                    found[stem].items(), key=lambda item: WINDOW_NAMES.index(item[0])
                )
            }
            caption = "" if stem == owner else self._graph_title(stem)
            sections.setdefault(owner, []).append({"title": stem, "caption": caption, "urls": urls})
        return [
            {
                "label": label,
                "title": self._graph_title(label),
                "slots": slots or [{"title": label, "caption": "", "urls": {}}],
            }
            for label, slots in sections.items()
        ]

    def _graphs_url(self, page_dir):
        """The graphs dir as a relative URL from ``page_dir`` (worked out once per folder)."""
        if page_dir not in self._graphs_urls:
            self._graphs_urls[page_dir] = _relative_url(self.graphs_dir, page_dir)
        return self._graphs_urls[page_dir]

    def _graph_title(self, stem):
        graph = self.config.graphs.get(stem)
        if graph:
            return graph.title
        dataset = self.config.datasets.get(stem.split(".")[0])
        if dataset and dataset.description and stem == dataset.name:
            return f"{stem}: {dataset.description}"
        return stem

    def _graph_page(self, graph):
        base = self._graphs_url(self.out_dir / "graph")
        urls = {}
        for window in graph.windows:
            path = layout.graph_path(self.graphs_dir, graph.name, graph.mode, window)
            try:
                version = path.stat().st_mtime_ns // 1_000_000
            except FileNotFoundError:
                continue
            urls[window] = f"{base}/{quote(path.name)}?v={version}"
        variables = ", ".join(graph.variables)
        how = f"{graph.aggregate} over hosts" if graph.mode == "aggregate" else "one line per host"
        return {
            "root": "../",
            "title": graph.title,
            "description": f"{graph.dataset}: {variables} ({how}; hosts {' '.join(graph.hosts)})",
            "windows": graph.windows,
            "default_window": graph.windows[0],
            "slots": [{"title": graph.title, "caption": "", "urls": urls}],
        }

    # --- files ---

    def render(self, template, common, page):
        return self.environment.get_template(template).render({**common, **page})

    def _write_assets(self):
        """Copy CSS and JS when they changed; a digest of their bytes versions the page links."""
        digest = zlib.crc32(b"")
        for name in ASSETS:
            data = resources.files(WEB_STATIC).joinpath(name).read_bytes()
            target = self.out_dir / name
            try:
                current = target.read_bytes()
            except FileNotFoundError:
                current = None
            if current != data:
                write_atomic(target, data)
            digest = zlib.crc32(data, digest)
        return f"{digest:08x}"

    def _previous_last_samples(self):
        try:
            previous = json.loads((self.out_dir / "status.json").read_text())
            return {host: info.get("last_sample") for host, info in previous["hosts"].items()}
        except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def _remove_stale_pages(self, written):
        """Pages of hosts that are gone (and graphs no longer configured) are removed."""
        for folder, keep in written.items():
            directory = self.out_dir / folder
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                if entry.suffix == ".html" and entry.name not in keep:
                    entry.unlink(missing_ok=True)


def index_order(statuses, group_names):
    """Hosts in the order the index lists them: by group (the config's order, then the
    others as they come), each group in the order given (natural host order)."""
    rank = {name: index for index, name in enumerate(group_names)}
    for status in statuses:
        rank.setdefault(status.group, len(rank))
    return sorted(statuses, key=lambda s: rank[s.group])


def next_problem(statuses, problems, index):
    """The next host after ``index`` (wrapping round) that is not green, or None.

    ``problems`` are the indexes of the hosts that are not green, ascending:
    a bisection, so 10,000 hosts' pages cost no more than their count.
    """
    if not problems:
        return None
    after = problems[bisect.bisect_right(problems, index) % len(problems)]
    return None if after == index else statuses[after]


def make_environment():
    return jinja2.Environment(
        loader=jinja2.PackageLoader(WEB_STATIC, "templates"),
        autoescape=True,  # every template: a host or variable name is never markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def page_file(name):
    """The file name of a host's or graph's page."""
    return f"{name}.html"


def page_href(name):
    """The same, as a link (valid names need no quoting; this is a second fence)."""
    return quote(page_file(name))


def discover_node_graphs(graphs_dir, host):
    """``{stem: {window: (file name, version)}}`` of the PNGs under ``node/<host>/``."""
    directory = layout.node_graph_path(graphs_dir, host, "x", "", "1h").parent
    found = {}
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        name = entry.name
        if name.startswith(".") or not name.endswith(".png"):
            continue  # temp files of a plot in progress, anything else
        stem, _, window = name[: -len(".png")].rpartition(".")
        if stem and window in WINDOW_NAMES:
            try:
                version = entry.stat().st_mtime_ns // 1_000_000
            except FileNotFoundError:
                continue  # replaced or removed under us
            found.setdefault(stem, {})[window] = (name, version)
    return found


def _drawn_on_request(config):
    """Whether ``[plot] eager`` leaves per-node graphs to ``affair serve`` (not "all")."""
    plot = getattr(config, "plot", None)
    return getattr(plot, "eager", "all") != "all"


def add_on_request_graphs(found, host, snapshot, windows):
    """Add every per-node graph ``affair serve`` draws on request, as not drawn yet (version None).

    Pages link the same PNG names whether the plotter or the server draws
    them, so a static server in front can send the files that exist and
    pass only the missing ones on.
    """
    for series in snapshot.series:
        for window in windows:
            name = layout.node_graph_path("", host, series.dataset, series.instance, window).name
            stem = name[: -len(f".{window}.png")]
            found.setdefault(stem, {}).setdefault(window, (name, None))


def _relative_url(target, page_dir):
    relative = os.path.relpath(Path(target).resolve(), Path(page_dir).resolve())
    return posixpath.join(*(quote(part) for part in Path(relative).parts))


def _key_value(snapshot, dataset, variable):
    for series in snapshot.of_dataset(dataset):  # the instance-less series sorts first
        _when, value = series.latest(variable)
        if value is not None:
            return value
    return None


def _rule_name(result):
    name = result.rule.name
    return f"{name} [{result.instance}]" if result.instance else name


def _row_counts(rows):
    counts = dict.fromkeys(STATUS_COLOURS, 0)
    for row in rows:
        counts[row["colour"]] += 1
    return counts


def _latencies(statuses, previous, written_at):
    latencies = []
    for status in statuses:
        before = previous.get(status.host)
        if not before:
            continue  # a host's first pass: its history is not news
        times = set()
        for series in status.snapshot.series:
            for index, when in enumerate(series.times):
                if before < when <= series.last_update and any(
                    column[index] is not None and not math.isnan(column[index])
                    for column in series.columns.values()
                ):
                    times.add(when)
        latencies.extend(written_at - when for when in times)
    return latencies


def _status_json(statuses, counts, now, latencies, topology=None, criteria=()):
    def rounded(percent):
        value = percentile(latencies, percent)
        return None if value is None else round(value, 2)

    document = {
        "built": int(now),
        "counts": counts,
        "latency": {
            "samples": len(latencies),
            "p50": rounded(50),
            "p95": rounded(95),
            "max": rounded(100),
        },
        "hosts": {
            s.host: {
                "colour": s.colour,
                "group": s.group,
                "last_sample": s.last_sample,
                "why": s.summary(now),
            }
            for s in statuses
        },
    }
    if topology is not None:
        document["links"] = topology.status()
    if criteria:
        document["criteria"] = {
            r.criterion.name: {
                "colour": r.colour,
                "summary": r.summary,
                "error": r.error,
                "violations": [
                    {
                        "kind": v.kind,
                        "subject": " -> ".join(v.subject) if v.kind == "link" else v.subject,
                        "why": v.why,
                    }
                    for v in r.violations
                ],
            }
            for r in criteria
        }
    return json.dumps(document, indent=1) + "\n"
