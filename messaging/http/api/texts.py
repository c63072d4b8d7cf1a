"""Participant texts: the wording of what the system says to participants, per language, and a
project's own wordings. The rules live in :mod:`messaging.projects.texts`."""

from flask import g, jsonify

from messaging.extensions import db
from messaging.http.api import json_body, route
from messaging.http.api.openapi import schema
from messaging.projects import texts

TABLE = schema(
    "ParticipantTexts",
    {
        "type": "object",
        "required": ["languages", "default_language", "texts"],
        "properties": {
            "languages": {"type": "array", "items": {"type": "string"}},
            "default_language": {"type": "string"},
            "texts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "key, english, and per language {text, source: project|shipped|missing}",
                },
            },
        },
    },
)


@route(
    "/texts",
    summary="Every participant text in every language of the project: the wording that applies, and why",
    tag="texts",
    responses={200: {"description": "OK", "schema": TABLE}},
    errors=(401,),
)
def participant_texts():
    return jsonify(texts.table(g.api_user.project_id))


@route(
    "/texts",
    ["PUT"],
    summary="Set the project's own wordings in one language: {language, texts: {key: text}} "
    "(null or blank removes one), and/or its default language: {default_language}",
    tag="texts",
    request_schema={
        "type": "object",
        "properties": {
            "language": {"type": "string", "description": "a code such as rw or pt-br"},
            "default_language": {
                "type": "string",
                "description": "what a participant with no language of their own reads",
            },
            "texts": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        },
    },
    responses={200: {"description": "OK", "schema": TABLE}},
    errors=(400, 401, 403, 404, 415),
)
def set_participant_texts():
    body = json_body()
    project_id = g.api_user.project_id
    if "default_language" in body:
        texts.set_default_language(project_id, body["default_language"])
    if "texts" in body or "language" in body or "default_language" not in body:
        texts.set_wordings(project_id, body.get("language"), body.get("texts"))
    db.session.commit()
    return jsonify(texts.table(g.api_user.project_id))
