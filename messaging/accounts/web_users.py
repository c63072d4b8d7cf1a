"""Adding, deactivating and reactivating a project's web users (an admin's work).

Rules:
- A new user's e-mail follows the one rule for addresses (``messaging.lib.emails``)
  and is stored in lower case; the password has at least
  ``logins.MIN_PASSWORD_LENGTH`` characters; the role is one of ``ROLES``.
- E-mails are unique across all projects (login is by e-mail), so an address
  used in another project cannot be added, but the answer must not say that
  it exists there: 409 ``email_unavailable`` with a neutral sentence. An
  address already in this project says so (``already_a_user``): the admin
  sees this project's users anyway.
- An admin deactivates or reactivates another user of the project, never
  themself (so a project always keeps an active admin). Deactivation ends all
  the user's login sessions; their API tokens stop working with them (the API
  refuses a token whose user is inactive).
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from messaging.accounts import web_sessions
from messaging.accounts.logins import check_password_length
from messaging.errors import Conflict, Invalid, NotFound, RuleBroken
from messaging.extensions import db
from messaging.lib.emails import InvalidEmail, normalize_email
from messaging.models import ROLES, WebUser

log = logging.getLogger(__name__)

UNAVAILABLE = "This e-mail cannot be added; ask the person to use another address."


def add_web_user(project_id: int, email: str, name: str, password: str, role: str) -> WebUser:
    """A new web user of the project (flushed, not committed)."""
    try:
        address = normalize_email(email)
    except InvalidEmail as exc:
        raise Invalid("invalid_email", str(exc), field="email") from None
    check_password_length(password, "The password", field="password")
    if role not in ROLES:
        raise Invalid("invalid_role", f"The role must be one of {', '.join(ROLES)}.", field="role")
    holder = db.session.execute(
        select(WebUser.project_id)
        .where(func.lower(WebUser.email) == address)
        # E-mails are unique in the whole table; the answer below never says where.
        .execution_options(all_projects=True)
    ).scalar_one_or_none()
    if holder == project_id:
        raise Conflict("already_a_user", f"{address} is already a user of this project.", field="email")
    if holder is not None:
        raise Conflict("email_unavailable", UNAVAILABLE, field="email")
    user = WebUser(project_id=project_id, email=address, name=name.strip(), role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    log.info("web user added user_id=%s project_id=%s role=%s", user.id, project_id, role)
    return user


def deactivate(admin: WebUser, user: WebUser) -> None:
    """``user`` can no longer log in; their sessions end now."""
    _refuse_self(admin, user, "deactivate")
    user.is_active_user = False
    web_sessions.end_all(user)
    log.info(
        "web user deactivated user_id=%s project_id=%s by_user_id=%s", user.id, user.project_id, admin.id
    )


def reactivate(admin: WebUser, user: WebUser) -> None:
    """``user`` can log in again (with the same password)."""
    _refuse_self(admin, user, "reactivate")
    user.is_active_user = True
    log.info(
        "web user reactivated user_id=%s project_id=%s by_user_id=%s", user.id, user.project_id, admin.id
    )


def _refuse_self(admin: WebUser, user: WebUser, action: str) -> None:
    if user.project_id != admin.project_id:
        raise NotFound("no_such_user", "There is no such user in this project.")
    if user.id == admin.id:
        raise RuleBroken("own_account", f"You cannot {action} your own account.")
