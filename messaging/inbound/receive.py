"""Receiving an inbound SMS: store it once per MessageSid, then enqueue its number's handling.

Rules:

- ``receive_inbound`` is called by ``POST /twilio/inbound`` after the signature
  check and by the phone simulator, so both take the same path.
- The ``messages`` row (``direction='inbound'``, ``status='received'``,
  ``gateway_sid`` = the MessageSid) and its ``inbound_messages`` row (pending)
  are inserted in one transaction. The unique ``(gateway_sid, project_id)``
  makes a Twilio retry (even a concurrent one) find the first row: it is stored
  once and enqueued once.
- The sender is kept as E.164 when it is, else normalised with the project's
  default country (else kept as sent, cut to 20 characters).
- A text longer than ``INBOUND_MAX_CHARS`` (1,600, Twilio's own cap) keeps
  its first ``INBOUND_MAX_CHARS`` characters; the message notes it in its
  ``error_message`` ("Truncated: N characters received, the first 1600
  kept.") and a WARNING names the message id and the length received.
- A new message is a ``message.inbound`` event for the project's webhooks, in the
  same transaction (a retry of a stored MessageSid is not a new event).
- The logs name the sender by its last four digits only, never the text.
- After the commit, the job ``workers.jobs.inbound.handle_number(project_id,
  phone)`` is enqueued. If Redis loses it (or is down: the error is logged), the
  periodic ``sweep_pending`` enqueues numbers whose messages wait longer than
  ``INBOUND_SWEEP_AFTER`` seconds (30 by default).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import insert, select

from messaging import jobs
from messaging.db.dialect import insert_ignoring_conflicts
from messaging.extensions import db
from messaging.forwarding.capture import capture_events
from messaging.inbound.serialize import inbound_event_json
from messaging.lib import clock
from messaging.lib.phones import normalize_phone
from messaging.lib.redact import mask_phone
from messaging.lib.segments import count_segments
from messaging.models import InboundMessage, Message, Project
from messaging.models.forwarding import EventName
from messaging.sms import e164

log = logging.getLogger(__name__)

MESSAGES = Message.__table__
INBOUND = InboundMessage.__table__
_INSERT_PENDING = insert(INBOUND)


def normalize_sender(project_id: int, raw: str) -> str:
    raw = (raw or "").strip()
    if e164.E164.match(raw):
        return raw
    country = db.session.execute(select(Project.default_country).where(Project.id == project_id)).scalar()
    return normalize_phone(raw, country) or raw[:20]


def receive_inbound(
    project_id: int,
    from_number: str,
    to_number: str,
    body: str,
    sid: str,
    gateway: tuple[str, int | None] | None = None,
) -> tuple[int, bool]:
    """Store an inbound SMS once per ``sid`` and enqueue its handling. Commits.

    ``gateway`` is the (kind, saved gateway id) it came through, when known.
    Returns ``(message_id, created)``; ``created`` is False for a retry of a
    MessageSid already stored (nothing is stored or enqueued again).
    """
    gateway_kind, gateway_id = gateway or (None, None)
    phone = normalize_sender(project_id, from_number)
    body = body or ""
    received_chars = len(body)
    body, note = cap_body(body, int(current_app.config.get("INBOUND_MAX_CHARS", 1600)))
    now = clock.now()
    info = count_segments(body)
    # One round trip decides "new or retry": the insert skips a MessageSid that is
    # already stored (even by a concurrent retry), instead of looking it up first.
    # The session's connection, not the ORM execute path: this runs on every webhook
    # request, and plain inserts need none of the ORM's per-statement work.
    connection = db.session.connection()
    message_id = connection.execute(
        insert_ignoring_conflicts(MESSAGES, MESSAGES.c.gateway_sid, MESSAGES.c.project_id).returning(
            MESSAGES.c.id
        ),
        {
            "project_id": project_id,
            "direction": "inbound",
            "phone": phone[:20],
            "from_number": (from_number or "")[:40],
            "to_number": (to_number or "")[:40],
            "body": body,
            "segments": info.segments,
            "encoding": info.encoding,
            "status": "received",
            "error_message": note,
            "gateway_sid": sid,
            "gateway": gateway_kind,
            "gateway_id": gateway_id,
            "bypass_opt_out": False,
            "attempts": 0,
            "created_at": now,
            "queued_at": None,
            "updated_at": now,
        },
    ).scalar()
    if message_id is None:
        existing = _existing(project_id, sid)
        log.info("inbound retry project_id=%s sid=%s message_id=%s", project_id, sid, existing)
        return existing, False
    connection.execute(
        _INSERT_PENDING,
        {
            "message_id": message_id,
            "project_id": project_id,
            "phone": phone[:20],
            "received_at": now,
            "outcome": "pending",
            "case_count": 0,
        },
    )
    capture_events(
        project_id,
        EventName.MESSAGE_INBOUND,
        [(message_id, phone, inbound_event_json(message_id, phone, to_number, body, sid, now))],
    )
    db.session.commit()
    log.info(
        "inbound stored project_id=%s message_id=%s sid=%s phone=%s chars=%s",
        project_id,
        message_id,
        sid,
        mask_phone(phone),
        len(body),
    )
    if note:
        log.warning(
            "inbound body truncated project_id=%s message_id=%s from_chars=%s kept=%s",
            project_id,
            message_id,
            received_chars,
            len(body),
        )
    enqueue_number(project_id, phone)
    return message_id, True


def cap_body(body: str, max_chars: int) -> tuple[str, str | None]:
    """``body`` cut to ``max_chars`` characters, and the note saying so (None when it fits)."""
    if len(body) <= max_chars:
        return body, None
    return body[:max_chars], f"Truncated: {len(body)} characters received, the first {max_chars} kept."


def _existing(project_id: int, sid: str) -> int | None:
    return db.session.execute(
        select(MESSAGES.c.id).where(MESSAGES.c.project_id == project_id, MESSAGES.c.gateway_sid == sid)
    ).scalar()


def enqueue_number(project_id: int, phone: str) -> bool:
    """Enqueue the handling job of a number; a Redis error is logged (the sweep catches up)."""
    try:
        # Our own pipeline: the job's hash and its place in the queue go in one round trip.
        with jobs.redis_conn().pipeline() as pipe:
            jobs.enqueue(jobs.HANDLE_NUMBER, project_id, phone, pipeline=pipe)
            pipe.execute()
        return True
    except Exception as exc:  # noqa: BLE001 - the row is safe; the sweep will enqueue it
        log.warning("inbound enqueue failed project_id=%s phone=%s: %s", project_id, mask_phone(phone), exc)
        return False


def sweep_pending(limit: int = 1000) -> int:
    """Enqueue the numbers whose messages wait unhandled for too long (all projects)."""
    after = float(current_app.config.get("INBOUND_SWEEP_AFTER", 30.0))
    cutoff = clock.now() - timedelta(seconds=after)
    rows = db.session.execute(
        select(INBOUND.c.project_id, INBOUND.c.phone)
        .where(INBOUND.c.handled_at.is_(None), INBOUND.c.received_at <= cutoff)
        .group_by(INBOUND.c.project_id, INBOUND.c.phone)
        .limit(limit)
    ).all()
    for row in rows:
        enqueue_number(row.project_id, row.phone)
    if rows:
        log.info("inbound sweep enqueued numbers=%s", len(rows))
    return len(rows)
