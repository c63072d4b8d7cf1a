"""SMS jobs: send a batch of messages, and the sweep.

Both only take ids; the rows in the database say what to do, so running a
job twice (RQ retries, the sweep re-queuing, two workers) never sends twice.
"""

import logging

from rq import get_current_job

from messaging.db.tenancy import project_scope
from messaging.sms import service

log = logging.getLogger(__name__)


def send_messages(project_id: int, message_ids: list[int]) -> dict:
    """Send these messages of one project (claims each row before sending it)."""
    job = get_current_job()
    job_id = job.id if job else None
    with project_scope(project_id):
        stats = service.send_batch(project_id, list(message_ids), job_id=job_id)
    log.info("send job done job_id=%s project_id=%s %s", job_id, project_id, stats)
    return stats.__dict__


def sweep() -> dict:
    """Periodic: re-queue due messages whose job is gone; resolve messages stuck in ``sending``."""
    stats = service.sweep()
    job = get_current_job()
    log.info("sweep done job_id=%s %s", job.id if job else None, stats)
    return stats.__dict__
