"""Create, change, pause and delete rules (the caller commits).

Rules:
- A new rule, and a rule whose definition changed, is applied to the existing
  cases by a job (:mod:`messaging.alerts.applying`); until then, forms already
  see it.
- Pausing (``active`` false) cancels the rule's pending occurrences
  (``rule_paused``); resuming applies it again (those still ahead come back).
- A change of case type cancels the pending occurrences (``rule_changed``) and
  forgets which cases matched: the cases of the new type start afresh. Other
  changes are settled case by case by the job (moved, cancelled ``rule_changed``
  or ``stopped_matching``, or new).
- Deleting cancels the pending occurrences (``rule_deleted``) and keeps the rule,
  hidden, so its history and its messages still name it.
"""

from __future__ import annotations

import logging

from messaging.alerts import applying, schedules
from messaging.alerts.spec import parse_rule
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import AlertRule

log = logging.getLogger(__name__)


def create_rule(project_id: int, body, user_id: int | None = None) -> AlertRule:
    fields = parse_rule(body)
    now = clock.now()
    rule = AlertRule(project_id=project_id, created_by=user_id, created_at=now, updated_at=now, **fields)
    db.session.add(rule)
    db.session.flush()
    if rule.active:
        applying.start_applying(rule)
    log.info("alert rule created project_id=%s rule_id=%s", project_id, rule.id)
    return rule


def update_rule(rule: AlertRule, body) -> AlertRule:
    fields = parse_rule(body, current=rule)
    was_active, old_type = rule.active, rule.case_type
    changed = {k for k, v in fields.items() if getattr(rule, k) != v}
    for key, value in fields.items():
        setattr(rule, key, value)
    rule.updated_at = clock.now()
    db.session.flush()
    if not rule.active:
        if was_active:
            schedules.cancel_pending(rule.id, "rule_paused")
    else:
        if "case_type" in changed:
            schedules.cancel_pending(rule.id, "rule_changed")
            schedules.forget_states(rule.id)
        if changed or not was_active:
            applying.start_applying(rule)
    log.info(
        "alert rule changed project_id=%s rule_id=%s fields=%s old_type_changed=%s",
        rule.project_id,
        rule.id,
        sorted(changed),
        old_type != rule.case_type,
    )
    return rule


def delete_rule(rule: AlertRule) -> None:
    now = clock.now()
    rule.deleted_at = now
    rule.active = False
    rule.apply_status = "done"
    rule.updated_at = now
    schedules.cancel_pending(rule.id, "rule_deleted")
    log.info("alert rule deleted project_id=%s rule_id=%s", rule.project_id, rule.id)
