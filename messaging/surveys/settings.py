"""A project's inbound settings: its default reply, and the SMS survey actor's ids.

Rules:

- One row per project, created on first use; two requests creating it at once
  end with the same row.
- The default reply is sent to an inbound SMS nothing else handles; blank is
  none; at most 1600 characters (``Invalid("validation_error")`` on the field
  ``default_reply``).
- Services flush, never commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import InboundSettings
from messaging.surveys.definitions import invalid_field


def inbound_settings(project_id: int, create: bool = False) -> InboundSettings | None:
    row = db.session.execute(select(InboundSettings)).scalar_one_or_none()
    if row is None and create:
        try:
            with db.session.begin_nested():
                row = InboundSettings(project_id=project_id, updated_at=clock.now())
                db.session.add(row)
        except IntegrityError:
            row = db.session.execute(select(InboundSettings)).scalar_one()
    return row


def set_default_reply(project_id: int, text: str | None) -> InboundSettings:
    text = (text or "").strip() or None
    if text and len(text) > 1600:
        raise invalid_field("default_reply", "at most 1600 characters.")
    row = inbound_settings(project_id, create=True)
    row.default_reply = text
    row.updated_at = clock.now()
    db.session.flush()
    return row
