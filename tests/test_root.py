"""Exports open in ROOT itself, not only in uproot (skipped where ROOT is not installed).

ROOT comes from PyPI's ``root`` package (the ``cern-root`` extra, ~600 MB):
``AFFAIR_ROOT=1 scripts/test`` installs it. It runs in a child process so
that ROOT's interpreter and signal handlers stay out of pytest's.
"""

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

from affair.config import parse_config
from affair.ingest.validate import Sample
from affair.outputs.export import export_root
from affair.storage.journal import Journal

pytestmark = [
    pytest.mark.integration,  # ROOT itself, in a child process
    pytest.mark.skipif(
        importlib.util.find_spec("ROOT") is None,
        reason="ROOT is not installed (AFFAIR_ROOT=1 scripts/bootstrap --test installs it)",
    ),
]

DAY = 1_700_006_400

READ_WITH_ROOT = textwrap.dedent(
    """
    import json, sys
    import ROOT

    f = ROOT.TFile.Open(sys.argv[1])
    tree = f.Get("system")
    hosts = f.Get("_affair/hosts")
    names = []
    for i in range(hosts.GetEntries()):
        hosts.GetEntry(i)
        names.append(hosts.GetLeaf("name").GetValueString())
    gdc02 = names.index("gdc02")
    drawn = tree.Draw("cpu_user:time", f"host=={gdc02}", "goff")
    result = {
        "zombie": f.IsZombie(),
        "entries": tree.GetEntries(),
        "types": {b.GetName(): b.GetLeaf(b.GetName()).GetTypeName() for b in tree.GetListOfBranches()},
        "hosts": names,
        "drawn": drawn,
        "cpu_user": sorted(zip(
            [tree.GetV2()[i] for i in range(drawn)], [tree.GetV1()[i] for i in range(drawn)])),
        "above_50": tree.Draw("cpu_user", "cpu_user > 50", "goff"),
        "metadata": json.loads(f.Get("_affair/metadata").GetString().Data()),
    }
    print("RESULT " + json.dumps(result))
    """
)


def test_an_export_opens_in_root_and_draws(tmp_path):
    config = parse_config(
        {
            "recorder": {"data_dir": str(tmp_path / "data")},
            "datasets": {"system": {"variables": {"cpu_user": {"unit": "%"}}}},
        }
    )
    journal = Journal(tmp_path / "data" / "_journal", clock=lambda: DAY + 3600)
    samples = [
        Sample(0, DAY + 10 * i + 0.5, host, "system", "", {"cpu_user": 10.0 * i + k, "load1": 1.0})
        for i in range(1, 7)
        for k, host in enumerate(("gdc01", "gdc02", "ldc01"))
    ]
    journal.append(samples)
    journal.close()
    output = tmp_path / "for-root.root"
    export_root(config, output, progress=False)
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", READ_WITH_ROOT, str(output)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    found = json.loads(line[len("RESULT ") :])
    assert found["zombie"] is False
    assert found["entries"] == 18
    assert found["types"] == {
        "time": "Double_t",
        "host": "Int_t",
        "instance": "Int_t",
        "cpu_user": "Double_t",
        "load1": "Double_t",
    }
    assert found["hosts"] == ["gdc01", "gdc02", "ldc01"]
    assert found["drawn"] == 6
    assert found["cpu_user"] == [[DAY + 10 * i + 0.5, 10.0 * i + 1] for i in range(1, 7)]
    assert found["above_50"] == len([s for s in samples if s.values["cpu_user"] > 50])
    assert found["metadata"]["datasets"]["system"]["branches"]["cpu_user"]["unit"] == "%"
