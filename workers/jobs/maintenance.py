"""Housekeeping jobs."""

from messaging.jobs import redis_conn
from workers.jobs import current_job_id, periodic_job


@periodic_job
def heartbeat() -> None:
    """Record that the periodic scheduler and a worker are alive (shown by /healthz?verbose)."""
    redis_conn().set("messaging:heartbeat", current_job_id() or "manual", ex=600)
