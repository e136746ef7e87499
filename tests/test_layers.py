"""Imports run one way along the data path (README, "Architecture").

    common (errors, names, times, units, vocab, hosts, atomic, ratelog, daemon)
      <- config <- collectors (the node side)
                <- storage <- ingest (which also reads the node side's wire format)
                           <- outputs
    demo and cli sit on top and may use everything.

Checked on the source, late (function-level) imports included, so a circle
cannot be dodged by importing inside a function.
"""

import ast

from tests.conftest import REPO

COMMON = {"errors", "names", "times", "units", "vocab", "hosts", "atomic", "ratelog", "daemon"}
ALLOWED = {
    "common": {"common"},
    "config": {"common", "config"},
    "collectors": {"common", "config", "collectors"},
    "storage": {"common", "config", "storage"},
    "ingest": {"common", "config", "storage", "collectors", "ingest"},
    "outputs": {"common", "config", "storage", "outputs"},
}
# Known breaches, each to be removed by the change that mends it.
PENDING = {
    ("affair.times", "storage"),
    ("affair.config", "ingest"),
    ("affair.config", "storage"),
}


def room_of_module(module):
    parts = module.split(".")
    if parts[0] != "affair" or len(parts) < 2:
        return None
    if parts[1] in COMMON:
        return "common"
    return parts[1]


def modules():
    for path in sorted((REPO / "affair").rglob("*.py")):
        relative = path.relative_to(REPO).with_suffix("")
        yield ".".join(relative.parts).removesuffix(".__init__"), path
    for path in sorted((REPO / "collectors").rglob("*.py")):
        relative = path.relative_to(REPO / "collectors").with_suffix("")
        name = ".".join(("affair", "collectors", *relative.parts))
        yield name.removesuffix(".__init__"), path


def imported(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            for alias in node.names:  # `from affair import units`
                yield f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_imports_run_one_way():
    breaches = set()
    for module, path in modules():
        room = room_of_module(module)
        if room not in ALLOWED:
            continue  # demo, cli, the package itself
        for target in imported(path):
            target_room = room_of_module(target)
            if target_room is None or target == "affair.config.shipped":
                continue
            outside = target_room in ALLOWED and target_room not in ALLOWED[room]
            if outside or target_room in ("demo", "cli"):
                breaches.add((module, target_room))
    assert breaches - PENDING == set()
    assert PENDING - breaches == set(), "a pending breach is mended: remove it from PENDING"
