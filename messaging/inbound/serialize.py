"""THE JSON of a message in a conversation (the phone simulator's view of it).

Rules:

- A conversation message is its id, its direction (``inbound`` or
  ``outbound``), its body, its status and when it was created (ISO 8601 in UTC,
  as ``at``).
- A ``message.inbound`` event's data is the stored message: its id, the sender
  (E.164), the number it was sent to, its text, the gateway's id and when it was
  received.
"""

from __future__ import annotations

from messaging.lib import clock
from messaging.models import Message


def conversation_message_json(message: Message) -> dict:
    return {
        "id": message.id,
        "direction": message.direction,
        "body": message.body,
        "status": message.status,
        "at": clock.isoformat(message.created_at),
    }


def inbound_event_json(message_id: int, phone: str, to_number: str, body: str, sid: str, at) -> dict:
    """The data of a ``message.inbound`` event."""
    return {
        "message_id": message_id,
        "phone": phone,
        "to": to_number,
        "body": body,
        "gateway_sid": sid,
        "received_at": clock.isoformat(at),
    }
