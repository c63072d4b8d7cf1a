"""Log in and out, and the language of the pages (the rules are in ``messaging.accounts``:
limits, password checks, sessions; and ``messaging.http.web.locale``)."""

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from redis.exceptions import RedisError

from messaging.accounts import login_limits, logins, web_sessions
from messaging.extensions import db
from messaging.http.web import bp
from messaging.http.web.forms import LoginForm
from messaging.http.web.locale import UI_LANGUAGES

log = logging.getLogger(__name__)


def _safe_next(target: str | None) -> str | None:
    """Only follow a ``next`` that stays on this site."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("web.dashboard"))
    form = LoginForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("auth/login.html", form=form), status
    try:
        return _log_in(form)
    except RedisError:
        # The limits cannot be checked or counted: refuse (fail closed) with a clear answer, not a 500.
        db.session.rollback()
        log.warning("login refused: the login limits' store (Redis) is not answering")
        flash("Logging in is not possible right now; try again in a minute.", "error")
        return render_template("auth/login.html", form=form), 503


def _log_in(form: LoginForm):
    """Check the limits and the password, then start the session (the limits' Redis errors propagate)."""
    email, address = form.email.data, request.remote_addr
    try:
        login_limits.check(email, address)
    except login_limits.TooManyWrongPasswords as refusal:
        log.info("login limited scope=%s account=%s", refusal.scope, login_limits.account_key(email)[:12])
        flash(refusal.message, "error")
        response = current_app.make_response((render_template("auth/login.html", form=form), 429))
        response.headers["Retry-After"] = str(refusal.retry_after)
        return response
    user = logins.authenticate(email, form.password.data)
    if user is None:
        login_limits.record_failure(email, address)
        flash("Wrong email or password.", "error")
        return render_template("auth/login.html", form=form), 401
    login_limits.forget_account(email)
    remember_days = current_app.config["REMEMBER_COOKIE_DAYS"]
    web_sessions.start(user, remember=form.remember.data, remember_days=remember_days)
    db.session.commit()
    login_user(user, remember=form.remember.data, duration=timedelta(days=remember_days))
    log.info("login user_id=%s project_id=%s remember=%s", user.id, user.project_id, form.remember.data)
    return redirect(_safe_next(request.args.get("next")) or url_for("web.dashboard"))


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    web_sessions.end(current_user.get_id())
    db.session.commit()
    log.info("logout user_id=%s project_id=%s", current_user.id, current_user.project_id)
    logout_user()
    flash("You have been logged out.", "info")
    return redirect(url_for("web.login"))


@bp.route("/account/language", methods=["POST"])
@login_required
def set_language():
    """The language this person reads the pages in; an unknown one changes nothing."""
    language = request.form.get("language", "")
    if language not in UI_LANGUAGES:
        flash(f"There is no '{language}' version of the pages.", "error")
    else:
        current_user.language = language
        db.session.commit()
    return redirect(_safe_next(request.form.get("next")) or url_for("web.dashboard"))
