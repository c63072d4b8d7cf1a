"""The Infobip gateway against the fake Infobip API (tests/fakes/infobip_server.py)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from messaging.errors import Invalid
from messaging.gateways.base import GatewayError, GatewaySettings, WebhookRequest
from messaging.gateways.infobip import InfobipGateway, infobip_session
from messaging.gateways.registry import provider
from messaging.lib import clock
from tests.fakes.http_receiver import Receiver
from tests.fakes.infobip_server import FakeInfobip, delivery_report_payload, inbound_payload

API_KEY = "test-infobip-key"
SENDER = "ACME"
TO = "+254712345678"
CALLBACK = "https://sms.example.org/gateways/infobip/1/status?secret=s3cret"


@pytest.fixture(scope="module")
def fake():
    server = FakeInfobip.start(api_keys=[API_KEY], seed=11, price_per_message=0.0075, currency="EUR")
    yield server
    server.stop()


@pytest.fixture
def ib(app, fake):
    """The fake, reset, inside an app context."""
    fake.reset()
    with app.app_context():
        yield fake


def make_gateway(url: str, *, api_key: str = API_KEY, sender: str = SENDER) -> InfobipGateway:
    return InfobipGateway(
        GatewaySettings(
            id=1,
            project_id=1,
            kind="infobip",
            settings={"base_url": url, "sender": sender},
            secrets={"api_key": api_key},
            from_numbers=[],
        )
    )


@pytest.fixture
def gateway(ib):
    return make_gateway(ib.url)


def webhook(payload=None, *, raw: bytes | None = None, headers: dict | None = None) -> WebhookRequest:
    body = raw if raw is not None else json.dumps(payload).encode()
    return WebhookRequest(
        method="POST",
        url=CALLBACK,
        headers=headers or {"content-type": "application/json"},
        args={"secret": "s3cret"},
        form={},
        body=body,
    )


def send_error(gateway: InfobipGateway, to: str = TO) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        gateway.send(to, "Habari", None, CALLBACK)
    return info.value


# --- the kind ---------------------------------------------------------------------------------


def test_registry_names_the_infobip_gateway_with_its_settings():
    assert provider("infobip") is InfobipGateway
    fields = {f.name: f for f in InfobipGateway.fields}
    assert set(fields) == {"base_url", "api_key", "sender"}
    assert fields["api_key"].secret and not fields["base_url"].secret and not fields["sender"].secret
    assert all(f.required for f in fields.values())
    assert InfobipGateway.resolves is True
    assert InfobipGateway.uses_number_pool is False


@pytest.mark.parametrize(
    "settings",
    [
        {"base_url": "https://xk9q2.api.infobip.com", "sender": "ACME"},
        {"base_url": "https://xk9q2.api.infobip.com/", "sender": "Clinic 24"},
        {"base_url": "http://127.0.0.1:8098", "sender": "+254700000111"},
        {"base_url": "https://api.infobip.com", "sender": "20202"},
    ],
)
def test_check_settings_takes_a_base_url_and_a_sender(app, settings):
    with app.app_context():
        InfobipGateway.check_settings(settings, {"api_key": "k"})


def test_a_private_base_url_is_refused_unless_the_operator_allows_it(app):
    saved = app.config["OUTBOUND_ALLOW_HOSTS"]
    app.config["OUTBOUND_ALLOW_HOSTS"] = []
    try:
        with app.app_context(), pytest.raises(Invalid) as info:
            InfobipGateway.check_settings(
                {"base_url": "http://10.0.0.8:8080", "sender": "ACME"}, {"api_key": "k"}
            )
    finally:
        app.config["OUTBOUND_ALLOW_HOSTS"] = saved
    assert info.value.code == "address_not_allowed" and info.value.field == "base_url"


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"base_url": "xk9q2.api.infobip.com", "sender": "ACME"}, "base_url", "https://"),
        ({"base_url": "ftp://xk9q2.api.infobip.com", "sender": "ACME"}, "base_url", "https://"),
        ({"base_url": "https://", "sender": "ACME"}, "base_url", "https://"),
        ({"base_url": "https://xk9q2.api.infobip.com:port", "sender": "ACME"}, "base_url", "not a URL"),
        ({"base_url": "https://u:p@xk9q2.api.infobip.com", "sender": "ACME"}, "base_url", "without a user"),
        ({"base_url": "https://xk9q2.api.infobip.com?x=1", "sender": "ACME"}, "base_url", "query"),
        ({"base_url": "https://xk9q2.api.infobip.com", "sender": "ACME Clinic Ltd"}, "sender", "11"),
        (
            {"base_url": "https://xk9q2.api.infobip.com", "sender": "+25470000011122233"},
            "sender",
            "16 digits",
        ),
    ],
)
def test_check_settings_refuses_what_cannot_work(app, settings, field, words):
    with app.app_context(), pytest.raises(Invalid) as info:
        InfobipGateway.check_settings(settings, {"api_key": "k"})
    assert info.value.code == "validation_error"
    assert info.value.field == field
    assert info.value.message.startswith(f"{field}: ")
    assert words in info.value.message


# --- sending ----------------------------------------------------------------------------------


def test_send_posts_one_message_with_our_message_id_and_callback(gateway, ib):
    result = gateway.send(TO, "Habari, your clinic visit is tomorrow.", None, CALLBACK)

    [msg] = ib.messages
    assert msg["to"] == "254712345678"  # Infobip's form: no "+"
    assert msg["from"] == SENDER
    assert msg["body"] == "Habari, your clinic visit is tomorrow."
    assert msg["api_key"] == API_KEY  # Authorization: App <key>
    assert msg["notify_url"] == CALLBACK
    assert msg["notify_content_type"] == "application/json"
    assert len(result.sid) == 32 and int(result.sid, 16) >= 0  # a uuid4 hex of ours
    assert result.sid == msg["id"]
    assert result.status == "PENDING_ACCEPTED"
    assert result.from_number == SENDER
    assert result.segments == 1
    assert result.gateway == "infobip"


def test_send_reads_the_parts_and_makes_a_new_message_id_per_call(gateway, ib):
    first = gateway.send(TO, "x" * 200, None, None)
    second = gateway.send(TO, "x" * 200, None, None)

    assert first.segments == 2 and second.segments == 2
    assert first.sid != second.sid
    assert [m["id"] for m in ib.messages] == [first.sid, second.sid]
    assert ib.messages[0]["notify_url"] is None  # no callback asked, none sent


def test_a_numeric_sender_goes_without_its_plus(ib):
    result = make_gateway(ib.url, sender="+254700000111").send(TO, "Hi", None, None)

    assert ib.messages[0]["from"] == "254700000111"
    assert result.from_number == "+254700000111"


def test_sends_reuse_one_kept_connection(gateway, ib):
    gateway.send(TO, "message 0", None, None)
    opened = ib.stats["connections"]  # 0 when an earlier test's connection is still open
    for n in (1, 2):
        make_gateway(ib.url).send(TO, f"message {n}", None, None)

    assert make_gateway(ib.url).session is gateway.session is infobip_session(ib.url, API_KEY)
    assert opened <= 1
    assert ib.stats["connections"] == opened  # no new connection for the later sends
    assert ib.stats["created"] == 3


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("control", "code", "status"),
    [("error_rate_500", "GENERAL_ERROR", 500), ("error_rate_429", "TOO_MANY_REQUESTS", 429)],
)
def test_server_errors_and_throttling_may_pass_later(gateway, ib, control, code, status):
    setattr(ib, control, 1.0)

    exc = send_error(gateway)

    assert (exc.code, exc.status) == (code, status)
    assert exc.retryable is True
    assert exc.outcome_unknown is False and exc.opted_out is False
    assert ib.messages == []


@pytest.mark.parametrize("name", ["REJECTED_DESTINATION", "REJECTED_PREFIX_MISSING", "REJECTED_SOURCE"])
def test_a_rejected_destination_is_permanent(gateway, ib, name):
    ib.fail_numbers = {TO: name}

    exc = send_error(gateway)

    assert exc.code == name
    assert exc.retryable is False and exc.opted_out is False
    assert exc.message  # Infobip's description
    assert ib.messages == [] and [m["status"] for m in ib.rejected] == [name]


@pytest.mark.parametrize("name", ["REJECTED_DND", "REJECTED_DESTINATION_BLOCKLISTED"])
def test_a_blocklisted_recipient_has_opted_out(gateway, ib, name):
    ib.fail_numbers = {TO: name}

    exc = send_error(gateway)

    assert exc.code == name
    assert exc.opted_out is True
    assert exc.retryable is False


@pytest.mark.parametrize(
    "name", ["REJECTED_NOT_ENOUGH_CREDITS", "REJECTED_FLOODING_FILTER", "REJECTED_SYSTEM_ERROR"]
)
def test_refusals_that_may_pass_later_are_retryable(gateway, ib, name):
    ib.fail_numbers = {TO: name}

    exc = send_error(gateway)

    assert exc.code == name
    assert exc.retryable is True and exc.opted_out is False


def test_an_invalid_number_is_refused_by_infobip_and_permanent(gateway, ib):
    exc = send_error(gateway, to="+12")

    assert exc.code == "REJECTED_DESTINATION"
    assert exc.retryable is False


def test_a_bad_request_is_permanent_with_infobips_words(gateway, ib):
    ib.fail_numbers = {TO: "BAD_REQUEST"}

    exc = send_error(gateway)

    assert (exc.code, exc.status, exc.retryable) == ("BAD_REQUEST", 400, False)
    assert "Bad request" in exc.message


def test_a_wrong_api_key_is_bad_credentials(ib):
    exc = send_error(make_gateway(ib.url, api_key="not-the-key"))

    assert exc.code == "bad_credentials"
    assert exc.status == 401
    assert exc.retryable is False
    assert "Invalid login details" in exc.message
    assert ib.stats["auth_failed"] == 1 and ib.messages == []


def test_a_hang_is_an_unknown_outcome_that_find_recent_settles(app, gateway, ib):
    saved = app.config.get("SMS_HTTP_TIMEOUT")
    app.config["SMS_HTTP_TIMEOUT"] = 0.5
    ib.hang_rate, ib.hang_seconds = 1.0, 1.5
    try:
        exc = send_error(gateway)
    finally:
        app.config["SMS_HTTP_TIMEOUT"] = saved
        ib.hang_rate = 0.0

    assert exc.code == "timeout"
    assert exc.outcome_unknown is True and exc.retryable is True
    deadline = time.monotonic() + 5
    while not ib.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    [msg] = ib.messages  # the hang answered late: Infobip took it
    [remote] = gateway.find_recent(TO, None)
    assert remote.sid == msg["id"]
    assert remote.body == "Habari"


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("<html><body>Down for maintenance</body></html>", "not JSON"),
        ('{"bulkId": "2034072219640523072"}', "no status for the message"),
        ('{"messages": [{"to": "254712345678", "messageId": "m1"}]}', "no status for the message"),
        ('{"messages": [{"to": "254712345678", "status": {"groupId": 9}}]}', "unknown status"),
        ('["not", "an", "object"]', "not a JSON object"),
    ],
)
def test_an_answer_in_another_shape_is_unexpected(gateway, ib, answer, why):
    ib.script_raw_answers((200, answer))

    exc = send_error(gateway)

    assert exc.code == "unexpected_answer"
    assert exc.retryable is False
    assert f"({why})" in exc.message
    assert answer in exc.message  # the raw answer is kept


def test_an_unknown_status_group_is_unexpected(gateway, ib):
    ib.script_raw_answers(
        (
            200,
            '{"messages": [{"to": "254712345678", "messageId": "m1", "status": {"groupName": "SOMETHING"}}]}',
        )
    )

    exc = send_error(gateway)

    assert exc.code == "unexpected_answer"
    assert "SOMETHING" in exc.message


def test_a_server_error_page_is_retryable_with_its_text(gateway, ib):
    ib.script_raw_answers((502, "<html>Bad Gateway</html>"))

    exc = send_error(gateway)

    assert (exc.code, exc.status, exc.retryable) == ("502", 502, True)
    assert "Bad Gateway" in exc.message


def test_a_refused_connection_never_left(app):
    with app.app_context():
        exc = send_error(make_gateway("http://127.0.0.1:9"))

    assert exc.code == "connection_error"
    assert exc.retryable is True and exc.outcome_unknown is False


# --- asking Infobip ---------------------------------------------------------------------------


def test_fetch_reads_the_message_from_the_logs(gateway, ib):
    sent = gateway.send(TO, "Your results are ready.", None, CALLBACK)

    remote = gateway.fetch(sent.sid)

    assert remote.sid == sent.sid
    assert remote.status == "sent"
    assert remote.to == TO
    assert remote.from_number == SENDER
    assert remote.body == "Your results are ready."
    assert abs(remote.created_at - clock.now()) < timedelta(seconds=30)
    assert (remote.price, remote.price_unit) == ("0.0075", "EUR")
    assert remote.error_code is None
    assert ib.stats["logs"] == 1


def test_fetch_follows_a_delivery_report_and_knows_no_other_id(gateway, ib):
    sent = gateway.send(TO, "Hello", None, CALLBACK)
    with Receiver.start() as rx:
        assert (
            ib.send_status_callback(rx.url + "/status", sent.sid, "UNDELIVERABLE", "EC_ABSENT_SUBSCRIBER")
            == 200
        )

    remote = gateway.fetch(sent.sid)

    assert remote.status == "undelivered"
    assert remote.error_code == "EC_ABSENT_SUBSCRIBER"
    assert gateway.fetch("0" * 32) is None


def test_fetch_of_an_odd_logs_answer_is_unexpected(gateway, ib):
    ib.script_raw_answers((200, '{"logs": []}'))

    with pytest.raises(GatewayError) as info:
        gateway.fetch("abc")

    assert info.value.code == "unexpected_answer"
    assert '{"logs": []}' in info.value.message


def test_find_recent_lists_the_numbers_messages_newest_first(gateway, ib):
    first = gateway.send(TO, "one", None, None)
    gateway.send("+254799000000", "other", None, None)
    time.sleep(0.01)  # distinct sentAt milliseconds
    second = gateway.send(TO, "two", None, None)

    found = gateway.find_recent(TO, None)
    limited = gateway.find_recent(TO, None, limit=1)

    assert [(m.sid, m.body) for m in found] == [(second.sid, "two"), (first.sid, "one")]
    assert all(m.to == TO for m in found)
    assert [m.sid for m in limited] == [second.sid]
    assert gateway.find_recent("+254700999999", None) == []


def test_find_recent_filters_by_sender(gateway, ib):
    gateway.send(TO, "from acme", None, None)
    make_gateway(ib.url, sender="OTHER").send(TO, "from other", None, None)

    assert [m.body for m in gateway.find_recent(TO, "OTHER")] == ["from other"]


def test_asking_with_a_wrong_key_is_bad_credentials(ib):
    with pytest.raises(GatewayError) as info:
        make_gateway(ib.url, api_key="wrong").fetch("abc")

    assert info.value.code == "bad_credentials"


# --- webhooks ---------------------------------------------------------------------------------

# Infobip's documented delivery report example (SMS API v2).
DOCS_REPORTS = {
    "results": [
        {
            "bulkId": "BULK-ID-123-xyz",
            "messageId": "MESSAGE-ID-123-xyz",
            "to": "41793026727",
            "sentAt": "2019-11-09T16:00:00.000+0000",
            "doneAt": "2019-11-09T16:00:00.000+0000",
            "smsCount": 1,
            "callbackData": "callbackData",
            "price": {"pricePerMessage": 0.01, "currency": "EUR"},
            "status": {
                "groupId": 3,
                "groupName": "DELIVERED",
                "id": 5,
                "name": "DELIVERED_TO_HANDSET",
                "description": "Message delivered to handset",
            },
            "error": {
                "groupId": 0,
                "groupName": "Ok",
                "id": 0,
                "name": "NO_ERROR",
                "description": "No Error",
                "permanent": False,
            },
        },
        {
            "bulkId": "BULK-ID-123-xyz",
            "messageId": "12db39c3-7822-4e72-a3ec-c87442c0ffc5",
            "to": "41793026834",
            "sentAt": "2019-11-09T17:00:00.000+0000",
            "doneAt": "2019-11-09T17:00:00.000+0000",
            "smsCount": 2,
            "price": {"pricePerMessage": 0.01, "currency": "EUR"},
            "status": {
                "groupId": 2,
                "groupName": "UNDELIVERABLE",
                "id": 9,
                "name": "UNDELIVERABLE_NOT_DELIVERED",
                "description": "Message sent not delivered",
            },
            "error": {
                "groupId": 1,
                "groupName": "HANDSET_ERRORS",
                "id": 27,
                "name": "EC_ABSENT_SUBSCRIBER",
                "description": "Absent Subscriber",
                "permanent": False,
            },
        },
    ]
}


def test_parse_status_reads_each_result_of_infobips_report(gateway):
    delivered, undelivered = gateway.parse_status(webhook(DOCS_REPORTS))

    assert (delivered.sid, delivered.status, delivered.error_code) == (
        "MESSAGE-ID-123-xyz",
        "delivered",
        None,
    )
    assert (delivered.price, delivered.price_unit) == ("0.01", "EUR")
    assert delivered.opted_out is False
    assert undelivered.sid == "12db39c3-7822-4e72-a3ec-c87442c0ffc5"
    assert (undelivered.status, undelivered.error_code) == ("undelivered", "EC_ABSENT_SUBSCRIBER")
    assert undelivered.price == "0.02"  # 0.01 per part, 2 parts
    assert undelivered.opted_out is False


@pytest.mark.parametrize(
    ("status", "error", "ours", "code", "opted_out"),
    [
        ("PENDING_ENROUTE", None, "sent", None, False),
        ("DELIVERED_TO_OPERATOR", None, "sent", None, False),
        ("DELIVERED_TO_HANDSET", None, "delivered", None, False),
        ("EXPIRED_EXPIRED", None, "undelivered", "EXPIRED_EXPIRED", False),
        ("EXPIRED_DLR_UNKNOWN", None, "sent", None, False),
        (
            "UNDELIVERABLE_NOT_DELIVERED",
            "EC_UNKNOWN_SUBSCRIBER",
            "undelivered",
            "EC_UNKNOWN_SUBSCRIBER",
            False,
        ),
        (
            "UNDELIVERABLE_NOT_DELIVERED",
            "EC_SC_BLOCKED_BY_END_USER",
            "undelivered",
            "EC_SC_BLOCKED_BY_END_USER",
            True,
        ),
        ("UNDELIVERABLE_REJECTED_OPERATOR", "EC_DEST_ADDRESS_BLACKLISTED", "undelivered", None, True),
        ("REJECTED_NETWORK", None, "failed", "REJECTED_NETWORK", False),
        ("REJECTED_DND", None, "failed", "REJECTED_DND", True),
        ("REJECTED_DESTINATION", "EC_BLACKLISTED_DESTINATIONADDRESS", "failed", None, True),
    ],
)
def test_parse_status_maps_infobips_statuses_to_ours(gateway, status, error, ours, code, opted_out):
    payload = delivery_report_payload("m-1", status, error=error, price_per_message=0.0075)

    [report] = gateway.parse_status(webhook(payload))

    assert (report.sid, report.status) == ("m-1", ours)
    assert report.error_code == (code or error)
    assert report.opted_out is opted_out
    assert (report.price, report.price_unit) == ("0.0075", "EUR")


def test_the_fakes_delivery_report_reaches_the_url_and_parses(gateway, ib):
    sent = gateway.send(TO, "Hello", None, CALLBACK)
    with Receiver.start() as rx:
        status = ib.send_status_callback(rx.url + "/gateways/infobip/1/status", sent.sid, "DELIVERED")
        [posted] = rx.requests

    assert status == 200
    assert posted["headers"]["content-type"] == "application/json"
    [report] = gateway.parse_status(webhook(raw=posted["body"]))
    assert (report.sid, report.status, report.price, report.price_unit) == (
        sent.sid,
        "delivered",
        "0.0075",
        "EUR",
    )


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"<DeliveryReports/>",
        b"[]",
        b'{"deliveryReport": [{"messageId": "1", "status": {"groupName": "DELIVERED"}}]}',
        b'{"results": [{"status": {"groupName": "DELIVERED"}}]}',
        b'{"results": [{"messageId": "1", "status": {"groupName": "UNEXPECTED"}}]}',
        b'{"results": [{"messageId": "1"}, "x", null]}',
        b'{"results": "nope"}',
    ],
)
def test_parse_status_drops_what_it_cannot_read(gateway, body):
    assert gateway.parse_status(webhook(raw=body)) == []


# Infobip's documented inbound message (forwarding format MO_JSON_2).
DOCS_INBOUND = {
    "results": [
        {
            "messageId": "817790313235066447",
            "from": "385916242493",
            "to": "385921004026",
            "text": "QUIZ Correct answer is Paris",
            "cleanText": "Correct answer is Paris",
            "keyword": "QUIZ",
            "receivedAt": "2019-11-09T16:00:00.000+0000",
            "smsCount": 1,
            "price": {"pricePerMessage": 0, "currency": "EUR"},
            "callbackData": "callbackData",
        }
    ],
    "messageCount": 1,
    "pendingMessageCount": 0,
}


def test_parse_inbound_reads_infobips_forwarded_message(gateway):
    [sms] = gateway.parse_inbound(webhook(DOCS_INBOUND))

    assert sms.sid == "817790313235066447"
    assert sms.from_number == "+385916242493"
    assert sms.to_number == "+385921004026"
    assert sms.body == "QUIZ Correct answer is Paris"  # the whole text, keyword included


def test_the_fakes_inbound_message_reaches_the_url_and_parses(gateway, ib):
    with Receiver.start() as rx:
        status = ib.send_inbound_sms(rx.url + "/inbound", "+254711000001", "20202", "STOP please")
        [posted] = rx.requests

    assert status == 200
    [sms] = gateway.parse_inbound(webhook(raw=posted["body"]))
    assert (sms.from_number, sms.to_number, sms.body) == ("+254711000001", "20202", "STOP please")
    assert sms.sid == posted["json"]["results"][0]["messageId"]


def test_parse_inbound_reads_several_and_skips_what_lacks_an_id_or_sender(gateway):
    payload = {
        "results": [
            inbound_payload("254711000001", "254700123456", "one", message_id="a")["results"][0],
            {"messageId": "b", "to": "254700123456", "text": "no sender"},
            {"from": "254711000002", "to": "254700123456", "text": "no id"},
            inbound_payload("254711000003", "254700123456", "two", message_id="c")["results"][0],
        ],
        "messageCount": 4,
        "pendingMessageCount": 0,
    }

    found = gateway.parse_inbound(webhook(payload))

    assert [(s.sid, s.from_number, s.body) for s in found] == [
        ("a", "+254711000001", "one"),
        ("c", "+254711000003", "two"),
    ]


@pytest.mark.parametrize("body", [b"", b"garbage", b"{}", b'{"results": null}', b'{"results": [1, 2]}'])
def test_parse_inbound_of_odd_bodies_is_empty(gateway, body):
    assert gateway.parse_inbound(webhook(raw=body)) == []


def test_verify_refuses_every_request_as_infobip_signs_nothing(gateway):
    signed_looking = webhook(
        DOCS_INBOUND, headers={"content-type": "application/json", "x-signature": "sha256=abc"}
    )

    assert gateway.verify(signed_looking) is False
    assert gateway.verify(webhook(DOCS_REPORTS)) is False
