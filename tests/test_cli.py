"""Every command answers --help (the demo's end-to-end run is in test_demo_site.py)."""

import subprocess

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
