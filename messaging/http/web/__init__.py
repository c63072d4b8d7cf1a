"""The server-rendered web UI: login, the layout, and each area's pages.

- A domain refusal (``DomainError``) in a page's POST keeps nothing of the
  request (rolled back) and is shown to the user as a flashed error, by
  ``flash_refusal`` / ``commit_or_flash``; the view then says where to go.
"""

import logging
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from flask import Blueprint, abort, flash, g, render_template, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from messaging.conversations.inbox import OPEN_COUNT_CAP, open_count
from messaging.db import tenancy
from messaging.db.outage import roll_back_quietly
from messaging.errors import DomainError
from messaging.extensions import db, login_manager
from messaging.http.web.locale import ENGLISH, UI_LANGUAGES

log = logging.getLogger(__name__)

bp = Blueprint("web", __name__)


def init_app(app) -> None:
    from messaging.http.web import (  # noqa: F401
        alerts,
        auth,
        broadcasts,
        case_groups,
        cases,
        conversations,
        forwarding,
        gateways,
        imports,
        inbound,
        main,
        messages,
        opt_outs,
        people,
        settings,
        surveys,
        usage,
    )

    login_manager.login_view = "web.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    app.register_blueprint(bp)
    app.before_request(_scope_to_user_project)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(IntegrityError, _constraint_error)
    app.register_error_handler(OperationalError, _database_away)
    app.register_error_handler(Exception, _unexpected_error)
    app.context_processor(
        lambda: {
            "nav_items": NAV_ITEMS,
            "settings_links": SETTINGS_LINKS,
            "view_endpoints": app.view_functions,
            "inbox_badge": inbox_badge,
            "ui_languages": UI_LANGUAGES,
            "current_locale": str(get_locale() or ENGLISH),
        }
    )


# The areas of the UI, in the order of the navigation bar.
NAV_ITEMS = [
    (_l("Dashboard"), "web.dashboard"),
    (_l("Cases"), "web.cases"),
    (_l("Case groups"), "web.case_groups"),
    (_l("Broadcasts"), "web.broadcasts"),
    (_l("Alerts"), "web.alerts"),
    (_l("Surveys"), "web.surveys"),
    (_l("Inbox"), "web.inbox"),
    (_l("Messages"), "web.messages"),
    (_l("Opt-outs"), "web.opt_outs"),
    (_l("Settings"), "web.settings"),
]


# Pages linked from Settings; a link shows once its endpoint exists.
SETTINGS_LINKS = [
    ("Mobile workers", "web.mobile_workers"),
    ("User groups", "web.user_groups"),
    ("Applications", "web.applications"),
    ("SMS gateway", "web.gateway_settings"),
    ("Keywords", "web.keywords"),
    ("Canned replies", "web.canned_replies"),
    ("Participant texts", "web.participant_texts"),
    ("Data forwarding", "web.forwarding"),
    ("Usage and cost", "web.usage_page"),
]


def inbox_badge() -> str | None:
    """The count of open inbox items next to "Inbox" in the navigation ("99+" past 99), or None
    when there are none. One capped, indexed query, run only when the navigation is drawn; an
    error page drawn while the database is away still renders (without the count). Counted once a
    request (the navigation and the dashboard both show it)."""
    if not current_user.is_authenticated:
        return None
    if "inbox_badge" not in g:
        g.inbox_badge = _count_badge()
    return g.inbox_badge


def _count_badge() -> str | None:
    try:
        count = open_count(current_user.project_id)
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("inbox count unavailable: the database did not answer")
        return None
    if not count:
        return None
    return f"{OPEN_COUNT_CAP - 1}+" if count >= OPEN_COUNT_CAP else str(count)


@login_manager.user_loader
def _load_user(session_token: str):
    """The user of the live login session the cookie names (``messaging.accounts.web_sessions``), or None."""
    from messaging.accounts import web_sessions

    login_session = web_sessions.find(session_token)
    if login_session is None:
        return None
    user = login_session.user  # held here: it carries the session's token through the commit below
    if web_sessions.touch(login_session):
        # Nothing else is pending yet: the loader runs as the request starts.
        db.session.commit()
    return user


def _scope_to_user_project():
    if request.blueprint == "api":
        return  # the API scopes by token
    if current_user.is_authenticated:
        tenancy.set_current_project(current_user.project_id)
        g.project = current_user.project


def require_role(role: str):
    """Allow the view to users whose role is at least ``role``."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.can(role):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/twilio/")


def _csrf_error(exc: CSRFError):
    db.session.rollback()
    if _wants_json():
        from messaging.http.api.errors import error_response

        return error_response(400, "csrf_failed", exc.description)
    flash("Your form had expired or was not sent from this site. Please try again.", "error")
    return render_template(
        "error.html",
        code=400,
        title="Form expired",
        message="The form could not be checked (missing or expired security token). "
        "Go back, reload the page and try again.",
    ), 400


_ERROR_TEXT = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Not allowed", "Your role does not allow this."),
    404: ("Not found", "There is nothing here. It may have been deleted, or the link is wrong."),
    405: ("Not allowed", "This action is not allowed here."),
    409: ("Conflict", "This conflicts with a change saved at the same time. Go back, reload and try again."),
    413: ("File too large", "The upload is larger than the limit."),
    500: ("Something went wrong", "The error has been logged. Please try again."),
}


def _http_error(exc: HTTPException):
    db.session.rollback()
    if _wants_json():
        from messaging.http.api.errors import http_error_response

        return http_error_response(exc)
    if exc.code and exc.code < 400:
        return exc
    title, message = _ERROR_TEXT.get(exc.code or 500, ("Error", exc.description or ""))
    if exc.code in (400, 413) and exc.description != type(exc).description:
        message = exc.description  # said by our own code (the input guard), not werkzeug's generic text
    return render_template("error.html", code=exc.code, title=title, message=message), exc.code


def _constraint_error(exc: IntegrityError):
    """A write a database constraint refused (say, two requests racing for one name): a 409, not a 500.

    The domain checks come first; this answers what slips between a check and the commit.
    """
    db.session.rollback()
    log.warning(
        "write refused by a database constraint on %s %s: %s",
        request.method,
        request.path,
        type(exc.orig).__name__,
    )
    if _wants_json():
        from messaging.http.api.errors import error_response

        return error_response(
            409, "conflict", "This conflicts with a change saved at the same time; try again."
        )
    title, message = _ERROR_TEXT[409]
    return render_template("error.html", code=409, title=title, message=message), 409


def _database_away(exc: OperationalError):
    """The database went away (an outage, a restart): 503 with Retry-After, not a 500. The page
    is drawn without the logged-in user (reading them needs the database)."""
    roll_back_quietly()
    log.warning(
        "request %s %s: the database is away (%s)", request.method, request.path, type(exc.orig).__name__
    )
    if _wants_json():
        from messaging.http.api.errors import database_unavailable_response

        return database_unavailable_response()
    from messaging.http.api.errors import RETRY_AFTER_SECONDS

    page = render_template(
        "unavailable.html",
        code=503,
        title="Back in a moment",
        message="The database is not answering, so nothing was saved. Try again in a few seconds.",
    )
    return page, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _unexpected_error(exc: Exception):
    db.session.rollback()
    log.exception("unhandled error on %s %s", request.method, request.path)
    if _wants_json():
        from messaging.http.api.errors import error_response

        return error_response(500, "server_error", "Something went wrong on our side; it has been logged.")
    title, message = _ERROR_TEXT[500]
    return render_template("error.html", code=500, title=title, message=message), 500


T = TypeVar("T")

# What ``commit_or_flash`` answers when a domain rule refused the change.
REFUSED = object()


def flash_refusal(refusal: DomainError) -> None:
    """Nothing of the refused request is kept, and the user reads why."""
    db.session.rollback()
    flash(refusal.message, "error")


def commit_or_flash(change: Callable[[], T]) -> T | object:
    """``change()`` (a domain call) committed, and its result; or ``REFUSED`` when it raised a
    ``DomainError``, which ``flash_refusal`` has then shown."""
    try:
        result = change()
        db.session.commit()
    except DomainError as refusal:
        flash_refusal(refusal)
        return REFUSED
    return result
