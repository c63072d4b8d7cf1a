"""Recording what became of a chunk's messages: sent, failed, retrying, or outcome unknown.

Rules:
- Retryable failures go back to ``queued`` with ``next_attempt_at`` and a
  scheduled job; permanent ones fail at once; 21610 records an opt-out.
- **Retries.** 5xx, 429, connection refused and connect timeouts never
  reached Twilio: they are retried after 30 s, 2 min, 10 min
  (`SMS_RETRY_DELAYS`), then the row fails with the last reason
  ("Gave up after 4 attempts: …"). 21211, 21614 and other 4xx fail at once;
  21610 fails and records an opt-out. Sending to an opted-out number fails
  with `skip_reason='opted_out'` and never calls Twilio (except
  `bypass_opt_out=True`, for STOP/START confirmations).
- A message whose outcome is unknown (a read timeout, a dropped connection,
  a crash in the send) stays ``sending``: it may be at the gateway. The sweep
  asks the gateway about it at ``next_attempt_at`` (``SMS_UNKNOWN_CHECK_DELAY``
  after it), never sends it blindly again.
- Settings that cannot make a gateway fail the claimed rows with
  ``skip_reason='no_gateway'``.
- A provider id a message of the project already has (a provider that reuses
  ids, or gives two messages of a chunk the same one) fails the later message
  with ``unexpected_answer``, naming the id: the job never stops on it.
- A chunk's outcomes are written in a few statements (the sent rows in one,
  see ``dialect.update_each``), only to rows still ``sending``, and committed
  together; then the retries' jobs are enqueued and callbacks that arrived
  before the sids were recorded are applied.
- Sent and failed rows are ``message.status`` events for the project's webhooks,
  written with the outcomes (one insert per chunk, none without such a webhook).
- **A database outage does not lose what the gateway answered.** The write is
  tried again while the database is away (``messaging.db.outage``), for up to
  the job's lease; only then is the chunk left ``sending`` for the sweep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Integer, Text, bindparam, func, select, update

from messaging.db import dialect
from messaging.db.outage import write_through_outage
from messaging.extensions import db
from messaging.forwarding.capture import capture_events
from messaging.gateways.base import GatewayError
from messaging.lib import clock
from messaging.lib.redact import mask_phones_in
from messaging.models import Message
from messaging.models.forwarding import EventName
from messaging.sms.gateway_prices import price_micros
from messaging.sms.optouts import opt_out
from messaging.sms.outbox import enqueue_send_jobs, new_job_id
from messaging.sms.send_job import BatchStats
from messaging.sms.serialize import status_event_json
from messaging.sms.status import ERROR_CODE_CHARS, apply_early_statuses
from messaging.sms.tuning import max_attempts, retry_delays, sending_lease, unknown_check_delay

log = logging.getLogger(__name__)

MESSAGES = Message.__table__


@dataclass
class _Rows:
    """A chunk's outcomes sorted by what is written, as the bound rows of each UPDATE."""

    sent: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    retry: list[dict] = field(default_factory=list)
    unknown: list[dict] = field(default_factory=list)
    # (phone, id of the message the gateway refused with 21610): the opt-out and its proof.
    opt_outs: list[tuple[str, int]] = field(default_factory=list)


def record_outcomes(project_id: int, outcomes: list[tuple], stats: BatchStats) -> None:
    """Write the outcomes of one chunk in a few statements, commit, then apply early callbacks.

    ``outcomes``: ``(kind, row, info, sender)`` tuples, ``kind`` ``"sent"``
    (``info`` the gateway's ``SendResult``), ``"opted_out"`` or ``"error"``
    (``info`` the ``GatewayError``); ``row`` a claimed row.
    """
    if not outcomes:
        return
    now = clock.now()
    rows = _sort(outcomes, now)

    def write() -> dict[float, str]:
        _fail_repeated_sids(project_id, rows)
        if rows.sent:
            _record_sent(project_id, rows.sent, now)
        if rows.failed:
            _record_failed(project_id, rows.failed, now)
        retry_jobs = _record_retries(project_id, rows.retry, now) if rows.retry else {}
        if rows.unknown:
            _record_unknown(project_id, rows.unknown, now)
        capture_events(project_id, EventName.MESSAGE_STATUS, _status_events(rows, outcomes))
        for phone, message_id in rows.opt_outs:
            opt_out(project_id, phone, "gateway_21610", message_id=message_id)
        db.session.commit()
        return retry_jobs

    # What the gateway answered exists only here: wait out a database outage to write it
    # (for at most the lease, so the rows are recorded before the sweep would take them).
    job_ids = write_through_outage(
        write, what=f"recording outcomes project_id={project_id}", give_up_after=sending_lease()
    )
    stats.sent += len(rows.sent)
    stats.failed += len(rows.failed)
    stats.retrying += len(rows.retry)
    stats.unknown += len(rows.unknown)
    for delay, job_id in job_ids.items():
        ids = [r["b_id"] for r in rows.retry if r["b_job"] == job_id]
        enqueue_send_jobs(project_id, [(job_id, ids)], delay=delay)
    if rows.sent:
        apply_early_statuses(project_id, [(r["b_sid"], r["b_gwid"]) for r in rows.sent])
    _log(project_id, rows)


def _fail_repeated_sids(project_id: int, rows: _Rows) -> None:
    """Move the sent rows whose provider id is taken (by a stored message, or an earlier row of
    the chunk) to the failed rows: the id is unique per project."""
    sids = [r["b_sid"] for r in rows.sent]
    taken = set(
        db.session.execute(
            select(MESSAGES.c.gateway_sid).where(
                MESSAGES.c.project_id == project_id, MESSAGES.c.gateway_sid.in_(sids)
            )
        ).scalars()
    )
    if not taken and len(set(sids)) == len(sids):
        return
    kept = []
    for r in rows.sent:
        if r["b_sid"] in taken:
            log.warning(
                "repeated provider id project_id=%s message_id=%s sid=%s", project_id, r["b_id"], r["b_sid"]
            )
            rows.failed.append(
                {
                    "b_id": r["b_id"],
                    "b_code": "unexpected_answer",
                    "b_msg": f"The gateway answered with the id {r['b_sid']}, which another message has.",
                    "b_reason": None,
                }
            )
        else:
            kept.append(r)
        taken.add(r["b_sid"])
    rows.sent[:] = kept


def _status_events(rows: _Rows, outcomes: list[tuple]) -> list[tuple[int, str, dict]]:
    """The ``message.status`` events of a chunk: its sent and failed rows (retries and unknown
    outcomes are still on their way)."""
    phones = {row.id: row.phone for _kind, row, _info, _sender in outcomes}
    events = [
        (
            r["b_id"],
            phones[r["b_id"]],
            status_event_json(r["b_id"], phones[r["b_id"]], "sent", gateway_sid=r["b_sid"]),
        )
        for r in rows.sent
    ]
    events += [
        (
            r["b_id"],
            phones[r["b_id"]],
            status_event_json(
                r["b_id"], phones[r["b_id"]], "failed", error_code=r["b_code"], error_message=r["b_msg"]
            ),
        )
        for r in rows.failed
    ]
    return events


def _sort(outcomes: list[tuple], now: datetime) -> _Rows:
    rows = _Rows()
    sent = rows.sent
    delays = retry_delays()
    for kind, row, info, sender in outcomes:
        if kind == "sent":
            sent.append(
                {
                    "b_id": row.id,
                    "b_sid": info.sid,
                    "b_from": info.from_number or sender,
                    "b_seg": info.segments,
                    "b_gw": info.gateway,
                    "b_gwid": info.gateway_id,
                    "b_price": price_micros(info.price),
                    "b_unit": (info.price_unit or "").upper()[:3] or None,
                }
            )
        elif kind == "opted_out":
            rows.failed.append(
                {
                    "b_id": row.id,
                    "b_code": None,
                    "b_msg": "The recipient has opted out; not sent.",
                    "b_reason": "opted_out",
                }
            )
        else:
            _sort_error(rows, row, info, sender, now, delays)
    return rows


def _sort_error(
    rows: _Rows, row, exc: GatewayError, sender: str | None, now: datetime, delays: tuple[float, ...]
) -> None:
    """A gateway error: an opt-out, an unknown outcome, a retry, or a final failure."""
    if exc.opted_out:
        rows.opt_outs.append((row.phone, row.id))
        rows.failed.append(
            {
                "b_id": row.id,
                "b_code": exc.code[:ERROR_CODE_CHARS],
                "b_msg": exc.message,
                "b_reason": "opted_out",
            }
        )
    elif exc.outcome_unknown:
        rows.unknown.append(
            {
                "b_id": row.id,
                "b_code": exc.code[:ERROR_CODE_CHARS],
                "b_msg": exc.message,
                "b_at": now + timedelta(seconds=unknown_check_delay()),
                "b_from": sender,
                "b_gwid": exc.gateway_id,
            }
        )
    elif exc.retryable and row.attempts < max_attempts():
        rows.retry.append(
            {
                "b_id": row.id,
                "b_code": exc.code[:ERROR_CODE_CHARS],
                "b_msg": exc.message,
                "b_at": now + timedelta(seconds=delays[row.attempts - 1]),
                "delay": delays[row.attempts - 1],
            }
        )
    else:
        message = exc.message
        if exc.retryable:
            message = f"Gave up after {row.attempts} attempts: {exc.message}"
        rows.failed.append(
            {
                "b_id": row.id,
                "b_code": exc.code[:ERROR_CODE_CHARS],
                "b_msg": message,
                "b_reason": exc.code == "no_gateway" and "no_gateway" or None,
            }
        )


def _update_still_sending(project_id: int, bound_rows: list[dict], now: datetime, **values) -> None:
    """One UPDATE per bound row (``b_id``, ``b_code``, ``b_msg``) of this project, if it is still
    ``sending``: its error code and message, ``updated_at`` and ``values``."""
    db.session.execute(
        update(MESSAGES)
        .where(
            MESSAGES.c.project_id == project_id,
            MESSAGES.c.id == bindparam("b_id"),
            MESSAGES.c.status == "sending",
        )
        .values(error_code=bindparam("b_code"), error_message=bindparam("b_msg"), updated_at=now, **values),
        bound_rows,
    )


def _record_sent(project_id: int, sent_rows: list[dict], now: datetime) -> None:
    """Mark a chunk's sent rows ``sent`` with their sids (only rows still ``sending``), in
    one statement for the chunk (see ``dialect.update_each``)."""
    dialect.update_each(
        MESSAGES,
        sent_rows,
        match=(MESSAGES.c.id, "b_id"),
        types={
            "b_id": BigInteger,
            "b_sid": Text,
            "b_from": Text,
            "b_seg": Integer,
            "b_gw": Text,
            "b_gwid": Integer,
            "b_price": BigInteger,
            "b_unit": Text,
        },
        values=lambda v: {
            "status": "sent",
            "gateway": v["b_gw"],
            "gateway_id": v["b_gwid"],
            "price_micros": v["b_price"],
            "price_unit": v["b_unit"],
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


def _record_failed(project_id: int, failed_rows: list[dict], now: datetime) -> None:
    _update_still_sending(
        project_id, failed_rows, now, status="failed", skip_reason=bindparam("b_reason"), failed_at=now
    )


def _record_retries(project_id: int, retry_rows: list[dict], now: datetime) -> dict[float, str]:
    """Put the rows back in ``queued``, due after their delay, with one job per delay; returns
    {delay: job id} for the jobs to enqueue once committed."""
    job_ids: dict[float, str] = {}
    for r in retry_rows:
        r["b_job"] = job_ids.setdefault(r.pop("delay"), new_job_id())
    _update_still_sending(
        project_id,
        retry_rows,
        now,
        status="queued",
        next_attempt_at=bindparam("b_at"),
        job_id=bindparam("b_job"),
    )
    return job_ids


def _record_unknown(project_id: int, unknown_rows: list[dict], now: datetime) -> None:
    # Stays "sending": it may be at the gateway. The sweep asks that gateway at next_attempt_at.
    _update_still_sending(
        project_id,
        unknown_rows,
        now,
        next_attempt_at=bindparam("b_at"),
        from_number=bindparam("b_from"),
        gateway_id=bindparam("b_gwid"),
    )


def _log(project_id: int, rows: _Rows) -> None:
    for r in rows.retry:
        log.info(
            "retry project_id=%s message_id=%s code=%s at=%s", project_id, r["b_id"], r["b_code"], r["b_at"]
        )
    for r in rows.failed:
        log.info(
            "failed project_id=%s message_id=%s code=%s reason=%s",
            project_id,
            r["b_id"],
            r["b_code"],
            mask_phones_in(str(r["b_reason"])),  # Twilio's reasons may name the number
        )
    for r in rows.unknown:
        log.warning("outcome unknown project_id=%s message_id=%s code=%s", project_id, r["b_id"], r["b_code"])
