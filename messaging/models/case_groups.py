"""Case groups: named lists of cases used as broadcast recipients (seed 003)."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from messaging.extensions import db
from messaging.models.base import BigIntPK, TenantScoped, public_id_column, utcnow
from messaging.models.cases import Case


class CaseGroup(db.Model, TenantScoped):
    """A named group of cases. Names are unique in a project, ignoring case:
    the service refuses a duplicate with a clear 409, and a unique index on
    ``(project_id, lower(name))`` settles two requests that race."""

    __tablename__ = "case_groups"
    __table_args__ = (
        Index("uq_case_groups_project_lower_name", "project_id", text("lower(name)"), unique=True),
    )

    id: Mapped[str] = public_id_column()
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # A dynamic group: {case_type, criteria} (messaging.cases.filters), its members the open cases
    # it chooses when read or sent to; None for a group of cases added by hand.
    filter: Mapped[dict | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class CaseGroupMember(db.Model):
    """One case in one group; the primary key makes a second copy impossible.

    Reached through its group (which is project-scoped); ``case_pk`` is the
    internal ``cases.id``. Deleting a group or a case row removes the link only.
    """

    __tablename__ = "case_group_members"
    # Members newest first, in pages (keyset on added_at, case_pk).
    __table_args__ = (Index("ix_case_group_members_group_added", "group_id", "added_at", "case_pk"),)

    group_id: Mapped[str] = mapped_column(ForeignKey("case_groups.id", ondelete="CASCADE"), primary_key=True)
    case_pk: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    added_by: Mapped[int | None] = mapped_column(Integer)

    # Loaded with contains_eager() by the member queries; never lazily one by one.
    case: Mapped[Case] = relationship(Case, lazy="raise")
