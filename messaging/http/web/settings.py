"""Project settings: API tokens, web users, one's own password.

- A new API key is shown once, in the answer to the POST that created it; it
  never goes into a cookie (the session is signed, not encrypted) and the
  answer is not cached.
- Passwords, deactivation and new users follow ``messaging.accounts``.
"""

import logging

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from messaging.accounts import logins, web_users
from messaging.errors import DomainError
from messaging.extensions import db
from messaging.http.lookup import get_or_404
from messaging.http.web import bp, require_role
from messaging.http.web.forms import (
    ApiTokenForm,
    ChangePasswordForm,
    EmptyForm,
    ProjectSettingsForm,
    WebUserForm,
)
from messaging.lib import clock
from messaging.models import ApiToken, WebUser

log = logging.getLogger(__name__)


def _settings_page(new_key: str | None = None, password_form: ChangePasswordForm | None = None):
    tokens = (
        db.session.execute(
            select(ApiToken).where(ApiToken.revoked_at.is_(None)).order_by(ApiToken.created_at.desc())
        )
        .scalars()
        .all()
    )
    users = db.session.execute(select(WebUser).order_by(WebUser.email)).scalars().all()
    return render_template(
        "settings/index.html",
        tokens=tokens,
        users=users,
        new_key=new_key,
        # ``formdata=None``: this page also answers POSTs, whose fields must not fill the other forms.
        token_form=ApiTokenForm(formdata=None),
        user_form=WebUserForm(formdata=None),
        password_form=password_form or ChangePasswordForm(formdata=None),
        empty_form=EmptyForm(),
        project_form=ProjectSettingsForm(formdata=None, obj=current_user.project),
    )


def _flash_form_errors(form) -> None:
    for errors in form.errors.values():
        for error in errors:
            flash(error, "error")


@bp.route("/settings")
@login_required
def settings():
    return _settings_page()


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
    # Shown once, in this answer only: never in a cookie, never stored in clear.
    flash("Token created. Copy it now: it will not be shown again.", "success")
    response = current_app.make_response(_settings_page(new_key=key))
    response.headers["Cache-Control"] = "no-store"
    return response


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
        _flash_form_errors(form)
        return redirect(url_for("web.settings"))
    try:
        user = web_users.add_web_user(
            current_user.project_id, form.email.data, form.name.data or "", form.password.data, form.role.data
        )
    except DomainError as refusal:
        db.session.rollback()
        flash(refusal.message, "error")
        return redirect(url_for("web.settings"))
    db.session.commit()
    flash(f"{user.email} can now log in as {user.role}.", "success")
    return redirect(url_for("web.settings"))


@bp.route("/settings/users/<int:user_id>/deactivate", methods=["POST"])
@require_role("admin")
def deactivate_web_user(user_id):
    return _set_active(user_id, web_users.deactivate, "{email} can no longer log in; their sessions ended.")


@bp.route("/settings/users/<int:user_id>/reactivate", methods=["POST"])
@require_role("admin")
def reactivate_web_user(user_id):
    return _set_active(user_id, web_users.reactivate, "{email} can log in again.")


def _set_active(user_id: int, change, done: str):
    user = get_or_404(WebUser, user_id)
    if EmptyForm().validate_on_submit():
        try:
            change(current_user, user)
        except DomainError as refusal:
            db.session.rollback()
            flash(refusal.message, "error")
            return redirect(url_for("web.settings"))
        db.session.commit()
        flash(done.format(email=user.email), "success")
    return redirect(url_for("web.settings"))


@bp.route("/settings/password", methods=["POST"])
@login_required
def change_password():
    """One's own password; the user's other sessions end, this one stays."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _settings_page(password_form=form), 400
    try:
        logins.change_password(current_user, form.current_password.data, form.new_password.data)
    except DomainError as refusal:
        db.session.rollback()
        flash(refusal.message, "error")
        return _settings_page(password_form=form), 400
    db.session.commit()
    flash("Your password is changed. Your other sessions have ended.", "success")
    return redirect(url_for("web.settings"))
