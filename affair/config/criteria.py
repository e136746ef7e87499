"""``[[criteria]]``: verification criteria written as read-only SQL over the raw archive.

Each criterion is a query whose rows are its violations::

    [[criteria]]
    name = "sent_received"
    colour = "red"
    description = "every message sent in the last minute was received"
    sql = "SELECT source || ' -> ' || target AS link, ... AS why FROM link_ends ..."

A row names what it is about in a column ``host``, ``link`` (``'a/b -> c/d'``),
``source`` and ``target`` (a link's two daemons), or ``daemon`` (``host/daemon``);
a ``why`` column, when there is one, says why (else the other columns do).
affair.outputs.criteria runs them; a violation colours its host or link.

A criterion is checked at load, against an empty copy of the views
affair.outputs.query builds (a view per declared dataset, ``latest_<dataset>``,
``latest``, and ``link_ends``): a query that does not parse, names a table or
column that is not there, would write, or has no naming column is a config
error naming the criterion.

``link_ends`` is the ``links`` dataset with each end's link spelled out:
``ts, host, instance, source, target, side ('out' or 'in'), received`` and
the link variables. Its definition lives here so the load-time check and
the real views cannot disagree.
"""

import sqlite3
from dataclasses import dataclass
from typing import Any

from affair.config.datasets import Dataset
from affair.config.fields import check_name_at, load_values, one_of, setting, string, table_list
from affair.errors import ConfigError
from affair.names import VIEW_FIXED_COLUMNS, parse_link_instance, view_columns
from affair.vocab import LINK_DATASET, RULE_COLOURS

SUBJECT_COLUMNS = ("host", "link", "source", "target", "daemon")
LINK_COLUMNS = (
    "messages",
    "bytes",
    "errors",
    "rate",
    "lat_count",
    "lat_mean",
    "lat_p50",
    "lat_p95",
    "lat_max",
)


def link_part(instance: str, index: int) -> str | None:
    """SQL function: part ``index`` of a link instance (daemon, side, peer host, peer daemon)."""
    parsed = parse_link_instance(instance)
    return parsed[index] if parsed else None


def link_ends_view(links_view: str = LINK_DATASET) -> str:
    """The body of the ``link_ends`` view over the ``links`` view (needs ``link_part``)."""
    here = "host || '/' || link_part(instance, 0)"
    peer = "link_part(instance, 2) || '/' || link_part(instance, 3)"
    side = "link_part(instance, 1)"
    columns = ", ".join(LINK_COLUMNS)
    return (
        f"SELECT ts, host, instance, received,"
        f" CASE {side} WHEN 'out' THEN {here} ELSE {peer} END AS source,"
        f" CASE {side} WHEN 'out' THEN {peer} ELSE {here} END AS target,"
        f" {side} AS side, {columns}"
        f' FROM "{links_view}" WHERE {side} IS NOT NULL'
    )


@dataclass(frozen=True)
class Criterion:
    name: str = setting("", string, "a name like 'sent_received'")
    colour: str = setting("red", one_of(*RULE_COLOURS), "'yellow', 'red' or 'grey'")
    description: str = setting("", string, "a one-line description")
    sql: str = setting("", string, "an SQL SELECT statement over the raw archive's views")

    @property
    def label(self) -> str:
        """How a violation reads on a host's page (affair.outputs.status's RuleResult)."""
        return self.description or self.name


def load_criteria(raw: Any, datasets: dict[str, Dataset], path) -> tuple[Criterion, ...]:
    try:
        entries = table_list(raw)
    except ValueError:
        raise ConfigError(path, "criteria", "a list of [[criteria]] tables", raw) from None
    criteria: list[Criterion] = []
    schema = None
    for index, entry in enumerate(entries):
        key = f"criteria[{index}]"
        values = load_values(Criterion, entry, path, key)
        check_name_at(path, f"{key}.name", "dataset", values["name"])  # a safe, short name
        key = f"criteria.{values['name']}"
        if any(c.name == values["name"] for c in criteria):
            raise ConfigError(path, f"{key}.name", "a name no other criterion has", values["name"])
        if not values["sql"].strip():
            raise ConfigError(path, f"{key}.sql", "an SQL SELECT statement", values["sql"])
        if schema is None:
            schema = empty_views(datasets)
        problem = check_query(schema, values["sql"])
        if problem:
            raise ConfigError(path, f"{key}.sql", problem, _short(values["sql"]))
        criteria.append(Criterion(**values))
    if schema is not None:
        schema.close()
    return tuple(criteria)


def _short(sql):
    text = " ".join(sql.split())
    return text if len(text) <= 80 else text[:77] + "..."


def _quote(name):
    return '"' + name.replace('"', '""') + '"'


def empty_views(datasets: dict[str, Dataset]) -> sqlite3.Connection:
    """An in-memory database with the archive's views as empty tables, for checking queries."""
    connection = sqlite3.connect(":memory:")
    connection.create_function("link_part", 2, link_part, deterministic=True)
    for name, dataset in datasets.items():
        columns = ", ".join(
            _quote(c) for c in [*VIEW_FIXED_COLUMNS, *view_columns(dataset.variables).values()]
        )
        connection.execute(f"CREATE TABLE {_quote(name)} ({columns})")
        latest = ", ".join(
            _quote(c)
            for c in [
                "host",
                "instance",
                "ts",
                "received",
                *view_columns(dataset.variables).values(),
            ]
        )
        connection.execute(f"CREATE TABLE {_quote('latest_' + name)} ({latest})")
    connection.execute("CREATE TABLE latest (host, dataset, instance, ts, variable, value)")
    if LINK_DATASET in datasets:
        connection.execute(f"CREATE VIEW link_ends AS {link_ends_view()}")
    connection.execute("PRAGMA query_only = ON")
    return connection


_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
_READ_ACTIONS.add(getattr(sqlite3, "SQLITE_RECURSIVE", 33))


def check_query(connection: sqlite3.Connection, sql: str) -> str | None:
    """What is wrong with a criterion's query (as the expectation of a ConfigError), or None."""
    refused = []

    def authorize(action, first, _second, _database, _trigger):
        if action in _READ_ACTIONS:
            return sqlite3.SQLITE_OK
        refused.append(action)
        return sqlite3.SQLITE_DENY

    connection.set_authorizer(authorize)
    try:
        cursor = connection.execute(sql)
        columns = [item[0].lower() for item in cursor.description or ()]
        cursor.fetchall()
    except (sqlite3.Error, ValueError) as error:
        if refused:
            return "a query that only reads (this one would write or change something)"
        return f"a valid read-only SELECT over the archive's views ({error})"
    finally:
        connection.set_authorizer(None)
    if not any(column in SUBJECT_COLUMNS for column in columns):
        return (
            "a query whose rows name what they are about: a column host, link, "
            "source and target, or daemon"
        )
    if ("source" in columns) != ("target" in columns) and not {"host", "link", "daemon"} & set(
        columns
    ):
        return "both a source and a target column (a link's two daemons)"
    return None
