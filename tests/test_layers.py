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
    assert breaches == set()


def test_vocab_is_pure_data():
    tree = ast.parse((REPO / "affair" / "vocab.py").read_text())
    assert [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)] == []


def test_config_imports_at_module_level_only():
    """Config is loaded by every process: no import waits inside a function to dodge a circle."""
    late = []
    for path in sorted((REPO / "affair" / "config").glob("*.py")):
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        late += [
            f"{path.name}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top_level
        ]
    assert late == []
