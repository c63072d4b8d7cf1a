"""SMS surveys (definitions and responses) and project keywords."""

from flask import jsonify
from sqlalchemy import select

from messaging.extensions import db
from messaging.http.api import created, json_body, route
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.pagination import paginate
from messaging.http.lookup import get_or_404
from messaging.models import Keyword, Survey, SurveySession
from messaging.models.surveys import SESSION_STATUSES
from messaging.surveys import definitions, project_keywords
from messaging.surveys.answers import TYPES
from messaging.surveys.serialize import keyword_json, session_json, survey_json

TAG = "surveys"

_BRANCH = {
    "type": "object",
    "required": ["question", "op"],
    "properties": {"question": {"type": "string"}, "op": {"type": "string"}, "value": {}},
}
QUESTION = {
    "type": "object",
    "required": ["id", "type", "text"],
    "properties": {
        "id": {"type": "string"},
        "type": {"type": "string", "enum": list(TYPES)},
        "text": {"type": "string"},
        "choices": {"type": ["array", "null"], "items": {"type": "string"}},
        "min": {"type": ["number", "null"]},
        "max": {"type": ["number", "null"]},
        "required": {"type": "boolean"},
        "case_property": {"type": ["string", "null"]},
        "flag_if": {
            "type": ["object", "null"],
            "description": "{op, value}: an answer that meets it opens in the inbox and tells the owner",
        },
        "show_if": {
            "type": "array",
            "description": "[{question, op, value}] on earlier answers: asked only when all hold",
            "items": _BRANCH,
        },
        "end_if": {
            "type": "array",
            "description": "[{question, op, value}] on this or earlier answers: the survey ends here",
            "items": _BRANCH,
        },
        "end_text": {"type": "string", "description": "sent when end_if ends the survey"},
    },
}
SURVEY_BODY = {
    "type": "object",
    "required": ["name", "questions"],
    "properties": {
        "name": {"type": "string"},
        "questions": {"type": "array", "items": QUESTION},
        "expire_after_minutes": {"type": "integer", "minimum": 1, "maximum": 10080},
        "reminder_minutes": {"type": ["integer", "null"], "minimum": 1},
        "max_invalid_attempts": {"type": "integer", "minimum": 0, "maximum": 20},
        "save_partial_on_expiry": {"type": "boolean"},
        "case_type": {"type": ["string", "null"]},
        "completion_text": {"type": ["string", "null"]},
    },
}
SURVEY = schema(
    "Survey",
    {
        "type": "object",
        "properties": {
            **SURVEY_BODY["properties"],
            "id": {"type": "string"},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
        },
    },
)
SESSION = schema(
    "SurveySession",
    {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "survey_id": {"type": "string"},
            "case_id": {"type": ["string", "null"]},
            "phone": {"type": "string"},
            "status": {"type": "string", "enum": list(SESSION_STATUSES)},
            "answers": {"type": "object"},
            "current_question": {"type": "integer"},
            "invalid_attempts": {"type": "integer"},
            "reminders_sent": {"type": "integer"},
            "form_id": {"type": ["string", "null"]},
            "end_reason": {"type": ["string", "null"]},
            "started_at": {"type": "string"},
            "ended_at": {"type": ["string", "null"]},
        },
    },
)
KEYWORD_BODY = {
    "type": "object",
    "required": ["keyword"],
    "properties": {
        "keyword": {"type": "string"},
        "reply_text": {"type": ["string", "null"]},
        "survey_id": {"type": ["string", "null"]},
        "yields_to_session": {
            "type": "boolean",
            "description": "true (default): an open survey session takes the message first",
        },
        "notify_owner": {
            "type": "boolean",
            "description": "true: the case's owner (its mobile worker, or the owning group's members) "
            "gets an SMS quoting the message",
        },
    },
}
KEYWORD = schema(
    "Keyword",
    {
        "type": "object",
        "properties": {
            **KEYWORD_BODY["properties"],
            "id": {"type": "string"},
            "created_at": {"type": "string"},
        },
    },
)


@route(
    "/surveys",
    ["POST"],
    summary="Define an SMS survey",
    tag=TAG,
    request_schema=SURVEY_BODY,
    responses={201: {"description": "Created", "schema": SURVEY}},
    errors=(400, 401, 403, 415),
)
def survey_create():
    survey = definitions.create_survey(json_body())
    db.session.commit()
    return created(survey_json(survey))


@route(
    "/surveys",
    summary="List surveys",
    tag=TAG,
    responses={200: {"description": "OK", "schema": list_of(SURVEY)}},
)
def survey_list():
    return jsonify(paginate(select(Survey), [Survey.created_at, Survey.id], survey_json))


@route(
    "/surveys/<survey_id>",
    summary="One survey",
    tag=TAG,
    responses={200: {"description": "OK", "schema": SURVEY}},
)
def survey_get(survey_id):
    return jsonify(survey_json(get_or_404(Survey, survey_id)))


@route(
    "/surveys/<survey_id>",
    ["PATCH"],
    summary="Change a survey (open sessions keep their answers by question id)",
    tag=TAG,
    request_schema=SURVEY_BODY,
    responses={200: {"description": "OK", "schema": SURVEY}},
    errors=(400, 401, 403, 404, 415),
)
def survey_update(survey_id):
    survey = get_or_404(Survey, survey_id)
    definitions.update_survey(survey, json_body())
    db.session.commit()
    return jsonify(survey_json(survey))


@route(
    "/surveys/<survey_id>/responses",
    summary="Sessions of a survey (finished and partial) with their answers, newest first",
    tag=TAG,
    responses={200: {"description": "OK", "schema": list_of(SESSION)}},
)
def survey_responses(survey_id):
    survey = get_or_404(Survey, survey_id)
    stmt = select(SurveySession).where(SurveySession.survey_id == survey.id)
    return jsonify(
        paginate(
            stmt,
            [SurveySession.started_at, SurveySession.id],
            lambda s: session_json(s, s.case.case_id if s.case else None),
        )
    )


@route(
    "/keywords",
    ["POST"],
    summary="Add a project keyword (first word of an inbound SMS): a reply text and/or a survey to start",
    tag=TAG,
    request_schema=KEYWORD_BODY,
    responses={201: {"description": "Created", "schema": KEYWORD}},
    errors=(400, 401, 403, 409, 415),
)
def keyword_create():
    keyword = project_keywords.create_keyword(json_body())
    db.session.commit()
    return created(keyword_json(keyword))


@route(
    "/keywords",
    summary="List keywords",
    tag=TAG,
    responses={200: {"description": "OK", "schema": list_of(KEYWORD)}},
)
def keyword_list():
    return jsonify(paginate(select(Keyword), [Keyword.created_at, Keyword.id], keyword_json))


@route(
    "/keywords/<keyword_id>",
    summary="One keyword",
    tag=TAG,
    responses={200: {"description": "OK", "schema": KEYWORD}},
)
def keyword_get(keyword_id):
    return jsonify(keyword_json(get_or_404(Keyword, keyword_id)))


@route(
    "/keywords/<keyword_id>",
    ["DELETE"],
    summary="Delete a keyword",
    tag=TAG,
    responses={204: {"description": "Deleted"}},
    errors=(401, 403, 404),
)
def keyword_delete(keyword_id):
    keyword = get_or_404(Keyword, keyword_id)
    db.session.delete(keyword)
    db.session.commit()
    return "", 204
