"""Reading broadcasts: their status, each firing's counts, the list page by page, today's sends.

Rules:
- A broadcast is ``cancelled``; else ``sending`` while a firing fans out or
  its messages are not all at the gateway yet (quiet hours included); else
  ``scheduled`` while a firing is to come; else ``sent``. The list filters by
  the same rule in SQL.
- A firing counts its messages by status and its skipped recipients by
  reason (skipped in the snapshot, or failed with a reason when written). Its
  percent finished is the share of its recipients skipped or past
  ``queued``/``sending`` (a done firing without recipients is 100).
- The list is newest first, paged by ``(created_at, id)``.
"""

from __future__ import annotations

from collections import Counter
from datetime import time, timedelta

from sqlalchemy import and_, func, or_, select, tuple_

from messaging.db.tenancy import current_project_id
from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.localtime import get_zone, local_to_utc, utc_to_local
from messaging.models import Broadcast, BroadcastFiring, BroadcastRecipient, Message, Project

STATUSES = ("scheduled", "sending", "sent", "cancelled")
FIRINGS = BroadcastFiring.__table__
RECIPIENTS = BroadcastRecipient.__table__
MESSAGES = Message.__table__


def broadcast_status(b: Broadcast, active_firings: int | None = None) -> str:
    """``cancelled``; ``sending`` (a firing fanning out, or its messages not all at the gateway
    yet, quiet hours included); ``scheduled`` (a firing to come); else ``sent``."""
    if b.cancelled_at is not None:
        return "cancelled"
    if active_firings is None:
        active_firings = active_counts([b.id]).get(b.id, 0)
    if active_firings:
        return "sending"
    return "scheduled" if b.next_fire_at is not None else "sent"


def active_counts(broadcast_ids: list[str]) -> dict[str, int]:
    """Per broadcast: firings still fanning out plus messages still waiting to be sent."""
    if not broadcast_ids:
        return {}
    counts: Counter = Counter()
    for broadcast_id, n in db.session.execute(
        select(FIRINGS.c.broadcast_id, func.count())
        .where(FIRINGS.c.broadcast_id.in_(broadcast_ids), FIRINGS.c.status.in_(("pending", "sending")))
        .group_by(FIRINGS.c.broadcast_id)
    ):
        counts[broadcast_id] += n
    for broadcast_id, n in db.session.execute(
        select(FIRINGS.c.broadcast_id, func.count())
        .select_from(FIRINGS.join(MESSAGES, MESSAGES.c.firing_id == FIRINGS.c.id))
        .where(FIRINGS.c.broadcast_id.in_(broadcast_ids), MESSAGES.c.status.in_(("queued", "sending")))
        .group_by(FIRINGS.c.broadcast_id)
    ):
        counts[broadcast_id] += n
    return dict(counts)


def firing_counts(firing: BroadcastFiring) -> dict:
    """``statuses`` (messages by status), ``skipped`` (by reason) and ``percent`` finished."""
    statuses = dict(
        db.session.execute(
            select(MESSAGES.c.status, func.count())
            .where(MESSAGES.c.firing_id == firing.id)
            .group_by(MESSAGES.c.status)
        ).all()
    )
    skipped = Counter(
        dict(
            db.session.execute(
                select(RECIPIENTS.c.skip_reason, func.count())
                .where(RECIPIENTS.c.firing_id == firing.id, RECIPIENTS.c.skip_reason.is_not(None))
                .group_by(RECIPIENTS.c.skip_reason)
            ).all()
        )
    )
    recipients_skipped = sum(skipped.values())
    for reason, n in db.session.execute(
        select(MESSAGES.c.skip_reason, func.count())
        .where(MESSAGES.c.firing_id == firing.id, MESSAGES.c.skip_reason.is_not(None))
        .group_by(MESSAGES.c.skip_reason)
    ):
        skipped[reason] += n
    total = firing.total
    finished = recipients_skipped + sum(n for s, n in statuses.items() if s not in ("queued", "sending"))
    if total is None:
        percent = 0
    elif total == 0:
        percent = 100 if firing.status in ("done", "cancelled") else 0
    else:
        percent = min(100, int(100 * finished / total))
    return {"statuses": statuses, "skipped": dict(skipped), "percent": percent}


def firings_of(b: Broadcast, limit: int = 20) -> list[BroadcastFiring]:
    """The broadcast's latest firings, newest first."""
    return list(
        db.session.execute(
            select(BroadcastFiring)
            .where(BroadcastFiring.broadcast_id == b.id)
            .order_by(BroadcastFiring.fire_at.desc())
            .limit(limit)
        ).scalars()
    )


def _status_condition(status: str):
    """SQL for "this broadcast has ``status``" (as :func:`broadcast_status` decides it)."""
    waiting = (
        select(MESSAGES.c.id)
        .where(MESSAGES.c.firing_id == FIRINGS.c.id, MESSAGES.c.status.in_(("queued", "sending")))
        .exists()
    )
    active = Broadcast.id.in_(
        select(FIRINGS.c.broadcast_id).where(
            FIRINGS.c.project_id == current_project_id(),
            or_(FIRINGS.c.status.in_(("pending", "sending")), waiting),
        )
    )
    live = Broadcast.cancelled_at.is_(None)
    return {
        "cancelled": Broadcast.cancelled_at.is_not(None),
        "sending": and_(live, active),
        "scheduled": and_(live, ~active, Broadcast.next_fire_at.is_not(None)),
        "sent": and_(live, ~active, Broadcast.next_fire_at.is_(None)),
    }[status]


def page_broadcasts(
    status: str | None = None, after: tuple | None = None, limit: int = 50
) -> tuple[list[tuple[Broadcast, str]], tuple | None]:
    """One page of broadcasts with their status, newest first (optionally only one status).

    ``after`` is the ``(created_at, id)`` of the last broadcast of the previous
    page; returns the page and the key to ask for the next one (None at the end).
    """
    stmt = select(Broadcast)
    if status is not None:
        stmt = stmt.where(_status_condition(status))
    if after is not None:
        stmt = stmt.where(tuple_(Broadcast.created_at, Broadcast.id) < tuple_(*after))
    rows = list(
        db.session.execute(
            stmt.order_by(Broadcast.created_at.desc(), Broadcast.id.desc()).limit(limit + 1)
        ).scalars()
    )
    page = rows[:limit]
    active = active_counts([b.id for b in page])
    items = [(b, broadcast_status(b, active.get(b.id, 0))) for b in page]
    return items, ((page[-1].created_at, page[-1].id) if len(rows) > limit else None)


def status_counts() -> dict[str, int]:
    """How many broadcasts of the project have each status."""
    return {
        status: db.session.execute(
            select(func.count()).select_from(Broadcast).where(_status_condition(status))
        ).scalar_one()
        for status in STATUSES
    }


# Messages are written close to when they go (a firing writes its own, an alert its occurrence's);
# quiet hours and the daily limit hold them for a day or two. A message sent today is looked for
# among those written in this many days: a range of ix_messages_project_created, not the whole log.
SENT_TODAY_WRITTEN_WITHIN = timedelta(days=7)


def sends_today(project: Project) -> dict:
    """Dashboard: broadcast firings started and outbound messages sent since local midnight
    (among the messages written in the last ``SENT_TODAY_WRITTEN_WITHIN``)."""
    zone = get_zone(project.timezone or "UTC")
    local_now = utc_to_local(clock.now(), zone)
    midnight = local_to_utc(local_now.date(), time(0, 0), zone)
    firings = db.session.execute(
        select(func.count()).select_from(BroadcastFiring).where(BroadcastFiring.started_at >= midnight)
    ).scalar_one()
    messages = db.session.execute(
        select(func.count())
        .select_from(Message)
        .where(
            Message.project_id == project.id,
            Message.created_at >= midnight - SENT_TODAY_WRITTEN_WITHIN,
            Message.direction == "outbound",
            Message.sent_at >= midnight,
        )
    ).scalar_one()
    return {"firings": firings, "messages": messages}
