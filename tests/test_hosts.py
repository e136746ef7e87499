"""affair.hosts: one reading of a list of host globs, with ``!`` to leave hosts out."""

import pytest

from affair.hosts import HostMatcher, host_matcher

HOSTS = ["gdc01", "gdc02", "ldc01", "ldc05", "ldc10", "node.example.org"]


@pytest.mark.parametrize(
    ("patterns", "selected"),
    [
        (["*"], HOSTS),
        (["gdc*"], ["gdc01", "gdc02"]),
        (["ldc0[15]", "gdc02"], ["gdc02", "ldc01", "ldc05"]),
        (["ldc05"], ["ldc05"]),
        (["node?example.org"], ["node.example.org"]),
        (["*", "!ldc05"], ["gdc01", "gdc02", "ldc01", "ldc10", "node.example.org"]),
        (["!ldc05"], ["gdc01", "gdc02", "ldc01", "ldc10", "node.example.org"]),
        (["!ldc*", "!node*"], ["gdc01", "gdc02"]),
        (["ldc*", "!ldc0*"], ["ldc10"]),
        (["!ldc05", "ldc*"], ["ldc01", "ldc10"]),  # order does not matter
        (["ldc?[!5]"], ["ldc01", "ldc10"]),  # a ! inside brackets is the glob's own
        (["ldc0[!5]"], ["ldc01"]),
        (["nothing*"], []),
        ([], []),
    ],
)
def test_a_host_matches_a_positive_pattern_and_no_exclusion(patterns, selected):
    assert HostMatcher(patterns).select(HOSTS) == selected


def test_patterns_match_whole_names_case_sensitively():
    matcher = HostMatcher(["ldc*", "gdc01"])
    assert matcher("ldc01") and matcher("gdc01")
    assert not matcher("xldc01")
    assert not matcher("gdc011")
    assert not matcher("LDC01")
    assert not matcher("gdc01\n")


def test_host_matcher_builds_each_list_once_and_takes_lists_or_tuples():
    first = host_matcher(("*", "!ldc05"))
    assert host_matcher(["*", "!ldc05"]) is first
    assert host_matcher(("!ldc05",)) is not first
    assert first("ldc01") and not first("ldc05")
    assert repr(first) == "HostMatcher(['*', '!ldc05'])"
