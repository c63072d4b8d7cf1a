"""THE JSON of a message in a conversation (the phone simulator's view of it).

Rules:

- A conversation message is its id, its direction (``inbound`` or
  ``outbound``), its body, its status and when it was created (ISO 8601 in UTC,
  as ``at``).
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
