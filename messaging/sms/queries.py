"""Reading the message log: the filters the API, the messages page and its export share.

Rules:
- The filters are validated by the caller (a status and a direction of the
  known ones); empty ones are not applied.
- ``case_id`` is the case's public id; a case that does not exist matches
  no message.
"""

from __future__ import annotations

from sqlalchemy import select

from messaging.models import Case, Message


def message_filters(stmt, *, status=None, direction=None, case_id=None, broadcast=None):
    """Apply the message-log filters (already validated) to an ORM select of Message."""
    if status:
        stmt = stmt.where(Message.status == status)
    if direction:
        stmt = stmt.where(Message.direction == direction)
    if broadcast:
        stmt = stmt.where(Message.broadcast_id == broadcast)
    if case_id:
        internal = select(Case.id).where(Case.case_id == case_id).scalar_subquery()
        stmt = stmt.where(Message.case_id == internal)
    return stmt
