"""Sending SMS: the message log, the send pipeline, status callbacks, opt-outs and gateway settings.

The database is the truth, the queue only a hint:

1. :func:`queue_messages` / :func:`send_sms` write ``messages`` rows
   (``queued``) and commit them *before* enqueuing send jobs.
2. :func:`send_batch` (the ``workers.jobs.sms.send_messages`` job) claims rows
   with a conditional UPDATE (``queued`` and due -> ``sending``), so a job that
   runs twice, or two workers with the same job, send each message once. It
   waits for a rate-limit slot in Redis, calls the gateway and records the sid.
3. Retryable failures go back to ``queued`` with ``next_attempt_at`` and a
   scheduled job; permanent ones fail at once; 21610 records an opt-out.
4. :func:`sweep` re-queues due rows whose job is gone and resolves rows stuck
   in ``sending`` by asking the gateway (never by sending blindly again).

See README "Sending and delivery guarantees".
"""

from __future__ import annotations

import itertools
import logging
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from rq.job import Job
from sqlalchemy import (
    BigInteger,
    Integer,
    Text,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from messaging import jobs
from messaging.db import dialect
from messaging.db.after_commit import after_commit
from messaging.db.dialect import in_values
from messaging.errors import Invalid
from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.segments import count_segments
from messaging.models import Case, GatewayConfig, Message, OptOut
from messaging.models.messaging import GATEWAY_KINDS, OPT_OUT_SOURCES
from messaging.sms import crypto
from messaging.sms.gateways import (
    ConsoleGateway,
    Gateway,
    GatewayError,
    TwilioGateway,
    pick_sender,
)
from messaging.sms.ratelimit import RateLimiter, project_key, sender_key

log = logging.getLogger(__name__)

INSERT_BATCH = 500
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MESSAGES = Message.__table__
OPT_OUTS = OptOut.__table__
EARLY_STATUS_KEY = "sms:early-status:{sid}"
EARLY_STATUS_TTL = 3600
# Ids per send job: RQ's own work per job (about 4 ms) and the job's gateway look-up are shared
# by this many messages.
DEFAULT_BATCH_SIZE = 500
# The most rows a job claims at once (see _chunk_size).
MAX_CHUNK = 250
# A job hands its remaining messages back to the queue after waiting this long for rate-limit slots.
MAX_RATE_WAIT = 10.0

# Twilio's statuses -> ours, and how far along each of ours is (statuses only move forward).
TWILIO_STATUS = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}


def _cfg(name, default):
    return current_app.config.get(name, default)


def batch_size() -> int:
    """Message ids per send job (``SMS_BATCH_SIZE``)."""
    return int(_cfg("SMS_BATCH_SIZE", DEFAULT_BATCH_SIZE))


def sending_lease() -> float:
    """Seconds a job may go on sending the rows of one claim: half ``SMS_SENDING_TIMEOUT``.

    After ``SMS_SENDING_TIMEOUT`` the sweep takes a row still in ``sending``
    for one whose worker died, and may queue it again; a live worker stops
    well before that and hands its unsent rows back, so the two never race.
    """
    return float(_cfg("SMS_SENDING_TIMEOUT", 120.0)) / 2


def retry_delays() -> tuple[float, ...]:
    return tuple(_cfg("SMS_RETRY_DELAYS", (30.0, 120.0, 600.0)))


def max_attempts() -> int:
    return len(retry_delays()) + 1


# --- opt-outs ----------------------------------------------------------------------


def opt_out(project_id: int, phone: str, source: str = "api") -> bool:
    """Record that ``phone`` (E.164) opted out of this project; True when it is new. Does not commit."""
    if source not in OPT_OUT_SOURCES:
        raise ValueError(f"unknown opt-out source {source!r}")
    if is_opted_out(project_id, phone):
        return False
    try:
        with db.session.begin_nested():
            db.session.execute(
                insert(OPT_OUTS).values(
                    project_id=project_id, phone=phone, source=source, created_at=clock.now()
                )
            )
    except IntegrityError:  # another request recorded it at the same moment
        return False
    log.info("opt-out project_id=%s phone=%s source=%s", project_id, phone, source)
    return True


def opt_in(project_id: int, phone: str) -> bool:
    """Remove ``phone``'s opt-out; True when there was one. Does not commit."""
    result = db.session.execute(
        OPT_OUTS.delete().where(OPT_OUTS.c.project_id == project_id, OPT_OUTS.c.phone == phone)
    )
    if result.rowcount:
        log.info("opt-in project_id=%s phone=%s", project_id, phone)
    return bool(result.rowcount)


def is_opted_out(project_id: int, phone: str) -> bool:
    return bool(opted_out_among(project_id, [phone]))


def opted_out_among(project_id: int, phones: Iterable[str]) -> set[str]:
    """The numbers of ``phones`` that opted out of this project (one query)."""
    phones = list({p for p in phones if p})
    if not phones:
        return set()
    rows = db.session.execute(
        select(OPT_OUTS.c.phone).where(OPT_OUTS.c.project_id == project_id, OPT_OUTS.c.phone.in_(phones))
    )
    return {r[0] for r in rows}


# --- gateway settings ----------------------------------------------------------------


def gateway_config(project_id: int) -> GatewayConfig:
    """The project's gateway settings; a transient console (``SMS_GATEWAY``) default when none are saved."""
    cfg = db.session.execute(
        select(GatewayConfig)
        .where(GatewayConfig.project_id == project_id)
        .execution_options(all_projects=True)
    ).scalar_one_or_none()
    if cfg is None:
        cfg = GatewayConfig(
            project_id=project_id,
            kind=_cfg("SMS_GATEWAY", "console")
            if _cfg("SMS_GATEWAY", "console") in GATEWAY_KINDS
            else "console",
            from_numbers=[],
            mps=10,
        )
    return cfg


def save_gateway(
    project_id: int,
    *,
    kind: str,
    account_sid: str | None = None,
    auth_token: str | None = None,
    from_numbers: list[str] | None = None,
    messaging_service_sid: str | None = None,
    mps: int | None = None,
    project_mps: int | None = None,
) -> GatewayConfig:
    """Validate and save the project's gateway (an empty ``auth_token`` keeps the stored one). No commit."""
    if kind not in GATEWAY_KINDS:
        raise Invalid("validation_error", f"kind: must be one of {', '.join(GATEWAY_KINDS)}.", field="kind")
    numbers = []
    for raw in from_numbers or []:
        number = (raw or "").strip().replace(" ", "")
        if not number:
            continue
        if not E164.match(number):
            raise Invalid(
                "validation_error",
                f"from_numbers: {raw!r} is not an E.164 number like +15005550006.",
                field="from_numbers",
            )
        if number not in numbers:
            numbers.append(number)
    if mps is not None and not 1 <= mps <= 1000:
        raise Invalid("validation_error", "mps: must be between 1 and 1000.", field="mps")
    if project_mps is not None and not 1 <= project_mps <= 10000:
        raise Invalid("validation_error", "project_mps: must be between 1 and 10000.", field="project_mps")
    existing = db.session.execute(
        select(GatewayConfig)
        .where(GatewayConfig.project_id == project_id)
        .execution_options(all_projects=True)
    ).scalar_one_or_none()
    cfg = existing or GatewayConfig(project_id=project_id, from_numbers=[], mps=10)
    if kind == "twilio":
        account_sid = (account_sid or "").strip()
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", account_sid):
            raise Invalid(
                "validation_error",
                "account_sid: a Twilio Account SID is AC followed by 32 hex characters.",
                field="account_sid",
            )
        service = (messaging_service_sid or "").strip() or None
        if service and not re.fullmatch(r"MG[0-9a-fA-F]{32}", service):
            raise Invalid(
                "validation_error",
                "messaging_service_sid: a Messaging Service SID is MG followed by 32 hex characters.",
                field="messaging_service_sid",
            )
        if not numbers and not service:
            raise Invalid(
                "validation_error",
                "from_numbers: give at least one number, or a messaging_service_sid.",
                field="from_numbers",
            )
        token = (auth_token or "").strip()
        keeps_token = not token and cfg.auth_token_encrypted and cfg.account_sid == account_sid
        if not token and not keeps_token:
            raise Invalid("validation_error", "auth_token: is required.", field="auth_token")
        if token:
            cfg.auth_token_encrypted = crypto.encrypt(token)
        cfg.account_sid = account_sid
        cfg.messaging_service_sid = service
    else:
        cfg.messaging_service_sid = (messaging_service_sid or "").strip() or None
    cfg.kind = kind
    cfg.from_numbers = numbers
    if mps is not None:
        cfg.mps = mps
    cfg.project_mps = project_mps
    cfg.updated_at = clock.now()
    if existing is None:
        db.session.add(cfg)
    db.session.flush()
    log.info("gateway saved project_id=%s kind=%s senders=%s", project_id, kind, len(numbers))
    return cfg


def gateway_json(cfg: GatewayConfig) -> dict:
    """The settings as shown to users: never the auth token, only whether one is stored."""
    return {
        "kind": cfg.kind,
        "account_sid": cfg.account_sid,
        "auth_token_set": bool(cfg.auth_token_encrypted),
        "from_numbers": list(cfg.from_numbers or []),
        "messaging_service_sid": cfg.messaging_service_sid,
        "mps": cfg.mps,
        "project_mps": cfg.project_mps,
        "updated_at": clock.isoformat(cfg.updated_at),
    }


def build_gateway(cfg: GatewayConfig) -> Gateway:
    """The gateway object for these settings; GatewayError (not retryable) when unusable."""
    if cfg.kind == "twilio":
        token = crypto.decrypt(cfg.auth_token_encrypted) if cfg.auth_token_encrypted else None
        if not token or not cfg.account_sid:
            raise GatewayError(
                "no_gateway",
                "The Twilio auth token is missing or unreadable; enter it again.",
                retryable=False,
            )
        return TwilioGateway(cfg.account_sid, token, cfg.messaging_service_sid)
    return ConsoleGateway(cfg.project_id)


def status_callback_url() -> str | None:
    base = _cfg("PUBLIC_BASE_URL", "")
    return f"{base.rstrip('/')}/twilio/status" if base else None


# --- queuing -------------------------------------------------------------------------


@dataclass
class QueueResult:
    """What :func:`queue_messages` did: rows written by outcome, and jobs enqueued."""

    queued: int = 0
    scheduled: int = 0
    failed: Counter = field(default_factory=Counter)
    jobs: int = 0
    ids: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.queued + self.scheduled + sum(self.failed.values())


def _job_id() -> str:
    return "sms-" + uuid.uuid4().hex


def _row_values(project_id: int, row: dict, now: datetime, opted: set[str]) -> dict:
    phone = (row.get("phone") or "").strip()
    body = row.get("body") or ""
    info = count_segments(body)
    due_at = row.get("due_at")
    values = {
        "project_id": project_id,
        "direction": "outbound",
        "case_id": row.get("case_id"),
        "phone": phone[:20],
        "to_number": phone[:40],
        "from_number": None,
        "body": body,
        "segments": info.segments,
        "encoding": info.encoding,
        "status": "queued",
        "gateway": None,
        "broadcast_id": row.get("broadcast_id"),
        "firing_id": row.get("firing_id"),
        "survey_session_id": row.get("survey_session_id"),
        "bypass_opt_out": bool(row.get("bypass_opt_out", False)),
        "attempts": 0,
        "job_id": None,
        "skip_reason": None,
        "error_code": None,
        "error_message": None,
        "created_at": now,
        "queued_at": now,
        "due_at": due_at,
        "next_attempt_at": None,
        "failed_at": None,
        "updated_at": now,
    }
    reason = None
    if not E164.match(phone):
        reason, text = "invalid_number", f"{phone!r} is not an E.164 phone number."
    elif not body.strip():
        reason, text = "empty_body", "The message text is empty."
    elif phone in opted and not values["bypass_opt_out"]:
        reason, text = "opted_out", "The recipient has opted out; not sent."
    if reason:
        values.update(status="failed", skip_reason=reason, error_message=text, failed_at=now)
    return values


def _insert_chunk(
    project_id: int, rows: list[dict], per_job: int, result: QueueResult
) -> list[tuple[str, list[int]]]:
    """Insert one chunk of rows; returns the (job_id, ids) to enqueue once committed."""
    now = clock.now()
    opted = opted_out_among(project_id, (r.get("phone") for r in rows if not r.get("bypass_opt_out")))
    values = [_row_values(project_id, r, now, opted) for r in rows]
    sendable = [v for v in values if v["status"] == "queued" and (v["due_at"] is None or v["due_at"] <= now)]
    jobs = []
    for start in range(0, len(sendable), per_job):
        job_id = _job_id()
        for v in sendable[start : start + per_job]:
            v["job_id"] = job_id
        jobs.append(job_id)
    ids = db.session.execute(
        insert(MESSAGES).returning(MESSAGES.c.id, MESSAGES.c.job_id, sort_by_parameter_order=True), values
    ).all()
    by_job: dict[str, list[int]] = defaultdict(list)
    for (message_id, job_id), v in zip(ids, values, strict=True):
        result.ids.append(message_id)
        if v["status"] == "failed":
            result.failed[v["skip_reason"]] += 1
        elif job_id is None:
            result.scheduled += 1
        else:
            result.queued += 1
            by_job[job_id].append(message_id)
    return [(job_id, by_job[job_id]) for job_id in jobs]


def insert_messages(
    project_id: int, rows: list[dict], result: QueueResult, per_job: int | None = None
) -> list[tuple[str, list[int]]]:
    """Insert outbound rows in the caller's transaction (no commit); returns the (job_id, ids)
    batches to pass to :func:`enqueue_send_jobs` once the caller has committed."""
    per_job = per_job or batch_size()
    batches = []
    for start in range(0, len(rows), INSERT_BATCH):
        batches += _insert_chunk(project_id, rows[start : start + INSERT_BATCH], per_job, result)
    return batches


def enqueue_send_jobs(project_id: int, batches: list[tuple[str, list[int]]], delay: float = 0.0) -> int:
    """Enqueue one send job per (job_id, ids) batch, in bulk. Call after the rows are committed.

    A Redis error is logged and swallowed: the rows are safe in the database
    and the sweep will enqueue them.
    """
    if not batches:
        return 0
    try:
        if delay > 0:
            for job_id, ids in batches:
                jobs.enqueue(
                    jobs.SEND_MESSAGES, project_id, ids, job_id=job_id, delay=timedelta(seconds=delay)
                )
        else:
            jobs.enqueue_many(jobs.SEND_MESSAGES, [(job_id, (project_id, ids)) for job_id, ids in batches])
    except Exception:
        log.exception(
            "enqueue failed project_id=%s jobs=%s (the sweep will re-queue)", project_id, len(batches)
        )
        return 0
    return len(batches)


def queue_messages(
    project_id: int,
    rows: Iterable[dict],
    *,
    per_job: int | None = None,
    insert_batch: int = INSERT_BATCH,
    keep_ids: bool = False,
) -> QueueResult:
    """Write outbound messages and enqueue their send jobs, in bulk. Commits as it goes.

    ``rows``: dicts ``{case_id (internal int or None), phone (E.164), body,
    broadcast_id?, survey_session_id?, due_at? (naive UTC), bypass_opt_out?}``;
    any iterable (a generator over a million recipients is fine: it is read in
    batches of ``insert_batch``). Each batch is inserted with one statement,
    committed, and then its send jobs (``per_job`` message ids each, default
    ``SMS_BATCH_SIZE``) are enqueued with ``enqueue_many``. Rows that cannot
    be sent (invalid number, empty text, opted out) are written as ``failed``
    with a ``skip_reason``; rows due later get no job (the sweep queues them
    when due). Commit your own work before calling this.
    """
    per_job = per_job or batch_size()
    result = QueueResult()
    chunk: list[dict] = []

    def flush():
        batches = _insert_chunk(project_id, chunk, per_job, result)
        db.session.commit()
        result.jobs += enqueue_send_jobs(project_id, batches)
        chunk.clear()

    for row in rows:
        chunk.append(row)
        if len(chunk) >= insert_batch:
            flush()
    if chunk:
        flush()
    if not keep_ids:
        result.ids = []
    log.info(
        "queued messages project_id=%s queued=%s scheduled=%s failed=%s jobs=%s",
        project_id,
        result.queued,
        result.scheduled,
        dict(result.failed),
        result.jobs,
    )
    return result


def send_sms(
    project_id: int,
    phone: str,
    body: str,
    case_id: int | None = None,
    *,
    broadcast_id: str | None = None,
    survey_session_id: str | None = None,
    bypass_opt_out: bool = False,
    due_at: datetime | None = None,
) -> int:
    """Write one outbound message and enqueue its job when the caller commits; returns the message id.

    The row joins the caller's transaction (so a reply and the work that
    caused it commit together); its job is enqueued right after that commit
    (and if Redis is down then, the sweep enqueues it). ``bypass_opt_out``
    sends even to an opted-out number (STOP/START confirmations). A number
    that is not E.164, an empty body or an opted-out recipient gives a row
    ``failed`` with a ``skip_reason`` (still returned).
    """
    result = QueueResult()
    row = {
        "phone": phone,
        "body": body,
        "case_id": case_id,
        "broadcast_id": broadcast_id,
        "survey_session_id": survey_session_id,
        "bypass_opt_out": bypass_opt_out,
        "due_at": due_at,
    }
    batches = _insert_chunk(project_id, [row], 1, result)
    if batches:
        after_commit(enqueue_send_jobs, project_id, batches)
    return result.ids[0]


def cancel_messages(project_id: int, broadcast_id: str) -> int:
    """Fail the broadcast's messages no worker has claimed yet (``skip_reason='cancelled'``).

    Messages already ``sending`` go on (they may be at the gateway). Returns
    how many were cancelled. Does not commit.
    """
    now = clock.now()
    result = db.session.execute(
        update(MESSAGES)
        .where(
            MESSAGES.c.project_id == project_id,
            MESSAGES.c.broadcast_id == broadcast_id,
            MESSAGES.c.status == "queued",
        )
        .values(
            status="failed",
            skip_reason="cancelled",
            error_message="Cancelled before it was sent.",
            failed_at=now,
            updated_at=now,
        )
    )
    log.info(
        "cancelled messages project_id=%s broadcast_id=%s count=%s", project_id, broadcast_id, result.rowcount
    )
    return result.rowcount


# --- sending -------------------------------------------------------------------------


@dataclass
class BatchStats:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    unknown: int = 0
    skipped_claim: int = 0
    handed_back: int = 0
    rate_wait: float = 0.0  # seconds spent waiting for rate-limit slots


def _claim(project_id: int, ids: list[int], now: datetime) -> list:
    """Atomically move due ``queued`` rows to ``sending``; returns the rows this caller won,
    each with ``opted_out`` (its number is on the project's opt-out list) read in the same statement."""
    # Spelled out: SQLAlchemy renders RETURNING's columns without their table, and an
    # unqualified ``phone`` inside the subquery would be the opt-out's own.
    listed = OPT_OUTS.alias("listed")
    opted_out = (
        select(listed.c.phone)
        .where(listed.c.project_id == project_id, listed.c.phone == literal_column("messages.phone"))
        .exists()
    )
    stmt = (
        update(MESSAGES)
        .where(
            MESSAGES.c.project_id == project_id,
            in_values(MESSAGES.c.id, ids, BigInteger),
            MESSAGES.c.status == "queued",
            or_(MESSAGES.c.next_attempt_at.is_(None), MESSAGES.c.next_attempt_at <= now),
            or_(MESSAGES.c.due_at.is_(None), MESSAGES.c.due_at <= now),
        )
        .values(
            status="sending",
            attempts=MESSAGES.c.attempts + 1,
            claimed_at=now,
            next_attempt_at=None,
            updated_at=now,
        )
        .returning(
            MESSAGES.c.id,
            MESSAGES.c.phone,
            MESSAGES.c.body,
            MESSAGES.c.bypass_opt_out,
            MESSAGES.c.attempts,
            opted_out.label("opted_out"),
        )
    )
    rows = db.session.execute(stmt).all()
    db.session.commit()
    rows.sort(key=lambda r: r.id)
    return rows


def _unclaim(project_id: int, ids: list[int]) -> None:
    if not ids:
        return
    db.session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.project_id == project_id, MESSAGES.c.id.in_(ids), MESSAGES.c.status == "sending")
        .values(status="queued", attempts=MESSAGES.c.attempts - 1, claimed_at=None, updated_at=clock.now())
    )


def _limits(project_id: int, cfg: GatewayConfig, sender: str | None) -> dict[str, float]:
    key = sender or cfg.messaging_service_sid or f"{cfg.kind}:{project_id}"
    limits = {sender_key(project_id, key): float(cfg.mps or 0)}
    if cfg.project_mps:
        limits[project_key(project_id)] = float(cfg.project_mps)
    return limits


def _chunk_size(cfg: GatewayConfig) -> int:
    """About one second of sending, at most ``MAX_CHUNK`` rows: claimed rows never wait long
    in ``sending``, and on a fast gateway the claim and record statements' own cost (a round
    trip, planning, a commit, on top of their cost per row) is shared by many messages."""
    rate = (cfg.mps or 100) * max(1, len(cfg.from_numbers or []))
    if cfg.project_mps:
        rate = min(rate, cfg.project_mps)
    return int(max(1, min(MAX_CHUNK, rate)))


def send_batch(project_id: int, ids: list[int], job_id: str | None = None) -> BatchStats:
    """Send the given messages of one project (the body of the send job). Idempotent.

    Each message is claimed before it is sent; messages that are not
    ``queued`` (sent already, cancelled, claimed by another worker) are
    skipped, ones not yet due are re-scheduled. One message's failure never
    stops the others.
    """
    stats = BatchStats()
    cfg = gateway_config(project_id)
    try:
        gateway = build_gateway(cfg)
    except GatewayError as exc:
        gateway, gateway_error = None, exc
    limiter = RateLimiter(jobs.redis_conn())
    callback = status_callback_url() if cfg.kind == "twilio" else None
    pool = list(cfg.from_numbers or [])
    size = _chunk_size(cfg)
    remaining = sorted(set(ids))
    if len(pool) > 1 and len(remaining) > size:
        remaining = _interleave_senders(project_id, remaining, pool)
    while remaining:
        chunk, remaining = remaining[:size], remaining[size:]
        now = clock.now()
        claimed = _claim(project_id, chunk, now)
        lease_ends = time.monotonic() + sending_lease()
        stats.claimed += len(claimed)
        if len(claimed) < len(chunk):
            stats.skipped_claim += len(chunk) - len(claimed)
            _reschedule_not_due(project_id, set(chunk) - {r.id for r in claimed})
        if not claimed:
            continue
        outcomes: list[tuple] = []
        by_sender: dict[str | None, list] = defaultdict(list)
        for row in claimed:
            if gateway is None:
                outcomes.append(("error", row, gateway_error, None))
            elif row.opted_out and not row.bypass_opt_out:
                outcomes.append(("opted_out", row, None, None))
            else:
                by_sender[pick_sender(row.phone, pool)].append(row)
        handed_back = _send_paced(
            project_id,
            cfg,
            gateway,
            limiter,
            by_sender,
            callback,
            job_id,
            outcomes,
            remaining,
            stats,
            lease_ends,
        )
        if handed_back:
            return stats
        _record(project_id, outcomes, stats)
    return stats


def _interleave_senders(project_id: int, ids: list[int], pool: list[str]) -> list[int]:
    """``ids`` in an order that takes the pool's senders in turn (each sender's ids still
    ascending), so that every chunk has about as many rows for each sender.

    A chunk is about one second of the pool's rate; with ids in plain order a
    chunk can hold 14 rows for one sender and 8 for another, and the second
    sender idles while the first finishes. Rows no longer ``queued`` keep their
    place at the end: the claim skips them.
    """
    phones = dict(
        db.session.execute(
            select(MESSAGES.c.id, MESSAGES.c.phone).where(
                MESSAGES.c.project_id == project_id,
                in_values(MESSAGES.c.id, ids, BigInteger),
                MESSAGES.c.status == "queued",
            )
        ).all()
    )
    db.session.commit()  # no transaction held open while sending
    by_sender: dict[str | None, list[int]] = defaultdict(list)
    for message_id in ids:
        if message_id in phones:
            by_sender[pick_sender(phones[message_id], pool)].append(message_id)
    turns = itertools.zip_longest(*by_sender.values())
    ordered = [message_id for turn in turns for message_id in turn if message_id is not None]
    return ordered + [message_id for message_id in ids if message_id not in phones]


def _send_paced(
    project_id, cfg, gateway, limiter, by_sender, callback, job_id, outcomes, remaining, stats, lease_ends
) -> bool:
    """Send the claimed rows of each sender at the slots booked for them; all senders interleaved.

    Slots are booked a quarter second of sending at a time per sender, up to
    one second ahead, and the messages go in slot order, so a worker keeps
    every sender of the pool busy at its rate. The unsent rows are released
    and handed back to the queue (and True returned) when no slot comes for
    ``MAX_RATE_WAIT`` seconds (other jobs saturate the senders), or when the
    chunk's lease (:func:`sending_lease`) runs out before they are sent.
    """
    parts = []
    for sender, group in by_sender.items():
        limits = _limits(project_id, cfg, sender)
        step = max(1, int(min(limits.values()) * 0.25))
        parts.append([(sender, limits, group[i : i + step]) for i in range(0, len(group), step)])
    # Interleave: the first part of every sender, then the second of every sender...
    todo = [p for round_ in itertools.zip_longest(*parts) for p in round_ if p is not None]
    waited_since = None
    order = itertools.count()
    while todo:
        booked, deferred, soonest = [], [], None
        for sender, limits, part in todo:
            res = limiter.reserve(limits, max_ahead=1.0, count=len(part))
            if res.granted:
                booked.extend((res.slot(i), next(order), row, sender) for i, row in enumerate(part))
            else:
                deferred.append((sender, limits, part))
                soonest = res.wait if soonest is None else min(soonest, res.wait)
        if not booked:
            waited_since = waited_since or time.monotonic()
            if time.monotonic() - waited_since > MAX_RATE_WAIT:
                rest = [row.id for _, _, part in deferred for row in part]
                _release(project_id, outcomes, rest, remaining, stats, "rate limited")
                return True
            pause = max(0.01, min((soonest or 0.5) - 0.9, 0.5))
            stats.rate_wait += pause
            time.sleep(pause)
        else:
            waited_since = None
        booked.sort(key=lambda b: (b[0], b[1]))
        for index, (at, _, row, sender) in enumerate(booked):
            if time.monotonic() > lease_ends:
                rest = [b[2].id for b in booked[index:]] + [r.id for _, _, part in deferred for r in part]
                _release(project_id, outcomes, rest, remaining, stats, "lease ran out")
                return True
            delay = at - time.monotonic()
            if delay > 0:
                stats.rate_wait += delay
                time.sleep(delay)
            outcomes.append(_send_one(gateway, project_id, row, sender, callback, job_id))
        todo = deferred
    return False


def _send_one(gateway: Gateway, project_id: int, row, sender: str | None, callback: str | None, job_id):
    try:
        return ("sent", row, gateway.send(row.phone, row.body, sender, callback), sender)
    except GatewayError as exc:
        return ("error", row, exc, sender)
    except Exception as exc:  # a bug or an odd failure: the outcome is unknown, the sweep resolves it
        log.exception("send crashed project_id=%s message_id=%s job_id=%s", project_id, row.id, job_id)
        error = GatewayError("internal_error", repr(exc), retryable=True, outcome_unknown=True)
        return ("error", row, error, sender)


def _reschedule_not_due(project_id: int, ids: set[int]) -> None:
    """Ids this job could not claim because they are not due yet get a job at their time."""
    if not ids:
        return
    now = clock.now()
    rows = db.session.execute(
        select(MESSAGES.c.id, MESSAGES.c.next_attempt_at, MESSAGES.c.due_at).where(
            MESSAGES.c.project_id == project_id, MESSAGES.c.id.in_(list(ids)), MESSAGES.c.status == "queued"
        )
    ).all()
    if not rows:
        return
    when = max(max((r.next_attempt_at or now), (r.due_at or now)) for r in rows)
    _schedule_ids(project_id, [r.id for r in rows], max(0.0, (when - now).total_seconds()))


def _schedule_ids(project_id: int, ids: list[int], delay: float) -> None:
    job_id = _job_id()
    db.session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.project_id == project_id, MESSAGES.c.id.in_(ids), MESSAGES.c.status == "queued")
        .values(job_id=job_id)
    )
    db.session.commit()
    enqueue_send_jobs(project_id, [(job_id, ids)], delay=delay)


def _release(
    project_id: int,
    outcomes: list[tuple],
    unsent: list[int],
    remaining: list[int],
    stats: BatchStats,
    why: str,
) -> None:
    """Record what was sent, give the unsent claimed rows back (``queued``, the attempt not
    counted), and queue them with the job's unclaimed rest at the back of the queue."""
    _record(project_id, outcomes, stats)
    _unclaim(project_id, unsent)
    db.session.commit()
    stats.handed_back += len(unsent) + len(remaining)
    log.info("%s: handing back project_id=%s messages=%s", why, project_id, len(unsent) + len(remaining))
    _schedule_ids(project_id, unsent + remaining, 0.0)  # no scheduler needed


def _record(project_id: int, outcomes: list[tuple], stats: BatchStats) -> None:
    """Write the outcomes of one chunk in a few statements, commit, then apply early callbacks."""
    if not outcomes:
        return
    now = clock.now()
    sent_rows, final_rows, retry_rows, unknown_rows = [], [], [], []
    delays = retry_delays()
    opt_outs = []
    for kind, row, info, sender in outcomes:
        if kind == "sent":
            sent_rows.append(
                {
                    "b_id": row.id,
                    "b_sid": info.sid,
                    "b_from": info.from_number or sender,
                    "b_seg": info.segments,
                }
            )
        elif kind == "opted_out":
            final_rows.append(
                {
                    "b_id": row.id,
                    "b_code": None,
                    "b_msg": "The recipient has opted out; not sent.",
                    "b_reason": "opted_out",
                }
            )
        else:
            exc: GatewayError = info
            if exc.opted_out:
                opt_outs.append(row.phone)
                final_rows.append(
                    {"b_id": row.id, "b_code": exc.code, "b_msg": exc.message, "b_reason": "opted_out"}
                )
            elif exc.outcome_unknown:
                unknown_rows.append(
                    {
                        "b_id": row.id,
                        "b_code": exc.code,
                        "b_msg": exc.message,
                        "b_at": now + timedelta(seconds=float(_cfg("SMS_UNKNOWN_CHECK_DELAY", 60.0))),
                        "b_from": sender,
                    }
                )
            elif exc.retryable and row.attempts < max_attempts():
                retry_rows.append(
                    {
                        "b_id": row.id,
                        "b_code": exc.code,
                        "b_msg": exc.message,
                        "b_at": now + timedelta(seconds=delays[row.attempts - 1]),
                        "delay": delays[row.attempts - 1],
                    }
                )
            else:
                message = exc.message
                if exc.retryable:
                    message = f"Gave up after {row.attempts} attempts: {exc.message}"
                final_rows.append(
                    {
                        "b_id": row.id,
                        "b_code": exc.code,
                        "b_msg": message,
                        "b_reason": exc.code == "no_gateway" and "no_gateway" or None,
                    }
                )
    by_id = MESSAGES.c.id == bindparam("b_id")
    mine = and_(MESSAGES.c.project_id == project_id, by_id, MESSAGES.c.status == "sending")
    if sent_rows:
        _record_sent(project_id, sent_rows, now)
    if final_rows:
        db.session.execute(
            update(MESSAGES)
            .where(mine)
            .values(
                status="failed",
                error_code=bindparam("b_code"),
                error_message=bindparam("b_msg"),
                skip_reason=bindparam("b_reason"),
                failed_at=now,
                updated_at=now,
            ),
            final_rows,
        )
    job_ids: dict[float, str] = {}
    if retry_rows:
        for r in retry_rows:
            r["b_job"] = job_ids.setdefault(r.pop("delay"), _job_id())
        db.session.execute(
            update(MESSAGES)
            .where(mine)
            .values(
                status="queued",
                error_code=bindparam("b_code"),
                error_message=bindparam("b_msg"),
                next_attempt_at=bindparam("b_at"),
                job_id=bindparam("b_job"),
                updated_at=now,
            ),
            retry_rows,
        )
    if unknown_rows:
        # Stays "sending": it may be at the gateway. The sweep asks the gateway at next_attempt_at.
        db.session.execute(
            update(MESSAGES)
            .where(mine)
            .values(
                error_code=bindparam("b_code"),
                error_message=bindparam("b_msg"),
                next_attempt_at=bindparam("b_at"),
                from_number=bindparam("b_from"),
                updated_at=now,
            ),
            unknown_rows,
        )
    for phone in opt_outs:
        opt_out(project_id, phone, "gateway_21610")
    db.session.commit()
    stats.sent += len(sent_rows)
    stats.failed += len(final_rows)
    stats.retrying += len(retry_rows)
    stats.unknown += len(unknown_rows)
    for delay, job_id in job_ids.items():
        ids = [r["b_id"] for r in retry_rows if r["b_job"] == job_id]
        enqueue_send_jobs(project_id, [(job_id, ids)], delay=delay)
    if sent_rows:
        _apply_early_statuses(project_id, [r["b_sid"] for r in sent_rows])
    for r in retry_rows:
        log.info(
            "retry project_id=%s message_id=%s code=%s at=%s", project_id, r["b_id"], r["b_code"], r["b_at"]
        )
    for r in final_rows:
        log.info(
            "failed project_id=%s message_id=%s code=%s reason=%s",
            project_id,
            r["b_id"],
            r["b_code"],
            r["b_reason"],
        )
    for r in unknown_rows:
        log.warning("outcome unknown project_id=%s message_id=%s code=%s", project_id, r["b_id"], r["b_code"])


def _record_sent(project_id: int, sent_rows: list[dict], now: datetime) -> None:
    """Mark a chunk's sent rows ``sent`` with their sids (only rows still ``sending``), in
    one statement for the chunk (see ``dialect.update_each``)."""
    dialect.update_each(
        MESSAGES,
        sent_rows,
        match=(MESSAGES.c.id, "b_id"),
        types={"b_id": BigInteger, "b_sid": Text, "b_from": Text, "b_seg": Integer},
        values=lambda v: {
            "status": "sent",
            "gateway_sid": v["b_sid"],
            "from_number": v["b_from"],
            "segments": func.coalesce(v["b_seg"], MESSAGES.c.segments),
            "error_code": None,
            "error_message": None,
            "sent_at": now,
            "updated_at": now,
        },
        where=(MESSAGES.c.project_id == project_id, MESSAGES.c.status == "sending"),
    )


# --- status callbacks ----------------------------------------------------------------


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
            values["error_code"] = str(error_code)
            values["error_message"] = f"Reported {gateway_status} by the gateway (error {error_code})."
    result = db.session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.project_id == project_id, MESSAGES.c.id == message_id, MESSAGES.c.status.in_(lower))
        .values(**values)
    )
    return bool(result.rowcount)


def handle_status_callback(
    project_id: int, sid: str, gateway_status: str, error_code: str | None, remember_unknown: bool = True
) -> str:
    """Apply a verified status callback; returns 'applied', 'unchanged' or 'unknown_sid'. Does not commit.

    An unknown sid is logged and ignored, but kept for an hour in Redis: a
    callback can beat the worker's commit of the sid it belongs to.
    """
    row = db.session.execute(
        select(MESSAGES.c.id, MESSAGES.c.phone).where(
            MESSAGES.c.project_id == project_id, MESSAGES.c.gateway_sid == sid
        )
    ).first()
    if row is None:
        if not remember_unknown:
            return "unknown_sid"
        log.info(
            "status callback for unknown sid project_id=%s sid=%s status=%s", project_id, sid, gateway_status
        )
        key = EARLY_STATUS_KEY.format(sid=sid)
        pipe = jobs.redis_conn().pipeline()
        pipe.rpush(key, f"{gateway_status}|{error_code or ''}")
        pipe.expire(key, EARLY_STATUS_TTL)
        pipe.execute()
        return "unknown_sid"
    changed = apply_status(project_id, row.id, gateway_status, error_code)
    if error_code and str(error_code) == "21610":
        opt_out(project_id, row.phone, "gateway_21610")
    log.info(
        "status callback project_id=%s message_id=%s sid=%s status=%s changed=%s",
        project_id,
        row.id,
        sid,
        gateway_status,
        changed,
    )
    return "applied" if changed else "unchanged"


def _apply_early_statuses(project_id: int, sids: list[str]) -> None:
    redis = jobs.redis_conn()
    pipe = redis.pipeline()
    for sid in sids:
        pipe.lrange(EARLY_STATUS_KEY.format(sid=sid), 0, -1)
    found = [(sid, items) for sid, items in zip(sids, pipe.execute(), strict=True) if items]
    if not found:
        return
    for sid, items in found:
        for raw in items:
            status, _, code = raw.decode().partition("|")
            handle_status_callback(project_id, sid, status, code or None)
        redis.delete(EARLY_STATUS_KEY.format(sid=sid))
    db.session.commit()


# --- the sweep -----------------------------------------------------------------------


@dataclass
class SweepStats:
    requeued: int = 0
    resolved_sent: int = 0
    resolved_requeued: int = 0
    resolved_failed: int = 0
    jobs: int = 0


def sweep(limit: int = 20_000, time_budget: float = 10.0) -> SweepStats:
    """Re-queue due messages whose job is gone, and resolve messages stuck in ``sending``.

    Runs unscoped over all projects (a periodic job). Safe to run anywhere,
    any number of times: it only enqueues jobs (which claim before sending)
    and asks the gateway about uncertain messages.
    """
    stats = SweepStats()
    started = time.monotonic()
    _resolve_stuck(stats, limit)
    _requeue_orphans(stats, limit, started, time_budget)
    if stats.requeued or stats.resolved_sent or stats.resolved_requeued or stats.resolved_failed:
        log.info("sweep %s", stats)
    return stats


def _requeue_orphans(stats: SweepStats, limit: int, started: float, time_budget: float) -> None:
    now = clock.now()
    grace = timedelta(seconds=float(_cfg("SMS_SWEEP_GRACE", 30.0)))
    stale_after = float(_cfg("SMS_JOB_STALE_SECONDS", 900.0))
    last_id = 0
    seen = 0
    while seen < limit and time.monotonic() - started < time_budget:
        rows = db.session.execute(
            select(MESSAGES.c.id, MESSAGES.c.project_id, MESSAGES.c.job_id)
            .where(
                MESSAGES.c.status == "queued",
                MESSAGES.c.id > last_id,
                or_(MESSAGES.c.due_at.is_(None), MESSAGES.c.due_at <= now),
                or_(MESSAGES.c.next_attempt_at.is_(None), MESSAGES.c.next_attempt_at <= now),
                MESSAGES.c.updated_at <= now - grace,
            )
            .order_by(MESSAGES.c.id)
            .limit(5000)
        ).all()
        if not rows:
            break
        seen += len(rows)
        last_id = rows[-1].id
        job_ids = sorted({r.job_id for r in rows if r.job_id})
        alive = set()
        if job_ids:
            fetched = Job.fetch_many(job_ids, connection=jobs.redis_conn())
            for job_id, job in zip(job_ids, fetched, strict=True):
                if job is None:
                    continue
                status = job.get_status(refresh=False)
                status = getattr(status, "value", status)
                if status in ("queued", "scheduled", "deferred"):
                    alive.add(job_id)
                elif status == "started" and job.started_at is not None:
                    age = (clock.now() - job.started_at.replace(tzinfo=None)).total_seconds()
                    if age < stale_after:
                        alive.add(job_id)
        orphans: dict[int, list[int]] = defaultdict(list)
        for r in rows:
            if r.job_id not in alive:
                orphans[r.project_id].append(r.id)
        for project_id, ids in orphans.items():
            per_job = batch_size()
            batches = []
            for start in range(0, len(ids), per_job):
                part = ids[start : start + per_job]
                job_id = _job_id()
                db.session.execute(
                    update(MESSAGES)
                    .where(
                        MESSAGES.c.project_id == project_id,
                        MESSAGES.c.id.in_(part),
                        MESSAGES.c.status == "queued",
                    )
                    .values(job_id=job_id)
                )
                batches.append((job_id, part))
            db.session.commit()
            stats.jobs += enqueue_send_jobs(project_id, batches)
            stats.requeued += len(ids)
            log.info("sweep re-queued project_id=%s messages=%s jobs=%s", project_id, len(ids), len(batches))


def _resolve_stuck(stats: SweepStats, limit: int) -> None:
    now = clock.now()
    timeout = timedelta(seconds=float(_cfg("SMS_SENDING_TIMEOUT", 120.0)))
    rows = db.session.execute(
        select(MESSAGES.c.id, MESSAGES.c.project_id)
        .where(
            MESSAGES.c.status == "sending",
            or_(
                and_(MESSAGES.c.next_attempt_at.is_not(None), MESSAGES.c.next_attempt_at <= now),
                MESSAGES.c.claimed_at <= now - timeout,
            ),
        )
        .order_by(MESSAGES.c.id)
        .limit(min(limit, 2000))
    ).all()
    by_project: dict[int, list[int]] = defaultdict(list)
    for r in rows:
        by_project[r.project_id].append(r.id)
    for project_id, ids in by_project.items():
        resolve_uncertain(project_id, ids, stats)


def resolve_uncertain(project_id: int, ids: list[int], stats: SweepStats | None = None) -> SweepStats:
    """Settle messages stuck in ``sending`` by asking the gateway, never by sending blindly.

    With a sid, the gateway's status is recorded. Without one, the gateway's
    recent messages to the number are searched for the same text created
    after the claim: found, its sid is adopted (it was sent); not found, the
    request never reached the gateway, so the message is queued again (or
    fails ``unknown_outcome`` when its attempts are used up). When the gateway
    cannot be asked, the message waits for the next sweep.
    """
    stats = stats or SweepStats()
    cfg = gateway_config(project_id)
    try:
        gateway = build_gateway(cfg)
    except GatewayError:
        gateway = None
    now = clock.now()
    rows = db.session.execute(
        select(MESSAGES).where(
            MESSAGES.c.project_id == project_id, MESSAGES.c.id.in_(ids), MESSAGES.c.status == "sending"
        )
    ).all()
    requeue: list[int] = []
    for row in rows:
        try:
            if gateway is None:
                raise GatewayError("no_gateway", "no usable gateway", retryable=True)
            if row.gateway_sid:
                remote = gateway.fetch(row.gateway_sid)
                if remote is not None:
                    _adopt(project_id, row, remote, now)
                    stats.resolved_sent += 1
                    continue
            else:
                since = (row.claimed_at or row.created_at) - timedelta(seconds=60)
                candidates = [
                    m
                    for m in gateway.find_recent(row.phone, None)
                    if m.body == row.body and (m.created_at is None or m.created_at >= since)
                ]
                if candidates:
                    taken = set(
                        db.session.execute(
                            select(MESSAGES.c.gateway_sid).where(
                                MESSAGES.c.project_id == project_id,
                                MESSAGES.c.gateway_sid.in_([m.sid for m in candidates]),
                            )
                        ).scalars()
                    )
                    free = [m for m in candidates if m.sid not in taken]
                    if free:
                        _adopt(project_id, row, free[-1], now)
                        stats.resolved_sent += 1
                        continue
            # The gateway has no trace of it: it never left.
            if row.attempts < max_attempts():
                db.session.execute(
                    update(MESSAGES)
                    .where(
                        MESSAGES.c.id == row.id,
                        MESSAGES.c.project_id == project_id,
                        MESSAGES.c.status == "sending",
                    )
                    .values(status="queued", next_attempt_at=None, updated_at=now)
                )
                requeue.append(row.id)
                stats.resolved_requeued += 1
            else:
                db.session.execute(
                    update(MESSAGES)
                    .where(
                        MESSAGES.c.id == row.id,
                        MESSAGES.c.project_id == project_id,
                        MESSAGES.c.status == "sending",
                    )
                    .values(
                        status="failed",
                        error_code="unknown_outcome",
                        error_message=f"Not found at the gateway after {row.attempts} attempts "
                        f"(last: {row.error_message or 'no answer'}).",
                        failed_at=now,
                        updated_at=now,
                    )
                )
                stats.resolved_failed += 1
            db.session.commit()
        except GatewayError as exc:
            db.session.rollback()
            log.warning("cannot resolve project_id=%s message_id=%s yet: %s", project_id, row.id, exc)
            db.session.execute(
                update(MESSAGES)
                .where(
                    MESSAGES.c.id == row.id,
                    MESSAGES.c.project_id == project_id,
                    MESSAGES.c.status == "sending",
                )
                .values(next_attempt_at=now + timedelta(seconds=60), updated_at=now)
            )
            db.session.commit()
    db.session.commit()
    if requeue:
        per_job = batch_size()
        batches = [(_job_id(), requeue[i : i + per_job]) for i in range(0, len(requeue), per_job)]
        for job_id, part in batches:
            db.session.execute(
                update(MESSAGES)
                .where(MESSAGES.c.project_id == project_id, MESSAGES.c.id.in_(part))
                .values(job_id=job_id)
            )
        db.session.commit()
        stats.jobs += enqueue_send_jobs(project_id, batches)
    return stats


def _adopt(project_id: int, row, remote, now: datetime) -> None:
    status = TWILIO_STATUS.get(remote.status, "sent")
    values = {
        "status": status,
        "gateway_sid": remote.sid,
        "from_number": remote.from_number or row.from_number,
        "sent_at": row.sent_at or now,
        "error_code": remote.error_code if status in ("failed", "undelivered") else None,
        "error_message": None,
        "next_attempt_at": None,
        "updated_at": now,
    }
    if status == "delivered":
        values["delivered_at"] = now
    elif status in ("failed", "undelivered"):
        values["failed_at"] = now
    db.session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.id == row.id, MESSAGES.c.project_id == project_id, MESSAGES.c.status == "sending")
        .values(**values)
    )
    db.session.commit()
    log.info("resolved project_id=%s message_id=%s sid=%s status=%s", project_id, row.id, remote.sid, status)


# --- reading -------------------------------------------------------------------------


def message_json(message: Message) -> dict:
    """A message as the API shows it (E.164 phones, ISO Z times, the case's public case_id)."""
    return {
        "id": message.id,
        "direction": message.direction,
        "case_id": message.case.case_id if message.case is not None else None,
        "phone": message.phone,
        "from": message.from_number,
        "to": message.to_number,
        "body": message.body,
        "segments": message.segments,
        "encoding": message.encoding,
        "status": message.status,
        "gateway_sid": message.gateway_sid,
        "error_code": message.error_code,
        "error_message": message.error_message,
        "skip_reason": message.skip_reason,
        "broadcast_id": message.broadcast_id,
        "survey_session_id": message.survey_session_id,
        "attempts": message.attempts,
        "created_at": clock.isoformat(message.created_at),
        "due_at": clock.isoformat(message.due_at),
        "sent_at": clock.isoformat(message.sent_at),
        "delivered_at": clock.isoformat(message.delivered_at),
        "failed_at": clock.isoformat(message.failed_at),
        "updated_at": clock.isoformat(message.updated_at),
    }


def message_filters(stmt, *, status=None, direction=None, case_id=None, broadcast=None):
    """Apply the message-log filters (already validated) to an ORM select of Message."""
    if status:
        stmt = stmt.where(Message.status == status)
    if direction:
        stmt = stmt.where(Message.direction == direction)
    if broadcast:
        stmt = stmt.where(Message.broadcast_id == broadcast)
    if case_id:
        internal = select(Case.id).where(Case.case_id == case_id).scalar_subquery()
        stmt = stmt.where(Message.case_id == internal)
    return stmt
