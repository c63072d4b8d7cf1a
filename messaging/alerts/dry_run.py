"""The dry run: the project's next days of alert messages, played forward without sending.

Rules:
- Schedules are kept in the database, so the next ``days`` are the pending
  occurrences due before ``now + days`` of the active rules (or of ``alert_ids``):
  what the tick will send if no case changes meanwhile. Each is turned into
  messages exactly as the tick would (the same recipients and rendering,
  :mod:`messaging.alerts.sending`), without writing anything.
- Per local day of the project (its zone): messages, SMS segments, and how many
  the rule's quiet hours would hold to a later time; the day is the one the
  message is due on, before quiet hours move it.
- A few sample transcripts (the soonest ``SAMPLES`` messages: to, when, text).
- Rules still being applied to the existing cases are named (``applying``):
  their schedules are not complete yet.
- ``days`` is 1 to ``MAX_DAYS``; at most ``MAX_OCCURRENCES`` occurrences are
  played (``truncated`` says so).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from sqlalchemy import BigInteger, select

from messaging.alerts.schedules import project_zone
from messaging.alerts.sending import RuleContent, recipients_of
from messaging.cases.serialize import placeholder_context
from messaging.db import dialect
from messaging.errors import field_error
from messaging.extensions import db
from messaging.lib import clock, templating
from messaging.lib.localtime import utc_to_local
from messaging.lib.segments import count_segments
from messaging.models import AlertOccurrence, AlertRule, Case, Project

MAX_DAYS = 90
MAX_OCCURRENCES = 50_000
SAMPLES = 10


def parse_days(body) -> tuple[int, list[str] | None]:
    if not isinstance(body, dict):
        raise field_error("days", "send a JSON object {days, alert_ids?}.")
    days = body.get("days", 30)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise field_error("days", f"must be a whole number from 1 to {MAX_DAYS}.")
    ids = body.get("alert_ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise field_error("alert_ids", "must be a list of alert ids.")
    return days, ids


def dry_run(project_id: int, days: int, alert_ids: list[str] | None = None) -> dict:
    now = clock.now()
    end = now + timedelta(days=days)
    zone = project_zone(project_id)
    rule_filter = [AlertRule.active.is_(True), AlertRule.deleted_at.is_(None)]
    if alert_ids is not None:
        rule_filter.append(AlertRule.id.in_(alert_ids))
    rules = {r.id: r for r in db.session.execute(select(AlertRule).where(*rule_filter)).scalars()}
    rows = db.session.execute(
        select(AlertOccurrence.id, AlertOccurrence.rule_id, AlertOccurrence.due_at, AlertOccurrence.case_pk)
        .where(
            AlertOccurrence.status == "pending",
            AlertOccurrence.due_at < end,
            AlertOccurrence.rule_id.in_(list(rules)),
        )
        .order_by(AlertOccurrence.due_at, AlertOccurrence.id)
        .limit(MAX_OCCURRENCES + 1)
    ).all()
    truncated = len(rows) > MAX_OCCURRENCES
    rows = rows[:MAX_OCCURRENCES]
    project_tz = db.session.get(Project, project_id).timezone or "UTC"
    contents = {rule_id: RuleContent(rule, project_tz) for rule_id, rule in rules.items()}
    # Every case in one query (the occurrences name them by primary key).
    cases = {
        c.id: c
        for c in db.session.execute(
            select(Case).where(dialect.in_values(Case.id, {o.case_pk for o in rows}, BigInteger))
        ).scalars()
    }
    owners: dict = {}
    per_day: dict[str, dict] = defaultdict(lambda: {"messages": 0, "segments": 0, "held_by_quiet_hours": 0})
    samples = []
    for occ in rows:
        case, rule, content = cases.get(occ.case_pk), rules[occ.rule_id], contents[occ.rule_id]
        if case is None:
            continue
        due = max(occ.due_at, now)
        day = per_day[utc_to_local(due, zone).date().isoformat()]
        if rule.survey_id:
            text = "(the survey's first question)"
        else:
            text = templating.render(content.text_for(case.language), placeholder_context(case)).text
        for phone, _is_the_case in recipients_of(rule, case, owners):
            day["messages"] += 1
            day["segments"] += count_segments(text).segments
            held = content.due_at(phone, due)
            if held is not None:
                day["held_by_quiet_hours"] += 1
            if len(samples) < SAMPLES:
                samples.append(
                    {
                        "alert_id": rule.id,
                        "case_id": case.case_id,
                        "to": phone,
                        "due_at": clock.isoformat(held or due),
                        "text": text,
                    }
                )
    return {
        "days": [{"date": d, **counts} for d, counts in sorted(per_day.items())],
        "total_messages": sum(d["messages"] for d in per_day.values()),
        "total_segments": sum(d["segments"] for d in per_day.values()),
        "samples": samples,
        "applying": sorted(r.id for r in rules.values() if r.apply_status == "applying"),
        "truncated": truncated,
    }
