"""The JSON of this package's objects: one shape each, for the API, the messages export and the pages.

Rules:
- A message shows E.164 phones, ISO times with a Z, and its case's public
  ``case_id`` (never the internal key).
- A message waiting for the project's guards says why (``held_reason``: ``daily_limit``
  or ``sending_window``) and until when (``due_at``); a price is in ``price_unit``.
- A ``message.status`` event's data: the message id, its phone, the new status,
  and the gateway's id, error code and message when there are.
"""

from __future__ import annotations

from messaging.lib import clock
from messaging.models import Message


def message_json(message: Message) -> dict:
    """A message as the API shows it (E.164 phones, ISO Z times, the case's public case_id)."""
    return {
        "id": message.id,
        "direction": message.direction,
        "case_id": message.case.case_id if message.case is not None else None,
        "phone": message.phone,
        "from": message.from_number,
        "to": message.to_number,
        "body": message.body,
        "segments": message.segments,
        "encoding": message.encoding,
        "status": message.status,
        "gateway_sid": message.gateway_sid,
        "error_code": message.error_code,
        "error_message": message.error_message,
        "skip_reason": message.skip_reason,
        "held_reason": message.held_reason,
        "price": price_of(message.price_micros),
        "price_unit": message.price_unit,
        "broadcast_id": message.broadcast_id,
        "survey_session_id": message.survey_session_id,
        "auto_reply": message.auto_reply,
        "author_id": message.author_id,
        "attempts": message.attempts,
        "created_at": clock.isoformat(message.created_at),
        "due_at": clock.isoformat(message.due_at),
        "sent_at": clock.isoformat(message.sent_at),
        "delivered_at": clock.isoformat(message.delivered_at),
        "failed_at": clock.isoformat(message.failed_at),
        "updated_at": clock.isoformat(message.updated_at),
    }


def price_of(micros: int | None) -> float | None:
    """A price kept in millionths as the number the API shows (None stays None)."""
    return None if micros is None else round(micros / 1_000_000, 6)


def status_event_json(
    message_id: int,
    phone: str,
    status: str,
    *,
    gateway_sid: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> dict:
    """The data of a ``message.status`` event."""
    return {
        "message_id": message_id,
        "phone": phone,
        "status": status,
        "gateway_sid": gateway_sid,
        "error_code": error_code,
        "error_message": error_message,
    }
