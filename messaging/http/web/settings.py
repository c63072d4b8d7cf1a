"""Project settings: API tokens, web users, one's own password.

- A new API key is shown once, in the answer to the POST that created it; it
  never goes into a cookie (the session is signed, not encrypted) and the
  answer is not cached.
- Every answer that shows the settings page builds it with ``_settings_page``.
- Tokens, passwords, deactivation and new users follow ``messaging.accounts``;
  the project's own settings follow ``messaging.projects.setup``.
"""

import logging

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from messaging.accounts import api_tokens, logins, web_users
from messaging.errors import DomainError
from messaging.extensions import db
from messaging.http.lookup import get_or_404
from messaging.http.web import REFUSED, bp, commit_or_flash, require_role
from messaging.http.web.forms import (
    ApiTokenForm,
    ChangePasswordForm,
    EmptyForm,
    ProjectSettingsForm,
    WebUserForm,
)
from messaging.models import ApiToken, WebUser
from messaging.projects import texts
from messaging.projects.settings import guards_page_text, set_guards_from_page
from messaging.projects.setup import change_settings

log = logging.getLogger(__name__)


def _settings_page(new_key: str | None = None, password_form: ChangePasswordForm | None = None):
    """The settings page: the GET, and the POSTs that answer with the page itself."""
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
        window_text=guards_page_text(current_user.project),
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
    form = ProjectSettingsForm()
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return redirect(url_for("web.settings"))
    saved = commit_or_flash(
        lambda: change_settings(
            current_user.project,
            name=form.name.data,
            default_country=form.default_country.data,
            timezone=form.timezone.data,
            help_text=form.help_text.data,
        )
    )
    if saved is not REFUSED:
        flash("Project settings saved.", "success")
    return redirect(url_for("web.settings"))


@bp.route("/settings/guards", methods=["POST"])
@require_role("admin")
def update_guards():
    """The daily SMS limit and the sending windows of automated messages; bad values change nothing."""
    saved = commit_or_flash(
        lambda: set_guards_from_page(
            current_user.project, request.form.get("daily_sms_limit"), request.form.get("sending_windows")
        )
    )
    if saved is not REFUSED:
        flash("Sending limits saved.", "success")
    return redirect(url_for("web.settings"))


@bp.route("/settings/tokens", methods=["POST"])
@require_role("manager")
def create_token():
    form = ApiTokenForm()
    if not form.validate_on_submit():
        flash("Give the token a name.", "error")
        return redirect(url_for("web.settings"))
    _token, key = api_tokens.issue(current_user, form.name.data)
    db.session.commit()
    # Shown once, in this answer only: never in a cookie, never stored in clear.
    flash("Token created. Copy it now: it will not be shown again.", "success")
    response = current_app.make_response(_settings_page(new_key=key))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/settings/tokens/<int:token_id>/revoke", methods=["POST"])
@require_role("manager")
def revoke_token(token_id):
    token = get_or_404(ApiToken, token_id)
    if commit_or_flash(lambda: api_tokens.revoke(current_user, token)) is not REFUSED:
        flash(f"Token '{token.name}' revoked.", "success")
    return redirect(url_for("web.settings"))


@bp.route("/settings/users", methods=["POST"])
@require_role("admin")
def create_web_user():
    form = WebUserForm()
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return redirect(url_for("web.settings"))
    user = commit_or_flash(
        lambda: web_users.add_web_user(
            current_user.project_id, form.email.data, form.name.data or "", form.password.data, form.role.data
        )
    )
    if user is not REFUSED:
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
    if commit_or_flash(lambda: change(current_user, user)) is not REFUSED:
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
    changed = commit_or_flash(
        lambda: logins.change_password(current_user, form.current_password.data, form.new_password.data)
    )
    if changed is REFUSED:
        return _settings_page(password_form=form), 400
    flash("Your password is changed. Your other sessions have ended.", "success")
    return redirect(url_for("web.settings"))


# --- participant texts ---------------------------------------------------------------


@bp.route("/settings/texts")
@login_required
def participant_texts():
    """Every participant text in every language: the wording that applies and where it comes
    from; a manager words them for one language (``?language=``) below."""
    table = texts.table(current_user.project_id)
    language = (request.args.get("language") or "").strip().lower()
    editing = None
    if language:
        try:
            editing = texts.clean_language(language)
        except DomainError as refusal:
            flash(refusal.message, "error")
    return render_template("settings/texts.html", table=table, editing=editing)


@bp.route("/settings/texts", methods=["POST"])
@require_role("manager")
def participant_texts_save():
    language = request.form.get("language", "")
    values = {
        key: request.form.get(f"text-{key}", "")
        for key in (*texts.TEXTS, texts.DEFAULT_REPLY)
        if f"text-{key}" in request.form
    }
    saved = commit_or_flash(lambda: texts.set_wordings(current_user.project_id, language, values))
    if saved is REFUSED:
        return redirect(url_for("web.participant_texts", language=language))
    flash(f"Texts in {language} saved.", "success")
    return redirect(url_for("web.participant_texts", language=language))


@bp.route("/settings/texts/default-language", methods=["POST"])
@require_role("admin")
def default_language_save():
    """What a participant with no language of their own reads; a bad code changes nothing."""
    raw = request.form.get("default_language", "")
    saved = commit_or_flash(lambda: texts.set_default_language(current_user.project_id, raw))
    if saved is not REFUSED:
        flash(f"Default language set to {saved}.", "success")
    return redirect(url_for("web.participant_texts"))
