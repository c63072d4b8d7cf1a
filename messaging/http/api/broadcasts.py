"""Broadcasts: preview, create (now, once or repeating), list, read, edit, delete, cancel.

The rules live in :mod:`messaging.broadcasts`; these views validate, call it,
commit and answer. A broadcast's body is the same for preview and create.
"""

from flask import g, jsonify

from messaging.broadcasts import manage, preview, reading, serialize, spec
from messaging.extensions import db
from messaging.http.api import created, json_body, route
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.pagination import key_kinds, page_body, read_cursor, read_limit
from messaging.http.api.validation import arg_choice
from messaging.http.lookup import get_or_404
from messaging.models import Broadcast, Project

_IDS = {"type": "array", "items": {"type": "string"}}
BODY = {
    "type": "object",
    "required": ["recipients"],
    "properties": {
        "name": {"type": "string", "maxLength": spec.MAX_NAME},
        "recipients": {
            "type": "object",
            "properties": {
                "case_groups": _IDS,
                "cases": _IDS,
                "users": _IDS,
                "groups": _IDS,
                "non_responders": {
                    **_IDS,
                    "description": "broadcast ids: the cases that did not finish their survey "
                    "or whose message failed",
                },
                "filter": {
                    "type": "object",
                    "description": "the open cases of case_type meeting every criterion "
                    "({property, op: eq|ne|in|exists|missing|gt|lt, value}), chosen at each send",
                    "properties": {
                        "case_type": {"type": "string"},
                        "criteria": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
        "text": {"type": "string", "description": "SMS text with placeholders such as {case.name}"},
        "translations": {"type": "object", "additionalProperties": {"type": "string"}},
        "default_language": {"type": "string"},
        "survey_id": {"type": "string"},
        "send_at": {"type": "string", "description": "ISO 8601; sends once then (omit to send now)"},
        "repeat": {
            "type": "object",
            "description": "kind once/daily/weekly/monthly, time HH:MM, start_date, days_of_week [0=Mon..6], "
            "day_of_month, end_date, timezone (default: the project's)",
        },
        "quiet_hours": {
            "type": "object",
            "description": "send only between start and end, local time of each recipient",
            "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
        },
    },
}
PREVIEW = schema(
    "BroadcastPreview",
    {
        "type": "object",
        "required": ["recipients", "will_send", "skipped", "segments", "estimated_seconds"],
        "properties": {
            "recipients": {"type": "integer"},
            "will_send": {"type": "integer"},
            "skipped": {"type": "object", "additionalProperties": {"type": "integer"}},
            "segments": {"type": "integer"},
            "total_segments": {"type": "integer"},
            "missing_placeholders": {"type": "object", "additionalProperties": {"type": "integer"}},
            "estimated_seconds": {"type": ["number", "null"]},
            "encoding_hints": {
                "type": "array",
                "description": "each UCS-2 text (or translation): language, ucs2_characters, segments, "
                "gsm7_spelling and gsm7_segments (null when it has none), still_ucs2",
                "items": {"type": "object"},
            },
        },
    },
)
BROADCAST = schema(
    "Broadcast",
    {
        "type": "object",
        "required": ["id", "name", "status"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": list(reading.STATUSES)},
            "next_fire_at": {"type": ["string", "null"]},
            "percent": {"type": "integer"},
            "counts": {"type": "object"},
            "firings": {"type": "array", "items": {"type": "object"}},
        },
    },
)


def _project() -> Project:
    return db.session.get(Project, g.api_user.project_id)


@route(
    "/broadcasts/preview",
    ["POST"],
    summary="What a broadcast would do now: recipients, skipped by reason, segments, time needed",
    tag="broadcasts",
    request_schema=BODY,
    responses={200: {"description": "OK", "schema": PREVIEW}},
    errors=(400, 401, 403, 404, 415),
)
def preview_broadcast():
    return jsonify(preview.preview_broadcast(_project(), json_body()))


@route(
    "/broadcasts",
    ["POST"],
    summary="Create a broadcast: sends now unless send_at or repeat is given",
    tag="broadcasts",
    request_schema={**BODY, "required": ["name", "recipients"]},
    responses={201: {"description": "Created", "schema": BROADCAST}},
    errors=(400, 401, 403, 404, 415),
)
def create_broadcast():
    b = manage.create_broadcast(_project(), json_body(), user_id=g.api_user.id)
    db.session.commit()
    return created(serialize.broadcast_json(b))


@route(
    "/broadcasts",
    summary="Broadcasts, newest first; ?status=scheduled|sending|sent|cancelled",
    tag="broadcasts",
    params=[{"name": "status", "in": "query", "schema": {"type": "string"}}],
    responses={200: {"description": "OK", "schema": list_of(BROADCAST)}},
    errors=(400, 401),
)
def list_broadcasts():
    status = arg_choice("status", reading.STATUSES)
    after = read_cursor(key_kinds([Broadcast.created_at, Broadcast.id]))
    items, next_key = reading.page_broadcasts(status, tuple(after) if after else None, read_limit())
    return jsonify(
        page_body([serialize.broadcast_json(b, with_firings=False, status=s) for b, s in items], next_key)
    )


@route(
    "/broadcasts/<broadcast_id>",
    summary="A broadcast with each firing's counts by message status and skip reason",
    tag="broadcasts",
    responses={200: {"description": "OK", "schema": BROADCAST}},
)
def get_broadcast(broadcast_id):
    return jsonify(serialize.broadcast_json(get_or_404(Broadcast, broadcast_id)))


@route(
    "/broadcasts/<broadcast_id>",
    ["PATCH"],
    summary="Edit a scheduled broadcast (fields as for create; missing ones are kept)",
    tag="broadcasts",
    request_schema=BODY | {"required": []},
    responses={200: {"description": "OK", "schema": BROADCAST}},
    errors=(400, 401, 403, 404, 409, 415),
)
def edit_broadcast(broadcast_id):
    b = get_or_404(Broadcast, broadcast_id)
    manage.update_broadcast(_project(), b, json_body())
    db.session.commit()
    return jsonify(serialize.broadcast_json(b))


@route(
    "/broadcasts/<broadcast_id>",
    ["DELETE"],
    summary="Delete a broadcast that has not fired yet (else 409: cancel it)",
    tag="broadcasts",
    responses={204: {"description": "Deleted"}},
    errors=(401, 403, 404, 409),
)
def delete_broadcast(broadcast_id):
    manage.delete_broadcast(get_or_404(Broadcast, broadcast_id))
    db.session.commit()
    return "", 204


@route(
    "/broadcasts/<broadcast_id>/cancel",
    ["POST"],
    summary="Cancel: no more firings, and messages not yet at the gateway are not sent",
    tag="broadcasts",
    responses={200: {"description": "OK", "schema": BROADCAST}},
    errors=(401, 403, 404),
)
def cancel_broadcast(broadcast_id):
    b = get_or_404(Broadcast, broadcast_id)
    manage.cancel_broadcast(b)
    db.session.commit()
    return jsonify(serialize.broadcast_json(b))
