"""``affair jobs import|list|show``: what a person types and reads."""

from conftest import REPO

from affair.cli import main

FIXTURE = REPO / "tests" / "data" / "sacct" / "allocations.txt"


def test_import_list_show_and_their_refusals(tmp_path, capsys):
    config = tmp_path / "affair.toml"
    config.write_text(f'[recorder]\ndata_dir = "{tmp_path / "data"}"\n')
    common = ["--config", str(config)]
    assert main(["jobs", "list", *common]) == 2
    assert "no jobs yet: affair jobs import" in capsys.readouterr().err
    listing = tmp_path / "sacct.txt"
    listing.write_text(FIXTURE.read_text() + "12|x\n")
    assert main(["jobs", "import", str(listing), *common]) == 1  # the bad line: skipped, said
    printed = capsys.readouterr()
    assert f"{listing}: line 8: 2 fields, expected 26" in printed.err
    assert (
        printed.out
        == f"{listing}: 7 jobs read: 6 new, 0 changed, 0 unchanged; 1 malformed lines skipped\n"
    )
    assert main(["jobs", "import", str(FIXTURE), *common]) == 0
    assert "0 new, 0 changed, 6 unchanged" in capsys.readouterr().out
    assert main(["jobs", "list", *common]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "jobid",
        "user",
        "account",
        "nodes",
        "start",
        "duration",
        "state",
        "cpu",
        "memory",
        "flags",
    ]
    assert [line.split()[0] for line in lines[1:-1]] == [
        "1837160",
        "1837140_2",
        "1837137",
        "1837150",
        "1837140_1",
    ]
    assert lines[-1] == "(5 jobs)"
    assert main(["jobs", "show", "1837150", *common]) == 0
    shown = capsys.readouterr().out
    assert "state CANCELLED by uid 5003" in shown
    assert "CPU use (mean over nodes and run)    - (none of its nodes is known to affair)" in shown
    assert "g01              - (node g01 (host g01) is unknown to affair)" in shown
    assert main(["jobs", "show", "12;rm", *common]) == 2
    assert "'12;rm' is not a Slurm job id" in capsys.readouterr().err
    assert main(["jobs", "show", "999", *common]) == 2
    assert "no such job" in capsys.readouterr().err
