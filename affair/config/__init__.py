"""The one config file: loaded with tomllib, validated at load, then frozen.

Every section is described by a schema: key -> (default, converter, what is
expected). The schema is the single table of defaults and types; a key that
is not in it is an error (ganglia once lost a setting to a typo), and a value
the converter refuses becomes a one-line ConfigError naming the file, the
dotted key and the expectation. Defaults derived from other values (the
heartbeat is twice the step) are computed in :func:`_derive`.
"""

import dataclasses
import ipaddress
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from affair.errors import ConfigError, InvalidName
from affair.names import check_name, safe_name
from affair.storage import ladder as archive_maths

# The top-level config/ folder, installed as package data of affair.config.
SHIPPED = resources.files("affair.config.shipped")
DEFAULT_CONFIG = Path(str(SHIPPED / "affair.toml"))

AFFAIR_LADDER = ("10s:360", "1min:360", "4min:360", "30min:336", "2h:372", "6h:368", "1d:366")


# --- converters: each returns the clean value or raises ValueError/TypeError ---


def _int(minimum):
    def convert(value):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError
        return value

    return convert


def _number(value):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError
    return float(value)


def _optional_number(value):
    return None if value == "U" else _number(value)


def _non_negative(value):
    value = _number(value)
    if value < 0:
        raise ValueError
    return value


def _seconds(value):
    return archive_maths.parse_duration(value)


def _bool(value):
    if not isinstance(value, bool):
        raise ValueError
    return value


def _string(value):
    if not isinstance(value, str):
        raise ValueError
    return value


def _string_list(value):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError
    return tuple(value)


def _endpoint(value):
    value = _string(value)
    if not value.startswith(("tcp://", "ipc://", "inproc://")):
        raise ValueError
    return value


def _table(value):
    if not isinstance(value, dict):
        raise ValueError
    return value


def _table_list(value):
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError
    return tuple(value)


def _graphite_listen(value):
    from affair.ingest.graphite import parse_listen  # noqa: PLC0415 - only when the key is set

    return None if value in ("", None) else parse_listen(value)


def _rrdcached_address(value):
    """'' (write files directly), 'unix:<absolute path>', or a loopback 'HOST:PORT'.

    Loopback only: rrdcached has no authentication, and affair reads and
    tunes the same files itself, so the daemon must run on this machine.
    """
    value = _string(value).strip()
    if not value:
        return ""
    if value.startswith("unix:"):
        if not value[len("unix:") :].startswith("/"):
            raise ValueError
        return value
    host, colon, port = value.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError
    return value


def _networks(value):
    return tuple(ipaddress.ip_network(item, strict=False) for item in _string_list(value))


def _one_of(*choices):
    def convert(value):
        if value not in choices:
            raise ValueError
        return value

    return convert


_POSITIVE = (_int(1), "a positive whole number")
_SECONDS = (_seconds, "a duration in seconds or like '10s', '5min', '1h'")

RECORDER_SCHEMA = {
    "listen": ("tcp://127.0.0.1:5678", _endpoint, "a ZeroMQ endpoint like 'tcp://*:5678'"),
    "data_dir": ("data", _string, "a directory path"),
    "step": (10, *_SECONDS),
    "heartbeat": (None, *_SECONDS),
    "accept_undeclared": (True, _bool, "true or false"),
    "max_series_per_host": (256, *_POSITIVE),
    "max_variables_per_dataset": (64, *_POSITIVE),
    "max_message_bytes": (1 << 20, *_POSITIVE),
    "max_future_skew": (300, *_SECONDS),
    "max_sample_age": (7 * 86400, *_SECONDS),
    "self_host": ("affair", _string, "a host name for the recorder's own metrics"),
    "self_interval": (10, *_SECONDS),
    "write_delay": (0, _non_negative, "a number of seconds >= 0"),
    "queue_limit": (200_000, *_POSITIVE),
    "journal_sync": ("normal", _one_of("normal", "full"), "'normal' or 'full'"),
    "journal_days": (7, *_POSITIVE),
    "rrdcached": (
        "",
        _rrdcached_address,
        "'' (off), 'unix:<absolute path>' or a loopback 'HOST:PORT' like '127.0.0.1:42217'",
    ),
    "rrdcached_flush": (300, *_SECONDS),
    "curve_secret_key_file": ("", _string, "a path to the recorder's NAME.key_secret, or ''"),
    "curve_allowed_keys": ((), _string_list, "a list of public key files or directories"),
    "curve_bind_hosts": (False, _bool, "true or false"),
    "curve_key_hosts": (
        {},
        _table,
        'a table of key name -> list of host patterns, like { daq-gateway = ["ldc*"] }',
    ),
}

ARCHIVE_SCHEMA = {
    "ladder": (AFFAIR_LADDER, _string_list, "a list of 'STEP:ROWS' strings like '10s:360'"),
    "consolidations": (
        ("AVERAGE", "MIN", "MAX"),
        _string_list,
        f"a list drawn from {list(archive_maths.CONSOLIDATIONS)}",
    ),
    "xff": (0.5, _number, "a fraction between 0 and 1 (exclusive of 1)"),
}

COLLECTOR_SCHEMA = {
    "recorder": ("tcp://127.0.0.1:5678", _endpoint, "a ZeroMQ endpoint like 'tcp://station:5678'"),
    "host": ("", _string, "a host name, or '' for this machine's name"),
    "interval": (10, *_SECONDS),
    "probes": (("system",), _string_list, "a list of probe names"),
    "buffer_seconds": (3600, *_SECONDS),
    "resend_timeout": (5, *_SECONDS),
    "max_in_flight": (64, *_POSITIVE),
    "backoff_cap": (30, *_SECONDS),
    "curve_secret_key_file": ("", _string, "a path to this collector's NAME.key_secret, or ''"),
    "curve_recorder_key_file": ("", _string, "a path to the recorder's public NAME.key, or ''"),
    "disks": ({}, _table, "a table [collector.disks]"),
    "net": ({}, _table, "a table [collector.net]"),
    "processes": ((), _table_list, "a list of tables [[collector.processes]]"),
}

# The probes' own settings (collectors/probes/), under [collector.<probe>].
DISKS_SCHEMA = {
    "exclude_fstypes": (
        ("squashfs", "tmpfs", "devtmpfs", "overlay", "iso9660", "nsfs", "autofs"),
        _string_list,
        "a list of file system types like 'tmpfs'",
    ),
    "exclude_mounts": (("/snap/*", "/boot/efi"), _string_list, "a list of mount-point globs"),
}
NET_SCHEMA = {
    "exclude": (("lo", "veth*"), _string_list, "a list of interface-name globs like 'veth*'"),
}
PROCESS_SCHEMA = {
    "instance": ("", _string, "an instance name for the process (default: from name/pidfile)"),
    "name": ("", _string, "a process name as `ps -e` shows it, e.g. 'sshd'"),
    "cmdline": ("", _string, "text the command line contains, e.g. 'affair record'"),
    "pidfile": ("", _string, "the path of a pid file"),
}

GRAPHITE_SCHEMA = {
    "listen": (None, _graphite_listen, "'' (off), a port like 2003, or 'HOST:PORT'"),
    "allow": (
        _networks(["127.0.0.1/32", "::1/128"]),
        _networks,
        "a list of client networks like '10.0.0.0/8'",
    ),
    "max_connections": (256, *_POSITIVE),
    "max_line_bytes": (1024, *_POSITIVE),
    "lines_per_second": (20_000, *_POSITIVE),
    "merge_seconds": (30.0, _non_negative, "the longest a reading waits for more of its lines"),
    "rules": ((), _table_list, "a list of tables [[graphite.rules]]"),
}
GRAPHITE_RULE_SCHEMA = {
    "pattern": (None, _string, "a regular expression with named groups"),
    "host": (None, _string, "a template like '{host}'"),
    "dataset": (None, _string, "a template like '{plugin}'"),
    "instance": (None, _string, "a template like '{plugin_instance}', or ''"),
    "variable": (None, _string, "a template like '{type}_{type_instance}'"),
}

VARIABLE_SCHEMA = {
    "type": (
        "GAUGE",
        _one_of(*archive_maths.VARIABLE_TYPES),
        "one of GAUGE, COUNTER, DERIVE, ABSOLUTE",
    ),
    "unit": ("", _string, "a unit string like '%' or 'B/s'"),
    "label": ("", _string, "a human-readable label"),
    "min": (None, _optional_number, "a number or 'U'"),
    "max": (None, _optional_number, "a number or 'U'"),
}


def _hour(value):
    value = _int(0)(value)
    if value > 23:
        raise ValueError
    return value


def _resolution(value):
    return "raw" if value == "raw" else archive_maths.parse_duration(value)


EXPORT_SCHEMA = {
    "enabled": (False, _bool, "true or false"),
    "directory": ("exports", _string, "a directory path for the daily ROOT files"),
    "hour": (1, _hour, "an hour of the day, 0 to 23 (UTC)"),
    "resolution": ("raw", _resolution, "'raw' or a resolution of the ladder like '1min'"),
}

QUERY_SCHEMA = {
    "timeout": (30, *_SECONDS),
    "max_rows": (1000, _int(1), "a positive whole number of rows to print as a table"),
}

NAMED_QUERY_SCHEMA = {
    "sql": ("", _string, "an SQL SELECT statement"),
    "description": ("", _string, "a one-line description"),
}

GRAPH_MODES = ("node", "aggregate", "overlay")
WINDOW_NAMES = (
    "1h",
    "6h",
    "1d",
    "1w",
    "1m",
    "3m",
    "1y",
)  # affair.outputs.graph_paths.WINDOWS gives their seconds

GRAPH_SCHEMA = {
    "title": ("", _string, "a title string"),
    "dataset": (None, _string, "the name of a dataset declared under [datasets]"),
    "variables": ((), _string_list, "a list of variable names of the graph's dataset"),
    "unit": ("", _string, "a unit string (default: the first variable's)"),
    "label": ("", _string, "an axis label (default: the first variable's)"),
    "hosts": (("*",), _string_list, "a list of host names or glob patterns like 'gdc*'"),
    "instance": ("", _string, "an instance name, or '' for the dataset's single series"),
    "mode": ("node", _one_of(*GRAPH_MODES), f"one of {', '.join(GRAPH_MODES)}"),
    "aggregate": ("sum", _one_of("sum", "average"), "'sum' or 'average'"),
    "windows": (
        ("1h", "6h", "1d", "1w"),
        _string_list,
        f"a list drawn from {', '.join(WINDOW_NAMES)}",
    ),
    "consolidations": (
        ("AVERAGE", "MAX", "MIN"),
        _string_list,
        "a list drawn from AVERAGE, MIN, MAX",
    ),
}


def _interval(value):
    """A duration, or 0 (or "off") for a job that never runs."""
    if value == 0 or value == "off":
        return 0
    return _seconds(value)


def _globs(value):
    if isinstance(value, str):
        value = [value]
    return _string_list(value)


SITE_SCHEMA: dict[str, tuple] = {
    "out_dir": ("site", _string, "a directory path"),
    "graphs_dir": ("", _string, "a directory path, or '' for the plotter's out_dir"),
    "title": ("affair", _string, "a title string"),
    "refresh": (None, *_SECONDS),
    "groups": ({}, dict, "a table like { ldc = 'ldc*', gdc = ['gdc*', 'evb*'] }"),
    "key_variables": ((), _string_list, "a list of 'dataset.variable' names"),
}

SCHEDULE_SCHEMA = {
    "plot": (60, _interval, "a duration like '1min', or 0 for never"),
    "site": (30, _interval, "a duration like '30s', or 0 for never"),
}

STATUS_SCHEMA = {
    "stale_steps": (6, _int(0), "a whole number of steps >= 0 (0: hosts never turn grey)"),
    "rules": ((), _table_list, "a list of [[status.rules]] tables"),
}

STATUS_COLOURS = ("green", "yellow", "red", "grey")
RULE_KINDS = ("threshold", "stalled", "stale")
RULE_OPS = (">", ">=", "<", "<=")
RULE_SCHEMA = {
    "kind": ("threshold", _one_of(*RULE_KINDS), f"one of {', '.join(RULE_KINDS)}"),
    "variable": ("", _string, "a 'dataset.variable' declared under [datasets]"),
    "dataset": ("", _string, "a dataset declared under [datasets]"),
    "op": (None, _one_of(*RULE_OPS), f"one of {' '.join(RULE_OPS)}"),
    "yellow": (None, _number, "a number"),
    "red": (None, _number, "a number"),
    "steps": (None, _int(1), "a positive whole number of steps"),
    "colour": (None, _one_of(*STATUS_COLOURS[1:]), "'yellow', 'red' or 'grey'"),
    "hosts": (("*",), _globs, "a glob or a list of host names or globs like 'ldc*'"),
    "label": ("", _string, "a short description like 'disk nearly full'"),
}
# Which keys each kind takes (besides kind, hosts, label); any other is an error.
RULE_KEYS = {
    "threshold": {"variable", "op", "yellow", "red"},
    "stalled": {"variable", "steps", "colour"},
    "stale": {"dataset", "steps", "colour"},
}


def _window_list(value):
    windows = _string_list(value)
    if not windows or any(window not in WINDOW_NAMES for window in windows):
        raise ValueError
    return windows


def _refresh_table(value):
    if not isinstance(value, dict) or any(window not in WINDOW_NAMES for window in value):
        raise ValueError
    return {window: _seconds(period) for window, period in value.items()}


PLOT_SCHEMA = {
    "out_dir": ("graphs", _string, "a directory path for the PNGs"),
    "workers": (1, *_POSITIVE),
    "width": (720, _int(320), "a width in pixels, at least 320"),
    "node_windows": (
        WINDOW_NAMES,
        _window_list,
        f"a non-empty list drawn from {', '.join(WINDOW_NAMES)}",
    ),
    "refresh": (
        {},
        _refresh_table,
        "a table of window = duration, like { 1h = '1min', 1y = '1d' }",
    ),
}


@dataclass(frozen=True)
class StatusRule:
    """One ``[[status.rules]]`` entry; see config/affair.toml for the three kinds."""

    kind: str
    dataset: str
    variable: str  # '' for a 'stale' rule, which watches a whole dataset
    op: str
    yellow: float | None
    red: float | None
    steps: int
    colour: str
    hosts: tuple
    label: str

    @property
    def name(self):
        """How the rule reads on a page: its label, or e.g. 'system.cpu_user > 80 / 95'."""
        if self.label:
            return self.label
        if self.kind == "threshold":
            limits = " / ".join(f"{v:g}" for v in (self.yellow, self.red) if v is not None)
            return f"{self.dataset}.{self.variable} {self.op} {limits}"
        if self.kind == "stalled":
            return f"{self.dataset}.{self.variable} not increasing for {self.steps} steps"
        return f"{self.dataset}: no sample for {self.steps} steps"


@dataclass(frozen=True)
class StatusConfig:
    stale_steps: int = 6
    rules: tuple = ()


@dataclass(frozen=True)
class SiteConfig:
    out_dir: str = "site"
    graphs_dir: str = ""
    title: str = "affair"
    refresh: int = 30
    groups: dict = field(default_factory=dict)  # group name -> tuple of globs, in file order
    key_variables: tuple = ()  # ('dataset', 'variable') pairs


@dataclass(frozen=True)
class ScheduleConfig:
    plot: int = 60  # seconds between passes; 0: never
    site: int = 30


@dataclass(frozen=True)
class PlotConfig:
    """``[plot]``: where graphs go and how often each window is redrawn (see affair.outputs.plot)."""

    out_dir: str = "graphs"
    workers: int = 1
    width: int = 720
    node_windows: tuple = WINDOW_NAMES
    refresh: dict = field(default_factory=dict)  # window -> seconds; default: its archive's step


@dataclass(frozen=True)
class Graph:
    """One configured graph (``[graphs.<name>]``); per-node default graphs need none."""

    name: str
    title: str
    dataset: str
    variables: tuple
    unit: str
    label: str
    hosts: tuple
    instance: str
    mode: str
    aggregate: str
    windows: tuple
    consolidations: tuple


@dataclass(frozen=True)
class Variable:
    name: str
    type: str = "GAUGE"
    unit: str = ""
    label: str = ""
    min: float | None = None
    max: float | None = None

    @property
    def title(self):
        return self.label or self.name


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str = ""
    variables: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RecorderConfig:
    listen: str
    data_dir: str
    step: int
    heartbeat: int
    accept_undeclared: bool
    max_series_per_host: int
    max_variables_per_dataset: int
    max_message_bytes: int
    max_future_skew: int
    max_sample_age: int
    self_host: str
    self_interval: int
    write_delay: float
    queue_limit: int
    journal_sync: str
    journal_days: int
    rrdcached: str = ""  # the daemon's address; "" writes the files directly
    rrdcached_flush: int = 300  # seconds between the writer's flushes through it (see writer.py)
    curve_secret_key_file: str = ""
    curve_allowed_keys: tuple = ()
    curve_bind_hosts: bool = False  # a key may write only its own host name (and its patterns)
    curve_key_hosts: dict = field(default_factory=dict)  # key name -> tuple of host globs


@dataclass(frozen=True)
class DiskSettings:
    exclude_fstypes: tuple = DISKS_SCHEMA["exclude_fstypes"][0]
    exclude_mounts: tuple = DISKS_SCHEMA["exclude_mounts"][0]


@dataclass(frozen=True)
class NetSettings:
    exclude: tuple = NET_SCHEMA["exclude"][0]


@dataclass(frozen=True)
class ProcessSelector:
    """One ``[[collector.processes]]`` entry: exactly one of name, cmdline, pidfile."""

    instance: str
    name: str = ""
    cmdline: str = ""
    pidfile: str = ""


@dataclass(frozen=True)
class CollectorConfig:
    recorder: str
    host: str
    interval: int
    probes: tuple
    buffer_seconds: int
    resend_timeout: int
    max_in_flight: int
    backoff_cap: int = 30
    curve_secret_key_file: str = ""
    curve_recorder_key_file: str = ""
    disks: DiskSettings = DiskSettings()
    net: NetSettings = NetSettings()
    processes: tuple = ()  # ProcessSelector, in file order


@dataclass(frozen=True)
class GraphiteConfig:
    listen: tuple | None = None  # (host, port), or None when off
    allow: tuple = ()
    max_connections: int = 256
    max_line_bytes: int = 1024
    lines_per_second: int = 20_000
    merge_seconds: float = 30.0
    rules: tuple = ()  # affair.ingest.graphite.GraphiteRule, tried in order


@dataclass(frozen=True)
class ExportConfig:
    """``[export]``: the scheduler's daily ROOT export of the previous day."""

    enabled: bool = False
    directory: str = "exports"
    hour: int = 1
    resolution: object = "raw"  # "raw" or seconds


@dataclass(frozen=True)
class NamedQuery:
    name: str
    sql: str
    description: str = ""


@dataclass(frozen=True)
class QueryConfig:
    """``[query]`` limits and the ``[queries.<name>]`` saved queries."""

    timeout: int = 30
    max_rows: int = 1000
    named: dict = field(default_factory=dict)  # name -> NamedQuery


@dataclass(frozen=True)
class Config:
    path: str
    recorder: RecorderConfig
    archives: tuple
    consolidations: tuple
    xff: float
    collector: CollectorConfig
    datasets: dict
    graphs: dict = field(default_factory=dict)  # name -> Graph, in file order
    site: SiteConfig = field(default_factory=SiteConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    query: QueryConfig = field(default_factory=QueryConfig)
    graphite: GraphiteConfig = GraphiteConfig()
    plot: PlotConfig = field(default_factory=PlotConfig)

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


def load_config(path=None):
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


def parse_config(raw, path="<config>"):
    """Validate an already-parsed TOML document (tests feed dicts straight in)."""
    sections = {"recorder", "archive", "collector", "datasets", "graphs"}
    sections |= {"site", "status", "schedule"}
    sections |= {"export", "query", "queries", "graphite", "plot"}
    _reject_unknown(raw, sections, path, "")
    recorder = _section(raw.get("recorder", {}), RECORDER_SCHEMA, path, "recorder")
    archive = _section(raw.get("archive", {}), ARCHIVE_SCHEMA, path, "archive")
    collector = _section(raw.get("collector", {}), COLLECTOR_SCHEMA, path, "collector")
    collector = _probe_settings(collector, path)
    graphite = _graphite(raw.get("graphite", {}), path)
    recorder = _derive(recorder, path)
    archives = _ladder(archive, recorder["step"], path)
    datasets = _datasets(raw.get("datasets", {}), path)
    from affair.ingest.selfmetrics import builtin_datasets  # noqa: PLC0415 - it imports this module

    for name, dataset in builtin_datasets().items():
        datasets.setdefault(name, dataset)
    graphs = _graphs(raw.get("graphs", {}), datasets, path)
    schedule = ScheduleConfig(
        **_section(raw.get("schedule", {}), SCHEDULE_SCHEMA, path, "schedule")
    )
    site = _site(raw.get("site", {}), datasets, schedule, path)
    status = _status(raw.get("status", {}), datasets, path)
    plot = PlotConfig(**_section(raw.get("plot", {}), PLOT_SCHEMA, path, "plot"))
    return Config(
        path=str(path),
        recorder=RecorderConfig(**recorder),
        archives=archives,
        consolidations=archive["consolidations"],
        xff=archive["xff"],
        collector=CollectorConfig(**collector),
        datasets=datasets,
        graphs=graphs,
        site=site,
        status=status,
        schedule=schedule,
        export=_export(raw.get("export", {}), archives, path),
        query=_query(raw.get("query", {}), raw.get("queries", {}), path),
        graphite=graphite,
        plot=plot,
    )


def _derive(recorder, path):
    if recorder["heartbeat"] is None:
        recorder["heartbeat"] = 2 * recorder["step"]
    if recorder["heartbeat"] < recorder["step"]:
        raise ConfigError(
            path,
            "recorder.heartbeat",
            f"at least the step ({recorder['step']}s)",
            recorder["heartbeat"],
        )
    if bool(recorder["curve_secret_key_file"]) != bool(recorder["curve_allowed_keys"]):
        missing = (
            "curve_allowed_keys" if recorder["curve_secret_key_file"] else "curve_secret_key_file"
        )
        raise ConfigError(
            path, f"recorder.{missing}", "CURVE needs both a secret key and an allow-list"
        )
    if recorder["curve_bind_hosts"] and not recorder["curve_secret_key_file"]:
        raise ConfigError(
            path,
            "recorder.curve_bind_hosts",
            "CURVE keys as well (curve_secret_key_file, curve_allowed_keys): without them "
            "no key names a sender, so binding hosts to keys would protect nothing",
            True,
        )
    recorder["curve_key_hosts"] = _key_hosts(recorder["curve_key_hosts"], path)
    try:
        check_name("host", recorder["self_host"])
    except InvalidName as error:
        raise ConfigError(path, "recorder.self_host", error.reason, recorder["self_host"]) from None
    return recorder


def _key_hosts(table, path):
    """``curve_key_hosts``: key name -> tuple of host globs, each entry checked by name.

    Whether each name is on the allow-list is checked where the key files are
    read (:func:`affair.ingest.auth.recorder_keys`).
    """
    clean = {}
    for name, patterns in table.items():
        key = f"recorder.curve_key_hosts.{name}"
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(path, key, "a key name like 'daq-gateway' (its file's stem)", name)
        if (
            not isinstance(patterns, list)
            or not patterns
            or not all(isinstance(p, str) and p for p in patterns)
        ):
            raise ConfigError(
                path, key, 'a non-empty list of host patterns like ["ldc*", "gdc*"]', patterns
            )
        clean[name] = tuple(patterns)
    return clean


def _probe_settings(collector, path):
    """Validate [collector.disks], [collector.net] and [[collector.processes]]."""
    collector["disks"] = DiskSettings(
        **_section(collector["disks"], DISKS_SCHEMA, path, "collector.disks")
    )
    collector["net"] = NetSettings(**_section(collector["net"], NET_SCHEMA, path, "collector.net"))
    selectors = []
    for index, table in enumerate(collector["processes"]):
        key = f"collector.processes[{index}]"
        values = _section(table, PROCESS_SCHEMA, path, key)
        given = [name for name in ("name", "cmdline", "pidfile") if values[name]]
        if len(given) != 1:
            raise ConfigError(path, key, "exactly one of name, cmdline, pidfile", table)
        if not values["instance"]:
            text = values[given[0]]
            if given[0] == "pidfile":
                text = Path(text).name.removesuffix(".pid")
            values["instance"] = safe_name("instance", text) or ""
        _check_name_at(path, f"{key}.instance", "instance", values["instance"])
        selectors.append(ProcessSelector(**values))
    instances = [selector.instance for selector in selectors]
    for instance in instances:
        if instances.count(instance) > 1:
            raise ConfigError(path, "collector.processes", "distinct instance names", instance)
    collector["processes"] = tuple(selectors)
    return collector


def _graphite(raw, path):
    """Validate [graphite]; rules are compiled here, so a bad regex stops the load."""
    from affair.ingest import graphite as graphite_protocol  # noqa: PLC0415

    values = _section(raw, GRAPHITE_SCHEMA, path, "graphite")
    rules = []
    for index, table in enumerate(values["rules"]):
        key = f"graphite.rules[{index}]"
        rule = _section(table, GRAPHITE_RULE_SCHEMA, path, key)
        if rule["pattern"] is None:
            raise ConfigError(path, f"{key}.pattern", "a regular expression with named groups")
        try:
            rules.append(graphite_protocol.compile_rule(**rule))
        except ValueError as error:
            raise ConfigError(path, key, str(error), rule["pattern"]) from None
    values["rules"] = tuple(rules) or graphite_protocol.default_rules()
    return GraphiteConfig(**values)


def _ladder(archive, step, path):
    for cf in archive["consolidations"]:
        if cf not in archive_maths.CONSOLIDATIONS:
            raise ConfigError(
                path,
                "archive.consolidations",
                f"names from {list(archive_maths.CONSOLIDATIONS)}",
                cf,
            )
    if not 0 <= archive["xff"] < 1:
        raise ConfigError(
            path, "archive.xff", "a fraction from 0 up to (not including) 1", archive["xff"]
        )
    try:
        archives = tuple(archive_maths.parse_archive(spec) for spec in archive["ladder"])
        archive_maths.validate_ladder(archives, step)
    except ValueError as error:
        raise ConfigError(path, "archive.ladder", f"a valid ladder ({error})") from None
    return archives


def _datasets(raw, path):
    if not isinstance(raw, dict):
        raise ConfigError(path, "datasets", "a table of datasets", raw)
    datasets = {}
    for name, table in raw.items():
        key = f"datasets.{name}"
        _check_name_at(path, key, "dataset", name)
        if not isinstance(table, dict):
            raise ConfigError(path, key, "a table with 'variables'", table)
        _reject_unknown(table, {"description", "variables"}, path, key)
        variables_raw = table.get("variables", {})
        if not isinstance(variables_raw, dict):
            raise ConfigError(path, f"{key}.variables", "a table of variables", variables_raw)
        variables = {}
        for var_name, var_table in variables_raw.items():
            var_key = f"{key}.variables.{var_name}"
            _check_name_at(path, var_key, "variable", var_name)
            if not isinstance(var_table, dict):
                raise ConfigError(
                    path, var_key, "a table like { type = 'GAUGE', unit = '%' }", var_table
                )
            values = _section(var_table, VARIABLE_SCHEMA, path, var_key)
            if (
                values["min"] is not None
                and values["max"] is not None
                and values["min"] >= values["max"]
            ):
                raise ConfigError(
                    path, f"{var_key}.max", f"more than min ({values['min']})", values["max"]
                )
            variables[var_name] = Variable(name=var_name, **values)
        description = table.get("description", "")
        if not isinstance(description, str):
            raise ConfigError(path, f"{key}.description", "a string", description)
        datasets[name] = Dataset(name=name, description=description, variables=variables)
    return datasets


def _graphs(raw, datasets, path):
    """Graph definitions; every dataset and variable they name must be declared."""
    if not isinstance(raw, dict):
        raise ConfigError(path, "graphs", "a table of graphs", raw)
    graphs = {}
    for name, table in raw.items():
        key = f"graphs.{name}"
        _check_name_at(path, key, "dataset", name)  # same safe charset: it becomes a file name
        values = _section(table, GRAPH_SCHEMA, path, key)
        dataset = datasets.get(values["dataset"])
        if dataset is None:
            raise ConfigError(
                path,
                f"{key}.dataset",
                f"a dataset declared under [datasets] ({', '.join(datasets)})",
                values["dataset"],
            )
        if not values["variables"]:
            values["variables"] = tuple(dataset.variables)
        for variable in values["variables"]:
            if variable not in dataset.variables:
                raise ConfigError(
                    path, f"{key}.variables", f"variables of dataset {dataset.name!r}", variable
                )
        if values["mode"] == "overlay" and len(values["variables"]) != 1:
            raise ConfigError(
                path,
                f"{key}.variables",
                "exactly one variable for an overlay (one line per host)",
                list(values["variables"]),
            )
        for window in values["windows"]:
            if window not in WINDOW_NAMES:
                raise ConfigError(
                    path, f"{key}.windows", f"windows from {', '.join(WINDOW_NAMES)}", window
                )
        for cf in values["consolidations"]:
            if cf not in ("AVERAGE", "MIN", "MAX"):
                raise ConfigError(path, f"{key}.consolidations", "AVERAGE, MIN or MAX", cf)
        if values["instance"]:
            _check_name_at(path, f"{key}.instance", "instance", values["instance"])
        first = dataset.variables[values["variables"][0]]
        values["unit"] = values["unit"] or first.unit
        values["label"] = values["label"] or first.title
        values["title"] = values["title"] or name.replace("_", " ")
        graphs[name] = Graph(name=name, **values)
    return graphs


def _site(raw, datasets, schedule, path):
    values = _section(raw, SITE_SCHEMA, path, "site")
    if values["refresh"] is None:  # pages reload as often as they are rebuilt
        values["refresh"] = schedule.site or 60
    groups = {}
    for name, patterns in values["groups"].items():
        key = f"site.groups.{name}"
        _check_name_at(path, key, "dataset", name)  # same safe charset: it becomes an anchor
        try:
            groups[name] = _globs(patterns)
        except (ValueError, TypeError):
            raise ConfigError(
                path, key, "a glob or a list of globs like 'ldc*'", patterns
            ) from None
    values["groups"] = groups
    values["key_variables"] = tuple(
        _variable_ref(ref, datasets, path, "site.key_variables") for ref in values["key_variables"]
    )
    return SiteConfig(**values)


def _status(raw, datasets, path):
    values = _section(raw, STATUS_SCHEMA, path, "status")
    rules = []
    for index, table in enumerate(values["rules"]):
        key = f"status.rules[{index}]"
        rule = _section(table, RULE_SCHEMA, path, key)
        allowed = RULE_KEYS[rule["kind"]] | {"kind", "hosts", "label"}
        for given in table:
            if given not in allowed:
                raise ConfigError(
                    path,
                    f"{key}.{given}",
                    f"no {given!r} in a {rule['kind']!r} rule (it takes: {', '.join(sorted(allowed))})",
                )
        rules.append(_rule(rule, datasets, path, key))
    return StatusConfig(stale_steps=values["stale_steps"], rules=tuple(rules))


def _rule(rule, datasets, path, key):
    kind = rule["kind"]
    if kind == "stale":
        if rule["dataset"] not in datasets:
            raise ConfigError(
                path, f"{key}.dataset", "a dataset declared under [datasets]", rule["dataset"]
            )
        dataset, variable = rule["dataset"], ""
    else:
        dataset, variable = _variable_ref(rule["variable"], datasets, path, f"{key}.variable")
    if kind == "threshold":
        yellow, red, op = rule["yellow"], rule["red"], rule["op"] or ">"
        if yellow is None and red is None:
            raise ConfigError(path, f"{key}.red", "a 'yellow' or 'red' threshold (or both)")
        if yellow is not None and red is not None:
            upward = op in (">", ">=")
            if (red <= yellow) if upward else (red >= yellow):
                side = "above" if upward else "below"
                raise ConfigError(
                    path, f"{key}.red", f"a threshold {side} yellow ({yellow:g}) for '{op}'", red
                )
    else:
        yellow = red = op = None
    return StatusRule(
        kind=kind,
        dataset=dataset,
        variable=variable,
        op=op or "",
        yellow=yellow,
        red=red,
        steps=rule["steps"] or 6,
        colour=rule["colour"] or ("grey" if kind == "stale" else "red"),
        hosts=rule["hosts"],
        label=rule["label"],
    )


def _variable_ref(ref, datasets, path, key):
    """'dataset.variable' -> ('dataset', 'variable'), both declared, or a ConfigError."""
    dataset_name, _, variable = str(ref).partition(".")
    dataset = datasets.get(dataset_name)
    if dataset is None:
        expected = (
            f"'dataset.variable' with a dataset declared under [datasets] ({', '.join(datasets)})"
        )
        raise ConfigError(path, key, expected, ref)
    if variable not in dataset.variables:
        expected = f"a variable of dataset {dataset_name!r} ({', '.join(dataset.variables)})"
        raise ConfigError(path, key, expected, ref)
    return dataset_name, variable


def _export(raw, archives, path):
    values = _section(raw, EXPORT_SCHEMA, path, "export")
    steps = [archive.step for archive in archives]
    if values["resolution"] != "raw" and values["resolution"] not in steps:
        raise ConfigError(
            path,
            "export.resolution",
            f"'raw' or a step of the archive ladder ({', '.join(f'{s}s' for s in steps)})",
            raw.get("resolution"),
        )
    return ExportConfig(**values)


def _query(query_raw, queries_raw, path):
    limits = _section(query_raw, QUERY_SCHEMA, path, "query")
    if not isinstance(queries_raw, dict):
        raise ConfigError(path, "queries", "a table of named queries", queries_raw)
    named = {}
    for name, table in queries_raw.items():
        key = f"queries.{name}"
        _check_name_at(path, key, "dataset", name)  # same safe charset: typed on command lines
        values = _section(table, NAMED_QUERY_SCHEMA, path, key)
        if not values["sql"].strip():
            raise ConfigError(path, f"{key}.sql", "an SQL SELECT statement", values["sql"])
        named[name] = NamedQuery(name=name, **values)
    return QueryConfig(**limits, named=named)


def _check_name_at(path, key, kind, name):
    try:
        check_name(kind, name)
    except InvalidName as error:
        raise ConfigError(path, key, f"a valid {kind} name ({error.reason})", name) from None


def _section(table, schema, path, prefix):
    if not isinstance(table, dict):
        raise ConfigError(path, prefix, "a table", table)
    _reject_unknown(table, schema, path, prefix)
    values = {}
    for key, (default, convert, expected) in schema.items():
        if key not in table:
            values[key] = default
            continue
        try:
            values[key] = convert(table[key])
        except (ValueError, TypeError):
            raise ConfigError(path, f"{prefix}.{key}", expected, table[key]) from None
    return values


def _reject_unknown(table, allowed, path, prefix):
    for key in table:
        if key not in allowed:
            dotted = f"{prefix}.{key}" if prefix else key
            raise ConfigError(
                path, dotted, f"a known key (one of: {', '.join(sorted(allowed))})", key
            )
