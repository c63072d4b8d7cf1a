"""Firings: when a broadcast sends. New firings, their job, the periodic tick, and the job itself.

Rules:
- Each firing is its own send (a ``broadcast_firings`` row, unique per
  broadcast and instant) with its own counts. A firing inserted twice for one
  instant is one firing; its job is enqueued after the caller's commit.
- The tick starts the firings that are due: it claims a broadcast's next
  instant with a conditional UPDATE (two schedulers fire it once) and moves
  ``next_fire_at`` to the following instant (None when there is none).
- A scheduler that was down fires a repeating broadcast once for the latest
  missed instant, never once per missed day.
- A firing whose job has not moved it for ``FIRING_STALE_SECONDS`` is
  enqueued again (safe: the cursor claims); a Redis error when enqueueing is
  logged, and the tick retries.
- The job (:func:`run_firing`) snapshots the recipients once, then fans out
  batch by batch (:mod:`messaging.broadcasts.fanout`); it is safe to run
  twice or on two workers at once.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from messaging import jobs
from messaging.broadcasts import fanout, recipients
from messaging.broadcasts.content import Content
from messaging.db.after_commit import after_commit
from messaging.db.tenancy import project_scope
from messaging.extensions import db
from messaging.lib import clock, schedule
from messaging.models import Broadcast, BroadcastFiring
from messaging.models.base import new_id

log = logging.getLogger(__name__)

# A firing whose job has not moved it for this long is enqueued again (safe: the cursor claims).
FIRING_STALE_SECONDS = 120
FIRINGS = BroadcastFiring.__table__


def new_firing(b: Broadcast, fire_at: datetime) -> BroadcastFiring | None:
    """Insert the firing of ``b`` at ``fire_at`` (once: a duplicate is ignored); job after commit."""
    firing = BroadcastFiring(
        id=new_id(),
        project_id=b.project_id,
        broadcast_id=b.id,
        fire_at=fire_at,
        status="pending",
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    try:
        with db.session.begin_nested():
            db.session.add(firing)
            db.session.flush()
    except IntegrityError:
        log.info("firing exists already broadcast_id=%s fire_at=%s", b.id, fire_at)
        return None
    after_commit(enqueue_firing, b.project_id, firing.id)
    return firing


def enqueue_firing(project_id: int, firing_id: str) -> None:
    """Enqueue the fan-out job; a Redis error is logged (the tick enqueues stale firings again)."""
    try:
        jobs.enqueue(jobs.RUN_FIRING, project_id, firing_id, job_id=f"firing-{firing_id}-{new_id()[:8]}")
    except Exception:
        log.exception(
            "enqueue failed project_id=%s firing_id=%s (the tick will retry)", project_id, firing_id
        )


def tick(now: datetime | None = None, limit: int = 200) -> dict:
    """Periodic: start the firings that are due; enqueue again firings whose job went quiet."""
    now = now or clock.now()
    stats = Counter()
    due = db.session.execute(
        select(Broadcast.id, Broadcast.project_id, Broadcast.next_fire_at)
        .where(Broadcast.next_fire_at <= now, Broadcast.cancelled_at.is_(None))
        .order_by(Broadcast.next_fire_at)
        .limit(limit)
        .execution_options(all_projects=True)
    ).all()
    for broadcast_id, project_id, fire_at in due:
        with project_scope(project_id):
            try:
                if _fire_due(broadcast_id, fire_at, now):
                    stats["fired"] += 1
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception(
                    "firing failed to start project_id=%s broadcast_id=%s", project_id, broadcast_id
                )
                stats["errors"] += 1
    stale = db.session.execute(
        select(FIRINGS.c.id, FIRINGS.c.project_id)
        .where(
            FIRINGS.c.status.in_(("pending", "sending")),
            FIRINGS.c.updated_at < now - timedelta(seconds=FIRING_STALE_SECONDS),
        )
        .limit(limit)
    ).all()
    for firing_id, project_id in stale:
        db.session.execute(update(FIRINGS).where(FIRINGS.c.id == firing_id).values(updated_at=now))
        db.session.commit()
        enqueue_firing(project_id, firing_id)
        stats["requeued"] += 1
    return dict(stats)


def _fire_due(broadcast_id: str, fire_at: datetime, now: datetime) -> bool:
    b = db.session.get(Broadcast, broadcast_id)
    rec = schedule.from_dict(b.schedule) if b.schedule else None
    following = schedule.next_firing(rec, now) if rec else None
    if rec is not None:
        # Missed several instants (the scheduler was down): fire once, for the latest.
        missed = schedule.firings_between(rec, fire_at, now, limit=10_000)
        if missed:
            log.info("broadcast missed firings broadcast_id=%s skipped=%s", broadcast_id, len(missed))
            fire_at = missed[-1]
    claimed = db.session.execute(
        update(Broadcast.__table__)
        .where(Broadcast.__table__.c.id == broadcast_id, Broadcast.__table__.c.next_fire_at == b.next_fire_at)
        .values(next_fire_at=following, updated_at=now)
    ).rowcount
    if claimed != 1:
        return False  # another scheduler took it
    return new_firing(b, fire_at) is not None


def run_firing(project_id: int, firing_id: str, batch_size: int | None = None) -> dict:
    """The fan-out job: snapshot the recipients (once), then write and queue their messages
    batch by batch. Safe to run twice or on two workers at once. Call in the project's scope."""
    firing = db.session.get(BroadcastFiring, firing_id)
    if firing is None or firing.status in ("done", "cancelled"):
        return {"status": firing.status if firing else "missing"}
    b = db.session.get(Broadcast, firing.broadcast_id)
    if firing.status == "pending":
        recipients.snapshot(b, firing)
    content = Content(b)
    content.bodies = fanout.constant_bodies(firing_id, content)
    if batch_size is None:
        batch_size = fanout.FANOUT_BATCH if content.bodies is None else fanout.SET_FANOUT_BATCH
    stats = fanout.fan_out(b, firing_id, content, batch_size)
    log.info(
        "firing run project_id=%s broadcast_id=%s firing_id=%s %s", project_id, b.id, firing_id, dict(stats)
    )
    return dict(stats)
