"""Survey jobs: the periodic tick that sends reminders and expires sessions."""

from messaging.surveys import timers
from workers.jobs import periodic_job


@periodic_job
def tick() -> dict:
    """Every 30 s: expire due sessions, resend due questions as reminders."""
    return timers.tick()
