"""Checking a password at login, and changing one's own password.

Rules:
- A login finds the user by e-mail (trimmed, any case) across all projects:
  e-mails are unique in the whole table.
- An unknown e-mail costs the same time as a known one: the typed password is
  still checked, against a dummy hash made the same way as real ones, so the
  answer's timing does not tell which e-mails exist.
- A deactivated user is refused like a wrong password.
- Logs name the user's id when the e-mail is known and nothing identifying
  when it is not: never the typed e-mail or password.
- Every password (a new web user's, a project's first admin's, a changed one)
  has at least ``MIN_PASSWORD_LENGTH`` characters (``check_password_length``).
- Changing one's password needs the current one, and ends every other login
  session of the user (the one that changed it stays).
"""

from __future__ import annotations

import functools
import logging

from sqlalchemy import func, select

from messaging.accounts import web_sessions
from messaging.accounts.passwords import hash_password, password_matches
from messaging.errors import Invalid
from messaging.extensions import db
from messaging.models import WebUser

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8


@functools.cache
def dummy_password_hash() -> str:
    """A hash of a password nobody types, made like ``WebUser.set_password`` makes real ones."""
    return hash_password("not a password: only here so unknown e-mails take as long")


def authenticate(email: str, password: str) -> WebUser | None:
    """The active user with this e-mail and password, or None (the same work either way)."""
    user = db.session.execute(
        select(WebUser)
        .where(func.lower(WebUser.email) == email.strip().lower())
        .execution_options(all_projects=True)
    ).scalar_one_or_none()
    if user is None:
        password_matches(dummy_password_hash(), password)
        log.info("login refused: no web user has the typed e-mail")
        return None
    if not user.check_password(password):
        log.info("login refused: wrong password user_id=%s project_id=%s", user.id, user.project_id)
        return None
    if not user.is_active:
        log.info("login refused: deactivated user_id=%s project_id=%s", user.id, user.project_id)
        return None
    return user


def check_password_length(password: str, label: str, *, field: str | None) -> None:
    """The one length rule of every password (``label`` names it in the refusal): 400 ``weak_password``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            "weak_password", f"{label} must have at least {MIN_PASSWORD_LENGTH} characters.", field=field
        )


def change_password(user: WebUser, current: str, new: str) -> None:
    """Set ``user``'s password to ``new`` if ``current`` is right, and end the user's other sessions."""
    if not user.check_password(current):
        raise Invalid("wrong_password", "Your current password is not right.", field="current_password")
    check_password_length(new, "The new password", field="new_password")
    user.set_password(new)
    web_sessions.end_others(user)
    log.info("password changed user_id=%s project_id=%s", user.id, user.project_id)
