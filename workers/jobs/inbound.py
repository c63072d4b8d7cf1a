"""Inbound SMS jobs: handle one number's messages in order, and the sweep of waiting ones."""

import logging

from rq import get_current_job

from messaging.inbound import service

log = logging.getLogger(__name__)


def handle_number(project_id: int, phone: str) -> int:
    """Handle the pending inbound messages of one number, oldest first (under the number's lock)."""
    job = get_current_job()
    job_id = job.id if job else None
    handled = service.handle_number(project_id, phone, job_id=job_id)
    log.info(
        "inbound job done job_id=%s project_id=%s phone=%s handled=%s", job_id, project_id, phone, handled
    )
    return handled


def sweep() -> int:
    """Periodic: enqueue numbers whose inbound messages have waited too long (a lost job)."""
    return service.sweep_pending()
