"""The claim: a send job takes rows for itself before it sends them, so none is sent twice.

Rules:
- **Never sent twice by a repeated job.** A job claims each row with one
  conditional UPDATE (`status='queued'` and due → `sending`, attempts + 1) and
  sends only the rows it won. A job run twice, two workers on the same job, an
  RQ retry or a sweep re-queue find the rows already claimed and do nothing.
- The claim's UPDATE also reads each row's opt-out (``EXISTS`` in its
  ``RETURNING``), so a number opted out since the row was written is not
  sent to; it commits at once.
- The claim writes the claiming job's id on each row (``job_id``; NULL when the
  caller is not a job), so the sweep can tell a row whose claimer died (its
  worker's pulse gone) from one still being sent.
- Before it commits, the claim lets the project's guards (daily limit, sending
  windows: :mod:`messaging.sms.guards`) put back the automated rows that may not
  go now; those are not returned.
- Giving claimed rows back (:func:`unclaim`) puts them back in ``queued``
  without counting the attempt; only rows still ``sending`` move.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, literal_column, or_, select, update

from messaging.db.dialect import in_values
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Message, OptOut
from messaging.sms.guards import hold_back

MESSAGES = Message.__table__
OPT_OUTS = OptOut.__table__


def claim(project_id: int, ids: list[int], now: datetime, job_id: str | None = None) -> list:
    """Atomically move due ``queued`` rows to ``sending`` (for ``job_id``, when given); returns the
    rows this caller won, each with ``opted_out`` (its number is on the project's opt-out list)
    read in the same statement."""
    # Spelled out: SQLAlchemy renders RETURNING's columns without their table, and an
    # unqualified ``phone`` inside the subquery would be the opt-out's own.
    listed = OPT_OUTS.alias("listed")
    opted_out = (
        select(listed.c.phone)
        .where(listed.c.project_id == project_id, listed.c.phone == literal_column("messages.phone"))
        .exists()
    )
    stmt = (
        update(MESSAGES)
        .where(
            MESSAGES.c.project_id == project_id,
            in_values(MESSAGES.c.id, ids, BigInteger),
            MESSAGES.c.status == "queued",
            or_(MESSAGES.c.next_attempt_at.is_(None), MESSAGES.c.next_attempt_at <= now),
            or_(MESSAGES.c.due_at.is_(None), MESSAGES.c.due_at <= now),
        )
        .values(
            status="sending",
            attempts=MESSAGES.c.attempts + 1,
            claimed_at=now,
            next_attempt_at=None,
            held_reason=None,
            updated_at=now,
            job_id=job_id,
        )
        .returning(
            MESSAGES.c.id,
            MESSAGES.c.phone,
            MESSAGES.c.body,
            MESSAGES.c.bypass_opt_out,
            MESSAGES.c.author_id,
            MESSAGES.c.attempts,
            MESSAGES.c.gateway_id,
            opted_out.label("opted_out"),
        )
    )
    rows = sorted(db.session.execute(stmt).all(), key=lambda r: r.id)
    rows = hold_back(project_id, rows, now)
    db.session.commit()
    return rows


def unclaim(project_id: int, ids: list[int]) -> None:
    """Give claimed rows back: ``queued`` again, the attempt not counted. Does not commit."""
    if not ids:
        return
    db.session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.project_id == project_id, MESSAGES.c.id.in_(ids), MESSAGES.c.status == "sending")
        .values(status="queued", attempts=MESSAGES.c.attempts - 1, claimed_at=None, updated_at=clock.now())
    )
