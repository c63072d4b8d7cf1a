"""Local wall-clock time <-> naive UTC, with explicit DST rules.

The app stores naive UTC datetimes; schedules and quiet hours are written in
a local wall-clock time of an IANA zone. Turning a local date and wall time
into one UTC instant needs two decisions, made here once for every caller:

- A wall time that does not exist (skipped by a spring-forward change, e.g.
  01:30 in London on the last Sunday of March) resolves to the first valid
  instant after the gap: the transition itself (02:00 BST = 01:00Z).
- A wall time that happens twice (autumn fall-back) resolves to its first
  occurrence (``fold=0``), unless ``fold=1`` is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["as_naive_utc", "get_zone", "local_to_utc", "offset_changes", "utc_to_local"]


def get_zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA name; ``ValueError`` when it is not one."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a time zone name is required")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError/OSError: names such as "../etc" or a directory like "Europe".
        raise ValueError(f"unknown time zone {name!r}") from None


def as_naive_utc(value: datetime) -> datetime:
    """``value`` as naive UTC; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def utc_to_local(value: datetime, zone: ZoneInfo) -> datetime:
    """Aware local datetime (with the right ``fold``) for a naive UTC instant."""
    return as_naive_utc(value).replace(tzinfo=UTC).astimezone(zone)


def local_to_utc(day: date, wall: time, zone: ZoneInfo, fold: int = 0) -> datetime:
    """Naive UTC instant of ``wall`` on ``day`` in ``zone`` (DST rules in the module docstring)."""
    local = datetime.combine(day, wall.replace(tzinfo=None, fold=fold), tzinfo=zone)
    utc = local.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None, fold=0) == local.replace(tzinfo=None, fold=0):
        return utc.replace(tzinfo=None)
    return _gap_end(local, zone)


def offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[datetime]:
    """Naive UTC instants in ``(start, end]`` where ``zone`` changes its UTC offset, in order.

    Scans hour by hour (real zones never change twice within an hour) and
    bisects each change to the second.
    """
    step = timedelta(hours=1)
    low = as_naive_utc(start).replace(tzinfo=UTC)
    stop = as_naive_utc(end).replace(tzinfo=UTC)
    offset = low.astimezone(zone).utcoffset()
    while low < stop:
        high = min(low + step, stop)
        new_offset = high.astimezone(zone).utcoffset()
        if new_offset != offset:
            yield _first_with_offset(low, high, new_offset, zone).replace(tzinfo=None)
            offset = new_offset
        low = high


def _gap_end(local: datetime, zone: ZoneInfo) -> datetime:
    """First valid instant after the gap that swallowed the wall time ``local``.

    zoneinfo does not expose its transitions, so bisect between the two
    readings of the missing time (offset before vs after the change), which
    straddle the transition, to the second.
    """
    a = local.replace(fold=0).astimezone(UTC)
    b = local.replace(fold=1).astimezone(UTC)
    low, high = min(a, b), max(a, b)  # offset(low) = before, offset(high) = after
    return _first_with_offset(low, high, high.astimezone(zone).utcoffset(), zone).replace(tzinfo=None)


def _first_with_offset(low: datetime, high: datetime, after: timedelta, zone: ZoneInfo) -> datetime:
    """Bisect aware UTC ``(low, high]`` to the first second whose offset is ``after``."""
    while high - low > timedelta(seconds=1):
        mid = low + timedelta(seconds=(high - low).total_seconds() // 2)
        if mid.astimezone(zone).utcoffset() == after:
            high = mid
        else:
            low = mid
    return high
