"""The JSON API under /api/v1: token auth, project scoping, JSON errors.

Endpoint modules import ``bp`` and ``route`` from here; ``route`` both
registers the Flask view and documents it in ``/api/v1/openapi.json``.
"""

import logging

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from messaging.db import tenancy
from messaging.db.outage import roll_back_quietly
from messaging.errors import DomainError
from messaging.extensions import csrf, db
from messaging.http.api import openapi
from messaging.http.api.errors import (
    ApiError,
    database_unavailable_response,
    error_response,
    http_error_response,
)
from messaging.http.errors import status_of
from messaging.lib import clock
from messaging.models import ApiToken, hash_token

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_PUBLIC_ENDPOINTS = set()


def route(  # noqa: PLR0913 - a declaration: its keywords are the OpenAPI document's fields
    rule: str,
    methods=("GET",),
    *,
    summary: str = "",
    tag: str = "api",
    request_schema: dict | None = None,
    request_media: str = "application/json",
    responses: dict | None = None,
    params: list | None = None,
    errors=(400, 401, 404),
    auth: bool = True,
    role: str | None = None,
):
    """Declare an API view and its OpenAPI description in one place.

    ``role`` is the least role allowed; by default reads need ``viewer`` and
    writes need ``manager``.
    """

    def decorator(view):
        endpoint = view.__name__
        bp.add_url_rule(rule, endpoint=endpoint, view_func=view, methods=list(methods))
        if not auth:
            _PUBLIC_ENDPOINTS.add(f"api.{endpoint}")
        for method in methods:
            spec = {
                "endpoint": f"{endpoint}_{method.lower()}" if len(methods) > 1 else endpoint,
                "summary": summary,
                "tag": tag,
                "params": params or [],
                "responses": responses or {200: {"description": "OK"}},
                "errors": errors,
                "auth": auth,
            }
            if request_schema is not None and method in WRITE_METHODS:
                spec["request"] = {
                    "required": True,
                    "content": {request_media: {"schema": request_schema}},
                }
            openapi.record(bp.url_prefix + rule, method, spec)
        view._api_role = role
        return view

    return decorator


@bp.before_request
def authenticate():
    if request.endpoint in _PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() not in {"token", "bearer"} or not key.strip():
        raise ApiError(401, "unauthorized", "An API token is required: send 'Authorization: Token <key>'.")
    token = db.session.execute(
        select(ApiToken).where(ApiToken.token_hash == hash_token(key.strip()))
    ).scalar_one_or_none()
    if token is None or token.revoked_at is not None or not token.user.is_active:
        raise ApiError(401, "invalid_token", "This API token is not valid or has been revoked.")
    now = clock.now()
    # Recording every use would add a write to every read; once a minute is enough.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
        db.session.commit()
    g.api_user = token.user
    g.api_token_id = token.id
    tenancy.set_current_project(token.project_id)
    # The app's table: a Blueprint's own view_functions stays empty (its rules are deferred).
    view = current_app.view_functions.get(request.endpoint)
    needed = getattr(view, "_api_role", None) or ("manager" if request.method in WRITE_METHODS else "viewer")
    if not token.user.can(needed):
        raise ApiError(403, "forbidden", f"Your role ({token.user.role}) cannot do this; it needs {needed}.")
    return None


@bp.errorhandler(DomainError)
def handle_api_error(exc: DomainError):
    db.session.rollback()
    return error_response(status_of(exc), exc.code, exc.message, exc.details)


@bp.errorhandler(HTTPException)
def handle_http_error(exc: HTTPException):
    db.session.rollback()
    return http_error_response(exc)


@bp.errorhandler(IntegrityError)
def handle_constraint(exc: IntegrityError):
    """A write a database constraint refused (say, two requests racing for one name): 409, not 500."""
    db.session.rollback()
    log.warning(
        "API write refused by a database constraint on %s %s: %s",
        request.method,
        request.path,
        type(exc.orig).__name__,
    )
    return error_response(409, "conflict", "This conflicts with a change saved at the same time; try again.")


@bp.errorhandler(OperationalError)
def handle_database_away(exc: OperationalError):
    """The database went away (an outage, a restart): 503 with Retry-After, not a 500."""
    roll_back_quietly()
    log.warning(
        "API request %s %s: the database is away (%s)", request.method, request.path, type(exc.orig).__name__
    )
    return database_unavailable_response()


@bp.errorhandler(Exception)
def handle_unexpected(exc: Exception):
    db.session.rollback()
    log.exception("unhandled API error on %s %s", request.method, request.path)
    return error_response(500, "server_error", "Something went wrong on our side; it has been logged.")


def json_body() -> dict:
    """The request's JSON object, or a clear 400/415."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Send JSON with 'Content-Type: application/json'.")
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.")
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return data


def created(body: dict, status: int = 201):
    response = jsonify(body)
    response.status_code = status
    return response


@route("/openapi.json", summary="This OpenAPI document", auth=False, tag="meta", errors=())
def openapi_document():
    return jsonify(openapi.document(request.host_url.rstrip("/")))


def register_endpoints() -> None:
    """Import the endpoint modules so their routes attach to ``bp``."""
    from messaging.http.api import (  # noqa: F401
        alerts,
        broadcasts,
        case_groups,
        cases,
        conversations,
        forwarding,
        gateways,
        imports,
        inbox,
        messages,
        opt_outs,
        people,
        project,
        surveys,
        texts,
        usage,
    )
