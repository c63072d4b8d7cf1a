"""Local wall time <-> naive UTC: gaps, repeated hours, offset changes, zone names."""

from datetime import UTC, date, datetime, time

import pytest

from messaging.lib.localtime import as_naive_utc, get_zone, local_to_utc, offset_changes, utc_to_local


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("tz", "day", "wall", "fold", "expected"),
    [
        ("Europe/London", date(2026, 1, 15), time(9), 0, "2026-01-15T09:00"),
        ("Europe/London", date(2026, 7, 15), time(9), 0, "2026-07-15T08:00"),
        ("Europe/London", date(2026, 3, 29), time(1, 30), 0, "2026-03-29T01:00"),  # gap -> 02:00 BST
        ("Europe/London", date(2026, 3, 29), time(1, 30), 1, "2026-03-29T01:00"),
        ("Europe/London", date(2026, 10, 25), time(1, 30), 0, "2026-10-25T00:30"),  # first 01:30 (BST)
        ("Europe/London", date(2026, 10, 25), time(1, 30), 1, "2026-10-25T01:30"),  # second 01:30 (GMT)
        ("America/New_York", date(2026, 3, 8), time(2, 30), 0, "2026-03-08T07:00"),
        ("America/New_York", date(2026, 11, 1), time(1, 30), 0, "2026-11-01T05:30"),
        ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15), 0, "2026-10-03T15:30"),  # 30-min gap
        ("Pacific/Apia", date(2011, 12, 30), time(9), 0, "2011-12-30T10:00"),  # a skipped day
        ("Africa/Nairobi", date(2026, 7, 1), time(0), 0, "2026-06-30T21:00"),
    ],
)
def test_local_to_utc(tz, day, wall, fold, expected):
    assert local_to_utc(day, wall, get_zone(tz), fold=fold) == dt(expected)


def test_utc_to_local_and_naive_conversion():
    local = utc_to_local(dt("2026-10-25T01:30"), get_zone("Europe/London"))
    assert (local.hour, local.minute, local.fold) == (1, 30, 1)
    assert as_naive_utc(datetime(2026, 1, 1, 3, tzinfo=UTC)) == dt("2026-01-01T03:00")
    assert as_naive_utc(dt("2026-01-01T03:00")) == dt("2026-01-01T03:00")


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("Europe/London", ["2026-03-29T01:00:00", "2026-10-25T01:00:00"]),
        ("America/New_York", ["2026-03-08T07:00:00", "2026-11-01T06:00:00"]),
        ("Africa/Nairobi", []),
    ],
)
def test_offset_changes(tz, expected):
    found = offset_changes(get_zone(tz), dt("2026-01-01"), dt("2027-01-01"))
    assert [c.isoformat() for c in found] == expected


def test_offset_changes_interval_is_open_at_start():
    zone = get_zone("Europe/London")
    assert list(offset_changes(zone, dt("2026-03-29T01:00"), dt("2026-03-30"))) == []
    assert list(offset_changes(zone, dt("2026-03-29T00:59:59"), dt("2026-03-29T01:00"))) == [
        dt("2026-03-29T01:00")
    ]


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe", "../../etc/passwd", "", "  ", None, 5])
def test_get_zone_rejects(name):
    with pytest.raises(ValueError):
        get_zone(name)
