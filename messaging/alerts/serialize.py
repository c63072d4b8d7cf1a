"""The JSON of a rule and of an occurrence (the API and the pages read these)."""

from __future__ import annotations

from messaging.alerts import reading
from messaging.alerts.spec import definition_of
from messaging.lib import clock
from messaging.models import AlertOccurrence, AlertRule


def rule_json(rule: AlertRule, with_counts: bool = True) -> dict:
    body = {
        "id": rule.id,
        **definition_of(rule),
        "quiet_hours": {"start": rule.quiet_start, "end": rule.quiet_end} if rule.quiet_start else None,
        "applying": {
            "status": rule.apply_status,
            "done": rule.apply_done,
            "total": rule.apply_total,
        },
        "created_at": clock.isoformat(rule.created_at),
        "updated_at": clock.isoformat(rule.updated_at),
    }
    if with_counts:
        body["counts"] = reading.counts_by_status(rule.id)
    return body


def occurrence_json(occ: AlertOccurrence, case_id: str) -> dict:
    return {
        "id": occ.id,
        "alert_id": occ.rule_id,
        "case_id": case_id,
        "due_at": clock.isoformat(occ.due_at),
        "status": occ.status,
        "reason": occ.reason,
        "messages": occ.messages,
        "date": None if occ.anchor.startswith(("entered:", "no_date", "bad_date")) else occ.anchor,
        "seq": occ.seq,
        "updated_at": clock.isoformat(occ.updated_at),
    }
