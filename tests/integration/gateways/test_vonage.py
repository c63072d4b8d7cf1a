"""The Vonage gateway against the fake Vonage SMS API, and Vonage's webhooks as Vonage sends them."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from messaging.errors import Invalid
from messaging.gateways.base import GatewayError, GatewaySettings, WebhookRequest
from messaging.gateways.vonage import VonageGateway
from messaging.lib import clock
from tests.fakes.vonage_server import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    FakeVonage,
    inbound_params,
    sign_params,
    status_params,
)

POOL = ["+447700900001", "+447700900002"]
TO = "+447700900123"
CALLBACK = "https://sms.example.org/gateways/vonage/1/status"
SIG_SECRET = "fake-signature-secret"


@pytest.fixture
def fake():
    with FakeVonage.start(seed=7, hang_seconds=2.0) as server:
        yield server


@pytest.fixture
def on_fake(app, fake):
    """An app context pointed at the fake, restored afterwards."""
    saved = {k: app.config.get(k) for k in ("VONAGE_API_BASE_URL", "SMS_HTTP_TIMEOUT")}
    app.config.update(VONAGE_API_BASE_URL=fake.url, SMS_HTTP_TIMEOUT=5.0)
    with app.app_context():
        yield app
    app.config.update(saved)


def gateway(api_secret=DEFAULT_API_SECRET, signature_secret=None, gateway_id=1) -> VonageGateway:
    secrets = {"api_secret": api_secret}
    if signature_secret:
        secrets["signature_secret"] = signature_secret
    return VonageGateway(
        GatewaySettings(
            id=gateway_id,
            project_id=1,
            kind="vonage",
            settings={"api_key": DEFAULT_API_KEY},
            secrets=secrets,
            from_numbers=list(POOL),
        )
    )


def request_of(params: dict, method: str = "POST", url: str = CALLBACK) -> WebhookRequest:
    """A webhook as the web layer hands it over: GET query, POST form or POST-JSON."""
    if method == "GET":
        return WebhookRequest("GET", url + "?" + urllib.parse.urlencode(params), {}, dict(params), {}, b"")
    if method == "POST-JSON":
        body = json.dumps(params).encode()
        return WebhookRequest("POST", url, {"content-type": "application/json"}, {}, {}, body)
    body = urllib.parse.urlencode(params).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return WebhookRequest("POST", url, headers, {}, dict(params), body)


def send_error(gw: VonageGateway, to: str = TO, body: str = "Hello") -> GatewayError:
    with pytest.raises(GatewayError) as info:
        gw.send(to, body, POOL[0], CALLBACK)
    return info.value


# -- sending -----------------------------------------------------------------


def test_send_posts_vonage_form_and_reads_the_answer(on_fake, fake):
    result = gateway().send(TO, "Hello from the clinic", POOL[0], CALLBACK)

    [msg] = fake.messages
    assert msg["to"] == "447700900123" and msg["from"] == "447700900001"  # E.164 without "+"
    assert msg["body"] == "Hello from the clinic" and msg["type"] == "text"
    assert msg["api_key"] == DEFAULT_API_KEY and msg["auth"] == "body" and msg["encoding"] == "form"
    assert msg["callback"] == CALLBACK and msg["status_report_req"] == "1"
    assert result.sid == msg["id"]
    assert result.status == "accepted"
    assert result.from_number == POOL[0]
    assert result.segments == 1
    assert result.gateway == "vonage"
    assert (result.price, result.price_unit) == ("0.03330000", "EUR")


def test_send_without_callback_leaves_the_dashboard_receipt_url(on_fake, fake):
    gateway().send(TO, "Hi", POOL[1], None)
    [msg] = fake.messages
    assert msg["callback"] is None and msg["status_report_req"] is None
    assert msg["from"] == "447700900002"


def test_non_gsm_text_goes_as_unicode(on_fake, fake):
    result = gateway().send(TO, "Habari 😊", POOL[0], None)
    [msg] = fake.messages
    assert msg["type"] == "unicode" and msg["body"] == "Habari 😊"
    assert result.segments == 1


def test_long_text_is_one_sid_with_every_part_counted_and_priced(on_fake, fake):
    result = gateway().send(TO, "x" * 200, POOL[0], CALLBACK)
    [msg] = fake.messages
    assert len(msg["part_ids"]) == 2
    assert result.sid == msg["part_ids"][0]
    assert result.segments == 2
    assert result.price == "0.06660000"


def test_no_sender_given_takes_a_pool_number(on_fake, fake):
    result = gateway().send(TO, "Hi", None, None)
    [msg] = fake.messages
    assert result.from_number in POOL
    assert "+" + msg["from"] == result.from_number


def test_no_sender_at_all_is_permanent(on_fake, fake):
    gw = VonageGateway(
        GatewaySettings(
            id=1,
            project_id=1,
            kind="vonage",
            settings={"api_key": DEFAULT_API_KEY},
            secrets={"api_secret": DEFAULT_API_SECRET},
        )
    )
    with pytest.raises(GatewayError) as info:
        gw.send(TO, "Hi", None, None)
    assert info.value.code == "no_sender" and info.value.retryable is False
    assert fake.stats["requests"] == 0


# -- errors ------------------------------------------------------------------


@pytest.mark.parametrize(("control", "status"), [("error_rate_500", 500), ("error_rate_429", 429)])
def test_http_5xx_and_429_may_pass_later(on_fake, fake, control, status):
    fake.configure(**{control: 1.0})
    err = send_error(gateway())
    assert err.retryable is True and err.outcome_unknown is False
    assert err.status == status and err.code == str(status)
    assert fake.messages == []


@pytest.mark.parametrize("status", [1, 5, 9])
def test_try_later_statuses_are_retryable(on_fake, fake, status):
    fake.fail_numbers = {TO: status}
    err = send_error(gateway())
    assert err.code == str(status)
    assert err.retryable is True and err.opted_out is False
    assert f"status {status}" in err.message


def test_throttled_keeps_vonage_words(on_fake, fake):
    fake.fail_numbers = {TO: 1}
    err = send_error(gateway())
    assert "Throttled" in err.message and "Throughput Rate Exceeded" in err.message


@pytest.mark.parametrize("status", [3, 6, 12, 15, 29, 33])
def test_refusals_of_the_message_are_permanent(on_fake, fake, status):
    fake.fail_numbers = {TO: status}
    err = send_error(gateway())
    assert err.code == str(status)
    assert err.retryable is False and err.opted_out is False
    assert fake.stats["failed_number"] == 1 and fake.messages == []


def test_invalid_number_refused_by_vonage_is_permanent(on_fake, fake):
    err = send_error(gateway(), to="+44 7700")  # not digits once the "+" is gone
    assert err.code == "3" and err.retryable is False
    assert "Invalid to address" in err.message


def test_barred_number_is_an_opt_out(on_fake, fake):
    fake.fail_numbers = {TO: 7}
    err = send_error(gateway())
    assert err.opted_out is True and err.retryable is False
    assert err.code == "7"


def test_wrong_secret_is_bad_credentials(on_fake, fake):
    err = send_error(gateway(api_secret="not-the-secret"))
    assert err.code == "bad_credentials" and err.retryable is False
    assert "Bad Credentials" in err.message
    assert fake.stats["auth_failed"] == 1


def test_account_refusing_the_api_secret_is_bad_credentials(on_fake, fake):
    fake.fail_numbers = {TO: 32}
    err = send_error(gateway())
    assert err.code == "bad_credentials" and err.retryable is False


def test_hang_is_an_unknown_outcome_and_vonage_still_took_it(app, on_fake, fake):
    app.config["SMS_HTTP_TIMEOUT"] = 0.5
    fake.configure(hang_rate=1.0, hang_seconds=1.5)
    err = send_error(gateway())
    assert err.code == "timeout"
    assert err.outcome_unknown is True and err.retryable is True
    deadline = time.monotonic() + 5
    while not fake.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m["to"] for m in fake.messages] == ["447700900123"]
    assert fake.stats["hung"] == 1


def test_refused_connection_never_left(app, on_fake):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.config["VONAGE_API_BASE_URL"] = f"http://127.0.0.1:{port}"
    err = send_error(gateway())
    assert err.code == "connection_error"
    assert err.retryable is True and err.outcome_unknown is False


@pytest.mark.parametrize(
    "raw",
    [
        "<html><body>Bad gateway page</body></html>",
        '{"message-count": "1"}',
        '{"message-count": "1", "messages": [{"message-id": "0A0000001"}]}',
        '{"message-count": "1", "messages": [{"status": "0"}]}',
        '["not", "an", "object"]',
    ],
)
def test_unexpected_answer_keeps_the_raw_text(on_fake, fake, raw):
    fake.raw_answers = {TO: (200, raw)}
    err = send_error(gateway())
    assert err.code == "unexpected_answer" and err.retryable is False
    assert raw in err.message


def test_partly_refused_long_message_is_sent(on_fake, fake):
    answer = {
        "message-count": "2",
        "messages": [
            {"to": "447700900123", "message-id": "0A00000000000001", "status": "0", "message-price": "0.03"},
            {"to": "447700900123", "status": "5", "error-text": "Internal Error"},
        ],
    }
    fake.raw_answers = {TO: (200, json.dumps(answer))}
    result = gateway().send(TO, "x" * 200, POOL[0], None)
    assert result.sid == "0A00000000000001"
    assert result.segments == 2 and result.price == "0.03"


def test_vonage_has_no_lookup():
    assert VonageGateway.resolves is False
    assert VonageGateway.uses_number_pool is True


def test_check_settings_refuses_keys_that_cannot_work():
    with pytest.raises(Invalid) as info:
        VonageGateway.check_settings({"api_key": "abcd 1234"}, {"api_secret": "s"})
    assert info.value.field == "api_key" and info.value.code == "validation_error"
    with pytest.raises(Invalid) as info:
        VonageGateway.check_settings({"api_key": "abcd1234"}, {"api_secret": "sec ret"})
    assert info.value.field == "api_secret"
    VonageGateway.check_settings({"api_key": "abcd1234"}, {"api_secret": "secret", "signature_secret": "x"})


def test_fields_declare_the_secrets():
    fields = {f.name: f for f in VonageGateway.fields}
    assert set(fields) == {"api_key", "api_secret", "signature_secret"}
    assert fields["api_secret"].secret and fields["signature_secret"].secret
    assert fields["api_key"].required and not fields["signature_secret"].required


# -- delivery receipts -------------------------------------------------------


@pytest.mark.parametrize(
    ("vonage_status", "ours"),
    [
        ("delivered", "delivered"),
        ("accepted", "sent"),
        ("buffered", "sent"),
        ("expired", "undelivered"),
        ("failed", "undelivered"),
        ("rejected", "failed"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "POST-JSON"])
def test_receipts_map_to_our_statuses(on_fake, vonage_status, ours, method):
    params = status_params("0B00000127FDBC63", vonage_status, msisdn="447700900123", to="447700900001")
    [report] = gateway().parse_status(request_of(params, method))
    assert report.sid == "0B00000127FDBC63"
    assert report.status == ours
    assert report.error_code is None and report.opted_out is False


def test_receipt_from_the_docs(on_fake):
    body = {
        "err-code": "0",
        "message-timestamp": "2018-10-25 12:10:29",
        "messageId": "0B00000127FDBC63",
        "msisdn": "447547232824",
        "network-code": "23410",
        "price": "0.03330000",
        "scts": "1810251310",
        "status": "delivered",
        "to": "Vonage",
    }
    [report] = gateway().parse_status(request_of(body, "POST-JSON"))
    assert (report.sid, report.status, report.error_code) == ("0B00000127FDBC63", "delivered", None)


@pytest.mark.parametrize(("err_code", "opted_out"), [("9", True), ("4", True), ("6", False), ("2", False)])
def test_failed_receipt_keeps_its_code_and_opt_outs(on_fake, err_code, opted_out):
    params = status_params("0B0000012", "failed", msisdn="447700900123", to="447700900001", err_code=err_code)
    [report] = gateway().parse_status(request_of(params))
    assert report.status == "undelivered"
    assert report.error_code == err_code
    assert report.opted_out is opted_out


@pytest.mark.parametrize(
    "params",
    [
        {"status": "delivered", "msisdn": "447700900123"},  # no messageId
        {"messageId": "0B0000012", "status": "unknown"},
        {"messageId": "0B0000012", "status": "teleported"},
        {},
    ],
)
def test_receipts_we_cannot_use_are_dropped(on_fake, params):
    assert gateway().parse_status(request_of(params)) == []


def test_odd_bodies_are_dropped_not_raised(on_fake):
    gw = gateway()
    odd = WebhookRequest("POST", CALLBACK, {"content-type": "application/json"}, {}, {}, b"\xff{not json")
    assert gw.parse_status(odd) == [] and gw.parse_inbound(odd) == []
    listed = WebhookRequest("POST", CALLBACK, {}, {}, {}, b"[1, 2]")
    assert gw.parse_status(listed) == [] and gw.parse_inbound(listed) == []


# -- inbound messages --------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "POST-JSON"])
def test_inbound_message(on_fake, method):
    [params] = inbound_params("+254712345678", POOL[0], "Yes please", message_id="0A0000000123456C")
    assert params["msisdn"] == "254712345678" and params["keyword"] == "YES"
    [sms] = gateway().parse_inbound(request_of(params, method))
    assert sms.sid == "0A0000000123456C"
    assert sms.from_number == "+254712345678"
    assert sms.to_number == POOL[0]
    assert sms.body == "Yes please"


def test_inbound_from_the_docs_keeps_a_short_code_as_it_is(on_fake):
    form = {
        "keyword": "HELLO!",
        "message-timestamp": "2016-08-14 10:13:54",
        "messageId": "030000000926C4C2",
        "msisdn": "447700900555",
        "text": "Hello!",
        "to": "2020",
        "type": "text",
    }
    [sms] = gateway().parse_inbound(request_of(form))
    assert (sms.sid, sms.from_number, sms.to_number, sms.body) == (
        "030000000926C4C2",
        "+447700900555",
        "2020",
        "Hello!",
    )


@pytest.mark.parametrize(
    "params",
    [
        {"msisdn": "447700900555", "text": "hi"},  # no messageId
        {"messageId": "030000000926C4C2", "text": "hi"},  # no sender
        {"messageId": "030000000926C4C2", "msisdn": "447700900555", "type": "binary", "data": "0102"},
    ],
)
def test_inbound_we_cannot_use_is_dropped(on_fake, params):
    assert gateway().parse_inbound(request_of(params)) == []


def test_long_inbound_message_is_put_together_from_its_parts(on_fake):
    text = "Answer: " + "the clinic was closed when we arrived " * 8
    parts = inbound_params("+254712345678", POOL[0], text, message_id="0A00000000000001")
    assert len(parts) > 1 and all(p["concat"] == "true" for p in parts)
    gw = gateway()
    got = [gw.parse_inbound(request_of(p)) for p in reversed(parts)]  # any order
    assert all(found == [] for found in got[:-1])
    [sms] = got[-1]
    assert sms.body == text
    assert sms.sid == "0A00000000000001"  # the first part's id, whichever arrived last
    assert sms.from_number == "+254712345678"
    # A part delivered again gives the same message (stored once by its sid).
    assert [s.sid for s in gw.parse_inbound(request_of(parts[0]))] == ["0A00000000000001"]


def test_parts_of_two_gateways_do_not_mix(on_fake):
    text = "z" * 200
    first, second = inbound_params("+254712345678", POOL[0], text, concat_ref="9")
    assert gateway(gateway_id=1).parse_inbound(request_of(first)) == []
    assert gateway(gateway_id=2).parse_inbound(request_of(second)) == []
    [sms] = gateway(gateway_id=1).parse_inbound(request_of(second))
    assert sms.body == text


# -- signatures --------------------------------------------------------------


@pytest.mark.parametrize("method", ["md5hash", "md5", "sha1", "sha256", "sha512"])
def test_signed_webhook_is_verified(on_fake, method):
    params = status_params("0B0000012", "delivered", msisdn="447700900123", to="447700900001")
    signed = sign_params(params, SIG_SECRET, method)
    assert gateway(signature_secret=SIG_SECRET).verify(request_of(signed))


def test_signature_covers_values_with_ampersand_and_equals(on_fake):
    [params] = inbound_params("+254712345678", POOL[0], "a=1 & b=2", message_id="0A01")
    signed = sign_params(params, SIG_SECRET, "sha256")
    gw = gateway(signature_secret=SIG_SECRET)
    assert gw.verify(request_of(signed, "POST-JSON"))
    assert gw.verify(request_of(signed, "GET"))


def test_forged_or_missing_signatures_are_refused(on_fake):
    params = status_params("0B0000012", "delivered", msisdn="447700900123", to="447700900001")
    signed = sign_params(params, SIG_SECRET, "sha256")
    gw = gateway(signature_secret=SIG_SECRET)
    assert gw.verify(request_of({**signed, "status": "failed"})) is False  # tampered
    assert gw.verify(request_of(sign_params(params, "another-secret", "sha256"))) is False
    assert gw.verify(request_of({k: v for k, v in signed.items() if k != "sig"})) is False
    assert gw.verify(request_of(params)) is False
    assert gw.verify(request_of({**signed, "sig": signed["sig"][:-2]})) is False


def test_without_a_signature_secret_nothing_is_verified(on_fake):
    signed = sign_params({"messageId": "0B0000012", "status": "delivered"}, SIG_SECRET)
    assert gateway().verify(request_of(signed)) is False


def test_an_old_signature_is_refused(on_fake):
    params = {"messageId": "0B0000012", "status": "delivered", "msisdn": "447700900123"}
    signed_at = int(time.time())
    signed = sign_params(params, SIG_SECRET, "sha256", timestamp=signed_at)
    gw = gateway(signature_secret=SIG_SECRET)
    at = datetime.fromtimestamp(signed_at, UTC).replace(tzinfo=None)
    clock.set_now(at + timedelta(hours=2))
    try:
        assert gw.verify(request_of(signed)) is True
        clock.set_now(at + timedelta(days=3))
        assert gw.verify(request_of(signed)) is False
    finally:
        clock.set_now(None)


# -- webhooks sent by the fake over HTTP ---------------------------------------


class _Capture:
    """Records the webhooks the fake sends, as the web layer would hand them to the gateway."""

    def __init__(self) -> None:
        captured = self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urllib.parse.urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                form = {}
                if "form-urlencoded" in headers.get("content-type", ""):
                    form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
                args = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
                url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
                captured.append(WebhookRequest(self.command, url, headers, args, form, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _record

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/gateways/vonage/1"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def capture():
    receiver = _Capture()
    yield receiver
    receiver.close()


@pytest.mark.parametrize("method", ["GET", "POST", "POST-JSON"])
def test_signed_receipt_sent_by_the_fake(on_fake, fake, capture, method):
    fake.signature_secret, fake.signature_method = SIG_SECRET, "sha256"
    result = gateway().send(TO, "Hello", POOL[0], capture.url + "/status")
    assert fake.send_status_callback(None, result.sid, "failed", 9, method=method) == 200
    [request] = capture.requests
    assert request.method == method.split("-")[0]
    gw = gateway(signature_secret=SIG_SECRET)
    assert gw.verify(request) is True
    [report] = gw.parse_status(request)
    assert (report.sid, report.status, report.error_code, report.opted_out) == (
        result.sid,
        "undelivered",
        "9",
        True,
    )


def test_auto_receipts_for_every_part(on_fake, fake, capture):
    fake.configure(auto_callbacks=True, undeliverable_numbers={TO: 6})
    result = gateway().send(TO, "y" * 200, POOL[0], capture.url + "/status")
    assert fake.wait_for_callbacks(5)
    reports = [r for request in capture.requests for r in gateway().parse_status(request)]
    assert [r.status for r in reports] == ["undelivered", "undelivered"]
    assert reports[0].sid == result.sid and reports[0].error_code == "6"


def test_long_inbound_sent_by_the_fake_arrives_whole(on_fake, fake, capture):
    fake.signature_secret = SIG_SECRET  # md5hash, Vonage's default
    text = "Ndiyo, " + "tutafika kliniki kesho asubuhi " * 7
    assert (
        fake.send_inbound_sms(capture.url + "/inbound", "+254712345678", POOL[1], text, method="POST") == 200
    )
    gw = gateway(signature_secret=SIG_SECRET)
    assert len(capture.requests) > 1
    assert all(gw.verify(r) for r in capture.requests)
    found = [sms for request in capture.requests for sms in gw.parse_inbound(request)]
    assert [(s.from_number, s.to_number, s.body) for s in found] == [("+254712345678", POOL[1], text)]
    assert fake.stats["inbound_sent"] == len(capture.requests)


# -- the fake's own endpoints ----------------------------------------------------


def test_fake_control_endpoints(on_fake, fake):
    import requests

    gateway().send(TO, "Hi", POOL[0], None)
    stats = requests.get(fake.url + "/_fake/stats", timeout=5).json()
    assert stats["messages"] == 1 and stats["stats"]["created"] == 1
    [listed] = requests.get(fake.url + "/_fake/messages", timeout=5).json()
    assert listed["to"] == "447700900123"
    assert requests.post(fake.url + "/_fake/reset", timeout=5).json() == {"reset": True}
    assert fake.messages == []


def test_with_redis_away_a_part_is_passed_on_alone(on_fake, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    import messaging.jobs

    def away(*args, **kwargs):
        raise RedisConnectionError("Redis is away")

    monkeypatch.setattr(messaging.jobs, "redis_conn", away)
    first, _second = inbound_params("+254712345678", POOL[0], "w" * 200, message_id="0A00000000000009")
    [sms] = gateway().parse_inbound(request_of(first))
    assert sms.sid == "0A00000000000009" and sms.body == first["text"]
