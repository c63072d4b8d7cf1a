"""Quiet hours: send only inside a daily window of the recipient's local time.

:class:`QuietHours` is the window when sending is ALLOWED, ``start`` included,
``end`` excluded, in local wall-clock time: 08:00-20:00, or across midnight
(20:00-06:00). Times in and out are naive UTC (aware input is converted).

DST: whether an instant is allowed depends only on its local wall-clock
time. When the opening time is skipped by a spring-forward change, the window
opens at the first valid instant after the gap. On an autumn fall-back day the
clock may pass through the window edges twice; sending is allowed whenever the
wall clock reads a time inside the window, whichever pass it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from messaging.lib.localtime import as_naive_utc, get_zone, local_to_utc, offset_changes, utc_to_local
from messaging.lib.phones import phone_timezone

__all__ = ["QuietHours", "next_allowed", "recipient_timezone"]

# Dates looked at around "now" for the next opening; a window may be closed
# on a DST day (opening inside the gap and ending before the gap's end), so
# look a few days ahead rather than only "today or tomorrow".
_DAYS_AHEAD = 7


@dataclass(frozen=True)
class QuietHours:
    """Daily window when sending is allowed: ``start <= local time < end`` (may wrap midnight)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValueError(f"{name}: must be a local time such as 08:00")
        if self.start == self.end:
            raise ValueError("end: must differ from start (leave quiet hours off to send at any time)")

    def contains(self, local: time) -> bool:
        """Whether the local wall-clock time ``local`` is inside the window."""
        local = local.replace(tzinfo=None, fold=0)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def next_allowed(now_utc: datetime, tz_name: str, window: QuietHours) -> datetime:
    """``now_utc`` if sending is allowed now in ``tz_name``, else when the window next opens (naive UTC)."""
    now = as_naive_utc(now_utc)
    zone = get_zone(tz_name)
    local_now = utc_to_local(now, zone)
    if window.contains(local_now.time()):
        return now
    # The local clock moves forward smoothly except at offset changes, so the
    # first allowed instant is either where it reaches ``start`` or where a
    # change makes it jump into the window (a fall-back onto 01:00 inside
    # 23:00-01:15, say).
    candidates = []
    for offset in range(-1, _DAYS_AHEAD + 1):
        day = local_now.date() + timedelta(days=offset)
        # Both readings of the opening time: on a fall-back day the second
        # one is a real later instant when the first has already passed.
        for fold in (0, 1):
            instant = local_to_utc(day, window.start, zone, fold=fold)
            if instant > now and window.contains(utc_to_local(instant, zone).time()):
                candidates.append(instant)
    if not candidates:  # unreachable with real zones; a clear error beats a wrong time
        raise ValueError(f"no allowed sending time found in {tz_name} within {_DAYS_AHEAD} days")
    opening = min(candidates)
    for change in offset_changes(zone, now, opening):
        if window.contains(utc_to_local(change, zone).time()):
            return change
    return opening


def recipient_timezone(e164: str | None, fallback_tz: str) -> str:
    """The recipient's IANA zone from the phone number, else ``fallback_tz`` (e.g. the project's)."""
    zone = phone_timezone(e164)
    if zone:
        try:
            get_zone(zone)
        except ValueError:  # phonenumbers names a zone this tz database lacks
            return fallback_tz
        return zone
    return fallback_tz
