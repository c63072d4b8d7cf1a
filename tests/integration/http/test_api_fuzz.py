"""Fuzz every documented endpoint from the OpenAPI document (schemathesis), then send it hostile input.

- The document lists every API route and method of ``app.url_map``, so fuzzing
  the document is fuzzing the whole API.
- Valid examples (schemathesis' positive mode): never a 5xx, only documented
  status codes, answers that match their schemas.
- Invalid examples (negative mode: wrong types, missing fields, stray values):
  never a 5xx.
- Hostile input to every operation, by hand (what a generator rarely makes):
  ids in other scripts' digits or past BIGINT, a NUL or a lone surrogate in the
  address, the query or any JSON string, JSON nested 5,000 deep, made-up
  cursors and limits: never a 5xx.
Run on SQLite and PostgreSQL (``make test`` runs both); about 30 s each.
"""

import re
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
POSITIVE_EXAMPLES = 20
NEGATIVE_EXAMPLES = 10

HOSTILE_IDS = [
    "\u00b3",  # superscript three: isdigit() is True, int() fails
    "\u0663",  # Arabic-Indic three: int() reads it as 3
    "99999999999999999999999",
    str(2**63),
    "-1",
    "a\x00b",
    "x" * 300,
]
HOSTILE_QUERIES = [
    {"cursor": "garbage"},
    {"cursor": "WzFd"},  # base64 of [1], the old unsigned form
    {"cursor": "a\x00b"},
    {"limit": "\u0663"},
    {"limit": "9" * 5000},
    {"q": "\x00"},
]
DEEP = "[" * 5000 + "]" * 5000


def api_operations(app) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every API route in the app's URL map."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            found |= {(method.lower(), path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def fuzz_operation(operation, headers, mode, max_examples, checks):
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case):
        case.call_and_validate(headers=headers, checks=checks)

    fuzz()


def test_the_document_lists_every_api_operation(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert documented == api_operations(app)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert "400" in operation["responses"], (method, path)  # the input guard may refuse anything


@pytest.mark.parametrize(
    ("mode", "max_examples", "checks"),
    [
        (GenerationMode.POSITIVE, POSITIVE_EXAMPLES, CHECKS),
        (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, [not_a_server_error]),
    ],
    ids=["valid", "invalid"],
)
def test_no_server_errors_and_answers_match_the_document(app, project, mode, max_examples, checks):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Token {project.key}"}
    failures = {}
    operations = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations.add((operation.method.lower(), operation.path))
        try:
            fuzz_operation(operation, headers, mode, max_examples, checks)
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = str(exc)[:1500]
    # Every operation but the document itself, which schemathesis leaves out.
    assert operations == api_operations(app) - {("get", "/api/v1/openapi.json")}
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def hostile_bodies(operation: dict) -> list[str]:
    """Raw JSON bodies: deep, a NUL key, and every documented string field a lone surrogate or a NUL."""
    bodies = [DEEP, '{"a\\u0000": 1}', '{"\\ud800": "x"}']
    content = (operation.get("requestBody") or {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    fields = sorted(schema.get("properties", {}))
    if fields:
        bodies.append("{" + ", ".join(f'"{f}": "x\\ud800"' for f in fields) + "}")
        bodies.append("{" + ", ".join(f'"{f}": "x\\u0000y"' for f in fields) + "}")
    return bodies


def test_hostile_input_to_every_operation_is_never_a_server_error(app, project):
    client = app.test_client()
    doc = client.get("/api/v1/openapi.json").get_json()
    headers = {"Authorization": f"Token {project.key}"}
    server_errors = []

    def call(method, path, **kwargs):
        response = client.open(path, method=method.upper(), headers=headers, **kwargs)
        if response.status_code >= 500:
            server_errors.append(f"{method.upper()} {path!r} {kwargs}: {response.status_code}")

    for template, item in doc["paths"].items():
        names = re.findall(r"{(\w+)}", template)
        plain = re.sub(r"{\w+}", "none", template)
        for method, operation in item.items():
            for raw in HOSTILE_IDS if names else []:
                call(method, re.sub(r"{\w+}", quote(raw, safe=""), template))
            if method == "get":
                for query in HOSTILE_QUERIES:
                    call(method, plain, query_string=query)
            if operation.get("requestBody"):
                for body in hostile_bodies(operation):
                    call(method, plain, data=body, content_type="application/json")
    assert not server_errors, "\n".join(server_errors)
