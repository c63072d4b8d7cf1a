"""The project's settings: read them, and (admins) change them. The rules live in
:mod:`messaging.projects.settings`."""

from flask import jsonify

from messaging.db import tenancy
from messaging.extensions import db
from messaging.http.api import json_body, route
from messaging.http.api.openapi import schema
from messaging.models import Project
from messaging.projects.settings import patch_settings, settings_json

WINDOW = {
    "type": "object",
    "required": ["start", "end"],
    "properties": {
        "days": {
            "type": "array",
            "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
        },
        "start": {"type": "string", "example": "08:00"},
        "end": {
            "type": "string",
            "example": "18:00",
            "description": "before start: the window runs past midnight",
        },
    },
}
SETTINGS = schema(
    "ProjectSettings",
    {
        "type": "object",
        "properties": {
            "slug": {"type": "string", "readOnly": True},
            "name": {"type": "string"},
            "timezone": {"type": "string", "example": "Africa/Nairobi"},
            "default_country": {"type": "string", "example": "KE"},
            "languages": {"type": "array", "items": {"type": "string"}, "readOnly": True},
            "default_language": {"type": "string"},
            "daily_sms_limit": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "automated messages a local day; beyond it they wait for the next day",
            },
            "sending_windows": {
                "type": ["array", "null"],
                "items": WINDOW,
                "description": "when automated messages may go (project time zone); null: at any time",
            },
            "default_reply": {"type": ["string", "null"]},
            "help_text": {"type": "string"},
        },
    },
)


def _project() -> Project:
    return db.session.get(Project, tenancy.current_project_id())


@route(
    "/project",
    summary="The project's settings",
    tag="project",
    responses={200: {"description": "OK", "schema": SETTINGS}},
    errors=(401,),
)
def get_project():
    return jsonify(settings_json(_project()))


@route(
    "/project",
    ["PATCH"],
    summary="Change the project's settings (only the fields given; a refused change changes nothing)",
    tag="project",
    request_schema=SETTINGS,
    responses={200: {"description": "OK", "schema": SETTINGS}},
    errors=(400, 401, 403, 415),
    role="admin",
)
def patch_project():
    project = _project()
    patch_settings(project, json_body())
    db.session.commit()
    return jsonify(settings_json(project))
