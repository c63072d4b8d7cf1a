"""The generic HTTP gateway: sending through a described API, reading its answer and its webhooks."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.factories import rows, send
from tests.fakes.http_receiver import Receiver

JSON_BODY = '{"to": "{to}", "message": "{text}", "sender": "{from}"}'


@pytest.fixture
def receiver():
    with Receiver.start() as rx:
        rx.answer_body = json.dumps({"data": {"id": "AGG-1", "state": "QUEUED"}})
        yield rx


@pytest.fixture
def http_gateway(project, receiver):
    response = project.api().put(
        "/api/v1/gateway",
        json={
            "kind": "http",
            "method": "POST",
            "url_template": receiver.url + "/api/send?ref={message_ref}",
            "body_template": JSON_BODY,
            "content_type": "application/json",
            "auth_header": "Authorization: Bearer s3cret-token",
            "id_path": "data.id",
            "status_path": "data.state",
            "ok_values": "queued, accepted",
            "from_numbers": ["+254700000100"],
            "mps": 100,
        },
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_message_goes_as_the_templates_say_with_its_text_escaped(project, http_gateway, receiver, run_jobs):
    text = 'She said "come" \\ at 9\nthen left: ü'
    message_id = send(project, "+254712000401", text)
    run_jobs()
    [request] = receiver.requests
    assert urlsplit(request["path"]).path == "/api/send" and parse_qs(urlsplit(request["path"]).query)["ref"]
    assert request["json"] == {"to": "+254712000401", "message": text, "sender": "+254700000100"}
    assert request["headers"]["authorization"] == "Bearer s3cret-token"
    assert request["headers"]["content-type"].startswith("application/json")
    [row] = rows(project, id=message_id)
    assert row["status"] == "sent" and row["gateway_sid"] == "AGG-1" and row["gateway"] == "http"
    shown = project.api().get("/api/v1/gateway").get_json()
    assert shown["secrets_set"] == ["auth_header"] and "s3cret-token" not in json.dumps(shown)


def test_a_get_gateway_with_a_form_of_the_url_only(project, receiver, run_jobs):
    receiver.answer_body = json.dumps({"messages": [{"message_id": 77}]})
    body = {
        "kind": "http",
        "method": "GET",
        "url_template": receiver.url + "/send?to={to_digits}&text={text}",
        "id_path": "messages.0.message_id",
    }
    assert project.api().put("/api/v1/gateway", json=body).status_code == 200
    message_id = send(project, "+254712000402", "a&b=c d")
    run_jobs()
    [request] = receiver.requests
    assert parse_qs(urlsplit(request["path"]).query) == {"to": ["254712000402"], "text": ["a&b=c d"]}
    assert rows(project, id=message_id)[0]["gateway_sid"] == "77"


@pytest.mark.parametrize(
    "answer, status, code, retried",
    [
        ('{"data": {"id": "X", "state": "REJECTED"}}', 200, "REJECTED", False),  # not an ok value
        ('{"data": {"state": "QUEUED"}}', 200, "unexpected_answer", False),  # no id
        ("<html>busy</html>", 200, "unexpected_answer", False),  # not JSON
        ("overloaded", 503, "503", True),
        ("slow down", 429, "429", True),
        ("no such key", 401, "bad_credentials", False),
        ("bad number", 400, "400", False),
    ],
)
def test_each_kind_of_answer(project, http_gateway, receiver, run_jobs, answer, status, code, retried):
    receiver.answer_body = answer if status == 200 else None
    receiver.script = [status]
    message_id = send(project, "+254712000403", "hello")
    run_jobs()
    [row] = rows(project, id=message_id)
    assert row["error_code"] == code
    if retried:
        assert row["status"] == "queued" and row["next_attempt_at"] is not None
    else:
        assert row["status"] == "failed"
    if code == "unexpected_answer":
        assert answer in row["error_message"]  # the raw answer is kept


def test_a_private_address_is_refused_unless_the_operator_allows_it(app, project):
    saved = app.config["OUTBOUND_ALLOW_HOSTS"]
    app.config["OUTBOUND_ALLOW_HOSTS"] = []
    try:
        body = {"kind": "http", "method": "POST", "url_template": "http://10.1.2.3/send", "id_path": "id"}
        refused = project.api().put("/api/v1/gateway", json=body)
    finally:
        app.config["OUTBOUND_ALLOW_HOSTS"] = saved
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "address_not_allowed"
    assert project.api().get("/api/v1/gateway").get_json()["kind"] == "console"  # nothing saved


def test_settings_that_cannot_work_are_refused(project, receiver):
    api = project.api()
    base = {"kind": "http", "url_template": receiver.url + "/send", "id_path": "id"}
    assert api.put("/api/v1/gateway", json={**base, "method": "DELETE"}).status_code == 400
    get_with_body = api.put("/api/v1/gateway", json={**base, "method": "GET", "body_template": "x={text}"})
    assert get_with_body.status_code == 400
    header = api.put("/api/v1/gateway", json={**base, "method": "POST", "auth_header": "just-a-token"})
    assert header.status_code == 400 and header.get_json()["error"]["details"]["field"] == "auth_header"
    no_id = api.put("/api/v1/gateway", json={"kind": "http", "method": "POST", "url_template": receiver.url})
    assert no_id.status_code == 400


def test_inbound_and_reports_are_read_where_the_settings_say(app, project, receiver, run_jobs):
    receiver.answer_body = lambda count: json.dumps({"data": {"id": f"AGG-{count}"}})
    body = {
        "kind": "http",
        "method": "POST",
        "url_template": receiver.url + "/send",
        "body_template": "to={to}&msg={text}",
        "content_type": "application/x-www-form-urlencoded",
        "id_path": "data.id",
        "inbound_from": "msisdn",
        "inbound_text": "payload.text",
        "inbound_id": "ref",
        "status_id": "ref",
        "status_field": "dlr",
        "delivered_values": "DELIVRD",
        "failed_values": "UNDELIV,REJECTD",
    }
    saved = project.api().put("/api/v1/gateway", json=body).get_json()
    assert "webhook_secret" not in saved  # the secret is only ever in the URLs
    with project.scope():
        from messaging.extensions import db
        from messaging.models import GatewayConfig

        cfg = db.session.get(GatewayConfig, saved["id"])
        query = f"secret={cfg.webhook_secret}"
    client = app.test_client()
    base = f"/gateways/http/{saved['id']}"
    inbound = {"msisdn": "+254712000404", "payload": {"text": "YES"}, "ref": "IN-9"}
    assert client.post(f"{base}/inbound?{query}", json=inbound).status_code == 200
    assert client.post(f"{base}/inbound?{query}", json=inbound).status_code == 200  # a retry
    assert client.post(f"{base}/inbound", json=inbound).status_code == 403
    [row] = rows(project, direction="inbound")
    assert (row["phone"], row["body"], row["gateway_sid"]) == ("+254712000404", "YES", "IN-9")
    # The form body was sent form-encoded; its report is read from a query string.
    message_id = send(project, "+254712000405", "x y")
    run_jobs()
    sent_bodies = [parse_qs(r["body"].decode()) for r in receiver.requests]
    assert {"to": ["+254712000405"], "msg": ["x y"]} in sent_bodies
    sid = rows(project, id=message_id)[0]["gateway_sid"]
    assert client.get(f"{base}/status?{query}&ref={sid}&dlr=ENROUTE").status_code == 200
    assert rows(project, id=message_id)[0]["status"] == "sent"  # on its way: ignored
    assert client.get(f"{base}/status?{query}&ref={sid}&dlr=UNDELIV").status_code == 200
    [done] = rows(project, id=message_id)
    assert done["status"] == "failed" and done["error_code"] == "undeliv"


def test_a_provider_id_given_twice_fails_the_later_message_and_the_job_goes_on(
    project, http_gateway, receiver, run_jobs
):
    # The aggregator answers every request with the same id.
    first = send(project, "+254712000406", "one")
    run_jobs()
    second = send(project, "+254712000407", "two")
    third = send(project, "+254712000408", "three")
    run_jobs()
    by_id = {r["id"]: r for r in rows(project)}
    assert by_id[first]["status"] == "sent" and by_id[first]["gateway_sid"] == "AGG-1"
    for later in (second, third):
        assert by_id[later]["status"] == "failed" and by_id[later]["error_code"] == "unexpected_answer"
        assert "AGG-1" in by_id[later]["error_message"]
