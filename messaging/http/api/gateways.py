"""The project's SMS gateways: the default one (``/gateway``), every one (``/gateways``), test sends
and recent errors. Secrets are write-only."""

from flask import g, jsonify

from messaging.db import tenancy
from messaging.extensions import db
from messaging.gateways import recent_errors, testing
from messaging.gateways.registry import KINDS, provider
from messaging.gateways.serialize import gateway_json, kind_json
from messaging.gateways.settings import (
    GatewayInput,
    delete_gateway,
    gateway_config,
    gateways_of,
    get_gateway,
    save_gateway,
)
from messaging.http.api import created, json_body, route
from messaging.http.api.openapi import list_of, schema
from messaging.http.api.validation import get_bool, get_dict, get_int, get_list, get_str, invalid
from messaging.http.lookup import parse_id
from messaging.models import Message
from messaging.sms.serialize import message_json

GATEWAY = schema(
    "Gateway",
    {
        "type": "object",
        "properties": {
            "id": {"type": ["integer", "null"], "description": "null for a project's unsaved console"},
            "kind": {"type": "string", "enum": list(KINDS)},
            "name": {"type": "string"},
            "is_default": {"type": "boolean"},
            "prefixes": {"type": "array", "items": {"type": "string"}, "description": "e.g. +254"},
            "settings": {"type": "object", "description": "the kind's settings that are not secrets"},
            "secrets_set": {"type": "array", "items": {"type": "string"}, "description": "stored secrets"},
            "account_sid": {"type": ["string", "null"]},
            "auth_token_set": {"type": "boolean", "description": "the token itself is never returned"},
            "from_numbers": {"type": "array", "items": {"type": "string"}},
            "messaging_service_sid": {"type": ["string", "null"]},
            "mps": {"type": "integer", "description": "messages per second per sender"},
            "project_mps": {
                "type": ["integer", "null"],
                "description": "messages per second for the gateway",
            },
            "allowed_ips": {"type": "array", "items": {"type": "string"}},
            "inbound_url": {
                "type": ["string", "null"],
                "description": "where the provider posts inbound SMS",
            },
            "status_url": {"type": ["string", "null"], "description": "where it posts delivery reports"},
            "updated_at": {"type": ["string", "null"]},
        },
    },
)
GATEWAY_INPUT = {
    "type": "object",
    "required": ["kind"],
    "description": "The kind's own settings (e.g. account_sid, auth_token; username, api_key) go at the "
    "top level or in `settings`; secrets are write-only: omit one to keep the stored one.",
    "properties": {
        "kind": {"type": "string", "enum": list(KINDS)},
        "name": {"type": "string"},
        "is_default": {"type": "boolean"},
        "prefixes": {"type": "array", "items": {"type": "string"}},
        "from_numbers": {"type": "array", "items": {"type": "string"}},
        "mps": {"type": "integer", "minimum": 1, "maximum": 10000},
        "project_mps": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000},
        "allowed_ips": {"type": "array", "items": {"type": "string"}},
        "settings": {"type": "object"},
    },
}


def _input(body: dict, default: bool | None) -> GatewayInput:
    kind = get_str(body, "kind", required=True, max_length=16)
    if kind not in KINDS:
        raise invalid("kind", f"must be one of {', '.join(KINDS)}.")
    values = {}
    extra = get_dict(body, "settings")
    for field in provider(kind).fields:
        raw = extra.get(field.name, body.get(field.name))
        if raw is not None:
            if not isinstance(raw, str) or len(raw) > 4000:
                raise invalid(field.name, "must be text of at most 4,000 characters.")
            values[field.name] = raw
    unknown = sorted(set(extra) - {f.name for f in provider(kind).fields})
    if unknown:
        raise invalid(unknown[0], f"not a setting of a {provider(kind).label} gateway.")
    return GatewayInput(
        kind=kind,
        name=get_str(body, "name", max_length=80),
        is_default=get_bool(body, "is_default", default=default) if "is_default" in body else default,
        prefixes=get_list(body, "prefixes", max_items=200) if "prefixes" in body else None,
        from_numbers=get_list(body, "from_numbers", max_items=500),
        mps=get_int(body, "mps", minimum=1, maximum=10000),
        project_mps=get_int(body, "project_mps", minimum=1, maximum=10000),
        values=values,
        allowed_ips=get_list(body, "allowed_ips", max_items=100) if "allowed_ips" in body else None,
    )


def _is_admin() -> bool:
    """Whether the caller may see the webhook URLs (they carry the gateway's secret)."""
    return g.api_user.can("admin")


def _gateway(gateway_id):
    number = parse_id(gateway_id)
    return get_gateway(tenancy.current_project_id(), number if number is not None else -1)


@route(
    "/gateway",
    summary="The project's default SMS gateway (never a secret)",
    tag="gateway",
    responses={200: {"description": "OK", "schema": GATEWAY}},
    errors=(401,),
)
def get_default_gateway():
    return jsonify(gateway_json(gateway_config(tenancy.current_project_id()), _is_admin()))


@route(
    "/gateway",
    ["PUT"],
    summary="Set the project's default SMS gateway",
    tag="gateway",
    request_schema=GATEWAY_INPUT,
    responses={200: {"description": "OK", "schema": GATEWAY}},
    errors=(400, 401, 403, 415),
    role="admin",
)
def put_default_gateway():
    cfg = save_gateway(tenancy.current_project_id(), _input(json_body(), default=None))
    db.session.commit()
    return jsonify(gateway_json(cfg, _is_admin()))


@route(
    "/gateways",
    summary="Every gateway of the project, the default first",
    tag="gateway",
    responses={200: {"description": "OK", "schema": list_of(GATEWAY)}},
    errors=(401,),
)
def list_gateways():
    saved = gateways_of(tenancy.current_project_id()) or [gateway_config(tenancy.current_project_id())]
    return jsonify(
        {
            "results": [gateway_json(cfg, _is_admin()) for cfg in saved],
            "next": None,
            "kinds": [kind_json(k) for k in KINDS],
        }
    )


@route(
    "/gateways",
    ["POST"],
    summary="Add a gateway (is_default false unless it is the project's first)",
    tag="gateway",
    request_schema=GATEWAY_INPUT,
    responses={201: {"description": "Added", "schema": GATEWAY}},
    errors=(400, 401, 403, 415),
    role="admin",
)
def add_gateway():
    cfg = save_gateway(tenancy.current_project_id(), _input(json_body(), default=False), add=True)
    db.session.commit()
    return created(gateway_json(cfg, _is_admin()))


@route(
    "/gateways/<gateway_id>",
    summary="One gateway",
    tag="gateway",
    responses={200: {"description": "OK", "schema": GATEWAY}},
    errors=(401, 404),
)
def get_one_gateway(gateway_id):
    return jsonify(gateway_json(_gateway(gateway_id), _is_admin()))


@route(
    "/gateways/<gateway_id>",
    ["PUT"],
    summary="Change a gateway (secrets left out are kept)",
    tag="gateway",
    request_schema=GATEWAY_INPUT,
    responses={200: {"description": "OK", "schema": GATEWAY}},
    errors=(400, 401, 403, 404, 415),
    role="admin",
)
def put_gateway(gateway_id):
    cfg = _gateway(gateway_id)
    cfg = save_gateway(tenancy.current_project_id(), _input(json_body(), default=None), gateway_id=cfg.id)
    db.session.commit()
    return jsonify(gateway_json(cfg, _is_admin()))


@route(
    "/gateways/<gateway_id>",
    ["DELETE"],
    summary="Remove a gateway (not the default while others remain)",
    tag="gateway",
    responses={204: {"description": "Removed"}},
    errors=(400, 401, 403, 404),
    role="admin",
)
def remove_gateway(gateway_id):
    delete_gateway(tenancy.current_project_id(), _gateway(gateway_id).id)
    db.session.commit()
    return "", 204


@route(
    "/gateways/<gateway_id>/test",
    ["POST"],
    summary="Queue a test message through this gateway; follow it at /messages/<id>",
    tag="gateway",
    request_schema={
        "type": "object",
        "required": ["phone"],
        "properties": {"phone": {"type": "string"}, "text": {"type": "string"}},
    },
    responses={202: {"description": "Queued", "schema": "Message"}},
    errors=(400, 401, 403, 404, 415),
    role="admin",
)
def test_gateway(gateway_id):
    body = json_body()
    cfg = _gateway(gateway_id)
    message_id = testing.send_test(
        cfg.project_id,
        cfg.id,
        get_str(body, "phone", required=True, max_length=40),
        get_str(body, "text", max_length=160),
        g.api_user.id,
    )
    db.session.commit()
    return created(message_json(db.session.get(Message, message_id)), status=202)


@route(
    "/gateways/<gateway_id>/errors",
    summary="The gateway's last 20 errors (when, code, the gateway's words, the message id)",
    tag="gateway",
    responses={200: {"description": "OK"}},
    errors=(401, 404),
)
def gateway_errors(gateway_id):
    cfg = _gateway(gateway_id)
    return jsonify({"results": recent_errors.recent(cfg.project_id, cfg.id), "next": None})
