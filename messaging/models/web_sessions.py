"""Web login sessions: one row per login, so that a login can be ended on the server.

- A row is created at each login; the browser holds a random token (in the
  signed session cookie and, with "keep me logged in", the remember-me
  cookie); only the token's SHA-256 is stored.
- A session counts only while it is not revoked, not expired and its user is
  active; logout, a password change and deactivation set ``revoked_at``.
"""

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from messaging.extensions import db
from messaging.models.base import BigIntPK, TenantScoped, utcnow
from messaging.models.projects import WebUser


class WebSession(db.Model, TenantScoped):
    """One login of a web user, until it is revoked or expires."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[WebUser] = relationship()
