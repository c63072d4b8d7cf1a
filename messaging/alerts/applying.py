"""Applying a new or changed rule to the existing cases: a job, batch by batch, with progress.

Rules:
- Creating, changing or resuming a rule sets it ``applying`` (cursor 0, total the
  open cases of its type) and enqueues :func:`apply_rule` after the commit.
- The job walks the rule's case type by primary key, ``BATCH`` cases a
  transaction: it locks the batch's cases (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL: a case a form holds is recomputed by that form, whose transaction
  sees the rule), recomputes their schedules (:mod:`messaging.alerts.schedules`)
  and moves the rule's cursor with a conditional UPDATE in the same transaction,
  so a job run twice, or two at once, does each batch once. Memory is one batch.
- ``apply_done`` / ``apply_total`` are the progress the rule's page shows; the
  rule is ``done`` when the walk ends. A rule whose walk has not moved for
  ``STALE_SECONDS`` is enqueued again by the alert tick (the cursor makes it safe).
- A rule paused or deleted meanwhile stops its walk.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from messaging import jobs
from messaging.alerts import schedules
from messaging.db import dialect
from messaging.db.after_commit import after_commit
from messaging.db.tenancy import project_scope
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import AlertRule, Case

log = logging.getLogger(__name__)

BATCH = 1000
STALE_SECONDS = 120
RULES = AlertRule.__table__


def start_applying(rule: AlertRule) -> None:
    """Mark ``rule`` to be applied to every existing case of its type; the job follows the commit."""
    rule.apply_status = "applying"
    rule.apply_cursor = 0
    rule.apply_done = 0
    rule.apply_total = db.session.execute(
        select(func.count()).select_from(Case).where(Case.case_type == rule.case_type, Case.closed.is_(False))
    ).scalar()
    rule.apply_updated_at = clock.now()
    after_commit(enqueue_apply, rule.project_id, rule.id)


def enqueue_apply(project_id: int, rule_id: str) -> None:
    try:
        jobs.enqueue(jobs.APPLY_ALERT_RULE, project_id, rule_id)
    except Exception:
        log.exception("enqueue failed project_id=%s rule_id=%s (the alert tick retries)", project_id, rule_id)


def apply_rule(project_id: int, rule_id: str, batch: int = BATCH) -> dict:
    """The job: recompute the schedules of every case of the rule's type, batch by batch."""
    stats: Counter = Counter()
    while True:
        dialect.begin_write()
        rule = db.session.execute(
            select(AlertRule).where(AlertRule.id == rule_id).execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if rule is None or rule.apply_status != "applying":
            break
        if not rule.active or rule.deleted_at is not None:
            _finish(rule_id, rule.apply_cursor)
            break
        cursor = rule.apply_cursor
        cases = db.session.execute(
            select(*schedules.CASE_COLUMNS)
            .where(Case.case_type == rule.case_type, Case.id > cursor)
            .order_by(Case.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        if not cases:
            _finish(rule_id, cursor)
            break
        last = cases[-1].id
        if not _claim(rule_id, cursor, last, sum(1 for c in cases if not c.closed)):
            db.session.rollback()
            break  # another job has this batch
        stats.update(schedules.recompute(project_id, [rule], cases))
        db.session.commit()
        stats["cases"] += len(cases)
    log.info("alert rule applied project_id=%s rule_id=%s %s", project_id, rule_id, dict(stats))
    return dict(stats)


def _claim(rule_id: str, cursor: int, last: int, done: int) -> bool:
    return (
        db.session.execute(
            update(RULES)
            .where(RULES.c.id == rule_id, RULES.c.apply_cursor == cursor, RULES.c.apply_status == "applying")
            .values(apply_cursor=last, apply_done=RULES.c.apply_done + done, apply_updated_at=clock.now())
        ).rowcount
        == 1
    )


def _finish(rule_id: str, cursor: int) -> None:
    db.session.execute(
        update(RULES)
        .where(RULES.c.id == rule_id, RULES.c.apply_cursor == cursor, RULES.c.apply_status == "applying")
        .values(apply_status="done", apply_updated_at=clock.now())
    )
    db.session.commit()


def resume_stale(now: datetime) -> Counter:
    """Enqueue again the walks that have not moved for ``STALE_SECONDS`` (their job was lost)."""
    stats: Counter = Counter()
    stale = db.session.execute(
        select(AlertRule.id, AlertRule.project_id)
        .where(
            AlertRule.apply_status == "applying",
            AlertRule.apply_updated_at < now - timedelta(seconds=STALE_SECONDS),
        )
        .execution_options(all_projects=True)
    ).all()
    for rule_id, project_id in stale:
        with project_scope(project_id):
            db.session.execute(update(RULES).where(RULES.c.id == rule_id).values(apply_updated_at=now))
            db.session.commit()
            enqueue_apply(project_id, rule_id)
            stats["applies_resumed"] += 1
    return stats
