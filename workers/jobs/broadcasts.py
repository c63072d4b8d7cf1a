"""Broadcast jobs: the fan-out of one firing, and the periodic tick that starts due firings.

Both take ids only; the firing's row (its status and cursor) says what is left,
so running either twice writes each recipient's message once.
"""

import logging

from rq import get_current_job

from messaging.broadcasts import service as broadcasts
from messaging.db.tenancy import project_scope

log = logging.getLogger(__name__)


def run_firing(project_id: int, firing_id: str) -> dict:
    """Snapshot the firing's recipients (once), then write and queue their messages in batches."""
    job = get_current_job()
    with project_scope(project_id):
        stats = broadcasts.run_firing(project_id, firing_id)
    log.info(
        "firing job done job_id=%s project_id=%s firing_id=%s %s",
        job.id if job else None,
        project_id,
        firing_id,
        stats,
    )
    return stats


def tick() -> dict:
    """Periodic (every 10 s): start due firings; enqueue again firings whose job went quiet."""
    job = get_current_job()
    stats = broadcasts.tick()
    log.info("broadcast tick job_id=%s %s", job.id if job else None, stats)
    return stats
