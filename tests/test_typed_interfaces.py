"""The interfaces between modules and processes stay typed.

mypy (scripts/typecheck) is not strict: it does not mind a function without
annotations, and does not check one. So a change that drops the annotations
of an interface would pass it silently; this test does not let it.
"""

import inspect

import pytest
from affair.collectors import wire
from affair.collectors.client import Publisher, Series
from affair.collectors.sender import Sender, SenderStats

from affair.ingest import validate, writer_process
from affair.ingest.recorder import Recorder
from affair.storage import journal, journal_reader
from affair.storage.rrd_store import RrdStore, SeriesFile
from affair.storage.rrdcached import RrdcachedClient

FUNCTIONS = [
    validate.validate_sample,
    writer_process.encode_batch,
    writer_process.decode_batch,
    writer_process.writer_main,
    journal.day_name,
    journal.day_start,
    journal.pack_values,
    journal.unpack_values,
    journal.open_day,
    journal.open_day_readonly,
    journal.check_format,
    journal.read_after,
    journal_reader.day_spans,
    wire.encode_data,
    wire.encode_ack,
    wire.decode_report,
    wire.decode_ack,
    wire.read_monitor_event,
]
# Every public method and property of these, and __init__, __enter__ and __exit__.
CLASSES = [
    validate.Sample,
    RrdStore,
    SeriesFile,
    RrdcachedClient,
    journal.Journal,
    journal.Watermark,
    journal.DayCatalog,
    journal_reader.DayReader,
    journal_reader.DaySpan,
    Sender,
    SenderStats,
    Publisher,
    Series,
    Recorder,
]
DUNDERS = {"__init__", "__enter__", "__exit__"}


def unannotated(function):
    """Names of the parameters without an annotation, and "return" if it has none."""
    signature = inspect.signature(function)
    missing = [
        name
        for index, (name, parameter) in enumerate(signature.parameters.items())
        if parameter.annotation is inspect.Parameter.empty
        and not (index == 0 and name in ("self", "cls"))
    ]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def public_members(cls):
    """``(qualified name, function)`` of what ``cls`` itself defines for its users."""
    for name, member in vars(cls).items():
        if name.startswith("_") and name not in DUNDERS:
            continue
        if isinstance(member, property):
            member = member.fget
        elif isinstance(member, staticmethod | classmethod):
            member = member.__func__
        if inspect.isfunction(member):
            yield f"{cls.__module__}.{cls.__qualname__}.{name}", member


def interfaces():
    for function in FUNCTIONS:
        yield f"{function.__module__}.{function.__qualname__}", function
    for cls in CLASSES:
        yield from public_members(cls)


def test_the_check_finds_what_is_missing():
    def plain(self, a, b: int, *rest, **options: str):
        pass

    def typed(self, a: int) -> None:
        pass

    assert unannotated(plain) == ["a", "rest", "return"]
    assert unannotated(typed) == []
    names = {name.rsplit(".", 1)[1] for name, _ in public_members(SeriesFile)}
    assert "known_names" in names  # properties are looked at too
    names = {name.rsplit(".", 1)[1] for name, _ in public_members(Publisher)}
    assert {"__init__", "set", "series", "close", "__exit__"} <= names
    assert "_run" not in names


@pytest.mark.parametrize("function", [f for _, f in interfaces()], ids=[n for n, _ in interfaces()])
def test_every_parameter_and_return_is_annotated(function):
    assert unannotated(function) == []
