"""The import progress page, its JSON status, and the report download."""

from flask import Response, abort, jsonify, render_template, url_for
from flask_login import login_required

from messaging.http.lookup import get_or_404
from messaging.http.web import bp
from messaging.imports.files import report_bytes
from messaging.imports.handlers import HANDLERS
from messaging.imports.outcomes import outcome_page
from messaging.imports.serialize import status_json
from messaging.lib.xlsx import XLSX_MIMETYPE
from messaging.models import Import

ROWS_SHOWN = 500


def web_status(imp: Import) -> dict:
    return status_json(imp, url_for("web.import_report", import_id=imp.id))


@bp.route("/imports/<import_id>")
@login_required
def import_page(import_id):
    imp = get_or_404(Import, import_id)
    rows = outcome_page(imp.id, limit=ROWS_SHOWN)
    handler = HANDLERS.get(imp.kind)
    return render_template(
        "imports/show.html",
        imp=imp,
        rows=rows,
        status=web_status(imp),
        handler=handler,
        rows_shown=ROWS_SHOWN,
    )


@bp.route("/imports/<import_id>/status.json")
@login_required
def import_status(import_id):
    return jsonify(web_status(get_or_404(Import, import_id)))


@bp.route("/imports/<import_id>/report.xlsx")
@login_required
def import_report(import_id):
    imp = get_or_404(Import, import_id)
    data = report_bytes(imp)
    if data is None:
        abort(404)
    return Response(
        data,
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="import-report-{imp.id[:8]}.xlsx"'},
    )
