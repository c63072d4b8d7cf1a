"""Resend and cancel by hand: a record, or every record of a location that gave up.

Rules:
- Resending a record sends it again now: a pending record waiting for its retry is
  tried now; a succeeded, failed or cancelled one starts a new series of attempts.
  Its sender is enqueued after the caller's commit. A record being sent right now
  cannot be resent (409, try again in a moment).
- Only a pending record can be cancelled (409 otherwise); a cancelled record is not
  sent and no longer blocks the later records of its keys.
- Each change is conditional on the status the caller saw, so a record that changed
  meanwhile is refused (409) rather than overwritten.
- A resent failed record is out of order by nature: the later records of its keys
  have gone out already.
- The caller owns the transaction: nothing here commits.
"""

from __future__ import annotations

import logging

from sqlalchemy import update

from messaging.db.after_commit import after_commit
from messaging.errors import Conflict
from messaging.extensions import db
from messaging.forwarding.dispatch import dispatch_location
from messaging.lib import clock
from messaging.models import ForwardLocation, ForwardRecord

log = logging.getLogger(__name__)


def resend_record(record: ForwardRecord) -> None:
    """Send a record again now (caller commits; its sender is enqueued after the commit).

    A pending record waiting for its retry is tried now; a succeeded, failed or
    cancelled one starts a new series of attempts. 409 while it is being sent."""
    now = clock.now()
    values = {"next_attempt_at": now}
    if record.status != "pending":
        values.update(status="pending", attempts=0, notified_at=None, succeeded_at=None, claim_token=None)
    if record.status == "sending":
        raise Conflict("record_sending", "This record is being sent right now; try again in a moment.")
    if not _conditional_update(record, values):
        raise Conflict("record_changed", "This record changed meanwhile; reload and try again.")
    after_commit(dispatch_location, record.location_id)
    log.info("forwarding record resent record_id=%s was=%s", record.id, record.status)


def cancel_record(record: ForwardRecord) -> None:
    """Stop a pending record from being sent (caller commits). 409 unless pending."""
    if record.status != "pending" or not _conditional_update(record, {"status": "cancelled"}):
        raise Conflict(
            "record_not_pending",
            f"Only a pending record can be cancelled; this one is {record.status}.",
            details={"status": record.status},
        )
    log.info("forwarding record cancelled record_id=%s", record.id)


def _conditional_update(record: ForwardRecord, values: dict) -> bool:
    result = db.session.execute(
        update(ForwardRecord)
        .where(ForwardRecord.id == record.id, ForwardRecord.status == record.status)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(record)
    return result.rowcount == 1


def resend_failed(location: ForwardLocation) -> int:
    """Put every given-up record of the location back in the queue (caller commits)."""
    result = db.session.execute(
        update(ForwardRecord)
        .where(ForwardRecord.location_id == location.id, ForwardRecord.status == "failed")
        .values(status="pending", attempts=0, next_attempt_at=clock.now(), notified_at=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        after_commit(dispatch_location, location.id)
    log.info("forwarding failed records resent location_id=%s count=%s", location.id, result.rowcount)
    return result.rowcount
