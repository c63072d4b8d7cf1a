"""Survey jobs: the periodic tick that sends reminders and expires sessions."""

import logging

from rq import get_current_job

from messaging.surveys import sessions

log = logging.getLogger(__name__)


def tick() -> dict:
    """Periodic (every 30 s): expire due sessions, resend due questions as reminders."""
    job = get_current_job()
    stats = sessions.tick()
    log.info("survey tick job_id=%s %s", job.id if job else None, stats)
    return stats
