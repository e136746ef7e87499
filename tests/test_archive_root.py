"""Archive files, supplements included, open in ROOT itself and chain (skipped without ROOT).

As in tests/test_root.py, ROOT (the ``cern-root`` extra, ``AFFAIR_ROOT=1
scripts/test``) runs in a child process.
"""

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

from affair.config import parse_config
from affair.ingest.validate import Sample
from affair.outputs.archive import run_archive
from affair.storage.journal import Journal

pytestmark = [
    pytest.mark.integration,  # ROOT itself, in a child process
    pytest.mark.skipif(
        importlib.util.find_spec("ROOT") is None,
        reason="ROOT is not installed (AFFAIR_ROOT=1 scripts/bootstrap --test installs it)",
    ),
]

DAY = 1_700_006_400 - 86_400  # 2023-11-14 00:00 UTC

CHAIN_WITH_ROOT = textwrap.dedent(
    """
    import json, sys
    import ROOT

    chain = ROOT.TChain("system")
    for path in sys.argv[1:]:
        chain.Add(path)
    drawn = chain.Draw("cpu_user:time", "", "goff")
    files = [ROOT.TFile.Open(path) for path in sys.argv[1:]]
    result = {
        "zombies": [f.IsZombie() for f in files],
        "entries": chain.GetEntries(),
        "pairs": sorted(zip([chain.GetV2()[i] for i in range(drawn)],
                            [chain.GetV1()[i] for i in range(drawn)])),
    }
    print("RESULT " + json.dumps(result))
    """
)


def test_a_day_and_its_supplement_chain_in_root(tmp_path):
    config = parse_config(
        {
            "recorder": {"data_dir": str(tmp_path / "data")},
            "datasets": {"system": {"variables": {"cpu_user": {}}}},
            "export": {"directory": str(tmp_path / "archive")},
        }
    )
    clock = [DAY + 3600.0]
    journal = Journal(tmp_path / "data" / "_journal", clock=lambda: clock[0])
    journal.append(
        [Sample(0, DAY + 60.0 * i, "gdc01", "system", "", {"cpu_user": i}) for i in range(5)]
    )
    clock[0] = DAY + 86_400 + 60
    run_archive(config, now=clock[0] + 3600)
    clock[0] = DAY + 2 * 86_400 + 60  # late: a supplement
    journal.append([Sample(0, DAY + 7200.0, "ldc01", "system", "", {"cpu_user": 99.0})])
    journal.close()
    summary = run_archive(config, now=clock[0] + 3600)
    assert [f.part for f in summary.written] == [1]
    paths = sorted(str(p) for p in (tmp_path / "archive").glob("2023/affair-*.root"))
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", CHAIN_WITH_ROOT, *paths],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    found = json.loads(line[len("RESULT ") :])
    assert found["zombies"] == [False, False]
    assert found["entries"] == 6
    assert found["pairs"] == [[DAY + 60.0 * i, float(i)] for i in range(5)] + [[DAY + 7200.0, 99.0]]
