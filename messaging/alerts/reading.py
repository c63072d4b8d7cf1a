"""What a rule did and what a case will get: counts, history, upcoming messages, explanations.

Rules:
- A case's upcoming messages are its pending occurrences, soonest first, one
  entry per recipient, each with the text it would get now (placeholders filled
  from the case as it is) and why: the rule, and the date value (or the moment
  the case started matching) that put it there.
- A rule's history is its occurrences, newest first: sent (with how many
  messages), skipped and cancelled with their reason; filterable by status.
"""

from __future__ import annotations

from sqlalchemy import func, select

from messaging.alerts.sending import RuleContent, recipients_of
from messaging.cases.serialize import placeholder_context
from messaging.extensions import db
from messaging.lib import clock, templating
from messaging.models import AlertOccurrence, AlertRule, Case, Project


def counts_by_status(rule_id: str) -> dict[str, int]:
    return dict(
        db.session.execute(
            select(AlertOccurrence.status, func.count())
            .where(AlertOccurrence.rule_id == rule_id)
            .group_by(AlertOccurrence.status)
        ).all()
    )


def why(rule: AlertRule, anchor: str, seq: int) -> str:
    """A sentence saying what put an occurrence on the schedule."""
    repeat = (
        f" (repeat {seq} of {rule.repeat['times']}, every {rule.repeat['every_days']} days)" if seq else ""
    )
    if anchor.startswith("entered:"):
        return f"the case started matching '{rule.name}'{repeat}"
    start = rule.start or {}
    offset = int(start.get("offset_days") or 0)
    when = (
        "on that day"
        if offset == 0
        else f"{abs(offset)} day{'s' if abs(offset) != 1 else ''} {'before' if offset < 0 else 'after'}"
    )
    return f"{start.get('property')} is {anchor}: {when}, at {start.get('time')}{repeat}"


def upcoming(case: Case, limit: int = 100) -> list[dict]:
    """The messages ``case``'s schedules will send, soonest first (one entry per recipient)."""
    rows = db.session.execute(
        select(AlertOccurrence, AlertRule)
        .join(AlertRule, AlertRule.id == AlertOccurrence.rule_id)
        .where(AlertOccurrence.case_pk == case.id, AlertOccurrence.status == "pending")
        .order_by(AlertOccurrence.due_at, AlertOccurrence.id)
        .limit(limit)
    ).all()
    project_tz = db.session.get(Project, case.project_id).timezone or "UTC"
    out, owners, contents = [], {}, {}
    for occ, rule in rows:
        if rule.id not in contents:
            contents[rule.id] = RuleContent(rule, project_tz)
        content = contents[rule.id]
        if rule.survey_id:
            text = f"(survey {rule.survey_id}: its first question)"
        else:
            text = templating.render(content.text_for(case.language), placeholder_context(case)).text
        targets = recipients_of(rule, case, owners) or [(None, True)]
        for phone, is_the_case in targets:
            out.append(
                {
                    "alert_id": rule.id,
                    "alert_name": rule.name,
                    "occurrence_id": occ.id,
                    "due_at": clock.isoformat(occ.due_at),
                    "to": phone,
                    "recipient": "case" if is_the_case else "owner",
                    "text": text,
                    "why": why(rule, occ.anchor, occ.seq),
                }
            )
    return out
