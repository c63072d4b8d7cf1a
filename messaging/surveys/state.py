"""An open survey session: finding it, its current question, and what every step changes on it.

Rules:

- A number has at most one open session per project (status ``open``; ended
  sessions are ``completed``, ``expired``, ``failed`` or ``cancelled``).
- The session expires ``expire_after_minutes`` after it started; a reminder is
  due ``reminder_minutes`` after the last activity, and none is due when that
  falls at or after the expiry (:func:`survey_timings`, :func:`next_reminder_due`).
- Every SMS of a session goes out with ``send_sms(..., survey_session_id=...)``
  to the session's phone and case; its send job is enqueued when the caller
  commits.
- Ending a session sets its status, end reason and end time, clears its
  reminder and counts as its last activity.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from messaging.extensions import db
from messaging.models import Case, Survey, SurveySession
from messaging.projects import texts
from messaging.sms import outbox
from messaging.surveys.answers import Question
from messaging.surveys.case_choice import shared_language
from messaging.surveys.definitions import survey_questions


def open_session(phone: str) -> SurveySession | None:
    """The open session of ``phone`` in the current project (expired ones are not returned)."""
    return db.session.execute(
        select(SurveySession).where(SurveySession.phone == phone, SurveySession.status == "open")
    ).scalar_one_or_none()


def session_language(session: SurveySession) -> str:
    """The language the session asks in: its case's (blank: each question's default), carrying
    the project's own wordings of the system's texts (``messaging.projects.texts``)."""
    case = db.session.get(Case, session.case_pk) if session.case_pk is not None else None
    return texts.speaker(session.project_id, case.language if case is not None else None)


def cases_speaker(project_id: int, cases) -> str:
    """The language to ask several cases' shared number in: the one they share, else the
    project's default (``case_choice.shared_language``), with the project's wordings."""
    return texts.speaker(project_id, shared_language([c.language for c in cases]))


def current_question(session: SurveySession) -> Question | None:
    questions = survey_questions(session.survey)
    return questions[session.current_index] if session.current_index < len(questions) else None


def survey_timings(survey: Survey, now: datetime) -> dict:
    """``expires_at`` and the first ``reminder_due_at`` of a session of ``survey`` starting ``now``."""
    expires = now + timedelta(minutes=survey.expire_after_minutes)
    reminder = None
    if survey.reminder_minutes:
        reminder = now + timedelta(minutes=survey.reminder_minutes)
        if reminder >= expires:
            reminder = None
    return {"expires_at": expires, "reminder_due_at": reminder}


def next_reminder_due(session: SurveySession, now: datetime) -> datetime | None:
    """When the next reminder of ``session`` is due after activity at ``now`` (None: no reminder)."""
    minutes = session.survey.reminder_minutes
    due = now + timedelta(minutes=minutes) if minutes else None
    return due if due and session.expires_at and due < session.expires_at else None


def send_to_session(session: SurveySession, body: str, **kw) -> int:
    """Queue an SMS of the session to its phone (and case); sent when the caller commits."""
    return outbox.send_sms(
        session.project_id, session.phone, body, session.case_pk, survey_session_id=session.id, **kw
    )


def end_session(session: SurveySession, status: str, reason: str | None, now: datetime) -> None:
    session.status = status
    session.end_reason = reason
    session.ended_at = now
    session.reminder_due_at = None
    session.last_activity_at = now
