"""The Telerivet gateway against the fake Telerivet REST API, over real HTTP."""

import base64
import time
import urllib.parse

import pytest
import requests

from messaging.errors import Invalid
from messaging.gateways import telerivet
from messaging.gateways.base import GatewayError, GatewaySettings, WebhookRequest
from messaging.gateways.telerivet import TelerivetGateway, telerivet_session
from tests.fakes.http_receiver import Receiver
from tests.fakes.telerivet_server import FakeTelerivet, inbound_payload, status_payload

API_KEY = "tr-api-key-1"
PROJECT = "PJ" + "a1" * 8
ROUTE = "PN" + "b2" * 8
ROUTE_NUMBER = "+254700000100"
OTHER_ROUTE = "RT" + "c3" * 8
OTHER_NUMBER = "+254700000200"
SECRET = "tr-webhook-secret-1"
TO = "+254711000001"
OTHER_TO = "+254711000002"
CALLBACK = "https://sms.example.org/gateways/telerivet/1/status"


@pytest.fixture
def fake():
    with FakeTelerivet.start(
        api_keys={API_KEY: [PROJECT]},
        routes={ROUTE: ROUTE_NUMBER, OTHER_ROUTE: OTHER_NUMBER},
        webhook_secret=SECRET,
        seed=7,
    ) as server:
        yield server


@pytest.fixture
def tr_app(app, fake):
    """The app, pointed at the fake, inside an app context (its settings restored after)."""
    keys = ("TELERIVET_API_BASE_URL", "SMS_HTTP_TIMEOUT")
    saved = {k: app.config[k] for k in keys if k in app.config}
    app.config["TELERIVET_API_BASE_URL"] = fake.url
    app.config["SMS_HTTP_TIMEOUT"] = 5.0
    try:
        with app.app_context():
            yield app
    finally:
        for key in keys:
            app.config.pop(key, None)
        app.config.update(saved)


def make_gateway(*, api_key=API_KEY, project_id=PROJECT, route_id=ROUTE, webhook_secret=SECRET):
    settings = {"project_id": project_id}
    if route_id:
        settings["route_id"] = route_id
    secrets = {"api_key": api_key}
    if webhook_secret:
        secrets["webhook_secret"] = webhook_secret
    return TelerivetGateway(
        GatewaySettings(
            id=1, project_id=1, kind="telerivet", settings=settings, secrets=secrets, from_numbers=[]
        )
    )


@pytest.fixture
def gateway(tr_app):
    return make_gateway()


def form_request(form, headers=None):
    """A webhook request as the web layer builds it from Telerivet's form POST."""
    form = {k: str(v) for k, v in form.items()}
    return WebhookRequest(
        method="POST",
        url=CALLBACK,
        headers={"content-type": "application/x-www-form-urlencoded", **(headers or {})},
        args={},
        form=form,
        body=urllib.parse.urlencode(form).encode(),
    )


def received_request(entry):
    """A request the local receiver recorded, as a WebhookRequest."""
    form = {k: v[0] for k, v in urllib.parse.parse_qs(entry["body"].decode()).items()}
    return WebhookRequest(
        method="POST", url=CALLBACK, headers=entry["headers"], args={}, form=form, body=entry["body"]
    )


def send_error(gateway, to=TO, body="hello"):
    with pytest.raises(GatewayError) as info:
        gateway.send(to, body, None, CALLBACK)
    return info.value


# -- sending ---------------------------------------------------------------------------------


def test_send_posts_the_message_as_json_with_basic_auth_and_the_callback(gateway, fake):
    result = gateway.send(TO, "Habari, your visit is tomorrow.", None, CALLBACK)

    [msg] = fake.messages
    assert msg["api_key"] == API_KEY
    assert msg["project_id"] == PROJECT
    assert msg["content_type"] == "application/json"
    assert msg["payload"] == {
        "to_number": TO,
        "content": "Habari, your visit is tomorrow.",
        "route_id": ROUTE,
        "status_url": CALLBACK,
        "status_secret": SECRET,
    }
    assert (msg["to"], msg["body"], msg["from"]) == (TO, "Habari, your visit is tomorrow.", ROUTE_NUMBER)
    assert result.sid == msg["id"] and result.sid.startswith("SM")
    assert result.status == "queued"
    assert result.from_number == ROUTE_NUMBER  # the route's phone, told by Telerivet
    assert result.gateway == "telerivet"
    assert result.price is None  # Telerivet knows the price once the message is sent


def test_send_without_route_callback_or_secret_leaves_them_to_telerivet(tr_app, fake):
    gateway = make_gateway(route_id=None, webhook_secret=None)

    result = gateway.send(TO, "hi", None, None)

    [msg] = fake.messages
    assert msg["payload"] == {"to_number": TO, "content": "hi"}
    assert msg["route_id"] == ROUTE  # the project's default route
    assert result.from_number == ROUTE_NUMBER


def test_send_through_another_route_and_without_a_webhook_secret_posts_no_status_secret(tr_app, fake):
    gateway = make_gateway(route_id=OTHER_ROUTE, webhook_secret=None)

    result = gateway.send(TO, "hi", None, CALLBACK)

    [msg] = fake.messages
    assert msg["payload"]["route_id"] == OTHER_ROUTE
    assert msg["payload"]["status_url"] == CALLBACK
    assert "status_secret" not in msg["payload"]
    assert result.from_number == OTHER_NUMBER


def test_one_session_per_key_and_host_keeps_its_connection(tr_app, fake):
    first, second = make_gateway(), make_gateway()

    first.send(TO, "one", None, None)
    second.send(OTHER_TO, "two", None, None)

    assert first.session is second.session is telerivet_session(API_KEY, fake.url)
    assert first.session.trust_env is False
    assert fake.stats["connections"] == 1  # the keep-alive connection was reused
    assert fake.stats["created"] == 2


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("control", "status"), [("error_rate_500", 500), ("error_rate_429", 429)])
def test_server_errors_and_rate_limits_may_pass_later(gateway, fake, control, status):
    setattr(fake, control, 1.0)

    error = send_error(gateway)

    assert error.retryable is True
    assert error.outcome_unknown is False
    assert error.status == status
    assert error.code in ("internal_error", "rate_limit_exceeded")
    assert fake.messages == []


def test_a_503_or_an_html_502_may_pass_later(gateway, fake):
    fake.fail_numbers = {TO: 503, OTHER_TO: 502}

    unavailable = send_error(gateway, TO)
    bad_gateway = send_error(gateway, OTHER_TO)

    assert (unavailable.retryable, unavailable.status, unavailable.code) == (True, 503, "service_unavailable")
    assert (bad_gateway.retryable, bad_gateway.status) == (True, 502)
    assert "502 Bad Gateway" in bad_gateway.message


def test_an_invalid_number_fails_for_good(gateway, fake):
    fake.fail_numbers = {TO: "invalid_to_number"}

    error = send_error(gateway)

    assert error.code == "invalid_number"
    assert error.retryable is False
    assert error.opted_out is False
    assert error.status == 400
    assert TO in error.message


def test_other_refusals_keep_telerivet_code(gateway, fake):
    error = send_error(gateway, TO, body="")

    assert error.code == "invalid_param"
    assert error.retryable is False
    assert "content" in error.message


def test_a_blocked_contact_is_an_opt_out(gateway, fake):
    fake.blocked_numbers = [TO]
    fake.fail_numbers = {OTHER_TO: "send_blocked"}

    answered_null = send_error(gateway, TO)
    refused = send_error(gateway, OTHER_TO)

    assert (answered_null.code, answered_null.opted_out, answered_null.retryable) == (
        "send_blocked",
        True,
        False,
    )
    assert (refused.code, refused.opted_out, refused.retryable) == ("send_blocked", True, False)
    assert fake.messages == []


def test_a_message_answered_failed_fails_for_good(gateway, fake):
    fake.fail_numbers = {TO: "failed", OTHER_TO: "failed_queued"}

    error = send_error(gateway, TO)
    retried_by_telerivet = gateway.send(OTHER_TO, "hello", None, CALLBACK)

    assert error.retryable is False and error.opted_out is False
    assert error.code == "failed"
    assert "Sending failed" in error.message
    assert retried_by_telerivet.status == "failed_queued"  # Telerivet sends it again itself


def test_a_wrong_api_key_is_bad_credentials(tr_app, fake):
    error = send_error(make_gateway(api_key="not-the-key"))

    assert error.code == "bad_credentials"
    assert error.retryable is False
    assert error.status == 401
    assert "API key" in error.message
    assert fake.stats["auth_failed"] == 1


def test_a_project_the_key_may_not_use_fails_for_good(tr_app, fake):
    error = send_error(make_gateway(project_id="PJ" + "9" * 16))

    assert error.code == "not_found"
    assert error.retryable is False


def test_a_hang_is_an_unknown_outcome_and_the_message_can_be_found_after(tr_app, fake):
    tr_app.config["SMS_HTTP_TIMEOUT"] = 1.0
    gateway = make_gateway()
    fake.configure(hang_rate=1.0, hang_seconds=2.0)

    error = send_error(gateway)

    assert error.code == "timeout"
    assert error.retryable is True and error.outcome_unknown is True
    deadline = time.monotonic() + 5
    while not fake.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    [found] = gateway.find_recent(TO, None)
    assert found.sid == fake.messages[0]["id"]  # the sweep can settle it by asking


def test_an_answer_of_another_shape_is_unexpected_with_the_raw_answer(gateway, fake):
    fake.malformed_numbers = {TO: '{"message": "accepted"}', OTHER_TO: "OK thanks"}

    no_id = send_error(gateway, TO)
    not_json = send_error(gateway, OTHER_TO)

    assert no_id.code == "unexpected_answer" and not_json.code == "unexpected_answer"
    assert no_id.retryable is False and not_json.retryable is False
    assert '{"message": "accepted"}' in no_id.message
    assert "OK thanks" in not_json.message


def test_a_refused_connection_never_left(tr_app, fake):
    gateway = make_gateway()
    fake.stop()

    error = send_error(gateway)

    assert error.code == "connection_error"
    assert error.retryable is True
    assert error.outcome_unknown is False


# -- asking --------------------------------------------------------------------------------


def test_fetch_reads_the_message_and_its_later_status(gateway, fake):
    fake.price_per_part = 0.0075
    sent = gateway.send(TO, "hello", None, CALLBACK)
    with Receiver.start() as rx:
        fake.send_status_callback(rx.url + "/status", sent.sid, "not_delivered", error_message="Phone off")

    remote = gateway.fetch(sent.sid)

    assert remote.sid == sent.sid
    assert remote.status == "undelivered"  # in the words the sweep reads
    assert (remote.to, remote.body, remote.from_number) == (TO, "hello", ROUTE_NUMBER)
    assert remote.created_at is not None
    assert (remote.price, remote.price_unit) == ("0.0075", "USD")
    assert fake.stats["fetched"] == 1


def test_fetch_of_an_unknown_or_odd_id_is_none(gateway, fake):
    assert gateway.fetch("SM" + "0" * 16) is None
    assert gateway.fetch("../../secrets") is None
    assert fake.stats["not_found"] == 1  # the odd id never left


def test_find_recent_keeps_the_recipients_messages_newest_first(gateway, fake):
    first = gateway.send(TO, "one", None, None)
    gateway.send(OTHER_TO, "other", None, None)
    second = gateway.send(TO, "two", None, None)

    found = gateway.find_recent(TO, None)

    assert [m.sid for m in found] == [second.sid, first.sid]
    assert [m.body for m in found] == ["two", "one"]
    assert all(m.to == TO and m.status == "queued" for m in found)
    assert [m.sid for m in gateway.find_recent(TO, None, limit=1)] == [second.sid]
    assert gateway.find_recent("+254799999999", None) == []


def test_find_recent_follows_the_pages_of_the_query(gateway, fake, monkeypatch):
    monkeypatch.setattr(telerivet, "SCAN_PAGE_SIZE", 2)
    wanted = gateway.send(TO, "old", None, None)
    for i in range(3):
        gateway.send(OTHER_TO, f"other {i}", None, None)

    found = gateway.find_recent(TO, None)

    assert [m.sid for m in found] == [wanted.sid]
    assert fake.stats["listed"] == 2


# -- webhooks --------------------------------------------------------------------------------


def test_parse_inbound_reads_telerivets_incoming_message_webhook(gateway, fake):
    with Receiver.start() as rx:
        assert fake.send_inbound_sms(rx.url + "/inbound", "+254722000003", ROUTE_NUMBER, "YES 2") == 200
        [entry] = rx.requests
    request = received_request(entry)

    [sms] = gateway.parse_inbound(request)

    assert entry["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert sms.sid == request.form["id"] and sms.sid.startswith("SM")
    assert (sms.from_number, sms.to_number, sms.body) == ("+254722000003", ROUTE_NUMBER, "YES 2")
    assert gateway.verify(request) is True


def test_parse_inbound_prefers_the_e164_sender_and_skips_calls_and_odd_requests(gateway):
    local = form_request(inbound_payload("0722000003", ROUTE_NUMBER, "hi", from_number_e164="+254722000003"))
    call = form_request(inbound_payload("+254722000003", ROUTE_NUMBER, "", message_type="call"))
    no_id = form_request(inbound_payload("+254722000003", ROUTE_NUMBER, "hi", id=""))
    no_sender = form_request(inbound_payload("", ROUTE_NUMBER, "hi"))
    other_event = form_request(inbound_payload("+254722000003", ROUTE_NUMBER, "hi", event="contact_update"))

    [sms] = gateway.parse_inbound(local)

    assert sms.from_number == "+254722000003"
    assert gateway.parse_inbound(call) == []
    assert gateway.parse_inbound(no_id) == []
    assert gateway.parse_inbound(no_sender) == []
    assert gateway.parse_inbound(other_event) == []
    assert gateway.parse_inbound(form_request({})) == []


def test_parse_status_reads_the_status_url_webhook(gateway, fake):
    fake.price_per_part = 0.01
    sent = gateway.send(TO, "hello", None, CALLBACK)
    with Receiver.start() as rx:
        fake.send_status_callback(rx.url + "/status", sent.sid, "delivered")
        [entry] = rx.requests
    request = received_request(entry)

    [report] = gateway.parse_status(request)

    assert request.form["secret"] == SECRET  # the status_secret we sent
    assert gateway.verify(request) is True
    assert (report.sid, report.status, report.error_code, report.opted_out) == (
        sent.sid,
        "delivered",
        None,
        False,
    )
    assert (report.price, report.price_unit) == ("0.01", "USD")


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("not_delivered", "undelivered"),
        ("failed", "failed"),
        ("cancelled", "failed"),
    ],
)
def test_parse_status_maps_telerivets_statuses_to_ours(gateway, status, ours):
    message = {"id": "SM" + "1" * 16, "to": TO, "from": ROUTE_NUMBER, "body": "hi", "status_secret": SECRET}

    [report] = gateway.parse_status(form_request(status_payload(message, status, error_code="")))

    assert report.sid == message["id"]
    assert report.status == ours


def test_parse_status_drops_intermediate_statuses_and_odd_requests(gateway):
    message = {"id": "SM" + "1" * 16, "to": TO, "from": ROUTE_NUMBER, "body": "hi"}

    for status in ("queued", "sending", "failed_queued", "mystery"):
        assert gateway.parse_status(form_request(status_payload(message, status))) == []
    assert gateway.parse_status(form_request(status_payload(message, "sent", id=""))) == []
    assert gateway.parse_status(form_request(status_payload(message, "sent", event="contact_update"))) == []
    assert gateway.parse_status(form_request({})) == []


def test_a_failure_for_a_blocked_contact_is_an_opt_out_report(gateway):
    message = {"id": "SM" + "2" * 16, "to": TO, "from": ROUTE_NUMBER, "body": "hi"}
    blocked = status_payload(message, "failed", error_message="Contact is blocked", error_code="")
    carrier = status_payload(message, "not_delivered", error_message="Handset off", error_code="27")

    [opted_out] = gateway.parse_status(form_request(blocked))
    [undelivered] = gateway.parse_status(form_request(carrier))

    assert (opted_out.status, opted_out.opted_out) == ("failed", True)
    assert (undelivered.status, undelivered.error_code, undelivered.opted_out) == ("undelivered", "27", False)


def test_verify_takes_only_the_configured_secret(gateway, tr_app):
    good = form_request(inbound_payload(TO, ROUTE_NUMBER, "hi", secret=SECRET))
    forged = form_request(inbound_payload(TO, ROUTE_NUMBER, "hi", secret="guess"))
    missing = form_request(
        {k: v for k, v in inbound_payload(TO, ROUTE_NUMBER, "hi").items() if k != "secret"}
    )

    assert gateway.verify(good) is True
    assert gateway.verify(forged) is False
    assert gateway.verify(missing) is False
    assert make_gateway(webhook_secret=None).verify(good) is False  # no secret set: the URL's token decides


def test_verify_takes_the_basic_auth_of_project_webhooks(gateway):
    def basic(user, password):
        return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    form = {k: v for k, v in status_payload({"id": "SM1", "to": TO}, "sent").items() if k != "secret"}

    assert gateway.verify(form_request(form, basic("telerivet", SECRET))) is True
    assert gateway.verify(form_request(form, basic("telerivet", "guess"))) is False
    assert gateway.verify(form_request(form, basic("someone", SECRET))) is False
    assert gateway.verify(form_request(form, {"authorization": "Basic not-base64!"})) is False


# -- settings ------------------------------------------------------------------------------


def test_check_settings_refuses_ids_and_keys_that_cannot_work():
    TelerivetGateway.check_settings({"project_id": PROJECT, "route_id": ROUTE}, {"api_key": API_KEY})

    with pytest.raises(Invalid) as bad_project:
        TelerivetGateway.check_settings({"project_id": "PJ1/../x"}, {"api_key": API_KEY})
    with pytest.raises(Invalid) as bad_route:
        TelerivetGateway.check_settings({"project_id": PROJECT, "route_id": "PN 1"}, {"api_key": API_KEY})
    with pytest.raises(Invalid) as bad_key:
        TelerivetGateway.check_settings({"project_id": PROJECT}, {"api_key": "user:pass"})

    assert (bad_project.value.code, bad_project.value.field) == ("validation_error", "project_id")
    assert bad_route.value.field == "route_id"
    assert bad_key.value.field == "api_key"
    assert bad_key.value.message.startswith("api_key: ")


def test_the_kind_declares_what_it_is():
    fields = {f.name: f for f in TelerivetGateway.fields}

    assert TelerivetGateway.kind == "telerivet"
    assert TelerivetGateway.resolves is False  # by id yes; a timed-out message has none
    assert TelerivetGateway.uses_number_pool is False
    assert set(fields) == {"api_key", "project_id", "route_id", "webhook_secret"}
    assert fields["api_key"].secret and fields["api_key"].required
    assert fields["webhook_secret"].secret and not fields["webhook_secret"].required
    assert fields["project_id"].required and not fields["route_id"].required


def test_the_fake_answers_its_control_endpoints(gateway, fake):
    gateway.send(TO, "hello", None, None)
    http = requests.Session()
    http.trust_env = False  # straight to the loopback fake, whatever the proxy settings

    stats = http.get(fake.url + "/_fake/stats", timeout=5).json()
    listed = http.get(fake.url + "/_fake/messages", timeout=5).json()
    reset = http.post(fake.url + "/_fake/reset", timeout=5).json()
    http.close()

    assert stats["messages"] == 1 and stats["stats"]["created"] == 1
    assert [m["to"] for m in listed] == [TO]
    assert reset == {"reset": True}
    assert fake.messages == []
