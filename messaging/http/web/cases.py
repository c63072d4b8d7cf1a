"""Cases in the web UI: the case list, a case's data page, a form's page, the id search
box and the bulk case upload page."""

import logging
from collections.abc import Callable

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select, tuple_

from messaging.cases import bulk_upload as bulk_cases
from messaging.cases import export as case_export
from messaging.cases import filters as case_filters
from messaging.cases.ownership import owner_names
from messaging.cases.queries import case_history, form_blocks, search_cases_stmt
from messaging.errors import DomainError
from messaging.extensions import db
from messaging.http.downloads import xlsx_download
from messaging.http.lookup import get_or_404, parse_id
from messaging.http.web import bp, flash_refusal, require_role
from messaging.http.web.criteria import CRITERIA_ROWS, criteria_from_form, op_choices
from messaging.imports.start import max_upload_bytes, start_import
from messaging.lib import clock
from messaging.lib.xlsx import XLSX_MIMETYPE
from messaging.models import Case, Form, Import, MobileWorker, UserGroup

log = logging.getLogger(__name__)

PAGE_SIZE = 50

# Other areas add sections to the case data page (its messages, its case groups):
# callables ``fn(case) -> (title, html)``; the html must be escaped/Markup already.
CASE_PAGE_SECTIONS: list = []


def _page(stmt, cursor_args):
    """Keyset pages of cases, most recently modified first."""
    before = request.args.get("before")
    if before:
        try:
            stamp, _, pk = before.rpartition("~")
            case_pk = parse_id(pk)
            if case_pk is None:
                raise ValueError(pk)
            stmt = stmt.where(tuple_(Case.modified_on, Case.id) < tuple_(clock.parse_iso(stamp), case_pk))
        except ValueError:
            abort(400)
    rows = (
        db.session.execute(stmt.order_by(Case.modified_on.desc(), Case.id.desc()).limit(PAGE_SIZE + 1))
        .scalars()
        .all()
    )
    next_url = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        last = rows[-1]
        next_url = url_for(
            request.endpoint,
            **(request.view_args or {}),
            **{**cursor_args, "before": f"{last.modified_on.isoformat()}~{last.id}"},
        )
    return rows, next_url


def _listed_cases():
    """The case list's select, its arguments (to keep across pages) and its criteria rows, from
    the query string; a malformed row is flashed and left out."""
    q = request.args.get("q", "").strip()
    case_type = request.args.get("case_type", "").strip()
    owner = request.args.get("owner", "").strip()
    status = request.args.get("status", "open")
    stmt = search_cases_stmt(q)
    if case_type:
        stmt = stmt.where(Case.case_type == case_type)
    if owner:
        stmt = stmt.where(Case.owner_id == owner)
    if status == "open":
        stmt = stmt.where(Case.closed.is_(False))
    elif status == "closed":
        stmt = stmt.where(Case.closed.is_(True))
    filters = {
        k: v for k, v in {"q": q, "case_type": case_type, "owner": owner, "status": status}.items() if v
    }
    criteria = criteria_from_form(request.args)
    try:
        for criterion in case_filters.parse_criteria(criteria):
            stmt = stmt.where(case_filters.criterion_clause(criterion))
    except DomainError as refusal:  # the list without the criteria, and why
        flash(refusal.message, "error")
        criteria = []
    filters.update({k: v for k, v in request.args.items() if k.startswith("criteria-") and v})
    return stmt, filters, criteria


@bp.route("/cases/export.xlsx")
@login_required
def export_cases():
    """The listed cases (all pages) as .xlsx with the bulk upload's columns."""
    stmt, _, _ = _listed_cases()
    return xlsx_download(lambda out: case_export.export_cases(stmt.whereclause, out), "cases")


@bp.route("/cases")
@login_required
def cases():
    stmt, filters, criteria = _listed_cases()
    rows, next_url = _page(stmt, filters)
    case_types = (
        db.session.execute(select(Case.case_type).distinct().order_by(Case.case_type)).scalars().all()
    )
    workers = db.session.execute(select(MobileWorker).order_by(MobileWorker.username)).scalars().all()
    groups = (
        db.session.execute(select(UserGroup).where(UserGroup.case_sharing.is_(True)).order_by(UserGroup.name))
        .scalars()
        .all()
    )
    return render_template(
        "cases/list.html",
        rows=rows,
        next_url=next_url,
        filters=filters,
        status=request.args.get("status", "open"),
        case_types=case_types,
        workers=workers,
        groups=groups,
        owners=owner_names(r.owner_id for r in rows),
        criteria=criteria,
        ops=op_choices(),
        criteria_rows=CRITERIA_ROWS,
    )


@bp.route("/cases/<case_id>")
@login_required
def case_detail(case_id):
    case = get_or_404(Case, case_id, column=Case.case_id)
    history = case_history(case)
    people = owner_names([case.owner_id, case.user_id, *(f.user_id for _, f in history)])
    sections = [fn(case) for fn in CASE_PAGE_SECTIONS]
    return render_template("cases/detail.html", case=case, history=history, people=people, sections=sections)


@bp.route("/forms/<form_id>")
@login_required
def form_detail(form_id):
    form = get_or_404(Form, form_id, column=Form.form_id)
    blocks = form_blocks(form)
    people = owner_names([form.user_id])
    return render_template("cases/form.html", form=form, blocks=blocks, people=people)


@bp.route("/search")
@login_required
def search():
    """The search box: any case or form by its id (or a case's external id)."""
    q = request.args.get("q", "").strip()
    if not q:
        return redirect(url_for("web.cases"))
    case = db.session.execute(select(Case.case_id).where(Case.case_id == q)).scalar()
    if case:
        return redirect(url_for("web.case_detail", case_id=case))
    form = db.session.execute(select(Form.form_id).where(Form.form_id == q)).scalar()
    if form:
        return redirect(url_for("web.form_detail", form_id=form))
    by_external = (
        db.session.execute(select(Case.case_id).where(Case.external_id == q).limit(2)).scalars().all()
    )
    if len(by_external) == 1:
        return redirect(url_for("web.case_detail", case_id=by_external[0]))
    flash(f"No case or form has the id '{q}'. Showing cases that match the text instead.", "info")
    return redirect(url_for("web.cases", q=q, status="all"))


# --- bulk case upload ---------------------------------------------------------------


@bp.route("/cases/import", methods=["GET", "POST"])
@require_role("manager")
def case_import():
    if request.method == "POST":
        dry_run = request.form.get("dry_run") == "on"
        return start_upload(
            url_for("web.case_import"),
            lambda data, filename: start_import(
                bulk_cases.HANDLER.kind, data, filename, dry_run=dry_run, user_id=current_user.id
            ),
        )
    return render_template(
        "cases/import.html", columns=bulk_cases.KNOWN_COLUMNS, max_rows=_max_rows(), max_mb=_max_mb()
    )


def start_upload(back_url: str, start: Callable[[bytes, str], Import]):
    """An upload form's POST (the bulk case upload, a case group's import): start the
    import with ``start(data, filename)`` and show its progress page, or go back to
    ``back_url`` saying why not."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose an .xlsx file to upload.", "error")
        return redirect(back_url)
    try:
        imp = start(upload.read(), upload.filename)  # commits the stored upload itself
    except DomainError as refusal:
        flash_refusal(refusal)
        return redirect(back_url)
    return redirect(url_for("web.import_page", import_id=imp.id))


def _max_rows() -> int:
    from flask import current_app

    return int(current_app.config.get("IMPORT_MAX_ROWS", 100_000))


def _max_mb() -> int:
    return max_upload_bytes() // (1024 * 1024)


@bp.route("/cases/import/example.xlsx")
@login_required
def case_import_example():
    return Response(
        bulk_cases.example_workbook(),
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": "attachment; filename=cases_upload_example.xlsx"},
    )
