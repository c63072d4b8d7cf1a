"""Broadcast jobs: the fan-out of one firing, and the periodic tick that starts due firings.

Both take ids only; the firing's row (its status and cursor) says what is left,
so running either twice writes each recipient's message once.
"""

from messaging.broadcasts import firing as broadcasts
from workers.jobs import periodic_job, project_job


@project_job
def run_firing(project_id: int, firing_id: str) -> dict:
    """Snapshot the firing's recipients (once), then write and queue their messages in batches."""
    return broadcasts.run_firing(project_id, firing_id)


@periodic_job
def tick() -> dict:
    """Every 10 s: start due firings; enqueue again firings whose job went quiet."""
    return broadcasts.tick()
