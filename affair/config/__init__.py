"""The one config file: loaded with tomllib, validated at load, then frozen.

Each section is a frozen dataclass whose fields are its keys, each declared
once with its default, converter and expectation (:mod:`affair.config.fields`);
a key that is not declared is an error, and a value the converter refuses
becomes a one-line ConfigError naming the file, the dotted key and the
expectation. Each section's module computes the defaults derived from other
values (the heartbeat is twice the step, pages reload as often as they are
rebuilt) in its ``load_*`` function.

    fields        setting(), the converters and the loader
    recorder      [recorder]
    archive       [archive]: the ladder, parsed and checked
    collector     [collector] and the probes' settings under it
    datasets      [datasets]
    builtin       the datasets the recorder and its Graphite listener record of themselves
    graphite      [graphite]: listen address, limits and the compiled mapping rules
    graphs        [graphs.<name>] and [plot]
    status        [status] and its rules
    site          [schedule] and [site]
    export_query  [export], [query] and [queries.<name>]
    jobs          [jobs]: batch jobs (Slurm), their node names and flags
    topology      [topology]: expected links, levels, link health
    criteria      [[criteria]]: verification criteria as read-only SQL
    forward       [[forward]]: targets every journaled sample is streamed to
    notify        [[notify]]: who is told of colour changes
"""

import dataclasses
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from affair.config.archive import AFFAIR_LADDER, Archive, ArchiveSettings, load_ladder
from affair.config.builtin import builtin_datasets, forward_dataset
from affair.config.collector import (
    CollectorConfig,
    DiskSettings,
    NetSettings,
    ProcessSelector,
    load_collector,
)
from affair.config.criteria import Criterion, load_criteria
from affair.config.datasets import Dataset, Variable, load_datasets
from affair.config.export_query import (
    ExportConfig,
    NamedQuery,
    QueryConfig,
    load_export,
    load_query,
)
from affair.config.fields import load_section, reject_unknown
from affair.config.forward import ForwardTarget, load_forward, with_forward_rules
from affair.config.graphite import GraphiteConfig, GraphiteRule, load_graphite
from affair.config.graphs import Graph, PlotConfig, load_graphs
from affair.config.jobs import JobsConfig, load_jobs
from affair.config.notify import NotifyTarget, load_notify
from affair.config.recorder import RecorderConfig, load_recorder
from affair.config.site import ScheduleConfig, SiteConfig, load_site
from affair.config.status import StatusConfig, StatusRule, load_status
from affair.config.topology import TopologyConfig, load_topology
from affair.errors import ConfigError

__all__ = [
    "AFFAIR_LADDER",
    "DEFAULT_CONFIG",
    "SECTIONS",
    "SHIPPED",
    "Archive",
    "CollectorConfig",
    "Config",
    "Criterion",
    "Dataset",
    "DiskSettings",
    "ExportConfig",
    "ForwardTarget",
    "Graph",
    "GraphiteConfig",
    "GraphiteRule",
    "JobsConfig",
    "NamedQuery",
    "NetSettings",
    "NotifyTarget",
    "PlotConfig",
    "ProcessSelector",
    "QueryConfig",
    "RecorderConfig",
    "ScheduleConfig",
    "SiteConfig",
    "StatusConfig",
    "StatusRule",
    "TopologyConfig",
    "Variable",
    "load_config",
    "parse_config",
]

# The top-level config/ folder, installed as package data of affair.config.
SHIPPED = resources.files("affair.config.shipped")
DEFAULT_CONFIG = Path(str(SHIPPED / "affair.toml"))

SECTIONS = (
    "recorder",
    "archive",
    "collector",
    "datasets",
    "graphs",
    "site",
    "status",
    "schedule",
    "export",
    "query",
    "queries",
    "graphite",
    "plot",
    "jobs",
    "topology",
    "criteria",
    "forward",
    "notify",
)


@dataclass(frozen=True)
class Config:
    path: str
    recorder: RecorderConfig
    archives: tuple[Archive, ...]
    consolidations: tuple[str, ...]
    xff: float
    collector: CollectorConfig
    datasets: dict[str, Dataset]
    graphs: dict[str, Graph]  # in file order
    site: SiteConfig
    status: StatusConfig
    schedule: ScheduleConfig
    export: ExportConfig
    query: QueryConfig
    graphite: GraphiteConfig
    plot: PlotConfig
    jobs: JobsConfig = JobsConfig()
    topology: TopologyConfig = TopologyConfig()
    criteria: tuple[Criterion, ...] = ()
    forward: tuple[ForwardTarget, ...] = ()  # [[forward]] targets, in file order
    notify: tuple[NotifyTarget, ...] = ()

    def variable(self, dataset, name):
        """The declared variable, or the default GAUGE definition for an undeclared one."""
        declared = self.datasets.get(dataset)
        if declared and name in declared.variables:
            return declared.variables[name]
        return Variable(name)

    def is_declared(self, dataset, name=None):
        declared = self.datasets.get(dataset)
        if declared is None:
            return False
        return name is None or name in declared.variables

    def with_overrides(self, **recorder_changes):
        """A copy with recorder settings replaced (command-line flags); None means keep."""
        changes = {k: v for k, v in recorder_changes.items() if v is not None}
        return dataclasses.replace(self, recorder=dataclasses.replace(self.recorder, **changes))


def load_config(path=None) -> Config:
    """Read, validate and freeze the config file at ``path`` (default: the shipped one)."""
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(path, "(file)", "an existing TOML file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, "(syntax)", f"valid TOML ({error})") from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Any = "<config>") -> Config:
    """Validate an already-parsed TOML document (tests feed dicts straight in)."""
    reject_unknown(raw, SECTIONS, path, "")
    recorder = load_recorder(raw.get("recorder", {}), path)
    archive = load_section(ArchiveSettings, raw.get("archive", {}), path, "archive")
    collector = load_collector(raw.get("collector", {}), path)
    graphite = load_graphite(raw.get("graphite", {}), path)
    archives = load_ladder(archive, recorder.step, path)
    datasets = load_datasets(raw.get("datasets", {}), path)
    for name, dataset in builtin_datasets().items():
        datasets.setdefault(name, dataset)
    forward = load_forward(raw.get("forward", []), path)
    if forward:
        datasets.setdefault("forward", forward_dataset())
    graphs = load_graphs(raw.get("graphs", {}), datasets, path)
    schedule = load_section(ScheduleConfig, raw.get("schedule", {}), path, "schedule")
    site = load_site(raw.get("site", {}), datasets, schedule, path)
    status = load_status(raw.get("status", {}), datasets, path)
    status = with_forward_rules(status, forward, recorder.self_host)
    plot = load_section(PlotConfig, raw.get("plot", {}), path, "plot")
    return Config(
        path=str(path),
        recorder=recorder,
        archives=archives,
        consolidations=archive.consolidations,
        xff=archive.xff,
        collector=collector,
        datasets=datasets,
        graphs=graphs,
        site=site,
        status=status,
        schedule=schedule,
        export=load_export(raw.get("export", {}), archives, path),
        query=load_query(raw.get("query", {}), raw.get("queries", {}), path),
        graphite=graphite,
        plot=plot,
        jobs=load_jobs(raw.get("jobs", {}), datasets, path),
        topology=load_topology(raw.get("topology", {}), path),
        criteria=load_criteria(raw.get("criteria", []), datasets, path),
        forward=forward,
        notify=load_notify(raw.get("notify", []), path),
    )
