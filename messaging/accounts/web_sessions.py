"""Login sessions on the server: started at login, ended by logout, a password change or deactivation.

Rules:
- Each login starts a session: a random token goes to the browser (Flask-Login
  puts it in the session cookie, and in the remember-me cookie with "keep me
  logged in"); the database keeps only its SHA-256.
- A session lets its cookie in only while it is not revoked, not expired and
  its user is active. Nothing else in a cookie counts, so a cookie copied
  before a logout is refused after it.
- "Keep me logged in" lasts ``remember_days`` from the login (the remember-me
  cookie's lifetime); otherwise a session expires after ``IDLE_LIMIT`` without
  a request.
- ``last_seen_at`` (and an idle session's expiry) moves at most once a minute,
  so reading pages does not write on every request.
- Logout ends its session; a password change ends the user's other sessions
  and keeps the one that changed it; deactivation ends them all.
- A user's finished sessions are deleted when the user next logs in.
- Domain functions do not commit: the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, or_, select, update

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import WebSession, WebUser

IDLE_LIMIT = timedelta(hours=12)
TOUCH_INTERVAL = timedelta(minutes=1)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(user: WebUser, *, remember: bool, remember_days: int) -> str:
    """Open a session for ``user``; returns its token (also set as ``user.login_session_token``)."""
    now = clock.now()
    db.session.execute(
        delete(WebSession)
        .where(
            WebSession.user_id == user.id,
            or_(WebSession.revoked_at.is_not(None), WebSession.expires_at <= now),
        )
        .execution_options(all_projects=True, synchronize_session=False)
    )
    token = secrets.token_urlsafe(32)
    lifetime = timedelta(days=remember_days) if remember else IDLE_LIMIT
    db.session.add(
        WebSession(
            project_id=user.project_id,
            user_id=user.id,
            token_hash=token_digest(token),
            remember=remember,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    user.login_session_token = token
    return token


def find(token: str) -> WebSession | None:
    """The live session named by ``token`` (its user active), or None."""
    session = db.session.execute(
        select(WebSession)
        .where(WebSession.token_hash == token_digest(token))
        # Read before the request knows its project: the token is what finds it.
        .execution_options(all_projects=True)
    ).scalar_one_or_none()
    if session is None or session.revoked_at is not None or session.expires_at <= clock.now():
        return None
    user = session.user
    if not user.is_active:
        return None
    user.login_session_token = token
    return session


def touch(session: WebSession) -> bool:
    """Note a request on ``session`` (at most once a minute); True when the row changed."""
    now = clock.now()
    if now - session.last_seen_at < TOUCH_INTERVAL:
        return False
    session.last_seen_at = now
    if not session.remember:
        session.expires_at = now + IDLE_LIMIT
    return True


def end(token: str) -> None:
    """Logout: the session named by ``token`` is over."""
    _revoke(WebSession.token_hash == token_digest(token))


def end_others(user: WebUser) -> None:
    """After a password change: every session of ``user`` but the current one is over."""
    current = user.login_session_token
    condition = WebSession.user_id == user.id
    if current is not None:
        condition = condition & (WebSession.token_hash != token_digest(current))
    _revoke(condition)


def end_all(user: WebUser) -> None:
    """After deactivation: every session of ``user`` is over."""
    _revoke(WebSession.user_id == user.id)


def _revoke(condition) -> None:
    db.session.execute(
        update(WebSession)
        .where(condition, WebSession.revoked_at.is_(None))
        .values(revoked_at=clock.now())
        .execution_options(all_projects=True, synchronize_session=False)
    )
