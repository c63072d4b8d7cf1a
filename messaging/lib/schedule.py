"""Recurrence rules for scheduled broadcasts.

A :class:`Recurrence` is written in local terms (a wall-clock time, local
dates and an IANA time zone); every function here takes and returns naive UTC
datetimes, the app's convention (an aware datetime is accepted and converted).

Rules:

- ``once`` fires on ``start_date`` at ``time``; ``daily`` every day from
  ``start_date``; ``weekly`` on ``days_of_week`` (0=Monday .. 6=Sunday);
  ``monthly`` on ``day_of_month``. A ``day_of_month`` of 29-31 in a shorter
  month fires on that month's last day (31 -> 30 April, 28/29 February).
- ``end_date`` is inclusive: the last local date that may fire.
- The local wall time is kept across DST changes: 09:00 Europe/London is
  08:00Z in summer and 09:00Z in winter.
- A wall time skipped by a spring-forward change fires at the first valid
  instant after the gap (01:30 London on the March change day -> 02:00 BST).
- A wall time that occurs twice on an autumn change day fires once, at its
  first occurrence (``fold=0``).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from messaging.lib.localtime import as_naive_utc, get_zone, local_to_utc, utc_to_local

__all__ = [
    "KINDS",
    "Recurrence",
    "RecurrenceError",
    "firings_between",
    "from_dict",
    "next_firing",
    "to_dict",
]

KINDS = ("once", "daily", "weekly", "monthly")
_FIELDS = ("kind", "time", "start_date", "days_of_week", "day_of_month", "end_date", "timezone")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class RecurrenceError(ValueError):
    """A bad recurrence; ``field`` names the offending field (or ``None``)."""

    def __init__(self, field_name: str | None, message: str):
        super().__init__(f"{field_name}: {message}" if field_name else message)
        self.field = field_name


@dataclass(frozen=True, kw_only=True)
class Recurrence:
    """When a broadcast fires, in local terms. Validated on construction."""

    kind: str
    time: time
    start_date: date
    timezone: str
    days_of_week: frozenset[int] = field(default_factory=frozenset)
    day_of_month: int | None = None
    end_date: date | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RecurrenceError("kind", f"must be one of {', '.join(KINDS)} (got {self.kind!r})")
        if not isinstance(self.time, time) or self.time.tzinfo is not None or self.time.microsecond:
            raise RecurrenceError("time", "must be a local wall-clock time such as 09:00")
        if not _is_date(self.start_date):
            raise RecurrenceError("start_date", "must be a date")
        try:
            get_zone(self.timezone)
        except ValueError as exc:
            raise RecurrenceError("timezone", str(exc)) from None
        # Accept any iterable of days, but store a frozenset so the rule is hashable.
        object.__setattr__(self, "days_of_week", frozenset(self.days_of_week or ()))
        self._check_days()
        self._check_end()

    def _check_days(self) -> None:
        if self.kind == "weekly":
            if not self.days_of_week:
                raise RecurrenceError("days_of_week", "choose at least one day for a weekly schedule")
            if any(not _is_int(d) or not 0 <= d <= 6 for d in self.days_of_week):
                raise RecurrenceError("days_of_week", "days must be numbers from 0 (Monday) to 6 (Sunday)")
        elif self.days_of_week:
            raise RecurrenceError("days_of_week", "only applies to weekly schedules")
        if self.kind == "monthly":
            if not _is_int(self.day_of_month) or not 1 <= self.day_of_month <= 31:
                raise RecurrenceError("day_of_month", "must be a day from 1 to 31 for a monthly schedule")
        elif self.day_of_month is not None:
            raise RecurrenceError("day_of_month", "only applies to monthly schedules")

    def _check_end(self) -> None:
        if self.end_date is not None:
            if not _is_date(self.end_date):
                raise RecurrenceError("end_date", "must be a date")
            if self.end_date < self.start_date:
                raise RecurrenceError("end_date", "must not be before start_date")


def next_firing(rec: Recurrence, after_utc: datetime) -> datetime | None:
    """Naive UTC of the first firing strictly after ``after_utc``; ``None`` when there is none left."""
    after = as_naive_utc(after_utc)
    zone = get_zone(rec.timezone)
    # Start one local day early: a firing pushed past midnight by a DST gap
    # belongs to the previous local date.
    first_day = max(rec.start_date, utc_to_local(after, zone).date() - timedelta(days=1))
    for day in _local_dates(rec, first_day):
        instant = local_to_utc(day, rec.time, zone)
        if instant > after:
            return instant
    return None


def firings_between(
    rec: Recurrence, start_utc: datetime, end_utc: datetime, limit: int | None = None
) -> list[datetime]:
    """Naive UTC firings ``f`` with ``start_utc < f <= end_utc`` (at most ``limit``), in order.

    The interval is open at the start and closed at the end so that a sweep
    ``firings_between(rec, last_run, now)`` picks up each firing exactly once,
    matching :func:`next_firing`'s "strictly after".
    """
    end = as_naive_utc(end_utc)
    found: list[datetime] = []
    current = next_firing(rec, start_utc)
    while current is not None and current <= end and (limit is None or len(found) < limit):
        found.append(current)
        current = next_firing(rec, current)
    return found


def from_dict(data: Mapping[str, Any]) -> Recurrence:
    """Build a :class:`Recurrence` from JSON (API input or storage); ``RecurrenceError`` names the field.

    Shape: ``{"kind", "time": "HH:MM[:SS]", "start_date": "YYYY-MM-DD", "timezone",
    "days_of_week": [0..6] (weekly), "day_of_month": 1..31 (monthly), "end_date": "YYYY-MM-DD" | null}``.
    """
    if not isinstance(data, Mapping):
        raise RecurrenceError(None, "a schedule must be a JSON object")
    unknown = sorted(str(k) for k in data if k not in _FIELDS)
    if unknown:
        raise RecurrenceError(unknown[0], "unknown field")
    for required in ("kind", "time", "start_date", "timezone"):
        if data.get(required) in (None, ""):
            raise RecurrenceError(required, "is required")
    kind = data["kind"]
    if not isinstance(kind, str):
        raise RecurrenceError("kind", f"must be one of {', '.join(KINDS)}")
    timezone = data["timezone"]
    if not isinstance(timezone, str):
        raise RecurrenceError("timezone", "must be an IANA time zone name such as Africa/Nairobi")
    days = data.get("days_of_week")
    if days is not None and (isinstance(days, str | bytes) or not isinstance(days, list | tuple | set)):
        raise RecurrenceError("days_of_week", "must be a list of numbers from 0 (Monday) to 6 (Sunday)")
    if days is not None and any(not _is_int(d) or not 0 <= d <= 6 for d in days):
        raise RecurrenceError("days_of_week", "days must be numbers from 0 (Monday) to 6 (Sunday)")
    if days is not None and len(set(days)) != len(days):
        raise RecurrenceError("days_of_week", "lists a day twice")
    day_of_month = data.get("day_of_month")
    if day_of_month is not None and not _is_int(day_of_month):
        raise RecurrenceError("day_of_month", "must be a day from 1 to 31")
    end_date = data.get("end_date")
    return Recurrence(
        kind=kind,
        time=_parse_time(data["time"]),
        start_date=_parse_date("start_date", data["start_date"]),
        timezone=timezone,
        days_of_week=frozenset(days or ()),
        day_of_month=day_of_month,
        end_date=None if end_date in (None, "") else _parse_date("end_date", end_date),
    )


def to_dict(rec: Recurrence) -> dict[str, Any]:
    """JSON-ready dict that :func:`from_dict` reads back to an equal :class:`Recurrence`."""
    return {
        "kind": rec.kind,
        "time": rec.time.isoformat(timespec="seconds" if rec.time.second else "minutes"),
        "start_date": rec.start_date.isoformat(),
        "timezone": rec.timezone,
        "days_of_week": sorted(rec.days_of_week) if rec.kind == "weekly" else None,
        "day_of_month": rec.day_of_month,
        "end_date": rec.end_date.isoformat() if rec.end_date else None,
    }


# --- internals ---------------------------------------------------------------


def _local_dates(rec: Recurrence, first_day: date) -> Iterator[date]:
    """Local dates that fire, from ``first_day`` (>= start_date) up to end_date, in order."""
    last_day = rec.end_date or date.max
    if rec.kind == "once":
        if first_day <= rec.start_date <= last_day:
            yield rec.start_date
        return
    if rec.kind == "monthly":
        yield from _monthly_dates(rec, first_day, last_day)
        return
    day = first_day
    while day <= last_day:
        if rec.kind == "daily" or day.weekday() in rec.days_of_week:
            yield day
        if day == date.max:
            return
        day += timedelta(days=1)


def _monthly_dates(rec: Recurrence, first_day: date, last_day: date) -> Iterator[date]:
    year, month = first_day.year, first_day.month
    while True:
        # Day 29-31 in a shorter month: that month's last day.
        day = date(year, month, min(rec.day_of_month, calendar.monthrange(year, month)[1]))
        if day > last_day:
            return
        if day >= first_day:
            yield day
        if (year, month) == (9999, 12):
            return
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _parse_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    match = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if match:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour <= 23 and minute <= 59 and second <= 59:
            return time(hour, minute, second)
    raise RecurrenceError("time", f"must be a time from 00:00 to 23:59 (got {value!r})")


def _parse_date(name: str, value: Any) -> date:
    if _is_date(value):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise RecurrenceError(name, f"must be a date as YYYY-MM-DD (got {value!r})")


def _is_date(value: Any) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
