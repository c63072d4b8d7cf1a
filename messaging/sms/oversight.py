"""What a programme manager sees of sending now: the queue, the top error reasons, what is coming.

Rules:
- **The queue**: outbound messages ``queued`` and due now (waiting for a sender, as
  ``messaging.sms.backlog`` counts them), ``queued`` and not yet due: held by the
  project's guards (``held_reason``: the daily limit, the sending windows) or waiting
  for quiet hours, a schedule or a retry; and ``sending`` (handed to a sender, no
  answer from the gateway yet). With a daily limit, the automated messages counted
  against it today.
- **Top error reasons**: the failed and undelivered messages of the last
  ``ERROR_DAYS`` days by reason (the gateway's error code and message, or the
  reason the system did not send: opted out, invalid number), most frequent first,
  at most ``TOP_ERRORS``.
- **Coming up**: broadcasts due in the next ``AHEAD_DAYS`` days (name and time),
  and the alert messages pending in that time, per UTC day.
- Each is one query on indexed columns; nothing here writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, select

from messaging.db import dialect
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import AlertOccurrence, Broadcast, Message
from messaging.sms import guards
from messaging.sms.backlog import due_condition

ERROR_DAYS = 7
TOP_ERRORS = 5
AHEAD_DAYS = 7


def queue_now(project_id: int, now: datetime | None = None) -> dict:
    """``{due, waiting, daily_limit, sending_window, sending, sent_today, limit}`` of the current
    project's outbound queue (``sent_today`` and ``limit`` None without a daily limit)."""
    now = now or clock.now()
    due_now = due_condition(now)
    waiting = and_(Message.status == "queued", ~due_now)
    row = db.session.execute(
        select(
            func.count().filter(due_now),
            func.count().filter(waiting, Message.held_reason.is_(None)),
            func.count().filter(waiting, Message.held_reason == guards.DAILY_LIMIT),
            func.count().filter(waiting, Message.held_reason == guards.SENDING_WINDOW),
            func.count().filter(Message.status == "sending"),
        ).where(Message.status.in_(("queued", "sending")))
    ).one()
    project = guards.project_guards(project_id)
    limit = project.daily_limit
    return {
        "due": row[0],
        "waiting": row[1],
        "daily_limit": row[2],
        "sending_window": row[3],
        "sending": row[4],
        "limit": limit,
        "sent_today": guards.sent_today(project_id, now, project) if limit is not None else None,
    }


def top_errors(now: datetime | None = None) -> list[dict]:
    """``[{reason, messages}]``: why messages failed in the last ``ERROR_DAYS`` days."""
    since = (now or clock.now()) - timedelta(days=ERROR_DAYS)
    reason = func.coalesce(Message.skip_reason, Message.error_code, "unknown")
    rows = db.session.execute(
        select(reason, func.max(Message.error_message), func.count())
        .where(Message.status.in_(("failed", "undelivered")), Message.created_at >= since)
        .group_by(reason)
        .order_by(func.count().desc(), reason)
        .limit(TOP_ERRORS)
    ).all()
    return [{"reason": r, "example": example, "messages": n} for r, example, n in rows]


def coming_up(now: datetime | None = None) -> dict:
    """``{broadcasts: [{id, name, next_fire_at}], alerts: [{day, messages}]}`` for the next days."""
    now = now or clock.now()
    until = now + timedelta(days=AHEAD_DAYS)
    broadcasts = db.session.execute(
        select(Broadcast.id, Broadcast.name, Broadcast.next_fire_at)
        .where(Broadcast.next_fire_at.is_not(None), Broadcast.next_fire_at < until)
        .order_by(Broadcast.next_fire_at)
        .limit(20)
    ).all()
    day = dialect.day_of(AlertOccurrence.due_at)
    alerts = db.session.execute(
        select(day, func.count())
        .where(AlertOccurrence.status == "pending", AlertOccurrence.due_at < until)
        .group_by(day)
        .order_by(day)
    ).all()
    return {
        "broadcasts": [{"id": i, "name": n, "next_fire_at": clock.isoformat(at)} for i, n, at in broadcasts],
        "alerts": [{"day": dialect.as_date(d).isoformat(), "messages": n} for d, n in alerts],
    }
