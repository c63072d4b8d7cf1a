"""THE JSON of this package's objects: an inbox item and a canned reply, one shape each.

Rules:

- An item is its inbound message's ``id``, the sender's ``phone`` (E.164), the ``body``, when it
  was ``received_at`` (ISO 8601 in UTC with a Z), its ``case`` (the public ``case_id`` and the
  name, or null for an unknown number), the handling ``outcome``, its ``state``, its ``assignee``
  (id, name and e-mail, or null) and when its state or assignee last ``changed_at`` (null if never).
- A canned reply is its ``id``, ``title``, ``body`` and ``created_at``.
"""

from __future__ import annotations

from messaging.conversations.inbox import ItemDetails
from messaging.lib import clock
from messaging.models import CannedReply, Message


def inbox_item_json(message: Message, details: ItemDetails) -> dict:
    row, assignee, case = details.row, details.assignee, message.case
    return {
        "id": message.id,
        "phone": message.phone,
        "body": message.body,
        "received_at": clock.isoformat(row.received_at),
        "case": {"case_id": case.case_id, "name": case.name} if case is not None else None,
        "outcome": row.outcome,
        "state": row.inbox_state,
        "assignee": (
            {"id": assignee.id, "name": assignee.name, "email": assignee.email}
            if assignee is not None
            else None
        ),
        "changed_at": clock.isoformat(row.inbox_changed_at),
    }


def canned_reply_json(reply: CannedReply) -> dict:
    """THE JSON of a canned reply (the API's and the picker's)."""
    return {
        "id": reply.id,
        "title": reply.title,
        "body": reply.body,
        "created_at": clock.isoformat(reply.created_at),
    }
