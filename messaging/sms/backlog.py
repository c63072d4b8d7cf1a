"""The send backlog: how many queued messages are due now, and how long the oldest has waited.

Rules:
- A message is *due* when it is ``queued`` and neither its ``due_at`` (a
  scheduled send) nor its ``next_attempt_at`` (a retry) lies in the future:
  the rule the sweep (:mod:`messaging.sms.sweep`) queues by.
- It *became due* at the latest of when it was queued (``queued_at``, else
  ``created_at``), its ``due_at`` and its ``next_attempt_at``: a message
  scheduled for nine o'clock has waited from nine, a retry from its attempt
  time, not from when the row was written.
- One SQL query answers both (the count and the earliest moment a due message
  became due). Its only equality, ``status = 'queued'``, leads
  ``ix_messages_status_due`` (``status, due_at``); with a project,
  ``project_id, status`` lead ``ix_messages_project_status_id``. Only queued
  rows are read, never the sent history.
- Unscoped over all projects unless ``project_id`` is given; the filter is
  explicit, whatever project the session is scoped to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, select

from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Message

MESSAGES = Message.__table__


@dataclass(frozen=True)
class Backlog:
    """Queued messages due at ``now``: how many, and since when the oldest has been due."""

    due: int
    oldest_due_at: datetime | None
    now: datetime

    @property
    def oldest_due_seconds(self) -> float | None:
        """Seconds the oldest due message has waited since it became due (None when none is due)."""
        if self.oldest_due_at is None:
            return None
        return max(0.0, (self.now - self.oldest_due_at).total_seconds())


def _latest(first, second):
    """The later of two non-null times, in SQL both databases run (SQLite has no GREATEST)."""
    return case((second > first, second), else_=first)


def became_due_at():
    """SQL for the moment a due message became due: the latest of queued, due and next-attempt times."""
    queued = func.coalesce(MESSAGES.c.queued_at, MESSAGES.c.created_at)
    scheduled = func.coalesce(MESSAGES.c.due_at, queued)
    retry = func.coalesce(MESSAGES.c.next_attempt_at, queued)
    return _latest(_latest(queued, scheduled), retry)


def due_condition(now: datetime):
    """SQL: a queued message is due now (neither its ``due_at`` nor its retry time is ahead)."""
    return and_(
        MESSAGES.c.status == "queued",
        (MESSAGES.c.due_at.is_(None)) | (MESSAGES.c.due_at <= now),
        (MESSAGES.c.next_attempt_at.is_(None)) | (MESSAGES.c.next_attempt_at <= now),
    )


def due_backlog(project_id: int | None = None, now: datetime | None = None) -> Backlog:
    """Queued messages due now (of one project, or of all): their count and the oldest's due time."""
    now = now or clock.now()
    stmt = select(func.count(), func.min(became_due_at())).where(due_condition(now))
    if project_id is not None:
        stmt = stmt.where(MESSAGES.c.project_id == project_id)
    # A health check reads across projects on purpose; ``project_id`` above is the only scope.
    due, oldest = db.session.execute(stmt.execution_options(all_projects=True)).one()
    return Backlog(due=due, oldest_due_at=oldest, now=now)
