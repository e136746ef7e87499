"""Several stations behind one index: other stations' hosts from their status.json."""

import json

import pytest

from affair.config import parse_config
from affair.errors import ConfigError
from affair.outputs.site import SiteBuilder
from affair.outputs.stations import station_view, station_views

NOW = 1_700_000_000


def stations(*entries):
    return parse_config({"site": {"stations": list(entries)}}).site.stations


STATUS = {
    "built": NOW - 30,
    "counts": {},
    "hosts": {
        "n02": {"colour": "red", "group": "x", "last_sample": NOW - 5, "why": "disk full"},
        "n01": {"colour": "green", "group": "x", "last_sample": NOW - 5, "why": "all rules pass"},
    },
}


def test_a_station_shows_its_hosts_linking_to_its_own_pages():
    (station,) = stations({"name": "st2", "status": "http://st2:8080/site/status.json"})
    view = station_view(station, STATUS, NOW)
    assert (view["colour"], view["why"], view["href"]) == (
        "red",
        "built 30 s ago",
        "http://st2:8080/site/index.html",
    )
    assert [(h["host"], h["href"], h["colour"], h["why"]) for h in view["hosts"]] == [
        ("n01", "http://st2:8080/site/host/n01.html", "green", ""),
        ("n02", "http://st2:8080/site/host/n02.html", "red", "disk full"),
    ]
    assert view["counts"] == {"red": 1, "yellow": 0, "grey": 0, "green": 1}


def test_pages_may_be_elsewhere_and_an_old_status_is_grey():
    (station,) = stations({"status": "/srv/st2/status.json", "pages": "https://st2/"})
    view = station_view(station, {**STATUS, "built": NOW - 3600}, NOW)
    assert view["name"] == "station1" and view["colour"] == "grey"
    assert view["why"] == "status built 60 min ago"
    assert view["hosts"][0]["href"] == "https://st2/host/n01.html"


def test_an_unreadable_station_is_grey_with_the_reason(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[]")
    views = station_views(
        stations(
            {"name": "gone", "status": str(tmp_path / "missing.json")},
            {"name": "bad", "status": str(tmp_path / "bad.json")},
            {"name": "list", "status": str(tmp_path / "list.json")},
        ),
        NOW,
    )
    assert [v["colour"] for v in views] == ["grey"] * 3
    assert "No such file" in views[0]["why"] and views[0]["hosts"] == []
    assert views[1]["why"].startswith(f"cannot read {tmp_path / 'bad.json'}")
    assert views[2]["why"] == "its status.json has no hosts table"
    assert station_view(stations({"status": "/x"})[0], [], NOW)["why"] == (
        "its status.json has no hosts table"
    )


def test_a_station_source_that_is_not_a_path_or_http_is_refused():
    with pytest.raises(ConfigError, match=r"site\.stations\[0\]\.status"):
        stations({"status": "ftp://st2/status.json"})
    with pytest.raises(ConfigError, match=r"site\.stations\[0\]\.name"):
        stations({"name": "../x", "status": "/x"})


def test_the_index_lists_other_stations_hosts(tmp_path):
    (tmp_path / "st2").mkdir()
    (tmp_path / "st2" / "status.json").write_text(json.dumps(STATUS))
    config = parse_config(
        {
            "recorder": {"data_dir": str(tmp_path / "data")},
            "site": {
                "stations": [
                    {"name": "st2", "status": str(tmp_path / "st2" / "status.json")},
                    {"name": "st3", "status": str(tmp_path / "st3" / "status.json")},
                ]
            },
        }
    )
    page = SiteBuilder(config, tmp_path / "data", tmp_path, tmp_path / "site").render_index([], NOW)
    assert f'<a href="{tmp_path}/st2/host/n02.html">n02</a>' in page
    assert "disk full" in page
    assert 'station <a href="' in page and ">st3</a>" in page and "cannot read" in page
    assert "No hosts yet" not in page
