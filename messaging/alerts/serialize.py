"""The JSON of a rule and of an occurrence (the API and the pages read these)."""

from __future__ import annotations

from messaging.alerts import reading
from messaging.lib import clock
from messaging.models import AlertOccurrence, AlertRule


def rule_json(rule: AlertRule, with_counts: bool = True) -> dict:
    body = {
        "id": rule.id,
        "name": rule.name,
        "case_type": rule.case_type,
        "criteria": list(rule.criteria or []),
        "start": rule.start,
        "repeat": rule.repeat,
        "recipient": rule.recipient,
        "text": rule.text,
        "translations": rule.translations or {},
        "default_language": rule.default_language,
        "survey_id": rule.survey_id,
        "quiet_hours": {"start": rule.quiet_start, "end": rule.quiet_end} if rule.quiet_start else None,
        "active": rule.active,
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
