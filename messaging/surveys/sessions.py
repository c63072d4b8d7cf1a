"""SMS survey sessions: start, answer, remind, expire, complete.

One open session per (project, phone): starting a new one closes the old one
(``cancelled``, ``end_reason='replaced'``) in the same transaction, and the
partial unique index ``uq_survey_sessions_open_phone`` makes a race lose with
an IntegrityError (retried). Questions go out with ``send_sms(...,
survey_session_id=...)``; their send jobs are enqueued when the caller commits.

Answers: a valid reply is saved under the question id and the next question is
sent; an invalid one gets the reason and the question again, at most
``max_invalid_attempts`` times (the next invalid reply ends the session as
``failed``). After the last question the session is ``completed`` and, when it
has a case, becomes a form through ``messaging.cases.forms.apply_form`` (source
``sms_survey``, ``form_id`` = the session id, so it is applied once), submitted
by the project's system application "SMS surveys" and mobile worker
``sms-surveys`` (created on first use; the worker has no password and cannot
log in). Answers with a ``case_property`` update that property (multiple choice
saved as the space-separated choices; skipped answers change nothing). A
session without a case (unknown number) keeps its answers on the session only.

Reminders resend the current question every ``reminder_minutes`` after the last
activity; the session expires ``expire_after_minutes`` after it started
(``expired``), and with ``save_partial_on_expiry`` what was answered becomes a
form. :func:`tick` does both (the periodic job), holding the number's lock so it
never races with the handling of a reply from the same number.

Entry points for other areas (the broadcasts engineer):
``start_survey_for_recipients(project_id, survey_id, recipients, broadcast_id=None) -> dict``
``start_session(project_id, survey_id, phone, case_pk=None, source="keyword",
broadcast_id=None) -> SurveySession``
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from messaging.cases import forms as case_rules
from messaging.db.tenancy import project_scope
from messaging.errors import Conflict, DomainError, NotFound
from messaging.extensions import db
from messaging.inbound.locks import NumberLock
from messaging.lib import clock
from messaging.models import (
    Application,
    Case,
    MobileWorker,
    Survey,
    SurveySession,
)
from messaging.models.base import new_id
from messaging.sms import service as sms
from messaging.surveys.answers import Question, parse_answer, question_prompt
from messaging.surveys.definitions import inbound_settings, survey_questions

log = logging.getLogger(__name__)

SESSIONS = SurveySession.__table__
SYSTEM_APP_NAME = "SMS surveys"
SYSTEM_USERNAME = "sms-surveys"
DEFAULT_COMPLETION = "Thank you, your answers have been received."
TOO_MANY_INVALID = "Sorry, that was not a valid answer too many times. The survey has ended."
BULK_CHUNK = 500


# --- reading ----------------------------------------------------------------------


def open_session(phone: str) -> SurveySession | None:
    """The open session of ``phone`` in the current project (expired ones are not returned)."""
    return db.session.execute(
        select(SurveySession).where(SurveySession.phone == phone, SurveySession.status == "open")
    ).scalar_one_or_none()


def current_question(session: SurveySession) -> Question | None:
    questions = survey_questions(session.survey)
    return questions[session.current_index] if session.current_index < len(questions) else None


def session_json(session: SurveySession, case_id: str | None = None) -> dict:
    return {
        "id": session.id,
        "survey_id": session.survey_id,
        "case_id": case_id,
        "phone": session.phone,
        "status": session.status,
        "answers": dict(session.answers or {}),
        "current_question": session.current_index,
        "invalid_attempts": session.invalid_attempts,
        "reminders_sent": session.reminders_sent,
        "source": session.source,
        "broadcast_id": session.broadcast_id,
        "form_id": session.form_id,
        "end_reason": session.end_reason,
        "started_at": clock.isoformat(session.started_at),
        "last_activity_at": clock.isoformat(session.last_activity_at),
        "ended_at": clock.isoformat(session.ended_at),
        "expires_at": clock.isoformat(session.expires_at),
    }


# --- starting ---------------------------------------------------------------------


def _timings(survey: Survey, now: datetime) -> dict:
    expires = now + timedelta(minutes=survey.expire_after_minutes)
    reminder = None
    if survey.reminder_minutes:
        reminder = now + timedelta(minutes=survey.reminder_minutes)
        if reminder >= expires:
            reminder = None
    return {"expires_at": expires, "reminder_due_at": reminder}


survey_timings = _timings


def close_open_sessions(phones: list[str], reason: str, status: str = "cancelled") -> int:
    """End the open sessions of these numbers (current project). No commit."""
    if not phones:
        return 0
    now = clock.now()
    result = db.session.execute(
        update(SurveySession)
        .where(SurveySession.phone.in_(phones), SurveySession.status == "open")
        .values(status=status, end_reason=reason, ended_at=now, reminder_due_at=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _survey(survey_id: str) -> Survey:
    survey = db.session.execute(select(Survey).where(Survey.id == survey_id)).scalar_one_or_none()
    if survey is None:
        raise NotFound("not_found", f"There is no survey '{survey_id}' in this project.")
    return survey


def start_session(
    project_id: int,
    survey_id: str,
    phone: str,
    case_pk: int | None = None,
    source: str = "keyword",
    broadcast_id: str | None = None,
    keyword_id: str | None = None,
) -> SurveySession:
    """Open a session for ``phone`` (closing its open one) and send the first question.

    Call in the project's scope; joins the caller's transaction (no commit); the
    question's send job is enqueued when the caller commits.
    """
    survey = _survey(survey_id)
    questions = survey_questions(survey)
    now = clock.now()
    for attempt in range(3):
        try:
            with db.session.begin_nested():
                replaced = close_open_sessions([phone], "replaced")
                session = SurveySession(
                    project_id=project_id,
                    survey_id=survey.id,
                    case_pk=case_pk,
                    phone=phone,
                    status="open",
                    current_index=0,
                    answers={},
                    source=source,
                    keyword_id=keyword_id,
                    broadcast_id=broadcast_id,
                    started_at=now,
                    last_activity_at=now,
                    **_timings(survey, now),
                )
                db.session.add(session)
                db.session.flush()
            break
        except IntegrityError:
            log.info("session start raced project_id=%s phone=%s attempt=%s", project_id, phone, attempt)
    else:
        raise Conflict("conflict", "Another survey was starting for this number; try again.")
    sms.send_sms(
        project_id,
        phone,
        question_prompt(questions[0]),
        case_pk,
        survey_session_id=session.id,
        broadcast_id=broadcast_id,
    )
    log.info(
        "session started project_id=%s session_id=%s survey_id=%s phone=%s case_pk=%s source=%s replaced=%s",
        project_id,
        session.id,
        survey.id,
        phone,
        case_pk,
        source,
        replaced,
    )
    return session


def start_survey_for_recipients(
    project_id: int, survey_id: str, recipients: list[dict], broadcast_id: str | None = None
) -> dict:
    """Open sessions for many recipients and queue their first questions. Commits as it goes.

    ``recipients``: ``[{"case_pk": int | None, "phone": "+E164"}, ...]``. One
    session per phone (a phone listed twice starts once: the first listing
    wins). Opted-out and invalid numbers are skipped. Returns
    ``{"started", "replaced", "skipped": {reason: n}, "message_ids": [...]}``.
    Call in the project's scope.
    """
    survey = _survey(survey_id)
    first = question_prompt(survey_questions(survey)[0])
    counts = {"started": 0, "replaced": 0, "skipped": Counter(), "message_ids": []}
    seen: set[str] = set()
    clean: list[dict] = []
    for r in recipients:
        phone = (r.get("phone") or "").strip()
        if not sms.E164.match(phone):
            counts["skipped"]["invalid_number"] += 1
        elif phone in seen:
            counts["skipped"]["duplicate_phone"] += 1
        else:
            seen.add(phone)
            clean.append({"phone": phone, "case_pk": r.get("case_pk")})
    for start in range(0, len(clean), BULK_CHUNK):
        chunk = clean[start : start + BULK_CHUNK]
        opted = sms.opted_out_among(project_id, [r["phone"] for r in chunk])
        counts["skipped"]["opted_out"] += sum(1 for r in chunk if r["phone"] in opted)
        chunk = [r for r in chunk if r["phone"] not in opted]
        if not chunk:
            continue
        now = clock.now()
        timings = _timings(survey, now)
        rows = [
            {
                "id": new_id(),
                "project_id": project_id,
                "survey_id": survey.id,
                "case_pk": r["case_pk"],
                "phone": r["phone"],
                "status": "open",
                "current_index": 0,
                "answers": {},
                "invalid_attempts": 0,
                "reminders_sent": 0,
                "source": "broadcast" if broadcast_id else "api",
                "broadcast_id": broadcast_id,
                "started_at": now,
                "last_activity_at": now,
                **timings,
            }
            for r in chunk
        ]
        for attempt in range(3):
            try:
                replaced = close_open_sessions([r["phone"] for r in chunk], "replaced")
                db.session.execute(insert(SESSIONS), rows)
                db.session.commit()
                break
            except IntegrityError:  # a keyword opened a session for one of them meanwhile
                db.session.rollback()
                if attempt == 2:
                    raise
        counts["replaced"] += replaced
        counts["started"] += len(rows)
        result = sms.queue_messages(
            project_id,
            [
                {
                    "case_id": r["case_pk"],
                    "phone": r["phone"],
                    "body": first,
                    "broadcast_id": broadcast_id,
                    "survey_session_id": r["id"],
                }
                for r in rows
            ],
            keep_ids=True,
        )
        counts["message_ids"].extend(result.ids)
    counts["skipped"] = dict(counts["skipped"])
    log.info(
        "survey started for recipients project_id=%s survey_id=%s broadcast_id=%s "
        "started=%s replaced=%s skipped=%s",
        project_id,
        survey.id,
        broadcast_id,
        counts["started"],
        counts["replaced"],
        counts["skipped"],
    )
    return counts


# --- answering --------------------------------------------------------------------


def _send(session: SurveySession, body: str, **kw) -> int:
    return sms.send_sms(
        session.project_id, session.phone, body, session.case_pk, survey_session_id=session.id, **kw
    )


def _touch(session: SurveySession, now: datetime) -> None:
    session.last_activity_at = now
    minutes = session.survey.reminder_minutes
    due = now + timedelta(minutes=minutes) if minutes else None
    session.reminder_due_at = due if due and session.expires_at and due < session.expires_at else None


def handle_reply(session: SurveySession, text: str, on_done=None) -> str:
    """Apply one reply to an open session; returns what happened.

    ``on_done()`` runs inside the transaction that records the outcome (the
    caller marks its inbound row handled there). This function commits (a
    completed session commits through ``apply_form``).
    """
    now = clock.now()
    questions = survey_questions(session.survey)
    question = questions[session.current_index] if session.current_index < len(questions) else None
    if question is None:  # the survey was shortened while the session was open
        return _complete(session, questions, "completed", on_done)
    answer = parse_answer(question, text)
    if not answer.ok:
        session.invalid_attempts += 1
        if session.invalid_attempts > session.survey.max_invalid_attempts:
            _end(session, "failed", "too_many_invalid_answers", now)
            _send(session, TOO_MANY_INVALID)
            outcome = "invalid_ended"
        else:
            _touch(session, now)
            _send(session, f"{answer.error}\n{question_prompt(question)}")
            outcome = "invalid"
        if on_done:
            on_done()
        db.session.commit()
        return outcome
    answers = dict(session.answers or {})
    answers[question.id] = answer.value
    session.answers = answers
    session.invalid_attempts = 0
    session.current_index += 1
    if session.current_index >= len(questions):
        return _complete(session, questions, "completed", on_done)
    _touch(session, now)
    _send(session, question_prompt(questions[session.current_index]))
    if on_done:
        on_done()
    db.session.commit()
    return "answered"


def _end(session: SurveySession, status: str, reason: str | None, now: datetime) -> None:
    session.status = status
    session.end_reason = reason
    session.ended_at = now
    session.reminder_due_at = None
    session.last_activity_at = now


def _property_value(value):
    if isinstance(value, list):
        return " ".join(value)
    return value


def ensure_system_actor(project_id: int) -> tuple[str, str]:
    """The (app_id, user_id) that submit SMS survey forms for this project; created once."""
    settings = inbound_settings(project_id, create=True)
    if settings.sms_app_id and settings.sms_user_id:
        return settings.sms_app_id, settings.sms_user_id
    user = db.session.execute(
        select(MobileWorker).where(MobileWorker.username == SYSTEM_USERNAME)
    ).scalar_one_or_none()
    if user is None:
        try:
            with db.session.begin_nested():
                user = MobileWorker(project_id=project_id, username=SYSTEM_USERNAME, password_hash=None)
                db.session.add(user)
        except IntegrityError:
            user = db.session.execute(
                select(MobileWorker).where(MobileWorker.username == SYSTEM_USERNAME)
            ).scalar_one()
    app = Application(project_id=project_id, name=SYSTEM_APP_NAME, case_sharing=False)
    db.session.add(app)
    db.session.flush()
    won = db.session.execute(
        update(type(settings))
        .where(type(settings).id == settings.id, type(settings).sms_app_id.is_(None))
        .values(sms_app_id=app.id, sms_user_id=user.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(settings)
    if not won:
        db.session.delete(app)
        db.session.flush()
    log.info("sms survey actor project_id=%s app_id=%s user_id=%s", project_id, settings.sms_app_id, user.id)
    return settings.sms_app_id, settings.sms_user_id


def form_payload(session: SurveySession, questions: list[Question], app_id: str, user_id: str, case_id: str):
    update_block = {}
    for q in questions:
        if q.case_property and q.id in (session.answers or {}) and session.answers[q.id] is not None:
            update_block[q.case_property] = _property_value(session.answers[q.id])
    return {
        "form_id": session.id,
        "app_id": app_id,
        "user_id": user_id,
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


def _complete(session: SurveySession, questions, status: str, on_done=None, notify: bool = True) -> str:
    """End the session (``completed``, or ``expired`` with partial answers) and apply its form."""
    now = clock.now()
    reason = None if status == "completed" else "expired"
    _end(session, status, reason, now)
    text = session.survey.completion_text or DEFAULT_COMPLETION
    case = db.session.get(Case, session.case_pk) if session.case_pk else None
    if case is None or case.deleted:
        if notify:
            _send(session, text)
        if on_done:
            on_done()
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
        if notify:
            _send(session, text)
        if on_done:
            on_done()

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
        _end(session, status, f"form_refused: {exc.message}"[:64], clock.now())
        session.answers = answers
        if notify:
            _send(session, text)
        if on_done:
            on_done()
        db.session.commit()
    log.info("session %s project_id=%s session_id=%s", status, project_id, session_id)
    return status


# --- reminders and expiry ---------------------------------------------------------


def _due(column, now: datetime, limit: int):
    return db.session.execute(
        select(SESSIONS.c.id, SESSIONS.c.project_id, SESSIONS.c.phone)
        .where(SESSIONS.c.status == "open", column.is_not(None), column <= now)
        .order_by(column)
        .limit(limit)
    ).all()


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


def expire_session(session: SurveySession) -> str:
    """Expire an open session now (partial answers saved when the survey says so). Commits."""
    questions = survey_questions(session.survey)
    if session.survey.save_partial_on_expiry and session.answers:
        _complete(session, questions, "expired", notify=False)
    else:
        _end(session, "expired", "expired", clock.now())
        db.session.commit()
    log.info("session expired project_id=%s session_id=%s", session.project_id, session.id)
    return "expired"


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
    minutes = session.survey.reminder_minutes
    due = now + timedelta(minutes=minutes) if minutes else None
    session.reminder_due_at = due if due and session.expires_at and due < session.expires_at else None
    _send(session, "Reminder: " + question_prompt(question))
    db.session.commit()
    log.info(
        "reminder sent project_id=%s session_id=%s n=%s",
        session.project_id,
        session.id,
        session.reminders_sent,
    )
    return "reminded"


def cancel_for_opt_out(phone: str) -> int:
    """Close the number's open sessions because it opted out. No commit."""
    return close_open_sessions([phone], "opted_out")


__all__ = [
    "start_session",
    "start_survey_for_recipients",
    "handle_reply",
    "open_session",
    "current_question",
    "tick",
    "expire_session",
    "ensure_system_actor",
    "session_json",
    "close_open_sessions",
    "cancel_for_opt_out",
]
