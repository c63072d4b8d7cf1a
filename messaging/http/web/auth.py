"""Log in and out."""

import logging
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select

from messaging.extensions import db
from messaging.http.web import bp
from messaging.http.web.forms import EmptyForm, LoginForm
from messaging.models import WebUser

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
    if form.validate_on_submit():
        user = db.session.execute(
            select(WebUser).where(func.lower(WebUser.email) == form.email.data.strip().lower())
        ).scalar_one_or_none()
        if user is None or not user.check_password(form.password.data) or not user.is_active:
            log.info("login refused for %s", form.email.data)
            flash("Wrong email or password.", "error")
            return render_template("auth/login.html", form=form), 401
        login_user(user, remember=form.remember.data)
        log.info("login user_id=%s project_id=%s", user.id, user.project_id)
        return redirect(_safe_next(request.args.get("next")) or url_for("web.dashboard"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = EmptyForm()
    if form.validate_on_submit():
        logout_user()
        flash("You have been logged out.", "info")
    return redirect(url_for("web.login"))
