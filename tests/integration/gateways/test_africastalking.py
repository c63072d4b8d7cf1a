"""The Africa's Talking gateway against the fake Africa's Talking API (tests/fakes/africastalking_server.py).

The web layer's URL secret for these webhooks is not the gateway's business and is not tested here.
"""

from __future__ import annotations

import time
import urllib.parse

import pytest
import requests

from messaging.errors import Invalid
from messaging.gateways.africastalking import (
    LIVE_BASE_URL,
    SANDBOX_BASE_URL,
    AfricasTalkingGateway,
    api_base_url,
    parse_cost,
)
from messaging.gateways.base import GatewayError, GatewaySettings, WebhookRequest
from tests.fakes.africastalking_server import (
    FakeAfricasTalking,
    delivery_report_payload,
    inbound_payload,
)
from tests.fakes.http_receiver import Receiver

USERNAME = "clinic-app"
API_KEY = "atsk_" + "ab" * 30
SENDER = "CLINIC"
TO = "+254711000001"
STATUS_URL = "https://sms.example.org/gateways/africastalking/1/status?token=s3cret"


@pytest.fixture
def fake():
    with FakeAfricasTalking.start(accounts={USERNAME: API_KEY}, seed=11, hang_seconds=1.5) as server:
        yield server


@pytest.fixture
def at_app(app, fake):
    keys = ("AFRICASTALKING_API_BASE_URL", "SMS_HTTP_TIMEOUT")
    saved = {k: app.config.get(k) for k in keys}
    app.config["AFRICASTALKING_API_BASE_URL"] = fake.url
    app.config["SMS_HTTP_TIMEOUT"] = 5.0
    try:
        with app.app_context():
            yield app
    finally:
        app.config.update(saved)


def gateway(api_key: str = API_KEY, **settings) -> AfricasTalkingGateway:
    values = {"username": USERNAME, "sender_id": SENDER, **settings}
    return AfricasTalkingGateway(
        GatewaySettings(
            id=1,
            project_id=1,
            kind="africastalking",
            settings=values,
            secrets={"api_key": api_key},
            from_numbers=[],
        )
    )


def send_error(gw: AfricasTalkingGateway, to: str = TO, body: str = "Hello") -> GatewayError:
    with pytest.raises(GatewayError) as info:
        gw.send(to, body, None, STATUS_URL)
    return info.value


def webhook(form: dict[str, str], url: str = STATUS_URL) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url=url,
        headers={"content-type": "application/x-www-form-urlencoded", "user-agent": "AfricasTalking/1.0"},
        args={},
        form=dict(form),
        body=urllib.parse.urlencode(form).encode(),
    )


def received_webhook(entry: dict) -> WebhookRequest:
    """What the web layer would build from a request the receiver recorded."""
    form = {k: v[0] for k, v in urllib.parse.parse_qs(entry["body"].decode(), keep_blank_values=True).items()}
    return WebhookRequest(
        method="POST", url=entry["path"], headers=entry["headers"], args={}, form=form, body=entry["body"]
    )


# -- the gateway kind ----------------------------------------------------------


def test_the_kind_declares_its_settings_and_abilities():
    fields = {f.name: f for f in AfricasTalkingGateway.fields}
    assert AfricasTalkingGateway.kind == "africastalking"
    assert set(fields) == {"username", "api_key", "sender_id"}
    assert fields["username"].required and fields["api_key"].required and not fields["sender_id"].required
    assert fields["api_key"].secret and not fields["username"].secret
    assert AfricasTalkingGateway.resolves is False
    assert AfricasTalkingGateway.uses_number_pool is False
    assert AfricasTalkingGateway.inbound_answer == ("", "text/plain")


@pytest.mark.parametrize("sender", ["CLINIC", "My Clinic", "20880", "+27820000000", "A-B.C_D&E"])
def test_check_settings_takes_sender_ids_short_codes_and_numbers(sender):
    AfricasTalkingGateway.check_settings({"username": USERNAME, "sender_id": sender}, {"api_key": API_KEY})
    AfricasTalkingGateway.check_settings({"username": USERNAME}, {})


@pytest.mark.parametrize("sender", ["TOOLONGSENDERID", "12", "HI!", "+1234567890123456"])
def test_check_settings_refuses_a_sender_id_that_cannot_work(sender):
    with pytest.raises(Invalid) as info:
        AfricasTalkingGateway.check_settings({"username": USERNAME, "sender_id": sender}, {})
    assert info.value.code == "validation_error"
    assert info.value.field == "sender_id"
    assert info.value.message.startswith("sender_id: ")


def test_check_settings_refuses_a_username_with_spaces():
    with pytest.raises(Invalid) as info:
        AfricasTalkingGateway.check_settings({"username": "my app"}, {})
    assert info.value.field == "username"


def test_the_api_host_is_the_setting_else_sandbox_or_live_by_username(app):
    saved = app.config.get("AFRICASTALKING_API_BASE_URL")
    try:
        with app.app_context():
            app.config["AFRICASTALKING_API_BASE_URL"] = ""
            assert api_base_url("sandbox") == SANDBOX_BASE_URL == "https://api.sandbox.africastalking.com"
            assert api_base_url(USERNAME) == LIVE_BASE_URL == "https://api.africastalking.com"
            app.config["AFRICASTALKING_API_BASE_URL"] = "http://127.0.0.1:9/"
            assert api_base_url("sandbox") == "http://127.0.0.1:9"
    finally:
        app.config["AFRICASTALKING_API_BASE_URL"] = saved


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        ("KES 0.8000", ("0.8000", "KES")),
        ("UGX 27.0000", ("27.0000", "UGX")),
        ("0", (None, None)),
        (None, (None, None)),
    ],
)
def test_cost_is_read_as_price_and_currency(cost, expected):
    assert parse_cost(cost) == expected


# -- sending -------------------------------------------------------------------


def test_send_posts_the_real_form_and_reads_the_recipient(at_app, fake):
    result = gateway().send(TO, "Your visit is on Monday", None, STATUS_URL)

    [msg] = fake.messages
    assert msg["to"] == TO
    assert msg["body"] == "Your visit is on Monday"
    assert msg["from"] == SENDER
    assert msg["username"] == USERNAME
    assert msg["headers"]["apikey"] == API_KEY
    assert msg["headers"]["accept"] == "application/json"
    assert msg["headers"]["content-type"] == "application/x-www-form-urlencoded"
    # Africa's Talking takes no per-message callback: nothing but the four fields is posted.
    assert set(msg["form"]) == {"username", "to", "message", "from"}
    assert STATUS_URL not in str(msg["form"])

    assert result.sid == msg["id"] and result.sid.startswith("ATXid_")
    assert result.status == "sent"
    assert result.from_number == SENDER
    assert result.segments == 1
    assert result.gateway == "africastalking"
    assert (result.price, result.price_unit) == ("0.8000", "KES")


def test_send_without_a_sender_id_lets_africas_talking_pick(at_app, fake):
    result = gateway(sender_id="").send(TO, "x" * 200, None, None)
    [msg] = fake.messages
    assert "from" not in msg["form"] and msg["from"] is None
    assert result.from_number is None
    assert result.segments == 2
    assert (result.price, result.price_unit) == ("1.6000", "KES")


def test_sessions_keep_their_connection_across_sends(at_app, fake):
    for n in range(3):
        gateway().send(f"+25471100010{n}", "hi", None, None)
    # A second gateway object for the same credentials shares the process's session.
    gateway().send("+254711000109", "hi", None, None)
    assert fake.stats["created"] == 4
    assert fake.stats["connections"] == 1


@pytest.mark.parametrize(("control", "status"), [("error_rate_500", 500), ("error_rate_429", 429)])
def test_server_errors_and_rate_limits_are_retryable(at_app, fake, control, status):
    fake.configure(**{control: 1.0})
    error = send_error(gateway())
    assert error.retryable is True
    assert error.outcome_unknown is False
    assert error.opted_out is False
    assert error.status == status
    assert error.code == str(status)
    assert fake.messages == []


@pytest.mark.parametrize(
    ("code", "name"),
    [(403, "InvalidPhoneNumber"), (401, "RiskHold"), (407, "CouldNotRoute"), (502, "RejectedByGateway")],
)
def test_a_recipient_refusal_is_permanent(at_app, fake, code, name):
    fake.fail_numbers = {TO: code}
    error = send_error(gateway())
    assert error.code == name
    assert error.retryable is False
    assert error.opted_out is False
    assert f"statusCode {code}" in error.message
    assert fake.stats["failed_number"] == 1 and fake.messages == []


@pytest.mark.parametrize(
    ("code", "name"), [(500, "InternalServerError"), (501, "GatewayError"), (405, "InsufficientBalance")]
)
def test_a_recipient_refusal_that_may_pass_later_is_retryable(at_app, fake, code, name):
    fake.fail_numbers = {TO: name}
    error = send_error(gateway())
    assert error.code == name
    assert error.retryable is True
    assert error.opted_out is False
    assert error.outcome_unknown is False


def test_a_blacklisted_recipient_is_an_opt_out(at_app, fake):
    fake.fail_numbers = {TO: 406}
    error = send_error(gateway())
    assert error.code == "UserInBlacklist"
    assert error.opted_out is True
    assert error.retryable is False


def test_a_nigerian_do_not_disturb_rejection_is_permanent_but_no_opt_out(at_app, fake):
    # Africa's Talking answers 409 for a promotional sender ID between 8 PM and 8 AM (NCC rule):
    # it says nothing about the recipient's consent.
    fake.fail_numbers = {"+2348030000001": 409}
    error = send_error(gateway(), to="+2348030000001")
    assert error.code == "DoNotDisturbRejection"
    assert error.opted_out is False
    assert error.retryable is False
    assert "8 PM" in error.message


def test_an_unregistered_sender_id_is_refused_with_no_recipient(at_app, fake):
    fake.sender_ids = {"OTHER"}
    error = send_error(gateway())
    assert error.code == "InvalidSenderId"
    assert error.retryable is False
    assert fake.stats["invalid_sender"] == 1 and fake.messages == []


def test_a_refusal_named_only_in_the_message_is_read_like_a_recipient_one(at_app, fake):
    body = '{"SMSMessageData":{"Message":"InsufficientBalance","Recipients":[]}}'
    fake.raw_answers = {TO: (201, body)}
    error = send_error(gateway())
    assert error.code == "InsufficientBalance"
    assert error.retryable is True


def test_wrong_credentials_are_bad_credentials(at_app, fake):
    error = send_error(gateway(api_key="atsk_wrong"))
    assert error.code == "bad_credentials"
    assert error.retryable is False
    assert error.status == 401
    assert "username or API key" in error.message
    assert "The supplied authentication is invalid" in error.message
    assert fake.stats["auth_failed"] == 1


def test_a_hang_is_an_unknown_outcome_and_the_message_still_arrives(at_app, fake):
    at_app.config["SMS_HTTP_TIMEOUT"] = 0.4
    fake.hang_rate = 1.0
    error = send_error(gateway())
    assert error.code == "timeout"
    assert error.outcome_unknown is True
    assert error.retryable is True
    deadline = time.monotonic() + 5
    while not fake.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m["to"] for m in fake.messages] == [TO]
    assert fake.stats["hung"] == 1


def test_a_refused_connection_never_left(at_app, fake):
    fake.stop()
    error = send_error(gateway())
    assert error.code == "connection_error"
    assert error.retryable is True
    assert error.outcome_unknown is False


@pytest.mark.parametrize(
    "body",
    [
        "<html><body>Bad gateway page</body></html>",
        '{"SMSMessageData": {"Message": "Sent to 1/1"}}',
        '{"SMSMessageData": {"Recipients": [{"number": "+254711000001", "statusCode": "soon"}]}}',
        '{"SMSMessageData": {"Recipients": [{"number": "+254711000001", "statusCode": 101, '
        '"messageId": "None"}]}}',
        '{"data": []}',
        "[]",
    ],
)
def test_an_answer_in_an_unexpected_shape_is_unexpected_answer(at_app, fake, body):
    fake.raw_answers = {TO: (201, body)}
    error = send_error(gateway())
    assert error.code == "unexpected_answer"
    assert error.retryable is False
    assert body in error.message


def test_a_client_error_that_is_not_json_is_permanent(at_app, fake):
    fake.raw_answers = {TO: (400, "Request is missing required form field 'to'")}
    error = send_error(gateway())
    assert error.code == "400"
    assert error.retryable is False
    assert "missing required form field" in error.message


def test_the_answer_for_another_number_is_not_taken(at_app, fake):
    body = (
        '{"SMSMessageData": {"Recipients": ['
        '{"number": "+254700000001", "statusCode": 101, "messageId": "ATXid_a", "cost": "KES 0.8000"},'
        '{"number": "+254700000002", "statusCode": 101, "messageId": "ATXid_b", "cost": "KES 0.8000"}]}}'
    )
    fake.raw_answers = {TO: (201, body)}
    error = send_error(gateway())
    assert error.code == "unexpected_answer"


# -- webhooks ------------------------------------------------------------------


def test_inbound_messages_are_read_from_the_real_form(at_app):
    # The form as Africa's Talking documents and sends it (nyaruka/courier's tests use the same).
    form = {
        "linkId": "03090445075804249226",
        "text": "Msg",
        "to": "21512",
        "id": "ec9adc86-51d5-4bc8-8eb0-d8ab0bb53dc3",
        "date": "2017-05-03T06:04:45Z",
        "from": "+254791541111",
        "networkCode": "63902",
    }
    [sms] = gateway().parse_inbound(webhook(form))
    assert sms.sid == "ec9adc86-51d5-4bc8-8eb0-d8ab0bb53dc3"
    assert sms.from_number == "+254791541111"
    assert sms.to_number == "21512"
    assert sms.body == "Msg"


def test_inbound_without_an_id_or_a_sender_is_dropped(at_app):
    gw = gateway()
    full = inbound_payload("+254711000001", "21512", "hello")
    assert len(gw.parse_inbound(webhook(full))) == 1
    assert gw.parse_inbound(webhook({k: v for k, v in full.items() if k != "id"})) == []
    assert gw.parse_inbound(webhook({k: v for k, v in full.items() if k != "from"})) == []
    assert gw.parse_inbound(webhook({})) == []


def test_an_inbound_message_with_no_text_has_an_empty_body(at_app):
    form = inbound_payload("+254711000001", "21512", "")
    del form["text"]
    [sms] = gateway().parse_inbound(webhook(form))
    assert sms.body == ""


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("Sent", "sent"),
        ("Submitted", "sent"),
        ("Buffered", "sent"),
        ("Success", "delivered"),
        ("Failed", "undelivered"),
        ("Rejected", "undelivered"),
        ("AbsentSubscriber", "undelivered"),
        ("Expired", "undelivered"),
    ],
)
def test_delivery_reports_map_to_our_statuses(at_app, status, ours):
    form = delivery_report_payload("ATXid_dda018a640edfcc5d2ce455de3e4a6e7", status, phone_number=TO)
    [report] = gateway().parse_status(webhook(form))
    assert report.sid == "ATXid_dda018a640edfcc5d2ce455de3e4a6e7"
    assert report.status == ours
    assert report.error_code is None
    assert report.opted_out is False


def test_a_failure_reason_is_kept_and_a_blacklist_is_an_opt_out(at_app):
    gw = gateway()
    blocked = delivery_report_payload("ATXid_1", "Failed", phone_number=TO, failure_reason="UserInBlackList")
    [report] = gw.parse_status(webhook(blocked))
    assert (report.status, report.error_code, report.opted_out) == ("undelivered", "UserInBlackList", True)

    other = delivery_report_payload("ATXid_2", "Rejected", phone_number=TO, failure_reason="DeliveryFailure")
    [report] = gw.parse_status(webhook(other))
    assert (report.status, report.error_code, report.opted_out) == ("undelivered", "DeliveryFailure", False)

    dnd = delivery_report_payload("ATXid_3", "Rejected", failure_reason="DoNotDisturbRejection")
    [report] = gw.parse_status(webhook(dnd))
    assert report.opted_out is False


def test_unknown_statuses_and_reports_without_an_id_are_dropped(at_app):
    gw = gateway()
    assert gw.parse_status(webhook({"id": "ATXid_1", "status": "Borked"})) == []
    assert gw.parse_status(webhook({"id": "ATXid_1"})) == []
    assert gw.parse_status(webhook({"status": "Success"})) == []
    assert gw.parse_status(webhook({})) == []


def test_webhooks_are_never_verified_by_the_gateway(at_app):
    # Africa's Talking signs nothing: our layer requires the secret in the URL instead.
    gw = gateway()
    form = delivery_report_payload("ATXid_1", "Success")
    assert gw.verify(webhook(form)) is False
    forged = webhook(form)
    forged.headers["x-africastalking-signature"] = "anything"
    forged.headers["apikey"] = API_KEY
    assert gw.verify(forged) is False


def test_the_fakes_webhooks_are_what_the_gateway_reads(at_app, fake):
    gw = gateway()
    with Receiver.start() as rx:
        assert (
            fake.send_inbound_sms(rx.url + "/gateways/africastalking/1/inbound", TO, "21512", "Habari") == 200
        )
        sent = gw.send(TO, "Hello", None, None)
        assert (
            fake.send_status_callback(
                rx.url + "/status", sent.sid, "Failed", failure_reason="UserInBlacklist"
            )
            == 200
        )
        inbound, status = rx.requests

    [sms] = gw.parse_inbound(received_webhook(inbound))
    assert (sms.from_number, sms.to_number, sms.body) == (TO, "21512", "Habari")
    assert inbound["headers"]["content-type"] == "application/x-www-form-urlencoded"

    [report] = gw.parse_status(received_webhook(status))
    assert report.sid == sent.sid
    assert (report.status, report.error_code, report.opted_out) == ("undelivered", "UserInBlacklist", True)
    assert received_webhook(status).form["phoneNumber"] == TO
    assert fake.message(sent.sid)["status"] == "Failed"


def test_the_fake_reports_delivery_to_its_dashboard_url(at_app, fake):
    gw = gateway()
    with Receiver.start() as rx:
        fake.configure(
            auto_callbacks=True,
            delivery_report_url=rx.url + "/status",
            undeliverable_numbers={"+254711000002": "UserInBlacklist"},
        )
        ok = gw.send(TO, "one", None, None)
        blocked = gw.send("+254711000002", "two", None, None)
        assert fake.wait_for_callbacks(5.0)
        reports = {r.sid: r for entry in rx.requests for r in gw.parse_status(received_webhook(entry))}
    assert reports[ok.sid].status == "delivered"
    assert reports[blocked.sid].status == "undelivered" and reports[blocked.sid].opted_out is True
    assert fake.stats["callbacks_sent"] == 2


def test_the_fake_answers_its_control_endpoints(fake):
    with requests.Session() as http:
        http.trust_env = False
        form = {"username": USERNAME, "to": TO, "message": "hi"}
        answer = http.post(
            fake.url + "/version1/messaging",
            data=form,
            headers={"apiKey": API_KEY, "Accept": "application/json"},
        )
        assert answer.status_code == 201
        assert answer.json()["SMSMessageData"]["Recipients"][0]["statusCode"] == 101
        xml = http.post(fake.url + "/version1/messaging", data=form, headers={"apiKey": API_KEY})
        assert xml.text.startswith("<?xml") and "<statusCode>101</statusCode>" in xml.text

        stats = http.get(fake.url + "/_fake/stats").json()
        assert stats["messages"] == 2 and stats["stats"]["created"] == 2
        assert [m["to"] for m in http.get(fake.url + "/_fake/messages").json()] == [TO, TO]
        assert http.post(fake.url + "/_fake/reset").json() == {"reset": True}
    assert fake.messages == [] and fake.stats["created"] == 0
