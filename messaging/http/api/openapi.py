"""The OpenAPI 3 document, built from the routes as they are declared.

Every API view is registered through ``messaging.http.api.route``, which records its
path, method, summary and schemas here, so the document grows with each
endpoint and cannot drift from the routes.

Every operation lists 400 (the input guard refuses a NUL or a broken character
in any address or query), and every operation with a body lists 413 (a JSON
body over ``MAX_JSON_BYTES``), whatever its own errors are.
"""

import re

_operations: list[dict] = []
_schemas: dict[str, dict] = {}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


def schema(name: str, definition: dict) -> dict:
    """Register a named component schema; returns a ``$ref`` to it."""
    _schemas[name] = definition
    return {"$ref": f"#/components/schemas/{name}"}


def list_of(item_schema: dict) -> dict:
    return {
        "type": "object",
        "required": ["results", "next"],
        "properties": {
            "results": {"type": "array", "items": item_schema},
            "next": {"type": ["string", "null"]},
        },
    }


def record(rule: str, method: str, spec: dict) -> None:
    _operations.append({"rule": rule, "method": method.lower(), **spec})


def _openapi_path(rule: str) -> tuple[str, list[dict]]:
    params = []

    def repl(match):
        conv, name = match.group(1), match.group(2)
        kind = "integer" if conv == "int" else "string"
        params.append({"name": name, "in": "path", "required": True, "schema": {"type": kind}})
        return "{" + name + "}"

    path = re.sub(r"<(?:(\w+):)?(\w+)>", repl, rule)
    return path, params


def document(server_url: str) -> dict:
    paths: dict = {}
    for op in _operations:
        path, path_params = _openapi_path(op["rule"])
        responses = {}
        for status, body in op.get("responses", {}).items():
            description = body.get("description", "OK") if isinstance(body, dict) else "OK"
            content_schema = body.get("schema") if isinstance(body, dict) else None
            entry = {"description": description}
            if content_schema is not None:
                media = body.get("media", "application/json")
                entry["content"] = {media: {"schema": content_schema}}
            responses[str(status)] = entry
        errors = {*op.get("errors", ()), 400} | ({413} if op.get("request") else set())
        for status in sorted(errors):
            responses.setdefault(
                str(status),
                {
                    "description": "Error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            )
        operation = {
            "summary": op.get("summary", ""),
            "operationId": op["endpoint"],
            "tags": [op.get("tag", "api")],
            "parameters": path_params + op.get("params", []),
            "responses": responses,
        }
        if op.get("request"):
            operation["requestBody"] = op["request"]
        if not op.get("auth", True):
            operation["security"] = []
        paths.setdefault(path, {})[op["method"]] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Messaging server API", "version": "1"},
        "servers": [{"url": server_url}],
        "security": [{"TokenAuth": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "TokenAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "Token <key>",
                }
            },
            "schemas": {"Error": ERROR_SCHEMA, **_schemas},
        },
    }
