"""The receiving path's shortcuts give exactly what the full checks give.

Validation skips the name and declaration checks for a layout of variable
names it has seen pass, when every value is a finite float; the journal packs
values with one Struct when the names are its positions in order. Both must
refuse, convert and store as the slow paths do, on the second sample too.
"""

import math

import pytest

from affair.config import parse_config
from affair.errors import Rejected
from affair.ingest.validate import Sample, validate_sample
from affair.storage.journal import Journal, read_after

NOW = 1_800_000_000.0
DATASETS = {"system": {"variables": {"a": {}, "b": {}, "c": {}}}}
LENIENT = parse_config({"datasets": DATASETS})
STRICT = parse_config({"recorder": {"accept_undeclared": False}, "datasets": DATASETS})


def raw(values, seq=7):
    return [seq, NOW, "ldc01", "system", "", values, 1]


def test_a_known_layout_still_turns_nan_into_unknown_and_ints_into_floats():
    first = validate_sample(raw({"a": 1.0, "b": 2.0}), LENIENT, NOW)
    assert first.values == {"a": 1.0, "b": 2.0}
    nan = validate_sample(raw({"a": math.nan, "b": 2.0}), LENIENT, NOW)
    assert nan.values == {"a": None, "b": 2.0}
    whole = validate_sample(raw({"a": 3, "b": 2.0}), LENIENT, NOW)
    assert whole.values == {"a": 3.0, "b": 2.0}
    assert type(whole.values["a"]) is float
    again = validate_sample(raw({"a": 1.5, "b": -2.5}), LENIENT, NOW)
    assert again.values == {"a": 1.5, "b": -2.5}


@pytest.mark.parametrize(
    "bad", [math.inf, -math.inf, True, "1.0", [1.0]], ids=["inf", "-inf", "bool", "str", "list"]
)
def test_a_known_layout_still_refuses_a_bad_value(bad):
    validate_sample(raw({"a": 1.0, "b": 2.0}), LENIENT, NOW)
    with pytest.raises(Rejected) as refused:
        validate_sample(raw({"a": bad, "b": 2.0}), LENIENT, NOW)
    assert refused.value.reason == "value"


def test_finite_values_whose_sum_overflows_are_accepted_as_they_are():
    big = 1.7e308
    sample = validate_sample(raw({"a": big, "b": big}), LENIENT, NOW)
    assert sample.values == {"a": big, "b": big}


def test_a_layout_known_under_one_config_is_checked_again_under_another():
    values = {"a": 1.0, "zz": 2.0}
    assert validate_sample(raw(values), LENIENT, NOW).values == values
    with pytest.raises(Rejected) as refused:
        validate_sample(raw(dict(values)), STRICT, NOW)
    assert refused.value.reason == "undeclared"
    with pytest.raises(Rejected) as refused_again:  # and not remembered as good
        validate_sample(raw(dict(values)), STRICT, NOW)
    assert refused_again.value.reason == "undeclared"


def test_a_bad_variable_name_is_refused_every_time():
    for _ in range(2):
        with pytest.raises(Rejected) as refused:
            validate_sample(raw({"a": 1.0, "bad name": 2.0}), LENIENT, NOW)
        assert refused.value.reason == "name"


def sample(ts, values):
    return Sample(0, ts, "h1", "system", "", values)


def test_journal_values_round_trip_through_every_packing_path(tmp_path):
    journal = Journal(tmp_path, clock=lambda: NOW)
    batches = [
        [sample(NOW - 30, {"a": 1.0, "b": 2.0})],  # new layout: positions a=0, b=1
        [sample(NOW - 20, {"a": 3.0, "b": None})],  # known, in order, with an unknown
        [sample(NOW - 10, {"b": 4.0, "a": 5.0})],  # known names, not in position order
        [sample(NOW - 5, {"c": 6.0})],  # a new variable (position 2) alone
        [sample(NOW - 4, {"a": None, "b": None, "c": 7.0})],  # in order, wider
        [sample(NOW - 3, {"a": 8.0, "b": 9.0})],  # the first layout again
    ]
    for batch in batches:
        journal.append(batch)
    journal.close()
    rows = [(ts, values) for _, ts, _, _, _, values in read_after(tmp_path, None)]
    assert rows == [(batch[0].ts, batch[0].values) for batch in batches]


def test_journal_packing_after_a_rolled_back_transaction(tmp_path):
    journal = Journal(tmp_path, clock=lambda: NOW)
    journal.append([sample(NOW - 30, {"a": 1.0, "b": 2.0})])
    # A resend in the batch makes the journal roll back and redo it row by row,
    # forgetting the variable it had just added: the packers are forgotten too.
    positions = journal.append(
        [sample(NOW - 20, {"a": 3.0, "c": 4.0}), sample(NOW - 30, {"a": 1.0, "b": 2.0})]
    )
    assert positions[1] is None and positions[0] is not None
    journal.append([sample(NOW - 10, {"a": 5.0, "c": 6.0})])
    journal.close()
    rows = [(ts, values) for _, ts, _, _, _, values in read_after(tmp_path, None)]
    assert rows == [
        (NOW - 30, {"a": 1.0, "b": 2.0}),
        (NOW - 20, {"a": 3.0, "c": 4.0}),
        (NOW - 10, {"a": 5.0, "c": 6.0}),
    ]
