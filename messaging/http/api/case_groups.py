"""Case groups: create, rename, delete, members, add by identifier, Excel import.

Single adds answer by result: 201 ``added``, 200 ``already_member``, 404
``not_found``, 409 ``ambiguous`` (``details.case_ids`` and
``details.candidates``), 422 ``case_closed`` / ``case_deleted``, 400
``invalid_identifier``. Imports answer 202 with the import; its counts use the
per-row results of :mod:`messaging.case_groups.results` (a dry run reports
``would_add`` where the real run would say ``added``).
"""

from flask import Response, g, jsonify, request
from sqlalchemy import select

from messaging.case_groups import groups, members, results
from messaging.case_groups.adding import add_by_identifier
from messaging.case_groups.serialize import candidates_json, group_json, member_json
from messaging.case_groups.upload import EXAMPLE_FILENAME, example_workbook, start_group_import
from messaging.cases import export as case_export
from messaging.cases.serialize import case_json
from messaging.extensions import db
from messaging.http.api import created, json_body, route
from messaging.http.api.cases import CASE_PROPERTIES
from messaging.http.api.errors import ApiError
from messaging.http.api.imports import IMPORT, accepted
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.pagination import paginate, paginate_batched
from messaging.http.api.validation import form_flag, get_str, invalid
from messaging.http.downloads import xlsx_download
from messaging.http.lookup import get_or_404
from messaging.lib.xlsx import XLSX_MIMETYPE
from messaging.models import Case, CaseGroup

# How the API answers each result of a single add: (status, error code or None).
API_STATUS = {
    results.ADDED: (201, None),
    results.ALREADY_MEMBER: (200, None),
    results.NOT_FOUND: (404, "not_found"),
    results.AMBIGUOUS: (409, "ambiguous"),
    results.CLOSED: (422, "case_closed"),
    results.DELETED: (422, "case_deleted"),
    results.INVALID: (400, "invalid_identifier"),
}

GROUP = schema(
    "CaseGroup",
    {
        "type": "object",
        "required": ["id", "name", "member_count"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "member_count": {"type": "integer"},
            "filter": {
                "type": ["object", "null"],
                "description": "a dynamic group's {case_type, criteria}: its cases are the open cases "
                "it chooses now; null for a group of cases added by hand",
            },
            "created_at": {"type": "string"},
            "modified_at": {"type": "string"},
        },
    },
)
MEMBER = schema(
    "CaseGroupMember",
    {
        "type": "object",
        "description": "A case (as in GET /cases/<case_id>) with the time it was added to the group "
        "(null in a dynamic group: nobody added it).",
        "properties": {**CASE_PROPERTIES, "added_at": {"type": ["string", "null"]}},
    },
)
ADD_RESULT = schema(
    "CaseGroupAddResult",
    {
        "type": "object",
        "properties": {
            "result": {"type": "string", "enum": ["added", "already_member"]},
            "message": {"type": "string"},
            "case": {"$ref": "#/components/schemas/Case"},
        },
    },
)
NAME_BODY = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "maxLength": groups.MAX_NAME}},
}


def _group_body(group: CaseGroup) -> dict:
    """One group's JSON, with its member count."""
    return group_json(group, groups.member_counts([group.id])[group.id])


@route(
    "/case-groups/example.xlsx",
    summary="The example upload cases_bulk_example.xlsx (column case_identifier)",
    tag="case groups",
    responses={
        200: {"description": "The example file", "media": XLSX_MIMETYPE, "schema": {"type": "string"}}
    },
    errors=(401,),
)
def case_group_example():
    return Response(
        example_workbook(),
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="{EXAMPLE_FILENAME}"'},
    )


@route(
    "/case-groups",
    ["POST"],
    summary="Create a case group (a duplicate name, in any case, is 409); with a filter "
    "{case_type, criteria}, a dynamic one",
    tag="case groups",
    request_schema={
        **NAME_BODY,
        "properties": {
            **NAME_BODY["properties"],
            "filter": {"type": "object", "description": "{case_type, criteria} (the alert rules' criteria)"},
        },
    },
    responses={201: {"description": "Created", "schema": GROUP}},
    errors=(400, 401, 403, 409, 415),
)
def create_case_group():
    body = json_body()
    group = groups.create_group(
        get_str(body, "name", required=True, max_length=groups.MAX_NAME),
        user_id=g.api_user.id,
        case_filter=body.get("filter"),
    )
    db.session.commit()
    return created(_group_body(group))


@route(
    "/case-groups",
    summary="List case groups with their member counts (newest first)",
    tag="case groups",
    responses={200: {"description": "OK", "schema": list_of(GROUP)}},
)
def list_case_groups():
    return jsonify(
        paginate_batched(
            select(CaseGroup), [CaseGroup.created_at, CaseGroup.id], groups.member_counts, group_json
        )
    )


@route(
    "/case-groups/<case_group_id>",
    summary="Get a case group",
    tag="case groups",
    responses={200: {"description": "OK", "schema": GROUP}},
)
def get_case_group(case_group_id):
    group = get_or_404(CaseGroup, case_group_id)
    return jsonify(_group_body(group))


@route(
    "/case-groups/<case_group_id>",
    ["PATCH"],
    summary="Rename a case group",
    tag="case groups",
    request_schema=NAME_BODY,
    responses={200: {"description": "OK", "schema": GROUP}},
    errors=(400, 401, 403, 404, 409, 415),
)
def rename_case_group(case_group_id):
    group = get_or_404(CaseGroup, case_group_id)
    body = json_body()
    groups.rename_group(group, get_str(body, "name", required=True, max_length=groups.MAX_NAME))
    db.session.commit()
    return jsonify(_group_body(group))


@route(
    "/case-groups/<case_group_id>",
    ["DELETE"],
    summary="Delete a case group (its cases stay)",
    tag="case groups",
    responses={204: {"description": "Deleted"}},
    errors=(401, 403, 404),
)
def delete_case_group(case_group_id):
    group = get_or_404(CaseGroup, case_group_id)
    groups.delete_group(group)
    db.session.commit()
    return Response(status=204)


@route(
    "/case-groups/<case_group_id>/export.xlsx",
    summary="The group's cases as .xlsx, one column per property: the columns the bulk case upload "
    "takes back",
    tag="case groups",
    responses={200: {"description": "The cases", "media": XLSX_MIMETYPE, "schema": {"type": "string"}}},
    errors=(401, 404),
)
def export_case_group(case_group_id):
    group = get_or_404(CaseGroup, case_group_id)
    return xlsx_download(
        lambda out: case_export.export_cases(members.member_condition(group), out), "case-group"
    )


@route(
    "/case-groups/<case_group_id>/cases",
    summary="The group's cases, newest added first (a dynamic group's: the cases it chooses now); "
    "?q= searches name, phone, external ID, case ID",
    tag="case groups",
    params=[{"name": "q", "in": "query", "required": False, "schema": {"type": "string"}}],
    responses={200: {"description": "OK", "schema": list_of(MEMBER)}},
)
def list_case_group_cases(case_group_id):
    group = get_or_404(CaseGroup, case_group_id)
    stmt, key, as_member = members.member_listing(group, request.args.get("q"))
    return jsonify(paginate(stmt, key, lambda row: member_json(as_member(row))))


@route(
    "/case-groups/<case_group_id>/cases",
    ["POST"],
    summary="Add a case by phone number, external ID or case ID",
    tag="case groups",
    request_schema={
        "type": "object",
        "properties": {
            "identifier": {
                "type": "string",
                "description": "A phone number (any common spelling), an external ID or a case ID.",
            },
            "case_id": {"type": "string", "description": "Instead of identifier: match the case ID only."},
        },
    },
    responses={
        201: {"description": "Added", "schema": ADD_RESULT},
        200: {"description": "Already in the group", "schema": ADD_RESULT},
    },
    errors=(400, 401, 403, 404, 409, 415, 422),
)
def add_case_group_case(case_group_id):
    group = get_or_404(CaseGroup, case_group_id)
    body = json_body()
    if body.get("case_id") is not None:
        identifier, by = get_str(body, "case_id", required=True), "case_id"
    else:
        identifier, by = body.get("identifier"), "any"
        if identifier is None:
            raise invalid("identifier", "is required (a phone number, external ID or case ID).")
        if not isinstance(identifier, str | int) or isinstance(identifier, bool):
            raise invalid("identifier", "must be a string.")
    outcome = add_by_identifier(group, identifier, by=by, user_id=g.api_user.id)
    status, code = API_STATUS[outcome.result]
    if code is not None:
        details = {"identifier": outcome.identifier, "result": outcome.result}
        if outcome.result == results.AMBIGUOUS:
            details["case_ids"] = [c.case_id for c, _ in outcome.candidates]
            details["candidates"] = candidates_json(outcome)
            details["candidate_count"] = outcome.candidate_count
        if outcome.case is not None:
            details["case_id"] = outcome.case.case_id
        raise ApiError(status, code, outcome.message, details)
    db.session.commit()
    case = db.session.get(Case, outcome.case.pk)
    return created(
        {"result": outcome.result, "message": outcome.message, "case": case_json(case)}, status=status
    )


@route(
    "/case-groups/<case_group_id>/cases/<case_id>",
    ["DELETE"],
    summary="Remove a case from the group (the case stays)",
    tag="case groups",
    responses={204: {"description": "Removed"}},
    errors=(401, 403, 404),
)
def remove_case_group_case(case_group_id, case_id):
    group = get_or_404(CaseGroup, case_group_id)
    if not members.remove_case(group, case_id):
        raise ApiError(404, "not_member", "This case is not in the group.", {"case_id": case_id})
    db.session.commit()
    return Response(status=204)


@route(
    "/case-groups/<case_group_id>/imports",
    ["POST"],
    summary="Add cases from an .xlsx with a case_identifier column, in a background job",
    tag="case groups",
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
    errors=(400, 401, 403, 404, 413, 415),
)
def import_case_group_cases(case_group_id):
    group = get_or_404(CaseGroup, case_group_id)
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(
            400,
            "file_required",
            "Send the .xlsx as a multipart form field named 'file'.",
            {"field": "file"},
        )
    dry_run = form_flag("dry_run")
    imp = start_group_import(
        group, upload.read(), upload.filename or "upload.xlsx", dry_run=dry_run, user_id=g.api_user.id
    )
    return accepted(imp)
