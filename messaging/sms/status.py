"""Delivery statuses reported by the gateway: applied to the message, only ever forward.

Rules:
- **Status callbacks** (`/twilio/status`, signed with the project's token,
  403 otherwise) only move a message forward: a late `sent` never overwrites
  `delivered`. A callback that arrives before the worker has committed the sid
  is kept an hour in Redis and applied when the sid is recorded (Redis away
  then: those early statuses are not applied, the send goes on).
- Twilio's statuses map to ours (``TWILIO_STATUS``); a status we do not know
  changes nothing. A ``failed`` or ``undelivered`` report keeps its error code.
- A report saying the recipient opted out at the provider (Twilio's 21610, a
  provider's blacklist code) records an opt-out (source ``gateway_21610``).
- A report carrying the provider's price records it on the message.
- Each change of status is a ``message.status`` event for the project's webhooks
  (``serialize.status_event_json``), in the transaction that applies it.
- Applying a callback does not commit: the caller owns the transaction
  (the early statuses applied after a send job records its sids commit).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import datetime

from redis.exceptions import RedisError
from sqlalchemy import func, select, update

from messaging import jobs
from messaging.extensions import db
from messaging.forwarding.capture import capture_events
from messaging.gateways.base import StatusReport
from messaging.gateways.twilio import STATUS as TWILIO_STATUSES
from messaging.lib import clock
from messaging.models import Message
from messaging.models.forwarding import EventName
from messaging.sms.gateway_prices import price_micros
from messaging.sms.optouts import opt_out
from messaging.sms.serialize import status_event_json

log = logging.getLogger(__name__)

MESSAGES = Message.__table__
# Per project and gateway: a report only ever applies to a message of the gateway it came through.
EARLY_STATUS_KEY = "sms:early-status:{project_id}:{gateway_id}:{sid}"
EARLY_STATUS_TTL = 3600
# messages.error_code's width: a provider's longer code is cut (Infobip's run to 33 characters).
ERROR_CODE_CHARS = 32

# A provider's status -> ours: our own words, and Twilio's (early statuses and the sweep use them).
TWILIO_STATUS = {**TWILIO_STATUSES, **{ours: ours for ours in ("sent", "delivered", "undelivered", "failed")}}
RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}


def apply_status(
    project_id: int,
    message_id: int,
    gateway_status: str,
    error_code: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Move a message forward to the gateway's status, never backwards; True when it changed. No commit."""
    new = TWILIO_STATUS.get((gateway_status or "").lower())
    if new is None:
        return False
    lower = [s for s, rank in RANK.items() if rank < RANK[new]]
    now = at or clock.now()
    values = {"status": new, "updated_at": now}
    if new == "sent":
        values["sent_at"] = func.coalesce(MESSAGES.c.sent_at, now)
    elif new == "delivered":
        values["delivered_at"] = now
    else:
        values["failed_at"] = now
        if error_code:
            values["error_code"] = str(error_code)[:ERROR_CODE_CHARS]
            values["error_message"] = f"Reported {gateway_status} by the gateway (error {error_code})."
    changed = db.session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.project_id == project_id, MESSAGES.c.id == message_id, MESSAGES.c.status.in_(lower))
        .values(**values)
        .returning(MESSAGES.c.phone, MESSAGES.c.gateway_sid, MESSAGES.c.error_code, MESSAGES.c.error_message)
    ).first()
    if changed is None:
        return False
    event = status_event_json(
        message_id,
        changed.phone,
        new,
        gateway_sid=changed.gateway_sid,
        error_code=changed.error_code,
        error_message=changed.error_message,
    )
    capture_events(project_id, EventName.MESSAGE_STATUS, [(message_id, changed.phone, event)])
    return True


def handle_status_callback(
    project_id: int, report: StatusReport, remember_unknown: bool = True, gateway_id: int | None = None
) -> str:
    """Apply a verified delivery report; returns 'applied', 'unchanged' or 'unknown_sid'. Does not commit.

    ``gateway_id`` is the saved gateway whose URL the report came to: it applies only to an
    outbound message that gateway took (or one of before several gateways, which names none).
    An unknown sid is logged and ignored, but kept for an hour in Redis: a
    report can beat the worker's commit of the sid it belongs to.
    """
    sid = report.sid
    query = select(MESSAGES.c.id, MESSAGES.c.phone).where(
        MESSAGES.c.project_id == project_id,
        MESSAGES.c.gateway_sid == sid,
        MESSAGES.c.direction == "outbound",
    )
    if gateway_id is not None:
        query = query.where((MESSAGES.c.gateway_id == gateway_id) | MESSAGES.c.gateway_id.is_(None))
    row = db.session.execute(query).first()
    if row is None:
        if not remember_unknown:
            return "unknown_sid"
        log.info(
            "status callback for unknown sid project_id=%s sid=%s status=%s", project_id, sid, report.status
        )
        key = EARLY_STATUS_KEY.format(project_id=project_id, gateway_id=gateway_id or 0, sid=sid)
        pipe = jobs.redis_conn().pipeline()
        pipe.rpush(key, json.dumps(asdict(report)))
        pipe.expire(key, EARLY_STATUS_TTL)
        pipe.execute()
        return "unknown_sid"
    changed = apply_status(project_id, row.id, report.status, report.error_code)
    if report.opted_out:
        opt_out(project_id, row.phone, "gateway_21610", message_id=row.id)
    micros = price_micros(report.price)
    if micros is not None:
        db.session.execute(
            update(MESSAGES)
            .where(MESSAGES.c.project_id == project_id, MESSAGES.c.id == row.id)
            .values(price_micros=micros, price_unit=(report.price_unit or "USD").upper()[:3])
        )
    log.info(
        "status callback project_id=%s message_id=%s sid=%s status=%s changed=%s",
        project_id,
        row.id,
        sid,
        report.status,
        changed,
    )
    return "applied" if changed else "unchanged"


def apply_early_statuses(project_id: int, sent: list[tuple[str, int | None]]) -> None:
    """Apply the reports kept in Redis for these just-recorded (sid, gateway id) pairs, then
    commit (when there were any)."""
    redis = jobs.redis_conn()
    keys = [EARLY_STATUS_KEY.format(project_id=project_id, gateway_id=gw or 0, sid=sid) for sid, gw in sent]
    pipe = redis.pipeline()
    for key in keys:
        pipe.lrange(key, 0, -1)
    try:
        kept = pipe.execute()
    except RedisError as exc:  # the sids are committed: a Redis outage must not fail the send job now
        log.warning("early statuses not read (Redis is away): %s", type(exc).__name__)
        return
    found = [(key, pair, items) for key, pair, items in zip(keys, sent, kept, strict=True) if items]
    if not found:
        return
    for key, (_sid, gateway_id), items in found:
        for raw in items:
            report = _kept_report(raw)
            if report is not None:
                handle_status_callback(project_id, report, gateway_id=gateway_id)
        redis.delete(key)
    db.session.commit()


def _kept_report(raw: bytes) -> StatusReport | None:
    """A report kept in Redis (JSON; None for anything unreadable)."""
    try:
        return StatusReport(**json.loads(raw))
    except (ValueError, TypeError):
        return None
