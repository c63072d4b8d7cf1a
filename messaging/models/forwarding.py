"""Data forwarding: where to POST forms/cases, the outbox of records to send, and each attempt.

Also the log of outgoing e-mails (``outbound_emails``), written by ``messaging.notifications.mail``.
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
)
from sqlalchemy.orm import Mapped, mapped_column

from messaging.extensions import db
from messaging.models.base import BigIntPK, TenantScoped, public_id_column, utcnow


class ForwardKind(StrEnum):
    """What a forwarding location receives."""

    FORMS = "forms"
    CASES = "cases"
    EVENTS = "events"  # message event webhooks: message.inbound, message.status, ...


FORWARD_KINDS = tuple(member.value for member in ForwardKind)


class EventName(StrEnum):
    """The message events a webhook (a location of kind ``events``) can receive."""

    MESSAGE_INBOUND = "message.inbound"
    MESSAGE_STATUS = "message.status"
    OPT_OUT_CHANGED = "opt_out.changed"
    SURVEY_COMPLETED = "survey.completed"


EVENT_NAMES = tuple(member.value for member in EventName)


class RecordStatus(StrEnum):
    """A forwarding record's progress."""

    PENDING = "pending"
    SENDING = "sending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


RECORD_STATUSES = tuple(member.value for member in RecordStatus)


class ForwardLocation(db.Model, TenantScoped):
    """A URL that receives every new form (kind ``forms``) or every changed case (``cases``)."""

    __tablename__ = "forward_locations"
    # capture_form/capture_case look locations up by (project, kind) on every save.
    __table_args__ = (Index("ix_forward_locations_project_kind", "project_id", "kind"),)

    id: Mapped[str] = public_id_column()
    name: Mapped[str] = mapped_column(String(200), default="")
    url: Mapped[str] = mapped_column(String(2000))
    kind: Mapped[str] = mapped_column(String(8))
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    # What a form or case is sent as: "native" (this server's JSON) or "commcare" (CommCare HQ's
    # form and case JSON, headers and ?app_id=, messaging.forwarding.commcare_format).
    format: Mapped[str] = mapped_column(String(16), default="native", server_default="native")
    notify_emails: Mapped[list] = mapped_column(JSON, default=list)
    # For kind ``events``: the event names this webhook receives.
    events: Mapped[list | None] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # When the last "records gave up" e-mail went out (at most one per FORWARDING_NOTIFY_INTERVAL).
    last_notified_at: Mapped[datetime | None] = mapped_column(DateTime)


class ForwardRecord(db.Model, TenantScoped):
    """One form or case change to POST to one location (the transactional outbox)."""

    __tablename__ = "forward_records"
    __table_args__ = (
        # The sender: a location's pending records in order.
        Index("ix_forward_records_location_status_id", "location_id", "status", "id"),
        # The page and the API: a location's records, newest first.
        Index("ix_forward_records_location_id_id", "location_id", "id"),
        # The sweep: due pending records and failures not yet e-mailed, across projects.
        Index("ix_forward_records_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("forward_locations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    # form_id for forms, case_id for cases.
    object_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set when a failed (given-up) record was reported by e-mail (or had nobody to tell).
    notified_at: Mapped[datetime | None] = mapped_column(DateTime)


class ForwardRecordKey(db.Model):
    """The ordering keys of a record: its case id (cases); each touched case id, or
    the form id when it touched none (forms). A record is sent only when no older
    record of the same location sharing one of its keys is pending or sending."""

    __tablename__ = "forward_record_keys"
    __table_args__ = (Index("ix_forward_record_keys_record", "record_id"),)

    location_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ordering_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("forward_records.id", ondelete="CASCADE"), primary_key=True
    )


class ForwardAttempt(db.Model, TenantScoped):
    """One POST of a record: when, how long, the status code and the start of the answer."""

    __tablename__ = "forward_attempts"
    __table_args__ = (
        Index("ix_forward_attempts_location_id_id", "location_id", "id"),
        Index("ix_forward_attempts_record_id", "record_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    location_id: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("forward_records.id", ondelete="CASCADE"))
    attempt_number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)


class OutboundEmail(db.Model):
    """Every e-mail the server sends (or, without SMTP_HOST, prints), so any process can see it."""

    __tablename__ = "outbound_emails"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=True
    )
    to_addresses: Mapped[list] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # What the e-mail is about, e.g. "forward_location:<id>".
    topic: Mapped[str] = mapped_column(String(100), default="", index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending/sent/printed/failed
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
