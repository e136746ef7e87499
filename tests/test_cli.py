"""Every command answers --help (the demo's end-to-end run is in test_demo_site.py)."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

COMMANDS = [
    ["affair", "--help"],
    ["affair", "record", "--help"],
    ["affair", "check-config", "--help"],
    ["affair", "demo", "--help"],
    ["affair-collector", "--help"],
]


@pytest.mark.integration
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_help(command):
    executable = REPO / ".venv" / "bin" / command[0]
    result = subprocess.run(
        [str(executable), *command[1:]], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "usage:" in result.stdout
    assert len(result.stdout.splitlines()) > 3


@pytest.mark.integration
@pytest.mark.parametrize("command", [["--help"], ["plot", "--help"]], ids=" ".join)
def test_help_does_not_import_matplotlib(command):
    # the plot runner is imported inside `affair plot` only, for start-up cost
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "affair", *command],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: affair")
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "affair.cli" in imported  # the import log is there to be read
    assert [name for name in imported if name.split(".")[0] == "matplotlib"] == []
