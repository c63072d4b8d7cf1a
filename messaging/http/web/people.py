"""Mobile workers, user groups (membership, case-sharing switch) and applications."""

import logging

from flask import flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from messaging.cases import ownership
from messaging.extensions import db
from messaging.http.lookup import get_or_404
from messaging.http.web import REFUSED, bp, commit_or_flash, require_role
from messaging.models import Application, Case, MobileWorker, UserGroup
from messaging.people.applications import create_application, update_application
from messaging.people.groups import case_sharing_groups, create_group, update_group
from messaging.people.workers import create_mobile_worker

log = logging.getLogger(__name__)


def _all_workers():
    return db.session.execute(select(MobileWorker).order_by(MobileWorker.username)).scalars().all()


def _all_groups():
    return db.session.execute(select(UserGroup).order_by(UserGroup.name)).scalars().all()


@bp.route("/people/workers", methods=["GET", "POST"])
@login_required
def mobile_workers():
    if request.method == "POST":
        return _create_worker()
    return render_template("people/workers.html", workers=_all_workers())


@require_role("manager")
def _create_worker():
    worker = commit_or_flash(
        lambda: create_mobile_worker(
            request.form.get("username", ""),
            request.form.get("password") or None,
            (request.form.get("language") or "").strip()[:16] or None,
            (request.form.get("phone_number") or "").strip()[:20] or None,
        )
    )
    if worker is REFUSED:
        return redirect(url_for("web.mobile_workers"))
    log.info("mobile worker created user_id=%s", worker.id)
    flash(f"Mobile worker '{worker.username}' created.", "success")
    return redirect(url_for("web.mobile_worker", user_id=worker.id))


@bp.route("/people/workers/<user_id>", methods=["GET", "POST"])
@login_required
def mobile_worker(user_id):
    worker = get_or_404(MobileWorker, user_id)
    if request.method == "POST":
        return _update_worker_groups(worker)
    sharing = case_sharing_groups(worker.id)
    case_list = (
        db.session.execute(
            ownership.user_case_list_stmt(worker.id).order_by(Case.modified_on.desc()).limit(200)
        )
        .scalars()
        .all()
    )
    return render_template(
        "people/worker.html",
        worker=worker,
        sharing=sharing,
        case_list=case_list,
        all_groups=_all_groups(),
        member_of={g.id for g in worker.groups},
        owners=ownership.owner_names(c.owner_id for c in case_list),
    )


@require_role("manager")
def _update_worker_groups(worker):
    wanted = set(request.form.getlist("groups"))
    groups = db.session.execute(select(UserGroup).where(UserGroup.id.in_(wanted))).scalars().all()
    worker.groups = list(groups)
    db.session.commit()
    flash(f"Groups of '{worker.username}' saved.", "success")
    return redirect(url_for("web.mobile_worker", user_id=worker.id))


@bp.route("/people/groups", methods=["GET", "POST"])
@login_required
def user_groups():
    if request.method == "POST":
        return _create_group()
    return render_template("people/groups.html", groups=_all_groups())


@require_role("manager")
def _create_group():
    group = commit_or_flash(
        lambda: create_group(request.form.get("name", ""), request.form.get("case_sharing") == "on")
    )
    if group is REFUSED:
        return redirect(url_for("web.user_groups"))
    flash(f"Group '{group.name}' created. Add its members below.", "success")
    return redirect(url_for("web.user_group", group_id=group.id))


@bp.route("/people/groups/<group_id>", methods=["GET", "POST"])
@login_required
def user_group(group_id):
    group = get_or_404(UserGroup, group_id)
    if request.method == "POST":
        return _update_group(group)
    return render_template(
        "people/group.html", group=group, workers=_all_workers(), member_ids={m.id for m in group.members}
    )


@require_role("manager")
def _update_group(group):
    saved = commit_or_flash(
        lambda: update_group(
            group,
            name=request.form.get("name"),
            case_sharing=request.form.get("case_sharing") == "on",
            member_ids=request.form.getlist("members"),
        )
    )
    if saved is not REFUSED:
        flash(f"Group '{group.name}' saved. Existing cases keep their owners.", "success")
    return redirect(url_for("web.user_group", group_id=group.id))


@bp.route("/people/applications", methods=["GET", "POST"])
@login_required
def applications():
    if request.method == "POST":
        return _create_application()
    apps = db.session.execute(select(Application).order_by(Application.name)).scalars().all()
    return render_template("people/applications.html", apps=apps)


@require_role("manager")
def _create_application():
    app = commit_or_flash(
        lambda: create_application(request.form.get("name", ""), request.form.get("case_sharing") == "on")
    )
    if app is not REFUSED:
        flash(f"Application '{app.name}' created (id {app.id}).", "success")
    return redirect(url_for("web.applications"))


@bp.route("/people/applications/<app_id>", methods=["POST"])
@require_role("manager")
def application_update(app_id):
    app = get_or_404(Application, app_id)
    update_application(app, case_sharing=request.form.get("case_sharing") == "on")
    db.session.commit()
    state = "on" if app.case_sharing else "off"
    flash(f"Case sharing is {state} for '{app.name}'. Existing cases keep their owners.", "success")
    return redirect(url_for("web.applications"))
