"""[[criteria]]: SQL checked at load, run over the raw archive, violations colouring hosts and links."""

import json
import re
import time

import pytest

from affair import cli
from affair.config import DEFAULT_CONFIG, load_config, parse_config
from affair.errors import ConfigError
from affair.ingest.validate import Sample
from affair.names import link_instance
from affair.outputs.criteria import (
    CriterionResult,
    Violation,
    apply_to_links,
    report,
    run_criteria,
    violations_of,
)
from affair.outputs.site import build_site
from affair.outputs.status import HostSnapshot, status_report
from affair.outputs.topology import gather
from affair.storage.journal import Journal
from affair.storage.rrd_store import RrdStore
from tests.linkdata import end_snapshot, write_link
from tests.sitedata import SITE_CONFIG, drive, site_config


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("SELEC host FROM system", "syntax error"),
        ("SELECT host FROM nosuch", "no such table: nosuch"),
        ("DELETE FROM system", "a query that only reads"),
        ("SELECT count(*) AS n FROM system", "a column host, link, source and target, or daemon"),
        ("SELECT source FROM link_ends", "both a source and a target column"),
        ("SELECT host FROM system; SELECT 1", "valid read-only SELECT"),
    ],
)
def test_a_criterion_that_cannot_run_is_a_config_error_naming_it(sql, expected):
    raw = {
        "criteria": [{"name": "ok", "sql": "SELECT host FROM system"}, {"name": "bad", "sql": sql}]
    }
    raw["datasets"] = {"system": {"variables": {"cpu_user": {}}}}
    with pytest.raises(ConfigError, match=r"criteria\.bad\.sql: expected .*" + re.escape(expected)):
        parse_config(raw)


def test_criterion_keys_are_checked():
    with pytest.raises(ConfigError, match=r"criteria\[0\]\.colour"):
        parse_config({"criteria": [{"name": "x", "colour": "pink", "sql": "SELECT 1 AS host"}]})
    with pytest.raises(ConfigError, match=r"criteria\.x\.name"):
        parse_config({"criteria": [{"name": "x", "sql": "SELECT 1 AS host"}] * 2})
    with pytest.raises(ConfigError, match=r"criteria\[0\]\.name"):
        parse_config({"criteria": [{"name": "a b", "sql": "SELECT 1 AS host"}]})


def journal_links(journal, now, source, target, sent, received, steps=6):
    """Both ends of a link in the journal: ``sent`` and ``received`` messages a 10 s step."""
    source_host, source_daemon = source.split("/")
    target_host, target_daemon = target.split("/")
    samples = []
    for index in range(steps):
        ts = now - 15 - 8 * index  # all six within the shipped query's minute for 15 s
        out = link_instance(source_daemon, "out", target_host, target_daemon)
        inbound = link_instance(target_daemon, "in", source_host, source_daemon)
        samples.append(
            Sample(0, ts, source_host, "links", out, {"messages": sent, "rate": sent / 10})
        )
        samples.append(
            Sample(
                0, ts, target_host, "links", inbound, {"messages": received, "rate": received / 10}
            )
        )
    journal.append(samples)


def journal_builder(journal, now, host, stuck):
    journal.append(
        [
            Sample(
                0,
                now - 5 - 10 * i,
                host,
                "daq",
                "eb01",
                {"events": 500.0 if stuck else 500.0 + 100 * (9 - i), "running": 1.0},
            )
            for i in range(5)
        ]
    )


@pytest.fixture
def archive(tmp_path):
    now = time.time()
    journal = Journal(tmp_path / "data" / "_journal")
    journal_links(journal, now, "ldc01/ldc", "gdc01/gdc", sent=1000, received=800)  # lossy
    journal_links(journal, now, "ldc02/ldc", "gdc01/gdc", sent=1000, received=1000)
    journal_builder(journal, now, "gdc01", stuck=True)
    journal_builder(journal, now, "gdc02", stuck=False)
    journal.close()
    return tmp_path / "data"


def test_the_shipped_criteria_find_exactly_the_lossy_link_and_the_stuck_builder(archive):
    config = load_config(DEFAULT_CONFIG)
    results = {r.criterion.name: r for r in run_criteria(config, archive)}
    assert set(results) == {"sent_received", "builders_counting"}
    lossy = results["sent_received"]
    assert lossy.error is None
    assert [(v.kind, v.subject) for v in lossy.violations] == [("link", ("ldc01/ldc", "gdc01/gdc"))]
    assert lossy.violations[0].why.startswith("sent 6000, received 4800")
    stuck = results["builders_counting"]
    assert [(v.kind, v.subject) for v in stuck.violations] == [("host", "gdc01")]
    assert "events stuck at 500" in stuck.violations[0].why
    lines, code = report(list(results.values()))
    assert code == 1
    assert lines[0] == "RED     sent_received: 1 violation"
    assert any("ldc01/ldc -> gdc01/gdc" in line for line in lines)
    assert lines[-1] == "2 criteria: 0 pass, 2 fail"


def test_a_query_failing_at_run_time_is_reported_and_the_others_still_run(archive, caplog):
    config = parse_config(
        {
            "criteria": [
                {
                    "name": "broken",
                    "colour": "yellow",
                    "sql": "SELECT host, json(instance) AS why FROM daq",
                },
                {"name": "builders", "sql": "SELECT DISTINCT host FROM daq WHERE host = 'gdc02'"},
            ],
            "datasets": {"daq": {"variables": {"events": {}, "running": {}}}},
        }
    )
    results = run_criteria(config, archive)
    assert results[0].error == "SQL error: malformed JSON" and results[0].violations == []
    assert (
        results[0].colour == "yellow"
        and results[0].summary == "could not run: SQL error: malformed JSON"
    )
    assert [v.subject for v in results[1].violations] == ["gdc02"]
    assert "criterion broken failed: SQL error: malformed JSON" in caplog.text
    lines, code = report(results)
    assert code == 1 and lines[0] == "YELLOW  broken: could not run: SQL error: malformed JSON"


def test_violations_colour_exactly_their_host_and_link_on_the_pages_and_in_status(tmp_path):
    criteria = """
[[criteria]]
name = "lossy"
sql = "SELECT source, target, 'lost some' AS why FROM link_ends WHERE side = 'in' AND messages < 1000"

[[criteria]]
name = "busy"
colour = "yellow"
description = "gdc02 must not be busy"
sql = "SELECT DISTINCT host, 'busy' AS why FROM system WHERE host = 'gdc02'"
"""
    config = site_config(SITE_CONFIG + criteria)
    data = tmp_path / "data"
    store = RrdStore(config, data)
    now = time.time()
    for host in ("ldc01", "gdc01", "gdc02"):
        drive(store, host, now, cpu=10.0)
    write_link(store, "ldc01/ldc", "gdc01/gdc", now, rate=100)
    write_link(store, "ldc01/ldc", "gdc02/gdc", now, rate=100)
    journal = Journal(data / "_journal")
    journal_links(journal, now, "ldc01/ldc", "gdc01/gdc", sent=1000, received=1000)
    journal_links(journal, now, "ldc01/ldc", "gdc02/gdc", sent=1000, received=990)
    journal.append([Sample(0, now - 5, "gdc02", "system", "", {"cpu_user": 10.0})])
    journal.close()
    summary = build_site(config, data, tmp_path / "graphs", tmp_path / "site", lambda: now + 1)
    # what the scheduler logs of each pass
    assert "; 2 links, 1 red; criteria failing: lossy, busy" in summary.describe()
    status = json.loads((tmp_path / "site" / "status.json").read_text())
    colours = {host: info["colour"] for host, info in status["hosts"].items()}
    assert colours == {"gdc01": "green", "gdc02": "yellow", "ldc01": "green"}
    assert status["hosts"]["gdc02"]["why"] == "gdc02 must not be busy: busy"
    problems = [
        (p["source"], p["target"], p["colour"], p["why"]) for p in status["links"]["problems"]
    ]
    assert problems == [("ldc01/ldc", "gdc02/gdc", "red", "lossy: lost some")]
    assert status["criteria"]["lossy"]["violations"] == [
        {"kind": "link", "subject": "ldc01/ldc -> gdc02/gdc", "why": "lost some"}
    ]
    assert "gdc02 must not be busy" in (tmp_path / "site" / "host" / "gdc02.html").read_text()
    lines, code = status_report(config, data, now=now + 1)
    assert code == 1
    assert "ldc01/ldc → gdc02/gdc  red     lossy: lost some" in lines
    assert [line.split()[:3] for line in lines if line.startswith("gdc02")] == [
        ["gdc02", "gdc", "yellow"]
    ]


def test_affair_check_prints_the_failures_and_exits_1_and_check_config_names_a_bad_criterion(
    archive, tmp_path, capsys
):
    assert cli.main(["check", "--data-dir", str(archive)]) == 1
    out = capsys.readouterr().out
    assert "RED     sent_received: 1 violation" in out
    assert "ldc01/ldc -> gdc01/gdc" in out and "ldc02/ldc" not in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[[criteria]]\nname = "writer"\nsql = "DELETE FROM links"\n')
    assert cli.main(["check-config", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "criteria.writer.sql: expected a query that only reads" in err


def test_a_row_may_name_a_link_in_one_column_or_a_daemon_whose_links_it_colours():
    assert violations_of(["link", "why"], ("a/x -> b/y", "slow")) == [
        Violation("link", ("a/x", "b/y"), "slow")
    ]
    assert violations_of(["daemon", "n"], ("b/y", 3)) == [Violation("daemon", "b/y", "n=3")]
    assert violations_of(["host"], (None,)) == []
    now = time.time()
    snapshots = [
        HostSnapshot("a", (end_snapshot("x_out_b_y", now), end_snapshot("w_out_c_v", now))),
    ]
    topology = gather(snapshots, parse_config({}), now)
    criterion = parse_config(
        {"criteria": [{"name": "d", "colour": "yellow", "sql": "SELECT 'b/y' AS daemon"}]}
    ).criteria[0]
    result = CriterionResult(criterion, violations=[Violation("daemon", "b/y", "stuck")])
    apply_to_links(topology, [result])
    colours = {(link.source, link.target): (link.colour, link.why) for link in topology.links}
    assert colours == {("a/x", "b/y"): ("yellow", "d: stuck"), ("a/w", "c/v"): ("green", "healthy")}
