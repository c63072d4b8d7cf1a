"""Inbound SMS jobs: handle one number's messages in order, and the sweep of waiting ones.

A number's messages are handled under its lock, oldest first, each once
(its outcome row is claimed), so a job that runs twice handles nothing twice.
"""

from messaging.inbound import per_number, receive
from workers.jobs import current_job_id, periodic_job, project_job


@project_job
def handle_number(project_id: int, phone: str) -> int:
    """Handle the pending inbound messages of one number, oldest first (under the number's lock)."""
    return per_number.handle_number(project_id, phone, job_id=current_job_id())


@periodic_job
def sweep() -> int:
    """Every 30 s: enqueue numbers whose inbound messages have waited too long (a lost job)."""
    return receive.sweep_pending()
