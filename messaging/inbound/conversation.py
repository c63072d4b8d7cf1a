"""A conversation: the messages of a phone or a case, both directions, oldest first.

Rules:

- With a case and a phone: every message of the case or of the phone; with one
  of them, its messages.
- Pages go forward by message id (``after_id``), at most ``limit`` at a time.
"""

from __future__ import annotations

from sqlalchemy import select

from messaging.extensions import db
from messaging.models import Message


def conversation(phone: str | None = None, case_pk: int | None = None, limit: int = 500, after_id: int = 0):
    """Messages of a phone or a case, both directions, oldest first."""
    stmt = select(Message).where(Message.id > after_id)
    if case_pk is not None and phone:
        stmt = stmt.where((Message.case_id == case_pk) | (Message.phone == phone))
    elif case_pk is not None:
        stmt = stmt.where(Message.case_id == case_pk)
    else:
        stmt = stmt.where(Message.phone == phone)
    return list(db.session.execute(stmt.order_by(Message.id).limit(limit)).scalars())
