"""The sweep (every 60 s): catching up after dead workers, lost jobs and held-back e-mails.

Rules:
- Delivery is at least once: a worker that dies between the POST and recording its
  outcome leaves the record ``sending``; the sweep puts it back to ``pending`` after
  ``STALE_SENDING`` (15 min, well over a chunk's worst case) and it is sent again.
- Every location (not paused) with due pending records gets a sender queued, unless
  one is queued already: this is how records whose job Redis lost still go out.
- Failure e-mails held back by the interval go out once it has passed.
- It runs across projects.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from messaging.extensions import db
from messaging.forwarding.dispatch import ensure_dispatched
from messaging.forwarding.notify import gave_up_unreported, notify_failures
from messaging.lib import clock
from messaging.models import ForwardLocation, ForwardRecord

log = logging.getLogger(__name__)

STALE_SENDING = timedelta(minutes=15)


def sweep() -> dict:
    """Periodic: put back records whose sender died, make sure every location with due
    records has a sender queued, and send the failure e-mails that were held back."""
    now = clock.now()
    reset = db.session.execute(
        update(ForwardRecord)
        .where(ForwardRecord.status == "sending", ForwardRecord.claimed_at < now - STALE_SENDING)
        .values(status="pending", claim_token=None, next_attempt_at=now)
        .execution_options(synchronize_session=False, all_projects=True)
    ).rowcount
    db.session.commit()
    if reset:
        log.warning("forwarding sweep: %d record(s) stuck in sending put back to pending", reset)
    due = _location_ids(
        select(ForwardRecord.location_id)
        .join(ForwardLocation, ForwardLocation.id == ForwardRecord.location_id)
        .where(ForwardRecord.status == "pending", ForwardRecord.next_attempt_at <= now)
        .where(ForwardLocation.paused.is_(False))
    )
    for location_id in due:
        ensure_dispatched(location_id)
    unreported = _location_ids(select(ForwardRecord.location_id).where(*gave_up_unreported()))
    emailed = sum(notify_failures(location_id) for location_id in unreported)
    db.session.commit()
    return {"reset": reset, "dispatched": len(due), "emailed": emailed}


def _location_ids(stmt) -> list[str]:
    return db.session.execute(stmt.distinct().execution_options(all_projects=True)).scalars().all()
