"""Starting survey sessions: one number (a keyword, the API) or many (a broadcast, the API).

Rules:

- One open session per (project, phone): starting a new one closes the old one
  (``cancelled``, ``end_reason='replaced'``) in the same transaction, and the
  partial unique index ``uq_survey_sessions_open_phone`` makes a race lose with
  an IntegrityError (retried; after 3 tries ``Conflict``).
- The first question goes out with ``send_sms(..., survey_session_id=...)``; its
  send job is enqueued when the caller commits. A survey that does not exist in
  the project is ``NotFound``.
- Several open cases on one number and nothing telling which is meant: given
  ``candidates``, the session has no case yet and its first SMS asks which one
  (:mod:`messaging.surveys.case_choice`); the first question follows the answer.
- For many recipients: one session per phone (a phone listed twice starts once:
  the first listing wins); invalid and opted-out numbers are skipped and
  counted by reason. Sessions are written set-based, ``BULK_CHUNK`` at a time,
  each chunk committed with its first questions queued; the source is
  ``broadcast`` with a broadcast, else ``api``.
- An opt-out closes the number's open sessions (``cancelled``,
  ``end_reason='opted_out'``).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from messaging.db import dialect
from messaging.errors import Conflict
from messaging.extensions import db
from messaging.lib import clock
from messaging.lib.redact import mask_phone
from messaging.models import Case, Survey, SurveySession
from messaging.models.base import new_id
from messaging.projects import texts
from messaging.sms import e164, optouts, outbox
from messaging.surveys.answers import question_prompt
from messaging.surveys.case_choice import MAX_CANDIDATES, choice_prompt
from messaging.surveys.definitions import get_survey, survey_questions
from messaging.surveys.state import cases_speaker, session_language, survey_timings

log = logging.getLogger(__name__)

SESSIONS = SurveySession.__table__
BULK_CHUNK = 500


def close_open_sessions(phones: list[str], reason: str, status: str = "cancelled") -> int:
    """End the open sessions of these numbers (current project). No commit."""
    if not phones:
        return 0
    now = clock.now()
    result = db.session.execute(
        update(SurveySession)
        .where(dialect.in_values(SurveySession.phone, phones), SurveySession.status == "open")
        .values(status=status, end_reason=reason, ended_at=now, reminder_due_at=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def cancel_for_opt_out(phone: str) -> int:
    """Close the number's open sessions because it opted out. No commit."""
    return close_open_sessions([phone], "opted_out")


def start_session(
    project_id: int,
    survey_id: str,
    phone: str,
    case_pk: int | None = None,
    source: str = "keyword",
    broadcast_id: str | None = None,
    keyword_id: str | None = None,
    candidates: list[Case] | None = None,
) -> SurveySession:
    """Open a session for ``phone`` (closing its open one) and send the first question, or,
    with two or more ``candidates`` (cases sharing the number), ask which one it is about.

    Call in the project's scope; joins the caller's transaction (no commit); the
    question's send job is enqueued when the caller commits.
    """
    survey = get_survey(survey_id)
    questions = survey_questions(survey)
    now = clock.now()
    candidates = (candidates or [])[:MAX_CANDIDATES] if candidates and len(candidates) > 1 else None
    if candidates:
        case_pk = None
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
                    candidate_case_ids=[c.id for c in candidates] if candidates else None,
                    started_at=now,
                    last_activity_at=now,
                    **survey_timings(survey, now),
                )
                db.session.add(session)
                db.session.flush()
            break
        except IntegrityError:
            log.info(
                "session start raced project_id=%s phone=%s attempt=%s",
                project_id,
                mask_phone(phone),
                attempt,
            )
    else:
        raise Conflict("conflict", "Another survey was starting for this number; try again.")
    if candidates:
        first = choice_prompt([c.name for c in candidates], cases_speaker(project_id, candidates))
    else:
        first = question_prompt(questions[0], session_language(session))
    outbox.send_sms(
        project_id,
        phone,
        first,
        case_pk,
        survey_session_id=session.id,
        broadcast_id=broadcast_id,
    )
    log.info(
        "session started project_id=%s session_id=%s survey_id=%s phone=%s case_pk=%s source=%s replaced=%s",
        project_id,
        session.id,
        survey.id,
        mask_phone(phone),
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
    survey = get_survey(survey_id)
    first_question = survey_questions(survey)[0]
    counts = {"started": 0, "replaced": 0, "skipped": Counter(), "message_ids": []}
    clean = _distinct_valid(recipients, counts["skipped"])
    prompts: dict[str | None, str] = {}  # the first question per case language, written once each

    def prompt_in(language: str | None) -> str:
        if language not in prompts:
            prompts[language] = question_prompt(first_question, texts.speaker(project_id, language))
        return prompts[language]

    for start in range(0, len(clean), BULK_CHUNK):
        chunk = clean[start : start + BULK_CHUNK]
        opted = optouts.opted_out_among(project_id, [r["phone"] for r in chunk])
        counts["skipped"]["opted_out"] += sum(1 for r in chunk if r["phone"] in opted)
        chunk = [r for r in chunk if r["phone"] not in opted]
        if not chunk:
            continue
        rows = _session_rows(project_id, survey, chunk, broadcast_id)
        pks = [r["case_pk"] for r in rows if r["case_pk"] is not None]
        languages = dict(db.session.execute(select(Case.id, Case.language).where(Case.id.in_(pks))).all())
        counts["replaced"] += _insert_replacing(rows)
        counts["started"] += len(rows)
        result = outbox.queue_messages(
            project_id,
            [
                {
                    "case_id": r["case_pk"],
                    "phone": r["phone"],
                    "body": prompt_in(languages.get(r["case_pk"])),
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


def _distinct_valid(recipients: list[dict], skipped: Counter) -> list[dict]:
    """The recipients with a valid number, each number once (the first listing wins)."""
    seen: set[str] = set()
    clean: list[dict] = []
    for r in recipients:
        phone = (r.get("phone") or "").strip()
        if not e164.E164.match(phone):
            skipped["invalid_number"] += 1
        elif phone in seen:
            skipped["duplicate_phone"] += 1
        else:
            seen.add(phone)
            clean.append({"phone": phone, "case_pk": r.get("case_pk")})
    return clean


def _session_rows(project_id: int, survey: Survey, chunk: list[dict], broadcast_id: str | None) -> list[dict]:
    now = clock.now()
    timings = survey_timings(survey, now)
    source = "broadcast" if broadcast_id else "api"
    return [
        new_session_row(
            project_id,
            survey.id,
            r["case_pk"],
            r["phone"],
            source=source,
            broadcast_id=broadcast_id,
            now=now,
            timings=timings,
        )
        for r in chunk
    ]


def new_session_row(
    project_id: int,
    survey_id: str,
    case_pk: int | None,
    phone: str,
    *,
    source: str,
    broadcast_id: str | None,
    now: datetime,
    timings: dict,
) -> dict:
    """The row of a new open session for a set-based insert (a new ``id``): started ``now``,
    with ``timings`` from :func:`~messaging.surveys.state.survey_timings`."""
    return {
        "id": new_id(),
        "project_id": project_id,
        "survey_id": survey_id,
        "case_pk": case_pk,
        "phone": phone,
        "status": "open",
        "current_index": 0,
        "answers": {},
        "invalid_attempts": 0,
        "reminders_sent": 0,
        "source": source,
        "broadcast_id": broadcast_id,
        "started_at": now,
        "last_activity_at": now,
        **timings,
    }


def _insert_replacing(rows: list[dict]) -> int:
    """Close the open sessions of the rows' numbers and insert the rows; commits. Returns how
    many were replaced."""
    for attempt in range(3):
        try:
            replaced = close_open_sessions([r["phone"] for r in rows], "replaced")
            db.session.execute(insert(SESSIONS), rows)
            db.session.commit()
            break
        except IntegrityError:  # a keyword opened a session for one of them meanwhile
            db.session.rollback()
            if attempt == 2:
                raise
    return replaced
