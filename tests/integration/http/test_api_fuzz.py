"""Fuzz every documented endpoint from the OpenAPI document (schemathesis).

Whatever schemathesis sends, the API must never answer 500, and its answers
must match the documented status codes and schemas.
"""

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def test_no_server_errors_and_answers_match_the_document(app, project):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Token {project.key}"}
    failures = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = str(exc)[:1500]
    assert operations >= 10
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
