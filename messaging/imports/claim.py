"""Claiming an import: one run of the job at a time, and taking over from a dead one.

Rules:
- A run claims the import atomically before any work: a queued import, or a running
  one whose job went quiet (no heartbeat for ``STALE_AFTER``: its worker died). A
  second run of the same job finds it taken or finished and does nothing.
- Each recorded batch renews the heartbeat (``outcomes.record_outcomes``).
- The sweep re-queues imports that stayed queued or went stale by the same rule.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, or_, update

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Import

STALE_AFTER = timedelta(minutes=10)


def stale_running(now):
    """The condition of an import that is running but whose job went quiet (no heartbeat
    for ``STALE_AFTER``): its worker died, so another run takes it over."""
    return (Import.status == "running") & (Import.heartbeat_at < now - STALE_AFTER)


def claim(import_id: str) -> bool:
    """Take the import for this run (commits); False when it is taken or finished."""
    now = clock.now()
    result = db.session.execute(
        update(Import)
        .where(Import.id == import_id)
        .where(or_(Import.status == "queued", stale_running(now)))
        .values(status="running", started_at=func.coalesce(Import.started_at, now), heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1
