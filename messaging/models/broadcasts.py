"""Broadcasts, their firings, and each firing's recipient snapshot.

- ``broadcasts``: what to send (text, translations or a survey), to whom
  (``recipients``: case groups, cases, mobile workers, user groups) and when
  (``next_fire_at``; ``schedule`` for a repeating one, in local terms).
- ``broadcast_firings``: one send of a broadcast at one instant. The unique
  ``(broadcast_id, fire_at)`` makes a second firing of the same instant
  impossible, however many schedulers race.
- ``broadcast_recipients``: the snapshot of a firing's recipients, taken when
  the firing starts (one ``INSERT ... SELECT``), numbered by ``seq``. The
  fan-out walks it in batches; ``broadcast_firings.cursor`` is the last
  ``seq`` whose messages are written, moved in the same transaction as the
  message rows, so a job that runs twice writes each message once.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from messaging.extensions import db
from messaging.models.base import BigIntPK, TenantScoped, public_id_column, utcnow


class FiringStatus(StrEnum):
    """A firing's progress."""

    PENDING = "pending"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


FIRING_STATUSES = tuple(member.value for member in FiringStatus)


class SkipReason(StrEnum):
    """Why a broadcast recipient gets no message."""

    CLOSED_CASE = "closed_case"
    NO_PHONE = "no_phone"
    INVALID_NUMBER = "invalid_number"
    DUPLICATE_PHONE = "duplicate_phone"
    OPTED_OUT = "opted_out"


SKIP_REASONS = tuple(member.value for member in SkipReason)


class Broadcast(db.Model, TenantScoped):
    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_next_fire", "next_fire_at"),)

    id: Mapped[str] = public_id_column()
    name: Mapped[str] = mapped_column(String(200))
    # {"case_groups": [ids], "cases": [case_ids], "users": [ids], "groups": [ids]}
    recipients: Mapped[dict] = mapped_column(JSON, default=dict)
    text: Mapped[str | None] = mapped_column(Text)
    translations: Mapped[dict] = mapped_column(JSON, default=dict)
    default_language: Mapped[str | None] = mapped_column(String(16))
    survey_id: Mapped[str | None] = mapped_column(ForeignKey("surveys.id", ondelete="SET NULL"))
    # A repeating schedule (messaging.lib.schedule.to_dict); None for "now" and "once at send_at".
    schedule: Mapped[dict | None] = mapped_column(JSON)
    send_at: Mapped[datetime | None] = mapped_column(DateTime)
    next_fire_at: Mapped[datetime | None] = mapped_column(DateTime)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)


class BroadcastFiring(db.Model, TenantScoped):
    __tablename__ = "broadcast_firings"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "fire_at"),
        Index("ix_broadcast_firings_status", "status", "updated_at"),
        Index("ix_broadcast_firings_project_started", "project_id", "started_at"),
    )

    id: Mapped[str] = public_id_column()
    broadcast_id: Mapped[str] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    fire_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    total: Mapped[int | None] = mapped_column(Integer)
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    messages: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class BroadcastRecipient(db.Model):
    """One recipient of one firing (reached through its firing, which is project-scoped)."""

    __tablename__ = "broadcast_recipients"
    __table_args__ = (Index("ix_broadcast_recipients_reason", "firing_id", "skip_reason"),)

    firing_id: Mapped[str] = mapped_column(
        ForeignKey("broadcast_firings.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_pk: Mapped[int | None] = mapped_column(BigIntPK)
    worker_id: Mapped[str | None] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    skip_reason: Mapped[str | None] = mapped_column(String(32))
