"""Due occurrences become messages: the periodic tick, through the same outbox as broadcasts.

Rules:
- The tick (every 10 s, on any worker) takes each project's pending occurrences
  whose time has come, ``BATCH`` at a time, soonest first. In one transaction it
  claims them (a conditional ``UPDATE ... WHERE status = 'pending'``: two ticks
  never claim one), writes their messages (rows before jobs, as every message:
  ``messaging.sms.outbox``) and marks them ``sent`` with how many messages they
  wrote; the send jobs are enqueued after the commit (the SMS sweep queues any a
  Redis outage dropped). A crash before the commit leaves them pending for the
  next tick; after it, they are sent. So each occurrence is sent at most once.
- An occurrence found more than ``LATE_LIMIT`` after its time (the workers were
  all down) is ``skipped`` with ``past_due`` rather than sent that late.
- Before writing, the case is checked again against the rule (it may have changed
  type, which its schedules do not follow): one that no longer matches is
  ``cancelled`` (``stopped_matching``).
- Recipients: the case's own number (``case``), the owner's numbers
  (``owner``: the mobile worker, or every member of the owning group, active and
  with a phone, :mod:`messaging.conversations.owner_alerts`), or both, each
  number once. With nobody to text, the occurrence is ``skipped``
  (``no_recipient``). A number that is not E.164 or has opted out gets a
  ``failed`` message with its reason, as for broadcasts.
- A survey rule whose repeat is ``until_completed`` re-asks only the cases that have
  not completed it: an occurrence of a case that completed a session the rule opened
  is ``skipped`` (``completed``), so the non-completers alone are asked again.
- Content as for broadcasts: the text (or the translation for the case's
  language) with its placeholders filled from the case; a survey opens a session
  for the case's number and sends its first question. The rule's quiet hours
  move a message's ``due_at`` to the next opening in the recipient's zone.
- Messages to the case carry its ``case_id`` (they are part of its
  conversation); messages to owners do not. All carry ``alert_id`` and
  ``alert_occurrence_id``.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Integer, select, update

from messaging.alerts import applying
from messaging.alerts import rules as rules_module
from messaging.broadcasts.content import held_until, text_in
from messaging.broadcasts.spec import quiet_window
from messaging.cases.serialize import placeholder_context
from messaging.conversations.owner_alerts import owner_phones
from messaging.db import dialect
from messaging.db.after_commit import after_commit
from messaging.db.tenancy import project_scope
from messaging.extensions import db
from messaging.lib import clock, templating
from messaging.models import AlertOccurrence, AlertRule, Case, Message, Project, SurveySession
from messaging.sms import outbox

log = logging.getLogger(__name__)

BATCH = 2000
LATE_LIMIT = timedelta(hours=6)
OCCURRENCES = AlertOccurrence.__table__
MESSAGES = Message.__table__
# What sending reads of a case (rows, not ORM objects: a batch loads thousands).
CASE_COLUMNS = (
    Case.id,
    Case.case_id,
    Case.case_type,
    Case.name,
    Case.external_id,
    Case.phone_number,
    Case.phone_raw,
    Case.phone_invalid,
    Case.owner_id,
    Case.properties,
    Case.language,
    Case.closed,
    Case.deleted,
)


def tick(now: datetime | None = None, batch: int = BATCH, max_batches: int = 200) -> dict:
    """Periodic: send every project's due occurrences (at most ``max_batches`` batches a tick)."""
    now = now or clock.now()
    stats: Counter = Counter()
    projects = (
        db.session.execute(
            select(AlertOccurrence.project_id)
            .where(AlertOccurrence.status == "pending", AlertOccurrence.due_at <= now)
            .distinct()
            .execution_options(all_projects=True)
        )
        .scalars()
        .all()
    )
    db.session.rollback()
    for project_id in projects:
        with project_scope(project_id):
            for _ in range(max_batches):
                try:
                    done = send_due(project_id, now, batch)
                except Exception:
                    db.session.rollback()
                    log.exception("alert sending failed project_id=%s (the next tick retries)", project_id)
                    stats["errors"] += 1
                    break
                stats.update(done)
                if done["claimed"] < batch:
                    break
    stats.update(applying.resume_stale(now))
    return {k: v for k, v in stats.items() if v}


def send_due(project_id: int, now: datetime, batch: int = BATCH) -> Counter:
    """Claim up to ``batch`` due occurrences of the current project, write their messages, commit."""
    stats: Counter = Counter()
    dialect.begin_write()
    # Lost with a crash of the database server, a commit loses its claim and its messages
    # together: the occurrences are pending again and sent once by a later tick.
    dialect.commit_without_waiting_for_disk()
    due = db.session.execute(
        select(AlertOccurrence.id, AlertOccurrence.due_at)
        .where(AlertOccurrence.status == "pending", AlertOccurrence.due_at <= now)
        .order_by(AlertOccurrence.due_at, AlertOccurrence.id)
        .limit(batch)
    ).all()
    if not due:
        return stats
    late = [o.id for o in due if o.due_at < now - LATE_LIMIT]
    on_time = [o.id for o in due if o.due_at >= now - LATE_LIMIT]
    if late:
        stats["past_due"] += _set_status(late, now, "skipped", "past_due", only_pending=True)
    claimed = _claim(on_time, now)
    stats["claimed"] = len(due)
    if claimed:
        stats.update(_write_messages(project_id, claimed, now))
    db.session.commit()
    return stats


def _set_status(ids: list[int], now: datetime, status: str, reason: str, only_pending: bool = False) -> int:
    """Settle these occurrences (only those still pending with ``only_pending``; claimed ones
    are this transaction's own)."""
    where = [OCCURRENCES.c.id.in_(ids)]
    if only_pending:
        where.append(OCCURRENCES.c.status == "pending")
    return db.session.execute(
        update(OCCURRENCES).where(*where).values(status=status, reason=reason, updated_at=now)
    ).rowcount


def _claim(ids: list[int], now: datetime) -> list:
    """Mark these pending occurrences sent (those another tick has not taken); returns them."""
    if not ids:
        return []
    # One message each, the common case (a rule to the case); others are corrected after.
    return db.session.execute(
        update(OCCURRENCES)
        .where(dialect.in_values(OCCURRENCES.c.id, ids, BigInteger), OCCURRENCES.c.status == "pending")
        .values(status="sent", reason=None, messages=1, updated_at=now)
        .returning(OCCURRENCES.c.id, OCCURRENCES.c.rule_id, OCCURRENCES.c.case_pk)
    ).all()


class RuleContent:
    """One rule's content: text by language, placeholders, survey, quiet hours."""

    def __init__(self, rule: AlertRule, project_tz: str):
        self.rule = rule
        self.window = quiet_window(rule)
        self.project_tz = project_tz
        self.zones: dict[tuple[str, datetime], datetime] = {}

    def text_for(self, language: str | None) -> str:
        return text_in(self.rule, language)

    def due_at(self, phone: str, now: datetime) -> datetime | None:
        return held_until(self.window, self.project_tz, phone, now, self.zones)


def still_matches(rule: AlertRule, case: Case | None) -> bool:
    """Whether the case is still one the rule sends to (the same checks as the schedules; a case
    whose type changed is found here)."""
    if case is None or case.deleted or case.case_type != rule.case_type:
        return False
    return rules_module.matches(rule.criteria or [], rules_module.fields_of(case))


def recipients_of(rule: AlertRule, case: Case, owners: dict | None = None) -> list[tuple[str, bool]]:
    """``[(phone, is_the_case)]``: who an occurrence of ``rule`` for ``case`` texts, each number
    once. ``owners`` keeps each owner's numbers for a batch (one look-up per owner, not per case)."""
    found: dict[str, bool] = {}
    if rule.recipient in ("case", "case_and_owner"):
        phone = case.phone_number or (case.phone_raw if case.phone_invalid else None)
        if phone:
            found[phone] = True
    if rule.recipient in ("owner", "case_and_owner"):
        owners = {} if owners is None else owners
        if case.owner_id not in owners:
            owners[case.owner_id] = owner_phones(case)
        for phone in owners[case.owner_id]:
            found.setdefault(phone, False)
    return list(found.items())


def _write_messages(project_id: int, claimed, now: datetime) -> Counter:
    stats: Counter = Counter()
    rules = {
        r.id: r
        for r in db.session.execute(
            select(AlertRule).where(AlertRule.id.in_({c.rule_id for c in claimed}))
        ).scalars()
    }
    cases = {
        c.id: c
        for c in db.session.execute(
            select(*CASE_COLUMNS).where(dialect.in_values(Case.id, {c.case_pk for c in claimed}, BigInteger))
        )
    }
    project_tz = db.session.get(Project, project_id).timezone or "UTC"
    contents = {rule_id: RuleContent(rule, project_tz) for rule_id, rule in rules.items()}
    rows, counts, nobody, stale, done, owners = [], {}, [], [], [], {}
    finished = completed_surveys(rules.values(), {c.case_pk for c in claimed})
    for occ in claimed:
        rule, case = rules[occ.rule_id], cases.get(occ.case_pk)
        if not still_matches(rule, case):
            stale.append(occ.id)
            continue
        if (rule.id, occ.case_pk) in finished:
            done.append(occ.id)
            continue
        targets = recipients_of(rule, case, owners)
        if not targets:
            nobody.append(occ.id)
            continue
        counts[occ.id] = len(targets)
        content = contents[occ.rule_id]
        if rule.survey_id:
            _start_survey(project_id, rule, case, targets[0][0], occ.id)
            stats["surveys"] += 1
            counts[occ.id] = 1
            continue
        text = templating.render(content.text_for(case.language), placeholder_context(case)).text
        for phone, is_the_case in targets:
            rows.append(
                {
                    "phone": phone,
                    "body": text,
                    "case_id": case.id if is_the_case else None,
                    "alert_id": rule.id,
                    "alert_occurrence_id": occ.id,
                    "due_at": content.due_at(phone, now),
                }
            )
    if nobody:
        _set_status(nobody, now, "skipped", "no_recipient")
        stats["no_recipient"] += len(nobody)
    if stale:
        _set_status(stale, now, "cancelled", "stopped_matching")
        stats["stopped_matching"] += len(stale)
    if done:
        _set_status(done, now, "skipped", "completed")
        stats["completed"] += len(done)
    dialect.update_each(
        OCCURRENCES,
        [{"id": occ_id, "messages": count} for occ_id, count in counts.items() if count != 1],
        match=(OCCURRENCES.c.id, "id"),
        types={"id": BigInteger, "messages": Integer},
        values=lambda v: {"messages": v["messages"]},
    )
    result = outbox.QueueResult()
    send_jobs = outbox.insert_messages(project_id, rows, result) if rows else []
    if send_jobs:
        after_commit(outbox.enqueue_send_jobs, project_id, send_jobs)
    stats["sent"] += len(counts)
    stats["messages"] += len(rows)
    if rows or nobody:
        log.info(
            "alert occurrences sent project_id=%s occurrences=%s messages=%s no_recipient=%s",
            project_id,
            len(counts),
            len(rows),
            len(nobody),
        )
    return stats


def completed_surveys(rules, case_pks: set[int]) -> set[tuple[int, int]]:
    """``(rule_id, case_pk)`` of the ``until_completed`` survey rules among ``rules`` whose
    case completed a session the rule opened (its first question carries the rule's id)."""
    wanted = [r.id for r in rules if r.survey_id and (r.repeat or {}).get("until_completed")]
    if not wanted or not case_pks:
        return set()
    return {
        (rule_id, case_pk)
        for rule_id, case_pk in db.session.execute(
            select(MESSAGES.c.alert_id, SurveySession.case_pk)
            .join(SurveySession, SurveySession.id == MESSAGES.c.survey_session_id)
            .where(
                MESSAGES.c.alert_id.in_(wanted),
                SurveySession.status == "completed",
                dialect.in_values(SurveySession.case_pk, case_pks, BigInteger),
            )
            .distinct()
        )
    }


def _start_survey(project_id: int, rule: AlertRule, case: Case, phone: str, occurrence_id: int) -> None:
    """Open a session for the case's number (its first question joins this transaction)."""
    from messaging.surveys.starting import start_session

    session = start_session(project_id, rule.survey_id, phone, case.id, source="alert")
    db.session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.survey_session_id == session.id)
        .values(alert_id=rule.id, alert_occurrence_id=occurrence_id)
    )
