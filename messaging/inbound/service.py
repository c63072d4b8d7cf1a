"""Inbound SMS: receive (store once, enqueue), then handle one number's messages in order.

Receiving (``receive_inbound``), called by ``POST /twilio/inbound`` after the
signature check and by the phone simulator (so both take the same path):

- the ``messages`` row (``direction='inbound'``, ``status='received'``,
  ``gateway_sid`` = the MessageSid) and its ``inbound_messages`` row (pending)
  are inserted in one transaction. The unique ``(gateway_sid, project_id)``
  makes a Twilio retry (even a concurrent one) find the first row: it is stored
  once and enqueued once;
- after the commit, the job ``workers.jobs.inbound.handle_number(project_id,
  phone)`` is enqueued. If Redis loses it, the periodic ``sweep_pending``
  enqueues numbers whose messages wait longer than ``INBOUND_SWEEP_AFTER``.

Handling (``handle_number``): one number's messages are handled one at a time,
oldest first (by message id), even with many workers: the job takes the
number's Redis lock (``NumberLock``); a job that finds it taken exits, since
the holder drains every pending message of the number and, after releasing,
looks once more (no lost wakeup). ``handle_inbound(message_id)`` handles one:

1. Contact lookup: cases whose ``phone_number`` is the sender (not deleted).
   Several (a family phone): the case of the open survey session first, then
   open cases before closed, then the most recently active (latest of
   ``modified_on`` and its last message). The choice and why is stored in
   ``inbound_messages.routing`` and shown on the conversation page. No case:
   ``unknown_number`` is logged (the message still goes through the steps).
2. Opt-out words (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE,
   OPTOUT; whole message) opt the number out and close its open sessions;
   opt-in words (START, UNSTOP, YES) opt back in; HELP/INFO get the project's
   help text. Each gets a confirmation (sent with ``bypass_opt_out``). These win
   over an open session, with one exception: YES while the current question
   of the open session accepts "yes" as a valid answer is that answer.
3. An open survey session takes the message, unless its first word is a
   project keyword with ``yields_to_session=False``.
4. A project keyword (first word, any case) replies with its text and/or
   starts its survey for the sender's case (restricted to the survey's
   ``case_type`` when set). An unknown number may run a survey: its answers
   stay on the session (no case, so no form).
5. Anything else is ``unhandled``: it shows in the inbox, and the project's
   default reply (if set) is sent.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, insert, select

from messaging import jobs
from messaging.db.dialect import insert_ignoring_conflicts
from messaging.db.tenancy import project_scope
from messaging.extensions import db
from messaging.inbound.keywords import classify, confirmation_text
from messaging.inbound.locks import NumberLock
from messaging.lib import clock
from messaging.lib.phones import normalize_phone
from messaging.lib.segments import count_segments
from messaging.models import Case, InboundMessage, Keyword, Message, Project, SurveySession
from messaging.sms import service as sms
from messaging.surveys import sessions
from messaging.surveys.answers import parse_answer
from messaging.surveys.definitions import inbound_settings

log = logging.getLogger(__name__)

MESSAGES = Message.__table__
INBOUND = InboundMessage.__table__


# --- receiving ---------------------------------------------------------------------


def normalize_sender(project_id: int, raw: str) -> str:
    raw = (raw or "").strip()
    if sms.E164.match(raw):
        return raw
    country = db.session.execute(select(Project.default_country).where(Project.id == project_id)).scalar()
    return normalize_phone(raw, country) or raw[:20]


def receive_inbound(
    project_id: int, from_number: str, to_number: str, body: str, sid: str
) -> tuple[int, bool]:
    """Store an inbound SMS once per ``sid`` and enqueue its handling. Commits.

    Returns ``(message_id, created)``; ``created`` is False for a retry of a
    MessageSid already stored (nothing is stored or enqueued again).
    """
    phone = normalize_sender(project_id, from_number)
    body = body or ""
    now = clock.now()
    info = count_segments(body)
    # One round trip decides "new or retry": the insert skips a MessageSid that is
    # already stored (even by a concurrent retry), instead of looking it up first.
    # The session's connection, not the ORM execute path: this runs on every webhook
    # request, and plain inserts need none of the ORM's per-statement work.
    connection = db.session.connection()
    message_id = connection.execute(
        insert_ignoring_conflicts(MESSAGES, MESSAGES.c.gateway_sid, MESSAGES.c.project_id).returning(
            MESSAGES.c.id
        ),
        {
            "project_id": project_id,
            "direction": "inbound",
            "phone": phone[:20],
            "from_number": (from_number or "")[:40],
            "to_number": (to_number or "")[:40],
            "body": body,
            "segments": info.segments,
            "encoding": info.encoding,
            "status": "received",
            "gateway_sid": sid,
            "bypass_opt_out": False,
            "attempts": 0,
            "created_at": now,
            "queued_at": None,
            "updated_at": now,
        },
    ).scalar()
    if message_id is None:
        existing = _existing(project_id, sid)
        log.info("inbound retry project_id=%s sid=%s message_id=%s", project_id, sid, existing)
        return existing, False
    connection.execute(
        _INSERT_PENDING,
        {
            "message_id": message_id,
            "project_id": project_id,
            "phone": phone[:20],
            "received_at": now,
            "outcome": "pending",
            "case_count": 0,
        },
    )
    db.session.commit()
    log.info("inbound stored project_id=%s message_id=%s sid=%s phone=%s", project_id, message_id, sid, phone)
    enqueue_number(project_id, phone)
    return message_id, True


_INSERT_PENDING = insert(INBOUND)


def _existing(project_id: int, sid: str) -> int | None:
    return db.session.execute(
        select(MESSAGES.c.id).where(MESSAGES.c.project_id == project_id, MESSAGES.c.gateway_sid == sid)
    ).scalar()


def enqueue_number(project_id: int, phone: str) -> bool:
    """Enqueue the handling job of a number; a Redis error is logged (the sweep catches up)."""
    try:
        # Our own pipeline: the job's hash and its place in the queue go in one round trip.
        with jobs.redis_conn().pipeline() as pipe:
            jobs.enqueue(jobs.HANDLE_NUMBER, project_id, phone, pipeline=pipe)
            pipe.execute()
        return True
    except Exception as exc:  # noqa: BLE001 - the row is safe; the sweep will enqueue it
        log.warning("inbound enqueue failed project_id=%s phone=%s: %s", project_id, phone, exc)
        return False


def sweep_pending(limit: int = 1000) -> int:
    """Enqueue the numbers whose messages wait unhandled for too long (all projects)."""
    after = float(current_app.config.get("INBOUND_SWEEP_AFTER", 30.0))
    cutoff = clock.now() - timedelta(seconds=after)
    rows = db.session.execute(
        select(INBOUND.c.project_id, INBOUND.c.phone)
        .where(INBOUND.c.handled_at.is_(None), INBOUND.c.received_at <= cutoff)
        .group_by(INBOUND.c.project_id, INBOUND.c.phone)
        .limit(limit)
    ).all()
    for row in rows:
        enqueue_number(row.project_id, row.phone)
    if rows:
        log.info("inbound sweep enqueued numbers=%s", len(rows))
    return len(rows)


# --- handling one number, in order ---------------------------------------------------


def _next_pending(phone: str) -> int | None:
    return db.session.execute(
        select(func.min(InboundMessage.message_id)).where(
            InboundMessage.phone == phone, InboundMessage.handled_at.is_(None)
        )
    ).scalar()


def handle_number(project_id: int, phone: str, job_id: str | None = None) -> int:
    """Handle the number's pending messages oldest first while holding its lock; returns how many."""
    handled = 0
    with project_scope(project_id):
        while True:
            lock = NumberLock(project_id, phone)
            if not lock.acquire():
                log.info("inbound number busy job_id=%s project_id=%s phone=%s", job_id, project_id, phone)
                return handled
            try:
                while True:
                    db.session.rollback()  # a fresh snapshot: see rows committed since
                    message_id = _next_pending(phone)
                    if message_id is None:
                        break
                    lock.extend()
                    _handle_safely(message_id, job_id)
                    handled += 1
            finally:
                lock.release()
            db.session.rollback()
            if _next_pending(phone) is None:  # nothing arrived while we released: done
                return handled


def _handle_safely(message_id: int, job_id: str | None) -> None:
    try:
        outcome = handle_inbound(message_id)
        log.info("inbound handled job_id=%s message_id=%s outcome=%s", job_id, message_id, outcome)
    except Exception:
        db.session.rollback()
        log.exception("inbound handling failed job_id=%s message_id=%s", job_id, message_id)
        row = db.session.get(InboundMessage, message_id)
        if row is not None and row.handled_at is None:
            row.handled_at = clock.now()
            row.outcome = "unhandled"
            row.detail = "error while handling; see the logs"
            db.session.commit()


# --- contact lookup --------------------------------------------------------------------


def find_case(phone: str, case_type: str | None = None):
    """``(case or None, number of cases with this phone, routing note)`` for a sender."""
    cases = list(
        db.session.execute(select(Case).where(Case.phone_number == phone, Case.deleted.is_(False))).scalars()
    )
    if case_type:
        typed = [c for c in cases if c.case_type == case_type]
        cases = typed or cases
    if not cases:
        return None, 0, "Unknown number: no case has this phone number."
    if len(cases) == 1:
        return cases[0], 1, f"Routed to {_label(cases[0])}, the only case with this number."
    ids = [c.id for c in cases]
    session_case = db.session.execute(
        select(SurveySession.case_pk).where(
            SurveySession.phone == phone, SurveySession.status == "open", SurveySession.case_pk.in_(ids)
        )
    ).scalar()
    if session_case is not None:
        chosen = next(c for c in cases if c.id == session_case)
        why = "it has an open survey session"
    else:
        last_message = dict(
            db.session.execute(
                select(Message.case_id, func.max(Message.created_at))
                .where(Message.case_id.in_(ids))
                .group_by(Message.case_id)
            ).all()
        )

        def activity(c):
            latest = max(x for x in (c.modified_on, last_message.get(c.id)) if x is not None)
            return (not c.closed, latest, c.id)

        chosen = max(cases, key=activity)
        why = "it is the most recently active" + (" open case" if not chosen.closed else " case")
    return (
        chosen,
        len(cases),
        f"This number belongs to {len(cases)} cases; routed to {_label(chosen)} because {why}.",
    )


def _label(case: Case) -> str:
    return f"{case.name or 'case'} ({case.case_id})"


# --- handling one message ------------------------------------------------------------


def handle_inbound(message_id: int) -> str:
    """Handle one stored inbound message (current project; hold the number's lock). Idempotent."""
    row = db.session.get(InboundMessage, message_id)
    if row is None or row.handled_at is not None:
        return "already_handled"
    message = db.session.get(Message, message_id)
    project_id, phone, now = message.project_id, message.phone, clock.now()
    session = sessions.open_session(phone)
    if session is not None and session.expires_at is not None and session.expires_at <= now:
        sessions.expire_session(session)
        session = None
    case, count, routing = find_case(phone)
    row.case_count = count
    row.routing = routing
    if case is not None:
        message.case_id = case.id
    elif count == 0:
        log.info(
            "inbound from unknown number project_id=%s message_id=%s phone=%s", project_id, message_id, phone
        )

    def done(outcome: str, detail: str | None = None, **extra):
        def mark():
            row.handled_at = clock.now()
            row.outcome = outcome
            row.detail = detail
            row.case_count = count
            row.routing = routing
            message.case_id = case.id if case is not None else None
            for name, value in extra.items():
                setattr(row, name, value)

        return mark

    kind = classify(message.body)
    reply_case = case.id if case is not None else None

    if kind.kind == "opt_in" and kind.word == "YES" and session is not None:
        question = sessions.current_question(session)
        if question is not None and parse_answer(question, message.body).ok:
            kind = None  # YES answers the open question (see the module docstring)
    if kind is not None and kind.kind in ("opt_out", "opt_in", "help"):
        project = db.session.get(Project, project_id)
        detail = None
        if kind.kind == "opt_out":
            new = sms.opt_out(project_id, phone, "keyword")
            closed = sessions.cancel_for_opt_out(phone)
            detail = f"opted out ({'new' if new else 'already'}); closed sessions: {closed}"
        elif kind.kind == "opt_in":
            removed = sms.opt_in(project_id, phone)
            detail = "opted in" if removed else "opted in (was not opted out)"
        text = confirmation_text(kind.kind, project.name, project.help_text or "")
        sms.send_sms(project_id, phone, text, reply_case, bypass_opt_out=True)
        done(kind.kind, detail)()
        db.session.commit()
        return kind.kind

    keyword = None
    if kind is not None and kind.kind == "keyword":
        keyword = db.session.execute(select(Keyword).where(Keyword.keyword == kind.word)).scalar_one_or_none()

    if session is not None and (keyword is None or keyword.yields_to_session):
        if session.case_pk is None and case is not None and count:
            session.case_pk = case.id
        session_id = session.id
        result = sessions.handle_reply(
            session, message.body, done("survey_answer", None, survey_session_id=session_id)
        )
        db.session.get(InboundMessage, message_id).detail = result
        db.session.commit()
        return "survey_answer"

    if keyword is not None:
        detail = []
        started = None
        if keyword.reply_text:
            sms.send_sms(project_id, phone, keyword.reply_text, reply_case)
            detail.append("replied")
        if keyword.survey_id and keyword.survey is not None:
            survey_case = case
            if keyword.survey.case_type:
                survey_case, _, _ = find_case(phone, keyword.survey.case_type)
            if sms.is_opted_out(project_id, phone):
                detail.append("survey not started: the number has opted out")
            else:
                started = sessions.start_session(
                    project_id,
                    keyword.survey_id,
                    phone,
                    survey_case.id if survey_case is not None else None,
                    source="keyword",
                    keyword_id=keyword.id,
                )
                detail.append(f"started survey {keyword.survey.name}")
        done(
            "keyword",
            "; ".join(detail) or None,
            keyword_id=keyword.id,
            survey_session_id=started.id if started else None,
        )()
        db.session.commit()
        return "keyword"

    settings = inbound_settings(project_id)
    default = settings.default_reply if settings else None
    if default:
        sms.send_sms(project_id, phone, default, reply_case)
    outcome = "unhandled" if count else "unknown_number"
    done(outcome, "default reply sent" if default else None)()
    db.session.commit()
    return outcome


def conversation(phone: str | None = None, case_pk: int | None = None, limit: int = 500, after_id: int = 0):
    """Messages of a phone or a case, both directions, oldest first."""
    stmt = select(Message).where(Message.id > after_id)
    if case_pk is not None and phone:
        stmt = stmt.where((Message.case_id == case_pk) | (Message.phone == phone))
    elif case_pk is not None:
        stmt = stmt.where(Message.case_id == case_pk)
    else:
        stmt = stmt.where(Message.phone == phone)
    return list(db.session.execute(stmt.order_by(Message.id).limit(limit)).scalars())
