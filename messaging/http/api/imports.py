"""Import status, per-row results and the .xlsx report."""

from flask import Response, jsonify, url_for

from messaging.http.api import created, route
from messaging.http.api.errors import ApiError
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.pagination import page_body, read_cursor, read_limit
from messaging.http.lookup import get_or_404
from messaging.imports.files import report_bytes
from messaging.imports.outcomes import outcome_page
from messaging.imports.serialize import import_json, row_json
from messaging.lib.xlsx import XLSX_MIMETYPE
from messaging.models import Import

IMPORT = schema(
    "Import",
    {
        "type": "object",
        "required": ["id", "status", "total", "processed", "counts", "report_url"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "dry_run": {"type": "boolean"},
            "filename": {"type": "string"},
            "target_id": {"type": ["string", "null"]},
            "total": {"type": ["integer", "null"]},
            "processed": {"type": "integer"},
            "percent": {"type": "integer"},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "error": {"type": ["object", "null"]},
            "report_url": {"type": ["string", "null"]},
            "status_url": {"type": "string"},
            "created_at": {"type": "string"},
            "finished_at": {"type": ["string", "null"]},
        },
    },
)
IMPORT_ROW = schema(
    "ImportRow",
    {
        "type": "object",
        "properties": {
            "row": {"type": "integer"},
            "identifier": {"type": ["string", "null"]},
            "result": {"type": "string"},
            "case_id": {"type": ["string", "null"]},
            "message": {"type": "string"},
        },
    },
)


def _import_json(imp: Import) -> dict:
    return import_json(
        imp,
        url_for("api.import_report", import_id=imp.id, _external=True),
        url_for("api.get_import", import_id=imp.id, _external=True),
    )


def accepted(imp: Import):
    """202 with the import, for the endpoints that start one."""
    response = created(_import_json(imp), status=202)
    response.headers["Location"] = url_for("api.get_import", import_id=imp.id, _external=True)
    return response


@route(
    "/imports/<import_id>",
    summary="Status, progress and counts of an import",
    tag="imports",
    responses={200: {"description": "OK", "schema": IMPORT}},
)
def get_import(import_id):
    return jsonify(_import_json(get_or_404(Import, import_id)))


@route(
    "/imports/<import_id>/rows",
    summary="One result per row of an import",
    tag="imports",
    responses={200: {"description": "OK", "schema": list_of(IMPORT_ROW)}},
)
def import_rows(import_id):
    imp = get_or_404(Import, import_id)
    limit = read_limit()
    after = read_cursor([int])
    rows = outcome_page(imp.id, after[0] if after else 0, limit + 1)
    next_key = [rows[limit - 1].row_number] if len(rows) > limit else None
    return jsonify(page_body([row_json(r) for r in rows[:limit]], next_key))


@route(
    "/imports/<import_id>/report.xlsx",
    summary="The per-row report as .xlsx",
    tag="imports",
    responses={
        200: {
            "description": "The report",
            "media": XLSX_MIMETYPE,
            "schema": {"type": "string", "format": "binary"},
        }
    },
    errors=(401, 404, 409),
)
def import_report(import_id):
    imp = get_or_404(Import, import_id)
    data = report_bytes(imp)
    if data is None:
        raise ApiError(
            409, "report_not_ready", "The report is ready when the import is done.", {"status": imp.status}
        )
    return Response(
        data,
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="import-{imp.id}-report.xlsx"'},
    )
