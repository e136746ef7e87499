"""Config keys declared once: every field of every section carries its converter and its words."""

import dataclasses
import importlib
import inspect
import ipaddress
import pkgutil

import pytest

import affair.config
from affair.config import (
    CollectorConfig,
    DiskSettings,
    ExportConfig,
    ForwardTarget,
    Graph,
    GraphiteConfig,
    GraphiteRule,
    NamedQuery,
    NetSettings,
    NotifyTarget,
    PlotConfig,
    ProcessSelector,
    QueryConfig,
    RecorderConfig,
    ScheduleConfig,
    SiteConfig,
    StatusConfig,
    StatusRule,
    TopologyConfig,
    load_config,
    parse_config,
)
from affair.config.archive import ArchiveSettings
from affair.config.builtin import GRAPHITE_COUNTERS, RECORDER_COUNTERS, builtin_datasets
from affair.config.criteria import Criterion
from affair.config.datasets import Dataset, Variable
from affair.config.fields import settings_of
from affair.config.graphite import default_rules
from affair.config.jobs import JobsConfig
from affair.config.site import Station
from affair.errors import ConfigError
from affair.vocab import GRAPHITE_REFUSALS, REJECTION_REASONS
from tests.conftest import write_config

# Dataclasses of the config package that are values, not tables of the file.
NOT_SECTIONS = {"Config", "Archive"}


def section_classes():
    found = {}
    for module_info in pkgutil.iter_modules(affair.config.__path__):
        module = importlib.import_module(f"affair.config.{module_info.name}")
        for name, cls in inspect.getmembers(module, dataclasses.is_dataclass):
            if cls.__module__ == module.__name__ and name not in NOT_SECTIONS:
                found[name] = cls
    return found


def test_the_section_classes_are_found():
    assert set(section_classes()) == {
        "ArchiveSettings",
        "CollectorConfig",
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
        "Station",
        "StatusConfig",
        "StatusRule",
        "Variable",
        "TopologyConfig",
        "Criterion",
    }


@pytest.mark.parametrize("cls", section_classes().values(), ids=lambda cls: cls.__name__)
def test_every_field_is_a_whole_setting_or_says_where_it_comes_from(cls):
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if "computed" in meta:
            assert "convert" not in meta and "expected" not in meta, field.name
            assert meta["computed"].strip(), field.name
            continue
        assert callable(meta.get("convert")), f"{cls.__name__}.{field.name} has no converter"
        expected = meta.get("expected")
        assert isinstance(expected, str) and expected.strip(), f"{cls.__name__}.{field.name}"
        assert field.default is not dataclasses.MISSING or (
            field.default_factory is not dataclasses.MISSING
        ), f"{cls.__name__}.{field.name} has no default"


def test_a_mutable_default_is_not_shared():
    first, second = RecorderConfig(), RecorderConfig()
    assert first.curve_key_hosts == {} and first.curve_key_hosts is not second.curve_key_hosts
    assert CollectorConfig().disks == DiskSettings()
    assert CollectorConfig().net == NetSettings()


# (section class, TOML, dotted key, expected words, the value as Python sees it)
BAD_VALUES = [
    (
        RecorderConfig,
        "[recorder]\nmax_message_bytes = 0\n",
        "recorder.max_message_bytes",
        "a positive whole number",
        0,
    ),
    (
        ArchiveSettings,
        "[archive]\nxff = 'half'\n",
        "archive.xff",
        "a fraction between 0 and 1 (exclusive of 1)",
        "half",
    ),
    (
        CollectorConfig,
        "[collector]\ninterval = 'often'\n",
        "collector.interval",
        "a duration in seconds or like '10s', '5min', '1h'",
        "often",
    ),
    (
        DiskSettings,
        "[collector.disks]\nexclude_fstypes = 'tmpfs'\n",
        "collector.disks.exclude_fstypes",
        "a list of file system types like 'tmpfs'",
        "tmpfs",
    ),
    (
        NetSettings,
        "[collector.net]\nexclude = [1]\n",
        "collector.net.exclude",
        "a list of interface-name globs like 'veth*'",
        [1],
    ),
    (
        ProcessSelector,
        "[[collector.processes]]\nname = 7\n",
        "collector.processes[0].name",
        "a process name as `ps -e` shows it, e.g. 'sshd'",
        7,
    ),
    (
        GraphiteConfig,
        "[graphite]\nmax_connections = -1\n",
        "graphite.max_connections",
        "a positive whole number",
        -1,
    ),
    (
        GraphiteRule,
        "[[graphite.rules]]\npattern = '(?P<host>.*)'\nhost = 5\n",
        "graphite.rules[0].host",
        "a template like '{host}'",
        5,
    ),
    (
        Dataset,
        "[datasets.x]\ndescription = 1\n",
        "datasets.x.description",
        "a string",
        1,
    ),
    (
        Variable,
        "[datasets.x.variables]\nv = { unit = 3 }\n",
        "datasets.x.variables.v.unit",
        "a unit string like '%' or 'B/s'",
        3,
    ),
    (
        Graph,
        "[datasets.x.variables]\nv = {}\n[graphs.g]\ndataset = 'x'\nmode = 'stacked'\n",
        "graphs.g.mode",
        "one of node, aggregate, overlay",
        "stacked",
    ),
    (PlotConfig, "[plot]\nwidth = 100\n", "plot.width", "a width in pixels, at least 320", 100),
    (SiteConfig, "[site]\ntitle = true\n", "site.title", "a title string", True),
    (
        ScheduleConfig,
        "[schedule]\nplot = 'soon'\n",
        "schedule.plot",
        "a duration like '1min', or 0 for never",
        "soon",
    ),
    (
        StatusConfig,
        "[status]\nstale_steps = -1\n",
        "status.stale_steps",
        "a whole number of steps >= 0 (0: hosts never turn grey)",
        -1,
    ),
    (
        StatusRule,
        "[[status.rules]]\nkind = 'stale'\ndataset = 'affair'\ncolour = 'green'\n",
        "status.rules[0].colour",
        "'yellow', 'red' or 'grey'",
        "green",
    ),
    (ExportConfig, "[export]\nhour = 24\n", "export.hour", "an hour of the day, 0 to 23 (UTC)", 24),
    (
        ExportConfig,
        "[export]\ncpu_share = 1.5\n",
        "export.cpu_share",
        "a fraction of one core, above 0 and at most 1",
        1.5,
    ),
    (
        QueryConfig,
        "[query]\nmax_rows = 0\n",
        "query.max_rows",
        "a positive whole number of rows to print as a table",
        0,
    ),
    (NamedQuery, "[queries.q]\nsql = 1\n", "queries.q.sql", "an SQL SELECT statement", 1),
    (
        JobsConfig,
        "[jobs]\nkeep_days = 0\n",
        "jobs.keep_days",
        "a whole number of days",
        0,
    ),
    (
        TopologyConfig,
        "[topology]\nstale_steps = 0\n",
        "topology.stale_steps",
        "a positive whole number of steps",
        0,
    ),
    (
        Criterion,
        "[[criteria]]\nname = 'c'\ncolour = 'green'\nsql = 'SELECT 1 AS host'\n",
        "criteria[0].colour",
        "'yellow', 'red' or 'grey'",
        "green",
    ),
    (
        Station,
        '[[site.stations]]\nstatus = "/s/status.json"\ntimeout = "soon"\n',
        "site.stations[0].timeout",
        "a duration in seconds or like '10s', '5min', '1h'",
        "soon",
    ),
    (
        ForwardTarget,
        '[[forward]]\nurl = "ftp://vm/write"\n',
        "forward[0].url",
        "an http(s) URL like 'http://127.0.0.1:8428/write'",
        "ftp://vm/write",
    ),
    (
        NotifyTarget,
        "[[notify]]\ncommand = ['true']\ntimeout = 'soon'\n",
        "notify[0].timeout",
        "a duration in seconds or like '10s', '5min', '1h'",
        "soon",
    ),
]


def test_every_section_has_a_bad_value_case():
    assert {case[0].__name__ for case in BAD_VALUES} == set(section_classes())


@pytest.mark.parametrize(
    ("cls", "text", "key", "expected", "got"), BAD_VALUES, ids=[case[2] for case in BAD_VALUES]
)
def test_a_bad_value_names_file_key_expectation_and_value(tmp_path, cls, text, key, expected, got):
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {key}: expected {expected}, got {got!r}"
    assert settings_of(cls)[key.rsplit(".", 1)[1]].metadata["expected"] == expected


def test_builtin_datasets_load_with_no_config_file():
    config = parse_config({})
    builtin = builtin_datasets()
    assert {name: config.datasets[name] for name in builtin} == builtin
    recorder = config.datasets["affair"].variables
    assert set(RECORDER_COUNTERS) <= set(recorder)
    assert {f"rej_{reason}" for reason in REJECTION_REASONS} <= set(recorder)
    assert recorder["rej_var_cap"].type == "DERIVE" and recorder["rej_var_cap"].min == 0.0
    assert recorder["queue_depth"].type == "GAUGE"
    graphite = config.datasets["graphite"].variables
    assert list(graphite) == [
        *GRAPHITE_COUNTERS,
        "open",
        *(f"bad_{reason}" for reason in GRAPHITE_REFUSALS),
    ]
    assert set(config.datasets["delivery"].variables) == {
        "latency_avg",
        "latency_max",
        "samples",
        "dropped",
        "buffered",
    }


def test_a_declared_dataset_replaces_the_builtin_one():
    config = parse_config({"datasets": {"affair": {"variables": {"only": {}}}}})
    assert list(config.datasets["affair"].variables) == ["only"]
    assert "delivery" in config.datasets


def test_graphite_defaults_load_with_no_config_file():
    graphite = parse_config({}).graphite
    assert graphite.listen is None
    assert graphite.allow == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert (graphite.max_connections, graphite.max_line_bytes) == (256, 1024)
    assert graphite.rules == default_rules()
    assert graphite.rules[0].apply("node01.cpu-0.percent-user") == (
        "node01",
        "cpu",
        "0",
        "percent_user_",
    )
