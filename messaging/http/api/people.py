"""Applications, mobile workers and user groups."""

from flask import jsonify
from sqlalchemy import select

from messaging.extensions import db
from messaging.http.api import created, json_body, route
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.pagination import page_body, paginate
from messaging.http.api.validation import get_bool, get_list, get_str
from messaging.http.lookup import get_or_404
from messaging.models import Application, MobileWorker, UserGroup
from messaging.people import applications, groups, workers
from messaging.people.serialize import application_json, group_json, user_json

APPLICATION = schema(
    "Application",
    {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "case_sharing": {"type": "boolean"},
            "created_at": {"type": "string"},
        },
    },
)
USER = schema(
    "MobileWorker",
    {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "username": {"type": "string"},
            "language": {"type": ["string", "null"]},
            "phone_number": {"type": ["string", "null"]},
            "created_at": {"type": "string"},
        },
    },
)
GROUP = schema(
    "UserGroup",
    {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "case_sharing": {"type": "boolean"},
            "members": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "string"},
        },
    },
)


@route(
    "/applications",
    ["POST"],
    summary="Create an application",
    tag="people",
    request_schema={
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "case_sharing": {"type": "boolean"}},
    },
    responses={201: {"description": "Created", "schema": APPLICATION}},
    errors=(400, 401, 403, 415),
)
def create_application():
    body = json_body()
    app = applications.create_application(
        get_str(body, "name", required=True, max_length=200), get_bool(body, "case_sharing")
    )
    db.session.commit()
    return created(application_json(app))


@route(
    "/applications",
    summary="List applications",
    tag="people",
    responses={200: {"description": "OK", "schema": list_of(APPLICATION)}},
)
def list_applications():
    return jsonify(paginate(select(Application), [Application.created_at, Application.id], application_json))


@route(
    "/applications/<app_id>",
    summary="Get an application",
    tag="people",
    responses={200: {"description": "OK", "schema": APPLICATION}},
)
def get_application(app_id):
    return jsonify(application_json(get_or_404(Application, app_id)))


@route(
    "/applications/<app_id>",
    ["PATCH"],
    summary="Change an application",
    tag="people",
    request_schema={
        "type": "object",
        "properties": {"name": {"type": "string"}, "case_sharing": {"type": "boolean"}},
    },
    responses={200: {"description": "OK", "schema": APPLICATION}},
    errors=(400, 401, 403, 404, 415),
)
def update_application(app_id):
    app = get_or_404(Application, app_id)
    body = json_body()
    applications.update_application(
        app,
        name=get_str(body, "name", max_length=200),
        case_sharing=get_bool(body, "case_sharing") if "case_sharing" in body else None,
    )
    db.session.commit()
    return jsonify(application_json(app))


@route(
    "/users",
    ["POST"],
    summary="Create a mobile worker",
    tag="people",
    request_schema={
        "type": "object",
        "required": ["username"],
        "properties": {
            "username": {"type": "string"},
            "password": {"type": "string"},
            "language": {"type": "string"},
            "phone_number": {"type": "string"},
        },
    },
    responses={201: {"description": "Created", "schema": USER}},
    errors=(400, 401, 403, 409, 415),
)
def create_user():
    body = json_body()
    user = workers.create_mobile_worker(
        get_str(body, "username", required=True, max_length=150),
        get_str(body, "password", max_length=200),
        get_str(body, "language", max_length=16),
        get_str(body, "phone_number", max_length=20),
    )
    db.session.commit()
    return created(user_json(user))


@route(
    "/users",
    summary="List mobile workers",
    tag="people",
    responses={200: {"description": "OK", "schema": list_of(USER)}},
)
def list_users():
    return jsonify(paginate(select(MobileWorker), [MobileWorker.created_at, MobileWorker.id], user_json))


@route(
    "/users/<user_id>",
    summary="Get a mobile worker",
    tag="people",
    responses={200: {"description": "OK", "schema": USER}},
)
def get_user(user_id):
    return jsonify(user_json(get_or_404(MobileWorker, user_id)))


@route(
    "/users/<user_id>/groups",
    summary="The user's case-sharing groups (to choose an owner from)",
    tag="people",
    responses={200: {"description": "OK", "schema": list_of(GROUP)}},
)
def user_groups(user_id):
    user = get_or_404(MobileWorker, user_id)
    return jsonify(page_body([group_json(g) for g in groups.case_sharing_groups(user.id)]))


GROUP_BODY = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "case_sharing": {"type": "boolean"},
        "members": {"type": "array", "items": {"type": "string"}},
    },
}


@route(
    "/groups",
    ["POST"],
    summary="Create a user group",
    tag="people",
    request_schema={**GROUP_BODY, "required": ["name"]},
    responses={201: {"description": "Created", "schema": GROUP}},
    errors=(400, 401, 403, 409, 415),
)
def create_group():
    body = json_body()
    group = groups.create_group(
        get_str(body, "name", required=True, max_length=200),
        get_bool(body, "case_sharing"),
        get_list(body, "members"),
    )
    db.session.commit()
    return created(group_json(group))


@route(
    "/groups",
    summary="List user groups",
    tag="people",
    responses={200: {"description": "OK", "schema": list_of(GROUP)}},
)
def list_groups():
    return jsonify(paginate(select(UserGroup), [UserGroup.created_at, UserGroup.id], group_json))


@route(
    "/groups/<group_id>",
    summary="Get a user group",
    tag="people",
    responses={200: {"description": "OK", "schema": GROUP}},
)
def get_group(group_id):
    return jsonify(group_json(get_or_404(UserGroup, group_id)))


@route(
    "/groups/<group_id>",
    ["PATCH"],
    summary="Change a user group (name, case sharing, members)",
    tag="people",
    request_schema=GROUP_BODY,
    responses={200: {"description": "OK", "schema": GROUP}},
    errors=(400, 401, 403, 404, 409, 415),
)
def update_group(group_id):
    group = get_or_404(UserGroup, group_id)
    body = json_body()
    groups.update_group(
        group,
        name=get_str(body, "name", max_length=200),
        case_sharing=get_bool(body, "case_sharing") if "case_sharing" in body else None,
        member_ids=get_list(body, "members") if "members" in body else None,
    )
    db.session.commit()
    return jsonify(group_json(group))
