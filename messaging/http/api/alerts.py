"""Conditional alerts: rules (create, list, read, change, delete), their history, a case's upcoming messages.

The rules live in :mod:`messaging.alerts`; these views validate, call it, commit and answer.
"""

from flask import abort, g, jsonify
from sqlalchemy import select

from messaging.alerts import dry_run, manage, preview, reading, serialize
from messaging.extensions import db
from messaging.http.api import created, json_body, route
from messaging.http.api.errors import ApiError
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.pagination import paginate, paginate_batched
from messaging.http.api.validation import arg_choice
from messaging.http.lookup import get_or_404
from messaging.models import AlertOccurrence, AlertRule, Case
from messaging.models.alerts import OCCURRENCE_STATUSES

_CRITERION = {
    "type": "object",
    "required": ["property", "op"],
    "properties": {
        "property": {"type": "string"},
        "op": {"type": "string", "enum": ["eq", "ne", "in", "exists", "missing", "gt", "lt"]},
        "value": {},
    },
}
BODY = {
    "type": "object",
    "required": ["name", "case_type"],
    "properties": {
        "name": {"type": "string"},
        "case_type": {"type": "string"},
        "criteria": {"type": "array", "items": _CRITERION},
        "start": {
            "type": ["object", "null"],
            "description": "property (a date), offset_days (-365..365), time HH:MM in the project's zone",
            "properties": {
                "property": {"type": "string"},
                "offset_days": {"type": "integer"},
                "time": {"type": "string"},
            },
        },
        "repeat": {
            "type": ["object", "null"],
            "properties": {
                "every_days": {"type": "integer"},
                "times": {"type": "integer"},
                "until_completed": {
                    "type": "boolean",
                    "description": "a survey rule re-asks only the cases that have not completed it",
                },
            },
        },
        "recipient": {"type": "string", "enum": ["case", "owner", "case_and_owner"]},
        "text": {"type": "string", "description": "SMS text with placeholders such as {case.name}"},
        "translations": {"type": "object", "additionalProperties": {"type": "string"}},
        "default_language": {"type": "string"},
        "survey_id": {"type": "string"},
        "quiet_hours": {"type": ["object", "null"]},
        "active": {"type": "boolean"},
    },
}
RULE = schema(
    "AlertRule",
    {
        "type": "object",
        "required": ["id", "name", "case_type", "active"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "case_type": {"type": "string"},
            "criteria": {"type": "array", "items": {"type": "object"}},
            "start": {"type": ["object", "null"]},
            "repeat": {"type": ["object", "null"]},
            "recipient": {"type": "string"},
            "active": {"type": "boolean"},
            "applying": {"type": "object"},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
)
OCCURRENCE = schema(
    "AlertOccurrence",
    {
        "type": "object",
        "required": ["id", "alert_id", "case_id", "due_at", "status"],
        "properties": {
            "id": {"type": "integer"},
            "alert_id": {"type": "string"},
            "case_id": {"type": "string"},
            "due_at": {"type": "string"},
            "status": {"type": "string", "enum": list(OCCURRENCE_STATUSES)},
            "reason": {"type": ["string", "null"]},
            "messages": {"type": "integer"},
            "date": {"type": ["string", "null"]},
            "seq": {"type": "integer"},
        },
    },
)
UPCOMING = schema(
    "UpcomingMessage",
    {
        "type": "object",
        "required": ["alert_id", "due_at", "to", "text", "why"],
        "properties": {
            "alert_id": {"type": "string"},
            "alert_name": {"type": "string"},
            "occurrence_id": {"type": "integer"},
            "due_at": {"type": "string"},
            "to": {"type": ["string", "null"]},
            "recipient": {"type": "string"},
            "text": {"type": "string"},
            "why": {"type": "string"},
        },
    },
)


def _rule(alert_id: str) -> AlertRule:
    rule = get_or_404(AlertRule, alert_id)
    if rule.deleted_at is not None:
        abort(404)
    return rule


@route(
    "/alerts",
    ["POST"],
    summary="Create a conditional alert rule; it applies to the existing cases at once, in a job",
    tag="alerts",
    request_schema=BODY,
    responses={201: {"description": "Created", "schema": RULE}},
    errors=(400, 401, 403, 415),
)
def create_alert():
    rule = manage.create_rule(g.api_user.project_id, json_body(), user_id=g.api_user.id)
    db.session.commit()
    return created(serialize.rule_json(rule))


@route(
    "/alerts",
    summary="Conditional alert rules, newest first",
    tag="alerts",
    responses={200: {"description": "OK", "schema": list_of(RULE)}},
    errors=(400, 401),
)
def list_alerts():
    stmt = select(AlertRule).where(AlertRule.deleted_at.is_(None))
    return jsonify(paginate(stmt, [AlertRule.created_at, AlertRule.id], serialize.rule_json))


@route(
    "/alerts/<alert_id>",
    summary="A rule, with its occurrences counted by status and the progress of applying it",
    tag="alerts",
    responses={200: {"description": "OK", "schema": RULE}},
)
def get_alert(alert_id):
    return jsonify(serialize.rule_json(_rule(alert_id)))


@route(
    "/alerts/<alert_id>",
    ["PATCH"],
    summary="Change a rule (fields as for create; missing ones are kept); schedules are recomputed",
    tag="alerts",
    request_schema=BODY | {"required": []},
    responses={200: {"description": "OK", "schema": RULE}},
    errors=(400, 401, 403, 404, 415),
)
def edit_alert(alert_id):
    rule = manage.update_rule(_rule(alert_id), json_body())
    db.session.commit()
    return jsonify(serialize.rule_json(rule))


@route(
    "/alerts/<alert_id>",
    ["DELETE"],
    summary="Delete a rule: its pending messages are cancelled (rule_deleted)",
    tag="alerts",
    responses={204: {"description": "Deleted"}},
    errors=(401, 403, 404),
)
def delete_alert(alert_id):
    manage.delete_rule(_rule(alert_id))
    db.session.commit()
    return "", 204


@route(
    "/alerts/<alert_id>/history",
    summary="What a rule sent, skipped and cancelled (with reasons), newest first; ?status=",
    tag="alerts",
    params=[{"name": "status", "in": "query", "schema": {"type": "string"}}],
    responses={200: {"description": "OK", "schema": list_of(OCCURRENCE)}},
)
def alert_history(alert_id):
    rule = _rule(alert_id)
    status = arg_choice("status", OCCURRENCE_STATUSES)
    stmt = select(AlertOccurrence).where(AlertOccurrence.rule_id == rule.id)
    if status:
        stmt = stmt.where(AlertOccurrence.status == status)

    def case_ids(ids):
        return dict(
            db.session.execute(
                select(AlertOccurrence.id, Case.case_id)
                .join(Case, Case.id == AlertOccurrence.case_pk)
                .where(AlertOccurrence.id.in_(ids))
            ).all()
        )

    return jsonify(paginate_batched(stmt, [AlertOccurrence.id], case_ids, serialize.occurrence_json))


@route(
    "/cases/<case_id>/upcoming",
    summary="Every message the case's alert schedules will send, soonest first, and why",
    tag="alerts",
    responses={200: {"description": "OK", "schema": list_of(UPCOMING)}},
)
def case_upcoming(case_id):
    case = get_or_404(Case, case_id, column=Case.case_id)
    if case.deleted:
        raise ApiError(404, "not_found", "This case has been deleted.")
    return jsonify({"results": reading.upcoming(case), "next": None})


@route(
    "/alerts/preview",
    ["POST"],
    summary="What a rule (body as for create) would do now: open cases matching, skipped, next messages",
    tag="alerts",
    request_schema=BODY,
    responses={200: {"description": "OK"}},
    errors=(400, 401, 403, 415),
    role="viewer",
)
def preview_alert():
    return jsonify(preview.preview_rule(g.api_user.project_id, json_body()))


@route(
    "/alerts/dry-run",
    ["POST"],
    summary="Play the project's rules forward {days} (1-90) without sending: per day messages, "
    "segments, quiet-hour holds, and sample transcripts",
    tag="alerts",
    request_schema={
        "type": "object",
        "properties": {
            "days": {"type": "integer", "minimum": 1, "maximum": dry_run.MAX_DAYS},
            "alert_ids": {"type": "array", "items": {"type": "string"}},
        },
    },
    responses={200: {"description": "OK"}},
    errors=(400, 401, 403, 415),
    role="viewer",
)
def dry_run_alerts():
    days, alert_ids = dry_run.parse_days(json_body())
    return jsonify(dry_run.dry_run(g.api_user.project_id, days, alert_ids))
