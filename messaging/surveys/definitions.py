"""Survey definitions: validation, create and update, the survey's questions.

Rules:

- Questions are validated with :class:`messaging.surveys.answers.Question`;
  bad input raises ``Invalid("validation_error")`` naming the field, and nothing
  is written. A body that is not a JSON object is ``invalid_json``; an unknown
  field is refused.
- A survey has a name (at most 200 characters) and 1 to 100 questions with
  distinct ids; a question's ``case_property`` is a property name (letters,
  digits, _ or -), not one of case_name, case_type, owner_id, external_id,
  phone_number, language.
- ``expire_after_minutes`` is 1 minute to 168 hours (as CommCare; 24 hours by
  default), ``reminder_minutes`` 1 minute to 168 hours or null,
  ``max_invalid_attempts`` 0 to 20 (3 by default), ``save_partial_on_expiry``
  true or false, ``case_type`` a case type (at most 100 characters) or null,
  ``completion_text`` at most 1000 characters or null (blank is null).
- Branching (``show_if``, ``end_if``, ``end_text``) is checked against the whole
  list (:mod:`messaging.surveys.branching`): a condition only looks back, names a
  question the survey has, and fits that question's type and choices.
- An update changes only the fields given; open sessions keep their answers by
  question id and continue with the new list.
- Services flush, never commit.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from sqlalchemy import select

from messaging.errors import Invalid, NotFound
from messaging.errors import field_error as invalid_field  # one refusal of one field
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import Survey
from messaging.surveys.answers import Question
from messaging.surveys.branching import check_flow

log = logging.getLogger(__name__)

MAX_EXPIRE_MINUTES = 168 * 60  # CommCare: 1 to 168 hours
DEFAULT_EXPIRE_MINUTES = 24 * 60
MAX_QUESTIONS = 100
_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,99}$")
_RESERVED_PROPERTIES = {"case_name", "case_type", "owner_id", "external_id", "phone_number", "language"}
_FIELDS = {
    "name",
    "questions",
    "expire_after_minutes",
    "reminder_minutes",
    "max_invalid_attempts",
    "save_partial_on_expiry",
    "case_type",
    "completion_text",
}


def parse_questions(raw) -> list[Question]:
    if not isinstance(raw, list) or not raw:
        raise invalid_field("questions", "give at least one question.")
    if len(raw) > MAX_QUESTIONS:
        raise invalid_field("questions", f"at most {MAX_QUESTIONS} questions.")
    questions: list[Question] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        try:
            question = Question.from_dict(item)
        except (ValueError, TypeError) as exc:
            raise invalid_field(f"questions[{index}]", str(exc)) from None
        if question.id in seen:
            raise invalid_field(f"questions[{index}]", f"id: {question.id!r} is used twice.")
        seen.add(question.id)
        prop = question.case_property
        if prop is not None and (not _PROPERTY.match(prop) or prop in _RESERVED_PROPERTIES):
            raise invalid_field(
                f"questions[{index}]",
                f"case_property: {prop!r} must be a property name (letters, digits, _ or -), "
                "not one of case_name, case_type, owner_id, external_id, phone_number, language.",
            )
        questions.append(question)
    try:
        flows = check_flow(questions)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise invalid_field(field, message) from None
    # The canonical form of each condition (a choice as the question spells it).
    return [
        replace(q, **{k: flow.get(k) for k in ("show_if", "end_if", "end_text")})
        for q, flow in zip(questions, flows, strict=True)
    ]


def _int_field(body: dict, name: str, default, low: int, high: int, nullable: bool = False):
    value = body.get(name, default)
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid_field(
            name, f"must be a whole number from {low} to {high}{' or null' if nullable else ''}."
        )
    return value


def _clean(body: dict, current: Survey | None = None) -> dict:
    if not isinstance(body, dict):
        raise Invalid("invalid_json", "The survey must be a JSON object.")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise invalid_field(unknown[0], "unknown field.")
    get = (lambda n, d: body.get(n, getattr(current, n))) if current else (lambda n, d: body.get(n, d))
    name = get("name", None)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise invalid_field("name", "is required (at most 200 characters).")
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
    return values | _clean_settings(merged)


def _clean_settings(merged: dict) -> dict:
    values = {}
    values["expire_after_minutes"] = _int_field(merged, "expire_after_minutes", None, 1, MAX_EXPIRE_MINUTES)
    values["reminder_minutes"] = _int_field(merged, "reminder_minutes", None, 1, MAX_EXPIRE_MINUTES, True)
    values["max_invalid_attempts"] = _int_field(merged, "max_invalid_attempts", None, 0, 20)
    if not isinstance(merged["save_partial_on_expiry"], bool):
        raise invalid_field("save_partial_on_expiry", "must be true or false.")
    values["save_partial_on_expiry"] = merged["save_partial_on_expiry"]
    case_type = merged["case_type"]
    if case_type is not None and (
        not isinstance(case_type, str) or not case_type.strip() or len(case_type) > 100
    ):
        raise invalid_field("case_type", "must be a case type (at most 100 characters) or null.")
    values["case_type"] = case_type.strip() if case_type else None
    completion = merged["completion_text"]
    if completion is not None and (not isinstance(completion, str) or len(completion) > 1000):
        raise invalid_field("completion_text", "must be a text of at most 1000 characters or null.")
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


def get_survey(survey_id: str) -> Survey:
    """The survey ``survey_id`` of the current project; ``NotFound`` if there is none."""
    survey = db.session.execute(select(Survey).where(Survey.id == survey_id)).scalar_one_or_none()
    if survey is None:
        raise NotFound("not_found", f"There is no survey '{survey_id}' in this project.")
    return survey


def survey_exists(survey_id: str) -> bool:
    """Whether the current project has a survey ``survey_id``."""
    return db.session.execute(select(Survey.id).where(Survey.id == survey_id)).first() is not None


def survey_questions(survey: Survey) -> list[Question]:
    return [Question.from_dict(q) for q in survey.questions or []]
