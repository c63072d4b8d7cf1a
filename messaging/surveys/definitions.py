"""Survey and keyword definitions: validation, create/update, JSON.

Questions are validated with :class:`messaging.surveys.answers.Question`;
bad input raises ``Invalid("validation_error")`` naming the field, and
nothing is written. Services flush, never commit.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from messaging.errors import Conflict, Invalid
from messaging.extensions import db
from messaging.inbound.keywords import HELP_WORDS, OPT_IN_WORDS, OPT_OUT_WORDS
from messaging.lib import clock
from messaging.models import InboundSettings, Keyword, Survey
from messaging.surveys.answers import Question

log = logging.getLogger(__name__)

MAX_EXPIRE_MINUTES = 168 * 60  # CommCare: 1 to 168 hours
DEFAULT_EXPIRE_MINUTES = 24 * 60
MAX_QUESTIONS = 100
RESERVED_WORDS = OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS
_KEYWORD = re.compile(r"^[A-Z0-9][A-Z0-9_\-]{0,39}$")
_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,99}$")
_RESERVED_PROPERTIES = {"case_name", "case_type", "owner_id", "external_id", "phone_number", "language"}


def _bad(field: str, message: str) -> Invalid:
    return Invalid("validation_error", f"{field}: {message}", field=field)


def parse_questions(raw) -> list[Question]:
    if not isinstance(raw, list) or not raw:
        raise _bad("questions", "give at least one question.")
    if len(raw) > MAX_QUESTIONS:
        raise _bad("questions", f"at most {MAX_QUESTIONS} questions.")
    questions: list[Question] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        try:
            question = Question.from_dict(item)
        except (ValueError, TypeError) as exc:
            raise _bad(f"questions[{index}]", str(exc)) from None
        if question.id in seen:
            raise _bad(f"questions[{index}]", f"id: {question.id!r} is used twice.")
        seen.add(question.id)
        prop = question.case_property
        if prop is not None and (not _PROPERTY.match(prop) or prop in _RESERVED_PROPERTIES):
            raise _bad(
                f"questions[{index}]",
                f"case_property: {prop!r} must be a property name (letters, digits, _ or -), "
                "not one of case_name, case_type, owner_id, external_id, phone_number, language.",
            )
        questions.append(question)
    return questions


def _int_field(body: dict, name: str, default, low: int, high: int, nullable: bool = False):
    value = body.get(name, default)
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(name, f"must be a whole number from {low} to {high}{' or null' if nullable else ''}.")
    return value


def _clean(body: dict, current: Survey | None = None) -> dict:
    if not isinstance(body, dict):
        raise Invalid("invalid_json", "The survey must be a JSON object.")
    known = {
        "name",
        "questions",
        "expire_after_minutes",
        "reminder_minutes",
        "max_invalid_attempts",
        "save_partial_on_expiry",
        "case_type",
        "completion_text",
    }
    unknown = sorted(set(body) - known)
    if unknown:
        raise _bad(unknown[0], "unknown field.")
    get = (lambda n, d: body.get(n, getattr(current, n))) if current else (lambda n, d: body.get(n, d))
    name = get("name", None)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise _bad("name", "is required (at most 200 characters).")
    questions = parse_questions(get("questions", None))
    values = {"name": name.strip(), "questions": [q.to_dict() for q in questions]}
    merged = {
        n: get(n, d)
        for n, d in (
            ("expire_after_minutes", DEFAULT_EXPIRE_MINUTES),
            ("reminder_minutes", None),
            ("max_invalid_attempts", 3),
            ("save_partial_on_expiry", False),
            ("case_type", None),
            ("completion_text", None),
        )
    }
    values["expire_after_minutes"] = _int_field(merged, "expire_after_minutes", None, 1, MAX_EXPIRE_MINUTES)
    values["reminder_minutes"] = _int_field(merged, "reminder_minutes", None, 1, MAX_EXPIRE_MINUTES, True)
    values["max_invalid_attempts"] = _int_field(merged, "max_invalid_attempts", None, 0, 20)
    if not isinstance(merged["save_partial_on_expiry"], bool):
        raise _bad("save_partial_on_expiry", "must be true or false.")
    values["save_partial_on_expiry"] = merged["save_partial_on_expiry"]
    case_type = merged["case_type"]
    if case_type is not None and (
        not isinstance(case_type, str) or not case_type.strip() or len(case_type) > 100
    ):
        raise _bad("case_type", "must be a case type (at most 100 characters) or null.")
    values["case_type"] = case_type.strip() if case_type else None
    completion = merged["completion_text"]
    if completion is not None and (not isinstance(completion, str) or len(completion) > 1000):
        raise _bad("completion_text", "must be a text of at most 1000 characters or null.")
    values["completion_text"] = completion.strip() if completion and completion.strip() else None
    return values


def create_survey(body: dict) -> Survey:
    survey = Survey(**_clean(body), created_at=clock.now(), updated_at=clock.now())
    db.session.add(survey)
    db.session.flush()
    log.info("survey created survey_id=%s questions=%s", survey.id, len(survey.questions))
    return survey


def update_survey(survey: Survey, body: dict) -> Survey:
    """Change a survey; open sessions keep their answers by question id and continue with the new list."""
    for name, value in _clean(body, survey).items():
        setattr(survey, name, value)
    survey.updated_at = clock.now()
    db.session.flush()
    log.info("survey updated survey_id=%s", survey.id)
    return survey


def survey_questions(survey: Survey) -> list[Question]:
    return [Question.from_dict(q) for q in survey.questions or []]


def survey_json(survey: Survey) -> dict:
    return {
        "id": survey.id,
        "name": survey.name,
        "questions": list(survey.questions or []),
        "expire_after_minutes": survey.expire_after_minutes,
        "reminder_minutes": survey.reminder_minutes,
        "max_invalid_attempts": survey.max_invalid_attempts,
        "save_partial_on_expiry": survey.save_partial_on_expiry,
        "case_type": survey.case_type,
        "completion_text": survey.completion_text,
        "created_at": clock.isoformat(survey.created_at),
        "updated_at": clock.isoformat(survey.updated_at),
    }


# --- keywords ------------------------------------------------------------------


def normalize_keyword(raw) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _bad("keyword", "is required.")
    word = raw.strip().upper()
    if not _KEYWORD.match(word):
        raise _bad("keyword", "one word of letters, digits, _ or - (at most 40 characters).")
    if word in RESERVED_WORDS:
        raise _bad("keyword", f"{word} is reserved for opt-out, opt-in and help.")
    return word


def create_keyword(body: dict) -> Keyword:
    if not isinstance(body, dict):
        raise Invalid("invalid_json", "The keyword must be a JSON object.")
    unknown = sorted(set(body) - {"keyword", "reply_text", "survey_id", "yields_to_session"})
    if unknown:
        raise _bad(unknown[0], "unknown field.")
    word = normalize_keyword(body.get("keyword"))
    reply = body.get("reply_text")
    if reply is not None and not isinstance(reply, str):
        raise _bad("reply_text", "must be a text.")
    reply = (reply or "").strip() or None
    if reply and len(reply) > 1600:
        raise _bad("reply_text", "at most 1600 characters.")
    survey_id = body.get("survey_id")
    if survey_id is not None:
        if not isinstance(survey_id, str) or not _in_scope(survey_id):
            raise _bad("survey_id", "no such survey in this project.")
    if not reply and not survey_id:
        raise _bad("reply_text", "give a reply_text, a survey_id, or both.")
    yields = body.get("yields_to_session", True)
    if not isinstance(yields, bool):
        raise _bad("yields_to_session", "must be true or false.")
    keyword = Keyword(keyword=word, reply_text=reply, survey_id=survey_id, yields_to_session=yields)
    try:
        with db.session.begin_nested():
            db.session.add(keyword)
    except IntegrityError:
        raise Conflict("duplicate_keyword", f"The keyword {word} already exists.", field="keyword") from None
    log.info("keyword created keyword_id=%s keyword=%s", keyword.id, word)
    return keyword


def _in_scope(survey_id: str) -> bool:
    return db.session.execute(select(Survey.id).where(Survey.id == survey_id)).first() is not None


def keyword_json(keyword: Keyword) -> dict:
    return {
        "id": keyword.id,
        "keyword": keyword.keyword,
        "reply_text": keyword.reply_text,
        "survey_id": keyword.survey_id,
        "yields_to_session": keyword.yields_to_session,
        "created_at": clock.isoformat(keyword.created_at),
    }


# --- settings ------------------------------------------------------------------


def inbound_settings(project_id: int, create: bool = False) -> InboundSettings | None:
    row = db.session.execute(select(InboundSettings)).scalar_one_or_none()
    if row is None and create:
        try:
            with db.session.begin_nested():
                row = InboundSettings(project_id=project_id, updated_at=clock.now())
                db.session.add(row)
        except IntegrityError:
            row = db.session.execute(select(InboundSettings)).scalar_one()
    return row


def set_default_reply(project_id: int, text: str | None) -> InboundSettings:
    text = (text or "").strip() or None
    if text and len(text) > 1600:
        raise _bad("default_reply", "at most 1600 characters.")
    row = inbound_settings(project_id, create=True)
    row.default_reply = text
    row.updated_at = clock.now()
    db.session.flush()
    return row
