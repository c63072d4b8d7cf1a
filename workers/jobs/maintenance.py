"""Housekeeping jobs."""

import logging

from rq import get_current_job

from messaging.jobs import redis_conn

log = logging.getLogger(__name__)


def heartbeat() -> None:
    """Record that the periodic scheduler and a worker are alive (shown by /healthz?verbose)."""
    job = get_current_job()
    redis_conn().set("messaging:heartbeat", job.id if job else "manual", ex=600)
    log.debug("heartbeat job_id=%s", job.id if job else None)
