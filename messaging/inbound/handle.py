"""Handling one stored inbound SMS: opt-out words, an open survey, a keyword, or the default reply.

Rules (in this order; the caller holds the number's lock, see
:mod:`messaging.inbound.per_number`):

1. The number's open survey session is expired first if its time is up. The
   sender's case is looked up (:mod:`messaging.inbound.routing`); the choice and
   why is stored on the inbound row. No case: ``unknown_number`` is logged (the
   message still goes through the steps).
2. Opt-out words (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE,
   OPTOUT; whole message) opt the number out and close its open sessions;
   opt-in words (START, UNSTOP, YES) opt back in; HELP/INFO get the project's
   help text; the shipped French, Swahili, Spanish and Portuguese words
   (``messaging.inbound.command_words``: ARRET, ACHA, BAJA, SAIR, ...) do the same.
   Each gets a confirmation in the word's language, worded as the project wrote it
   in that language if it did (``messaging.projects.texts``; sent with ``bypass_opt_out``),
   and the consent ledger records the word and its language. These win over an
   open session, with two exceptions: YES while the current question of the
   open session accepts "yes" as a valid answer is that answer; and a project
   keyword that is also another language's opt-in or help word stays the
   project's keyword.
3. An open survey session takes the message, unless its first word is a
   project keyword with ``yields_to_session=False``. A session without a case
   takes the sender's case when the number has one.
4. A project keyword (first word, any case) replies with its text and/or
   starts its survey for the sender's case (restricted to the survey's
   ``case_type`` when set), unless the number has opted out. An unknown number
   may run a survey: its answers stay on the session (no case, so no form).
   Several open cases on the number: the survey first asks which one it is
   about (``routing.family_cases``). A keyword with ``notify_owner`` texts the
   case's owner, quoting the message (:mod:`messaging.conversations.owner_alerts`).
   A survey answer its question flags (``flag_if``) opens the message in the
   inbox and texts the owner of the session's case.
5. Anything else is ``unhandled`` (``unknown_number`` from an unknown number):
   it is an open item of the inbox (:mod:`messaging.conversations.inbox`), and
   the project's default reply (if set) is sent, in the case's language when the
   project has worded it in that language (else the default language's).

Every reply sent here (confirmations, keyword replies, the default reply) is an
automatic reply: it goes through :mod:`messaging.inbound.loop_guard`, which
holds it back (a ``failed`` row with ``skip_reason='loop_guard'``) past one per
identical message within 10 minutes or 5 an hour; the opt-out confirmation is
exempt from the hourly cap only.

Handling is idempotent: a message already handled is ``already_handled``. The
outcome, its detail, the case and the routing are recorded in the transaction
that sends the replies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from messaging.conversations.inbox import open_item
from messaging.conversations.owner_alerts import notify_owner
from messaging.extensions import db
from messaging.inbound.command_words import yields_to_project_keyword
from messaging.inbound.keywords import Classification, classify, confirmation_text
from messaging.inbound.loop_guard import send_auto_reply
from messaging.inbound.routing import family_cases, find_case
from messaging.lib import clock
from messaging.lib.redact import mask_phone
from messaging.models import Case, InboundMessage, Keyword, Message, Project, SurveySession
from messaging.projects import texts
from messaging.sms import optouts
from messaging.surveys.answers import parse_answer
from messaging.surveys.replies import handle_reply
from messaging.surveys.settings import project_command_words
from messaging.surveys.starting import cancel_for_opt_out, start_session
from messaging.surveys.state import current_question, open_session
from messaging.surveys.timers import expire_session

log = logging.getLogger(__name__)

COMMANDS = ("opt_out", "opt_in", "help")


@dataclass
class Handling:
    """One inbound message being handled: its rows, its sender, its case and the number's open session."""

    message_id: int
    row: InboundMessage
    message: Message
    project_id: int
    phone: str
    session: SurveySession | None
    case: Case | None
    count: int
    routing: str
    reply_case: int | None

    def done(self, outcome: str, detail: str | None = None, **extra) -> Callable[[], None]:
        """A function that records the outcome on the inbound row (run in the transaction that commits)."""

        def mark():
            row = self.row
            row.handled_at = clock.now()
            row.outcome = outcome
            row.detail = detail
            row.case_count = self.count
            row.routing = self.routing
            self.message.case_id = self.case.id if self.case is not None else None
            for name, value in extra.items():
                setattr(row, name, value)

        return mark


def handle_inbound(message_id: int) -> str:
    """Handle one stored inbound message (current project; hold the number's lock). Idempotent."""
    row = db.session.get(InboundMessage, message_id)
    if row is None or row.handled_at is not None:
        return "already_handled"
    handling = _begin(message_id, row)
    kind: Classification | None = classify(handling.message.body, project_command_words(row.project_id))
    if kind.kind == "opt_in" and kind.word == "YES" and _answers_the_question(handling):
        kind = None  # YES answers the open question (see the module docstring)
    keyword = None
    if kind is not None and kind.kind in COMMANDS:
        # Another language's opt-in or help word may be the project's keyword, which then wins.
        if yields_to_project_keyword(kind.kind, kind.language):
            keyword = _project_keyword(kind.word)
        if keyword is None:
            return _command(handling, kind)
    elif kind is not None and kind.kind == "keyword":
        keyword = _project_keyword(kind.word)
    if handling.session is not None and (keyword is None or keyword.yields_to_session):
        return _to_session(handling)
    if keyword is not None:
        return _keyword(handling, keyword)
    return _default_reply(handling)


def _project_keyword(word: str) -> Keyword | None:
    return db.session.execute(select(Keyword).where(Keyword.keyword == word)).scalar_one_or_none()


def _begin(message_id: int, row: InboundMessage) -> Handling:
    """Expire the number's session if its time is up, look up the case, note the routing."""
    message = db.session.get(Message, message_id)
    project_id, phone, now = message.project_id, message.phone, clock.now()
    session = open_session(phone)
    if session is not None and session.expires_at is not None and session.expires_at <= now:
        expire_session(session)
        session = None
    case, count, routing = find_case(phone)
    row.case_count = count
    row.routing = routing
    if case is not None:
        message.case_id = case.id
    elif count == 0:
        log.info(
            "inbound from unknown number project_id=%s message_id=%s phone=%s",
            project_id,
            message_id,
            mask_phone(phone),
        )
    return Handling(
        message_id=message_id,
        row=row,
        message=message,
        project_id=project_id,
        phone=phone,
        session=session,
        case=case,
        count=count,
        routing=routing,
        reply_case=case.id if case is not None else None,
    )


def _answers_the_question(handling: Handling) -> bool:
    if handling.session is None:
        return False
    question = current_question(handling.session)
    return question is not None and parse_answer(question, handling.message.body).ok


def _command(handling: Handling, command: Classification) -> str:
    """Opt-out, opt-in or help: act, and confirm in the word's language (even to an opted-out number)."""
    project_id, phone = handling.project_id, handling.phone
    kind, language = command.kind, command.language
    project = db.session.get(Project, project_id)
    detail = None
    if kind == "opt_out":
        new = optouts.opt_out(
            project_id,
            phone,
            "keyword",
            word=command.word,
            language=language,
            message_id=handling.message_id,
        )
        closed = cancel_for_opt_out(phone)
        detail = f"opted out ({'new' if new else 'already'}); closed sessions: {closed}"
    elif kind == "opt_in":
        removed = optouts.opt_in(
            project_id,
            phone,
            "keyword",
            word=command.word,
            language=language,
            message_id=handling.message_id,
        )
        detail = "opted in" if removed else "opted in (was not opted out)"
    text = confirmation_text(
        kind,
        project.name,
        project.help_text or "",
        texts.speaker(project_id, language),
        project_command_words(project_id),
    )
    reply = send_auto_reply(
        handling.message,
        text,
        handling.reply_case,
        bypass_opt_out=True,
        exempt_from_hourly_cap=kind == "opt_out",
    )
    if reply.held_back:
        detail = f"{detail or kind}; confirmation held back by the loop guard ({reply.held_back})"
    handling.done(kind, detail)()
    db.session.commit()
    return kind


def _to_session(handling: Handling) -> str:
    """The open survey session takes the message (it commits)."""
    session, case = handling.session, handling.case
    if session.case_pk is None and case is not None and handling.count and not session.candidate_case_ids:
        session.case_pk = case.id
    session_id = session.id

    def flagged(question, _value):
        """A flagged answer: the message opens in the inbox and the session's case's owner is told."""
        open_item(handling.message_id, reason="survey_flag")
        flagged_case = db.session.get(Case, session.case_pk) if session.case_pk else None
        notify_owner(
            handling.project_id, flagged_case, handling.message.body, f"survey answer to {question.id}"
        )

    result = handle_reply(
        session,
        handling.message.body,
        handling.done("survey_answer", None, survey_session_id=session_id),
        on_flagged=flagged,
    )
    db.session.get(InboundMessage, handling.message_id).detail = result
    db.session.commit()
    return "survey_answer"


def _keyword(handling: Handling, keyword: Keyword) -> str:
    """A project keyword: its reply text and/or its survey."""
    detail = []
    started = None
    if keyword.reply_text:
        reply = send_auto_reply(handling.message, keyword.reply_text, handling.reply_case)
        detail.append(
            f"reply held back by the loop guard ({reply.held_back})" if reply.held_back else "replied"
        )
    if keyword.survey_id and keyword.survey is not None:
        started = _start_keyword_survey(handling, keyword, detail)
    if keyword.notify_owner:
        told = notify_owner(
            handling.project_id, handling.case, handling.message.body, f"keyword {keyword.keyword}"
        )
        detail.append(f"owner notified ({told})" if told else "owner not notified: nobody to text")
    handling.done(
        "keyword",
        "; ".join(detail) or None,
        keyword_id=keyword.id,
        survey_session_id=started.id if started else None,
    )()
    db.session.commit()
    return "keyword"


def _start_keyword_survey(handling: Handling, keyword: Keyword, detail: list[str]) -> SurveySession | None:
    survey_case = handling.case
    if keyword.survey.case_type:
        survey_case, _, _ = find_case(handling.phone, keyword.survey.case_type)
    if optouts.is_opted_out(handling.project_id, handling.phone):
        detail.append("survey not started: the number has opted out")
        return None
    candidates = family_cases(handling.phone, keyword.survey.case_type)
    started = start_session(
        handling.project_id,
        keyword.survey_id,
        handling.phone,
        survey_case.id if survey_case is not None else None,
        source="keyword",
        keyword_id=keyword.id,
        candidates=candidates,
    )
    if len(candidates) > 1:
        detail.append(f"asked which of {len(candidates)} cases it is about")
    detail.append(f"started survey {keyword.survey.name}")
    return started


def _default_reply(handling: Handling) -> str:
    """Nothing handled the message: it opens an inbox item, and the default reply (if set) is sent."""
    language = handling.case.language if handling.case is not None else None
    default = texts.default_reply(handling.project_id, language)
    detail = None
    if default:
        reply = send_auto_reply(handling.message, default, handling.reply_case)
        detail = (
            f"default reply held back by the loop guard ({reply.held_back})"
            if reply.held_back
            else "default reply sent"
        )
    outcome = "unhandled" if handling.count else "unknown_number"
    handling.done(outcome, detail)()
    open_item(handling.message_id, reason=outcome)
    db.session.commit()
    return outcome
