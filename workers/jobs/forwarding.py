"""Data forwarding jobs: a location's sender, and the sweep that catches up after lost jobs.

The records' rows say what is due (claimed atomically), so a sender that runs
twice or beside another posts each record once per attempt.
"""

from messaging.forwarding import sender as forwarding
from messaging.forwarding import sweep
from messaging.models import ForwardLocation
from workers.jobs import periodic_job, row_job


@row_job(ForwardLocation)
def forward_location(location_id: str) -> dict:
    """POST the location's due records, oldest first, in chunks."""
    return forwarding.forward_location(location_id)


@periodic_job
def sweep_forwarding() -> dict:
    """Every 60 s: stale ``sending`` records back to ``pending``; senders for due records."""
    return sweep.sweep()
