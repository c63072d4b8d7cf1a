"""Survey reminders and expiry: the periodic tick, and expiring one session.

Rules:

- Reminders resend the current question ("Reminder: " and the question, in the
  session's language) every
  ``reminder_minutes`` after the last activity, until the expiry.
- The session expires ``expire_after_minutes`` after it started (``expired``),
  and with ``save_partial_on_expiry`` what was answered becomes a form (no
  completion text is sent).
- :func:`tick` does both (the periodic job) for every project, holding the
  number's lock so it never races with the handling of a reply from the same
  number: a number whose lock is taken is ``busy`` and waits for the next tick.
  A session that is no longer open or due is ``skipped``; an error in one
  session is logged and rolled back (``error``) and does not stop the others.
  Safe to run anywhere, any number of times.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from sqlalchemy import select

from messaging.db.tenancy import project_scope
from messaging.extensions import db
from messaging.inbound.locks import NumberLock
from messaging.lib import clock
from messaging.lib.participant_texts import say
from messaging.models import SurveySession
from messaging.surveys.completion import complete_session
from messaging.surveys.definitions import survey_questions
from messaging.surveys.replies import pending_prompt
from messaging.surveys.state import (
    current_question,
    end_session,
    next_reminder_due,
    send_to_session,
    session_language,
)

log = logging.getLogger(__name__)

SESSIONS = SurveySession.__table__


def tick(limit: int = 1000) -> dict:
    """Expire due sessions and send due reminders (all projects). Safe to run anywhere, any times."""
    stats = Counter()
    now = clock.now()
    for row in _due(SESSIONS.c.expires_at, now, limit):
        stats[_with_lock(row, _expire_one)] += 1
    for row in _due(SESSIONS.c.reminder_due_at, now, limit):
        stats[_with_lock(row, _remind_one)] += 1
    if stats:
        log.info("survey tick %s", dict(stats))
    return dict(stats)


def expire_session(session: SurveySession) -> str:
    """Expire an open session now (partial answers saved when the survey says so). Commits."""
    questions = survey_questions(session.survey)
    if session.survey.save_partial_on_expiry and session.answers:
        complete_session(session, questions, "expired", notify=False)
    else:
        end_session(session, "expired", "expired", clock.now())
        db.session.commit()
    log.info("session expired project_id=%s session_id=%s", session.project_id, session.id)
    return "expired"


def _due(column, now: datetime, limit: int):
    return db.session.execute(
        select(SESSIONS.c.id, SESSIONS.c.project_id, SESSIONS.c.phone)
        .where(SESSIONS.c.status == "open", column.is_not(None), column <= now)
        .order_by(column)
        .limit(limit)
    ).all()


def _with_lock(row, action) -> str:
    lock = NumberLock(row.project_id, row.phone)
    if not lock.acquire():
        return "busy"  # a reply from this number is being handled: next tick
    try:
        with project_scope(row.project_id):
            session = db.session.execute(
                select(SurveySession)
                .where(SurveySession.id == row.id)
                .execution_options(populate_existing=True)
            ).scalar_one_or_none()
            if session is None or session.status != "open":
                return "skipped"
            try:
                return action(session)
            except Exception:
                db.session.rollback()
                log.exception("survey tick failed project_id=%s session_id=%s", row.project_id, row.id)
                return "error"
    finally:
        lock.release()


def _expire_one(session: SurveySession) -> str:
    if session.expires_at is None or session.expires_at > clock.now():
        return "skipped"
    return expire_session(session)


def _remind_one(session: SurveySession) -> str:
    now = clock.now()
    if session.reminder_due_at is None or session.reminder_due_at > now:
        return "skipped"
    question = current_question(session)
    if question is None:
        session.reminder_due_at = None
        db.session.commit()
        return "skipped"
    session.reminders_sent += 1
    session.reminder_due_at = next_reminder_due(session, now)
    send_to_session(
        session, say("survey.reminder", session_language(session), question=pending_prompt(session, question))
    )
    db.session.commit()
    log.info(
        "reminder sent project_id=%s session_id=%s n=%s",
        session.project_id,
        session.id,
        session.reminders_sent,
    )
    return "reminded"
