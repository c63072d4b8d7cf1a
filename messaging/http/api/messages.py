"""The message log and sending one SMS (gateways: ``gateways``; opt-outs: ``opt_outs``)."""

from flask import jsonify
from sqlalchemy import select

from messaging.db import tenancy
from messaging.extensions import db
from messaging.http.api import created, json_body, route
from messaging.http.api.errors import ApiError
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.pagination import paginate
from messaging.http.api.validation import arg_choice, arg_str, get_str, invalid
from messaging.http.lookup import get_or_404
from messaging.lib.segments import count_segments
from messaging.models import Case, Message
from messaging.models.sms import DIRECTIONS, STATUSES
from messaging.sms.e164 import E164
from messaging.sms.outbox import send_sms
from messaging.sms.queries import message_filters
from messaging.sms.serialize import message_json

MESSAGE = schema(
    "Message",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "direction": {"type": "string", "enum": list(DIRECTIONS)},
            "case_id": {"type": ["string", "null"]},
            "phone": {"type": "string", "description": "E.164"},
            "from": {"type": ["string", "null"]},
            "to": {"type": ["string", "null"]},
            "body": {"type": "string"},
            "segments": {"type": "integer"},
            "encoding": {"type": "string", "enum": ["GSM-7", "UCS-2"]},
            "status": {"type": "string", "enum": list(STATUSES)},
            "gateway_sid": {"type": ["string", "null"]},
            "error_code": {"type": ["string", "null"]},
            "error_message": {"type": ["string", "null"]},
            "skip_reason": {"type": ["string", "null"]},
            "broadcast_id": {"type": ["string", "null"]},
            "survey_session_id": {"type": ["string", "null"]},
            "auto_reply": {
                "type": "boolean",
                "description": "An automatic reply (default reply, keyword reply, confirmation)",
            },
            "author_id": {"type": ["integer", "null"], "description": "The web user who wrote the reply"},
            "attempts": {"type": "integer"},
            "created_at": {"type": "string"},
            "due_at": {"type": ["string", "null"]},
            "sent_at": {"type": ["string", "null"]},
            "delivered_at": {"type": ["string", "null"]},
            "failed_at": {"type": ["string", "null"]},
            "updated_at": {"type": "string"},
        },
    },
)


def _e164(phone: str) -> str:
    """``phone`` without its spaces, when that is an E.164 number (else 400 on the field ``phone``)."""
    phone = phone.replace(" ", "")
    if not E164.match(phone):
        raise invalid("phone", "must be an E.164 number like +254712345678.")
    return phone


@route(
    "/messages",
    summary="The message log, both directions, newest first",
    tag="messages",
    params=[
        {"name": "broadcast", "in": "query", "schema": {"type": "string"}},
        {"name": "case_id", "in": "query", "schema": {"type": "string"}},
        {"name": "direction", "in": "query", "schema": {"type": "string", "enum": list(DIRECTIONS)}},
        {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(STATUSES)}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 250}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
    ],
    responses={200: {"description": "OK", "schema": list_of(MESSAGE)}},
    errors=(400, 401),
)
def list_messages():
    stmt = message_filters(
        select(Message),
        status=arg_choice("status", STATUSES),
        direction=arg_choice("direction", DIRECTIONS),
        case_id=arg_str("case_id"),
        broadcast=arg_str("broadcast"),
    )
    return jsonify(paginate(stmt, [Message.id], message_json))


@route(
    "/messages/<message_id>",
    summary="One message",
    tag="messages",
    responses={200: {"description": "OK", "schema": MESSAGE}},
)
def get_message(message_id):
    return jsonify(message_json(get_or_404(Message, message_id)))


@route(
    "/messages",
    ["POST"],
    summary="Send one SMS (to a number or a case's number)",
    tag="messages",
    request_schema={
        "type": "object",
        "required": ["text"],
        "properties": {
            "phone": {"type": "string", "description": "E.164; or give case_id"},
            "case_id": {"type": "string"},
            "text": {"type": "string"},
        },
    },
    responses={201: {"description": "Queued (or failed with a skip_reason)", "schema": MESSAGE}},
    errors=(400, 401, 403, 404, 415, 422),
)
def send_message():
    body = json_body()
    text = get_str(body, "text", required=True, max_length=1600)
    case_ref = get_str(body, "case_id", max_length=64)
    phone = get_str(body, "phone", max_length=40)
    case = None
    if case_ref:
        case = get_or_404(Case, case_ref, Case.case_id)
        phone = phone or case.phone_number
        if not phone:
            raise ApiError(422, "no_phone_number", "This case has no valid phone number.")
    if not phone:
        raise invalid("phone", "is required (or give case_id).")
    message_id = send_sms(tenancy.current_project_id(), _e164(phone), text, case.id if case else None)
    db.session.commit()
    return created(message_json(get_or_404(Message, message_id)))


@route(
    "/messages/segments",
    ["POST"],
    summary="Count SMS segments and the encoding of a text",
    tag="messages",
    request_schema={"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
    responses={200: {"description": "OK"}},
    errors=(400, 401, 415),
    role="viewer",
)
def message_segments():
    body = json_body()
    info = count_segments(get_str(body, "text", required=True, max_length=10_000))
    return jsonify(
        {
            "encoding": info.encoding,
            "segments": info.segments,
            "characters": info.characters,
            "units": info.units,
        }
    )
