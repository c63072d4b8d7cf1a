"""Projects, people, applications, cases and forms: the foundation tables."""

import hashlib
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from messaging.extensions import db
from messaging.models.base import TenantScoped, new_id, public_id_column, utcnow

# BigInteger primary keys that still autoincrement on SQLite.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

ROLES = ("admin", "manager", "viewer")


class Project(db.Model):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    default_country: Mapped[str] = mapped_column(String(2), default="KE")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    help_text: Mapped[str] = mapped_column(
        Text, default="Reply STOP to stop messages, START to receive them again."
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WebUser(UserMixin, db.Model, TenantScoped):
    """A person who uses the web UI (case manager, admin, viewer)."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="manager")
    is_active_user: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    project: Mapped[Project] = relationship()

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.is_active_user

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


class MobileWorker(db.Model, TenantScoped):
    """A field user who submits forms; can own cases."""

    __tablename__ = "mobile_workers"
    __table_args__ = (UniqueConstraint("project_id", "username"),)

    id: Mapped[str] = public_id_column()
    username: Mapped[str] = mapped_column(String(150))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    language: Mapped[str | None] = mapped_column(String(16))
    phone_number: Mapped[str | None] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    groups: Mapped[list["UserGroup"]] = relationship(
        secondary="group_memberships", back_populates="members", order_by="UserGroup.name"
    )

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)


class GroupMembership(db.Model):
    __tablename__ = "group_memberships"

    group_id: Mapped[str] = mapped_column(ForeignKey("user_groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("mobile_workers.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class UserGroup(db.Model, TenantScoped):
    """A group of mobile workers; with case sharing on it can own cases."""

    __tablename__ = "user_groups"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = public_id_column()
    name: Mapped[str] = mapped_column(String(200))
    case_sharing: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    members: Mapped[list[MobileWorker]] = relationship(
        secondary="group_memberships", back_populates="groups", order_by="MobileWorker.username"
    )


class Application(db.Model, TenantScoped):
    __tablename__ = "applications"

    id: Mapped[str] = public_id_column()
    name: Mapped[str] = mapped_column(String(200))
    case_sharing: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Case(db.Model, TenantScoped):
    """A participant or other tracked thing."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("project_id", "case_id"),
        Index("ix_cases_project_phone", "project_id", "phone_number"),
        Index("ix_cases_project_external", "project_id", "external_id"),
        Index("ix_cases_project_owner", "project_id", "owner_id", "closed"),
        Index("ix_cases_project_modified", "project_id", "modified_on"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), default=new_id)
    case_type: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255), default="")
    external_id: Mapped[str | None] = mapped_column(String(255))
    phone_raw: Mapped[str | None] = mapped_column(String(64))
    # E.164 when the raw value parsed as a valid number; None otherwise.
    phone_number: Mapped[str | None] = mapped_column(String(20))
    phone_invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(16))
    owner_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_on: Mapped[datetime | None] = mapped_column(DateTime)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    modified_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    properties: Mapped[dict] = mapped_column(JSON, default=dict)


class Form(db.Model, TenantScoped):
    """One submission; applied once, in the order the server received it."""

    __tablename__ = "forms"
    __table_args__ = (
        UniqueConstraint("project_id", "form_id"),
        Index("ix_forms_project_received", "project_id", "received_on"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    form_id: Mapped[str] = mapped_column(String(64), default=new_id)
    app_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    received_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    answers: Mapped[dict] = mapped_column(JSON, default=dict)
    case_ids: Mapped[list] = mapped_column(JSON, default=list)
    # Where the form came from: "api", "sms_survey", "import", ...
    source: Mapped[str] = mapped_column(String(32), default="api")
