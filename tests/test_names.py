"""Names from the network never leave the data dir."""

import pytest

from affair.errors import InvalidName
from affair.names import check_name, parse_rrd_file_name, rrd_file_name, rrd_path


@pytest.mark.parametrize("host", ["ldc01", "node-7.cluster.example", "A", "x" * 63])
def test_good_hosts(host):
    assert check_name("host", host) == host


@pytest.mark.parametrize(
    "host",
    [
        "",
        "..",
        ".",
        "../../etc",
        "a/b",
        "/etc",
        "-x",
        "_journal",
        "x" * 64,
        "a\x00b",
        "a\nb",
        "<script>",
        "a b",
        "é",
        None,
        7,
    ],
)
def test_hostile_hosts(host):
    with pytest.raises(InvalidName):
        check_name("host", host)


@pytest.mark.parametrize("name", ["a.b", "a/b", "", "x" * 41])
def test_datasets_cannot_hold_dots_or_slashes(name):
    with pytest.raises(InvalidName):
        check_name("dataset", name)


def test_variable_names_follow_rrdtool():
    assert check_name("variable", "cpu_user") == "cpu_user"
    for bad in ("cpu-user", "x" * 20, "", "a.b"):
        with pytest.raises(InvalidName):
            check_name("variable", bad)


def test_rrd_paths_stay_inside(tmp_path):
    assert rrd_path(tmp_path, "ldc01", "system") == tmp_path.resolve() / "ldc01" / "system.rrd"
    assert rrd_path(tmp_path, "ldc01", "disks", "var_log").name == "disks.var_log.rrd"
    with pytest.raises(InvalidName):
        rrd_path(tmp_path, "..", "system")
    with pytest.raises(InvalidName):
        rrd_path(tmp_path, "ldc01", "../system")


def test_file_names_round_trip():
    for dataset, instance in [("system", ""), ("disks", "root"), ("net", "eth0")]:
        assert parse_rrd_file_name(rrd_file_name(dataset, instance)) == (dataset, instance)
    assert parse_rrd_file_name(".system.rrd.42.creating") is None
    assert parse_rrd_file_name("a.b.c.rrd") is None
