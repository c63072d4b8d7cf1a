"""Broadcast recurrence: local wall time kept across DST, weekly/monthly rules, JSON in and out."""

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from messaging.lib.localtime import get_zone, local_to_utc
from messaging.lib.schedule import (
    Recurrence,
    RecurrenceError,
    firings_between,
    from_dict,
    next_firing,
    to_dict,
)


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def daily(tz: str, at: time, start: date = date(2026, 1, 1), **kw) -> Recurrence:
    return Recurrence(kind="daily", time=at, start_date=start, timezone=tz, **kw)


def all_firings(rec: Recurrence, start: str, end: str) -> list[str]:
    return [f.isoformat() for f in firings_between(rec, dt(start), dt(end))]


# --- DST: the wall time is kept ------------------------------------------------

DST_CASES = [
    # zone, wall time, window (UTC), expected firings (naive UTC)
    pytest.param(
        "Europe/London",
        time(9),
        ("2026-03-27T12:00", "2026-03-31T00:00"),
        ["2026-03-28T09:00:00", "2026-03-29T08:00:00", "2026-03-30T08:00:00"],
        id="london-spring-09:00",
    ),
    pytest.param(
        "Europe/London",
        time(9),
        ("2026-10-23T12:00", "2026-10-27T00:00"),
        ["2026-10-24T08:00:00", "2026-10-25T09:00:00", "2026-10-26T09:00:00"],
        id="london-autumn-09:00",
    ),
    pytest.param(
        "America/New_York",
        time(9),
        ("2026-03-06T20:00", "2026-03-10T00:00"),
        ["2026-03-07T14:00:00", "2026-03-08T13:00:00", "2026-03-09T13:00:00"],
        id="new-york-spring-09:00",
    ),
    pytest.param(
        "America/New_York",
        time(9),
        ("2026-10-30T20:00", "2026-11-03T00:00"),
        ["2026-10-31T13:00:00", "2026-11-01T14:00:00", "2026-11-02T14:00:00"],
        id="new-york-autumn-09:00",
    ),
    # A wall time inside the spring-forward gap fires at the first instant after it.
    pytest.param(
        "Europe/London",
        time(1, 30),
        ("2026-03-27T12:00", "2026-03-31T00:00"),
        ["2026-03-28T01:30:00", "2026-03-29T01:00:00", "2026-03-30T00:30:00"],
        id="london-gap-01:30-fires-at-02:00-BST",
    ),
    pytest.param(
        "America/New_York",
        time(2, 30),
        ("2026-03-06T20:00", "2026-03-10T00:00"),
        ["2026-03-07T07:30:00", "2026-03-08T07:00:00", "2026-03-09T06:30:00"],
        id="new-york-gap-02:30-fires-at-03:00-EDT",
    ),
    # A repeated wall time fires once, at its first occurrence.
    pytest.param(
        "Europe/London",
        time(1, 30),
        ("2026-10-23T12:00", "2026-10-27T00:00"),
        ["2026-10-24T00:30:00", "2026-10-25T00:30:00", "2026-10-26T01:30:00"],
        id="london-repeated-01:30-once",
    ),
    pytest.param(
        "America/New_York",
        time(1, 30),
        ("2026-10-30T20:00", "2026-11-03T00:00"),
        ["2026-10-31T05:30:00", "2026-11-01T05:30:00", "2026-11-02T06:30:00"],
        id="new-york-repeated-01:30-once",
    ),
    # No DST: the same UTC time all year.
    pytest.param(
        "Africa/Nairobi",
        time(9),
        ("2026-03-27T12:00", "2026-03-30T00:00"),
        ["2026-03-28T06:00:00", "2026-03-29T06:00:00"],
        id="nairobi-march",
    ),
    pytest.param(
        "Africa/Nairobi",
        time(9),
        ("2026-10-24T12:00", "2026-10-27T00:00"),
        ["2026-10-25T06:00:00", "2026-10-26T06:00:00"],
        id="nairobi-october",
    ),
]


@pytest.mark.parametrize(("tz", "at", "window", "expected"), DST_CASES)
def test_daily_keeps_wall_time_across_dst(tz, at, window, expected):
    assert all_firings(daily(tz, at), *window) == expected


@pytest.mark.parametrize(("tz", "at", "window", "expected"), DST_CASES)
def test_next_firing_walks_the_same_firings(tz, at, window, expected):
    rec = daily(tz, at)
    got, current = [], dt(window[0])
    for _ in expected:
        current = next_firing(rec, current)
        got.append(current.isoformat())
    assert got == expected


def test_repeated_wall_time_does_not_fire_at_second_occurrence():
    rec = daily("Europe/London", time(1, 30))
    # Just after the first 01:30 (BST): the next firing is the next day, not 01:30 GMT an hour later.
    assert next_firing(rec, dt("2026-10-25T00:30")) == dt("2026-10-26T01:30")
    assert next_firing(rec, dt("2026-10-25T01:29")) == dt("2026-10-26T01:30")


def test_gap_firing_pushed_past_midnight_is_found():
    # Chile moves its clocks at 24:00 -> 01:00; 00:30 does not exist on that day.
    rec = daily("America/Santiago", time(0, 30))
    zone = get_zone("America/Santiago")
    change_day = date(2026, 9, 6)
    instant = local_to_utc(change_day, time(0, 30), zone)
    assert instant == dt("2026-09-06T04:00")  # 01:00 -03 = first instant after the gap
    assert next_firing(rec, dt("2026-09-05T05:00")) == instant


# --- weekly, monthly, end_date, once -------------------------------------------


def test_weekly_on_chosen_days():
    rec = Recurrence(
        kind="weekly",
        time=time(18, 15),
        start_date=date(2026, 6, 3),  # a Wednesday
        timezone="Africa/Nairobi",
        days_of_week={0, 2, 4},  # Mon, Wed, Fri
    )
    assert all_firings(rec, "2026-06-01T00:00", "2026-06-16T00:00") == [
        "2026-06-03T15:15:00",
        "2026-06-05T15:15:00",
        "2026-06-08T15:15:00",
        "2026-06-10T15:15:00",
        "2026-06-12T15:15:00",
        "2026-06-15T15:15:00",
    ]


def test_weekly_sunday_only_across_dst():
    rec = Recurrence(
        kind="weekly", time=time(9), start_date=date(2026, 3, 1), timezone="Europe/London", days_of_week=[6]
    )
    assert all_firings(rec, "2026-03-20T00:00", "2026-04-06T00:00") == [
        "2026-03-22T09:00:00",
        "2026-03-29T08:00:00",
        "2026-04-05T08:00:00",
    ]


MONTHLY = [
    (
        31,
        date(2026, 1, 1),
        [
            "2026-01-31",
            "2026-02-28",
            "2026-03-31",
            "2026-04-30",
            "2026-05-31",
            "2026-06-30",
        ],
    ),
    (
        30,
        date(2028, 1, 15),
        ["2028-01-30", "2028-02-29", "2028-03-30", "2028-04-30", "2028-05-30", "2028-06-30"],
    ),
    (
        29,
        date(2026, 1, 1),
        ["2026-01-29", "2026-02-28", "2026-03-29", "2026-04-29", "2026-05-29", "2026-06-29"],
    ),
    (
        1,
        date(2026, 1, 2),
        ["2026-02-01", "2026-03-01", "2026-04-01", "2026-05-01", "2026-06-01", "2026-07-01"],
    ),
]


@pytest.mark.parametrize(("day", "start", "expected_dates"), MONTHLY)
def test_monthly_short_months_fire_on_last_day(day, start, expected_dates):
    rec = Recurrence(kind="monthly", time=time(12), start_date=start, timezone="UTC", day_of_month=day)
    got = firings_between(rec, datetime.combine(start, time()) - timedelta(days=1), dt("2031-01-01"))
    assert [f.date().isoformat() for f in got[:6]] == expected_dates
    assert all(f.time() == time(12) for f in got)


def test_monthly_day_31_keeps_local_time_in_new_york():
    rec = Recurrence(
        kind="monthly",
        time=time(8),
        start_date=date(2026, 1, 1),
        timezone="America/New_York",
        day_of_month=31,
    )
    assert all_firings(rec, "2026-01-01T00:00", "2026-05-01T00:00") == [
        "2026-01-31T13:00:00",
        "2026-02-28T13:00:00",
        "2026-03-31T12:00:00",
        "2026-04-30T12:00:00",
    ]


def test_end_date_is_inclusive_then_none():
    rec = daily("Africa/Nairobi", time(9), start=date(2026, 5, 1), end_date=date(2026, 5, 3))
    assert all_firings(rec, "2026-01-01T00:00", "2027-01-01T00:00") == [
        "2026-05-01T06:00:00",
        "2026-05-02T06:00:00",
        "2026-05-03T06:00:00",
    ]
    assert next_firing(rec, dt("2026-05-03T06:00")) is None
    assert next_firing(rec, dt("2030-01-01T00:00")) is None


def test_end_date_for_weekly_with_no_matching_day_left():
    rec = Recurrence(
        kind="weekly",
        time=time(9),
        start_date=date(2026, 6, 1),
        end_date=date(2026, 6, 6),  # Mon..Sat
        timezone="UTC",
        days_of_week={6},
    )
    assert next_firing(rec, dt("2026-05-01T00:00")) is None


def test_end_date_for_monthly():
    rec = Recurrence(
        kind="monthly",
        time=time(9),
        start_date=date(2026, 1, 1),
        end_date=date(2026, 3, 30),
        timezone="UTC",
        day_of_month=31,
    )
    assert all_firings(rec, "2025-01-01T00:00", "2027-01-01T00:00") == [
        "2026-01-31T09:00:00",
        "2026-02-28T09:00:00",
    ]


ONCE = Recurrence(kind="once", time=time(9, 30), start_date=date(2026, 7, 1), timezone="Europe/London")


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2020-01-01T00:00", dt("2026-07-01T08:30")),
        ("2026-07-01T08:29:59", dt("2026-07-01T08:30")),
        ("2026-07-01T08:30", None),  # strictly after: the firing itself is not "next"
        ("2026-07-01T08:30:01", None),
        ("2027-01-01T00:00", None),
    ],
)
def test_once(after, expected):
    assert next_firing(ONCE, dt(after)) == expected


def test_once_firings_between():
    assert firings_between(ONCE, dt("2026-01-01"), dt("2027-01-01")) == [dt("2026-07-01T08:30")]
    assert firings_between(ONCE, dt("2026-07-01T08:30"), dt("2027-01-01")) == []


def test_start_date_in_the_future_and_before_start_time():
    rec = daily("Africa/Nairobi", time(9), start=date(2026, 8, 10))
    assert next_firing(rec, dt("2026-01-01T00:00")) == dt("2026-08-10T06:00")
    # On the start date itself, before and after the time.
    assert next_firing(rec, dt("2026-08-10T05:59")) == dt("2026-08-10T06:00")
    assert next_firing(rec, dt("2026-08-10T06:00")) == dt("2026-08-11T06:00")


def test_local_date_differs_from_utc_date():
    # 23:30 in Auckland is 10:30Z the same local day; start_date is a local date.
    rec = daily("Pacific/Auckland", time(23, 30), start=date(2026, 6, 10))
    assert next_firing(rec, dt("2026-06-01T00:00")) == dt("2026-06-10T11:30")
    # 01:00 in Kiritimati (+14) on the 10th is 11:00Z on the 9th.
    rec = daily("Pacific/Kiritimati", time(1), start=date(2026, 6, 10))
    assert next_firing(rec, dt("2026-06-01T00:00")) == dt("2026-06-09T11:00")


def test_firings_between_is_open_at_start_closed_at_end():
    rec = daily("UTC", time(9))
    assert all_firings(rec, "2026-02-01T09:00", "2026-02-03T09:00") == [
        "2026-02-02T09:00:00",
        "2026-02-03T09:00:00",
    ]
    assert all_firings(rec, "2026-02-03T09:00", "2026-02-03T09:00") == []
    assert all_firings(rec, "2026-02-05T00:00", "2026-02-01T00:00") == []


def test_firings_between_limit():
    rec = daily("UTC", time(9))
    got = firings_between(rec, dt("2026-01-01"), dt("2036-01-01"), limit=3)
    assert got == [dt("2026-01-01T09:00"), dt("2026-01-02T09:00"), dt("2026-01-03T09:00")]
    assert len(firings_between(rec, dt("2026-01-01"), dt("2027-01-01"))) == 365


def test_aware_input_is_converted_and_output_is_naive_utc():
    rec = daily("Europe/London", time(9))
    aware = datetime(2026, 7, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))  # 08:00Z
    result = next_firing(rec, aware)
    assert result == dt("2026-07-02T08:00") and result.tzinfo is None
    assert next_firing(rec, datetime(2026, 7, 1, 7, 59, tzinfo=UTC)) == dt("2026-07-01T08:00")


# --- JSON: from_dict / to_dict --------------------------------------------------

GOOD = [
    {"kind": "once", "time": "09:00", "start_date": "2026-07-01", "timezone": "Europe/London"},
    {
        "kind": "daily",
        "time": "07:05:30",
        "start_date": "2026-07-01",
        "timezone": "UTC",
        "end_date": "2026-07-01",
    },
    {
        "kind": "weekly",
        "time": "18:00",
        "start_date": "2026-07-01",
        "timezone": "America/New_York",
        "days_of_week": [4, 0, 2],
    },
    {
        "kind": "monthly",
        "time": "00:00",
        "start_date": "2026-07-01",
        "timezone": "Africa/Nairobi",
        "day_of_month": 31,
        "end_date": "2027-07-01",
    },
]


@pytest.mark.parametrize("data", GOOD)
def test_round_trip(data):
    rec = from_dict(data)
    stored = to_dict(rec)
    assert from_dict(stored) == rec
    assert to_dict(from_dict(stored)) == stored
    assert stored["time"] == data["time"]
    assert set(stored) == {
        "kind",
        "time",
        "start_date",
        "timezone",
        "days_of_week",
        "day_of_month",
        "end_date",
    }


def test_to_dict_shapes():
    rec = from_dict(GOOD[2])
    assert to_dict(rec) == {
        "kind": "weekly",
        "time": "18:00",
        "start_date": "2026-07-01",
        "timezone": "America/New_York",
        "days_of_week": [0, 2, 4],
        "day_of_month": None,
        "end_date": None,
    }
    assert from_dict({**GOOD[0], "time": "9:05"}).time == time(9, 5)
    assert from_dict({**GOOD[0], "end_date": None, "days_of_week": None}).end_date is None


BASE = {"kind": "daily", "time": "09:00", "start_date": "2026-07-01", "timezone": "Africa/Nairobi"}

BAD = [
    ({**BASE, "timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
    ({**BASE, "timezone": "Europe"}, "timezone", "unknown time zone"),
    ({**BASE, "timezone": "../../etc/passwd"}, "timezone", "unknown time zone"),
    ({**BASE, "timezone": 3}, "timezone", "IANA"),
    ({k: v for k, v in BASE.items() if k != "timezone"}, "timezone", "required"),
    ({**BASE, "time": "25:00"}, "time", "25:00"),
    ({**BASE, "time": "12:60"}, "time", "00:00 to 23:59"),
    ({**BASE, "time": "9am"}, "time", "9am"),
    ({**BASE, "time": 900}, "time", "900"),
    ({**BASE, "time": ""}, "time", "required"),
    ({**BASE, "kind": "hourly"}, "kind", "hourly"),
    ({**BASE, "kind": None}, "kind", "required"),
    ({**BASE, "start_date": "01/07/2026"}, "start_date", "YYYY-MM-DD"),
    ({**BASE, "start_date": "2026-02-30"}, "start_date", "YYYY-MM-DD"),
    ({**BASE, "end_date": "2026-06-30"}, "end_date", "before start_date"),
    ({**BASE, "end_date": "soon"}, "end_date", "YYYY-MM-DD"),
    ({**BASE, "kind": "weekly"}, "days_of_week", "at least one day"),
    ({**BASE, "kind": "weekly", "days_of_week": []}, "days_of_week", "at least one day"),
    ({**BASE, "kind": "weekly", "days_of_week": [7]}, "days_of_week", "0 (Monday) to 6 (Sunday)"),
    ({**BASE, "kind": "weekly", "days_of_week": [-1]}, "days_of_week", "0 (Monday)"),
    ({**BASE, "kind": "weekly", "days_of_week": ["mon"]}, "days_of_week", "0 (Monday)"),
    ({**BASE, "kind": "weekly", "days_of_week": [True]}, "days_of_week", "0 (Monday)"),
    ({**BASE, "kind": "weekly", "days_of_week": "135"}, "days_of_week", "list"),
    ({**BASE, "kind": "weekly", "days_of_week": [1, 1]}, "days_of_week", "twice"),
    ({**BASE, "days_of_week": [1]}, "days_of_week", "only applies to weekly"),
    ({**BASE, "kind": "monthly"}, "day_of_month", "1 to 31"),
    ({**BASE, "kind": "monthly", "day_of_month": 32}, "day_of_month", "1 to 31"),
    ({**BASE, "kind": "monthly", "day_of_month": 0}, "day_of_month", "1 to 31"),
    ({**BASE, "kind": "monthly", "day_of_month": "5"}, "day_of_month", "1 to 31"),
    ({**BASE, "day_of_month": 5}, "day_of_month", "only applies to monthly"),
    ({**BASE, "every": 2}, "every", "unknown field"),
]


@pytest.mark.parametrize(("data", "field", "text"), BAD)
def test_from_dict_rejects_with_field_named(data, field, text):
    with pytest.raises(ValueError) as info:
        from_dict(data)
    assert isinstance(info.value, RecurrenceError)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert text in str(info.value)


@pytest.mark.parametrize("data", [None, [], "daily"])
def test_from_dict_rejects_non_objects(data):
    with pytest.raises(RecurrenceError, match="JSON object"):
        from_dict(data)


def test_constructor_validates_too():
    with pytest.raises(RecurrenceError, match="^time: "):
        Recurrence(kind="daily", time="09:00", start_date=date(2026, 1, 1), timezone="UTC")
    with pytest.raises(RecurrenceError, match="^time: "):
        Recurrence(kind="daily", time=time(9, tzinfo=UTC), start_date=date(2026, 1, 1), timezone="UTC")
    with pytest.raises(RecurrenceError, match="^start_date: "):
        Recurrence(kind="daily", time=time(9), start_date=datetime(2026, 1, 1), timezone="UTC")
    rec = Recurrence(
        kind="weekly", time=time(9), start_date=date(2026, 1, 1), timezone="UTC", days_of_week=[1, 3]
    )
    assert rec.days_of_week == frozenset({1, 3})
    assert hash(rec) == hash(from_dict(to_dict(rec)))
