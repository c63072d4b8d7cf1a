"""The opt-outs page: the list with a search, export, import, a staff opt-out and undo, and one
number's consent history.

Rules (the domain's are in ``messaging.sms.optouts`` and ``messaging.sms.consent``):
- Anyone logged in reads the list, the history and the export; a manager opts
  a number out or undoes an opt-out, each with a reason (the staff method,
  with the user in the ledger), and imports a list.
- Numbers are read in the project's country (``0712 345 678`` in Kenya).
- A refused change keeps nothing and says why (``commit_or_flash``); every
  POST goes back to the list.
"""

import logging

from flask import Response, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from messaging.errors import Invalid
from messaging.extensions import db
from messaging.http.lookup import parse_id
from messaging.http.web import REFUSED, bp, commit_or_flash, require_role
from messaging.http.web.cases import start_upload
from messaging.imports import opt_outs as opt_out_import
from messaging.lib import clock
from messaging.lib.xlsx import XLSX_MIMETYPE
from messaging.models import OptOut, WebUser
from messaging.models.sms import OptOutSource
from messaging.sms import consent, optouts

log = logging.getLogger(__name__)

PAGE_SIZE = 100


def import_target_link(imp) -> tuple[str, str]:
    """Where an opt-out import's progress page links back to: this page."""
    return "Opt-outs", url_for("web.opt_outs")


opt_out_import.HANDLER.target_link = import_target_link


def _user_emails(user_ids) -> dict[int, str]:
    ids = {i for i in user_ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(WebUser.id, WebUser.email).where(WebUser.id.in_(ids))).all())


@bp.route("/opt-outs")
@login_required
def opt_outs():
    project_id = current_user.project_id
    raw_search = (request.args.get("phone") or "").strip()
    try:
        search = optouts.search_text(raw_search, g.project.default_country)
    except Invalid as refusal:
        flash(refusal.message, "error")
        search = None
    stmt = optouts.opt_outs_statement(project_id, search)
    before = parse_id(request.args.get("before"))
    if before:
        stmt = stmt.where(OptOut.id < before)
    rows = db.session.execute(stmt.order_by(OptOut.id.desc()).limit(PAGE_SIZE + 1)).scalars().all()
    older = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
    rows = rows[:PAGE_SIZE]
    events = consent.opting_out_events(project_id, [r.phone for r in rows])
    return render_template(
        "opt_outs/index.html",
        opt_outs=[(row, events.get(row.phone)) for row in rows],
        emails=_user_emails(e.web_user_id for e in events.values()),
        search=raw_search,
        older=older,
    )


@bp.route("/opt-outs", methods=["POST"])
@require_role("manager")
def staff_opt_out():
    project_id, region = current_user.project_id, g.project.default_country

    def change():
        phone = optouts.parse_number(request.form.get("phone"), region)
        reason = optouts.checked_reason(request.form.get("reason"))
        return phone, optouts.opt_out(
            project_id, phone, OptOutSource.STAFF, reason=reason, web_user_id=current_user.id
        )

    result = commit_or_flash(change)
    if result is not REFUSED:
        phone, new = result
        flash(f"{phone} is opted out." if new else f"{phone} had already opted out.", "success")
    return redirect(url_for("web.opt_outs"))


@bp.route("/opt-outs/undo", methods=["POST"])
@require_role("manager")
def undo_opt_out():
    project_id, region = current_user.project_id, g.project.default_country

    def change():
        phone = optouts.parse_number(request.form.get("phone"), region)
        optouts.undo_opt_out(
            project_id,
            phone,
            reason=request.form.get("reason"),
            source=OptOutSource.STAFF,
            web_user_id=current_user.id,
        )
        return phone

    phone = commit_or_flash(change)
    if phone is not REFUSED:
        flash(f"{phone} is opted back in.", "success")
    return redirect(url_for("web.opt_outs"))


@bp.route("/opt-outs/imports", methods=["POST"])
@require_role("manager")
def import_opt_outs():
    dry_run = bool(request.form.get("dry_run"))
    return start_upload(
        url_for("web.opt_outs"),
        lambda data, filename: opt_out_import.start_opt_out_import(
            data, filename, user_id=current_user.id, dry_run=dry_run
        ),
    )


@bp.route("/opt-outs/example.xlsx")
@login_required
def opt_out_import_example():
    return Response(
        opt_out_import.example_workbook(),
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="{opt_out_import.EXAMPLE_FILENAME}"'},
    )


@bp.route("/opt-outs/export.xlsx")
@login_required
def export_opt_outs():
    data = optouts.opt_outs_workbook(current_user.project_id)
    log.info("opt-outs exported user_id=%s", current_user.id)
    return Response(
        data,
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="opt-outs-{clock.now():%Y%m%d-%H%M}.xlsx"'},
    )


@bp.route("/opt-outs/history")
@login_required
def consent_history():
    project_id = current_user.project_id
    try:
        phone = optouts.parse_number(request.args.get("phone"), g.project.default_country)
    except Invalid as refusal:
        flash(refusal.message, "error")
        return redirect(url_for("web.opt_outs"))
    events = consent.history(project_id, phone)
    return render_template(
        "opt_outs/history.html",
        phone=phone,
        events=events,
        opted_out=optouts.is_opted_out(project_id, phone),
        emails=_user_emails(e.web_user_id for e in events),
    )
