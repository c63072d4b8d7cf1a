"""Rule matching and date arithmetic (messaging.alerts.rules), as pure functions."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from messaging.alerts import rules

NAIROBI = ZoneInfo("Africa/Nairobi")
LONDON = ZoneInfo("Europe/London")


def fields(closed=False, **props):
    return {"name": "Amina", "owner_id": "w1", "external_id": "X1", "closed": closed, "properties": props}


@pytest.mark.parametrize(
    ("criterion", "props", "expected"),
    [
        ({"property": "risk", "op": "eq", "value": "high"}, {"risk": "high"}, True),
        ({"property": "risk", "op": "eq", "value": "high"}, {"risk": " high "}, True),
        ({"property": "risk", "op": "eq", "value": "high"}, {"risk": "low"}, False),
        ({"property": "risk", "op": "eq", "value": "high"}, {}, False),
        ({"property": "risk", "op": "ne", "value": "high"}, {}, True),
        ({"property": "risk", "op": "ne", "value": "high"}, {"risk": "high"}, False),
        ({"property": "risk", "op": "in", "value": ["high", "medium"]}, {"risk": "medium"}, True),
        ({"property": "risk", "op": "in", "value": ["high", "medium"]}, {"risk": "low"}, False),
        ({"property": "risk", "op": "exists"}, {"risk": "x"}, True),
        ({"property": "risk", "op": "exists"}, {"risk": "  "}, False),
        ({"property": "risk", "op": "missing"}, {}, True),
        ({"property": "risk", "op": "missing"}, {"risk": "x"}, False),
        # numbers compare as numbers, not as text ("10" > "9")
        ({"property": "visits", "op": "gt", "value": 9}, {"visits": "10"}, True),
        ({"property": "visits", "op": "lt", "value": "9"}, {"visits": "10"}, False),
        ({"property": "visits", "op": "eq", "value": 3}, {"visits": "3.0"}, True),
        # dates compare as dates
        ({"property": "edd", "op": "gt", "value": "2026-01-31"}, {"edd": "2026-02-01"}, True),
        ({"property": "edd", "op": "lt", "value": "2026-01-31"}, {"edd": "2026-02-01T00:00:00"}, False),
        # an order between a number and a word never holds
        ({"property": "visits", "op": "gt", "value": 1}, {"visits": "many"}, False),
        ({"property": "visits", "op": "gt", "value": 1}, {}, False),
        # case fields
        ({"property": "name", "op": "eq", "value": "Amina"}, {}, True),
        ({"property": "owner_id", "op": "ne", "value": "w1"}, {}, False),
    ],
)
def test_each_op(criterion, props, expected):
    assert rules.matches([criterion], fields(**props)) is expected


def test_all_criteria_must_hold_and_a_closed_case_never_matches():
    both = [
        {"property": "risk", "op": "eq", "value": "high"},
        {"property": "village", "op": "eq", "value": "2"},
    ]
    assert rules.matches(both, fields(risk="high", village="2"))
    assert not rules.matches(both, fields(risk="high", village="3"))
    assert rules.matches([], fields())
    assert not rules.matches([], fields(closed=True))


def test_a_date_offset_and_time_in_the_projects_zone():
    start = {"property": "next_visit", "offset_days": -2, "time": "09:00"}
    assert rules.occurrence_times(start, None, "2026-03-10", NAIROBI) == [(0, datetime(2026, 3, 8, 6, 0))]


def test_month_ends_and_year_ends_roll_over():
    start = {"property": "d", "offset_days": 1, "time": "00:30"}
    assert rules.occurrence_times(start, None, "2026-02-28", NAIROBI)[0][1] == datetime(2026, 2, 28, 21, 30)
    assert rules.occurrence_times(start, None, "2024-02-28", NAIROBI)[0][1] == datetime(2024, 2, 28, 21, 30)
    start = {"property": "d", "offset_days": -1, "time": "10:00"}
    assert rules.occurrence_times(start, None, "2027-01-01", NAIROBI)[0][1] == datetime(2026, 12, 31, 7, 0)


def test_repeats_keep_the_wall_time_across_a_dst_change():
    start = {"property": "d", "offset_days": 0, "time": "09:00"}
    times = rules.occurrence_times(start, {"every_days": 7, "times": 2}, "2026-03-22", LONDON)
    # 22 March is GMT (09:00Z); 29 March and 5 April are BST (08:00Z)
    assert times == [
        (0, datetime(2026, 3, 22, 9, 0)),
        (1, datetime(2026, 3, 29, 8, 0)),
        (2, datetime(2026, 4, 5, 8, 0)),
    ]


def test_a_wall_time_skipped_by_dst_goes_to_the_end_of_the_gap():
    start = {"property": "d", "offset_days": 0, "time": "01:30"}
    assert rules.occurrence_times(start, None, "2026-03-29", LONDON) == [(0, datetime(2026, 3, 29, 1, 0))]


def test_a_datetime_value_is_read_as_its_local_date():
    start = {"property": "d", "offset_days": 0, "time": "09:00"}
    # 22:30Z on the 9th is already the 10th in Nairobi (UTC+3)
    assert rules.occurrence_times(start, None, "2026-03-09T22:30:00Z", NAIROBI)[0][1] == datetime(
        2026, 3, 10, 6
    )


def test_missing_and_unreadable_dates():
    start = {"property": "d", "offset_days": 0, "time": "09:00"}
    with pytest.raises(rules.NoDate):
        rules.occurrence_times(start, None, None, NAIROBI)
    with pytest.raises(rules.NoDate):
        rules.occurrence_times(start, None, "  ", NAIROBI)
    for bad in ("next week", "2026-02-30", "31/12/2026", "2026-13-01T00:00"):
        with pytest.raises(rules.BadDate):
            rules.occurrence_times(start, None, bad, NAIROBI)


def test_a_rule_without_a_start_is_due_when_the_case_starts_matching_then_repeats():
    entered = datetime(2026, 3, 2, 12, 0)
    assert rules.triggered_times(entered, None) == [(0, entered)]
    assert rules.triggered_times(entered, {"every_days": 3, "times": 2}) == [
        (0, entered),
        (1, datetime(2026, 3, 5, 12, 0)),
        (2, datetime(2026, 3, 8, 12, 0)),
    ]


@pytest.mark.parametrize("bad", ["25:00", "9", "09:60", "nine", "-1:00"])
def test_times_outside_a_day_are_refused(bad):
    with pytest.raises(ValueError):
        rules.parse_time(bad)


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("5", 5.0),
        (" -3.5\t", -3.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        (7, 7.0),
        ("1_000", None),
        ("nan", None),
        ("inf", None),
        ("1e100", None),
        (True, None),
        ("", None),
        ("5 kg", None),
    ],
)
def test_what_criteria_read_as_a_number(value, number):
    assert rules.as_number(value) == number


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("2026-03-02", "2026-03-02T00:00:00"),
        (" 2026-03-02T10:00 ", "2026-03-02T10:00:00"),
        ("2026-03-02 10:00:30.5Z", "2026-03-02T10:00:30"),
        ("2026-03-02T10:00+03:00", "2026-03-02T10:00:00"),
        ("2026-3-2", None),
        ("2026-03-02t10:00", None),
        ("02/03/2026", None),
    ],
)
def test_what_criteria_read_as_a_date_compared_to_the_second(value, key):
    assert rules.date_key(value) == key
