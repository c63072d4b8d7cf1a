"""Conditional alert jobs: applying a rule to the existing cases, and the tick that sends due occurrences.

Both take ids only; the rule's cursor and each occurrence's status say what is
left, so running either twice sends each occurrence once.
"""

from messaging.alerts import applying, sending
from workers.jobs import periodic_job, project_job


@project_job
def apply_rule(project_id: int, rule_id: str) -> dict:
    """Recompute the schedules of every case of the rule's type, batch by batch."""
    return applying.apply_rule(project_id, rule_id)


@periodic_job
def tick() -> dict:
    """Every 10 s: turn due occurrences into messages; enqueue again rule walks whose job went quiet."""
    return sending.tick()
