"""Conversations: a case manager's reply to a case, the case's thread read on from a message,
and canned replies.

- The token's web user is the reply's author. A reply to an opted-out number is
  422 ``opted_out`` unless ``confirm_opted_out`` is true; an empty or oversize
  text is 400; a case of another project (or deleted) is 404.
- ``GET /cases/<case_id>/messages?after=`` is the thread oldest first (the
  case's messages and its number's, both directions), read on from the last id
  a client has: ``next`` asks for the page after the last one returned.
"""

from flask import g, jsonify, request, url_for
from sqlalchemy import select

from messaging.conversations import canned, replies, thread
from messaging.conversations.serialize import canned_reply_json
from messaging.extensions import db
from messaging.http.api import created, json_body, route
from messaging.http.api.errors import ApiError
from messaging.http.api.messages import MESSAGE
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.pagination import paginate, read_limit
from messaging.http.api.validation import get_bool, invalid
from messaging.http.lookup import MAX_ID, get_or_404
from messaging.models import CannedReply, Case, Message
from messaging.sms.serialize import message_json

TAG = "conversations"

CANNED_REPLY = schema(
    "CannedReply",
    {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "body": {"type": "string"},
            "created_at": {"type": "string"},
        },
    },
)


def _text(body: dict, field: str) -> str | None:
    """The string ``field`` of the body as sent (or None); the domain checks its length."""
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise invalid(field, "must be a string.")
    return value


def _case(case_id: str) -> Case:
    case = get_or_404(Case, case_id, column=Case.case_id)
    if case.deleted:
        raise ApiError(404, "not_found", "This case has been deleted.")
    return case


@route(
    "/cases/<case_id>/messages",
    ["POST"],
    summary="A case manager's reply to the case's number, through the send pipeline",
    tag=TAG,
    request_schema={
        "type": "object",
        "required": ["text"],
        "properties": {
            "text": {"type": "string", "maxLength": replies.MAX_REPLY_CHARS},
            "confirm_opted_out": {
                "type": "boolean",
                "description": "send to an opted-out number as a one-off exception (recorded)",
            },
        },
    },
    responses={201: {"description": "Queued", "schema": MESSAGE}},
    errors=(400, 401, 403, 404, 415, 422),
)
def case_reply(case_id):
    case = _case(case_id)
    body = json_body()
    message_id = replies.send_reply(
        case.project_id,
        case,
        _text(body, "text"),
        author_id=g.api_user.id,
        confirm_opted_out=get_bool(body, "confirm_opted_out"),
    )
    db.session.commit()
    return created(message_json(get_or_404(Message, message_id)))


def _after() -> int:
    raw = request.args.get("after", "0")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_ID)) or int(raw) > MAX_ID:
        raise invalid("after", "must be a message id (a whole number).")
    return int(raw)


@route(
    "/cases/<case_id>/messages",
    summary="The case's conversation oldest first, both directions: what is newer than `after`",
    tag=TAG,
    params=[
        {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": thread.MAX_AFTER}},
    ],
    responses={200: {"description": "OK", "schema": list_of(MESSAGE)}},
)
def case_thread(case_id):
    case = _case(case_id)
    after, limit = _after(), read_limit()
    messages = thread.messages_after(case, after, limit + 1)
    next_url = None
    if len(messages) > limit:
        messages = messages[:limit]
        next_url = url_for(
            "api.case_thread", case_id=case.case_id, after=messages[-1].id, limit=limit, _external=True
        )
    return jsonify({"results": [message_json(m) for m in messages], "next": next_url})


@route(
    "/canned-replies",
    summary="Canned replies, newest first",
    tag=TAG,
    responses={200: {"description": "OK", "schema": list_of(CANNED_REPLY)}},
)
def canned_reply_list():
    stmt = select(CannedReply)
    return jsonify(paginate(stmt, [CannedReply.created_at, CannedReply.id], canned_reply_json))


@route(
    "/canned-replies",
    ["POST"],
    summary="Save a canned reply",
    tag=TAG,
    request_schema={
        "type": "object",
        "required": ["title", "body"],
        "properties": {
            "title": {"type": "string", "maxLength": canned.MAX_TITLE},
            "body": {"type": "string", "maxLength": canned.MAX_BODY},
        },
    },
    responses={201: {"description": "Created", "schema": CANNED_REPLY}},
    errors=(400, 401, 403, 409, 415),
)
def canned_reply_create():
    body = json_body()
    reply = canned.create_canned_reply(_text(body, "title"), _text(body, "body"))
    db.session.commit()
    return created(canned_reply_json(reply))


@route(
    "/canned-replies/<canned_reply_id>",
    ["DELETE"],
    summary="Delete a canned reply",
    tag=TAG,
    responses={204: {"description": "Deleted"}},
    errors=(401, 403, 404),
)
def canned_reply_delete(canned_reply_id):
    canned.delete_canned_reply(get_or_404(CannedReply, canned_reply_id))
    db.session.commit()
    return "", 204
