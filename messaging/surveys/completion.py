"""Completing a survey session: its answers become a form on its case.

Rules:

- After the last question the session is ``completed`` and, when it has a case,
  becomes a form through ``messaging.cases.forms.apply_form`` (source
  ``sms_survey``, ``form_id`` = the session id, so it is applied once),
  submitted by the project's system actor (:mod:`messaging.surveys.actor`). An
  expired session with partial answers (``save_partial_on_expiry``) becomes a
  form the same way, with the status ``expired``.
- Answers with a ``case_property`` update that property (multiple choice saved
  as the space-separated choices; skipped answers change nothing). The form's
  answers carry ``_meta``: the survey, the session, the phone and the status.
- A session without a case (unknown number, or a deleted case) keeps its
  answers on the session only.
- A form the case rules refuse is rolled back: the session ends all the same,
  keeps its answers, and its end reason says why (``form_refused: ...``).
- The survey's completion text (or "Thank you, your answers have been
  received.") is sent when the session completes, not when it expires.
- A completed session (not an expired one) is a ``survey.completed`` event for the
  project's webhooks (its JSON, ``messaging.surveys.serialize.session_json``), in
  the transaction that records the end.
"""

from __future__ import annotations

import logging

from messaging.cases import forms as case_rules
from messaging.errors import DomainError
from messaging.extensions import db
from messaging.forwarding.capture import capture_events
from messaging.lib import clock
from messaging.lib.participant_texts import say
from messaging.models import Case, SurveySession
from messaging.models.forwarding import EventName
from messaging.surveys.actor import ensure_system_actor
from messaging.surveys.answers import Question
from messaging.surveys.serialize import session_json
from messaging.surveys.state import end_session, send_to_session, session_language

log = logging.getLogger(__name__)


def form_payload(session: SurveySession, questions: list[Question], app_id: str, user_id: str, case_id: str):
    update_block = {}
    for q in questions:
        if q.case_property and q.id in (session.answers or {}) and session.answers[q.id] is not None:
            update_block[q.case_property] = _property_value(session.answers[q.id])
    return {
        "form_id": session.id,
        "app_id": app_id,
        "user_id": user_id,
        # CommCare's identity of the form: one xmlns per survey, named as the survey is.
        "xmlns": f"urn:messaging:survey:{session.survey_id}",
        "name": (session.survey.name if session.survey is not None else None) or None,
        "answers": {
            **(session.answers or {}),
            "_meta": {
                "survey_id": session.survey_id,
                "survey_session_id": session.id,
                "phone": session.phone,
                "status": session.status,
            },
        },
        "cases": [{"case_id": case_id, "update": update_block}],
    }


def _property_value(value):
    if isinstance(value, list):
        return " ".join(value)
    return value


def complete_session(
    session: SurveySession, questions, status: str, on_done=None, notify: bool = True, text: str | None = None
) -> str:
    """End the session (``completed``, or ``expired`` with partial answers) and apply its form.

    ``on_done()`` runs inside the transaction that records the end; ``text`` replaces the
    completion text (a branch's ``end_text``). Commits.
    """
    now = clock.now()
    reason = None if status == "completed" else "expired"
    end_session(session, status, reason, now)
    text = text or session.survey.completion_text or say("survey.completed", session_language(session))
    case = db.session.get(Case, session.case_pk) if session.case_pk else None
    if case is None or case.deleted:
        _announce(session, text, notify, on_done, None)
        db.session.commit()
        log.info(
            "session ended without a case project_id=%s session_id=%s status=%s",
            session.project_id,
            session.id,
            status,
        )
        return status
    app_id, user_id = ensure_system_actor(session.project_id)
    payload = form_payload(session, questions, app_id, user_id, case.case_id)
    session_id, project_id = session.id, session.project_id

    def applied(result):
        session.form_id = result.form.form_id
        _announce(session, text, notify, on_done, case.case_id)

    try:
        case_rules.apply_form(payload, source="sms_survey", on_applied=applied)
    except DomainError as exc:
        # The form was refused (rolled back): keep the answers on the session, say why.
        log.warning(
            "survey form refused project_id=%s session_id=%s: %s", project_id, session_id, exc.message
        )
        session = db.session.get(SurveySession, session_id)
        answers = payload["answers"]
        answers.pop("_meta", None)
        end_session(session, status, f"form_refused: {exc.message}"[:64], clock.now())
        session.answers = answers
        _announce(session, text, notify, on_done, case.case_id)
        db.session.commit()
    log.info("session %s project_id=%s session_id=%s", status, project_id, session_id)
    return status


def _announce(session: SurveySession, text: str, notify: bool, on_done, case_id: str | None) -> None:
    """Send the completion text (when ``notify``), tell the webhooks of a completed survey
    (``survey.completed``), and run the caller's ``on_done``."""
    if notify:
        send_to_session(session, text)
    if session.status == "completed":
        capture_events(
            session.project_id,
            EventName.SURVEY_COMPLETED,
            [(session.id, session.phone, session_json(session, case_id))],
        )
    if on_done:
        on_done()
