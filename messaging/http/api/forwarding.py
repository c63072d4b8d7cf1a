"""Data forwarding: locations, their records (the outbox) and every attempt.

Header values whose name looks secret (contains auth, token, key, secret, pass,
cookie, signature, session or credential) are never returned in full: they show
as ``****`` followed by their last 4 characters when 16 or longer. Sending such a
masked value back unchanged in a PATCH keeps the stored value, except when the same PATCH
changes the URL's scheme, host or port: then the stored secret values are cleared unless
new ones are given (the answer's ``headers`` no longer list the cleared ones).

A URL whose host is, or resolves to, an internal address (loopback, link-local, private,
multicast, unspecified) is refused with 400 ``address_not_allowed`` unless the operator
allows it in ``OUTBOUND_ALLOW_HOSTS``.

Message event webhooks (``/webhooks``) are locations of kind ``events``: each names the
events it receives and gets ``{event, id, occurred_at, data}`` through the same outbox,
retries and failure e-mails; its records and attempts are read under ``/forwarding/<id>``.
"""

from flask import jsonify
from sqlalchemy import select

from messaging.extensions import db
from messaging.forwarding.locations import create_location, delete_location, status_counts, update_location
from messaging.forwarding.resend import cancel_record, resend_failed, resend_record
from messaging.forwarding.serialize import attempt_json, location_json, record_json
from messaging.http.api import created, json_body, route
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.pagination import PAGE_PARAMS, paginate, paginate_batched
from messaging.http.api.validation import arg_choice, arg_str, get_bool, invalid
from messaging.http.lookup import get_or_404, parse_id
from messaging.models import ForwardAttempt, ForwardLocation, ForwardRecord
from messaging.models.forwarding import EVENT_NAMES, FORWARD_KINDS, RECORD_STATUSES, ForwardKind

TAG = "forwarding"
# Refusals of a list filter (?status=, ?outcome=, ?record_id=) carry this code.
FILTER_ERROR = "invalid_filter"
OUTCOMES = ("failed", "succeeded")

KIND = {"type": "string", "enum": list(FORWARD_KINDS)}
EVENTS = {
    "type": ["array", "null"],
    "items": {"type": "string", "enum": list(EVENT_NAMES)},
    "description": "For kind 'events' (a webhook): the events it receives.",
}

STATUS_COUNTS = {
    "type": "object",
    "properties": {s: {"type": "integer"} for s in RECORD_STATUSES},
}
LOCATION = schema(
    "ForwardingLocation",
    {
        "type": "object",
        "required": ["id", "url", "kind", "headers", "notify_emails", "paused", "created_at", "counts"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "url": {"type": "string"},
            "kind": KIND,
            "format": {"type": "string", "enum": ["native", "commcare"]},
            "events": EVENTS,
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Extra request headers; values of secret-looking headers are masked.",
            },
            "notify_emails": {"type": "array", "items": {"type": "string"}},
            "paused": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "last_notified_at": {"type": ["string", "null"], "format": "date-time"},
            "counts": STATUS_COUNTS,
        },
    },
)
RECORD = schema(
    "ForwardingRecord",
    {
        "type": "object",
        "required": ["id", "location_id", "kind", "object_id", "status", "attempts"],
        "properties": {
            "id": {"type": "integer"},
            "location_id": {"type": "string"},
            "kind": KIND,
            "object_id": {"type": "string", "description": "form_id, case_id, or the event's object id"},
            "status": {"type": "string", "enum": list(RECORD_STATUSES)},
            "attempts": {"type": "integer"},
            "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            "last_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            "last_status_code": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "succeeded_at": {"type": ["string", "null"], "format": "date-time"},
            "notified_at": {"type": ["string", "null"], "format": "date-time"},
            "payload": {"type": "object", "description": "The JSON that is POSTed (single record only)."},
        },
    },
)
ATTEMPT = schema(
    "ForwardingAttempt",
    {
        "type": "object",
        "required": ["id", "record_id", "attempt", "started_at", "duration_ms", "status_code", "succeeded"],
        "properties": {
            "id": {"type": "integer"},
            "record_id": {"type": "integer"},
            "attempt": {"type": "integer"},
            "started_at": {"type": "string", "format": "date-time"},
            "duration_ms": {"type": "integer"},
            "status_code": {"type": ["integer", "null"]},
            "succeeded": {"type": "boolean"},
            "response_excerpt": {"type": "string", "description": "The first 500 characters of the answer."},
            "error": {"type": ["string", "null"]},
        },
    },
)
LOCATION_BODY = {
    "type": "object",
    "properties": {
        "url": {
            "type": "string",
            "format": "uri",
            "description": "http:// or https://; not an internal address (400 address_not_allowed) "
            "unless the operator allows it in OUTBOUND_ALLOW_HOSTS.",
        },
        "kind": KIND,
        "events": EVENTS,
        "name": {"type": "string"},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "A secret header's masked value sent back keeps the stored one, unless the "
            "URL's scheme, host or port changes in the same request: then the stored secrets are "
            "cleared unless new values are given.",
        },
        "notify_emails": {"type": "array", "items": {"type": "string", "format": "email"}},
        "paused": {"type": "boolean"},
        "format": {
            "type": "string",
            "enum": ["native", "commcare"],
            "default": "native",
            "description": "commcare: CommCare HQ's form and case JSON, with its received-on / "
            "server-modified-on headers and ?app_id= on forms (forms and cases locations)",
        },
    },
}


@route(
    "/forwarding",
    ["POST"],
    summary="Add a data forwarding location (forms or cases are POSTed to its URL as JSON)",
    tag=TAG,
    request_schema={**LOCATION_BODY, "required": ["url", "kind"]},
    responses={201: {"description": "Created", "schema": LOCATION}},
    errors=(400, 401, 403, 415),
)
def forwarding_create():
    body = json_body()
    location = create_location(
        body.get("url"),
        body.get("kind"),
        headers=body.get("headers"),
        notify_emails=body.get("notify_emails"),
        name=_name(body),
        paused=get_bool(body, "paused"),
        events=body.get("events"),
        format=body.get("format"),
    )
    db.session.commit()
    return created(location_json(location))


def _name(body: dict) -> str:
    name = body.get("name") or ""
    if not isinstance(name, str):
        raise invalid("name", "must be a string.")
    return name


@route(
    "/forwarding",
    summary="List the data forwarding locations, newest first",
    tag=TAG,
    responses={200: {"description": "OK", "schema": list_of(LOCATION)}},
    errors=(400, 401),
)
def forwarding_list():
    return jsonify(
        paginate_batched(
            select(ForwardLocation),
            [ForwardLocation.created_at, ForwardLocation.id],
            status_counts,
            location_json,
        )
    )


@route(
    "/forwarding/<forwarding_id>",
    summary="A data forwarding location with its record counts by status",
    tag=TAG,
    responses={200: {"description": "OK", "schema": LOCATION}},
    errors=(401, 404),
)
def forwarding_get(forwarding_id):
    return jsonify(location_json(get_or_404(ForwardLocation, forwarding_id)))


@route(
    "/forwarding/<forwarding_id>",
    ["PATCH"],
    summary="Change a location: url, name, headers, notify_emails; pause or resume with `paused`",
    tag=TAG,
    request_schema=LOCATION_BODY,
    responses={200: {"description": "OK", "schema": LOCATION}},
    errors=(400, 401, 403, 404, 415),
)
def forwarding_update(forwarding_id):
    location = get_or_404(ForwardLocation, forwarding_id)
    body = json_body()
    update_location(location, body)
    db.session.commit()
    return jsonify(location_json(location))


@route(
    "/forwarding/<forwarding_id>",
    ["DELETE"],
    summary="Delete a location with its records and attempts",
    tag=TAG,
    responses={204: {"description": "Deleted"}},
    errors=(401, 403, 404),
)
def forwarding_delete(forwarding_id):
    delete_location(get_or_404(ForwardLocation, forwarding_id))
    db.session.commit()
    return "", 204


@route(
    "/forwarding/<forwarding_id>/attempts",
    summary="A location's attempts, newest first (filter: outcome=failed or succeeded)",
    tag=TAG,
    params=[
        {
            "name": "outcome",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": list(OUTCOMES)},
        },
        {"name": "record_id", "in": "query", "required": False, "schema": {"type": "integer"}},
        *PAGE_PARAMS,
    ],
    responses={200: {"description": "OK", "schema": list_of(ATTEMPT)}},
    errors=(400, 401, 404),
)
def forwarding_attempts(forwarding_id):
    location = get_or_404(ForwardLocation, forwarding_id)
    stmt = select(ForwardAttempt).where(ForwardAttempt.location_id == location.id)
    outcome = arg_choice("outcome", OUTCOMES, code=FILTER_ERROR)
    if outcome is not None:
        stmt = stmt.where(ForwardAttempt.succeeded.is_(outcome == "succeeded"))
    record_id = arg_str("record_id")
    if record_id is not None:
        record_pk = parse_id(record_id)
        if record_pk is None:
            raise invalid("record_id", "must be a whole number.", FILTER_ERROR)
        stmt = stmt.where(ForwardAttempt.record_id == record_pk)
    return jsonify(paginate(stmt, [ForwardAttempt.id], attempt_json))


@route(
    "/forwarding/<forwarding_id>/records",
    summary="A location's records (forms or case changes to send), newest first (filter: status)",
    tag=TAG,
    params=[
        {
            "name": "status",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": list(RECORD_STATUSES)},
        },
        *PAGE_PARAMS,
    ],
    responses={200: {"description": "OK", "schema": list_of(RECORD)}},
    errors=(400, 401, 404),
)
def forwarding_records(forwarding_id):
    location = get_or_404(ForwardLocation, forwarding_id)
    stmt = select(ForwardRecord).where(ForwardRecord.location_id == location.id)
    status = arg_choice("status", RECORD_STATUSES, code=FILTER_ERROR)
    if status is not None:
        stmt = stmt.where(ForwardRecord.status == status)
    return jsonify(paginate(stmt, [ForwardRecord.id], record_json))


@route(
    "/forwarding/<forwarding_id>/resend-failed",
    ["POST"],
    summary="Send every record of the location that gave up again",
    tag=TAG,
    responses={
        200: {
            "description": "OK",
            "schema": {"type": "object", "properties": {"resent": {"type": "integer"}}},
        }
    },
    errors=(401, 403, 404),
)
def forwarding_resend_failed(forwarding_id):
    location = get_or_404(ForwardLocation, forwarding_id)
    count = resend_failed(location)
    db.session.commit()
    return jsonify({"resent": count})


@route(
    "/forwarding/records/<forward_record_id>",
    summary="One record with the JSON payload it sends",
    tag=TAG,
    responses={200: {"description": "OK", "schema": RECORD}},
    errors=(401, 404),
)
def forwarding_record_get(forward_record_id):
    return jsonify(record_json(get_or_404(ForwardRecord, forward_record_id), with_payload=True))


@route(
    "/forwarding/records/<forward_record_id>/resend",
    ["POST"],
    summary="Send a record again now (a pending one: without waiting for its retry)",
    tag=TAG,
    responses={200: {"description": "OK", "schema": RECORD}},
    errors=(401, 403, 404, 409),
)
def forwarding_record_resend(forward_record_id):
    record = get_or_404(ForwardRecord, forward_record_id)
    resend_record(record)
    db.session.commit()
    return jsonify(record_json(record))


@route(
    "/forwarding/records/<forward_record_id>/cancel",
    ["POST"],
    summary="Cancel a pending record (it will not be sent)",
    tag=TAG,
    responses={200: {"description": "OK", "schema": RECORD}},
    errors=(401, 403, 404, 409),
)
def forwarding_record_cancel(forward_record_id):
    record = get_or_404(ForwardRecord, forward_record_id)
    cancel_record(record)
    db.session.commit()
    return jsonify(record_json(record))


# --- message event webhooks -----------------------------------------------------------------------------

WEBHOOK_BODY = {
    "type": "object",
    "required": ["url", "events"],
    "properties": {k: v for k, v in LOCATION_BODY["properties"].items() if k != "kind"},
}


@route(
    "/webhooks",
    ["POST"],
    summary="Add a message event webhook (message.inbound, message.status, opt_out.changed, "
    "survey.completed), POSTed as {event, id, occurred_at, data}",
    tag=TAG,
    request_schema=WEBHOOK_BODY,
    responses={201: {"description": "Created", "schema": LOCATION}},
    errors=(400, 401, 403, 415),
)
def webhook_create():
    body = json_body()
    location = create_location(
        body.get("url"),
        ForwardKind.EVENTS.value,
        headers=body.get("headers"),
        notify_emails=body.get("notify_emails"),
        name=_name(body),
        paused=get_bool(body, "paused"),
        events=body.get("events"),
    )
    db.session.commit()
    return created(location_json(location))


@route(
    "/webhooks",
    summary="List the message event webhooks, newest first",
    tag=TAG,
    responses={200: {"description": "OK", "schema": list_of(LOCATION)}},
    errors=(400, 401),
)
def webhook_list():
    return jsonify(
        paginate_batched(
            select(ForwardLocation).where(ForwardLocation.kind == ForwardKind.EVENTS),
            [ForwardLocation.created_at, ForwardLocation.id],
            status_counts,
            location_json,
        )
    )
