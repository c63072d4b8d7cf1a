"""Mobile workers, user groups (case sharing) and applications: who submits forms and owns cases."""

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from messaging.accounts.passwords import hash_password
from messaging.extensions import db
from messaging.models.base import TenantScoped, public_id_column, utcnow


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
        self.password_hash = hash_password(password)


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
