"""SMS jobs: send a batch of messages, the sweep, and asking the gateway for prices.

Both only take ids; the rows in the database say what to do, so running a
job twice (RQ retries, the sweep re-queuing, two workers) never sends twice.
"""

from messaging.sms.gateway_prices import fetch_prices
from messaging.sms.sending import send_batch
from messaging.sms.sweep import sweep as sweep_messages
from workers.jobs import current_job_id, periodic_job, project_job


@project_job
def send_messages(project_id: int, message_ids: list[int]) -> dict:
    """Send these messages of one project (claims each row before sending it)."""
    return send_batch(project_id, list(message_ids), job_id=current_job_id()).__dict__


@periodic_job
def sweep() -> dict:
    """Every 15 s: re-queue due messages whose job is gone; resolve messages stuck in ``sending``."""
    return sweep_messages().__dict__


@periodic_job
def prices() -> dict:
    """Every 5 minutes: read the prices Twilio put on recent messages (never in its callbacks)."""
    return fetch_prices().__dict__
