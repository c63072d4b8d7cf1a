"""What a rule would do now, before it is saved: how many open cases match, and their next messages.

Rules:
- The body is validated as for create (a bad one is the same ``Invalid``), except
  that it may have no content yet: the samples then say so.
- The open cases of the type and those matching are counted in SQL
  (:mod:`messaging.cases.filters`, which means what the rules mean); the matching
  cases are read in batches of ``BATCH``, at most ``MAX_CASES``
  (``skipped_of_first`` then says how many the skips are of), and each one's next
  occurrence computed with the same functions the schedules use
  (:mod:`messaging.alerts.rules`), so the preview cannot disagree with them.
- The answer: open cases of the type, how many match, how many of those would
  be skipped (``no_date``, ``bad_date``, ``past_due``), and the ``SAMPLES``
  soonest next messages with their text as the case would get it. Nothing is written.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from messaging.alerts import rules as R
from messaging.alerts.schedules import PAST_SLACK, project_zone
from messaging.alerts.spec import parse_rule
from messaging.cases import filters
from messaging.cases.serialize import placeholder_context
from messaging.extensions import db
from messaging.lib import clock, templating
from messaging.models import Case

BATCH = 2000
MAX_CASES = 20_000
SAMPLES = 5
NO_TEXT_YET = "(no text yet)"


def preview_rule(project_id: int, body) -> dict:
    if isinstance(body, dict) and not any(body.get(k) for k in ("text", "translations", "survey_id")):
        body = {**body, "text": NO_TEXT_YET}  # the count does not wait for the message to be written
    fields = parse_rule(body)
    now = clock.now()
    zone = project_zone(project_id)
    skipped: Counter = Counter()
    upcoming = []
    seen = 0
    cursor = 0
    columns = (
        Case.id,
        Case.case_id,
        Case.name,
        Case.owner_id,
        Case.external_id,
        Case.closed,
        Case.properties,
    )
    text = fields["text"] or next(iter((fields["translations"] or {}).values()), "")
    chosen = filters.condition(fields["case_type"], fields["criteria"])
    open_cases = filters.count(fields["case_type"], [])
    matching = filters.count(fields["case_type"], fields["criteria"])
    while seen < MAX_CASES:
        batch = db.session.execute(
            select(*columns)
            .where(chosen, Case.id > cursor)
            .order_by(Case.id)
            .limit(min(BATCH, MAX_CASES - seen))
        ).all()
        if not batch:
            break
        cursor = batch[-1].id
        seen += len(batch)
        for c in batch:
            case_fields = R.fields_of(c)
            if fields["start"] is None:
                upcoming.append((now, c))
                continue
            raw = R.case_value(case_fields, fields["start"]["property"])
            try:
                times = R.occurrence_times(fields["start"], fields["repeat"], raw, zone)
            except R.NoDate:
                skipped["no_date"] += 1
                continue
            except R.BadDate:
                skipped["bad_date"] += 1
                continue
            ahead = [due for _, due in times if due >= now - PAST_SLACK]
            if not ahead:
                skipped["past_due"] += 1
                continue
            upcoming.append((ahead[0], c))
    upcoming.sort(key=lambda pair: (pair[0], pair[1].id))
    samples = []
    for due, c in upcoming[:SAMPLES]:
        case = db.session.get(Case, c.id)
        rendered = (
            templating.render(text, placeholder_context(case)).text
            if text
            else "(the survey's first question)"
        )
        samples.append(
            {"case_id": c.case_id, "name": c.name, "due_at": clock.isoformat(due), "text": rendered}
        )
    return {
        "open_cases": open_cases,
        "skipped_of_first": seen if matching > MAX_CASES else None,
        "matching": matching,
        "skipped": dict(skipped),
        "next": samples,
    }
