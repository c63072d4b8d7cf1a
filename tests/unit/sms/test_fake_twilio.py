"""The fake Twilio server, exercised with the real twilio-python client over HTTP."""

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.fakes.twilio_server import FakeTwilio, error_body, signed_inbound_request

ACCOUNT = "AC" + "1" * 32
TOKEN = "auth-token-1"
KEY, KEY_SECRET = "SK" + "2" * 32, "key-secret"
FROM = "+15005550006"
TO = "+15551230001"
SERVICE = "MG" + "3" * 32
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def fake():
    with FakeTwilio.start(
        accounts={ACCOUNT: TOKEN}, api_keys={KEY: (ACCOUNT, KEY_SECRET)}, seed=1234
    ) as server:
        yield server


@pytest.fixture
def make_client(fake):
    sessions = []

    def make(username=ACCOUNT, password=TOKEN, account_sid=None, timeout=5.0):
        http = TwilioHttpClient(timeout=timeout)
        sessions.append(http.session)
        client = Client(username, password, account_sid=account_sid, environment={}, http_client=http)
        client.api.base_url = fake.url  # twilio-python's only base-URL hook
        return client

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def client(make_client):
    return make_client()


class Receiver:
    """A tiny local webhook receiver that records form POSTs."""

    def __init__(self):
        self.requests = []
        self.cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                form = dict(urllib.parse.parse_qsl(raw.decode()))
                with outer.cond:
                    outer.requests.append((self.path, dict(self.headers), form))
                    outer.cond.notify_all()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def wait_for(self, count, timeout=5.0):
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -- success -----------------------------------------------------------------


def test_create_returns_twilio_message_resource(fake, client):
    msg = client.messages.create(to=TO, from_=FROM, body="Hello €", status_callback="http://example.test/cb")
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    int(msg.sid[2:], 16)
    assert msg.account_sid == ACCOUNT
    assert (msg.to, msg.from_, msg.body) == (TO, FROM, "Hello €")
    assert msg.status == "queued"
    assert msg.num_segments == "1"
    assert msg.direction == "outbound-api"
    assert msg.api_version == "2010-04-01"
    assert msg.price is None and msg.error_code is None and msg.error_message is None
    assert msg.messaging_service_sid is None
    assert isinstance(msg.date_created, datetime)
    assert msg.date_created.tzinfo is not None
    assert abs(msg.date_created - datetime.now(UTC)).total_seconds() < 5
    assert msg.uri == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{msg.sid}.json"
    assert msg.subresource_uris["media"].endswith(f"/Messages/{msg.sid}/Media.json")

    (recorded,) = fake.messages
    assert recorded["sid"] == msg.sid
    assert recorded["to"] == TO and recorded["from"] == FROM
    assert recorded["body"] == "Hello €"
    assert recorded["status_callback"] == "http://example.test/cb"
    assert recorded["messaging_service_sid"] is None
    assert abs(recorded["received_at"] - time.time()) < 5
    assert fake.stats["created"] == 1

    fetched = client.messages(msg.sid).fetch()
    assert fetched.sid == msg.sid and fetched.status == "queued"


def test_num_segments_and_messaging_service(fake, client):
    long_msg = client.messages.create(to=TO, from_=FROM, body="x" * 161)
    assert long_msg.num_segments == "2"
    # Twilio: with a Messaging Service and no From, status "accepted",
    # from null and num_segments "0" until a sender is picked
    msg = client.messages.create(to=TO, messaging_service_sid=SERVICE, body="hi")
    assert msg.status == "accepted"
    assert msg.messaging_service_sid == SERVICE
    assert msg.from_ is None
    assert msg.num_segments == "0"
    assert fake.message(msg.sid)["messaging_service_sid"] == SERVICE


def test_api_key_auth(fake, make_client):
    client = make_client(KEY, KEY_SECRET, account_sid=ACCOUNT)
    assert client.messages.create(to=TO, from_=FROM, body="hi").sid.startswith("SM")
    with pytest.raises(TwilioRestException) as err:
        make_client(KEY, "wrong", account_sid=ACCOUNT).messages.create(to=TO, from_=FROM, body="hi")
    assert (err.value.status, err.value.code) == (401, 20003)


def test_keep_alive_reuses_one_connection(fake, client):
    started = time.monotonic()
    for i in range(50):
        client.messages.create(to=TO, from_=FROM, body=f"n{i}")
    assert time.monotonic() - started < 1.0  # Nagle would stall ~43 ms a request
    assert fake.stats["connections"] == 1
    assert [m["body"] for m in fake.messages] == [f"n{i}" for i in range(50)]


# -- errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (21211, "is not a valid phone number"),
        (21610, "unsubscribed recipient"),
        (21614, "is not a valid mobile number"),
        (21408, "Permission to send an SMS has not been enabled"),
        (21612, "is not currently reachable"),
        (30003, "Unreachable destination handset"),
        (30007, "Message filtered"),
        (12345, "Error 12345"),
    ],
)
def test_fail_numbers(fake, client, code, text):
    bad = "+15550000009"
    fake.fail_numbers = {bad: code}
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to=bad, from_=FROM, body="hi")
    assert err.value.status == 400
    assert err.value.code == code
    assert text in err.value.msg
    assert fake.stats["failed_number"] == 1
    assert fake.messages == []
    # other numbers still pass
    client.messages.create(to=TO, from_=FROM, body="hi")
    assert len(fake.messages) == 1


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": "", "from_": FROM, "body": "hi"}, 21604),
        ({"to": TO, "from_": FROM, "body": ""}, 21602),
        ({"to": TO, "body": "hi"}, 21603),
        ({"to": TO, "from_": FROM, "body": "x" * 1601}, 21617),
    ],
)
def test_validation_errors(fake, client, kwargs, code):
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(**kwargs)
    assert (err.value.status, err.value.code) == (400, code)
    assert fake.stats["invalid"] == 1


def test_wrong_auth_answers_twilio_401_body(fake, make_client):
    for client in (
        make_client(ACCOUNT, "wrong-token"),
        make_client("AC" + "9" * 32, TOKEN),
    ):
        with pytest.raises(TwilioRestException) as err:
            client.messages.create(to=TO, from_=FROM, body="hi")
        assert (err.value.status, err.value.code) == (401, 20003)

    url = f"{fake.url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    with requests.Session() as s:
        r = s.post(url, data={"To": TO, "From": FROM, "Body": "x"}, auth=(ACCOUNT, "no"))
        assert r.status_code == 401
        assert r.json() == {
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        }
        r = s.post(url, data={"To": TO})  # no Authorization header at all
        assert r.status_code == 401
        r = s.get(f"{fake.url}/2010-04-01/Accounts/{ACCOUNT}/Nope.json")
        assert r.status_code == 404 and r.json()["code"] == 20404
    assert fake.stats["auth_failed"] == 4
    assert fake.messages == []


def test_error_rates_429_and_500(fake, client):
    fake.error_rate_429 = 1.0
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to=TO, from_=FROM, body="hi")
    assert (err.value.status, err.value.code) == (429, 20429)

    fake.configure(error_rate_429=0.0, error_rate_500=1.0)
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to=TO, from_=FROM, body="hi")
    assert (err.value.status, err.value.code) == (500, 20500)
    assert fake.stats["rate_limited"] == 1 and fake.stats["server_error"] == 1
    assert fake.messages == []


def test_error_rates_are_seeded_and_reproducible(fake, client):
    def run():
        outcomes = []
        for _ in range(60):
            try:
                client.messages.create(to=TO, from_=FROM, body="hi")
                outcomes.append(201)
            except TwilioRestException as exc:
                outcomes.append(exc.status)
        return outcomes

    fake.configure(error_rate_429=0.3, error_rate_500=0.2)
    first = run()
    assert 5 <= first.count(429) <= 35 and 3 <= first.count(500) <= 25
    assert first.count(201) == len(fake.messages) == fake.stats["created"]

    fake.reset()  # reseeds and clears controls
    assert fake.messages == [] and fake.stats["requests"] == 0
    assert fake.error_rate_429 == 0.0
    fake.configure(error_rate_429=0.3, error_rate_500=0.2)
    assert run() == first


def test_hang_times_out_client_but_message_still_arrives(fake, make_client):
    fake.configure(hang_rate=1.0, hang_seconds=0.5)
    client = make_client(timeout=0.15)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        client.messages.create(to=TO, from_=FROM, body="maybe sent")
    assert time.monotonic() - started < 0.45
    # like Twilio: the request got there, so the message may be sent anyway
    wait_until(lambda: fake.stats["created"] == 1)
    assert fake.stats["hung"] == 1
    assert fake.messages[0]["body"] == "maybe sent"


def test_stop_ends_a_hang_quickly(make_client):
    server = FakeTwilio.start(accounts={ACCOUNT: TOKEN}, hang_rate=1.0, hang_seconds=30)
    client = make_client(timeout=0.1)
    client.api.base_url = server.url
    with pytest.raises(requests.exceptions.Timeout):
        client.messages.create(to=TO, from_=FROM, body="hi")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    assert server.messages == []


# -- callbacks and inbound -------------------------------------------------


def test_status_callback_is_signed_like_twilio(fake, client, receiver):
    url = receiver.url + "/twilio/status?project=alpha"
    msg = client.messages.create(to=TO, from_=FROM, body="hi", status_callback=url)

    assert fake.send_status_callback(msg.sid, "delivered") == 204
    ((path, headers, form),) = receiver.wait_for(1)
    assert path == "/twilio/status?project=alpha"
    assert form == {
        "SmsSid": msg.sid,
        "SmsStatus": "delivered",
        "MessageStatus": "delivered",
        "To": TO,
        "MessageSid": msg.sid,
        "AccountSid": ACCOUNT,
        "From": FROM,
        "ApiVersion": "2010-04-01",
    }
    signature = headers["X-Twilio-Signature"]
    assert RequestValidator(TOKEN).validate(url, form, signature)
    assert not RequestValidator("other-token").validate(url, form, signature)
    assert not RequestValidator(TOKEN).validate(url, {**form, "To": "+1"}, signature)
    assert fake.message(msg.sid)["status"] == "delivered"
    assert client.messages(msg.sid).fetch().status == "delivered"

    fake.send_status_callback(msg.sid, "undelivered", error_code=30003)
    form = receiver.wait_for(2)[1][2]
    assert form["MessageStatus"] == "undelivered" and form["ErrorCode"] == "30003"
    fetched = client.messages(msg.sid).fetch()
    assert fetched.error_code == 30003
    assert fetched.error_message == "Unreachable destination handset"
    assert fake.stats["callbacks_sent"] == 2
    assert [c["status"] for c in fake.callbacks] == ["delivered", "undelivered"]


def test_status_callback_to_explicit_url_and_unreachable(fake, client, receiver):
    msg = client.messages.create(to=TO, messaging_service_sid=SERVICE, body="hi")
    with pytest.raises(ValueError):
        fake.send_status_callback(msg.sid, "sent")  # no StatusCallback given
    assert fake.send_status_callback(msg.sid, "sent", url=receiver.url + "/cb") == 204
    form = receiver.wait_for(1)[0][2]
    assert form["MessagingServiceSid"] == SERVICE
    assert form["From"] == fake.messaging_service_from

    with pytest.raises(OSError):
        fake.send_status_callback(msg.sid, "sent", url="http://127.0.0.1:9/cb")
    assert fake.stats["callback_errors"] == 1


def test_auto_callbacks(fake, client, receiver):
    fake.configure(auto_callbacks=True, undeliverable_numbers={"+15550000030": 30003})
    url = receiver.url + "/status"
    ok = client.messages.create(to=TO, from_=FROM, body="a", status_callback=url)
    bad = client.messages.create(to="+15550000030", from_=FROM, body="b", status_callback=url)
    client.messages.create(to=TO, from_=FROM, body="no callback url")
    assert fake.wait_for_callbacks(5)
    got = [(f["MessageSid"], f["MessageStatus"], f.get("ErrorCode")) for _, _, f in receiver.wait_for(4)]
    assert got == [
        (ok.sid, "sent", None),
        (ok.sid, "delivered", None),
        (bad.sid, "sent", None),
        (bad.sid, "undelivered", "30003"),
    ]
    for _, headers, form in receiver.requests:
        assert RequestValidator(TOKEN).validate(url, form, headers["X-Twilio-Signature"])


def test_signed_inbound_request():
    url = "https://sms.example.org/twilio/inbound?project=alpha"
    params, headers = signed_inbound_request(
        TOKEN, url, {"From": "+256772123456", "To": FROM, "Body": "STOP", "AccountSid": ACCOUNT}
    )
    assert params["MessageSid"].startswith("SM")
    assert params["SmsSid"] == params["SmsMessageSid"] == params["MessageSid"]
    assert params["NumMedia"] == "0" and params["NumSegments"] == "1"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    validator = RequestValidator(TOKEN)
    assert validator.validate(url, params, headers["X-Twilio-Signature"])
    assert not validator.validate(url, {**params, "Body": "START"}, headers["X-Twilio-Signature"])
    assert not validator.validate(
        "https://sms.example.org/twilio/inbound", params, headers["X-Twilio-Signature"]
    )

    exact, headers = signed_inbound_request(TOKEN, url, {"Body": "hi"}, fill_defaults=False)
    assert exact == {"Body": "hi"}
    assert validator.validate(url, exact, headers["X-Twilio-Signature"])


def test_send_inbound_sms(fake, receiver):
    url = receiver.url + "/inbound"
    assert fake.send_inbound_sms(url, "+256772123456", FROM, "HELP") == 204
    _, headers, form = receiver.wait_for(1)[0]
    assert form["Body"] == "HELP" and form["AccountSid"] == ACCOUNT
    assert RequestValidator(TOKEN).validate(url, form, headers["X-Twilio-Signature"])


# -- misc ------------------------------------------------------------------


def test_control_endpoints(fake, client):
    client.messages.create(to=TO, from_=FROM, body="hi")
    with requests.Session() as s:
        stats = s.get(fake.url + "/_fake/stats").json()
        assert stats["messages"] == 1 and stats["stats"]["created"] == 1
        assert s.get(fake.url + "/_fake/messages").json()[0]["body"] == "hi"
        assert s.post(fake.url + "/_fake/reset").status_code == 200
    assert fake.messages == []


def test_controls_validate_values(fake):
    with pytest.raises(ValueError):
        fake.error_rate_500 = 1.5
    with pytest.raises(TypeError):
        fake.configure(nonsense=1)
    assert error_body(21211, to="+1")[0] == 400


def test_command_line(tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "tests" / "fakes" / "twilio_server.py"),
        "--port",
        "0",
        "--account",
        f"{ACCOUNT}:{TOKEN}",
        "--fail",
        "+15550000001:21211",
    ]
    with subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            line = proc.stdout.readline()
            assert line.startswith("fake Twilio listening on http://127.0.0.1:"), line
            base = line.split()[-1]
            url = f"{base}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
            with requests.Session() as s:
                ok = s.post(url, data={"To": TO, "From": FROM, "Body": "é"}, auth=(ACCOUNT, TOKEN))
                assert ok.status_code == 201 and ok.json()["num_segments"] == "1"
                bad = s.post(
                    url, data={"To": "+15550000001", "From": FROM, "Body": "x"}, auth=(ACCOUNT, TOKEN)
                )
                assert bad.status_code == 400 and bad.json()["code"] == 21211
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=10)
    assert json.loads(out.strip().splitlines()[-1])["created"] == 1, err
