"""Dispatch: making sure a location's sender job is queued, now or at its next retry.

Rules:
- AFTER the commit (``messaging.db.after_commit``), ``dispatch_location`` enqueues
  one sender job per location that got records in the transaction. A Redis marker
  (``forwarding:queued:<location>``, for ``MARKER_TTL``) says a sender is queued and
  will see the new records, so ten forms enqueue one sender; the sender clears the
  marker when it starts, so records added from then on enqueue another.
- Redis trouble never raises: if Redis is down or loses the job, the periodic sweep
  enqueues it later (it replaces a marker whose job is gone): the records are in the
  database.
- A record that failed waits the next delay of ``FORWARDING_RETRY_DELAYS`` (1 min,
  5 min, 30 min, 2 h, 12 h) and gives up after the last one. Retries are scheduled
  with RQ ``enqueue_in`` (one job per location and minute); the sweep also picks up
  due records, so losing Redis's scheduled jobs only delays them.
- Every sender run leaves the location's earliest future retry scheduled, even when
  a scheduled run came early.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import func, select

from messaging import jobs
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import ForwardRecord

log = logging.getLogger(__name__)

MARKER_TTL = 600
DEFAULT_RETRY_DELAYS = [60, 300, 1800, 7200, 43200]


def retry_delays() -> list[int]:
    """Seconds to wait before each retry; the record gives up after the last one."""
    delays = current_app.config.get("FORWARDING_RETRY_DELAYS")
    return list(DEFAULT_RETRY_DELAYS if delays is None else delays)


def _marker(location_id: str) -> str:
    return f"forwarding:queued:{location_id}"


def dispatch_location(location_id: str) -> bool:
    """Make sure a sender job is queued for the location. Never raises on Redis trouble
    (the sweep catches up). Returns True when a job was enqueued."""
    job_id = f"forward-{location_id}-{uuid.uuid4().hex[:12]}"
    try:
        if not jobs.redis_conn().set(_marker(location_id), job_id, nx=True, ex=MARKER_TTL):
            return False  # a sender is already queued and will see the new records
        jobs.enqueue(jobs.FORWARD_LOCATION, location_id, job_id=job_id)
    except RedisError as exc:
        log.warning("forwarding dispatch failed location_id=%s (the sweep will retry): %s", location_id, exc)
        return False
    return True


def clear_marker(location_id: str) -> None:
    """A sender starts: new records from now on enqueue another sender."""
    try:
        jobs.redis_conn().delete(_marker(location_id))
    except RedisError:
        pass


def ensure_dispatched(location_id: str) -> None:
    """The sweep's version: replace a marker whose job is gone (Redis lost it)."""
    try:
        r = jobs.redis_conn()
        job_id = r.get(_marker(location_id))
        if job_id is not None:
            job = jobs.queue(jobs.FORWARD_LOCATION.queue).fetch_job(job_id.decode())
            if job is not None and job.get_status(refresh=True) in ("queued", "started", "deferred"):
                return
            r.delete(_marker(location_id))
    except RedisError as exc:
        log.warning("forwarding sweep cannot reach Redis location_id=%s: %s", location_id, exc)
        return
    dispatch_location(location_id)


def _schedule_retry(location_id: str, delay_seconds: float) -> None:
    due = clock.now() + timedelta(seconds=delay_seconds)
    bucket = int(due.timestamp() // 60)
    try:
        jobs.enqueue(
            jobs.FORWARD_LOCATION,
            location_id,
            job_id=f"forward-retry-{location_id}-{bucket}",
            delay=timedelta(seconds=max(delay_seconds, 0) + 1),
        )
    except RedisError as exc:
        log.warning("forwarding retry not scheduled location_id=%s (the sweep will): %s", location_id, exc)


def schedule_next_retry(location_id: str) -> None:
    """Schedule a sender for the location's earliest future retry, if any: every run
    leaves the next one scheduled, even when a scheduled run came early."""
    now = clock.now()
    next_at = db.session.execute(
        select(func.min(ForwardRecord.next_attempt_at))
        .where(ForwardRecord.location_id == location_id, ForwardRecord.status == "pending")
        .where(ForwardRecord.next_attempt_at > now)
    ).scalar()
    db.session.commit()
    if next_at is not None:
        _schedule_retry(location_id, (next_at - now).total_seconds())
