"""Projects (the tenants), the people who use the web UI, and API tokens.

- A web user is identified to Flask-Login by the token of the login session
  (``messaging.models.web_sessions``) it was loaded through, never by its id:
  a cookie names a login that the server can end, not a person.
"""

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from messaging.accounts.passwords import hash_password, password_matches
from messaging.extensions import db
from messaging.models.base import TenantScoped, utcnow


class Role(StrEnum):
    """A web user's role, least to most allowed is viewer, manager, admin."""

    ADMIN = "admin"
    MANAGER = "manager"
    VIEWER = "viewer"


ROLES = tuple(member.value for member in Role)


class Project(db.Model):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    default_country: Mapped[str] = mapped_column(String(2), default="KE")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # What a participant with no language of their own reads (messaging.lib.participant_texts).
    default_language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    help_text: Mapped[str] = mapped_column(
        Text, default="Reply STOP to stop messages, START to receive them again."
    )
    # Guards on automated messages (messaging.sms.guards): at most this many a local day (None: no
    # limit), and only inside these windows ([{days, start, end}], None: at any time).
    daily_sms_limit: Mapped[int | None] = mapped_column(Integer)
    sending_windows: Mapped[list | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WebUser(db.Model, TenantScoped):
    """A person who uses the web UI (case manager, admin, viewer)."""

    # The clear token of the login session this object was loaded through (set at
    # login and by the session loader); not a column, only its hash is stored.
    login_session_token = None

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="manager")
    # The language of the web pages this person reads (None: the browser's, messaging.http.web.locale).
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    is_active_user: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    project: Mapped[Project] = relationship()

    def set_password(self, password: str) -> None:
        self.password_hash = hash_password(password)

    def check_password(self, password: str) -> bool:
        return password_matches(self.password_hash, password)

    # Flask-Login's user protocol, without UserMixin: its ``__eq__`` compares
    # ``get_id()``, which here names a login, not a person.
    @property
    def is_active(self) -> bool:
        return self.is_active_user

    @property
    def is_authenticated(self) -> bool:
        return self.is_active_user

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """The login session's token, which Flask-Login puts in the session and remember-me cookies."""
        if self.login_session_token is None:
            raise RuntimeError("this web user was not loaded through a login session")
        return self.login_session_token

    def can(self, role: str) -> bool:
        """True when this user's role is at least ``role``."""
        return ROLES.index(self.role) <= ROLES.index(role)


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(db.Model, TenantScoped):
    """An API key: only its SHA-256 is stored; the key is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[WebUser] = relationship()

    @classmethod
    def issue(cls, user: WebUser, name: str = "") -> tuple["ApiToken", str]:
        """Create a token for ``user``; returns the row and the one-time key."""
        key = "msk_" + secrets.token_urlsafe(30)
        token = cls(
            project_id=user.project_id,
            user_id=user.id,
            name=name,
            token_hash=hash_token(key),
            prefix=key[:10],
        )
        db.session.add(token)
        return token, key
