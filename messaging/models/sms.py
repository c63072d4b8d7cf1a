"""The message log, opt-outs and each project's SMS gateway settings.

``messages`` is the source of truth of the sending pipeline: a row is written
(status ``queued``) before any job is enqueued, a send job claims it with a
conditional UPDATE before calling the gateway, and the sweep re-queues what is
due but has no live job. Inbound messages (``direction='inbound'``) live in the
same table.
"""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
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
from sqlalchemy.orm import Mapped, mapped_column, relationship, synonym

from messaging.extensions import db
from messaging.models.base import BigIntPK, TenantScoped, public_id_column, utcnow
from messaging.models.cases import Case


class MessageStatus(StrEnum):
    """A message's status: outbound ``queued -> sending -> sent -> delivered / undelivered /
    failed``; inbound ``received``."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    RECEIVED = "received"


STATUSES = tuple(member.value for member in MessageStatus)
FINAL_STATUSES = (MessageStatus.DELIVERED.value, MessageStatus.UNDELIVERED.value, MessageStatus.FAILED.value)


class Direction(StrEnum):
    """Which way a message went."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


DIRECTIONS = tuple(member.value for member in Direction)


class OptOutSource(StrEnum):
    """How a number's consent changed: a STOP/START word, the gateway's error 21610, the API,
    a case manager (staff, with a reason), or an imported list."""

    KEYWORD = "keyword"
    GATEWAY_21610 = "gateway_21610"
    API = "api"
    STAFF = "staff"
    IMPORT = "import"


OPT_OUT_SOURCES = tuple(member.value for member in OptOutSource)


class Message(db.Model, TenantScoped):
    """One SMS, outbound or inbound.

    ``phone`` is the participant's number (the recipient of an outbound
    message, the sender of an inbound one), E.164. ``from_number`` /
    ``to_number`` are the numbers on the wire; ``sender`` is the from-number
    we used for an outbound message (a synonym of ``from_number``).
    ``error_code`` is the gateway's code (Twilio's number as text) or one of
    ours (``timeout``, ``unknown_outcome``, ``retries_exhausted``);
    ``skip_reason`` says why we never handed it to the gateway
    (``opted_out``, ``cancelled``, ``no_gateway``, ``invalid_number``, ``loop_guard``).
    """

    __tablename__ = "messages"
    __table_args__ = (
        # Also the inbound de-duplication key (one MessageSid stored once per project),
        # and the status-callback look-up by sid (gateway_sid first).
        UniqueConstraint("gateway_sid", "project_id"),
        Index("ix_messages_project_status_id", "project_id", "status", "id"),
        Index("ix_messages_project_broadcast_status", "project_id", "broadcast_id", "status"),
        Index("ix_messages_firing_status", "firing_id", "status"),
        Index("ix_messages_project_case", "project_id", "case_id"),
        Index("ix_messages_project_phone", "project_id", "phone"),
        Index("ix_messages_status_due", "status", "due_at"),
        # The dashboard's days: a project's messages of a time range; its recent failures.
        Index("ix_messages_project_created", "project_id", "created_at"),
        Index(
            "ix_messages_project_failed",
            "project_id",
            "created_at",
            postgresql_where=text("status IN ('failed', 'undelivered')"),
            sqlite_where=text("status IN ('failed', 'undelivered')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    direction: Mapped[str] = mapped_column(String(8), default="outbound")
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    phone: Mapped[str] = mapped_column(String(20))
    from_number: Mapped[str | None] = mapped_column(String(40))
    to_number: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(Integer, default=1)
    encoding: Mapped[str] = mapped_column(String(8), default="GSM-7")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    gateway: Mapped[str | None] = mapped_column(String(16))
    # The saved gateway that took it, or may have (an unknown outcome), or that it came through
    # (inbound); None for a project's unsaved console. Set on a queued message, it pins it to
    # that gateway (a gateway page's test send, a retry after an unknown outcome).
    gateway_id: Mapped[int | None] = mapped_column(Integer)
    gateway_sid: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    # Why an automated message is waiting (``daily_limit`` or ``sending_window``, see
    # messaging.sms.guards); the next claim clears it.
    held_reason: Mapped[str | None] = mapped_column(String(16))
    # What the gateway billed, in millionths of ``price_unit`` (exact integers on both databases).
    price_micros: Mapped[int | None] = mapped_column(BigIntPK)
    price_unit: Mapped[str | None] = mapped_column(String(3))
    # When the gateway was last asked for the price (messaging.sms.gateway_prices).
    price_checked_at: Mapped[datetime | None] = mapped_column(DateTime)
    broadcast_id: Mapped[str | None] = mapped_column(String(64))
    # The broadcast firing (one send of a broadcast) the message belongs to.
    firing_id: Mapped[str | None] = mapped_column(String(32))
    # A conditional alert's message: its rule and occurrence (messaging.alerts).
    alert_id: Mapped[str | None] = mapped_column(String(32))
    alert_occurrence_id: Mapped[int | None] = mapped_column(BigIntPK)
    survey_session_id: Mapped[str | None] = mapped_column(String(64))
    bypass_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    # An automatic reply (default reply, keyword reply, confirmation): what the loop guard counts.
    auto_reply: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The web user who wrote it (a reply from the conversation page or the API). No foreign
    # key: adding one would make SQLite copy the whole message log; users are deactivated,
    # not deleted.
    author_id: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The RQ job that should send it (the sweep re-queues rows whose job is gone).
    job_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(DateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    failed_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    sender = synonym("from_number")
    case: Mapped[Case | None] = relationship(Case, lazy="joined", viewonly=True)


class OptOut(db.Model, TenantScoped):
    """A number that asked not to get messages from this project."""

    __tablename__ = "opt_outs"
    __table_args__ = (UniqueConstraint("project_id", "phone"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(16), default="api")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ConsentChange(StrEnum):
    """What a consent event did: opted the number out, back in, or let one message through
    to an opted-out number (a case manager's confirmed exception)."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    EXCEPTION = "exception"


CONSENT_CHANGES = tuple(member.value for member in ConsentChange)


class ConsentEvent(db.Model, TenantScoped):
    """One change of a number's consent (append-only): what, how, when, by whom, and the
    message that proves it (the STOP it sent, the message the gateway refused with 21610)."""

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_project_phone_id", "project_id", "phone", "id"),
        Index("ix_consent_events_project_id_id", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    change: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    # The word the participant sent (STOP, ARRET...) and its language, for keyword changes.
    word: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(BigIntPK)
    web_user_id: Mapped[int | None] = mapped_column(ForeignKey("web_users.id", ondelete="SET NULL"))
    import_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CannedReply(db.Model, TenantScoped):
    """A saved reply a case manager picks from in the conversation."""

    __tablename__ = "canned_replies"

    id: Mapped[str] = public_id_column()
    title: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class GatewayConfig(db.Model, TenantScoped):
    """One of a project's SMS gateways (messaging.gateways).

    A project may have several: each message goes through the one whose
    ``prefixes`` holds the longest prefix of its number, else the default
    (``is_default``). Twilio's account keeps its own columns (the webhooks look
    gateways up by ``account_sid``); every other kind keeps its settings in
    ``settings`` and its secrets encrypted in ``secrets_encrypted`` (a JSON
    object, never shown again). ``webhook_secret`` is the secret in its
    inbound and status URLs.
    """

    __tablename__ = "sms_gateways"
    __table_args__ = (
        Index("ix_sms_gateways_account_sid", "account_sid"),
        # One default gateway per project.
        Index(
            "uq_sms_gateways_default",
            "project_id",
            unique=True,
            postgresql_where=text("is_default"),
            sqlite_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="console")
    name: Mapped[str] = mapped_column(String(80), default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=True)
    prefixes: Mapped[list] = mapped_column(JSON, default=list)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    webhook_secret: Mapped[str | None] = mapped_column(String(64))
    allowed_ips: Mapped[list] = mapped_column(JSON, default=list)
    account_sid: Mapped[str | None] = mapped_column(String(64))
    auth_token_encrypted: Mapped[str | None] = mapped_column(Text)
    from_numbers: Mapped[list] = mapped_column(JSON, default=list)
    messaging_service_sid: Mapped[str | None] = mapped_column(String(64))
    # Messages per second per sender (number or messaging service); project_mps caps the gateway.
    mps: Mapped[int] = mapped_column(Integer, default=10)
    project_mps: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class MessageDayCount(db.Model, TenantScoped):
    """The messages of one past UTC day by direction and status, kept for the dashboard's chart
    (messaging.sms.daily_counts): written once the day is over, never from the log again."""

    __tablename__ = "message_day_counts"
    __table_args__ = (UniqueConstraint("project_id", "day", "direction", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    direction: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    messages: Mapped[int] = mapped_column(Integer)
    segments: Mapped[int] = mapped_column(Integer)


class SmsPrice(db.Model, TenantScoped):
    """A project's price table: what one SMS segment to a country costs, for estimates where the
    gateway reports no price (messaging.sms.usage)."""

    __tablename__ = "sms_prices"
    __table_args__ = (UniqueConstraint("project_id", "country"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    price_micros: Mapped[int] = mapped_column(BigIntPK)
    currency: Mapped[str] = mapped_column(String(3), default="USD")


class DailySendCount(db.Model, TenantScoped):
    """Automated messages handed to the gateway on one local day of a project: the daily limit's
    counter (messaging.sms.guards), raised only by a conditional UPDATE so workers never overshoot."""

    __tablename__ = "daily_send_counts"
    __table_args__ = (UniqueConstraint("project_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    sent: Mapped[int] = mapped_column(Integer, default=0)
