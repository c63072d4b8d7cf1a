"""Project settings: API tokens and web users."""

import logging

from flask import flash, redirect, render_template, session, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from messaging.extensions import db
from messaging.http.lookup import get_or_404
from messaging.http.web import bp, require_role
from messaging.http.web.forms import ApiTokenForm, EmptyForm, ProjectSettingsForm, WebUserForm
from messaging.lib import clock
from messaging.models import ApiToken, WebUser

log = logging.getLogger(__name__)


@bp.route("/settings")
@login_required
def settings():
    tokens = (
        db.session.execute(
            select(ApiToken).where(ApiToken.revoked_at.is_(None)).order_by(ApiToken.created_at.desc())
        )
        .scalars()
        .all()
    )
    users = db.session.execute(select(WebUser).order_by(WebUser.email)).scalars().all()
    new_key = session.pop("new_api_key", None)
    return render_template(
        "settings/index.html",
        tokens=tokens,
        users=users,
        new_key=new_key,
        token_form=ApiTokenForm(),
        user_form=WebUserForm(),
        empty_form=EmptyForm(),
        project_form=ProjectSettingsForm(obj=current_user.project),
    )


@bp.route("/settings/project", methods=["POST"])
@require_role("admin")
def update_project():
    """Project name, default country, time zone and HELP reply; bad values change nothing."""
    import zoneinfo

    import phonenumbers

    project = current_user.project
    form = ProjectSettingsForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
        return redirect(url_for("web.settings"))
    country = form.default_country.data.strip().upper()
    if country not in phonenumbers.SUPPORTED_REGIONS:
        flash(f"'{country}' is not a country code phone numbers know (use e.g. KE, UG, IN, US).", "error")
        return redirect(url_for("web.settings"))
    tz = form.timezone.data.strip()
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        flash(f"'{tz}' is not a time zone (use e.g. Africa/Nairobi, Asia/Kolkata, UTC).", "error")
        return redirect(url_for("web.settings"))
    project.name = form.name.data.strip()
    project.default_country = country
    project.timezone = tz
    project.help_text = form.help_text.data.strip()
    db.session.commit()
    flash("Project settings saved.", "success")
    return redirect(url_for("web.settings"))


@bp.route("/settings/tokens", methods=["POST"])
@require_role("manager")
def create_token():
    form = ApiTokenForm()
    if not form.validate_on_submit():
        flash("Give the token a name.", "error")
        return redirect(url_for("web.settings"))
    token, key = ApiToken.issue(current_user, form.name.data.strip())
    db.session.commit()
    log.info("api token created token_id=%s user_id=%s", token.id, current_user.id)
    # Shown once, on the next page only; never stored in clear.
    session["new_api_key"] = key
    flash("Token created. Copy it now: it will not be shown again.", "success")
    return redirect(url_for("web.settings"))


@bp.route("/settings/tokens/<int:token_id>/revoke", methods=["POST"])
@require_role("manager")
def revoke_token(token_id):
    token = get_or_404(ApiToken, token_id)
    if EmptyForm().validate_on_submit():
        if token.user_id != current_user.id and not current_user.can("admin"):
            flash("Only an admin can revoke another person's token.", "error")
        else:
            token.revoked_at = clock.now()
            db.session.commit()
            flash(f"Token '{token.name}' revoked.", "success")
    return redirect(url_for("web.settings"))


@bp.route("/settings/users", methods=["POST"])
@require_role("admin")
def create_web_user():
    form = WebUserForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
        return redirect(url_for("web.settings"))
    email = form.email.data.strip().lower()
    if db.session.execute(
        select(WebUser.id).where(func.lower(WebUser.email) == email).execution_options(all_projects=True)
    ).first():
        flash("Someone already uses that email.", "error")
        return redirect(url_for("web.settings"))
    user = WebUser(email=email, name=form.name.data or "", role=form.role.data)
    user.set_password(form.password.data)
    db.session.add(user)
    db.session.commit()
    flash(f"{email} can now log in as {user.role}.", "success")
    return redirect(url_for("web.settings"))
