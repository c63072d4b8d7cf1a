"""Answering a survey session: one reply applied to the open session.

Rules:

- A valid reply is saved under the question id and the next question is sent;
  after the last question the session completes (:mod:`messaging.surveys.completion`).
  Branching (:mod:`messaging.surveys.branching`): questions whose ``show_if`` does
  not hold are saved as skipped and passed over; an answer that meets its
  question's ``end_if`` completes the session there, with its ``end_text``.
- An invalid one gets the reason and the question again, at most
  ``max_invalid_attempts`` times (the next invalid reply ends the session as
  ``failed``, ``end_reason='too_many_invalid_answers'``, with a sentence saying so).
  A valid reply resets the count.
- A session whose survey was shortened below its current question completes.
- A valid answer that satisfies its question's ``flag_if`` is flagged: the
  caller's ``on_flagged(question, value)`` runs in the transaction that saves it
  (inbound handling opens the message in the inbox and tells the case's owner).
- A session still asking which case it is about (a family phone,
  :mod:`messaging.surveys.case_choice`) takes the reply as that choice: a valid
  one becomes the session's case and the first question follows; an invalid
  one counts as an invalid answer.
- Every reply counts as activity: the next reminder is due ``reminder_minutes``
  after it (none at or after the expiry).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.participant_texts import say
from messaging.models import Case, SurveySession
from messaging.surveys import branching
from messaging.surveys.answers import Question, parse_answer, question_prompt
from messaging.surveys.case_choice import choice_prompt, invalid_choice, pick
from messaging.surveys.completion import complete_session
from messaging.surveys.conditions import holds
from messaging.surveys.definitions import survey_questions
from messaging.surveys.state import (
    cases_speaker,
    end_session,
    next_reminder_due,
    send_to_session,
    session_language,
)


def handle_reply(session: SurveySession, text: str, on_done=None, on_flagged=None) -> str:
    """Apply one reply to an open session; returns what happened.

    ``on_done()`` runs inside the transaction that records the outcome (the
    caller marks its inbound row handled there). This function commits (a
    completed session commits through ``apply_form``).
    """
    now = clock.now()
    questions = survey_questions(session.survey)
    question = questions[session.current_index] if session.current_index < len(questions) else None
    if question is None:  # the survey was shortened while the session was open
        return complete_session(session, questions, "completed", on_done)
    if session.candidate_case_ids:
        return _choose_case(session, text, question, now, on_done)
    language = session_language(session)
    answer = parse_answer(question, text, language)
    if not answer.ok:
        again = question_prompt(question, language)
        return _invalid(session, f"{answer.error}\n{again}", now, on_done, language)
    answers = dict(session.answers or {})
    answers[question.id] = answer.value
    session.answers = answers
    if on_flagged and question.flag_if is not None and holds(question.flag_if, answer.value):
        on_flagged(question, answer.value)
    session.invalid_attempts = 0
    if branching.ends_after(question, {q.id: q for q in questions}, answers):
        return complete_session(session, questions, "completed", on_done, text=question.end_text)
    following, skipped = branching.next_question(questions, answers, session.current_index)
    if skipped:
        session.answers = {**answers, **dict.fromkeys(skipped)}  # saved as skipped
    if following is None:
        session.current_index = len(questions)
        return complete_session(session, questions, "completed", on_done)
    session.current_index = following
    _touch(session, now)
    send_to_session(session, question_prompt(questions[session.current_index], language))
    if on_done:
        on_done()
    db.session.commit()
    return "answered"


def _invalid(session: SurveySession, again: str, now: datetime, on_done, language: str) -> str:
    """An invalid reply: ``again`` (the reason and the question), or the end after too many, in
    ``language``. Commits."""
    session.invalid_attempts += 1
    if session.invalid_attempts > session.survey.max_invalid_attempts:
        end_session(session, "failed", "too_many_invalid_answers", now)
        send_to_session(session, say("survey.too_many_invalid", language))
        outcome = "invalid_ended"
    else:
        _touch(session, now)
        send_to_session(session, again)
        outcome = "invalid"
    if on_done:
        on_done()
    db.session.commit()
    return outcome


def _choose_case(session: SurveySession, text: str, first: Question, now: datetime, on_done) -> str:
    """The reply to "Is this about 1. Amina 2. Juma?": the chosen case, then the first question."""
    cases = candidate_cases(session)
    names = [c.name for c in cases]
    position = pick(names, text)
    if position is None:
        language = cases_speaker(session.project_id, cases)
        again = f"{invalid_choice(language)}\n{choice_prompt(names, language)}"
        return _invalid(session, again, now, on_done, language)
    session.case_pk = cases[position].id
    session.candidate_case_ids = None
    session.invalid_attempts = 0
    _touch(session, now)
    send_to_session(session, question_prompt(first, session_language(session)))
    if on_done:
        on_done()
    db.session.commit()
    return "case_chosen"


def candidate_cases(session: SurveySession) -> list[Case]:
    """The cases a session asks to choose between, in the order it lists them (deleted ones left out)."""
    ids = list(session.candidate_case_ids or [])
    found = {c.id: c for c in db.session.execute(select(Case).where(Case.id.in_(ids))).scalars()}
    return [found[i] for i in ids if i in found and not found[i].deleted]


def pending_prompt(session: SurveySession, question: Question) -> str:
    """What the session is waiting for an answer to: which case it is about, or ``question``."""
    if session.candidate_case_ids:
        cases = candidate_cases(session)
        return choice_prompt([c.name for c in cases], cases_speaker(session.project_id, cases))
    return question_prompt(question, session_language(session))


def _touch(session: SurveySession, now: datetime) -> None:
    session.last_activity_at = now
    session.reminder_due_at = next_reminder_due(session, now)
