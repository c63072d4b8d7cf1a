"""The dashboard's days: messages delivered, sent, failed and received per UTC day.

Rules:
- A day counts the messages created that day (UTC), by direction and status:
  ``delivered``; ``sent`` (the gateway took it, no delivery report yet); ``failed``
  (failed or undelivered, with a reason); ``received`` (inbound). Messages still
  queued or sending are the queue (``messaging.sms.oversight``), not a day's result.
- Days before yesterday are read from the log once and kept
  (``message_day_counts``, one marker row for a day without messages); a delivery
  report arriving days late does not move them. Yesterday and today are read from
  the log each time (reports and retries still move them). So the chart reads at
  most two days of the log, whatever its size.
- Keeping a day is idempotent: two dashboards drawn at once insert the same rows
  and the unique constraint keeps one (conflicts ignored).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from messaging.db import dialect
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Message, MessageDayCount

SERIES = ("delivered", "sent", "failed", "received")
_SERIES_OF = {
    ("outbound", "delivered"): "delivered",
    ("outbound", "sent"): "sent",
    ("outbound", "failed"): "failed",
    ("outbound", "undelivered"): "failed",
    ("inbound", "received"): "received",
}
_EMPTY_DAY = ("-", "-")  # the marker of a kept day without messages


def daily_counts(project_id: int, days: int = 30, now: datetime | None = None) -> list[dict]:
    """``[{day, delivered, sent, failed, received, segments}]`` for the last ``days`` days,
    oldest first (the current project)."""
    today = (now or clock.now()).date()
    first = today - timedelta(days=days - 1)
    yesterday = today - timedelta(days=1)
    kept = _kept(first, yesterday)
    missing = [d for d in _days(first, yesterday) if d not in kept]
    if missing:
        fresh = _from_log(min(missing), yesterday)
        _keep(project_id, {d: fresh.get(d, {}) for d in missing})
        kept.update({d: fresh.get(d, {}) for d in missing})
    live = _from_log(max(first, yesterday), today + timedelta(days=1))
    result = []
    for day in _days(first, today + timedelta(days=1)):
        counts = live.get(day, {}) if day >= yesterday else kept.get(day, {})
        row = {"day": day.isoformat(), "segments": 0, **dict.fromkeys(SERIES, 0)}
        for (direction, status), (messages, segments) in counts.items():
            series = _SERIES_OF.get((direction, status))
            if series:
                row[series] += messages
                row["segments"] += segments
        result.append(row)
    return result


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days)]


def _kept(first: date, end: date) -> dict[date, dict]:
    kept: dict[date, dict] = {}
    for day, direction, status, messages, segments in db.session.execute(
        select(
            MessageDayCount.day,
            MessageDayCount.direction,
            MessageDayCount.status,
            MessageDayCount.messages,
            MessageDayCount.segments,
        ).where(MessageDayCount.day >= first, MessageDayCount.day < end)
    ):
        counts = kept.setdefault(day, {})
        if (direction, status) != _EMPTY_DAY:
            counts[(direction, status)] = (messages, segments)
    return kept


def _from_log(start: date, end: date) -> dict[date, dict]:
    """``{day: {(direction, status): (messages, segments)}}`` read from the message log."""
    day = dialect.day_of(Message.created_at)
    found: dict[date, dict] = defaultdict(dict)
    for value, direction, status, messages, segments in db.session.execute(
        select(
            day, Message.direction, Message.status, func.count(), func.coalesce(func.sum(Message.segments), 0)
        )
        .where(
            Message.created_at >= datetime.combine(start, datetime.min.time()),
            Message.created_at < datetime.combine(end, datetime.min.time()),
        )
        .group_by(day, Message.direction, Message.status)
    ):
        found[dialect.as_date(value)][(direction, status)] = (messages, int(segments))
    return found


def _keep(project_id: int, days: dict[date, dict]) -> None:
    rows = []
    for day, counts in days.items():
        pairs = counts.items() if counts else [(_EMPTY_DAY, (0, 0))]
        rows += [
            {
                "project_id": project_id,
                "day": day,
                "direction": direction,
                "status": status,
                "messages": messages,
                "segments": segments,
            }
            for (direction, status), (messages, segments) in pairs
        ]
    table = MessageDayCount.__table__
    db.session.execute(
        dialect.insert_ignoring_conflicts(table, "project_id", "day", "direction", "status"), rows
    )
