"""Sending windows: the days and hours of a project's local week when automated messages may go.

Rules:
- A window is ``{"days": ["mon", ...], "start": "08:00", "end": "18:00"}`` in the
  project's time zone: open from ``start`` (included) to ``end`` (excluded) on each
  of its days. ``end`` before ``start`` runs past midnight into the next day, and
  belongs to the day it opens on ("fri 20:00-02:00" is open early on Saturday).
- A project's windows are a list; sending is allowed when any one is open. No
  windows (None or an empty list) means at any time.
- ``days`` are three-letter English day names, any case; a missing ``days`` means
  every day. Times are ``HH:MM`` (24 h); ``start`` equal to ``end`` is refused.
- :func:`parse_windows` turns JSON into windows and names the faulty field
  (``sending_windows[1].start``); :func:`windows_json` is the stored and shown form.
- :func:`next_open` is ``now`` when a window is open, else the first instant one
  opens (naive UTC). Local wall-clock time decides; an opening skipped by a
  spring-forward change opens at the first valid instant after it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from messaging.lib.localtime import as_naive_utc, get_zone, local_to_utc, utc_to_local

__all__ = [
    "DAY_NAMES",
    "SendingWindow",
    "WindowError",
    "is_open",
    "next_open",
    "parse_window_lines",
    "parse_windows",
    "window_lines",
    "windows_json",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
# Enough days ahead to find the next opening of any week-based set of windows (plus DST slack).
_DAYS_AHEAD = 9


class WindowError(ValueError):
    """A window that cannot be read; ``field`` names where (``sending_windows[0].days``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SendingWindow:
    """Open from ``start`` to ``end`` (local wall clock) on the ``days`` (0 = Monday) it opens."""

    days: frozenset[int]
    start: time
    end: time

    def open_at(self, local: datetime) -> bool:
        """Whether the window is open at the local wall-clock moment ``local``."""
        now, weekday = local.time().replace(fold=0), local.weekday()
        if self.start < self.end:
            return weekday in self.days and self.start <= now < self.end
        opened_today = weekday in self.days and now >= self.start
        opened_yesterday = (weekday - 1) % 7 in self.days and now < self.end
        return opened_today or opened_yesterday


def _time(raw, field: str) -> time:
    match = _TIME.match(raw.strip()) if isinstance(raw, str) else None
    if not match:
        raise WindowError(field, "must be a time such as 08:00.")
    return time(int(match.group(1)), int(match.group(2)))


def _days(raw, field: str) -> frozenset[int]:
    if raw is None:
        return frozenset(range(7))
    if not isinstance(raw, list) or not raw:
        raise WindowError(field, f"must be a list of days such as {list(DAY_NAMES[:5])}.")
    days = set()
    for item in raw:
        name = item.strip().lower()[:3] if isinstance(item, str) else None
        if name not in DAY_NAMES:
            raise WindowError(field, f"{item!r} is not a day; use {', '.join(DAY_NAMES)}.")
        days.add(DAY_NAMES.index(name))
    return frozenset(days)


def parse_windows(raw, field: str = "sending_windows") -> list[SendingWindow]:
    """Windows from their JSON form (None: no windows); raises :class:`WindowError` naming the field."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise WindowError(field, 'must be a list of {"days", "start", "end"} windows.')
    windows = []
    for index, item in enumerate(raw):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise WindowError(where, 'must be an object {"days", "start", "end"}.')
        unknown = set(item) - {"days", "start", "end"}
        if unknown:
            raise WindowError(f"{where}.{sorted(unknown)[0]}", "is not a field of a window.")
        start = _time(item.get("start"), f"{where}.start")
        end = _time(item.get("end"), f"{where}.end")
        if start == end:
            raise WindowError(f"{where}.end", "must differ from start.")
        windows.append(SendingWindow(_days(item.get("days"), f"{where}.days"), start, end))
    return windows


def windows_json(windows: Sequence[SendingWindow]) -> list[dict] | None:
    """The stored and shown form (None when there are none: send at any time)."""
    if not windows:
        return None
    return [
        {
            "days": [DAY_NAMES[d] for d in sorted(w.days)],
            "start": w.start.strftime("%H:%M"),
            "end": w.end.strftime("%H:%M"),
        }
        for w in windows
    ]


def is_open(windows: Sequence[SendingWindow], local: datetime) -> bool:
    """Whether sending is allowed at the local moment ``local`` (always, with no windows)."""
    return not windows or any(w.open_at(local) for w in windows)


def next_open(now_utc: datetime, tz_name: str, windows: Sequence[SendingWindow]) -> datetime:
    """``now_utc`` when sending is allowed now, else the first instant a window opens (naive UTC)."""
    now = as_naive_utc(now_utc)
    zone = get_zone(tz_name)
    if is_open(windows, utc_to_local(now, zone)):
        return now
    today: date = utc_to_local(now, zone).date()
    openings = []
    for offset in range(_DAYS_AHEAD):
        day = today + timedelta(days=offset)
        for window in windows:
            if day.weekday() not in window.days:
                continue
            for fold in (0, 1):
                instant = local_to_utc(day, window.start, zone, fold=fold)
                # Checked: an opening moved past a DST gap may land after the window's end.
                if instant > now and window.open_at(utc_to_local(instant, zone)):
                    openings.append(instant)
    if not openings:  # unreachable: every window has a day and opens within a week
        raise ValueError("no sending window opens within a week")
    return min(openings)


# --- the one-window-per-line form the settings page edits ------------------------------

_LINE = re.compile(r"^(?P<days>[a-z ,\-]+?)?\s*(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$")


def _line_days(text: str, field: str) -> list[str] | None:
    """``mon-fri``, ``sat,sun``, ``mon-wed, fri`` or nothing (every day) as day names."""
    if not text.strip():
        return None
    days: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        first, _, last = part.partition("-")
        names = [n.strip()[:3] for n in (first, last or first)]
        if any(n not in DAY_NAMES for n in names):
            raise WindowError(field, f"{part!r} is not a day or a range of days such as mon-fri.")
        start, end = DAY_NAMES.index(names[0]), DAY_NAMES.index(names[1])
        span = range(start, end + 1) if start <= end else [*range(start, 7), *range(end + 1)]
        days += [DAY_NAMES[d] for d in span]
    return days


def parse_window_lines(text: str, field: str = "sending_windows") -> list[SendingWindow]:
    """Windows from lines such as ``mon-fri 08:00-18:00`` or ``sat 09:00-12:00`` (no days: every
    day); a blank text is no windows. Raises :class:`WindowError` naming the line."""
    items = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().lower()
        if not line:
            continue
        match = _LINE.match(line)
        where = f"{field} (line {number})"
        if not match:
            raise WindowError(where, f"{raw.strip()!r} is not a window such as mon-fri 08:00-18:00.")
        item = {"start": match.group("start"), "end": match.group("end")}
        days = _line_days(match.group("days") or "", where)
        if days is not None:
            item["days"] = days
        items.append(item)
    return parse_windows(items, field)


def window_lines(windows: Sequence[SendingWindow]) -> str:
    """The windows as the lines :func:`parse_window_lines` reads (runs of days as ranges)."""
    lines = []
    for w in windows:
        days = sorted(w.days)
        runs: list[list[int]] = []
        for d in days:
            if runs and d == runs[-1][-1] + 1:
                runs[-1].append(d)
            else:
                runs.append([d])
        spelled = ",".join(
            DAY_NAMES[r[0]] if len(r) == 1 else f"{DAY_NAMES[r[0]]}-{DAY_NAMES[r[-1]]}" for r in runs
        )
        prefix = "" if len(days) == 7 else spelled + " "
        lines.append(f"{prefix}{w.start.strftime('%H:%M')}-{w.end.strftime('%H:%M')}")
    return "\n".join(lines)
