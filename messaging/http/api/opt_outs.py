"""Opt-outs and the consent ledger: list and search, staff opt-out and undo, import, export, history.

Rules (the domain's are in ``messaging.sms.optouts`` and ``messaging.sms.consent``):
- A number in the body, the address or ``?phone=`` is read by
  ``optouts.parse_number`` with the project's country; anything else is a 400
  naming the field ``phone``.
- ``POST /opt-outs`` opts a number out with the method ``api``, the token's
  user and the optional ``reason``: 201 when new, 200 when it already was.
- ``DELETE /opt-outs/<phone>`` undoes an opt-out: 404 when the number has not
  opted out of this project (another project's number included), then 400
  naming ``reason`` without one.
- ``GET /consent/<phone>`` is the number's history, oldest first; 404 when this
  project has no record of the number.
- ``?phone=`` on the list searches by digits (a whole number, however spelled,
  finds that number).
"""

from flask import Response, g, jsonify, request

from messaging.db import tenancy
from messaging.errors import NotFound
from messaging.extensions import db
from messaging.http.api import created, json_body, route
from messaging.http.api.errors import ApiError
from messaging.http.api.imports import IMPORT, accepted
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.pagination import PAGE_PARAMS, paginate, paginate_batched
from messaging.http.api.validation import arg_str, form_flag, get_str
from messaging.imports import opt_outs as opt_out_import
from messaging.lib import clock
from messaging.lib.xlsx import XLSX_MIMETYPE
from messaging.models import ConsentEvent, OptOut, Project
from messaging.models.sms import CONSENT_CHANGES, OPT_OUT_SOURCES, OptOutSource
from messaging.sms import consent, optouts

OPT_OUT = schema(
    "OptOut",
    {
        "type": "object",
        "required": ["phone", "opted_out_at", "method"],
        "properties": {
            "phone": {"type": "string", "description": "E.164"},
            "opted_out_at": {"type": "string"},
            "method": {"type": "string", "enum": list(OPT_OUT_SOURCES)},
            "source": {"type": "string", "description": "the same as method (older clients read it)"},
            "word": {"type": ["string", "null"], "description": "the word the participant sent"},
            "language": {"type": ["string", "null"]},
            "reason": {"type": ["string", "null"]},
            "message_id": {
                "type": ["integer", "null"],
                "description": "the STOP message, or the message the gateway refused with 21610",
            },
            "web_user_id": {"type": ["integer", "null"]},
            "import_id": {"type": ["string", "null"]},
            "opted_out": {"type": "boolean"},
        },
    },
)
CONSENT_EVENT = schema(
    "ConsentEvent",
    {
        "type": "object",
        "required": ["id", "phone", "change", "method", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "phone": {"type": "string"},
            "change": {"type": "string", "enum": list(CONSENT_CHANGES)},
            "method": {"type": "string", "enum": list(OPT_OUT_SOURCES)},
            "word": {"type": ["string", "null"]},
            "language": {"type": ["string", "null"]},
            "reason": {"type": ["string", "null"]},
            "message_id": {"type": ["integer", "null"]},
            "web_user_id": {"type": ["integer", "null"]},
            "import_id": {"type": ["string", "null"]},
            "created_at": {"type": "string"},
        },
    },
)


def _project_id() -> int:
    return tenancy.current_project_id()


def _number(raw) -> str:
    """``raw`` as E.164 (the project's country for national spellings), else 400 on ``phone``."""
    return optouts.parse_number(raw, db.session.get(Project, _project_id()).default_country)


def _search_text() -> str | None:
    """``?phone=``: the number it spells, or digits to look for (else 400 on ``phone``)."""
    return optouts.search_text(arg_str("phone"), db.session.get(Project, _project_id()).default_country)


@route(
    "/opt-outs",
    summary="Numbers that opted out, newest first: when, how, and the message that proves it",
    tag="opt-outs",
    params=[
        {"name": "phone", "in": "query", "schema": {"type": "string"}, "description": "digits to search"},
        *PAGE_PARAMS,
    ],
    responses={200: {"description": "OK", "schema": list_of(OPT_OUT)}},
    errors=(400, 401),
)
def list_opt_outs():
    project_id = _project_id()
    stmt = optouts.opt_outs_statement(project_id, _search_text())

    def load(ids):
        rows = db.session.execute(optouts.opt_outs_statement(project_id).where(OptOut.id.in_(ids))).scalars()
        phones = {row.id: row.phone for row in rows}
        events = consent.opting_out_events(project_id, phones.values())
        return {opt_out_id: events.get(phone) for opt_out_id, phone in phones.items()}

    return jsonify(paginate_batched(stmt, [OptOut.id], load, consent.opt_out_json))


@route(
    "/opt-outs",
    ["POST"],
    summary="Opt a number out (method 'api', with the token's user and an optional reason)",
    tag="opt-outs",
    request_schema={
        "type": "object",
        "required": ["phone"],
        "properties": {"phone": {"type": "string"}, "reason": {"type": "string"}},
    },
    responses={
        201: {"description": "Opted out", "schema": OPT_OUT},
        200: {"description": "Already opted out", "schema": OPT_OUT},
    },
    errors=(400, 401, 403, 415),
)
def create_opt_out():
    body = json_body()
    phone = _number(get_str(body, "phone", required=True, max_length=40))
    reason = get_str(body, "reason", max_length=optouts.MAX_REASON)
    project_id = _project_id()
    new = optouts.opt_out(project_id, phone, OptOutSource.API, reason=reason, web_user_id=g.api_user.id)
    db.session.commit()
    row = db.session.execute(optouts.opt_outs_statement(project_id).where(OptOut.phone == phone)).scalar_one()
    data = consent.opt_out_json(row, consent.opting_out_events(project_id, [phone]).get(phone))
    return created({**data, "opted_out": True}, 201 if new else 200)


@route(
    "/opt-outs/<phone>",
    ["DELETE"],
    summary="Undo a number's opt-out, saying why",
    tag="opt-outs",
    request_schema={"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}},
    responses={200: {"description": "Opted back in", "schema": OPT_OUT}},
    errors=(400, 401, 403, 404, 415),
)
def delete_opt_out(phone):
    phone = _number(phone)
    body = json_body() if request.get_data() else {}
    optouts.undo_opt_out(
        _project_id(), phone, reason=body.get("reason"), source=OptOutSource.API, web_user_id=g.api_user.id
    )
    db.session.commit()
    return jsonify({"phone": phone, "opted_out": False})


@route(
    "/opt-outs/imports",
    ["POST"],
    summary="Opt out the numbers of an .xlsx with a phone_number column, in a background job",
    tag="opt-outs",
    request_media="multipart/form-data",
    request_schema={
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "dry_run": {"type": "boolean", "description": "Report what would happen; change nothing."},
        },
    },
    responses={202: {"description": "Queued", "schema": IMPORT}},
    errors=(400, 401, 403, 413, 415),
)
def import_opt_outs():
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(
            400, "file_required", "Send the .xlsx as a multipart form field named 'file'.", {"field": "file"}
        )
    imp = opt_out_import.start_opt_out_import(
        upload.read(),
        upload.filename or "upload.xlsx",
        user_id=g.api_user.id,
        dry_run=form_flag("dry_run"),
    )
    return accepted(imp)


@route(
    "/opt-outs/export.xlsx",
    summary="Every opted-out number as .xlsx (phone, opted out at, method, word, language, reason, message)",
    tag="opt-outs",
    responses={
        200: {
            "description": "The list",
            "media": XLSX_MIMETYPE,
            "schema": {"type": "string", "format": "binary"},
        }
    },
    errors=(401,),
)
def export_opt_outs():
    return Response(
        optouts.opt_outs_workbook(_project_id()),
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="opt-outs-{clock.now():%Y%m%d-%H%M}.xlsx"'},
    )


@route(
    "/consent/<phone>",
    summary="A number's consent history (append-only), oldest first",
    tag="opt-outs",
    params=PAGE_PARAMS,
    responses={
        200: {
            "description": "OK",
            "schema": {
                "type": "object",
                "required": ["phone", "opted_out", "results", "next"],
                "properties": {
                    "phone": {"type": "string"},
                    "opted_out": {"type": "boolean"},
                    "results": {"type": "array", "items": CONSENT_EVENT},
                    "next": {"type": ["string", "null"]},
                },
            },
        }
    },
)
def consent_history(phone):
    phone = _number(phone)
    project_id = _project_id()
    opted_out = optouts.is_opted_out(project_id, phone)
    if not opted_out and not consent.has_history(project_id, phone):
        raise NotFound("not_found", "This project has no consent record of this number.", field="phone")
    body = paginate(
        consent.history_statement(project_id, phone), [ConsentEvent.id], consent.event_json, descending=False
    )
    return jsonify({"phone": phone, "opted_out": opted_out, **body})
