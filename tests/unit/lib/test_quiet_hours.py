"""Quiet hours: the allowed sending window in the recipient's local time, DST-correct."""

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

import messaging.lib.quiet_hours as quiet_hours
from messaging.lib.localtime import get_zone, utc_to_local
from messaging.lib.quiet_hours import QuietHours, next_allowed, recipient_timezone

DAY = QuietHours(time(8), time(20))
NIGHT = QuietHours(time(20), time(6))  # wraps midnight


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("window", "local", "inside"),
    [
        (DAY, time(8), True),  # start included
        (DAY, time(7, 59, 59), False),
        (DAY, time(12), True),
        (DAY, time(19, 59, 59), True),
        (DAY, time(20), False),  # end excluded
        (DAY, time(0), False),
        (NIGHT, time(20), True),
        (NIGHT, time(23, 59), True),
        (NIGHT, time(0), True),
        (NIGHT, time(5, 59), True),
        (NIGHT, time(6), False),
        (NIGHT, time(12), False),
        (QuietHours(time(22), time(0)), time(23, 30), True),
        (QuietHours(time(22), time(0)), time(0), False),
        (QuietHours(time(0), time(6)), time(0), True),
        (QuietHours(time(0), time(6)), time(23, 59), False),
    ],
)
def test_contains(window, local, inside):
    assert window.contains(local) is inside


CASES = [
    # now (UTC), zone, window, expected (UTC)
    pytest.param("2026-06-01T09:00", "Africa/Nairobi", DAY, "2026-06-01T09:00", id="inside-returns-now"),
    pytest.param("2026-06-01T04:00", "Africa/Nairobi", DAY, "2026-06-01T05:00", id="before-opening"),
    pytest.param("2026-06-01T17:00", "Africa/Nairobi", DAY, "2026-06-02T05:00", id="at-closing-next-day"),
    pytest.param("2026-06-01T20:30", "Africa/Nairobi", DAY, "2026-06-02T05:00", id="after-midnight-local"),
    pytest.param("2026-06-01T12:00", "Africa/Nairobi", NIGHT, "2026-06-01T17:00", id="wrap-midday-waits"),
    pytest.param(
        "2026-06-01T03:00", "Africa/Nairobi", NIGHT, "2026-06-01T17:00", id="wrap-06:00-local-closed"
    ),
    pytest.param("2026-06-01T02:59", "Africa/Nairobi", NIGHT, "2026-06-01T02:59", id="wrap-05:59-open"),
    pytest.param("2026-06-01T20:00", "Africa/Nairobi", NIGHT, "2026-06-01T20:00", id="wrap-23:00-open"),
    # London spring forward (29 March 2026) and fall back (25 October 2026).
    pytest.param("2026-03-28T21:00", "Europe/London", DAY, "2026-03-29T07:00", id="london-spring"),
    pytest.param("2026-03-29T06:30", "Europe/London", DAY, "2026-03-29T07:00", id="london-spring-same-day"),
    pytest.param("2026-03-29T07:00", "Europe/London", DAY, "2026-03-29T07:00", id="london-08:00-BST-open"),
    pytest.param("2026-10-24T20:30", "Europe/London", DAY, "2026-10-25T08:00", id="london-autumn"),
    pytest.param("2026-10-25T07:30", "Europe/London", DAY, "2026-10-25T08:00", id="london-autumn-same-day"),
    # New York spring forward (8 March 2026) and fall back (1 November 2026).
    pytest.param("2026-03-08T02:00", "America/New_York", DAY, "2026-03-08T12:00", id="ny-spring"),
    pytest.param("2026-11-01T02:00", "America/New_York", DAY, "2026-11-01T13:00", id="ny-autumn"),
    pytest.param("2026-03-08T14:00", "America/New_York", NIGHT, "2026-03-09T00:00", id="ny-night-spring"),
    # Opening time inside the spring-forward gap: first instant after the gap (03:00 EDT).
    pytest.param(
        "2026-03-08T06:00", "America/New_York", QuietHours(time(2, 30), time(6)), "2026-03-08T07:00", id="gap"
    ),
    # A window entirely inside the gap does not open that day at all.
    pytest.param(
        "2026-03-08T06:00",
        "America/New_York",
        QuietHours(time(2, 10), time(2, 50)),
        "2026-03-09T06:10",
        id="window-inside-gap",
    ),
    # Fall back: 01:10 comes twice; each time the window opens at the next 01:30 on the clock.
    pytest.param(
        "2026-11-01T05:10",
        "America/New_York",
        QuietHours(time(1, 30), time(5)),
        "2026-11-01T05:30",
        id="fold0",
    ),
    pytest.param(
        "2026-11-01T06:10",
        "America/New_York",
        QuietHours(time(1, 30), time(5)),
        "2026-11-01T06:30",
        id="fold1",
    ),
    # Allowed again during the repeated hour: 01:40 EST (second pass) reads inside 01:30-05:00.
    pytest.param(
        "2026-11-01T06:40",
        "America/New_York",
        QuietHours(time(1, 30), time(5)),
        "2026-11-01T06:40",
        id="fold1-in",
    ),
    # Fall back from 01:59 EDT to 01:00 EST lands inside 23:00-01:15 again: allowed from the change.
    pytest.param(
        "2026-11-01T05:43",
        "America/New_York",
        QuietHours(time(23), time(1, 15)),
        "2026-11-01T06:00",
        id="reenter",
    ),
    pytest.param(
        "2026-10-25T00:20",
        "Europe/London",
        QuietHours(time(23), time(1, 15)),
        "2026-10-25T01:00",
        id="reenter-uk",
    ),
]


@pytest.mark.parametrize(("now", "tz", "window", "expected"), CASES)
def test_next_allowed(now, tz, window, expected):
    result = next_allowed(dt(now), tz, window)
    assert result == dt(expected)
    assert result.tzinfo is None


def test_aware_input_is_converted():
    aware = datetime(2026, 6, 1, 7, 0, tzinfo=timezone(timedelta(hours=3)))  # 04:00Z, 07:00 Nairobi
    assert next_allowed(aware, "Africa/Nairobi", DAY) == dt("2026-06-01T05:00")
    assert next_allowed(datetime(2026, 6, 1, 9, tzinfo=UTC), "Africa/Nairobi", DAY) == dt("2026-06-01T09:00")


def _allowed(instant: datetime, tz: str, window: QuietHours) -> bool:
    return window.contains(utc_to_local(instant, get_zone(tz)).time())


WINDOWS = [DAY, NIGHT, QuietHours(time(1, 30), time(2, 45)), QuietHours(time(23), time(1, 15))]
SWEEPS = [
    ("Europe/London", "2026-03-28T12:00"),
    ("Europe/London", "2026-10-24T12:00"),
    ("America/New_York", "2026-03-07T18:00"),
    ("America/New_York", "2026-10-31T18:00"),
    ("Africa/Nairobi", "2026-06-01T00:00"),
    ("America/Santiago", "2026-09-05T12:00"),  # clocks change at midnight
    ("Australia/Lord_Howe", "2026-10-03T06:00"),  # 30-minute DST
]


@pytest.mark.parametrize(("tz", "start"), SWEEPS)
@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: f"{w.start:%H%M}-{w.end:%H%M}")
def test_next_allowed_is_the_first_allowed_minute(tz, start, window):
    """Brute force across DST days: the answer is allowed and no earlier minute is."""
    now = dt(start)
    for _ in range(48):  # every 37 minutes over about 30 hours
        result = next_allowed(now, tz, window)
        assert result >= now
        assert _allowed(result, tz, window)
        probe = now
        while probe < result:
            assert not _allowed(probe, tz, window), (now, probe, result)
            probe += timedelta(minutes=1)
        now += timedelta(minutes=37)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (time(8), time(8), "must differ"),
        ("08:00", time(20), "start: "),
        (time(8), None, "end: "),
        (time(8, tzinfo=UTC), time(20), "start: "),
    ],
)
def test_invalid_window(start, end, message):
    with pytest.raises(ValueError, match=message):
        QuietHours(start, end)


def test_unknown_zone():
    with pytest.raises(ValueError, match="unknown time zone"):
        next_allowed(dt("2026-06-01T00:00"), "Mars/Olympus", DAY)


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+254712345678", "Africa/Nairobi"),
        ("+256772123456", "Africa/Kampala"),
        ("+14155552671", "America/Los_Angeles"),
        ("+12125551234", "America/New_York"),
        ("+79161234567", "Europe/London"),  # Russia spans many offsets: unknown -> fallback
        ("+61412345678", "Europe/London"),  # Australian mobile: several offsets -> fallback
        ("not a phone", "Europe/London"),
        ("", "Europe/London"),
        (None, "Europe/London"),
    ],
)
def test_recipient_timezone(phone, expected):
    assert recipient_timezone(phone, "Europe/London") == expected


def test_recipient_timezone_ignores_zone_missing_from_tz_database(monkeypatch):
    monkeypatch.setattr(quiet_hours, "phone_timezone", lambda e164: "Atlantis/Capital")
    assert recipient_timezone("+254712345678", "Africa/Nairobi") == "Africa/Nairobi"
