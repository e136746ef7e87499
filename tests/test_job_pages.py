"""The jobs pages: index, a page per job with metrics, reasons, flags and graphs of its run."""

import re

from test_job_metrics import T0, archive, config_for  # noqa: F401 - archive is a fixture

from affair.outputs.jobs.pages import FINAL_MARK
from affair.outputs.site import build_site
from affair.storage.jobs import JobStore, jobs_path
from affair.storage.sacct import JobRecord


def test_pages_of_running_and_finished_jobs(archive, tmp_path):  # noqa: F811
    config = config_for(archive)
    with JobStore(jobs_path(archive)) as store:
        store.merge(
            [
                JobRecord(
                    "100",
                    user="alice",
                    account="phys",
                    start=T0,
                    end=T0 + 590,
                    nodes=("busy01", "idle01", "ghost01"),
                    state="COMPLETED",
                    name="<b>x</b>",
                ),
                JobRecord("101_3", user="bob", start=T0 + 300, nodes=("swap01",), state="RUNNING"),
            ]
        )
    out = tmp_path / "site"
    build_site(config, archive, tmp_path / "graphs", out, clock=lambda: T0 + 600)
    index = (out / "jobs" / "index.html").read_text()
    rows = re.findall(r'<tr class="(running|finished)"><td class="h"><a href="([^"]+)">', index)
    assert rows == [("running", "101_3.html"), ("finished", "100.html")]
    assert "idle nodes" in index and "unknown nodes" in index
    page = (out / "jobs" / "100.html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in page  # a job name is never markup
    assert "node ghost01 (host ghost01) is unknown to affair" in page
    assert "idle nodes" in page and "imbalanced" in page
    assert "provisional" in page  # ended 10 s ago: samples may still arrive
    for kind in ("cpu", "memory", "network", "disk"):
        png = out / "jobs" / "100" / f"{kind}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="100/{kind}.png?v=' in page
    running = (out / "jobs" / "101_3.html").read_text()
    assert "swapping" in running and "running" in running
    assert 'href="jobs/index.html"' in (out / "index.html").read_text()
    # an hour later: final, drawn once more, then kept as it is
    build_site(config, archive, tmp_path / "graphs", out, clock=lambda: T0 + 3600)
    assert (out / "jobs" / f"100{FINAL_MARK}").exists()
    final = (out / "jobs" / "100.html").read_text()
    assert "provisional" not in final
    stamp = (out / "jobs" / "100.html").stat().st_mtime_ns
    build_site(config, archive, tmp_path / "graphs", out, clock=lambda: T0 + 3700)
    assert (out / "jobs" / "100.html").stat().st_mtime_ns == stamp
    # accounting arrives later and changes the record: drawn again, then kept again
    with JobStore(jobs_path(archive)) as store:
        store.merge([JobRecord("100", start=T0, end=T0 + 590, state="TIMEOUT", account="phys2")])
    build_site(config, archive, tmp_path / "graphs", out, clock=lambda: T0 + 3800)
    assert "TIMEOUT" in (out / "jobs" / "100.html").read_text()
    stamp = (out / "jobs" / "100.html").stat().st_mtime_ns
    build_site(config, archive, tmp_path / "graphs", out, clock=lambda: T0 + 3900)
    assert (out / "jobs" / "100.html").stat().st_mtime_ns == stamp
    # past keep_days: removed, page and graphs
    build_site(config, archive, tmp_path / "graphs", out, clock=lambda: T0 + 31 * 86400)
    assert not (out / "jobs" / "100.html").exists() and not (out / "jobs" / "100").exists()
    assert (out / "jobs" / "101_3.html").exists()  # still running


def test_export_job_writes_its_nodes_over_its_run(archive, tmp_path):  # noqa: F811
    import uproot

    from affair.cli import main

    config_file = tmp_path / "affair.toml"
    config_file.write_text(
        f'[recorder]\ndata_dir = "{archive}"\nstep = 10\n'
        '[datasets.system.variables]\ncpu_user = { type = "GAUGE" }\n'
    )
    with JobStore(jobs_path(archive)) as store:
        store.merge([JobRecord("7_1", start=T0 + 100, end=T0 + 190, nodes=("idle01", "x9"))])
    output = tmp_path / "job.root"
    code = main(["export", "--config", str(config_file), "--job", "7_1", "--output", str(output)])
    assert code == 0
    with uproot.open(output) as root:
        system = root["system"].arrays(["time", "host"], library="np")
        names = root["_affair/hosts"].arrays(["name"], library="np")["name"]
    assert sorted(system["time"]) == [T0 + 100 + 10 * i for i in range(10)]  # end included
    assert {str(names[i]) for i in set(system["host"])} == {"idle01"}
    assert (
        main(["export", "--config", str(config_file), "--job", "nope", "--output", str(output)])
        == 2
    )
