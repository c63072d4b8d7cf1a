"""Forms and cases: ``POST /forms`` applies CommCare's owner rules (``messaging.cases.forms``).

Status codes of ``POST /api/v1/forms``: 201 for a new form; 200 with the same
body for a resubmitted ``form_id`` (nothing changes); 400 for a malformed form;
422 for a refusal by a rule (``case_sharing_no_group``,
``case_sharing_multiple_groups``, ``owner_not_allowed``, ``case_not_found``,
``unknown_application``, ``unknown_user``). A refused form writes nothing.
"""

import json

from flask import Response, g, jsonify, request
from sqlalchemy import select

from messaging.cases import bulk_upload as case_import
from messaging.cases import export as case_export
from messaging.cases import filters
from messaging.cases.forms import apply_form
from messaging.cases.ownership import user_case_list_stmt
from messaging.cases.queries import blocks_of_forms, phone_condition
from messaging.cases.serialize import case_json, form_json, form_result_json
from messaging.errors import field_error
from messaging.http.api import created, json_body, route
from messaging.http.api.errors import ApiError
from messaging.http.api.imports import IMPORT, accepted
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.pagination import paginate, paginate_batched
from messaging.http.api.validation import arg_flag, arg_time, form_flag
from messaging.http.downloads import xlsx_download
from messaging.http.lookup import get_or_404
from messaging.imports.start import start_import
from messaging.lib.xlsx import XLSX_MIMETYPE
from messaging.models import Case, Form, MobileWorker

# THE case JSON (messaging.cases.serialize.case_json); a case group member adds added_at.
CASE_PROPERTIES = {
    "case_id": {"type": "string"},
    "case_type": {"type": "string"},
    "name": {"type": "string"},
    "external_id": {"type": ["string", "null"]},
    "phone_number": {"type": ["string", "null"], "description": "E.164, or null when invalid"},
    "phone_raw": {"type": ["string", "null"], "description": "the number as it was given"},
    "phone_invalid": {"type": "boolean"},
    "language": {"type": ["string", "null"]},
    "owner_id": {"type": ["string", "null"]},
    "user_id": {"type": ["string", "null"], "description": "the last submitter"},
    "closed": {"type": "boolean"},
    "closed_on": {"type": ["string", "null"]},
    "deleted": {"type": "boolean"},
    "opened_on": {"type": "string"},
    "modified_on": {"type": "string"},
    "properties": {"type": "object"},
}
CASE = schema("Case", {"type": "object", "properties": CASE_PROPERTIES})
FORM_RESULT = schema(
    "FormResult",
    {
        "type": "object",
        "properties": {
            "form_id": {"type": "string"},
            "received_on": {"type": "string"},
            "case_ids": {"type": "array", "items": {"type": "string"}},
        },
    },
)
FORM = schema(
    "Form",
    {
        "type": "object",
        "properties": {
            "form_id": {"type": "string"},
            "app_id": {"type": ["string", "null"]},
            "user_id": {"type": ["string", "null"]},
            "received_on": {"type": "string"},
            "source": {"type": "string"},
            "xmlns": {"type": ["string", "null"]},
            "name": {"type": ["string", "null"]},
            "answers": {"type": "object"},
            "case_ids": {"type": "array", "items": {"type": "string"}},
            "cases": {"type": "array", "items": {"type": "object"}},
        },
    },
)
CASE_BLOCK = {
    "type": "object",
    "properties": {
        "case_id": {"type": "string", "description": "optional with create: the server makes one"},
        "create": {
            "type": "object",
            "required": ["case_type"],
            "properties": {
                "case_type": {"type": "string"},
                "case_name": {"type": "string"},
                "owner_id": {"type": "string"},
            },
        },
        "update": {
            "type": "object",
            "description": "external_id, phone_number, language, case_name, case_type and owner_id set "
            "those fields; any other key is a case property (null removes it)",
        },
        "close": {"type": "boolean"},
    },
}
FORM_BODY = {
    "type": "object",
    "required": ["app_id", "user_id"],
    "properties": {
        "form_id": {"type": "string", "description": "your id; the same form_id again changes nothing"},
        "app_id": {"type": "string"},
        "user_id": {"type": "string"},
        "answers": {"type": "object"},
        "cases": {"type": "array", "items": CASE_BLOCK},
        "xmlns": {
            "type": "string",
            "description": "CommCare's form identity (its XForm's xmlns); default one per application",
        },
        "name": {"type": "string", "description": "the form's name; default the application's"},
    },
}


@route(
    "/forms",
    ["POST"],
    summary="Apply a form (case blocks create, update and close cases). "
    "201 for a new form; 200 with the first result for a resubmitted form_id.",
    tag="cases",
    request_schema=FORM_BODY,
    responses={
        201: {"description": "Applied", "schema": FORM_RESULT},
        200: {"description": "Resubmission: the first result, nothing changed", "schema": FORM_RESULT},
    },
    errors=(400, 401, 403, 415, 422),
)
def submit_form():
    body = json_body()
    result = apply_form(body, source="api")
    return created(form_result_json(result), status=200 if result.duplicate else 201)


def where_args_equal(stmt, columns: dict):
    """``stmt`` narrowed to rows whose column equals each query argument of ``columns`` that is given."""
    for name, column in columns.items():
        if request.args.get(name):
            stmt = stmt.where(column == request.args[name])
    return stmt


@route(
    "/forms",
    summary="List forms, newest first (filters: user_id, app_id, received_since)",
    tag="cases",
    responses={200: {"description": "OK", "schema": list_of(FORM)}},
)
def list_forms():
    stmt = where_args_equal(select(Form), {"user_id": Form.user_id, "app_id": Form.app_id})
    received_since = arg_time("received_since")
    if received_since is not None:
        stmt = stmt.where(Form.received_on >= received_since)
    return jsonify(paginate_batched(stmt, [Form.received_on, Form.id], blocks_of_forms, form_json))


@route(
    "/forms/<form_id>",
    summary="Get a form with its case blocks",
    tag="cases",
    responses={200: {"description": "OK", "schema": FORM}},
)
def get_form(form_id):
    return jsonify(form_json(get_or_404(Form, form_id, column=Form.form_id)))


# The query arguments of ``GET /cases`` that match a column exactly.
CASE_COLUMN_FILTERS = {
    "case_type": Case.case_type,
    "owner_id": Case.owner_id,
    "user_id": Case.user_id,
    "external_id": Case.external_id,
}


def filter_cases(stmt):
    """Apply the list filters of ``GET /cases`` from the query string."""
    stmt = where_args_equal(stmt, CASE_COLUMN_FILTERS)
    modified_since = arg_time("modified_since")
    if modified_since is not None:
        stmt = stmt.where(Case.modified_on >= modified_since)
    closed = arg_flag("closed")
    if closed is not None:
        stmt = stmt.where(Case.closed.is_(closed))
    if request.args.get("phone_number"):
        stmt = stmt.where(phone_condition(request.args["phone_number"]))
    return stmt


CASE_FILTERS = [
    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}, "description": d}
    for n, d in [
        ("case_type", "exact case type"),
        ("owner_id", "owner (user or group id)"),
        ("user_id", "last submitter"),
        ("external_id", "exact external id"),
        ("phone_number", "any format; normalised with the project's country"),
        ("modified_since", "ISO 8601; cases modified at or after"),
        ("closed", "true or false"),
        ("limit", "page size, up to 250"),
        ("cursor", "from the previous page's next"),
    ]
]


@route(
    "/cases",
    summary="List cases, most recently modified first, with filters",
    tag="cases",
    params=CASE_FILTERS,
    responses={200: {"description": "OK", "schema": list_of(CASE)}},
)
def list_cases():
    stmt = filter_cases(select(Case).where(Case.deleted.is_(False)))
    return jsonify(paginate(stmt, [Case.modified_on, Case.id], case_json))


@route(
    "/cases/export.xlsx",
    summary="The cases (with the list's filters, and criteria=[{property, op, value}] as JSON) as .xlsx, "
    "one column per property: the columns the bulk case upload takes back",
    tag="cases",
    params=[
        *CASE_FILTERS[:-2],
        {"name": "criteria", "in": "query", "required": False, "schema": {"type": "string"}},
    ],
    responses={200: {"description": "The cases", "media": XLSX_MIMETYPE, "schema": {"type": "string"}}},
    errors=(400, 401),
)
def export_cases():
    chosen = filter_cases(select(Case.id).where(Case.deleted.is_(False)))
    for criterion in _criteria_arg():
        chosen = chosen.where(filters.criterion_clause(criterion))
    return xlsx_download(lambda out: case_export.export_cases(chosen.whereclause, out), "cases")


def _criteria_arg() -> list[dict]:
    raw = request.args.get("criteria")
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        raise field_error("criteria", "must be a JSON list.") from None
    return filters.parse_criteria(value, "criteria")


@route(
    "/cases/<case_id>",
    summary="Get a case",
    tag="cases",
    responses={200: {"description": "OK", "schema": CASE}},
)
def get_case(case_id):
    case = get_or_404(Case, case_id, column=Case.case_id)
    if case.deleted:
        raise ApiError(404, "not_found", "This case has been deleted.")
    return jsonify(case_json(case))


@route(
    "/users/<user_id>/cases",
    summary="The user's case list: open cases owned by the user or any of their case-sharing groups",
    tag="cases",
    params=CASE_FILTERS[:1] + CASE_FILTERS[-2:],
    responses={200: {"description": "OK", "schema": list_of(CASE)}},
)
def user_cases(user_id):
    user = get_or_404(MobileWorker, user_id)
    stmt = where_args_equal(user_case_list_stmt(user.id), {"case_type": Case.case_type})
    return jsonify(paginate(stmt, [Case.modified_on, Case.id], case_json))


@route(
    "/cases/imports",
    ["POST"],
    summary="Bulk case upload: an .xlsx whose rows create or update cases (by case_id or external_id). "
    "Runs as a job: 202 with the import; follow status_url.",
    tag="cases",
    request_schema={
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": ".xlsx"},
            "dry_run": {"type": "boolean", "description": "report what would happen, change nothing"},
        },
    },
    request_media="multipart/form-data",
    responses={202: {"description": "Queued", "schema": IMPORT}},
    errors=(400, 401, 403, 413, 415),
)
def import_cases():
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(
            400, "validation_error", "file: send the .xlsx as multipart field 'file'.", {"field": "file"}
        )
    imp = start_import(
        case_import.HANDLER.kind,
        upload.read(),
        upload.filename or "cases.xlsx",
        dry_run=form_flag("dry_run"),
        user_id=g.api_user.id,
    )
    return accepted(imp)


@route(
    "/cases/imports/example.xlsx",
    summary="An example bulk case upload file",
    tag="cases",
    responses={200: {"description": "The example", "schema": {"type": "string", "format": "binary"}}},
    errors=(401,),
)
def case_import_example():
    return Response(
        case_import.example_workbook(),
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": "attachment; filename=cases_upload_example.xlsx"},
    )
