"""The inbox: inbound messages that need a person, listed by state and assignee, triaged.

Rules (the domain's are in ``messaging.conversations.inbox``):

- ``GET /inbox``: newest first, paginated; ``state`` is ``open``, ``handled`` or ``archived``
  (absent: every state); ``assignee`` is a web user's id, ``me`` (the token's user) or ``none``
  (unassigned; absent: anyone). Any other value is a 400 naming the field.
- ``PATCH /inbox/<id>`` ``{state?, assignee?}``: ``assignee`` is a web user's id, ``me`` or null
  (unassigns); an absent field is kept. A bad state or assignee is a 400 naming the field; an
  item of another project (or a message that is not an item) is a 404. Answers the item.
"""

from flask import abort, g, jsonify

from messaging.conversations import inbox
from messaging.conversations.serialize import inbox_item_json
from messaging.extensions import db
from messaging.http.api import json_body, route
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.pagination import PAGE_PARAMS, paginate_batched
from messaging.http.api.validation import arg_choice, arg_str, invalid
from messaging.http.lookup import parse_id
from messaging.models import Message

INBOX_ITEM = schema(
    "InboxItem",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "description": "the inbound message's id (as in /messages)"},
            "phone": {"type": "string", "description": "E.164"},
            "body": {"type": "string"},
            "received_at": {"type": "string"},
            "case": {
                "type": ["object", "null"],
                "properties": {"case_id": {"type": "string"}, "name": {"type": ["string", "null"]}},
            },
            "outcome": {
                "type": "string",
                "description": "how handling ended: unhandled, unknown_number, ...",
            },
            "state": {"type": "string", "enum": list(inbox.STATES)},
            "assignee": {
                "type": ["object", "null"],
                "properties": {
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "email": {"type": "string"},
                },
            },
            "changed_at": {"type": ["string", "null"]},
        },
    },
)


def _assignee_value(body: dict):
    """The PATCH body's ``assignee``: a user id, None (unassign) or ``UNCHANGED`` when absent."""
    if "assignee" not in body:
        return inbox.UNCHANGED
    value = body["assignee"]
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.strip().lower() == "me":
        return g.api_user.id
    raise invalid("assignee", 'must be a web user\'s id, "me" or null.')


@route(
    "/inbox",
    summary="Inbound messages that need a person, newest first",
    tag="conversations",
    params=[
        {
            "name": "state",
            "in": "query",
            "schema": {"type": "string", "enum": list(inbox.STATES)},
            "description": "absent: every state",
        },
        {
            "name": "assignee",
            "in": "query",
            "schema": {"type": "string"},
            "description": "a web user's id, me, or none (unassigned)",
        },
        *PAGE_PARAMS,
    ],
    responses={200: {"description": "OK", "schema": list_of(INBOX_ITEM)}},
    errors=(400, 401),
)
def list_inbox():
    state = arg_choice("state", inbox.STATES)
    assignee = inbox.read_assignee_filter(arg_str("assignee"), g.api_user.id)
    stmt = inbox.items_query(state=state, assignee=assignee)
    return jsonify(paginate_batched(stmt, [Message.id], inbox.details_of, inbox_item_json))


@route(
    "/inbox/<message_id>",
    ["PATCH"],
    summary="Mark an inbox item handled, archived or open again; assign it (null unassigns)",
    tag="conversations",
    request_schema={
        "type": "object",
        "properties": {
            "state": {"type": "string", "enum": list(inbox.STATES)},
            "assignee": {
                "type": ["integer", "string", "null"],
                "description": "a web user's id, me, or null",
            },
        },
    },
    responses={200: {"description": "OK", "schema": INBOX_ITEM}},
    errors=(400, 401, 403, 404, 415),
)
def change_inbox_item(message_id):
    item_id = parse_id(message_id)
    if item_id is None:
        abort(404)
    body = json_body()
    state = body.get("state")
    if state is not None and state not in inbox.STATES:
        raise invalid("state", f"must be one of {', '.join(inbox.STATES)}.")
    assignee_id = _assignee_value(body)
    inbox.change_item(item_id, state=state, assignee_id=assignee_id, by_user_id=g.api_user.id)
    db.session.commit()
    return jsonify(inbox_item_json(*inbox.get_item(item_id)))
