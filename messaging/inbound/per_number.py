"""One number's inbound messages handled one at a time, oldest first, under the number's lock.

Rules:

- One number's messages are handled one at a time, oldest first (by message
  id), even with many workers: the job takes the number's Redis lock
  (:class:`~messaging.inbound.locks.NumberLock`); a job that finds it taken
  exits, since the holder drains every pending message of the number and, after
  releasing, looks once more (no lost wakeup).
- Each message starts from a fresh snapshot (rows committed since are seen), and
  the lock is extended before each.
- A message whose handling fails is rolled back, logged, and marked handled as
  ``unhandled`` ("error while handling; see the logs"), so the number's next
  messages go on.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from messaging.conversations.inbox import open_item
from messaging.db.tenancy import project_scope
from messaging.extensions import db
from messaging.inbound.handle import handle_inbound
from messaging.inbound.locks import NumberLock
from messaging.lib import clock
from messaging.lib.redact import mask_phone
from messaging.models import InboundMessage

log = logging.getLogger(__name__)


def handle_number(project_id: int, phone: str, job_id: str | None = None) -> int:
    """Handle the number's pending messages oldest first while holding its lock; returns how many."""
    handled = 0
    with project_scope(project_id):
        while True:
            lock = NumberLock(project_id, phone)
            if not lock.acquire():
                log.info(
                    "inbound number busy job_id=%s project_id=%s phone=%s",
                    job_id,
                    project_id,
                    mask_phone(phone),
                )
                return handled
            try:
                while True:
                    db.session.rollback()  # a fresh snapshot: see rows committed since
                    message_id = _next_pending(phone)
                    if message_id is None:
                        break
                    lock.extend()
                    _handle_safely(message_id, job_id)
                    handled += 1
            finally:
                lock.release()
            db.session.rollback()
            if _next_pending(phone) is None:  # nothing arrived while we released: done
                return handled


def _next_pending(phone: str) -> int | None:
    return db.session.execute(
        select(func.min(InboundMessage.message_id)).where(
            InboundMessage.phone == phone, InboundMessage.handled_at.is_(None)
        )
    ).scalar()


def _handle_safely(message_id: int, job_id: str | None) -> None:
    try:
        outcome = handle_inbound(message_id)
        log.info("inbound handled job_id=%s message_id=%s outcome=%s", job_id, message_id, outcome)
    except Exception:
        db.session.rollback()
        log.exception("inbound handling failed job_id=%s message_id=%s", job_id, message_id)
        row = db.session.get(InboundMessage, message_id)
        if row is not None and row.handled_at is None:
            row.handled_at = clock.now()
            row.outcome = "unhandled"
            row.detail = "error while handling; see the logs"
            open_item(message_id, reason="handling_error")  # a person must look at it
            db.session.commit()
