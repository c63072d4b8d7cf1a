"""Prices the gateway reports: read from Twilio's message resource once it has one.

Rules:
- Twilio prices a message on its resource some time after it was sent ("may not
  be immediately available"), never in the status callback. The ``sms-prices``
  periodic job (:func:`fetch_prices`, every 5 minutes) asks for the price of the
  Twilio messages handed over between ``PRICE_AFTER`` and ``PRICE_WITHIN`` ago that
  have none yet, each at most once per ``RECHECK`` (``price_checked_at``), at most
  ``BATCH`` per project and run. So a message Twilio never prices (a trial account)
  is asked a bounded number of times, and the report falls back to an estimate.
- The price is kept positive (Twilio writes charges as negative amounts), in
  millionths of its unit, exactly.
- A gateway that cannot be asked (down, bad credentials) leaves the rows for the
  next run; one message's failure never stops the others.
- Unscoped across projects (a periodic job): each Twilio gateway's rows, found by
  ``ix_messages_project_created``, are asked with that gateway, in its project's scope.
  Other providers report prices in their send answers or delivery reports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from messaging.db.tenancy import project_scope
from messaging.extensions import db
from messaging.gateways.base import GatewayError
from messaging.gateways.settings import build_gateway
from messaging.lib import clock
from messaging.models import GatewayConfig, Message
from messaging.sms.prices import MICROS, as_amount

log = logging.getLogger(__name__)

MESSAGES = Message.__table__
PRICE_AFTER = timedelta(minutes=2)
PRICE_WITHIN = timedelta(hours=24)
RECHECK = timedelta(hours=1)
BATCH = 500
PRICED_STATUSES = ("sent", "delivered", "undelivered")


@dataclass
class PriceStats:
    asked: int = 0
    priced: int = 0
    errors: int = 0


def price_micros(price: str | None) -> int | None:
    """A gateway's price string (``-0.00750``) as positive millionths, or None when it is not a number."""
    value = as_amount(price)
    return None if value is None else int((abs(value) * MICROS).to_integral_value())


def fetch_prices(batch: int = BATCH) -> PriceStats:
    """Ask Twilio for the prices of recent messages that have none; returns what was done."""
    stats = PriceStats()
    twilio_gateways = db.session.execute(
        select(GatewayConfig.project_id, GatewayConfig.id)
        .where(GatewayConfig.kind == "twilio")
        .order_by(GatewayConfig.id)
        .execution_options(all_projects=True)  # a periodic job: every Twilio gateway
    ).all()
    for project_id, gateway_id in twilio_gateways:
        with project_scope(project_id):
            fetch_gateway_prices(project_id, gateway_id, batch, stats)
    if stats.asked:
        log.info("prices asked=%s priced=%s errors=%s", stats.asked, stats.priced, stats.errors)
    return stats


def fetch_gateway_prices(project_id: int, gateway_id: int, batch: int, stats: PriceStats) -> None:
    """One Twilio gateway's share of :func:`fetch_prices` (its messages, and the project's Twilio
    messages of before several gateways, which name none, when it is the default); commits."""
    now = clock.now()
    cfg = db.session.get(GatewayConfig, gateway_id)
    taken_here = MESSAGES.c.gateway_id == gateway_id
    if cfg.is_default:
        taken_here = taken_here | MESSAGES.c.gateway_id.is_(None)
    rows = db.session.execute(
        select(MESSAGES.c.id, MESSAGES.c.gateway_sid)
        .where(
            MESSAGES.c.project_id == project_id,
            MESSAGES.c.created_at >= now - PRICE_WITHIN,
            MESSAGES.c.direction == "outbound",
            MESSAGES.c.gateway == "twilio",
            taken_here,
            MESSAGES.c.status.in_(PRICED_STATUSES),
            MESSAGES.c.price_micros.is_(None),
            MESSAGES.c.gateway_sid.is_not(None),
            MESSAGES.c.sent_at <= now - PRICE_AFTER,
            (MESSAGES.c.price_checked_at.is_(None)) | (MESSAGES.c.price_checked_at <= now - RECHECK),
        )
        .order_by(MESSAGES.c.id)
        .limit(batch)
    ).all()
    if not rows:
        return
    try:
        gateway = build_gateway(cfg)
    except GatewayError as exc:
        log.warning("prices not asked project_id=%s gateway_id=%s: %s", project_id, gateway_id, exc.code)
        return
    for message_id, sid in rows:
        stats.asked += 1
        values = {"price_checked_at": now}
        try:
            remote = gateway.fetch(sid)
        except GatewayError as exc:
            stats.errors += 1
            log.info("price not read project_id=%s message_id=%s: %s", project_id, message_id, exc.code)
            if exc.retryable:
                continue  # asked again next run, not an hour later
            remote = None
        micros = price_micros(remote.price) if remote is not None else None
        if micros is not None:
            values.update(price_micros=micros, price_unit=(remote.price_unit or "USD").upper()[:3])
            stats.priced += 1
        db.session.execute(
            update(MESSAGES)
            .where(MESSAGES.c.project_id == project_id, MESSAGES.c.id == message_id)
            .values(**values)
        )
    db.session.commit()
