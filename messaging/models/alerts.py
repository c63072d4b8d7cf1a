"""Conditional alerts: rules that follow each case, and each case's schedule under each rule.

- ``alert_rules``: to which cases (a case type and criteria), when (as soon as a
  case starts matching, or relative to a date property, optionally repeated),
  to whom (the case, its owner, or both) and what (text, translations or a
  survey). A deleted rule is kept (``deleted_at``) so its history stays readable.
- ``alert_occurrences``: one message-to-be of one rule for one case. The unique
  ``(rule_id, case_pk, anchor, seq)`` makes each occurrence exist once however
  often a schedule is recomputed: ``anchor`` is the date value it counts from
  (or ``entered:<n>`` for the n-th time a case started matching), ``seq`` its
  number (0 the first, then the repeats). Its status moves once from
  ``pending`` to ``sent``, ``skipped`` or ``cancelled`` (with a reason), and
  the messages it wrote carry its id.
- ``alert_case_states``: whether a case matched a rule when last computed, and
  how many times it started matching (what a rule without a start counts).
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from messaging.extensions import db
from messaging.models.base import BigIntPK, TenantScoped, public_id_column, utcnow


class OccurrenceStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


OCCURRENCE_STATUSES = tuple(member.value for member in OccurrenceStatus)


class OccurrenceReason(StrEnum):
    """Why an occurrence was skipped or cancelled."""

    PAST_DUE = "past_due"
    NO_DATE = "no_date"
    BAD_DATE = "bad_date"
    NO_RECIPIENT = "no_recipient"
    STOPPED_MATCHING = "stopped_matching"
    CASE_CLOSED = "case_closed"
    RULE_PAUSED = "rule_paused"
    RULE_CHANGED = "rule_changed"
    RULE_DELETED = "rule_deleted"


OCCURRENCE_REASONS = tuple(member.value for member in OccurrenceReason)


class AlertRule(db.Model, TenantScoped):
    __tablename__ = "alert_rules"

    id: Mapped[str] = public_id_column()
    name: Mapped[str] = mapped_column(String(200))
    case_type: Mapped[str] = mapped_column(String(100))
    # [{"property", "op", "value"}], all must hold (messaging.alerts.rules).
    criteria: Mapped[list] = mapped_column(JSON, default=list)
    # {"property", "offset_days", "time"} or None: as soon as a case starts matching.
    start: Mapped[dict | None] = mapped_column(JSON)
    # {"every_days", "times"} or None.
    repeat: Mapped[dict | None] = mapped_column(JSON)
    recipient: Mapped[str] = mapped_column(String(16), default="case")
    text: Mapped[str | None] = mapped_column(Text)
    translations: Mapped[dict] = mapped_column(JSON, default=dict)
    default_language: Mapped[str | None] = mapped_column(String(16))
    survey_id: Mapped[str | None] = mapped_column(ForeignKey("surveys.id", ondelete="SET NULL"))
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Applying the rule to the existing cases (messaging.alerts.applying): progress.
    apply_status: Mapped[str] = mapped_column(String(16), default="done")
    apply_cursor: Mapped[int] = mapped_column(BigIntPK, default=0)
    apply_done: Mapped[int] = mapped_column(Integer, default=0)
    apply_total: Mapped[int] = mapped_column(Integer, default=0)
    apply_updated_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class AlertOccurrence(db.Model, TenantScoped):
    __tablename__ = "alert_occurrences"
    __table_args__ = (
        UniqueConstraint("rule_id", "case_pk", "anchor", "seq"),
        # The tick's look across projects; then each project's due ones.
        Index("ix_alert_occurrences_due", "status", "due_at"),
        Index("ix_alert_occurrences_project_due", "project_id", "status", "due_at"),
        # project_id first in these: every scoped query filters on it, and SQLite's planner
        # otherwise picks the one-column project_id index and reads all the project's rows.
        Index("ix_alert_occurrences_case", "project_id", "case_pk", "status", "due_at"),
        Index("ix_alert_occurrences_rule", "project_id", "rule_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    case_pk: Mapped[int] = mapped_column(BigIntPK, ForeignKey("cases.id", ondelete="CASCADE"))
    anchor: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(String(32))
    messages: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AlertCaseState(db.Model, TenantScoped):
    __tablename__ = "alert_case_states"

    rule_id: Mapped[str] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True)
    case_pk: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    matching: Mapped[bool] = mapped_column(Boolean, default=False)
    entered: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
