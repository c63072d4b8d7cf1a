"""Managing broadcasts: create, edit, delete and cancel. None of these commits: the caller does.

Rules:
- A broadcast to send now gets its firing at once; its job is enqueued when
  the caller commits. One scheduled for later waits for the tick.
- **Edit / delete**: a broadcast can be edited while it is scheduled (its next
  firings change; an edit keeps it scheduled, so it needs ``send_at`` or
  ``repeat``), and deleted until it has fired once (then cancel it instead).
- **Cancel** stops future firings and fails every message not yet claimed by
  a sender (``skip_reason='cancelled'``); messages already at the gateway go
  on. Survey sessions it opened whose first question has not been answered
  are cancelled too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import func, select, update

from messaging.broadcasts.firing import new_firing
from messaging.broadcasts.reading import broadcast_status
from messaging.broadcasts.spec import apply_spec, field_error, parse_spec
from messaging.errors import Conflict
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Broadcast, BroadcastFiring, Project, SurveySession
from messaging.sms import outbox

log = logging.getLogger(__name__)

FIRINGS = BroadcastFiring.__table__


def create_broadcast(project: Project, body: Mapping, user_id: int | None = None) -> Broadcast:
    """Create a broadcast; one to send now gets its firing at once. No commit (the job is
    enqueued when the caller commits)."""
    spec = parse_spec(project, body)
    b = Broadcast(project_id=project.id, created_by=user_id, created_at=clock.now(), updated_at=clock.now())
    apply_spec(b, spec)
    db.session.add(b)
    db.session.flush()
    if b.next_fire_at is None:
        new_firing(b, clock.now())
    log.info(
        "broadcast created project_id=%s broadcast_id=%s next_fire_at=%s", project.id, b.id, b.next_fire_at
    )
    return b


def update_broadcast(project: Project, b: Broadcast, body: Mapping) -> Broadcast:
    """Edit a scheduled broadcast (its next firings change). No commit."""
    if broadcast_status(b) != "scheduled":
        raise Conflict(
            "not_editable",
            f"Only a scheduled broadcast can be edited; this one has status '{broadcast_status(b)}'.",
        )
    spec = parse_spec(project, body, current=b)
    if spec["next_fire_at"] is None:
        raise field_error("send_at", "an edit keeps the broadcast scheduled: give send_at or repeat.")
    apply_spec(b, spec)
    db.session.flush()
    return b


def delete_broadcast(b: Broadcast) -> None:
    """Delete a broadcast that has never fired. No commit."""
    fired = db.session.execute(select(func.count()).where(FIRINGS.c.broadcast_id == b.id)).scalar_one()
    if fired:
        raise Conflict("already_fired", "This broadcast has already been sent; cancel it instead.")
    db.session.delete(b)
    db.session.flush()


def cancel_broadcast(b: Broadcast) -> dict:
    """Stop future firings and everything not yet handed to the gateway. No commit."""
    now = clock.now()
    if b.cancelled_at is None:
        b.cancelled_at = now
    b.next_fire_at = None
    b.updated_at = now
    firings = db.session.execute(
        update(FIRINGS)
        .where(FIRINGS.c.broadcast_id == b.id, FIRINGS.c.status.in_(("pending", "sending")))
        .values(status="cancelled", finished_at=now, updated_at=now)
    ).rowcount
    messages = outbox.cancel_messages(b.project_id, b.id)
    sessions = db.session.execute(
        update(SurveySession)
        .where(
            SurveySession.broadcast_id == b.id,
            SurveySession.status == "open",
            SurveySession.current_index == 0,
        )
        .values(status="cancelled", end_reason="broadcast_cancelled", ended_at=now, reminder_due_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    log.info(
        "broadcast cancelled project_id=%s broadcast_id=%s firings=%s messages=%s sessions=%s",
        b.project_id,
        b.id,
        firings,
        messages,
        sessions,
    )
    return {"firings": firings, "messages": messages}
