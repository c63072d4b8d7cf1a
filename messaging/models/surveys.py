"""SMS surveys, their sessions, project keywords and the inbound handling log.

- ``surveys``: a survey definition (questions as JSON, validated with
  ``messaging.surveys.answers.Question``).
- ``survey_sessions``: one participant's run of a survey, by phone number. At
  most ONE open session per (project, phone): a partial unique index
  (``status = 'open'``) on both SQLite and PostgreSQL enforces it.
- ``sms_keywords``: a project keyword (first word of a message) that replies
  with a text and/or starts a survey.
- ``inbound_messages``: the handling state of each inbound ``messages`` row
  (pending until ``handled_at``; the outcome, routing note); the inbox is the
  rows whose outcome is ``unhandled`` or ``unknown_number``.
- ``inbound_settings``: per-project default reply for unhandled messages and
  the system application / mobile worker that submits survey forms.
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
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from messaging.extensions import db
from messaging.models.base import BigIntPK, TenantScoped, public_id_column, utcnow
from messaging.models.cases import Case


class SessionStatus(StrEnum):
    """A survey session's state."""

    OPEN = "open"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"


SESSION_STATUSES = tuple(member.value for member in SessionStatus)


class SessionSource(StrEnum):
    """What started a survey session."""

    KEYWORD = "keyword"
    BROADCAST = "broadcast"
    API = "api"


SESSION_SOURCES = tuple(member.value for member in SessionSource)


class InboundOutcome(StrEnum):
    """What handling an inbound message did with it."""

    PENDING = "pending"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    SURVEY_ANSWER = "survey_answer"
    KEYWORD = "keyword"
    UNHANDLED = "unhandled"
    UNKNOWN_NUMBER = "unknown_number"


INBOUND_OUTCOMES = tuple(member.value for member in InboundOutcome)


class Survey(db.Model, TenantScoped):
    __tablename__ = "surveys"

    id: Mapped[str] = public_id_column()
    name: Mapped[str] = mapped_column(String(200))
    questions: Mapped[list] = mapped_column(JSON, default=list)
    expire_after_minutes: Mapped[int] = mapped_column(Integer, default=1440)
    reminder_minutes: Mapped[int | None] = mapped_column(Integer)
    max_invalid_attempts: Mapped[int] = mapped_column(Integer, default=3)
    save_partial_on_expiry: Mapped[bool] = mapped_column(Boolean, default=False)
    case_type: Mapped[str | None] = mapped_column(String(100))
    completion_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SurveySession(db.Model, TenantScoped):
    __tablename__ = "survey_sessions"
    __table_args__ = (
        Index(
            "uq_survey_sessions_open_phone",
            "project_id",
            "phone",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_survey_sessions_project_phone", "project_id", "phone", "status"),
        Index("ix_survey_sessions_survey", "project_id", "survey_id", "started_at"),
        Index("ix_survey_sessions_reminder", "status", "reminder_due_at"),
        Index("ix_survey_sessions_expiry", "status", "expires_at"),
        Index("ix_survey_sessions_case", "project_id", "case_pk"),
    )

    id: Mapped[str] = public_id_column()
    survey_id: Mapped[str] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    case_pk: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    phone: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16), default="open")
    current_index: Mapped[int] = mapped_column(Integer, default=0)
    answers: Mapped[dict] = mapped_column(JSON, default=dict)
    invalid_attempts: Mapped[int] = mapped_column(Integer, default=0)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(16), default="keyword")
    keyword_id: Mapped[str | None] = mapped_column(String(32))
    broadcast_id: Mapped[str | None] = mapped_column(String(64))
    form_id: Mapped[str | None] = mapped_column(String(64))
    end_reason: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    reminder_due_at: Mapped[datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Several open cases share the number: the cases (ids) the participant is asked to choose
    # between before the survey's first question; NULL once chosen or when not asked.
    candidate_case_ids: Mapped[list | None] = mapped_column(JSON)

    survey: Mapped[Survey] = relationship(Survey, lazy="joined", viewonly=True)
    case: Mapped[Case | None] = relationship(Case, lazy="joined", viewonly=True)


class Keyword(db.Model, TenantScoped):
    __tablename__ = "sms_keywords"
    __table_args__ = (UniqueConstraint("project_id", "keyword"),)

    id: Mapped[str] = public_id_column()
    keyword: Mapped[str] = mapped_column(String(40))
    reply_text: Mapped[str | None] = mapped_column(Text)
    survey_id: Mapped[str | None] = mapped_column(ForeignKey("surveys.id", ondelete="SET NULL"))
    # True: while the sender has an open survey session, the session takes the message.
    yields_to_session: Mapped[bool] = mapped_column(Boolean, default=True)
    # True: the case's owner (the mobile worker, or the owning group's members) gets an SMS
    # quoting the participant's message.
    notify_owner: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    survey: Mapped[Survey | None] = relationship(Survey, lazy="joined", viewonly=True)


class InboundMessage(db.Model, TenantScoped):
    """Handling state of one inbound message (same id as its ``messages`` row)."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index("ix_inbound_messages_pending", "project_id", "phone", "handled_at", "message_id"),
        Index("ix_inbound_messages_outcome", "project_id", "outcome", "message_id"),
        Index("ix_inbound_messages_unhandled", "handled_at", "received_at"),
        Index("ix_inbound_messages_inbox", "project_id", "inbox_state", "message_id"),
    )

    message_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    phone: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str] = mapped_column(String(16), default="pending")
    detail: Mapped[str | None] = mapped_column(Text)
    routing: Mapped[str | None] = mapped_column(Text)
    case_count: Mapped[int] = mapped_column(Integer, default=0)
    survey_session_id: Mapped[str | None] = mapped_column(String(32))
    keyword_id: Mapped[str | None] = mapped_column(String(32))
    # Inbox triage: NULL when no person needs to look; else open, handled or archived.
    inbox_state: Mapped[str | None] = mapped_column(String(12))
    # A web user's id. No foreign key: adding one would make SQLite copy the whole table;
    # users are deactivated, not deleted.
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    inbox_changed_at: Mapped[datetime | None] = mapped_column(DateTime)


class ProjectText(db.Model, TenantScoped):
    """A project's own wording of one participant text in one language (``messaging.projects.texts``)."""

    __tablename__ = "project_texts"
    __table_args__ = (UniqueConstraint("project_id", "key", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class InboundSettings(db.Model, TenantScoped):
    __tablename__ = "inbound_settings"
    __table_args__ = (UniqueConstraint("project_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    default_reply: Mapped[str | None] = mapped_column(Text)
    # The project's own opt-out and opt-in words beside the shipped ones:
    # {"opt_out": {"HAGARIKA": "rw"}, "opt_in": {...}} (word, folded, to its language).
    command_words: Mapped[dict | None] = mapped_column(JSON)
    sms_app_id: Mapped[str | None] = mapped_column(String(32))
    sms_user_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
