"""The sweep: re-queue due messages whose job is gone, and resolve messages stuck in ``sending``.

Rules:
- :func:`sweep` re-queues due rows whose job is gone and resolves rows stuck
  in ``sending`` by asking the gateway (never by sending blindly again).
- **Never lost when Redis loses its queue.** The sweep (a periodic job, every
  15 s, once across all workers) re-queues `queued` rows that are due and
  whose job no longer exists (Redis flushed or restarted empty), has finished
  or failed, was started by a worker that is no longer alive (its pulse key,
  refreshed every 2 s, expired: a worker killed mid-job), or has been
  "started" for longer than `SMS_JOB_STALE_SECONDS` (a job stuck in a live
  worker). Scheduled rows (`due_at`) get their job from the sweep when due.
- **Delayed sends never wait on RQ's scheduler.** A retry or a not-yet-due
  batch is a due time in its rows (``next_attempt_at``, ``due_at``) plus a job
  in RQ's scheduled registry, which only RQ's scheduler moves to the queue. A
  job still ``scheduled`` once its rows have been due for ``SMS_SWEEP_GRACE``
  is stranded (its scheduler died, or its locks are held by a dead one): it
  counts as lost, its rows get a new job and the stranded one is deleted. So
  a due message waits at most the sweep interval plus the grace.
- A row is left to its job for ``SMS_SWEEP_GRACE`` after its last change:
  its job may just be on its way.
- **A message whose outcome is unknown is never re-sent blindly.** Twilio has
  no idempotency key: after a read timeout, a dropped connection or a worker
  killed between the request and the commit, the message may or may not have
  left. Such a row stays `sending`; the sweep then asks Twilio: with a sid, it
  fetches the message; without one, it lists Twilio's recent messages to that
  number and adopts one with the same text created after the claim (and not
  already recorded for another row). Only when Twilio has no such message is
  the row queued again (or, attempts used up, failed as `unknown_outcome`).
  So the guarantee is: **at most once, except** when Twilio accepted a
  message yet does not list it by the time we ask (we ask
  `SMS_UNKNOWN_CHECK_DELAY`, 60 s, after a timeout; for a killed worker
  `SMS_DEAD_CLAIMER_DELAY`, 10 s, after the claim once the claiming job's
  worker has no pulse, else after `SMS_SENDING_TIMEOUT`, 2 min), or when
  the same text went to the same number twice within that window. We chose
  this over failing every uncertain message as `unknown_outcome` (which
  would drop messages that never left) and over re-sending blindly (which
  duplicates every timeout).
- When the gateway cannot be asked, the message waits for the next sweep
  (asked again a minute later).
- Runs unscoped over all projects (a periodic job). Safe to run anywhere,
  any number of times: it only enqueues jobs (which claim before sending)
  and asks the gateway about uncertain messages.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from rq.job import Job
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from messaging import jobs
from messaging.extensions import db
from messaging.gateways import journal
from messaging.gateways.base import Gateway, GatewayError, RemoteMessage
from messaging.gateways.settings import project_gateways
from messaging.lib import clock
from messaging.lib.redact import mask_phones_in
from messaging.models import Message
from messaging.sms.outbox import hand_to_jobs, split_into_jobs
from messaging.sms.send_job import Route, choose_route
from messaging.sms.status import TWILIO_STATUS
from messaging.sms.tuning import (
    batch_size,
    dead_claimer_check_delay,
    job_stale_seconds,
    max_attempts,
    sending_timeout,
    sweep_grace,
)

log = logging.getLogger(__name__)

MESSAGES = Message.__table__


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


# --- orphans: queued rows whose job is gone ------------------------------------------


def _requeue_orphans(stats: SweepStats, limit: int, started: float, time_budget: float) -> None:
    now = clock.now()
    grace = timedelta(seconds=sweep_grace())
    stale_after = job_stale_seconds()
    last_id = 0
    seen = 0
    while seen < limit and time.monotonic() - started < time_budget:
        rows = db.session.execute(
            select(
                MESSAGES.c.id,
                MESSAGES.c.project_id,
                MESSAGES.c.job_id,
                MESSAGES.c.due_at,
                MESSAGES.c.next_attempt_at,
            )
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
        alive = _live_jobs(_jobs_due_since(rows), stale_after, overdue_before=now - grace)
        orphans: dict[int, list[int]] = defaultdict(list)
        for r in rows:
            if r.job_id not in alive:
                orphans[r.project_id].append(r.id)
        for project_id, ids in orphans.items():
            batches = split_into_jobs(ids, batch_size())
            stats.jobs += hand_to_jobs(project_id, batches)
            stats.requeued += len(ids)
            log.info("sweep re-queued project_id=%s messages=%s jobs=%s", project_id, len(ids), len(batches))


def _jobs_due_since(rows) -> dict[str, datetime]:
    """Each job of ``rows`` with the time its last row became due (the latest due time among them)."""
    due_since: dict[str, datetime] = {}
    for r in rows:
        if r.job_id:
            times = [t for t in (r.due_at, r.next_attempt_at) if t is not None]
            due = max(times) if times else datetime.min
            due_since[r.job_id] = max(due, due_since.get(r.job_id, datetime.min))
    return due_since


def _live_jobs(due_since: dict[str, datetime], stale_after: float, overdue_before: datetime) -> set[str]:
    """The jobs of ``due_since`` still waiting to run, or started less than ``stale_after`` seconds
    ago by a worker that is alive now (``messaging.jobs.workers_alive``: a SIGKILLed worker's
    started job is lost within seconds, not at its timeout).

    A job waiting in RQ's scheduled registry lives only until its rows have been due since
    before ``overdue_before``: past that its scheduler is not moving it (dead, or its locks held
    by a dead one), so it is deleted and its rows count as orphans.
    """
    alive, started = set(), []
    job_ids = sorted(due_since)
    if job_ids:
        fetched = Job.fetch_many(job_ids, connection=jobs.redis_conn())
        for job_id, job in zip(job_ids, fetched, strict=True):
            if job is None:
                continue
            status = _status(job)
            if status == "scheduled" and due_since[job_id] < overdue_before:
                _delete_stranded(job)
            elif status in ("queued", "scheduled", "deferred"):
                alive.add(job_id)
            elif status == "started":
                started.append(job)
        for job in _in_live_workers(started):
            age = (clock.now() - job.started_at.replace(tzinfo=None)).total_seconds() if job.started_at else 0
            if age < stale_after:
                alive.add(job.id)
    return alive


def _in_live_workers(started: list[Job]) -> list[Job]:
    """The ``started`` jobs whose worker's pulse beats now (one Redis round trip)."""
    live = jobs.workers_alive(jobs.redis_conn(), {j.worker_name for j in started if j.worker_name})
    return [j for j in started if j.worker_name in live]


def _delete_stranded(job: Job) -> None:
    """Delete a stranded scheduled job (its rows get a new one). Were it to run anyway, its
    claims would find the rows taken: deleting it only spares a scheduler's backlog of no-ops."""
    log.warning("sweep: send job %s was still scheduled long after it was due; replacing it", job.id)
    try:
        job.delete()
    except RedisError as exc:
        log.warning("sweep: could not delete stranded job %s: %s", job.id, type(exc).__name__)


# --- stuck rows: sending for too long, or an unknown outcome due for a check ----------


def _resolve_stuck(stats: SweepStats, limit: int) -> None:
    now = clock.now()
    timeout = timedelta(seconds=sending_timeout())
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
    rows += _claimed_by_dead_jobs(now, timeout, min(limit, 2000))
    by_project: dict[int, list[int]] = defaultdict(list)
    for r in rows:
        by_project[r.project_id].append(r.id)
    for project_id, ids in by_project.items():
        resolve_uncertain(project_id, ids, stats)


def _claimed_by_dead_jobs(now: datetime, timeout: timedelta, limit: int) -> list:
    """Rows in ``sending`` for ``SMS_DEAD_CLAIMER_DELAY`` (but not yet ``SMS_SENDING_TIMEOUT``)
    whose claiming job is not running in a live worker: gone, ended, or started by a worker
    whose pulse has stopped (SIGKILLed mid-send). Nothing else can send them now, so they are
    settled by asking the gateway at once instead of at the timeout."""
    rows = db.session.execute(
        select(MESSAGES.c.id, MESSAGES.c.project_id, MESSAGES.c.job_id)
        .where(
            MESSAGES.c.status == "sending",
            MESSAGES.c.next_attempt_at.is_(None),
            MESSAGES.c.claimed_at <= now - timedelta(seconds=dead_claimer_check_delay()),
            MESSAGES.c.claimed_at > now - timeout,
            MESSAGES.c.job_id.is_not(None),
        )
        .order_by(MESSAGES.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return []
    running = _jobs_running(sorted({r.job_id for r in rows}))
    return [r for r in rows if r.job_id not in running]


def _jobs_running(job_ids: list[str]) -> set[str]:
    """The jobs of ``job_ids`` started by a worker whose pulse beats now (and those RQ cannot be
    asked about: a Redis error counts every job as running, so nothing is settled early)."""
    try:
        fetched = Job.fetch_many(job_ids, connection=jobs.redis_conn())
        started = [j for j in fetched if j is not None and _status(j) == "started"]
        return {j.id for j in _in_live_workers(started)}
    except RedisError:
        return set(job_ids)


def _status(job: Job) -> str:
    status = job.get_status(refresh=False)
    return getattr(status, "value", status)


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
    routes = [Route.of(cfg) for cfg in project_gateways(project_id)]
    now = clock.now()
    rows = db.session.execute(
        select(MESSAGES).where(
            MESSAGES.c.project_id == project_id, MESSAGES.c.id.in_(ids), MESSAGES.c.status == "sending"
        )
    ).all()
    requeue: list[int] = []
    for row in rows:
        route = choose_route(routes, row.phone, row.gateway_id)
        try:
            if route.gateway is None:
                raise GatewayError("no_gateway", "no usable gateway", retryable=True)
            if _settle(project_id, row, route, now, stats):
                requeue.append(row.id)
            db.session.commit()
        except GatewayError as exc:
            db.session.rollback()
            log.warning(
                "cannot resolve project_id=%s message_id=%s yet: %s",
                project_id,
                row.id,
                mask_phones_in(str(exc)),
            )
            db.session.execute(
                update(MESSAGES)
                .where(*_still_sending(project_id, row.id))
                .values(next_attempt_at=now + timedelta(seconds=60), updated_at=now)
            )
            db.session.commit()
    db.session.commit()
    if requeue:
        stats.jobs += hand_to_jobs(project_id, split_into_jobs(requeue, batch_size()), only_queued=False)
    return stats


def _settle(project_id: int, row, route: Route, now: datetime, stats: SweepStats) -> bool:
    """Settle one row from what its gateway (or, for one that cannot be asked, the send journal)
    knows; True when it never left and goes back to the queue. Does not commit."""
    gateway = route.gateway
    if gateway.resolves:
        remote = _find_at_gateway(gateway, project_id, row)
    else:
        noted = journal.recall(project_id, row.id, row.attempts)
        if noted == "sending":  # it may have left, and the gateway cannot say: never again
            reason = (
                f"Its worker stopped while sending it, and the {gateway.label} gateway cannot be asked "
                "whether it went; not sent again."
            )
            _fail(project_id, row, now, "unknown_outcome", reason)
            stats.resolved_failed += 1
            return False
        remote = _noted_remote(row, noted)
    if remote is None:  # no trace of it: it never left
        return _requeue_or_fail(project_id, row, now, stats)
    try:
        with db.session.begin_nested():
            _adopt(project_id, row, remote, now, route.cfg)
    except IntegrityError:  # another message has that provider id: the answer is wrong
        _fail(
            project_id,
            row,
            now,
            "unexpected_answer",
            f"The gateway's id {remote.sid} for this message belongs to another message.",
        )
        log.warning(
            "resolved to a taken id project_id=%s message_id=%s sid=%s", project_id, row.id, remote.sid
        )
    stats.resolved_sent += 1
    return False


def _fail(project_id: int, row, now: datetime, code: str, reason: str) -> None:
    """Fail a row still ``sending`` with ``code`` and ``reason``. Does not commit."""
    db.session.execute(
        update(MESSAGES)
        .where(*_still_sending(project_id, row.id))
        .values(status="failed", error_code=code, error_message=reason, failed_at=now, updated_at=now)
    )


def _still_sending(project_id: int, message_id: int) -> tuple:
    return (MESSAGES.c.id == message_id, MESSAGES.c.project_id == project_id, MESSAGES.c.status == "sending")


def _noted_remote(row, noted: dict | None) -> RemoteMessage | None:
    """The journal's answer for this attempt as the gateway's record (None: it never left)."""
    if noted is None:
        return None
    return RemoteMessage(
        sid=noted["sid"],
        status=noted["status"] or "sent",
        to=row.phone,
        from_number=noted.get("from"),
        body=row.body,
        created_at=None,
    )


def _find_at_gateway(gateway: Gateway, project_id: int, row) -> RemoteMessage | None:
    """The gateway's record of this message: by its sid, or else its recent message to the same
    number with the same text created after the claim that no other row has; None when it has none."""
    if row.gateway_sid:
        return gateway.fetch(row.gateway_sid)
    since = (row.claimed_at or row.created_at) - timedelta(seconds=60)
    candidates = [
        m
        for m in gateway.find_recent(row.phone, None)
        if m.body == row.body and (m.created_at is None or m.created_at >= since)
    ]
    if not candidates:
        return None
    taken = set(
        db.session.execute(
            select(MESSAGES.c.gateway_sid).where(
                MESSAGES.c.project_id == project_id,
                MESSAGES.c.gateway_sid.in_([m.sid for m in candidates]),
            )
        ).scalars()
    )
    free = [m for m in candidates if m.sid not in taken]
    return free[-1] if free else None


def _requeue_or_fail(project_id: int, row, now: datetime, stats: SweepStats) -> bool:
    """A message that never left: ``queued`` again (True), or failed ``unknown_outcome`` when its
    attempts are used up. Does not commit."""
    if row.attempts < max_attempts():
        db.session.execute(
            update(MESSAGES)
            .where(*_still_sending(project_id, row.id))
            .values(status="queued", next_attempt_at=None, updated_at=now)
        )
        stats.resolved_requeued += 1
        return True
    reason = (
        f"Not found at the gateway after {row.attempts} attempts (last: {row.error_message or 'no answer'})."
    )
    _fail(project_id, row, now, "unknown_outcome", reason)
    stats.resolved_failed += 1
    return False


def _adopt(project_id: int, row, remote: RemoteMessage, now: datetime, cfg) -> None:
    """Record the gateway's (or the journal's) record of a row as its outcome. Does not commit."""
    status = TWILIO_STATUS.get(remote.status, "sent")
    values = {
        "status": status,
        "gateway": cfg.kind,
        "gateway_id": cfg.id,
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
    db.session.execute(update(MESSAGES).where(*_still_sending(project_id, row.id)).values(**values))
    log.info("resolved project_id=%s message_id=%s sid=%s status=%s", project_id, row.id, remote.sid, status)
