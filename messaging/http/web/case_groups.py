"""Case group pages: the list, one group's members, add by identifier, Excel upload."""

import logging

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from sqlalchemy import select

from messaging.case_groups import groups, members, results
from messaging.case_groups import upload as group_import
from messaging.case_groups.adding import add_by_identifier
from messaging.case_groups.resolve import resolve_identifiers
from messaging.cases import export as case_export
from messaging.cases import filters
from messaging.errors import DomainError
from messaging.extensions import db
from messaging.http.downloads import xlsx_download
from messaging.http.lookup import get_or_404
from messaging.http.web import REFUSED, bp, commit_or_flash, require_role
from messaging.http.web.cases import start_upload
from messaging.http.web.criteria import criteria_from_form
from messaging.lib.xlsx import XLSX_MIMETYPE
from messaging.models import CaseGroup, Import

log = logging.getLogger(__name__)

RECENT_IMPORTS = 5


def import_target_link(imp) -> tuple[str, str] | None:
    """Where an import's progress page links back to: its group's page."""
    group = group_import.import_group(imp)
    if group is None:
        return None
    return f"Back to {group.name}", url_for("web.case_group", case_group_id=group.id)


group_import.HANDLER.target_link = import_target_link


# The navigation bar links to the endpoint "web.case_groups".
@bp.route("/case-groups", endpoint="case_groups")
@login_required
def list_page():
    return render_template("case_groups/index.html", groups=groups.list_groups())


@bp.route("/case-groups", methods=["POST"])
@require_role("manager")
def create_case_group():
    group = commit_or_flash(
        lambda: groups.create_group(request.form.get("name", ""), user_id=current_user.id)
    )
    if group is REFUSED:
        return redirect(url_for("web.case_groups"))
    flash(gettext("Case group '%(name)s' created. Add cases to it below.", name=group.name), "success")
    return redirect(url_for("web.case_group", case_group_id=group.id))


@bp.route("/case-groups/dynamic", methods=["POST"])
@require_role("manager")
def create_dynamic_case_group():
    """A dynamic group from the case list's case type and property rows (its filter)."""
    case_filter = {
        "case_type": request.form.get("case_type", ""),
        "criteria": criteria_from_form(request.form),
    }
    group = commit_or_flash(
        lambda: groups.create_group(
            request.form.get("name", ""), user_id=current_user.id, case_filter=case_filter
        )
    )
    if group is REFUSED:
        return redirect(request.referrer or url_for("web.cases"))
    flash(gettext("Dynamic case group '%(name)s' created.", name=group.name), "success")
    return redirect(url_for("web.case_group", case_group_id=group.id))


@bp.route("/case-groups/<case_group_id>/export.xlsx")
@login_required
def export_case_group(case_group_id):
    """The group's cases as .xlsx with the bulk case upload's columns (edit, upload again)."""
    group = get_or_404(CaseGroup, case_group_id)
    condition = members.member_condition(group)
    return xlsx_download(lambda out: case_export.export_cases(condition, out), "case-group")


@bp.route("/case-groups/example.xlsx")
@login_required
def case_group_example():
    return Response(
        group_import.example_workbook(),
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="{group_import.EXAMPLE_FILENAME}"'},
    )


@bp.route("/case-groups/<case_group_id>")
@login_required
def case_group(case_group_id):
    group = get_or_404(CaseGroup, case_group_id)
    q = (request.args.get("q") or "").strip()
    from messaging.http.api.pagination import paginate

    try:
        stmt, key, as_member = members.member_listing(group, q)
        page = paginate(stmt, key, as_member)
    except DomainError:
        flash("That page link is no longer valid; showing the first page.", "warning")
        return redirect(url_for("web.case_group", case_group_id=group.id, q=q or None))
    pick = (request.args.get("pick") or "").strip()
    candidates = None
    if pick:
        resolution = resolve_identifiers(groups.group_project(group), [pick])[pick]
        if resolution.result == results.AMBIGUOUS:
            candidates = resolution
    recent = (
        db.session.execute(
            select(Import)
            .where(Import.kind == group_import.IMPORT_KIND, Import.target_id == group.id)
            .order_by(Import.created_at.desc())
            .limit(RECENT_IMPORTS)
        )
        .scalars()
        .all()
    )
    return render_template(
        "case_groups/show.html",
        group=group,
        members=page["results"],
        next_url=page["next"],
        first_page=bool(request.args.get("cursor")),
        member_count=groups.member_counts([group.id])[group.id],
        q=q,
        pick=pick,
        candidates=candidates,
        recent_imports=recent,
        result_labels=results.RESULT_LABELS,
        filter_words=filters.describe(group.filter["case_type"], group.filter["criteria"])
        if group.filter
        else "",
    )


@bp.route("/case-groups/<case_group_id>/rename", methods=["POST"])
@require_role("manager")
def rename_case_group(case_group_id):
    group = get_or_404(CaseGroup, case_group_id)
    if commit_or_flash(lambda: groups.rename_group(group, request.form.get("name", ""))) is not REFUSED:
        flash(gettext("Renamed to '%(name)s'.", name=group.name), "success")
    return redirect(url_for("web.case_group", case_group_id=case_group_id))


@bp.route("/case-groups/<case_group_id>/delete", methods=["POST"])
@require_role("manager")
def delete_case_group(case_group_id):
    group = get_or_404(CaseGroup, case_group_id)
    name = group.name
    removed = groups.delete_group(group)
    db.session.commit()
    flash(
        gettext("Case group '%(name)s' deleted; its %(count)s cases were kept.", name=name, count=removed),
        "success",
    )
    return redirect(url_for("web.case_groups"))


@bp.route("/case-groups/<case_group_id>/cases", methods=["POST"])
@require_role("manager")
def add_case_group_case(case_group_id):
    group = get_or_404(CaseGroup, case_group_id)
    by_case_id = (request.form.get("case_id") or "").strip()
    identifier = by_case_id or request.form.get("identifier", "")
    outcome = add_by_identifier(
        group, identifier, by="case_id" if by_case_id else "any", user_id=current_user.id
    )
    shown = outcome.identifier or ""
    back = url_for("web.case_group", case_group_id=group.id)
    if outcome.result == results.ADDED:
        db.session.commit()
        flash(gettext("Added %(case)s to the group.", case=_describe(outcome.case)), "success")
    elif outcome.result == results.ALREADY_MEMBER:
        flash(gettext("%(case)s is already in this group.", case=_describe(outcome.case)), "info")
    elif outcome.result == results.AMBIGUOUS:
        flash(
            gettext(
                "Several cases match '%(text)s', so nothing was added. Choose the one you mean below.",
                text=shown,
            ),
            "warning",
        )
        return redirect(url_for("web.case_group", case_group_id=group.id, pick=shown))
    elif outcome.result == results.NOT_FOUND:
        flash(f"Not found: '{shown}'. {outcome.message}", "error")
    elif outcome.result in (results.CLOSED, results.DELETED):
        flash(f"{_describe(outcome.case)}: {outcome.message}", "error")
    else:
        flash(outcome.message, "error")
    return redirect(back)


def _describe(case) -> str:
    label = case.name or case.case_id
    extra = case.phone_number or case.external_id
    return f"'{label}' ({extra})" if extra else f"'{label}'"


@bp.route("/case-groups/<case_group_id>/cases/<case_id>/remove", methods=["POST"])
@require_role("manager")
def remove_case_group_case(case_group_id, case_id):
    group = get_or_404(CaseGroup, case_group_id)
    try:
        removed = members.remove_case(group, case_id)
    except DomainError:
        return render_template(
            "error.html", code=404, title="Not found", message="There is no such case in this project."
        ), 404
    db.session.commit()
    flash(
        gettext("Removed from the group.") if removed else gettext("That case was not in the group."),
        "success",
    )
    return redirect(request.referrer or url_for("web.case_group", case_group_id=group.id))


@bp.route("/case-groups/<case_group_id>/imports", methods=["POST"])
@require_role("manager")
def import_case_group_cases(case_group_id):
    group = get_or_404(CaseGroup, case_group_id)
    dry_run = bool(request.form.get("dry_run"))
    return start_upload(
        url_for("web.case_group", case_group_id=group.id),
        lambda data, filename: group_import.start_group_import(
            group, data, filename, dry_run=dry_run, user_id=current_user.id
        ),
    )
