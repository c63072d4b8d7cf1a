"""The outbox: writing outbound messages as rows, and handing their ids to send jobs.

Rules:
- The database is the truth, the queue only a hint. Every outbound SMS is a
  row in ``messages`` **before** anything is queued; the RQ job that sends it
  carries only ids. :func:`queue_messages` / :func:`send_sms` write
  ``messages`` rows (``queued``) and commit them *before* enqueuing send jobs.
- Rows that cannot be sent (a number that is not E.164, an empty text, an
  opted-out recipient without ``bypass_opt_out``) are written ``failed`` with
  a ``skip_reason``; rows due later (``due_at``) get no job: the sweep queues
  them when due.
- Bulk: inserts of 500 rows in one statement each, then ``enqueue_many`` of
  ``SMS_BATCH_SIZE`` ids per job.
- A Redis error while enqueuing is logged and swallowed: the rows are safe in
  the database and the sweep will enqueue them.
- Cancelling fails only the rows no worker has claimed yet (``queued``);
  messages already ``sending`` go on (they may be at the gateway).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import update

from messaging import jobs
from messaging.db import dialect
from messaging.db.after_commit import after_commit
from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.segments import count_segments
from messaging.models import Message
from messaging.sms.e164 import E164
from messaging.sms.optouts import opted_out_among
from messaging.sms.tuning import batch_size

log = logging.getLogger(__name__)

INSERT_BATCH = 500
MESSAGES = Message.__table__


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


def new_job_id() -> str:
    """A fresh send job id (rows carry it in ``job_id``, so the sweep can tell whether their job lives)."""
    return "sms-" + uuid.uuid4().hex


def split_into_jobs(ids: list[int], per_job: int) -> list[tuple[str, list[int]]]:
    """``ids`` as (new job id, ids) batches of ``per_job`` ids."""
    return [(new_job_id(), ids[start : start + per_job]) for start in range(0, len(ids), per_job)]


def hand_to_jobs(
    project_id: int, batches: list[tuple[str, list[int]]], *, delay: float = 0.0, only_queued: bool = True
) -> int:
    """Point each (job_id, ids) batch's rows at its job (only rows still ``queued`` unless
    ``only_queued`` is false), commit, then enqueue the jobs; returns how many were enqueued."""
    for job_id, part in batches:
        where = [MESSAGES.c.project_id == project_id, MESSAGES.c.id.in_(part)]
        if only_queued:
            where.append(MESSAGES.c.status == "queued")
        db.session.execute(update(MESSAGES).where(*where).values(job_id=job_id))
    db.session.commit()
    return enqueue_send_jobs(project_id, batches, delay=delay)


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
        "gateway_id": row.get("gateway_id"),
        "broadcast_id": row.get("broadcast_id"),
        "firing_id": row.get("firing_id"),
        "alert_id": row.get("alert_id"),
        "alert_occurrence_id": row.get("alert_occurrence_id"),
        "survey_session_id": row.get("survey_session_id"),
        "bypass_opt_out": bool(row.get("bypass_opt_out", False)),
        "auto_reply": bool(row.get("auto_reply", False)),
        "author_id": row.get("author_id"),
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
    new_jobs = []
    for start in range(0, len(sendable), per_job):
        job_id = new_job_id()
        for v in sendable[start : start + per_job]:
            v["job_id"] = job_id
        new_jobs.append(job_id)
    written = dialect.insert_each(
        MESSAGES,
        values,
        returning=(MESSAGES.c.id, MESSAGES.c.job_id, MESSAGES.c.status, MESSAGES.c.skip_reason),
    )
    by_job: dict[str, list[int]] = defaultdict(list)
    for message_id, job_id, status, skip_reason in sorted(written):
        result.ids.append(message_id)
        if status == "failed":
            result.failed[skip_reason] += 1
        elif job_id is None:
            result.scheduled += 1
        else:
            result.queued += 1
            by_job[job_id].append(message_id)
    return [(job_id, by_job[job_id]) for job_id in new_jobs]


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


def enqueue_send_jobs(
    project_id: int, batches: list[tuple[str, list[int]]], delay: float = 0.0, urgent: bool = False
) -> int:
    """Enqueue one send job per (job_id, ids) batch, in bulk. Call after the rows are committed.
    ``urgent`` jobs go to the ``high`` queue (``jobs.SEND_URGENT``), ahead of broadcasts.

    A Redis error is logged and swallowed: the rows are safe in the database
    and the sweep will enqueue them.
    """
    if not batches:
        return 0
    spec = jobs.SEND_URGENT if urgent else jobs.SEND_MESSAGES
    try:
        if delay > 0:
            for job_id, ids in batches:
                jobs.enqueue(spec, project_id, ids, job_id=job_id, delay=timedelta(seconds=delay))
        else:
            jobs.enqueue_many(spec, [(job_id, (project_id, ids)) for job_id, ids in batches])
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


def send_sms(  # noqa: PLR0913 - each keyword is a column of the row it writes
    project_id: int,
    phone: str,
    body: str,
    case_id: int | None = None,
    *,
    broadcast_id: str | None = None,
    survey_session_id: str | None = None,
    bypass_opt_out: bool = False,
    auto_reply: bool = False,
    author_id: int | None = None,
    urgent: bool = False,
    gateway_id: int | None = None,
) -> int:
    """Write one outbound message and enqueue its job when the caller commits; returns the message id.

    The row joins the caller's transaction (so a reply and the work that
    caused it commit together); its job is enqueued right after that commit
    (and if Redis is down then, the sweep enqueues it). ``bypass_opt_out``
    sends even to an opted-out number (STOP/START confirmations). ``auto_reply``
    marks an automatic reply (what the loop guard counts); ``author_id`` is the
    web user who wrote it. ``urgent``: a person is waiting for it (a reply, an
    alert); its job goes to the ``high`` queue, ahead of broadcasts. ``gateway_id`` pins it
    to one of the project's gateways (a gateway page's test send). A number
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
        "auto_reply": auto_reply,
        "author_id": author_id,
        "gateway_id": gateway_id,
    }
    batches = _insert_chunk(project_id, [row], 1, result)
    if batches:
        after_commit(enqueue_send_jobs, project_id, batches, 0.0, urgent)
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
