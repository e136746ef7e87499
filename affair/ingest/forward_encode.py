"""Journal rows -> the bytes a forward target takes: pure functions, no sockets.

Influx line protocol (VictoriaMetrics' ``/write``, InfluxDB's ``/write``)::

    <prefix>_<dataset>,host=<host>[,instance=<instance>] <var>=<value>[,...] <ms>

One line per sample, all its variables as fields: VictoriaMetrics stores
each field as the series ``<prefix>_<dataset>_<var>`` with labels ``host``
and ``instance`` (its ``-influxMeasurementFieldSeparator`` is '_'), so the
PromQL for a shipped graph is e.g. ``affair_system_cpu_user{host="n01"}``.
Timestamps go in milliseconds (``?precision=ms``), VictoriaMetrics'
resolution: a sample's time survives exactly to the millisecond.

Graphite plaintext (carbon, VictoriaMetrics' ``-graphiteListenAddr``)::

    <prefix>.<host>.<dataset>[.<instance>].<variable> <value> <seconds>

One line per value. Dots separate Graphite's levels, so dots in a host
name (an FQDN) become '_'.

A value that is unknown (None) is left out; a sample with no known value
makes no line. Values print with ``repr``: the shortest text that reads
back as the same float.
"""

from collections.abc import Iterable

from affair.storage.journal import JournalRow

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\\": "\\\\"})


def _tag(text: str) -> str:
    # Names are checked against a strict charset before they are journaled; escaping
    # still costs little and keeps a line well-formed if that charset ever grows.
    return text.translate(_TAG_ESCAPES)


def influx_lines(rows: Iterable[JournalRow], prefix: str = "affair") -> bytes:
    """The rows as InfluxDB line protocol, timestamps in milliseconds.

    A forwarder encodes tens of thousands of rows a second, so the parts
    that repeat are made once per call: each series' measurement and tags,
    and per layout of variables a ``%`` template of its fields, filled in
    one C call when no value is unknown.
    """
    lines = []
    heads: dict[tuple[str, str, str], str] = {}
    templates: dict[tuple[str, ...], str] = {}
    for _position, ts, host, dataset, instance, values in rows:
        numbers = tuple(values.values())
        if None in numbers:
            fields = ",".join(
                f"{_tag(name)}={value!r}" for name, value in values.items() if value is not None
            )
            if not fields:
                continue
        else:
            names = tuple(values)
            template = templates.get(names)
            if template is None:
                template = templates[names] = ",".join(f"{_tag(name)}=%r" for name in names)
            fields = template % numbers
        series = (host, dataset, instance)
        head = heads.get(series)
        if head is None:
            head = _tag(f"{prefix}_{dataset}" if prefix else dataset) + f",host={_tag(host)}"
            if instance:
                head += f",instance={_tag(instance)}"
            head = heads[series] = head + " "
        lines.append(f"{head}{fields} {round(ts * 1000)}\n")
    return "".join(lines).encode()


def graphite_path(prefix: str, host: str, dataset: str, instance: str, variable: str) -> str:
    parts = [prefix] if prefix else []
    parts += [host.replace(".", "_"), dataset]
    if instance:
        parts.append(instance)
    parts.append(variable)
    return ".".join(parts)


def graphite_seconds(ts: float) -> str:
    """Seconds with at most millisecond decimals: '1700000000', '1700000000.25'."""
    text = f"{ts:.3f}".rstrip("0").rstrip(".")
    return text


def graphite_lines(rows: Iterable[JournalRow], prefix: str = "affair") -> bytes:
    """The rows as Graphite plaintext, one line per known value (paths made once per series)."""
    lines = []
    paths: dict[tuple[str, str, str, str], str] = {}
    for _position, ts, host, dataset, instance, values in rows:
        stamp = graphite_seconds(ts)
        for name, value in values.items():
            if value is None:
                continue
            key = (host, dataset, instance, name)
            path = paths.get(key)
            if path is None:
                path = paths[key] = graphite_path(prefix, host, dataset, instance, name)
            lines.append(f"{path} {value!r} {stamp}\n")
    return "".join(lines).encode()
